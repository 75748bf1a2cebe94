//! `seer` in a real pseudo-terminal: a tmux server of the test's own (private socket, no
//! user config), driven by keys and read back from its screen.

use std::process::Command;
use std::time::{Duration, Instant};

use super::{Env, shared_cache};

/// A tmux server running one `seer` command in a 200x50 terminal; killed on drop, also
/// when a test fails.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// Runs `seer <args>` in `env`'s folder with its state dir and the shared cache, plus
    /// the environment variables `vars`.
    pub fn start(env: &Env, vars: &[(&str, &str)], args: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos();
        let socket = format!("seer-test-{}-{nanos}", std::process::id());
        let vars: String = vars.iter().map(|(k, v)| format!(" {k}={v}")).collect();
        let cmd = format!(
            "env SEER_HOME={} SEER_CACHE_DIR={} HF_HUB_OFFLINE=1 SEER_VIEW=off RUST_LOG={vars} {} {args}",
            env.home.display(),
            shared_cache().display(),
            env!("CARGO_BIN_EXE_seer"),
        );
        let st = Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-s", "seer", "-x", "200", "-y", "50", "-c"])
            .arg(env.path())
            .arg(cmd)
            .status()
            .expect("tmux (tests/setup.sh installs it)");
        assert!(st.success(), "tmux new-session failed");
        Self { socket }
    }

    /// Keeps the pane (and its screen) after the command exits.
    pub fn keep_after_exit(&self) {
        let st = self
            .tmux()
            .args(["set-option", "-g", "remain-on-exit", "on"])
            .status()
            .expect("tmux set-option");
        assert!(st.success());
    }

    fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    /// Types text literally (no key names, no `;` command separator).
    pub fn type_text(&self, text: &str) {
        // tmux reads an argument ending in `;` as a command separator: escape it.
        let text = match text.strip_suffix(';') {
            Some(t) => format!("{t}\\;"),
            None => text.to_string(),
        };
        let st = self
            .tmux()
            .args(["send-keys", "-t", "seer", "-l", "--", &text])
            .status()
            .expect("tmux send-keys");
        assert!(st.success());
    }

    /// Presses keys by name: `Enter`, `Tab`, `Escape`, `C-c`, `C-d`.
    pub fn keys(&self, keys: &[&str]) {
        let st = self
            .tmux()
            .args(["send-keys", "-t", "seer"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(st.success());
    }

    /// Types `text` and presses Enter.
    pub fn line(&self, text: &str) {
        self.type_text(text);
        self.keys(&["Enter"]);
    }

    /// The whole screen and scrollback, wrapped lines joined.
    pub fn screen(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-J", "-S", "-2000", "-t", "seer"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// The screen's lines without trailing blanks, the blank lines at the end and the
    /// "Pane is dead" line tmux adds after the command exits (with [`Tmux::keep_after_exit`])
    /// dropped.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .screen()
            .lines()
            .map(|l| l.trim_end().to_string())
            .collect();
        loop {
            match lines.last() {
                Some(l) if l.is_empty() || l.starts_with("Pane is dead") => {
                    lines.pop();
                }
                _ => return lines,
            }
        }
    }

    /// Asserts that the whole screen is `want` (see [`Tmux::lines`]), waiting up to 5 s
    /// for it to show.
    pub fn assert_lines(&self, want: &[String]) {
        let start = Instant::now();
        while self.lines() != want && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(self.lines(), want);
    }

    /// Waits until `f` holds for the screen; returns that screen.
    pub fn wait_for(&self, what: &str, timeout: Duration, f: impl Fn(&str) -> bool) -> String {
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

    /// Waits for `text` to appear `n` times on the screen; returns how long that took.
    pub fn wait_count(&self, text: &str, n: usize, timeout: Duration) -> Duration {
        let start = Instant::now();
        self.wait_for(&format!("{n} x {text:?}"), timeout, |s| {
            s.matches(text).count() >= n
        });
        start.elapsed()
    }

    /// Whether the command still runs (without [`Tmux::keep_after_exit`]).
    pub fn alive(&self) -> bool {
        self.tmux()
            .args(["has-session", "-t", "seer"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").output();
    }
}
