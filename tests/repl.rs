//! `seer repl` driven in a real pseudo-terminal (tmux, on a private socket), plus
//! `seer docs` and `seer definitions`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Env, ok, pids_matching, shared_cache};

/// A tmux server of its own running `seer repl`; killed on drop, also when a test fails.
struct Term {
    socket: String,
}

impl Term {
    fn start(env: &Env, tag: &str) -> Self {
        let socket = format!("seer-repl-{tag}-{}", std::process::id());
        let cmd = format!(
            "env SEER_HOME={} SEER_CACHE_DIR={} HF_HUB_OFFLINE=1 RUST_LOG= {} repl",
            env.home.display(),
            shared_cache().display(),
            env!("CARGO_BIN_EXE_seer"),
        );
        let st = Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-s", "repl", "-x", "200", "-y", "50", "-c"])
            .arg(env.path())
            .arg(cmd)
            .status()
            .expect("tmux (apt-get install tmux)");
        assert!(st.success(), "tmux new-session failed");
        let t = Term { socket };
        t.wait_for("the prompt", Duration::from_secs(30), |s| {
            s.contains("seer> ")
        });
        t
    }

    fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    /// Types text literally (no key names, no `;` command separator).
    fn type_text(&self, text: &str) {
        // tmux reads an argument ending in `;` as a command separator: escape it.
        let text = match text.strip_suffix(';') {
            Some(t) => format!("{t}\\;"),
            None => text.to_string(),
        };
        let st = self
            .tmux()
            .args(["send-keys", "-t", "repl", "-l", "--", &text])
            .status()
            .expect("tmux send-keys");
        assert!(st.success());
    }

    /// Presses keys by name: `Enter`, `Tab`, `C-c`, `C-d`.
    fn keys(&self, keys: &[&str]) {
        let st = self
            .tmux()
            .args(["send-keys", "-t", "repl"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(st.success());
    }

    fn line(&self, text: &str) {
        self.type_text(text);
        self.keys(&["Enter"]);
    }

    /// A whole entry: typed, run, and back at the prompt (within `timeout`).
    fn entry(&self, text: &str, timeout: Duration) {
        let before = self.screen().matches("seer> ").count();
        self.line(text);
        self.wait_count("seer> ", before + 1, timeout);
    }

    /// The whole screen and scrollback, wrapped lines joined.
    fn screen(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-J", "-S", "-2000", "-t", "repl"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn wait_for(&self, what: &str, timeout: Duration, f: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if f(&s) {
                return s;
            }
            if start.elapsed() > timeout {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for `text` to appear `n` times on the screen.
    fn wait_count(&self, text: &str, n: usize, timeout: Duration) -> String {
        self.wait_for(&format!("{n} x {text:?}"), timeout, |s| {
            s.matches(text).count() >= n
        })
    }

    fn alive(&self) -> bool {
        self.tmux()
            .args(["has-session", "-t", "repl"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").output();
    }
}

#[test]
fn multi_line_entry_state_across_lines_completion_and_help() {
    let env = Env::new();
    env.write(
        "util.rhai",
        "/// Doubles a number.\nfn double(x) { x * 2 }\nfn triple(x) { x * 3 }\n",
    );
    let t = Term::start(&env, "state");

    // A fn over several lines: Enter inside the braces continues the entry.
    t.line("fn add(a, b) {");
    t.line("  let s = \"}\"; // a brace in a string and a comment: {");
    t.line("  a + b");
    t.line("}");
    // The fn defined above is usable on the next entry.
    t.entry("add(40, 2)", Duration::from_secs(10));
    t.wait_for("add's result", Duration::from_secs(10), |s| {
        s.lines().any(|l| l.trim() == "42")
    });

    // An import alias is kept for later entries.
    t.entry("import \"util\" as u;", Duration::from_secs(10));
    t.entry("let x = u::triple(5);", Duration::from_secs(10));
    t.line("x + 1");
    t.wait_for("the import's result", Duration::from_secs(10), |s| {
        s.lines().any(|l| l.trim() == "16")
    });

    // Completion: a registered function, a module member, a variable's method.
    t.type_text("run_ag");
    t.keys(&["Tab"]);
    t.wait_for("run_agent completed", Duration::from_secs(5), |s| {
        s.contains("seer> run_agent")
    });
    t.keys(&["C-c"]);
    t.type_text("u::dou");
    t.keys(&["Tab"]);
    t.type_text("(4)");
    t.keys(&["Enter"]);
    t.wait_for("the completed module call", Duration::from_secs(5), |s| {
        s.contains("seer> u::double(4)") && s.lines().any(|l| l.trim() == "8")
    });

    // Values print readably; errors print with a position and the REPL goes on.
    t.line("#{ name: \"probe\", layers: [1, 2, 3] }");
    t.wait_for("a map", Duration::from_secs(5), |s| {
        s.contains("#{ layers: [1, 2, 3], name: \"probe\" }")
    });
    t.line("let y = nope + 1;");
    t.wait_for("an error with a position", Duration::from_secs(5), |s| {
        s.contains("error: input:1:9: Variable not found: nope")
    });
    t.line("add(1, 1)");
    t.wait_for("the REPL after an error", Duration::from_secs(5), |s| {
        s.lines().any(|l| l.trim() == "2")
    });

    t.line(":help run_agent");
    t.wait_for("help", Duration::from_secs(5), |s| {
        s.contains("run_agent(cfg: map") && s.contains("Runs an LLM tool loop")
    });
    t.line(":quit");
    let start = Instant::now();
    while t.alive() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!t.alive(), "the REPL did not quit on :quit");
    assert!(
        env.home.join("repl_history").is_file(),
        "no history file in the state dir"
    );
}

#[test]
fn load_reload_and_reset() {
    let env = Env::new();
    env.write("lib.rhai", "let counter = 10;\nfn bump(n) { n + 1 }\n");
    let t = Term::start(&env, "load");
    t.entry(":load lib.rhai", Duration::from_secs(10));
    t.wait_for("loaded", Duration::from_secs(5), |s| {
        s.contains("loaded lib.rhai")
    });
    t.line("bump(counter)");
    t.wait_for("state from the file", Duration::from_secs(5), |s| {
        s.lines().any(|l| l.trim() == "11")
    });
    env.write("lib.rhai", "let counter = 20;\nfn bump(n) { n + 2 }\n");
    t.line(":reload");
    t.wait_count("loaded lib.rhai", 2, Duration::from_secs(5));
    t.line("bump(counter)");
    t.wait_for(
        "state from the reloaded file",
        Duration::from_secs(5),
        |s| s.lines().any(|l| l.trim() == "22"),
    );
    t.entry(":reset", Duration::from_secs(10));
    t.line("counter");
    t.wait_for("a fresh scope", Duration::from_secs(5), |s| {
        s.contains("Variable not found: counter")
    });
}

#[test]
fn ctrl_c_cancels_a_long_exec_and_ctrl_d_ends_the_sandboxes() {
    let env = Env::new();
    let t = Term::start(&env, "cancel");
    // The first start may build the uv env for the shared cache.
    t.line("let sb = Sandbox().start(); sb.id");
    t.wait_for("the sandbox", Duration::from_secs(600), |s| {
        s.lines().any(|l| l.trim().starts_with("sb-"))
    });
    // A process that outlives its exec: Ctrl-D must end it with the sandbox.
    t.line("sb.exec(\"(sleep 41777 &)\"); \"bg started\"");
    t.wait_count("bg started", 2, Duration::from_secs(30));
    assert_eq!(pids_matching("sleep 41777").len(), 1, "{}", t.screen());

    t.line("sb.exec(\"sleep 41555\")");
    let start = Instant::now();
    while pids_matching("sleep 41555").is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the exec did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent = Instant::now();
    t.keys(&["C-c"]);
    t.wait_for("cancelled", Duration::from_secs(5), |s| {
        s.contains("cancelled")
    });
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(3), "cancelling took {took:?}");
    assert!(
        pids_matching("sleep 41555").is_empty(),
        "the cancelled command is still running"
    );

    // The sandbox is still there and usable.
    t.line("sb.exec(\"echo still-$((40 + 2))\")");
    t.wait_for("the sandbox after Ctrl-C", Duration::from_secs(20), |s| {
        s.contains("still-42")
    });
    t.line(":sandboxes");
    t.wait_for(":sandboxes", Duration::from_secs(5), |s| {
        s.lines()
            .any(|l| l.starts_with("sb-") && l.contains("local"))
    });
    // A loop in the script itself stops too (the progress hook).
    t.line("let n = 0; loop { n += 1; }");
    std::thread::sleep(Duration::from_millis(300));
    t.keys(&["C-c"]);
    t.wait_count("cancelled", 2, Duration::from_secs(5));
    t.line("sb.is_running");
    t.wait_for("the sandbox still running", Duration::from_secs(5), |s| {
        s.lines().any(|l| l.trim() == "true")
    });

    t.keys(&["C-d"]);
    let start = Instant::now();
    while (t.alive() || !pids_matching("sleep 41777").is_empty())
        && start.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!t.alive(), "the REPL did not quit on Ctrl-D");
    assert!(
        pids_matching("sleep 41777").is_empty(),
        "Ctrl-D left a sandbox process behind"
    );
}

#[test]
fn docs_lists_the_api() {
    let env = Env::new();
    let out = ok(&env.cmd().arg("docs").output().expect("seer docs"));
    for needle in [
        "# seer API reference",
        "## Sandboxes",
        "`Sandbox(cfg: map) -> Sandbox`",
        "`sb.exec(cmd: string) -> string`",
        "`Sandbox::from_id(id: string) -> Sandbox`",
        "### `run_agent`",
        "Runs an LLM tool loop",
        "`s.exec(code: string, opts: map)`",
        "## Helpers",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
}

#[test]
fn definitions_are_written_and_parse_as_rhai_definitions() {
    let env = Env::new();
    let dir = env.path().join("defs");
    ok(&env
        .cmd()
        .args(["definitions", "defs"])
        .output()
        .expect("seer definitions"));
    let seer = std::fs::read_to_string(dir.join("seer.d.rhai")).expect("seer.d.rhai");
    assert!(seer.starts_with("module static;"));
    for needle in [
        "fn run_agent(cfg: map, callback: Fn) -> map;",
        "fn exec(this: Sandbox, cmd: string) -> string;",
        "fn get id(this: Sandbox) -> string;",
        "/// Runs an LLM tool loop",
    ] {
        assert!(seer.contains(needle), "missing {needle:?} in:\n{seer}");
    }
    let sandbox = std::fs::read_to_string(dir.join("Sandbox.d.rhai")).expect("Sandbox.d.rhai");
    assert!(sandbox.starts_with("module Sandbox;"));
    assert!(sandbox.contains("fn from_id(id: string) -> Sandbox;"));
    // Rhai's standard library comes along, so the language server knows `len`, `push`…
    assert!(dir.join("__static__.d.rhai").is_file());
    assert!(dir.join("__builtin__.d.rhai").is_file());
    // Every declaration is well formed: a doc line, a header, or `fn …;`.
    for (name, text) in [("seer.d.rhai", &seer), ("Sandbox.d.rhai", &sandbox)] {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                line.starts_with("///")
                    || line.starts_with("module ")
                    || (line.starts_with("fn ") && line.ends_with(';') && line.contains('(')),
                "{name}: malformed line {line:?}"
            );
        }
    }
}
