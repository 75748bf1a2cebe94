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

#[test]
fn model_info_hides_hidden_models() {
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
    let models = [
        ModelSpec::from(plain),
        ModelSpec::new(hidden, true),
        ModelSpec::new(adapter, false),
    ];
    let ws = WorkspaceConfig {
        libraries: vec![Library::from_code("tools", "'''Tools.'''").unwrap()],
        ..Default::default()
    };
    let text = model_info_text(&models, &ws);
    assert!(text.starts_with("# Models\n\n"), "{text}");
    assert!(
        text.contains("- `model`: **org/gpt** (revision `abc123`). Tokenizer: `tokenizer`.\n"),
        "{text}"
    );
    assert!(text.contains(
        "- `m2`: **hidden-model-1**, a hidden model: which model it is is deliberately not \
             disclosed; a PEFT adapter on **hidden-model-1-base**, kept as a `peft.PeftModel`"
    ));
    assert!(text.contains("Tokenizer: `m2_tokenizer`."));
    assert!(
        text.contains("merged into the base model's weights"),
        "{text}"
    );
    assert!(text.contains("`model.device`"), "{text}");
    assert!(text.contains("# Libraries\n") && text.contains("## tools\n\nTools.\n"));
    for secret in ["/sb/", "deadbeef"] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }

    // Not preloaded: paths of visible models only.
    let lazy = WorkspaceConfig {
        preload_models: false,
        ..Default::default()
    };
    let text = model_info_text(&models, &lazy);
    assert!(
        text.contains("at `/hub/snap/abc`") && !text.contains("/sb/"),
        "{text}"
    );
    assert!(!text.contains("Tokenizer:"));
    assert_eq!(model_info_text(&[], &WorkspaceConfig::default()), "");
}
