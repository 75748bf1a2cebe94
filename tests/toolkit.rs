//! The Python toolkit (`toolkit/`): its pytest suite on tiny offline models, and the shipped
//! copy mounted in a real notebook session with `Library::toolkit()`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use common::{Env, link_tiny_models, test_python, text};

use std::process::Command;

fn check(out: &std::process::Output, what: &str) {
    let (stdout, stderr) = text(out);
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
}

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
    check(&out, "pytest toolkit/tests");
    let (stdout, _) = text(&out);
    let summary = stdout
        .lines()
        .rev()
        .find(|l| l.contains(" passed"))
        .unwrap_or("");
    assert!(
        !summary.contains("failed") && !summary.is_empty(),
        "{stdout}"
    );
    eprintln!(
        "toolkit pytest: {summary} ({:.0?} with startup)",
        started.elapsed()
    );
}

const TORCH_ENV: &str =
    "python_packages: [\"torch\", \"transformers\", \"peft\"], execution_mode: \"notebook\"";

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
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}\n{stdout}");
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines,
        ["true", "(2, 2, 64)", "(2, 64)", "'steered'", "True"],
        "{stderr}"
    );
}
