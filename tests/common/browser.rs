//! A headless chromium (Debian's) that a test starts and ends by its process group, driven
//! by `tests/fixtures/view_browser.cjs` (playwright-core from `tests/browser`, over CDP).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::time::Duration;

use serde_json::Value;

pub struct Chromium {
    child: Child,
    /// The DevTools websocket URL.
    pub ws: String,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Starts chromium headless with a fresh profile and waits for its DevTools URL.
    pub fn start() -> Self {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new(seer::testenv::chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-extensions",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start chromium");
        let err = BufReader::new(child.stderr.take().expect("stderr"));
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for l in err.lines().map_while(Result::ok) {
                if let Some(url) = l.split("DevTools listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let ws = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("chromium printed no DevTools URL");
        Self {
            child,
            ws,
            _profile: profile,
        }
    }

    /// Runs a scenario of `view_browser.cjs` with `args`; returns what it printed (JSON).
    pub fn run(&self, scenario: &str, args: Value) -> Value {
        let modules = seer::testenv::browser_modules();
        let out = Command::new("node")
            .arg(seer::testenv::fixture("view_browser.cjs"))
            .arg(&modules)
            .arg(&self.ws)
            .arg(scenario)
            .arg(args.to_string())
            .output()
            .expect("run node");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "view_browser.cjs {scenario} failed: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // Its own process group: the renderers and helpers end with it.
        let pgid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}
