use super::*;
use crate::workspace::Library;
use crate::workspace::test_util::handle;

#[test]
fn library_docs_markdown() {
    let ws = WorkspaceConfig {
        libraries: vec![
            Library::from_code("a", "\"\"\"Does A.\n\nMore.\"\"\"").unwrap(),
            Library::from_code("b", "x = 1").unwrap(),
        ],
        ..Default::default()
    };
    assert_eq!(
        library_docs(&ws),
        "## a\n\nDoes A.\n\nMore.\n\n## b\n\n(no module docstring)\n\n"
    );
    assert_eq!(library_docs(&WorkspaceConfig::default()), "");
}

/// A plain model (with a revision), a hidden PEFT adapter kept as a PeftModel, a visible
/// adapter merged.
fn models() -> [ModelSpec; 3] {
    let mut plain = handle("org/gpt", "/hub/snap/abc", "model");
    plain.revision = "abc123".into();
    let mut hidden = handle("hidden-model-1", "/sb/models/m2", "m2");
    hidden.hidden = true;
    hidden.revision = "deadbeef".into();
    hidden.is_peft = true;
    hidden.base_model = Some("hidden-model-1-base".into());
    hidden.base_model_path = Some("/sb/models/m2_base".into());
    let mut adapter = handle("org/lora", "/hub/lora", "lora");
    adapter.is_peft = true;
    adapter.base_model = Some("org/base".into());
    adapter.base_model_path = Some("/hub/base".into());
    [
        ModelSpec::from(plain),
        ModelSpec::new(hidden, true),
        ModelSpec::new(adapter, false),
    ]
}

#[test]
fn model_info_is_seers_text_without_the_libraries() {
    // Libraries are not part of it: `library_docs` is.
    let ws = WorkspaceConfig {
        libraries: vec![Library::from_code("tools", "'''Tools.'''").unwrap()],
        ..Default::default()
    };
    assert_eq!(
        model_info_text(&models(), &ws),
        "### Pre-loaded Models\n\
         The following models are already loaded in the kernel:\n\
         - `model`: org/gpt\n\
         - `tokenizer`: Tokenizer\n\
         - `m2`: <hidden>\n\
         - `m2_tokenizer`: Tokenizer\n\
         - `lora`: org/lora (a PEFT adapter on org/base, merged into its weights)\n\
         - `lora_tokenizer`: Tokenizer\n\
         \n\
         **Do NOT reload these models - they are already available.**\n"
    );
    let mut kept = models()[2].clone();
    kept.load_as_peft = true;
    assert_eq!(
        model_info_text(&[kept], &WorkspaceConfig::default()),
        "### Pre-loaded Models\n\
         The following models are already loaded in the kernel:\n\
         - `lora`: org/lora (a PEFT adapter on org/base, a `peft.PeftModel`)\n\
         - `lora_tokenizer`: Tokenizer\n\
         \n\
         **Do NOT reload these models - they are already available.**\n"
    );
    assert_eq!(model_info_text(&[], &ws), "");
}

#[test]
fn model_info_without_preloading_gives_visible_paths_only() {
    let lazy = WorkspaceConfig {
        preload_models: false,
        ..Default::default()
    };
    assert_eq!(
        model_info_text(&models(), &lazy),
        "### Models\n\
         The following models are configured but not loaded; load them with \
         `transformers.AutoModelForCausalLM.from_pretrained(path)`:\n\
         - `model`: org/gpt at `/hub/snap/abc`\n\
         - `m2`: <hidden>\n\
         - `lora`: org/lora at `/hub/lora` (a PEFT adapter on org/base at `/hub/base`)\n"
    );
}
