//! Agents against real npm packages: the `claude` CLI (`provider: "claude-code"`) driving
//! a notebook through seer's MCP server, and the third-party MCP server
//! `@modelcontextprotocol/server-everything` over stdio driven by seer's own loop. Both run
//! offline against the loopback Anthropic wire-format fake. The pinned packages
//! (`tests/npm/package.json`) are installed by `tests/setup.sh`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fake_anthropic::{FakeAnthropic, text_turn, tool_turn};
use common::{Env, ok, pids_matching, text};
use serde_json::{Value, json};

const KEY: &str = "sk-test-key-npm-0123456789";

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

/// Every file under `dir` (recursively) whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            out.extend(files_containing(&p, needle));
        } else if let Ok(bytes) = std::fs::read(&p)
            && String::from_utf8_lossy(&bytes).contains(needle)
        {
            out.push(p);
        }
    }
    out
}

fn tool_results(body: &Value) -> Vec<Value> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .filter(|b| b["type"] == "tool_result")
        .collect()
}

#[test]
fn claude_code_cli_drives_a_notebook_through_seers_mcp_server() {
    let bin = claude_bin();
    let fake = FakeAnthropic::start(vec![
        tool_turn(
            "Let me compute.",
            &[(
                "toolu_1",
                "mcp__notebooks__execute_code",
                json!({"code": "6 * 7"}),
            )],
            100,
            20,
        ),
        text_turn("The answer is 42.", 200, 7),
    ]);
    let env = Env::new();
    let claude_home = tempfile::tempdir().unwrap();
    env.write(
        "main.rhai",
        r#"
let sb = Sandbox(#{ execution_mode: "notebook" }).start();
let s = create_notebook_session(sb, (), #{ name: "agent" });
let events = [];
let r = run_agent(#{ provider: "claude-code", prompt: "What is 6 * 7?", mcp_config: s.mcp_config,
                     base_url: ARGS[0], name: "cc", max_turns: 5 }, |m| events.push(m));
print(to_json(#{ final: r.final_text, turns: r.turns, stop: r.stop_reason, events: events, usage: r.usage,
                 transcript: r.transcript, notebook: s.notebook_path }));
"#,
    );
    let out = env
        .cmd()
        .env("ANTHROPIC_API_KEY", KEY)
        .env("SEER_CLAUDE_BIN", &bin)
        .env("CLAUDE_CONFIG_DIR", claude_home.path())
        .args(["run", "main.rhai", "--", &fake.url])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}\n{stdout}");
    let got: Value = serde_json::from_str(ok(&out).trim()).unwrap();
    assert_eq!(got["final"], "The answer is 42.");
    assert_eq!(got["turns"], 2);
    assert_eq!(got["stop"], "end_turn");
    assert_eq!(got["usage"]["input_tokens"], 300, "{}", got["usage"]);
    assert_eq!(got["usage"]["output_tokens"], 27, "{}", got["usage"]);

    // The callback saw the same kinds of events as with the built-in loop.
    let events = got["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        vec![
            "usage",
            "text",
            "tool_call",
            "tool_result",
            "usage",
            "text",
            "done"
        ]
    );
    assert_eq!(
        events[2],
        json!({"type": "tool_call", "id": "toolu_1", "name": "notebooks__execute_code", "input": {"code": "6 * 7"}})
    );
    assert_eq!(events[3]["name"], "notebooks__execute_code");
    assert_eq!(events[3]["is_error"], false);
    assert!(
        events[3]["text"].as_str().unwrap().contains("42"),
        "{}",
        events[3]
    );
    assert_eq!(
        events[6],
        json!({"type": "done", "turns": 2, "stop_reason": "end_turn"})
    );

    // The tool call ran for real: the notebook has the cell and its output.
    let nb: Value = serde_json::from_slice(
        &std::fs::read(env.path().join(got["notebook"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let cell = nb["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["source"].to_string().contains("6 * 7"))
        .unwrap_or_else(|| panic!("no cell with the code: {nb}"));
    assert!(cell["outputs"].to_string().contains("42"), "{cell}");

    // What the CLI sent: the key, the notebook tools, then the real result.
    let seen = fake.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let (head, first) = &seen[0];
    assert!(head.starts_with("POST /v1/messages"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("x-api-key: {}", KEY.to_ascii_lowercase())),
        "{head}"
    );
    let tools: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(tools.contains(&"mcp__notebooks__execute_code"), "{tools:?}");
    assert!(
        !tools.contains(&"Bash"),
        "the CLI's own tools are off: {tools:?}"
    );
    let results = tool_results(&seen[1].1);
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["tool_use_id"], "toolu_1");
    assert!(
        results[0]["content"].to_string().contains("42"),
        "{results:?}"
    );

    // The transcript has the raw stream-json messages; no secret is anywhere in the outputs.
    let transcript =
        std::fs::read_to_string(env.path().join(got["transcript"].as_str().unwrap())).unwrap();
    let lines: Vec<Value> = transcript
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "start");
    assert_eq!(lines.last().unwrap()["type"], "done");
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "message" && l["raw"]["type"] == "system"),
        "{transcript}"
    );
    assert!(!transcript.contains("Bearer"), "{transcript}");
    assert_eq!(files_containing(env.path(), KEY), Vec::<PathBuf>::new());
    // The CLI and its MCP connections are gone; the --mcp-config file is removed.
    let config_path = lines[0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .skip_while(|a| *a != "--mcp-config")
        .nth(1)
        .and_then(Value::as_str)
        .unwrap()
        .to_string();
    assert!(!Path::new(&config_path).exists(), "{config_path}");
    assert!(pids_matching(&config_path).is_empty());
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
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
run_agent(#{ provider: "claude-code", prompt: "x", base_url: ARGS[0], model: ARGS[2],
             mcp_config: #{ everything: #{ type: "stdio", command: "node",
                                           args: ["--max-old-space-size=4099", ARGS[1], "stdio"] } } });
"#,
    );
    let run = |url: &str, model: &str| {
        let mut c = env.cmd();
        c.env("ANTHROPIC_API_KEY", KEY)
            .env("SEER_CLAUDE_BIN", &bin)
            .env("CLAUDE_CONFIG_DIR", claude_home.path())
            .args(["run", "main.rhai", "--", url, &js.to_string_lossy(), model])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    let gone = |model: &str| {
        pids_matching(model).is_empty() && pids_matching("--max-old-space-size=4099").is_empty()
    };

    // The API refuses: a clear error with the API's message, no key in it, nothing left.
    let fake = FakeAnthropic::start(vec![]);
    let out = run(&fake.url, "claude-refused-model").output().unwrap();
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the claude CLI reported an error") && err.contains("no more scripted turns"),
        "{err}"
    );
    assert!(!err.contains(KEY));
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
    let mut child = run(&url, "claude-hanging-model").spawn().unwrap();
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the CLI never called the provider");
    assert!(!pids_matching("claude-hanging-model").is_empty());
    assert!(!pids_matching("--max-old-space-size=4099").is_empty());
    let sent = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
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
        "run_agent(#{ provider: \"claude-code\", prompt: \"x\" });",
    );
    for (var, value) in [
        ("SEER_CLAUDE_BIN", "/no/such/claude"),
        ("PATH", "/nonexistent"),
    ] {
        let out = env
            .cmd()
            .env_remove("SEER_CLAUDE_BIN")
            .env(var, value)
            .args(["run", "main.rhai"])
            .output()
            .unwrap();
        let (_, err) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("error: main.rhai:1:1: ")
                && err.contains("npm install -g @anthropic-ai/claude-code"),
            "{err}"
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
let r = run_agent(#{ prompt: "Use the tools.", base_url: ARGS[0], max_turns: 6,
                     mcp_config: #{ everything: #{ type: "stdio", command: "node", args: [ARGS[1], "stdio"] } } },
                  |m| events.push(m));
print(to_json(#{ final: r.final_text, turns: r.turns, stop: r.stop_reason, events: events }));
"#,
    );
    let out = env
        .cmd()
        .env("ANTHROPIC_API_KEY", KEY)
        .args(["run", "main.rhai", "--", &fake.url, &js.to_string_lossy()])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}\n{stdout}");
    let got: Value = serde_json::from_str(ok(&out).trim()).unwrap();
    assert_eq!(got["final"], "Echoed, summed and looked.");
    assert_eq!(got["turns"], 3);
    assert_eq!(got["stop"], "end_turn");
    let events = got["events"].as_array().unwrap();
    let results: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["type"] == "tool_result")
        .map(|e| (e["name"].as_str().unwrap(), e["text"].as_str().unwrap()))
        .collect();
    assert_eq!(results.len(), 3, "{events:?}");
    assert_eq!(results[0], ("everything__echo", "Echo: hello from seer"));
    assert_eq!(
        results[1],
        ("everything__get-sum", "The sum of 2 and 40 is 42.")
    );
    assert!(results[2].1.contains("[image/png image]"), "{results:?}");
    assert!(events.iter().all(|e| e["is_error"] != true), "{events:?}");

    // The server's tools reached the model with their schemas; the results went back.
    let seen = fake.requests();
    assert_eq!(seen.len(), 3);
    let tools = seen[0].1["tools"].as_array().unwrap();
    let sum = tools
        .iter()
        .find(|t| t["name"] == "everything__get-sum")
        .unwrap_or_else(|| panic!("{tools:?}"));
    assert_eq!(sum["input_schema"]["properties"]["a"]["type"], "number");
    let sent = tool_results(&seen[1].1);
    assert_eq!(
        sent,
        vec![
            json!({"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "Echo: hello from seer"}], "is_error": false}),
            json!({"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "The sum of 2 and 40 is 42."}], "is_error": false}),
        ]
    );
    let image = tool_results(&seen[2].1);
    let parts = image[2]["content"].as_array().unwrap();
    assert_eq!(image[2]["tool_use_id"], "toolu_3");
    assert!(
        parts
            .iter()
            .any(|p| p["type"] == "image" && p["source"]["media_type"] == "image/png"),
        "{parts:?}"
    );

    // seer ended the server it spawned.
    assert!(
        pids_matching(&format!("node {}", js.display())).is_empty(),
        "the everything server is still running"
    );
}
