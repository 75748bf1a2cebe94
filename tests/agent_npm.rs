//! Agents against real npm packages: the `claude` CLI (`provider: "claude-code"`) driving
//! a notebook through seer's MCP server, and the third-party MCP server
//! `@modelcontextprotocol/server-everything` over stdio driven by seer's own loop. Both run
//! offline against the loopback Anthropic wire-format fake. The pinned packages
//! (`tests/npm/package.json`) are installed by `tests/setup.sh`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::fake_anthropic::{
    FakeAnthropic, compute_6x7, head_lines, text_turn, tool_names, tool_results, tool_turn,
};
use common::{
    Env, Running, TEST_KEY, assert_no_file_contains, failed, ok, pids_matching, read_json,
    read_jsonl, text, wait_for,
};
use serde_json::{Value, json};

/// The installed `claude` executable: the package's bin, or (if npm skipped the
/// postinstall that puts the native binary there) the platform package's binary.
fn claude_bin() -> PathBuf {
    let prefix = seer::testenv::npm_dir();
    let runs = |p: &Path| {
        Command::new(p)
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    let bin = prefix.join("node_modules/.bin/claude");
    if runs(&bin) {
        return bin;
    }
    let scope = prefix.join("node_modules/@anthropic-ai");
    std::fs::read_dir(&scope)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("claude"))
        .find(|p| runs(p))
        .unwrap_or_else(|| panic!("no runnable claude binary under {}", scope.display()))
}

fn everything_js() -> PathBuf {
    seer::testenv::npm_dir()
        .join("node_modules/@modelcontextprotocol/server-everything/dist/index.js")
}

#[test]
fn claude_code_cli_drives_a_notebook_through_seers_mcp_server() {
    let bin = claude_bin();
    let fake = FakeAnthropic::start(compute_6x7("mcp__notebooks__execute_code"));
    let env = Env::new();
    let claude_home = tempfile::tempdir().unwrap();
    env.write(
        "main.rhai",
        r#"
let sb = Sandbox(#{ execution_mode: "notebook" }).start();
let s = create_notebook_session(sb, (), #{ name: "agent" });
let events = [];
let r = run_agent(#{ provider: "claude-code", user_message: "What is 6 * 7?", mcp_config: s.mcp_config,
                     base_url: ARGS[0], name: "cc", max_turns: 5 }, |m| events.push(m));
print(to_json(#{ final: r.final_text, turns: r.turns, stop: r.stop_reason, events: events, usage: r.usage,
                 transcript: r.transcript, notebook: s.notebook_path }));
"#,
    );
    let out = env
        .agent_cmd()
        .env("SEER_CLAUDE_BIN", &bin)
        .env("CLAUDE_CONFIG_DIR", claude_home.path())
        .args(["run", "main.rhai", "--", &fake.url])
        .output()
        .unwrap();
    let mut got: Value = serde_json::from_str(ok(&out).trim()).unwrap();
    // The cost as the CLI reports it (a float sum).
    let cost = got["usage"]["cost_usd"].as_f64().unwrap();
    assert!((cost - 0.00174).abs() < 1e-12, "{cost}");
    got["usage"]["cost_usd"] = json!(0.00174);
    // The callback saw the same events as with the built-in loop.
    let run = env.the_run();
    assert_eq!(
        got,
        json!({"final": "The answer is 42.", "turns": 2, "stop": "end_turn",
               "usage": {"input_tokens": 300, "output_tokens": 27, "cache_read_tokens": 0,
                         "cache_write_tokens": 0, "turns": 2, "cost_usd": 0.00174},
               "events": [
                   {"type": "usage", "turn": 1, "input_tokens": 100, "output_tokens": 1},
                   {"type": "text", "text": "Let me compute."},
                   {"type": "tool_call", "id": "toolu_1", "name": "notebooks__execute_code", "input": {"code": "6 * 7"}},
                   {"type": "tool_result", "id": "toolu_1", "name": "notebooks__execute_code", "is_error": false,
                    "text": "[cell 0, execution_count 1]\n42"},
                   {"type": "usage", "turn": 2, "input_tokens": 300, "output_tokens": 2},
                   {"type": "text", "text": "The answer is 42."},
                   {"type": "done", "turns": 2, "stop_reason": "end_turn"}],
               "transcript": format!("outputs/{run}/transcripts/cc.jsonl"),
               "notebook": format!("outputs/{run}/agent.ipynb")})
    );

    // The tool call ran for real: the notebook has the cell and its output.
    let mut nb = read_json(&env.path().join(got["notebook"].as_str().unwrap()));
    for c in nb["cells"].as_array_mut().unwrap() {
        c.as_object_mut().unwrap().remove("id"); // random
    }
    assert_eq!(
        nb["cells"],
        json!([{"cell_type": "code", "execution_count": 1, "metadata": {}, "source": ["6 * 7"],
                "outputs": [{"output_type": "execute_result", "execution_count": 1, "metadata": {},
                             "data": {"text/plain": ["42"]}}]}])
    );

    // What the CLI sent: the key, the notebook tools, then the real result.
    let seen = fake.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let (head, first) = &seen[0];
    let (request, headers) = head_lines(head);
    assert_eq!(request, "POST /v1/messages?beta=true HTTP/1.1");
    let auth: Vec<(String, String)> = headers
        .into_iter()
        .filter(|(k, _)| k == "x-api-key" || k == "authorization")
        .collect();
    assert_eq!(auth, [("x-api-key".to_string(), TEST_KEY.to_string())]);
    // The notebook tools (and a placeholder of the CLI's); the CLI's own tools are off.
    assert_eq!(
        tool_names(first),
        [
            "mcp__notebooks__add_markdown",
            "mcp__notebooks__edit_cell",
            "mcp__notebooks__execute_code",
            "mcp__notebooks__interrupt_kernel",
            "mcp__notebooks__read_cell",
            "mcp__notebooks__restart_kernel",
            "DeferredToolPlaceholder",
            "mcp__notebooks__shutdown_session"
        ]
    );
    assert_eq!(
        tool_results(&seen[1].1),
        [
            json!({"type": "tool_result", "tool_use_id": "toolu_1", "cache_control": {"type": "ephemeral"},
                "content": [{"type": "text", "text": "[cell 0, execution_count 1]\n42"}]})
        ]
    );

    // The transcript has the raw stream-json messages; no secret is anywhere in the outputs.
    let transcript = env.path().join(got["transcript"].as_str().unwrap());
    let lines = read_jsonl(&transcript);
    let kinds: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["type"].as_str().unwrap(),
                l["raw"]["type"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("start", ""),
            ("message", "system"),
            ("message", "assistant"),
            ("message", "assistant"),
            ("message", "user"),
            ("tool_result", ""),
            ("message", "assistant"),
            ("message", "result"),
            ("done", "")
        ]
    );
    assert!(
        !std::fs::read_to_string(&transcript)
            .unwrap()
            .contains("Bearer"),
        "{transcript:?}"
    );
    assert_no_file_contains(env.path(), &[TEST_KEY]);
    // The CLI and its MCP connections are gone; the --mcp-config file is removed.
    // The CLI as seer started it: print mode, only the session's MCP server, no tools of
    // its own, a temp --mcp-config file.
    let config_path = lines[0]["args"][9].as_str().unwrap_or_default().to_string();
    let temp = std::env::temp_dir().join("seer-claude-");
    assert!(
        config_path.starts_with(&*temp.to_string_lossy()) && config_path.ends_with("/mcp.json"),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines[0],
        json!({"type": "start", "provider": "claude-code", "model": null, "servers": ["notebooks"],
               "command": bin.to_string_lossy(),
               "args": ["-p", "--output-format", "stream-json", "--verbose", "--strict-mcp-config",
                        "--no-session-persistence", "--tools", "", "--mcp-config", config_path,
                        "--allowedTools", "mcp__notebooks", "--max-turns", "5"]})
    );
    assert!(!Path::new(&config_path).exists(), "{config_path}");
    assert!(pids_matching(&config_path).is_empty());
}

#[test]
fn claude_code_errors_and_ctrl_c_end_the_cli_and_its_mcp_servers() {
    let bin = claude_bin();
    let js = everything_js();
    let claude_home = tempfile::tempdir().unwrap();
    let env = Env::new();
    // A node flag marks this test's server processes apart from the other tests'.
    env.write(
        "main.rhai",
        r#"
run_agent(#{ provider: "claude-code", user_message: "x", base_url: ARGS[0], model: ARGS[2],
             mcp_config: #{ everything: #{ type: "stdio", command: "node",
                                           args: ["--max-old-space-size=4099", ARGS[1], "stdio"] } } });
"#,
    );
    let run = |url: &str, model: &str| {
        let mut c = env.agent_cmd();
        c.env("SEER_CLAUDE_BIN", &bin)
            .env("CLAUDE_CONFIG_DIR", claude_home.path())
            .args(["run", "main.rhai", "--", url, &js.to_string_lossy(), model]);
        c
    };
    let gone = |model: &str| {
        pids_matching(model).is_empty() && pids_matching("--max-old-space-size=4099").is_empty()
    };

    // The API refuses: a clear error with the API's message, no key in it, nothing left.
    let fake = FakeAnthropic::start(vec![]);
    let out = run(&fake.url, "claude-refused-model").output().unwrap();
    assert_eq!(
        failed(&out),
        "error: main.rhai:2:1: the claude CLI reported an error: API Error: 400 the fake has no \
         more scripted turns\n"
    );
    wait_for(
        "the CLI and its server to go",
        Duration::from_secs(5),
        || gone("claude-refused-model"),
    );

    // A provider that never answers; Ctrl-C ends seer, the CLI and the server it started.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = vec![];
        for s in listener.incoming().flatten() {
            held.push(s);
            let _ = tx.send(());
        }
    });
    let mut seer = Running::start(run(&url, "claude-hanging-model"));
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the CLI never called the provider");
    assert!(!pids_matching("claude-hanging-model").is_empty());
    assert!(!pids_matching("--max-old-space-size=4099").is_empty());
    let sent = Instant::now();
    seer.ctrl_c();
    wait_for(
        "the CLI and its server to go",
        Duration::from_secs(5),
        || gone("claude-hanging-model"),
    );
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "{:?}",
        sent.elapsed()
    );
}

#[test]
fn claude_code_without_the_cli_is_a_clear_error() {
    let env = Env::new();
    env.write(
        "main.rhai",
        "run_agent(#{ provider: \"claude-code\", user_message: \"x\", tools: \"none\" });",
    );
    let install = "install it with `npm install -g @anthropic-ai/claude-code` (it must be on PATH), \
                   or set SEER_CLAUDE_BIN to the `claude` executable";
    for (var, value, want) in [
        (
            "SEER_CLAUDE_BIN",
            "/no/such/claude",
            "the claude-code provider: SEER_CLAUDE_BIN is /no/such/claude, which is not a file",
        ),
        (
            "PATH",
            "/nonexistent",
            "the claude-code provider needs the `claude` CLI, not found on PATH",
        ),
    ] {
        let out = env
            .cmd()
            .env_remove("SEER_CLAUDE_BIN")
            .env(var, value)
            .args(["run", "main.rhai"])
            .output()
            .unwrap();
        assert_eq!(
            failed(&out),
            format!("error: main.rhai:1:1: {want}; {install}\n"),
            "{var}"
        );
    }
}

#[test]
fn seers_loop_drives_the_everything_server_over_stdio() {
    let js = everything_js();
    let fake = FakeAnthropic::start(vec![
        tool_turn(
            "Two tools at once.",
            &[
                (
                    "toolu_1",
                    "everything__echo",
                    json!({"message": "hello from seer"}),
                ),
                ("toolu_2", "everything__get-sum", json!({"a": 2, "b": 40})),
            ],
            50,
            10,
        ),
        tool_turn(
            "",
            &[("toolu_3", "everything__get-tiny-image", json!({}))],
            60,
            5,
        ),
        text_turn("Echoed, summed and looked.", 70, 4),
    ]);
    let env = Env::new();
    env.write(
        "main.rhai",
        r#"
let events = [];
let r = run_agent(#{ user_message: "Use the tools.", base_url: ARGS[0], max_turns: 6,
                     mcp_config: #{ everything: #{ type: "stdio", command: "node", args: [ARGS[1], "stdio"] } } },
                  |m| events.push(m));
print(to_json(#{ final: r.final_text, turns: r.turns, stop: r.stop_reason, events: events }));
"#,
    );
    let out = env
        .agent_cmd()
        .args(["run", "main.rhai", "--", &fake.url, &js.to_string_lossy()])
        .output()
        .unwrap();
    let got: Value = serde_json::from_str(ok(&out).trim()).unwrap();
    let image_text =
        "Here's the image you requested:\n[image/png image]\nThe image above is the MCP logo.";
    let call = |id: &str, name: &str, input: Value| json!({"type": "tool_call", "id": id, "name": name, "input": input});
    let result = |id: &str, name: &str, text: &str| json!({"type": "tool_result", "id": id, "name": name, "is_error": false, "text": text});
    let usage = |turn: u32, input: u32, output: u32| json!({"type": "usage", "turn": turn, "input_tokens": input, "output_tokens": output});
    assert_eq!(
        got,
        json!({"final": "Echoed, summed and looked.", "turns": 3, "stop": "end_turn", "events": [
            usage(1, 50, 10),
            {"type": "text", "text": "Two tools at once."},
            call("toolu_1", "everything__echo", json!({"message": "hello from seer"})),
            result("toolu_1", "everything__echo", "Echo: hello from seer"),
            call("toolu_2", "everything__get-sum", json!({"a": 2, "b": 40})),
            result("toolu_2", "everything__get-sum", "The sum of 2 and 40 is 42."),
            usage(2, 110, 15),
            call("toolu_3", "everything__get-tiny-image", json!({})),
            result("toolu_3", "everything__get-tiny-image", image_text),
            usage(3, 180, 19),
            {"type": "text", "text": "Echoed, summed and looked."},
            {"type": "done", "turns": 3, "stop_reason": "end_turn", "cost_usd": 0.000825},
        ]})
    );
    assert_eq!(
        text(&out).1.lines().collect::<Vec<_>>(),
        [
            "[agent] turn 1/6 · 0 in / 0 out tokens",
            "[agent] Two tools at once.",
            "[agent] → everything__echo {\"message\":\"hello from seer\"}",
            "[agent] ← Echo: hello from seer",
            "[agent] → everything__get-sum {\"a\":2,\"b\":40}",
            "[agent] ← The sum of 2 and 40 is 42.",
            "[agent] turn 2/6 · 50 in / 10 out tokens",
            "[agent] → everything__get-tiny-image {}",
            "[agent] ← Here's the image you requested:⏎[image/png image]⏎The image above is the MCP logo.",
            "[agent] turn 3/6 · 110 in / 15 out tokens",
            "[agent] Echoed, summed and looked.",
            "[agent] done: end_turn after 3 turns · 180 in / 19 out tokens · $0.0008",
        ]
    );

    // The server's tools reached the model with their schemas; the results went back.
    let seen = fake.requests();
    assert_eq!(seen.len(), 3);
    let tools = seen[0].1["tools"].as_array().unwrap();
    let sum = tools
        .iter()
        .find(|t| t["name"] == "everything__get-sum")
        .unwrap_or_else(|| panic!("{tools:?}"));
    assert_eq!(
        sum,
        &json!({"name": "everything__get-sum", "description": "Returns the sum of two numbers",
                "input_schema": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                                 "required": ["a", "b"],
                                 "properties": {"a": {"type": "number", "description": "First number"},
                                                "b": {"type": "number", "description": "Second number"}}}})
    );
    assert_eq!(
        tool_names(&seen[0].1),
        [
            "everything__echo",
            "everything__get-annotated-message",
            "everything__get-env",
            "everything__get-resource-links",
            "everything__get-resource-reference",
            "everything__get-structured-content",
            "everything__get-sum",
            "everything__get-tiny-image",
            "everything__gzip-file-as-resource",
            "everything__toggle-simulated-logging",
            "everything__toggle-subscriber-updates",
            "everything__trigger-long-running-operation",
            "everything__simulate-research-query"
        ]
    );
    let sent = tool_results(&seen[1].1);
    assert_eq!(
        sent,
        vec![
            json!({"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "Echo: hello from seer"}], "is_error": false}),
            json!({"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "The sum of 2 and 40 is 42."}], "is_error": false,
                   "cache_control": {"type": "ephemeral"}}),
        ]
    );
    // The image went back as an image block (its PNG data checked apart).
    let mut image = tool_results(&seen[2].1).remove(2);
    let data = std::mem::take(&mut image["content"][1]["source"]["data"]);
    assert!(
        data.as_str().unwrap_or_default().starts_with("iVBORw0KGgo"),
        "not a PNG: {data}"
    );
    assert_eq!(
        image,
        json!({"type": "tool_result", "tool_use_id": "toolu_3", "is_error": false, "content": [
            {"type": "text", "text": "Here's the image you requested:"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": null}},
            {"type": "text", "text": "The image above is the MCP logo."}],
            "cache_control": {"type": "ephemeral"}})
    );

    // seer ended the server it spawned.
    assert!(
        pids_matching(&format!("node {}", js.display())).is_empty(),
        "the everything server is still running"
    );
}
