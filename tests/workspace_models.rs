//! A notebook session with a workspace: libraries importable in the kernel, skills on disk,
//! custom init code, and tiny random models (plain, PEFT, hidden) preloaded before the
//! first cell. Needs torch + transformers + peft from PyPI (installed by the sandbox env).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use common::{Env, TORCH_ENV, failed, lines, link_tiny_models, text, validate_notebooks};

#[test]
fn libraries_skills_and_models_are_ready_in_the_kernel() {
    let env = Env::new();
    link_tiny_models(&env);
    env.write(
        "helpers.py",
        "\"\"\"Helpers for probing.\"\"\"\n\ndef double(x):\n    return 2 * x\n",
    );
    env.write(
        "skills/probe/SKILL.md",
        "---\nname: probe\ndescription: How to probe a model\n---\nUse hooks.\n",
    );
    let out = env.run(
        &format!(
            r#"
let sb = Sandbox(#{{ {TORCH_ENV},
    models: [
        #{{ name: "./models/base" }},
        #{{ name: "./models/lora", is_peft: true, base_model: "./models/base", var_name: "tuned" }},
        #{{ name: "./models/base", var_name: "secret", hidden: true }},
    ] }}).start();
let ws = Workspace(#{{
    libraries: [Library::from_file("helpers.py"), Library::from_code("consts", "ANSWER = 42")],
    skill_dirs: ["skills"],
    custom_init_code: "import helpers as h",
}});
print(to_json(ws.get_library_docs()));
let s = create_notebook_session(sb, ws, #{{ name: "models" }});
print(s.exec("h.double(consts.ANSWER)").text);
print(s.exec("import torch; type(model).__name__ + ' ' + str(tokenizer is not None) + ' ' + str(model(torch.tensor([[1, 2, 3]])).logits.shape[-1])").text);
print(s.exec("type(tuned).__name__").text);
print(s.exec("secret.config._name_or_path").text);
print(to_json(s.model_info_text));
print(file_exists(s.workspace_path + "/.claude/skills/probe/SKILL.md"));
"#
        ),
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}\n{stdout}");
    let docs = "## helpers\n\nHelpers for probing.\n\n## consts\n\n(no module docstring)\n\n";
    let got = lines(&stdout);
    assert_eq!(
        got,
        [
            serde_json::to_string(docs).unwrap().as_str(),
            "84",
            "'LlamaForCausalLM True 1000'",
            "'LlamaForCausalLM'", // PEFT merged by default
            "'hidden-model-2'",
            got[5],
            "true",
        ]
    );
    // What the agent is told, as Seer says it: each model's variable and name (the hidden
    // one as `<hidden>`) and its tokenizer; the libraries' docs are `library_docs`.
    let info: String = serde_json::from_str(got[5]).unwrap();
    assert_eq!(
        info,
        "### Pre-loaded Models\n\
         The following models are already loaded in the kernel:\n\
         - `model`: ./models/base\n\
         - `tokenizer`: Tokenizer\n\
         - `tuned`: ./models/lora (a PEFT adapter on ./models/base, merged into its weights)\n\
         - `tuned_tokenizer`: Tokenizer\n\
         - `secret`: <hidden>\n\
         - `secret_tokenizer`: Tokenizer\n\
         \n\
         **Do NOT reload these models - they are already available.**\n"
    );
    assert!(!stdout.contains("secret\""), "{stdout}");
    assert_eq!(validate_notebooks(&env.path().join("outputs")), 1);
}

#[test]
fn workspace_errors_are_clear() {
    let env = Env::new();
    env.write("bad name.py", "x = 1\n");
    env.write("broken.py", "raise RuntimeError('broken library')\n");
    let unreadable = |what: &str, name: &str| {
        format!(
            "main.rhai:1:10: Library::from_{what}: library {what} `{name}` (<dir>/{name}) cannot be \
             read; check the path (a relative path is taken from the script's folder): No such file or \
             directory (os error 2)"
        )
    };
    let cases = [
        (
            "Library::from_file(\"missing.py\");",
            unreadable("file", "missing.py"),
        ),
        (
            "Library::from_directory(\"nowhere\");",
            unreadable("directory", "nowhere"),
        ),
        (
            "Workspace(#{ libaries: [] });",
            "main.rhai:1:1: Workspace: unknown field `libaries`; did you mean `libraries`? (valid fields: \
             `libraries`, `skills`, `skill_dirs`, `local_dirs`, `local_files`, `custom_init_code`, \
             `preload_models`, `hidden_model_loading`)"
                .to_string(),
        ),
        (
            "let sb = Sandbox(#{ execution_mode: \"notebook\" }).start();\ncreate_notebook_session(sb, 5);",
            "main.rhai:2:1: the workspace argument must be a Workspace(#{...}) or (), not i64".to_string(),
        ),
    ];
    for (code, want) in cases {
        let out = env.run(code, &[]);
        assert_eq!(
            env.normalise(&failed(&out)),
            format!("error: {want}\n"),
            "{code}"
        );
    }
    // A library that fails to import: the kernel's traceback, down to the library's line.
    let out = env.run(
        "let sb = Sandbox(#{ execution_mode: \"notebook\" }).start();\ncreate_notebook_session(sb, Workspace(#{ libraries: [Library::from_file(\"broken.py\")] }));",
        &[],
    );
    let err = env.normalise(&failed(&out));
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines[0], "error: main.rhai:2:1: the workspace setup code failed in the kernel:",
        "{err}"
    );
    let at = lines
        .iter()
        .position(|l| l.starts_with("File <dir>/state/sandboxes/sb-"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(lines[at].ends_with("/libraries/broken.py:1"), "{err}");
    assert_eq!(
        lines[at + 1..],
        [
            "----> 1 raise RuntimeError('broken library')",
            "",
            "RuntimeError: broken library",
            ""
        ]
    );
}

/// `seer mcp notebook` opens its session like a script does: the sandbox's models are
/// preloaded by the workspace init code before the client's first cell.
#[test]
fn seer_mcp_notebook_preloads_the_sandbox_models() {
    let env = Env::new();
    link_tiny_models(&env);
    let id = env.detached_sandbox(&format!(
        "#{{ {TORCH_ENV}, timeout: 300, models: [#{{ name: \"./models/base\" }}] }}"
    ));
    let got = env.stdio_mcp_client(&id, Some("type(model).__name__, type(tokenizer).__name__"));
    env.terminate(&id);
    assert_eq!(
        got,
        serde_json::json!({
            "tools": ["add_markdown", "edit_cell", "execute_code", "interrupt_kernel",
                      "read_cell", "restart_kernel", "shutdown_session"],
            "text": "[cell 0, execution_count 1]\n('LlamaForCausalLM', 'TokenizersBackend')"
        })
    );
}
