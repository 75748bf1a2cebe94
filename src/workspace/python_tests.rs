//! End-to-end tests: the generated Python runs in a real interpreter with torch,
//! transformers and peft (the test Python env of `tests/setup.sh`) against tiny random
//! models made offline by `tests/fixtures/make_tiny_model.py`.

use std::fs;
use std::path::{Path, PathBuf};

use super::test_util::{DOCSTRING_CASES, handle};
use super::*;
use crate::python_syntax::{py_path, py_str};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::sync::OnceLock;

fn fixture(name: &str) -> PathBuf {
    crate::testenv::fixture(name)
}

fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The test Python env's interpreter.
fn python() -> &'static Path {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(crate::testenv::python)
}

fn offline(cmd: &mut Command) -> &mut Command {
    cmd.env("HF_HUB_OFFLINE", "1")
        .env("TRANSFORMERS_OFFLINE", "1")
        .env("PYTHONIOENCODING", "utf-8")
        // Bytecode is written as usual: the reload test depends on stale `.pyc` files
        // being dropped by `install`.
        .env_remove("PYTHONDONTWRITEBYTECODE")
}

/// The tiny models, made once per target folder.
fn tiny() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(crate::testenv::tiny_models)
}

fn tiny_path(sub: &str) -> String {
    tiny().join(sub).display().to_string()
}

/// Runs `code` as a script in `dir`.
fn run_script(dir: &Path, code: &str) -> Output {
    let file = dir.join("run_init.py");
    fs::write(&file, code).unwrap();
    offline(Command::new(python()).arg(&file).current_dir(dir))
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn py_literals_and_docstrings_agree_with_python() {
    let tmp = tempfile::tempdir().unwrap();
    let strings = [
        "plain",
        "it's \"quoted\"",
        "back\\slash\\",
        "l1\nl2\r\n\ttab",
        "nul\0 bell\x07 del\x7f",
        "é 日本 🦀 \u{2028}",
        "'''\"\"\"",
    ];
    let mut code = String::from("import ast, json, os\nlits = [\n");
    for s in strings {
        code.push_str(&format!("    {},\n", py_str(s)));
    }
    code.push_str("]\ndocs = []\nfor src in [\n");
    for (src, _) in DOCSTRING_CASES {
        code.push_str(&format!("    {},\n", py_str(src)));
    }
    code.push_str(
        "]:\n    try:\n        docs.append(ast.get_docstring(ast.parse(src.encode())) or '')\n    \
             except SyntaxError:\n        docs.append(None)\n",
    );
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let p = Path::new(std::ffi::OsStr::from_bytes(b"/x\xff'\\y"));
        code.push_str(&format!("path = os.fsencode({}).hex()\n", py_path(p)));
    }
    #[cfg(not(unix))]
    code.push_str("path = ''\n");
    code.push_str("print(json.dumps({'lits': lits, 'docs': docs, 'path': path}))\n");
    let out = run_script(tmp.path(), &code);
    check(&out, "literal check");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lits: Vec<String> = serde_json::from_value(v["lits"].clone()).unwrap();
    assert_eq!(lits, strings);
    let docs: Vec<Option<String>> = serde_json::from_value(v["docs"].clone()).unwrap();
    for ((src, ours), python) in DOCSTRING_CASES.iter().zip(docs) {
        // Python rejects some cases outright; ours must then find nothing.
        assert_eq!(*ours, python.unwrap_or_default(), "for {src:?}");
    }
    #[cfg(unix)]
    assert_eq!(v["path"], hex::encode(b"/x\xff'\\y"));
}

#[test]
fn plain_models_library_and_custom_code() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("script");
    fs::create_dir_all(&base).unwrap();
    // The library reads at import what the init code sets: Seer's order.
    fs::write(
        base.join("mathlib.py"),
        "\"\"\"Math helpers.\"\"\"\nimport os\nFACTOR = int(os.environ['MATHLIB_FACTOR'])\n\
         def double(x):\n    return FACTOR * x\n",
    )
    .unwrap();
    let ws = WorkspaceConfig {
        libraries: vec![Library::from_file(&base, "mathlib.py").unwrap()],
        custom_init_code: Some(
            "import os\nos.environ['MATHLIB_FACTOR'] = '2'\nCUSTOM = 'mathlib' in globals()\n\
             print('custom ran')\n"
                .into(),
        ),
        ..Default::default()
    };
    // A libraries folder whose name needs escaping.
    let libs = tmp.path().join("libs 'ü\" \\");
    let inst = install(&ws, &libs, &tmp.path().join("ws"), &base).unwrap();
    let odd_name = "tïny \"m2\" 'x'\\y";
    let models = [
        ModelSpec::from(handle("tiny-llama", &tiny_path("base"), "model")),
        ModelSpec::from(handle(odd_name, &tiny_path("base_notok"), "m2")),
    ];
    check_conflicts(&ws, &models).unwrap();
    let mut code = init_code(&ws, &inst, &models, InitOptions::default());
    code.push_str(&format!(
        r#"
import torch
ids = tokenizer("the quick brown fox", return_tensors="pt")
with torch.no_grad():
    logits = model(**ids).logits
assert logits.shape == (1, 4, 1000), logits.shape
assert type(model).__name__ == "LlamaForCausalLM" and not model.training
assert type(m2).__name__ == "LlamaForCausalLM" and not m2.training
assert m2_tokenizer is None
assert model.config._name_or_path == {base}, model.config._name_or_path
assert mathlib.double(4) == 8 and CUSTOM is False
assert sys.path[0] == {libs}, sys.path[0]
print("CHECKS OK")
"#,
        base = py_str(&tiny_path("base")),
        libs = py_path(&libs),
    ));
    let out = run_script(tmp.path(), &code);
    check(&out, "init code");
    let stdout = text(&out.stdout);
    assert!(stdout.contains("CHECKS OK"), "{stdout}");
    assert!(stdout.contains("custom ran"), "{stdout}");
    assert!(
        stdout.contains("seer: loaded tiny-llama as `model` (tokenizer: `tokenizer`)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("seer: loaded {odd_name} as `m2`\n")),
        "{stdout}"
    );
    assert!(
        stdout.contains("warning: the tokenizer for `m2` could not be loaded (")
            && stdout.contains("`m2_tokenizer` is None"),
        "{stdout}"
    );
}

#[test]
fn peft_merged_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let adapter = |var: &str, dir: &str| {
        let mut h = handle("tiny-lora", &tiny_path(dir), var);
        h.is_peft = true;
        h.base_model = Some("tiny-llama".into());
        h.base_model_path = Some(tiny_path("base"));
        h
    };
    let models = [
        ModelSpec::from(handle("tiny-llama", &tiny_path("base"), "base")),
        ModelSpec::new(adapter("merged", "lora"), false),
        ModelSpec::new(adapter("kept", "lora_tok"), true),
    ];
    let ws = WorkspaceConfig::default();
    let inst = install(
        &ws,
        &tmp.path().join("libs"),
        &tmp.path().join("ws"),
        tmp.path(),
    )
    .unwrap();
    let mut code = init_code(&ws, &inst, &models, InitOptions::default());
    code.push_str(
        r#"
import peft, torch
assert not isinstance(merged, peft.PeftModel), type(merged)
assert type(merged).__name__ == "LlamaForCausalLM", type(merged)
assert isinstance(kept, peft.PeftModel), type(kept)
assert not kept.training and not merged.training
ids = base_tokenizer("hello world", return_tensors="pt")
with torch.no_grad():
    lb = base(**ids).logits
    lm = merged(**ids).logits
    lk = kept(**ids).logits
    with kept.disable_adapter():
        lk0 = kept(**ids).logits
assert torch.allclose(lm, lk, atol=1e-4), "merged and kept adapters disagree"
assert not torch.allclose(lb, lm, atol=1e-4), "the adapter changed nothing"
assert torch.allclose(lk0, lb, atol=1e-5), "disable_adapter is not the base"
# lora_tok has its own tokenizer (one extra token); lora has none, so the base's is used.
assert len(kept_tokenizer) == len(base_tokenizer) + 1, (len(kept_tokenizer), len(base_tokenizer))
assert len(merged_tokenizer) == len(base_tokenizer)
print("CHECKS OK")
"#,
    );
    let out = run_script(tmp.path(), &code);
    check(&out, "PEFT init code");
    assert!(text(&out.stdout).contains("CHECKS OK"));
}

#[test]
fn hidden_models_are_masked() {
    let tmp = tempfile::tempdir().unwrap();
    let mut plain = handle("hidden-model-0", &tiny_path("base"), "model");
    plain.hidden = true;
    let mut adapter = handle("hidden-model-1", &tiny_path("lora"), "secret");
    adapter.hidden = true;
    adapter.is_peft = true;
    adapter.base_model = Some("hidden-model-1-base".into());
    adapter.base_model_path = Some(tiny_path("base"));
    let mut notok = handle("hidden-model-2", &tiny_path("base_notok"), "notok");
    notok.hidden = true;
    let mut broken = handle("hidden-model-3", &tiny_path("missing"), "broken");
    broken.hidden = true;
    let models = [
        ModelSpec::from(plain),
        ModelSpec::new(adapter, true),
        ModelSpec::from(notok),
    ];
    let ws = WorkspaceConfig::default();
    let inst = install(
        &ws,
        &tmp.path().join("libs"),
        &tmp.path().join("ws"),
        tmp.path(),
    )
    .unwrap();
    let mut code = init_code(&ws, &inst, &models, InitOptions::default());
    code.push_str(
        r#"
print("MODEL", model.config._name_or_path, model.name_or_path, tokenizer.name_or_path)
print("SECRET", secret.config._name_or_path, secret.name_or_path,
      secret.get_base_model().name_or_path, secret.peft_config["default"].base_model_name_or_path,
      secret_tokenizer.name_or_path)
print("NOTOK", notok.config._name_or_path, notok_tokenizer)
print(repr(tokenizer))
print(tokenizer.init_kwargs)
print(model.config)
print(secret.peft_config)
"#,
    );
    // Loading a hidden model that fails says so without details.
    code.push_str(&init_code(
        &WorkspaceConfig::default(),
        &inst,
        &[ModelSpec::from(broken)],
        InitOptions::default(),
    ));
    let out = run_script(tmp.path(), &code);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        !out.status.success(),
        "the broken model should fail:\n{stdout}"
    );
    assert!(
        stdout.contains("MODEL hidden-model-0 hidden-model-0 hidden-model-0\n"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(
            "SECRET hidden-model-1 hidden-model-1 hidden-model-1 hidden-model-1-base \
                 hidden-model-1\n"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("NOTOK hidden-model-2 None\n"), "{stdout}");
    assert!(
        stdout.contains(
            "warning: the tokenizer for `notok` could not be loaded (ValueError); \
                 `notok_tokenizer` is None"
        ),
        "{stdout}"
    );
    assert!(
        stderr.contains(
            "RuntimeError: loading hidden-model-3 into `broken` failed (OSError); the \
                 details are withheld because the model is hidden"
        ),
        "{stderr}"
    );
    let root = tiny().display().to_string();
    for (name, s) in [("stdout", &stdout), ("stderr", &stderr)] {
        // The failing line of the script quotes the call; that is the script's own
        // source, which the kernel runs hidden. Nothing else may name the folder.
        let leaks: Vec<&str> = s
            .lines()
            .filter(|l| l.contains(&root) && !l.contains("_seer_load_model("))
            .collect();
        assert!(
            leaks.is_empty(),
            "{name} names the model folder: {leaks:#?}\n{s}"
        );
    }
}

#[test]
fn broken_library_fails_at_start_with_its_traceback() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(
        tmp.path().join("broken.py"),
        "x = 1\nraise ValueError('boom from broken')\n",
    )
    .unwrap();
    let ws = WorkspaceConfig {
        libraries: vec![Library::from_file(tmp.path(), "broken.py").unwrap()],
        custom_init_code: Some("print('init code ran')".into()),
        ..Default::default()
    };
    let inst = install(
        &ws,
        &tmp.path().join("libs"),
        &tmp.path().join("ws"),
        tmp.path(),
    )
    .unwrap();
    let out = run_script(
        tmp.path(),
        &init_code(&ws, &inst, &[], InitOptions::default()),
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("ValueError: boom from broken"), "{stderr}");
    assert!(stderr.contains("broken.py\", line 2"), "{stderr}");
    // The init code runs before seer imports the libraries.
    assert!(text(&out.stdout).contains("init code ran"));

    // A broken custom_init_code shows its own line in the traceback.
    let ws = WorkspaceConfig {
        custom_init_code: Some("a = 1\nb = a / 0\n".into()),
        ..Default::default()
    };
    let inst = install(
        &ws,
        &tmp.path().join("libs"),
        &tmp.path().join("ws"),
        tmp.path(),
    )
    .unwrap();
    assert_eq!(inst.removed_modules, ["broken"]);
    // (Source lines come from linecache, which IPython's and the traceback module's
    // formatting read; the kernel driver uses the latter.)
    let mut k = Kernel::start(tmp.path());
    let (ok, out) = k.run_cell(&init_code(&ws, &inst, &[], InitOptions::default()));
    assert!(!ok);
    assert!(
        out.contains("File \"<custom_init_code>\", line 2") && out.contains("b = a / 0"),
        "{out}"
    );
}

/// A [`fixture`] `kernel_driver.py` process: cells in, output out.
struct Kernel {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Kernel {
    fn start(cwd: &Path) -> Kernel {
        let mut child = offline(Command::new(python()).arg(fixture("kernel_driver.py")))
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Kernel {
            child,
            stdin,
            stdout,
        }
    }

    /// Runs a cell: whether it succeeded, and its output (with the traceback if not).
    fn run_cell(&mut self, code: &str) -> (bool, String) {
        writeln!(self.stdin, "{}", serde_json::to_string(code).unwrap()).unwrap();
        self.stdin.flush().unwrap();
        let mut output = String::new();
        loop {
            let mut line = String::new();
            assert!(self.stdout.read_line(&mut line).unwrap() > 0, "{output}");
            match line.trim_end() {
                "<<seer-cell-done ok>>" => return (true, output),
                "<<seer-cell-done error>>" => return (false, output),
                _ => output.push_str(&line),
            }
        }
    }

    /// Runs a cell that must succeed; its output.
    fn run(&mut self, code: &str) -> String {
        let (ok, output) = self.run_cell(code);
        assert!(ok, "cell failed:\n{code}\n---\n{output}");
        output
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn reinstall_then_reload() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("script");
    let put = |rel: &str, text: &str| {
        let p = base.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    };
    put("mylib.py", "def f():\n    return 1\n");
    put("pkg/__init__.py", "from .sub import g\n");
    put("pkg/sub.py", "def g():\n    return 'a'\n");
    let mut ws = WorkspaceConfig {
        libraries: vec![
            Library::from_file(&base, "mylib.py").unwrap(),
            Library::from_directory(&base, "pkg").unwrap(),
        ],
        ..Default::default()
    };
    let libs = tmp.path().join("libs");
    let ws_dir = tmp.path().join("ws");
    let first = install(&ws, &libs, &ws_dir, &base).unwrap();
    assert_eq!(first.changed_modules, ["mylib", "pkg"]);

    let mut k = Kernel::start(tmp.path());
    k.run(&init_code(&ws, &first, &[], InitOptions::default()));
    assert_eq!(k.run("print(mylib.f(), pkg.g())"), "1 a\n");

    // Same sizes, same second: only fresh bytecode handling makes this reload right.
    put("mylib.py", "def f():\n    return 2\n");
    put("pkg/sub.py", "def g():\n    return 'b'\n");
    put("newlib.py", "N = 'new'\n");
    ws.libraries
        .push(Library::from_file(&base, "newlib.py").unwrap());
    let second = install(&ws, &libs, &ws_dir, &base).unwrap();
    assert_eq!(second.changed_modules, ["mylib", "pkg", "newlib"]);
    let out = k.run(&reload_code(&second.changed_modules));
    assert_eq!(
        out,
        "seer: reloaded mylib\nseer: reloaded pkg\nseer: reloaded newlib\n"
    );
    assert_eq!(
        k.run("print(mylib.f(), pkg.g(), pkg.sub.g(), newlib.N)"),
        "2 b b new\n"
    );
    let third = install(&ws, &libs, &ws_dir, &base).unwrap();
    assert!(third.changed_modules.is_empty());
    assert_eq!(reload_code(&third.changed_modules), "");
}
