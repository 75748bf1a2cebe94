//! `run_agent_interactive` driven in a real pseudo-terminal (tmux): the agent starts a
//! long notebook cell, Esc interrupts that turn (not the chat), a later message gets an
//! answer, Ctrl-C interrupts another turn, Ctrl-D ends the chat and the script goes on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use std::time::{Duration, Instant};

use common::fake_anthropic::{FakeAnthropic, Reply, answer, tool_turn};
use common::tmux::Tmux;
use common::{Env, TEST_KEY, processes_matching, read_jsonl};
use serde_json::{Value, json};

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
    let fake = FakeAnthropic::respond(|_, body| {
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
            Reply::Sse(answer(&format!("you said: {last}")))
        }
    });
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
    let t = Tmux::start(
        &env,
        &[("ANTHROPIC_API_KEY", TEST_KEY)],
        &format!("run main.rhai -- {}", fake.url),
    );
    t.keep_after_exit();
    let secs = Duration::from_secs;
    t.wait_count("you>", 1, secs(120));

    // Esc during a long tool call.
    t.keys(&["please be slow", "Enter"]);
    t.wait_count("→ notebooks__execute_code", 1, secs(30));
    std::thread::sleep(Duration::from_millis(300));
    t.keys(&["Escape"]);
    let took = t.wait_count("(interrupted", 1, secs(10));
    assert!(took < Duration::from_secs(5), "Esc took {took:?}");
    t.wait_count("you>", 2, secs(10));

    // The chat goes on, with a valid history.
    t.keys(&["hello", "Enter"]);
    t.wait_count("you said: hello", 1, secs(10));

    // Ctrl-C interrupts a turn too, and the script is not stopped.
    t.keys(&["slow again", "Enter"]);
    t.wait_count("→ notebooks__execute_code", 2, secs(30));
    std::thread::sleep(Duration::from_millis(300));
    t.keys(&["C-c"]);
    t.wait_count("(interrupted", 2, secs(10));
    t.wait_count("you>", 4, secs(10));

    // Ctrl-D ends the chat; the script continues with a kernel no longer busy.
    t.keys(&["C-d"]);
    t.wait_count("chat ended after 3 turns, stop: user_ended", 1, secs(10));
    t.wait_count("kernel free", 1, secs(30));
    // The whole chat as the user saw it; the script was never stopped.
    let sleeping = [
        "[chat] Sleeping.",
        "[chat] → notebooks__execute_code {\"code\":\"import time; time.sleep(60)\"}",
        "[chat] ✗ cancelled",
        "(interrupted: the agent stopped; type a message to go on)",
    ];
    let mut want = vec![
        "chat: type a message; Esc or Ctrl-C interrupts the agent's turn, Ctrl-D or /exit ends the chat",
        "you> please be slow",
    ];
    want.extend(sleeping);
    want.extend(["you> hello", "[chat] you said: hello", "you> slow again"]);
    want.extend(sleeping);
    want.extend([
        "you>",
        "[chat] done: user_ended after 3 turns · 30 in / 15 out tokens · $0.0003",
        "chat ended after 3 turns, stop: user_ended",
        "kernel free",
    ]);
    t.assert_lines(&want.iter().map(|l| l.to_string()).collect::<Vec<_>>());

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
            {"type": "text", "text": "please be slow"},
            {"type": "text", "text": "hello", "cache_control": {"type": "ephemeral"}}]}])
    );
    // The transcript records both interruptions; the key is nowhere.
    let transcript = env.runs()[0].join("transcripts/chat.jsonl");
    let lines = read_jsonl(&transcript);
    let kinds: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "start",
            "user",
            "request",
            "response",
            "interrupted",
            "user",
            "request",
            "response",
            "user",
            "request",
            "response",
            "interrupted",
            "done"
        ]
    );
    assert_eq!(
        [&lines[4], &lines[11], &lines[12]],
        [
            &json!({"type": "interrupted", "turn": 1}),
            &json!({"type": "interrupted", "turn": 3}),
            &json!({"type": "done", "stop_reason": "user_ended", "turns": 3, "input_tokens": 30,
                    "output_tokens": 15, "cache_read_tokens": 0, "cache_write_tokens": 0,
                    "model": "claude-sonnet-4-5-20250929",
                    "cost_usd": 0.000315}),
        ]
    );
    assert!(
        !std::fs::read_to_string(&transcript)
            .unwrap()
            .contains(TEST_KEY)
    );
    // Everything the script started has ended (the tmux server's own command line names
    // the state dir too).
    let ours = || -> Vec<String> {
        processes_matching(&env.home.to_string_lossy())
            .into_iter()
            .map(|(_, cmd)| cmd)
            .filter(|cmd| !cmd.starts_with("tmux"))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ours().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(ours(), Vec::<String>::new(), "{}", t.screen());
}
