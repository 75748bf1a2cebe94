//! `run_agent` end to end: a loopback server speaking the Anthropic Messages wire format
//! (SSE) answers with scripted turns — a tool call, then text — while the tool runs for
//! real in a notebook session reached over MCP. The test checks what seer sent.

mod common;
use common::fake_anthropic::{FakeAnthropic, text_turn, tool_turn};
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
        json!({"input_tokens": 300, "output_tokens": 27, "turns": 2})
    );
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
