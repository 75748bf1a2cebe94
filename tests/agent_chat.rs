//! `run_agent_interactive` driven in a real pseudo-terminal (tmux): the agent starts a
//! long notebook cell, Esc interrupts that turn (not the chat), a later message gets an
//! answer, Ctrl-C interrupts another turn, Ctrl-D ends the chat and the script goes on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fake_anthropic::{FakeAnthropic, Reply, text_turn, tool_turn};
use common::{Env, pids_matching, shared_cache};
use serde_json::{Value, json};

/// A tmux server of our own, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(cmd: &str) -> Self {
        let socket = format!("seer-test-{}", uuid_like());
        let st = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "new-session",
                "-d",
                "-x",
                "200",
                "-y",
                "50",
                cmd,
            ])
            .status()
            .expect("tmux");
        assert!(st.success());
        let t = Self { socket };
        t.tmux(&["set-option", "-g", "remain-on-exit", "on"]);
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-S", "-200"])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Waits until `what` appears `times` times on the screen.
    fn wait_for(&self, what: &str, times: usize, secs: u64) -> Duration {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(secs) {
            if self.screen().matches(what).count() >= times {
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{what:?} did not appear {times}x in {secs}s:\n{}",
            self.screen()
        );
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// The last text the user sent.
fn last_user_text(body: &Value) -> String {
    body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_array())
        .and_then(|c| c.iter().rev().find(|b| b["type"] == "text"))
        .and_then(|b| b["text"].as_str())
        .unwrap_or("")
        .to_string()
}

#[test]
fn esc_and_ctrl_c_interrupt_a_turn_not_the_chat() {
    let fake = FakeAnthropic::start_with(Arc::new(|_, body: &Value| {
        let last = last_user_text(body);
        if last.contains("slow") {
            Reply::Sse(tool_turn(
                "Sleeping.",
                &[(
                    "toolu_sleep",
                    "notebooks__execute_code",
                    json!({"code": "import time; time.sleep(60)"}),
                )],
                10,
                5,
            ))
        } else {
            Reply::Sse(text_turn(&format!("you said: {last}"), 10, 5))
        }
    }));
    let env = Env::new();
    env.write(
        "main.rhai",
        r#"
let s = create_notebook_session(Sandbox(#{ execution_mode: "notebook" }).start(), (), #{});
let r = run_agent_interactive(#{ mcp_config: s.mcp_config, base_url: ARGS[0], name: "chat" });
print(`chat ended after ${r.turns} turns, stop: ${r.stop_reason}`);
let check = s.exec("print('kernel free')");
print(check.text);
"#,
    );
    let cmd = format!(
        "cd {} && env SEER_HOME={} SEER_CACHE_DIR={} HF_HUB_OFFLINE=1 ANTHROPIC_API_KEY=sk-test-key {} run main.rhai -- {}",
        env.path().display(),
        env.home.display(),
        shared_cache().display(),
        env!("CARGO_BIN_EXE_seer"),
        fake.url
    );
    let t = Tmux::start(&cmd);
    t.wait_for("you>", 1, 120);

    // Esc during a long tool call.
    t.keys(&["please be slow", "Enter"]);
    t.wait_for("→ notebooks__execute_code", 1, 30);
    std::thread::sleep(Duration::from_millis(300));
    t.keys(&["Escape"]);
    let took = t.wait_for("(interrupted", 1, 10);
    assert!(took < Duration::from_secs(5), "Esc took {took:?}");
    t.wait_for("you>", 2, 10);

    // The chat goes on, with a valid history.
    t.keys(&["hello", "Enter"]);
    t.wait_for("you said: hello", 1, 10);

    // Ctrl-C interrupts a turn too, and the script is not stopped.
    t.keys(&["slow again", "Enter"]);
    t.wait_for("→ notebooks__execute_code", 2, 30);
    std::thread::sleep(Duration::from_millis(300));
    t.keys(&["C-c"]);
    t.wait_for("(interrupted", 2, 10);
    t.wait_for("you>", 4, 10);

    // Ctrl-D ends the chat; the script continues with a kernel no longer busy.
    t.keys(&["C-d"]);
    t.wait_for("chat ended after 3 turns, stop: user_ended", 1, 10);
    t.wait_for("kernel free", 1, 30);
    let screen = t.screen();
    assert!(!screen.contains("stopping:"), "{screen}");

    // History seen by the provider: interrupted turns dropped, messages joined.
    let seen = fake.requests();
    let bodies: Vec<&Value> = seen.iter().map(|(_, b)| b).collect();
    let hello = bodies
        .iter()
        .find(|b| last_user_text(b) == "hello")
        .expect("the hello request");
    assert_eq!(
        hello["messages"],
        json!([{"role": "user", "content": [
            {"type": "text", "text": "please be slow"}, {"type": "text", "text": "hello"}]}])
    );
    // The transcript records both interruptions; the key is nowhere.
    let transcripts = env.path().join("outputs");
    let mut found = String::new();
    for run in std::fs::read_dir(&transcripts).unwrap() {
        let p = run.unwrap().path().join("transcripts/chat.jsonl");
        if p.exists() {
            found = std::fs::read_to_string(p).unwrap();
        }
    }
    assert_eq!(
        found.matches("\"type\":\"interrupted\"").count(),
        2,
        "{found}"
    );
    assert!(!found.contains("sk-test-key"));
    // Everything the script started has ended.
    let deadline = Instant::now() + Duration::from_secs(10);
    // (The tmux server's own command line names the state dir too.)
    let ours = || -> Vec<i32> {
        pids_matching(&env.home.to_string_lossy())
            .into_iter()
            .filter(|p| {
                !std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                    .unwrap_or_default()
                    .starts_with("tmux")
            })
            .collect()
    };
    while !ours().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let left: Vec<String> = ours()
        .iter()
        .map(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .unwrap_or_default()
                .replace('\0', " ")
        })
        .collect();
    assert!(left.is_empty(), "{left:?}\n{}", t.screen());
}
