//! What the test suite needs from the machine, found where `tests/setup.sh` put it.
//!
//! The README's test line runs `tests/setup.sh` (Debian packages, uv, the pinned Python and
//! npm packages) and then `cargo test`. Unit tests, integration tests and benches all find
//! those installs through this module, so no test installs anything on its own and none
//! skips: a missing prerequisite is a panic that names the setup script.
//!
//! Layout, under the cargo target dir (`$CARGO_TARGET_DIR`, else `target/` beside
//! `Cargo.toml`):
//! - `tmp/seer-cache/` — the seer cache every test shares (`SEER_CACHE_DIR`); uv lives in
//!   `tmp/seer-cache/uv/bin/uv`, the layout of seer's own uv bootstrap ([`uv`] goes through
//!   that bootstrap);
//! - `test-env/python/` — a venv with `tests/requirements.txt`;
//! - `test-env/npm/` — `tests/npm/package.json` installed with `npm ci`;
//! - `test-env/browser/` — `tests/browser/package.json` (playwright-core) likewise.
//!
//! Each install keeps a copy of the file it was made from; a copy that differs from the
//! file in the tree means the install is stale, and the tests say to rerun the script.
//!
//! Test support, not part of seer's API: hidden from the docs.

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

/// The script that installs everything the tests need.
pub const SETUP: &str = "tests/setup.sh";

/// The pinned Python packages of the test venv.
pub const REQUIREMENTS: &str = include_str!("../tests/requirements.txt");

/// The pinned npm packages (their lock file decides what is installed).
pub const NPM_LOCK: &str = include_str!("../tests/npm/package-lock.json");

/// The pinned npm packages of the browser tests (playwright-core).
pub const BROWSER_LOCK: &str = include_str!("../tests/browser/package-lock.json");

/// The cargo target dir the tests were built in.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)
            }
        }
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
    }
}

/// The seer cache (uv, Python envs) shared by every test, so envs are built once per machine.
/// Links in its path are resolved: bubblewrap cannot mount over a path that goes through a
/// link (a target dir whose `tmp` links to a shared one).
pub fn shared_cache() -> PathBuf {
    let cache = target_dir().join("tmp/seer-cache");
    std::fs::canonicalize(&cache).unwrap_or(cache)
}

/// Where `tests/setup.sh` installs the pinned Python and npm packages.
pub fn root() -> PathBuf {
    target_dir().join("test-env")
}

fn missing(what: &str, detail: &str) -> ! {
    panic!(
        "{what} is missing or out of date ({detail}): run `{SETUP}` (the README's test line runs it before `cargo test`)"
    )
}

/// Checks that `install` was made from `expected` (its stamp file holds a copy).
fn check_stamp(stamp: &Path, expected: &str, what: &str) {
    match std::fs::read_to_string(stamp) {
        Ok(s) if s == expected => {}
        Ok(_) => missing(what, &format!("{} differs from the tree", stamp.display())),
        Err(_) => missing(what, &format!("no {}", stamp.display())),
    }
}

/// uv, through seer's own bootstrap into [`shared_cache`] (`tests/setup.sh` puts it there
/// first; when it is absent, seer installs it from PyPI as it would for a user).
pub fn uv() -> PathBuf {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("starting a tokio runtime to find uv: {e}"));
    let cache = shared_cache();
    runtime
        .block_on(crate::sandbox::pyenv::find_uv_in(
            &cache,
            &CancellationToken::new(),
        ))
        .unwrap_or_else(|e| missing("uv", &format!("{e:#}")))
}

/// The test venv's python, with every package of `tests/requirements.txt` (nbformat, the
/// official `mcp`, `anthropic` and `openai` SDKs, torch, transformers, peft, pytest, …).
pub fn python() -> PathBuf {
    let venv = root().join("python");
    let python = venv.join("bin/python");
    if !python.exists() {
        missing("the test Python env", &format!("no {}", python.display()));
    }
    check_stamp(
        &venv.join("requirements.txt"),
        REQUIREMENTS,
        "the test Python env",
    );
    python
}

/// The folder holding `node_modules` of the pinned npm packages.
pub fn npm_dir() -> PathBuf {
    let dir = root().join("npm");
    if !dir.join("node_modules").is_dir() {
        missing(
            "the test npm packages",
            &format!("no {}", dir.join("node_modules").display()),
        );
    }
    check_stamp(
        &dir.join("installed-from/package-lock.json"),
        NPM_LOCK,
        "the test npm packages",
    );
    dir
}

/// The `node_modules` folder with playwright-core (`tests/browser`), for the browser tests.
pub fn browser_modules() -> PathBuf {
    let dir = root().join("browser");
    let modules = dir.join("node_modules");
    if !modules.join("playwright-core").is_dir() {
        missing(
            "the browser tests' npm packages",
            &format!("no {}", modules.join("playwright-core").display()),
        );
    }
    check_stamp(
        &dir.join("installed-from/package-lock.json"),
        BROWSER_LOCK,
        "the browser tests' npm packages",
    );
    modules
}

/// Debian's chromium (`tests/setup.sh` installs it), for the live view's browser tests.
pub fn chromium() -> PathBuf {
    let bin = PathBuf::from("/usr/bin/chromium");
    if !bin.is_file() {
        missing("chromium", "no /usr/bin/chromium");
    }
    bin
}

/// Where browser tests and benches save their screenshots (`<target>/view-screenshots`).
pub fn screenshots() -> PathBuf {
    let dir = target_dir().join("view-screenshots");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// A test fixture file (`tests/fixtures/<name>`).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Tiny random models made offline by `tests/fixtures/make_tiny_model.py` with the test
/// Python (`base/`, `base_notok/`, `lora/`, `lora_tok/`: see the script), once per target
/// dir. The script writes `.complete` last; a file lock keeps concurrent test processes
/// from building them twice (the adapters record the absolute path of `base/`, so the
/// models are built in place, not renamed into it).
pub fn tiny_models() -> PathBuf {
    let dir = target_dir().join("tmp/tiny-models");
    if dir.join(".complete").exists() {
        return dir;
    }
    let tmp = target_dir().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap_or_else(|e| panic!("creating {}: {e}", tmp.display()));
    let lock = std::fs::File::create(tmp.join("tiny-models.lock"))
        .unwrap_or_else(|e| panic!("creating the tiny models' lock file: {e}"));
    lock.lock()
        .unwrap_or_else(|e| panic!("locking the tiny models' lock file: {e}"));
    if dir.join(".complete").exists() {
        return dir;
    }
    let out = std::process::Command::new(python())
        .arg(fixture("make_tiny_model.py"))
        .arg(&dir)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap_or_else(|e| panic!("running make_tiny_model.py: {e}"));
    assert!(
        out.status.success(),
        "make_tiny_model.py failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}
