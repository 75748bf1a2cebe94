//! Shared helpers for the integration tests: run the real `seer` binary against scripts
//! written into a temp dir, with its own state dir and a cache shared by all tests.
#![allow(dead_code)]

pub mod fake_anthropic;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The API key agent tests give seer; it must appear in no output.
pub const TEST_KEY: &str = "sk-test-key-0123456789";

pub struct Env {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
}

/// The cache (uv, Python envs) shared by every test, so envs are built once per machine.
pub fn shared_cache() -> PathBuf {
    seer::testenv::shared_cache()
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("state");
        Self { dir, home }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, content).expect("write");
        p
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_seer"));
        c.current_dir(self.dir.path())
            .env("SEER_HOME", &self.home)
            .env("SEER_CACHE_DIR", shared_cache())
            .env_remove("RUST_LOG")
            .env("HF_HUB_OFFLINE", "1");
        c
    }

    /// Writes `main.rhai` and runs it with an Anthropic key ([`TEST_KEY`]) and `url` (a
    /// loopback fake) as `ARGS[0]`; returns the output and its stdout and stderr.
    pub fn run_agent_script(&self, code: &str, url: &str) -> (Output, String, String) {
        self.write("main.rhai", code);
        let out = self
            .cmd()
            .env("ANTHROPIC_API_KEY", TEST_KEY)
            .args(["run", "main.rhai", "--", url])
            .output()
            .expect("run seer");
        let (o, e) = text(&out);
        (out, o, e)
    }

    /// `seer run main.rhai -- args` after writing `main.rhai`.
    pub fn run(&self, script: &str, args: &[&str]) -> Output {
        self.write("main.rhai", script);
        let mut c = self.cmd();
        c.args(["run", "main.rhai", "--"]).args(args);
        c.output().expect("run seer")
    }
}

pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

/// Asserts success and returns stdout.
pub fn ok(o: &Output) -> String {
    let (out, err) = text(o);
    assert!(
        o.status.success(),
        "seer failed: {:?}\n--- stdout\n{out}\n--- stderr\n{err}",
        o.status
    );
    out
}

/// Pids of running processes whose command line contains `needle`.
pub fn pids_matching(needle: &str) -> Vec<i32> {
    let mut out = vec![];
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rfind(')')
            .map(|i| stat[i + 2..].starts_with('Z'))
            .unwrap_or(false);
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if !zombie && cmd.contains(needle) {
            out.push(pid);
        }
    }
    out
}

/// The test Python (`tests/requirements.txt`, installed by `tests/setup.sh`): nbformat,
/// the official `mcp`, `anthropic` and `openai` SDKs, torch, transformers, peft, pytest.
pub fn test_python() -> PathBuf {
    seer::testenv::python()
}

/// uv, through seer's own bootstrap into the shared test cache.
pub fn which_uv() -> PathBuf {
    seer::testenv::uv()
}

/// `models/` in the test's folder: a link to the tiny random models made once per machine
/// (`base/`, `base_notok/`, `lora/`, `lora_tok/`; see `tests/fixtures/make_tiny_model.py`).
pub fn link_tiny_models(env: &Env) -> PathBuf {
    let link = env.path().join("models");
    std::os::unix::fs::symlink(seer::testenv::tiny_models(), &link).expect("link the tiny models");
    link
}

/// Validates every .ipynb under `dir` with Python's `nbformat.validate`; returns how many.
pub fn validate_notebooks(dir: &Path) -> usize {
    let mut found = vec![];
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out)
            } else if p.extension().is_some_and(|x| x == "ipynb") {
                out.push(p)
            }
        }
    }
    walk(dir, &mut found);
    for nb in &found {
        let out = Command::new(test_python())
            .args([
                "-c",
                "import nbformat, sys; nbformat.validate(nbformat.read(sys.argv[1], as_version=4))",
            ])
            .arg(nb)
            .output()
            .expect("python");
        assert!(
            out.status.success(),
            "{} is not valid nbformat: {}",
            nb.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    found.len()
}
