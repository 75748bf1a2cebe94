//! The Python toolkit (`toolkit/`): its pytest suite on tiny offline models, and the shipped
//! copy mounted in a real notebook session with `Library::toolkit()`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use common::{Env, TORCH_ENV, lines, link_tiny_models, ok, test_python, text};

use std::process::Command;

#[test]
fn toolkit_pytest_suite_passes() {
    let started = std::time::Instant::now();
    let out = Command::new(test_python())
        .args([
            "-m",
            "pytest",
            "toolkit/tests",
            "-q",
            "-p",
            "no:cacheprovider",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("HF_HUB_OFFLINE", "1")
        .env("TRANSFORMERS_OFFLINE", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONIOENCODING", "utf-8")
        .env("OMP_NUM_THREADS", "1")
        .output()
        .expect("run pytest");
    let stdout = ok(&out);
    // The summary, `47 passed, 1 warning in 5.83s`: tests passed, none failed, errored or
    // was skipped (warnings allowed).
    let summary = stdout.lines().last().unwrap_or_default();
    let counts = summary.rsplit_once(" in ").map_or("", |(c, _)| c);
    let kinds: Vec<&str> = counts
        .split(", ")
        .map(|part| match part.split_once(' ') {
            Some((n, kind)) if n.parse::<u32>().is_ok() => kind,
            _ => part,
        })
        .collect();
    assert!(
        kinds.first() == Some(&"passed")
            && kinds[1..]
                .iter()
                .all(|k| ["warning", "warnings"].contains(k)),
        "{stdout}"
    );
    eprintln!(
        "toolkit pytest: {summary} ({:.0?} with startup)",
        started.elapsed()
    );
}

#[test]
fn shipped_toolkit_works_in_a_notebook_session() {
    let env = Env::new();
    link_tiny_models(&env);
    // The script's folder has no toolkit/: everything comes from the copy inside seer.
    let out = env.run(
        &format!(
            r#"
let sb = Sandbox(#{{ {TORCH_ENV}, models: [#{{ name: "./models/base" }}] }}).start();
let ws = Workspace(#{{ libraries: [
    Library::toolkit(),
    Library::from_file("toolkit/steering_hook.py"),
    Library::from_file("toolkit/model_layout.py"),
] }});
let s = create_notebook_session(sb, ws, #{{ name: "toolkit" }});
print(s.library_docs.contains("extract_activations(model, tokenizer"));
print(s.exec_or_throw("tuple(toolkit.extract_activations(model, tokenizer, ['hello world', 'the quick brown fox jumps'], [0, -1]).shape)").text);
s.exec_or_throw("tokenizer.chat_template = \"{{% for m in messages %}}{{{{ m['content'] }}}} {{% endfor %}}\"");
print(s.exec_or_throw("tuple(toolkit.extract_activations(model, tokenizer, [{{'role': 'user', 'content': 'hello world'}}], -1, [0, -1]).shape)").text);
print(s.exec_or_throw("import torch\nwith steering_hook.steering_hook(model, -1, torch.ones(64)):\n    pass\n'steered'").text);
print(s.exec_or_throw("len(toolkit.research_methodology()) > 1000").text);
"#
        ),
        &[],
    );
    let (_, stderr) = text(&out);
    assert_eq!(
        lines(&ok(&out)),
        ["true", "(2, 2, 64)", "(2, 64)", "'steered'", "True"],
        "{stderr}"
    );
}
