//! The Python toolkit (`toolkit/`): its pytest suite on tiny offline models, and the shipped
//! copy mounted in a real notebook session with `Library::toolkit()`.

mod common;
use common::{Env, text, which_uv};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// What the pytest suite needs; the same torch/transformers/peft as the workspace tests, so
/// uv's cache serves both.
const PACKAGES: [&str; 5] = ["torch", "transformers", "peft", "tokenizers", "pytest"];

fn skip() -> bool {
    let skip = std::env::var("SEER_SKIP_PYTHON_TESTS").is_ok_and(|v| v == "1");
    if skip {
        eprintln!("skipped: SEER_SKIP_PYTHON_TESTS=1");
    }
    skip
}

fn check(out: &std::process::Output, what: &str) {
    let (stdout, stderr) = text(out);
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
}

/// A venv with [`PACKAGES`], made once per target folder (offline from uv's cache when it
/// can, else from PyPI).
fn python() -> &'static Path {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("seer-toolkit-pyenv-v1");
        let py = root.join("bin/python");
        let ready = root.join(".ready");
        if ready.exists() && py.exists() {
            return py;
        }
        let _ = std::fs::remove_dir_all(&root);
        let uv = which_uv();
        let out = Command::new(&uv)
            .args(["venv", "--quiet"])
            .arg(&root)
            .env("UV_PYTHON_DOWNLOADS", "never")
            .output()
            .expect("run uv venv");
        check(&out, "uv venv");
        let install = |offline: bool| {
            let mut c = Command::new(&uv);
            c.args(["pip", "install", "--quiet", "--python"]).arg(&py);
            if offline {
                c.arg("--offline");
            }
            c.args(PACKAGES).output().expect("run uv pip install")
        };
        if !install(true).status.success() {
            check(
                &install(false),
                "uv pip install torch transformers peft tokenizers pytest",
            );
        }
        std::fs::write(&ready, "ok\n").expect("write the venv's ready marker");
        py
    })
}

#[test]
fn toolkit_pytest_suite_passes() {
    if skip() {
        return;
    }
    let started = std::time::Instant::now();
    let out = Command::new(python())
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
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/make_tiny_model.py"
    );
    let models = env.path().join("models");
    let out = env.run(
        &format!(
            "let sb = Sandbox(#{{ {TORCH_ENV} }}).start();\nsb.exec(\"python {fixture} {}\");",
            models.display()
        ),
        &[],
    );
    check(&out, "making the tiny models");
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
