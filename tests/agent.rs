//! `run_agent` end to end: a loopback server speaking the Anthropic Messages wire format
//! (SSE) answers with scripted turns — a tool call, then text — while the tool runs for
//! real in a notebook session reached over MCP. The test checks what seer sent.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use common::fake_anthropic::{
    FakeAnthropic, Reply, http_error, last_tool_results, text_turn, tool_turn,
};
use common::{Env, ok, text};
use serde_json::{Value, json};

#[test]
fn run_agent_drives_a_notebook_through_mcp_against_an_anthropic_wire_fake() {
    let fake = FakeAnthropic::start(vec![
        tool_turn(
            "Let me compute.",
            &[(
                "toolu_1",
                "notebooks__execute_code",
                json!({"code": "6 * 7"}),
            )],
            100,
            20,
        ),
        text_turn("The answer is 42.", 200, 7),
    ]);
    let url = fake.url.clone();

    let env = Env::new();
    env.write(
        "main.rhai",
        r#"
let sb = Sandbox(#{ execution_mode: "notebook" }).start();
let s = create_notebook_session(sb, (), #{ name: "agent" });
let events = [];
let r = run_agent(#{ prompt: "What is 6 * 7?", mcp_config: s.mcp_config, base_url: ARGS[0], name: "solver", max_turns: 5 },
                  |m| events.push(m.type));
print(to_json(#{ final: r.final_text, turns: r.turns, stop: r.stop_reason, events: events, usage: r.usage, transcript: r.transcript }));
"#,
    );
    let out = env
        .cmd()
        .env("ANTHROPIC_API_KEY", "sk-test-key-0123456789")
        .args(["run", "main.rhai", "--", &url])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}\n{stdout}");
    let got: Value = serde_json::from_str(ok(&out).trim()).unwrap();
    assert_eq!(got["final"], "The answer is 42.");
    assert_eq!(got["turns"], 2);
    assert_eq!(got["stop"], "end_turn");
    assert_eq!(
        got["usage"],
        json!({"input_tokens": 300, "output_tokens": 27, "cache_read_tokens": 0, "cache_write_tokens": 0,
               "turns": 2, "cost_usd": 0.001305})
    );
    // The live log on stderr: text, the call with its arguments, the result, a summary.
    for want in [
        "[solver] turn 1/5",
        "[solver] Let me compute.",
        "[solver] → notebooks__execute_code {\"code\":\"6 * 7\"}",
        "[solver] ← ",
        "[solver] done: end_turn after 2 turns · 300 in / 27 out tokens · $0.0013",
    ] {
        assert!(stderr.contains(want), "{want:?} not in:\n{stderr}");
    }
    // run.json sums up the agents.
    let run_json = std::fs::read_dir(env.path().join("outputs"))
        .unwrap()
        .map(|e| e.unwrap().path().join("run.json"))
        .next()
        .unwrap();
    let run: Value = serde_json::from_str(&std::fs::read_to_string(run_json).unwrap()).unwrap();
    assert_eq!(
        run["agent_totals"],
        json!({"agents": 1, "input_tokens": 300, "output_tokens": 27, "cache_read_tokens": 0,
               "cache_write_tokens": 0, "cost_usd": 0.001305})
    );
    assert_eq!(run["agents"][0]["model"], "claude-sonnet-4-5");
    assert_eq!(
        got["events"],
        json!([
            "usage",
            "text",
            "tool_call",
            "tool_result",
            "usage",
            "text",
            "done"
        ])
    );

    let seen = fake.requests();
    assert_eq!(seen.len(), 2);
    let (head, first) = &seen[0];
    assert!(head.starts_with("POST /v1/messages HTTP/1.1"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("x-api-key: sk-test-key-0123456789")
            && lower.contains("anthropic-version: 2023-06-01"),
        "{head}"
    );
    assert_eq!(first["stream"], true);
    assert_eq!(first["model"], "claude-sonnet-4-5");
    let tools: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        tools.contains(&"notebooks__execute_code") && tools.contains(&"notebooks__edit_cell"),
        "{tools:?}"
    );
    assert_eq!(
        first["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "What is 6 * 7?"}]}])
    );
    // The second request answers the tool call with what the kernel computed.
    let second = &seen[1].1;
    let msgs = second["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    assert_eq!(
        msgs[1]["content"][1],
        json!({"type": "tool_use", "id": "toolu_1", "name": "notebooks__execute_code", "input": {"code": "6 * 7"}})
    );
    let result = &msgs[2]["content"][0];
    assert_eq!(result["type"], "tool_result");
    assert_eq!(result["tool_use_id"], "toolu_1");
    assert!(result["content"].to_string().contains("42"), "{result}");

    // The transcript has every request and response, and no key.
    let transcript =
        std::fs::read_to_string(env.path().join(got["transcript"].as_str().unwrap())).unwrap();
    let kinds: Vec<String> = transcript
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "start",
            "request",
            "response",
            "tool_result",
            "request",
            "response",
            "done"
        ]
    );
    assert!(!transcript.contains("sk-test-key"));
}

#[test]
fn run_agent_config_errors_are_clear() {
    let env = Env::new();
    for (code, want) in [
        (
            "run_agent(#{ promt: \"x\" });",
            "unknown field `promt`; did you mean `prompt`?",
        ),
        ("run_agent(#{ prompt: \"x\", provider: \"nope\" });", "nope"),
        (
            "run_agent(#{ prompt: \"x\", mcp_config: #{ a: #{ type: \"stdio\", command: \"/no/such/server\" } }, base_url: \"http://127.0.0.1:9\" });",
            "MCP server `a`",
        ),
    ] {
        env.write("main.rhai", code);
        let out = env
            .cmd()
            .env("ANTHROPIC_API_KEY", "k")
            .args(["run", "main.rhai"])
            .output()
            .unwrap();
        let (_, err) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{code}: {err}");
        assert!(
            err.contains("error: main.rhai:1:1: ") && err.contains(want),
            "{code}: {err}"
        );
    }
}

#[test]
fn replay_reruns_a_transcripts_tool_calls_for_real_without_the_provider() {
    let fake = FakeAnthropic::start(vec![
        tool_turn(
            "Let me compute.",
            &[(
                "toolu_1",
                "notebooks__execute_code",
                json!({"code": "6 * 7"}),
            )],
            100,
            20,
        ),
        text_turn("The answer is 42.", 200, 7),
    ]);
    let env = Env::new();
    let (out, stdout, stderr) = env.run_agent_script(
        r#"
let sb = Sandbox(#{ execution_mode: "notebook" }).start();
let s = create_notebook_session(sb, (), #{ name: "live" });
let r = run_agent(#{ prompt: "What is 6 * 7?", mcp_config: s.mcp_config, base_url: ARGS[0], name: "live" });
// A fresh sandbox and session: the replay runs the recorded calls there.
let sb2 = Sandbox(#{ execution_mode: "notebook" }).start();
let s2 = create_notebook_session(sb2, (), #{ name: "replayed" });
let events = [];
let r2 = run_agent(#{ provider: "replay", transcript: r.transcript, prompt: "What is 6 * 7?",
                      mcp_config: s2.mcp_config, name: "replayed" }, |m| events.push(m.type));
print(to_json(#{ final: r2.final_text, turns: r2.turns, usage: r2.usage, events: events,
                 notebook: s2.notebook_path, same_sandbox: sb.id == sb2.id }));
"#,
        &fake.url,
    );
    assert!(out.status.success(), "{stderr}\n{stdout}");
    let got: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        got,
        json!({"final": "The answer is 42.", "turns": 2,
               "usage": {"input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0, "cache_write_tokens": 0, "turns": 2, "cost_usd": 0.0},
               "events": ["usage", "text", "tool_call", "tool_result", "usage", "text", "done"],
               "notebook": got["notebook"], "same_sandbox": false})
    );
    // The provider was asked twice, by the live run only.
    assert_eq!(fake.requests().len(), 2);
    // The replayed call ran in the new kernel: its notebook has the cell and its result.
    let nb: Value = serde_json::from_str(
        &std::fs::read_to_string(env.path().join(got["notebook"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let cell = nb["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["source"].to_string().contains("6 * 7"))
        .expect("the replayed cell");
    assert!(cell["outputs"].to_string().contains("42"), "{cell}");
}

#[test]
fn replay_errors_say_what_is_missing() {
    let env = Env::new();
    env.write("empty.jsonl", "{\"type\": \"start\"}\n");
    for (code, want) in [
        (
            "run_agent(#{ provider: \"replay\", prompt: \"x\" });",
            "provider \"replay\" needs `transcript`",
        ),
        (
            "run_agent(#{ provider: \"replay\", prompt: \"x\", transcript: \"empty.jsonl\" });",
            "empty.jsonl has no assistant turns to replay",
        ),
        (
            "run_agent(#{ provider: \"replay\", prompt: \"x\", transcript: \"nope.jsonl\" });",
            "reading the replay transcript",
        ),
        (
            "run_agent(#{ provider: \"gemini\", prompt: \"x\" });",
            "unknown provider \"gemini\"",
        ),
    ] {
        let (out, _, err) = env.run_agent_script(code, "");
        assert_eq!(out.status.code(), Some(1), "{code}: {err}");
        assert!(
            err.contains("main.rhai:1:1") && err.contains(want),
            "{code}: {err}"
        );
    }
}

/// First turn: run code that reports the kernel's pid after a second; once the tool
/// result is back: say it.
fn pid_responder() -> common::fake_anthropic::Responder {
    std::sync::Arc::new(|_, body: &Value| match last_tool_results(body) {
        Some(result) => Reply::Sse(text_turn(&format!("kernel says {result}"), 10, 5)),
        None => Reply::Sse(tool_turn(
            "",
            &[(
                "toolu_pid",
                "notebooks__execute_code",
                json!({"code": "import os, time; time.sleep(1); os.getpid()"}),
            )],
            10,
            5,
        )),
    })
}

#[test]
fn two_agents_run_in_parallel_each_against_its_own_kernel() {
    let fake = FakeAnthropic::start_with(pid_responder());
    let env = Env::new();
    let (out, stdout, stderr) = env.run_agent_script(
        r#"
let sa = create_notebook_session(Sandbox(#{ execution_mode: "notebook" }).start(), (), #{ name: "a" });
let sb = create_notebook_session(Sandbox(#{ execution_mode: "notebook" }).start(), (), #{ name: "b" });
let url = ARGS[0];
let rs = parallel([
    || run_agent(#{ prompt: "pid?", mcp_config: sa.mcp_config, base_url: url, name: "a" }),
    || run_agent(#{ prompt: "pid?", mcp_config: sb.mcp_config, base_url: url, name: "b" }),
]);
// spawn: start now, join later.
let t = spawn(|| run_agent(#{ prompt: "pid?", mcp_config: sa.mcp_config, base_url: url, name: "c" }));
let c = t.join();
print(to_json([rs[0].final_text, rs[1].final_text, c.final_text, t.is_done()]));
"#,
        &fake.url,
    );
    assert!(out.status.success(), "{stderr}\n{stdout}");
    let got: Vec<Value> = serde_json::from_str(stdout.trim()).unwrap();
    let pid = |v: &Value| -> String {
        // The longest run of digits: the pid (the result also has e.g. a cell number).
        v.as_str()
            .unwrap()
            .split(|c: char| !c.is_ascii_digit())
            .max_by_key(|s| s.len())
            .unwrap()
            .to_string()
    };
    let (a, b, c) = (pid(&got[0]), pid(&got[1]), pid(&got[2]));
    assert!(!a.is_empty() && !b.is_empty(), "{got:?}");
    assert_ne!(a, b, "each agent has its own kernel");
    assert_eq!(a, c, "the spawned agent used session a's kernel");
    assert_eq!(got[3], true);
    // Both agents' first requests came before either had its tool result back (the
    // tool sleeps a second): they ran at the same time.
    let seen = fake.requests();
    assert_eq!(seen.len(), 6);
    assert!(last_tool_results(&seen[0].1).is_none() && last_tool_results(&seen[1].1).is_none());
    // Each agent has its own transcript.
    for name in ["a", "b", "c"] {
        assert!(
            stderr.contains(&format!("[{name}] done: end_turn after 2 turns")),
            "{stderr}"
        );
    }
}

#[test]
fn a_spawned_closure_error_is_raised_by_join_with_its_position() {
    let env = Env::new();
    let (out, _, err) = env.run_agent_script(
        "let t = spawn(|| {\n  let x = 1;\n  throw \"boom\";\n});\nt.join();\n",
        "",
    );
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("boom") && err.contains("main.rhai:3:"),
        "{err}"
    );
}

#[test]
fn a_repeated_identical_failing_call_is_reported_to_the_model() {
    let fake = FakeAnthropic::start_with(std::sync::Arc::new(|n, _: &Value| {
        if n < 3 {
            Reply::Sse(tool_turn(
                "",
                &[(
                    &format!("toolu_{n}"),
                    "notebooks__no_such_tool",
                    json!({"x": 1}),
                )],
                10,
                5,
            ))
        } else {
            Reply::Sse(text_turn("I give up on that tool.", 10, 5))
        }
    }));
    let env = Env::new();
    let (out, stdout, stderr) = env.run_agent_script(
        r#"
let s = create_notebook_session(Sandbox(#{ execution_mode: "notebook" }).start(), (), #{});
let repeats = [];
let r = run_agent(#{ prompt: "go", mcp_config: s.mcp_config, base_url: ARGS[0], live_log: false },
    |m| if m.type == "tool_result" { repeats.push(m.repeated_failures ?? 1) });
print(to_json(#{ final: r.final_text, repeats: repeats }));
"#,
        &fake.url,
    );
    assert!(out.status.success(), "{stderr}\n{stdout}");
    let got: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        got,
        json!({"final": "I give up on that tool.", "repeats": [1, 2, 3]})
    );
    assert!(
        !stderr.contains("[agent]"),
        "live_log: false is quiet: {stderr}"
    );
    let seen = fake.requests();
    let first = last_tool_results(&seen[1].1).unwrap();
    let second = last_tool_results(&seen[2].1).unwrap();
    let third = last_tool_results(&seen[3].1).unwrap();
    assert!(!first.contains("[seer]"), "{first}");
    assert!(second.contains("has now failed 2 times"), "{second}");
    assert!(third.contains("has now failed 3 times"), "{third}");
}

#[test]
fn run_agent_survives_429_500_529_and_a_cut_stream_then_times_out_on_a_silent_server() {
    let cut = {
        let full = text_turn("never finished", 10, 5);
        let mut s: String = full.chars().take(full.len() / 2).collect();
        s.truncate(s.rfind("\n\n").unwrap() + 2);
        s
    };
    let fake = FakeAnthropic::start_with(std::sync::Arc::new(move |n, _: &Value| match n {
        0 => http_error(
            429,
            "Too Many Requests",
            "rate_limit_error",
            "retry-after: 0\r\n",
        ),
        1 => http_error(
            500,
            "Internal Server Error",
            "api_error",
            "retry-after: 0\r\n",
        ),
        2 => http_error(529, "Overloaded", "overloaded_error", "retry-after: 0\r\n"),
        3 => Reply::Sse(cut.clone()),
        _ => Reply::Sse(text_turn("made it", 10, 5)),
    }));
    let env = Env::new();
    let (out, stdout, stderr) = env.run_agent_script(
        r#"let r = run_agent(#{ prompt: "hi", base_url: ARGS[0] }); print(r.final_text);"#,
        &fake.url,
    );
    assert!(out.status.success(), "{stderr}\n{stdout}");
    assert_eq!(stdout.trim(), "made it");
    assert_eq!(fake.requests().len(), 5);

    let silent = FakeAnthropic::start_with(std::sync::Arc::new(|_, _: &Value| Reply::Hang));
    let started = std::time::Instant::now();
    let (out, _, err) = env.run_agent_script(
        r#"run_agent(#{ prompt: "hi", base_url: ARGS[0], request_timeout: 0.5, max_retries: 1, name: "slow" });"#,
        &silent.url,
    );
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("main.rhai:1:1") && err.contains("timed out"),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(silent.requests().len(), 2, "one try and one retry");
    assert!(!err.contains("sk-test-key"));
    // The transcript ends with the error.
    let t = walk_find(env.path(), "slow.jsonl");
    let last = std::fs::read_to_string(t)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();
    assert!(last.contains("\"type\":\"error\""), "{last}");
}

fn walk_find(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    fn find(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
        for e in std::fs::read_dir(dir).ok()? {
            let p = e.ok()?.path();
            if p.is_dir() {
                if let Some(found) = find(&p, name) {
                    return Some(found);
                }
            } else if p.file_name()? == name {
                return Some(p);
            }
        }
        None
    }
    find(dir, name).unwrap_or_else(|| panic!("{name} not under {}", dir.display()))
}
