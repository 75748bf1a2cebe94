//! The live view and `seer view`, in a real headless chromium driven by playwright-core:
//! a notebook page open while the script runs cells, an agent's transcript page (the agent
//! against the loopback Anthropic fake), the run page, the token, past runs served by
//! `seer view`, and `seer attach`. Screenshots go to `<target>/view-screenshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::browser::Chromium;
use common::fake_anthropic::{FakeAnthropic, compute_6x7};
use common::{Env, Running, TEST_KEY, lines, ok, read_json};
use serde_json::json;

/// `seer run main.rhai [-- args]` in the background with the live view on.
fn spawn_with_view(env: &Env, script: &str, args: &[&str], key: bool) -> Running {
    env.write("main.rhai", script);
    let mut c: Command = env.cmd();
    c.env("SEER_VIEW", "on")
        .args(["run", "main.rhai", "--"])
        .args(args);
    if key {
        c.env("ANTHROPIC_API_KEY", TEST_KEY);
    }
    Running::start(c)
}

/// `http://127.0.0.1:PORT/path?token=T` → (`http://127.0.0.1:PORT/path`, `T`).
fn split_token(url: &str) -> (String, String) {
    let (base, token) = url.split_once("?token=").expect("a token in the URL");
    (base.to_string(), token.to_string())
}

const PNG_CELL: &str = r#"import struct, zlib
from IPython.display import Image, display
def png(w, h):
    rows = b''.join(b'\x00' + b''.join(bytes((x * 4 % 256, y * 8 % 256, 160)) for x in range(w)) for y in range(h))
    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b'')
display(Image(data=png(64, 32)))"#;

#[test]
fn a_notebook_page_shows_each_cell_as_it_runs_without_a_reload() {
    let env = Env::new();
    let script = format!(
        r##"
let sb = Sandbox(#{{ execution_mode: "notebook" }}).start();
let s = create_notebook_session(sb, (), #{{ name: "live" }});
print(s.view_url);
print(s.jupyter_url == s.view_url);
print(sb.jupyter_url);
print(s.workspace_path);
s.add_markdown("# Probe\n\nA *markdown* cell.");
s.exec("import os, time\nwhile not os.path.exists('go'): time.sleep(0.02)");
for i in 0..5 {{ s.exec(`time.sleep(0.2); print('cell ${{i}}')`); }}
s.exec("print('a hidden cell')", #{{ hidden: true }});
s.exec({png:?});
s.exec("from IPython.display import HTML; HTML('<b>bold</b> html')");
s.exec("1 / 0", #{{ raise: false }});
s.add_markdown("the end");
s.exec("while not os.path.exists('done'): time.sleep(0.02)", #{{ hidden: true }});
"##,
        png = PNG_CELL
    );
    let mut seer = spawn_with_view(&env, &script, &[], false);
    let printed = seer.expect("live view: http://127.0.0.1:", 120);
    let index_url = printed.strip_prefix("live view: ").unwrap().to_string();
    let notebook_url = seer.next_line(120);
    assert_eq!(seer.next_line(10), "true", "jupyter_url is view_url");
    let run_url = seer.next_line(10);
    let workspace = seer.next_line(10);
    let (index_base, token) = split_token(&index_url);
    let run = seer_run_name(&env);
    assert_eq!(
        notebook_url,
        format!("{index_base}runs/{run}/notebooks/live?token={token}")
    );
    assert_eq!(run_url, format!("{index_base}runs/{run}?token={token}"));

    let browser = Chromium::start();
    let shots = seer::testenv::screenshots();
    let (page, _) = split_token(&notebook_url);
    let got = browser.run(
        "notebook",
        json!({"url": notebook_url, "workspace": workspace, "shots": shots, "no_token": page}),
    );
    assert_eq!(
        got,
        json!({
            "same_page": true,
            "arrived": ["cell 0", "cell 1", "cell 2", "cell 3", "cell 4"],
            "running_now": 0,
            "cells": [
                "markdown: <h1>Probe</h1>",
                "[1]: import os, time",
                "[2]: time.sleep(0.2); print('cell 0')",
                "[3]: time.sleep(0.2); print('cell 1')",
                "[4]: time.sleep(0.2); print('cell 2')",
                "[5]: time.sleep(0.2); print('cell 3')",
                "[6]: time.sleep(0.2); print('cell 4')",
                "[7]: import struct, zlib",
                "[8]: from IPython.display import HTML; HTML('<b>bold</b> html')",
                "[9]: 1 / 0",
                "markdown: <p>the end</p>",
            ],
            "image": [64, 32],
            "error": "ZeroDivisionError: division by zero",
            "error_coloured": true,
            "html_frame": "bold",
            "hidden_shown": false,
            "status_without_token": 401,
            "status_wrong_token": 401,
        })
    );
    let status = seer.child.wait().unwrap();
    assert!(status.success(), "{}", seer.transcript());
    // The page showed what the .ipynb holds.
    let nb = read_json(&env.runs()[0].join("live.ipynb"));
    assert_eq!(nb["cells"].as_array().unwrap().len(), 11);
}

/// The only run folder's name.
fn seer_run_name(env: &Env) -> String {
    common::wait_for("the run folder", std::time::Duration::from_secs(30), || {
        env.runs().len() == 1
    });
    env.the_run()
}

#[test]
fn a_transcript_page_shows_the_agents_tool_call_and_its_result() {
    let fake = FakeAnthropic::start(compute_6x7("notebooks__execute_code"));
    let env = Env::new();
    let script = r##"
let sb = Sandbox(#{ execution_mode: "notebook" }).start();
let s = create_notebook_session(sb, (), #{ name: "agent" });
let r = run_agent(#{ user_message: "What is 6 * 7?", mcp_config: s.mcp_config, base_url: ARGS[0], name: "solver", max_turns: 5, live_log: false });
print(sb.jupyter_url);
print(s.workspace_path);
s.exec("import os, time\nwhile not os.path.exists('done'): time.sleep(0.02)", #{ hidden: true });
"##;
    let mut seer = spawn_with_view(&env, script, &[&fake.url], true);
    let run_url = seer.next_line(120);
    let workspace = seer.next_line(10);
    let run = env.the_run();
    let (base, token) = split_token(&run_url);
    let base = base.split("/runs/").next().unwrap().to_string();
    let browser = Chromium::start();
    let shots = seer::testenv::screenshots();
    let url = format!("{base}/runs/{run}/transcripts/solver?token={token}");
    let got = browser.run("transcript", json!({"url": url, "shots": shots}));
    assert_eq!(
        got,
        json!({
            "head": "done: end_turn · 2 turns · 300 in / 27 out tokens · $0.0013",
            "user": "user\n\nWhat is 6 * 7?",
            "text": ["Let me compute.", "The answer is 42."],
            "call": "→ notebooks__execute_code",
            "args": "6 * 7",
            "result": ["← notebooks__execute_code", "[cell 0, execution_count 1]", "42"],
            "done": "done: end_turn after 2 turns · 300 in / 27 out tokens · $0.0013",
        })
    );
    // The run page: the sandbox, the session's notebook, the agent's transcript.
    let page = browser.run("run", json!({"url": run_url, "shots": shots}));
    let sandbox_id = page["sandboxes"][0][0].as_str().unwrap().to_string();
    assert_eq!(
        page,
        json!({
            "sandboxes": [[sandbox_id, "local", "running", "", "–"]],
            "notebooks": ["agent"],
            "transcripts": ["solver"],
        })
    );
    std::fs::write(std::path::Path::new(&workspace).join("done"), "").unwrap();
    let status = seer.child.wait().unwrap();
    assert!(status.success(), "{}", seer.transcript());
}

#[test]
fn seer_view_lists_past_runs_and_opens_one() {
    let env = Env::new();
    for (i, code) in ["21 * 2", "print('second run')"].iter().enumerate() {
        let out = env.run(
            &format!(
                "let s = create_notebook_session(Sandbox(#{{ execution_mode: \"notebook\" }}).start(), (), #{{ name: \"nb{i}\" }});\ns.exec({code:?});"
            ),
            &[],
        );
        ok(&out);
        // Run folders are named by the second.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let runs: Vec<String> = env
        .runs()
        .iter()
        .map(|r| r.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    assert_eq!(runs.len(), 2);
    let mut c = env.cmd();
    c.args(["view", "outputs"]);
    let mut view = Running::start(c);
    let line = view.expect("seer view: the runs in outputs at ", 30);
    let url = line.rsplit(' ').next().unwrap().to_string();
    let (page, _) = split_token(&url);
    let browser = Chromium::start();
    let shots = seer::testenv::screenshots();
    let got = browser.run(
        "view",
        json!({"url": url, "shots": shots, "no_token": page}),
    );
    let rows = got["rows"].as_array().unwrap();
    // Newest first: run, script, date, duration, agents, tokens, cost, status.
    let row = |i: usize| -> Vec<String> {
        rows[i]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect()
    };
    let script = env.path().join("main.rhai").canonicalize().unwrap();
    for (i, run) in [(0, &runs[1]), (1, &runs[0])] {
        let r = row(i);
        assert_eq!(r[0], *run);
        assert_eq!(r[1], script.to_string_lossy());
        assert!(r[3].ends_with(" s"), "{r:?}");
        assert_eq!(&r[4..], ["0", "0 / 0", "–", "ok"], "{r:?}");
    }
    assert_eq!(
        got["cells"],
        json!(["[1]:\nprint('second run')\nsecond run"])
    );
    assert_eq!(got["title"], "nb1");
    assert_eq!(got["status_without_token"], 401);
    view.child.kill().unwrap();
    view.child.wait().unwrap();
}

#[test]
fn seer_attach_gives_the_kernel_of_a_session() {
    let env = Env::new();
    let script = r##"
let sb = Sandbox(#{ execution_mode: "notebook" }).start();
let s = create_notebook_session(sb, (), #{ name: "poke" });
s.exec("secret_number = 41");
print(sb.id);
print(s.workspace_path);
s.exec("import os, time\nwhile not os.path.exists('done'): time.sleep(0.02)");
"##;
    let mut seer = spawn_with_view(&env, script, &[], false);
    let id = seer.next_line(120);
    let workspace = seer.next_line(10);
    let out = env
        .cmd()
        .args(["attach", &id, "--session", "poke"])
        .output()
        .unwrap();
    let stdout = ok(&out);
    let l = lines(&stdout);
    let file = l[0].strip_prefix("kernel connection file: ").unwrap();
    assert_eq!(
        l,
        [
            format!("kernel connection file: {file}"),
            format!("attach with: jupyter console --existing {file}"),
        ]
    );
    let conn = read_json(std::path::Path::new(file));
    assert_eq!(conn["signature_scheme"], "hmac-sha256");
    // The newest session's kernel when no name is given; an unknown name says which exist.
    let out = env.cmd().args(["attach", &id]).output().unwrap();
    assert_eq!(lines(&ok(&out))[0], l[0]);
    let out = env
        .cmd()
        .args(["attach", &id, "--session", "nope"])
        .output()
        .unwrap();
    assert_eq!(
        common::failed(&out),
        format!(
            "error: sandbox {id} has no notebook session named \"nope\" (its sessions: poke)\n"
        )
    );
    std::fs::write(std::path::Path::new(&workspace).join("done"), "").unwrap();
    let status = seer.child.wait().unwrap();
    assert!(status.success(), "{}", seer.transcript());
}

#[test]
fn the_view_is_off_with_seer_view_off() {
    let env = Env::new();
    let out = env.run(
        "let sb = Sandbox(#{ execution_mode: \"notebook\" }).start();\nlet s = create_notebook_session(sb, ());\nprint(s.view_url); print(sb.jupyter_url);",
        &[],
    );
    let (stdout, stderr) = common::text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!((stdout.as_str(), stderr.as_str()), ("\n\n", ""));
}
