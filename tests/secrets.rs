//! Secrets end to end: a sandbox's declared `secrets` and the provider's API key, printed
//! from a notebook cell, a shell session and a third-party MCP server, reach neither the
//! provider, nor the transcript, the live log, the notebook, nor any file seer wrote; and
//! the timeout watchdog holds neither in its environment.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use common::fake_anthropic::{FakeAnthropic, text_turn, tool_results, tool_turn};
use common::{Env, assert_no_file_contains, files_under, ok, text, wait_for};
use serde_json::{Value, json};

const SECRET: &str = "my-secret-value-8c1f2e";
const KEY: &str = "sk-test-secrets-key-4b7e91";

fn everything_js() -> PathBuf {
    seer::testenv::npm_dir()
        .join("node_modules/@modelcontextprotocol/server-everything/dist/index.js")
}

#[test]
fn secrets_and_the_api_key_are_redacted_from_everything_an_agent_run_writes_or_sends() {
    let cell = "import os, pathlib\n\
                key = pathlib.Path('key.txt').read_text()\n\
                pathlib.Path('key.txt').unlink()\n\
                os.system('echo \"subprocess: $MY_SECRET\"')\n\
                print('secret:', os.environ['MY_SECRET'])\n\
                print('key:', key)\n\
                os.environ['MY_SECRET'] + ' ' + key";
    let cell2 = "from IPython.display import JSON, display\n\
                 display(JSON({'secret': os.environ['MY_SECRET'], 'key': key}))\n\
                 raise ValueError(os.environ['MY_SECRET'] + ' ' + key)";
    let fake = FakeAnthropic::start(vec![
        tool_turn(
            "Looking around.",
            &[
                (
                    "t_shell",
                    "shell__run_shell",
                    json!({"command": "echo \"shell: $MY_SECRET\"; echo \"key: $(cat key.txt)\"; echo \"err: $MY_SECRET\" >&2"}),
                ),
                ("t_cell", "notebooks__execute_code", json!({"code": cell})),
                ("t_env", "everything__get-env", json!({})),
            ],
            10,
            5,
        ),
        tool_turn(
            "",
            &[("t_cell2", "notebooks__execute_code", json!({"code": cell2}))],
            10,
            5,
        ),
        text_turn("done", 10, 5),
    ]);
    let env = Env::new();
    env.write(
        "main.rhai",
        r#"
let sb = Sandbox(#{ execution_mode: "notebook", secrets: ["MY_SECRET"] }).start();
// The kernel's environment has no API key: put it where a cell can read it.
sb.write_file("key.txt", env("ANTHROPIC_API_KEY"));
let nb = create_notebook_session(sb, (), #{ name: "nb" });
let sh = create_cli_session(sb, Workspace(#{}));
let mcp = nb.mcp_config;
mcp.mixin(sh.mcp_config);
// A stdio server gets only what its config gives it (here the secret), not seer's env.
mcp.everything = #{ type: "stdio", command: "node", args: [ARGS[1], "stdio"], env: #{ MY_SECRET: env("MY_SECRET") } };
let results = [];
let r = run_agent(#{ user_message: "Investigate.", mcp_config: mcp, base_url: ARGS[0], name: "spy", max_turns: 5 },
                  |m| if m.type == "tool_result" { results.push(m.text) });
print(`callback: ${results}`);
// The script's own paths: a session cell, a shell-session command and a sandbox command.
print(`exec: ${nb.exec("print(os.environ['MY_SECRET'], key)").text}`);
print(`shell exec: ${sh.exec("echo $MY_SECRET")}`);
print(`sandbox exec: ${sb.exec("echo $MY_SECRET")}`);
print(r.final_text);
"#,
    );
    let out = env
        .cmd()
        .env("ANTHROPIC_API_KEY", KEY)
        .env("MY_SECRET", SECRET)
        .args(["run", "main.rhai", "--", &fake.url])
        .arg(everything_js())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}\n{stdout}");

    // Neither value in seer's stdout (the callback, the script's prints) or stderr (the
    // live log)...
    for v in [SECRET, KEY] {
        assert!(!stdout.contains(v), "{v} in stdout:\n{stdout}");
        assert!(!stderr.contains(v), "{v} in stderr:\n{stderr}");
    }
    for want in [
        "exec: *** ***",
        "shell exec: ***",
        "sandbox exec: ***",
        "secret: ***",
    ] {
        assert!(stdout.contains(want), "{want:?} not in:\n{stdout}");
    }
    assert!(stderr.contains("[spy] ← "), "{stderr}");

    // ...nor in any request the provider received, where `***` stands in their place.
    let seen = fake.requests();
    assert_eq!(seen.len(), 3);
    for (_, body) in &seen {
        let body = body.to_string();
        assert!(!body.contains(SECRET) && !body.contains(KEY), "{body}");
    }
    let results: BTreeMap<String, String> = seen
        .iter()
        .flat_map(|(_, b)| tool_results(b))
        .map(|r| {
            (
                r["tool_use_id"].as_str().unwrap().to_string(),
                r["content"].to_string(),
            )
        })
        .collect();
    let shell = &results["t_shell"];
    assert!(
        shell.contains("shell: ***") && shell.contains("key: ***") && shell.contains("err: ***"),
        "{shell}"
    );
    let cell = &results["t_cell"];
    assert!(
        cell.contains("secret: ***") && cell.contains("key: ***") && cell.contains("*** ***"),
        "{cell}"
    );
    let env_result = &results["t_env"];
    assert!(
        env_result.contains(r#"\"MY_SECRET\": \"***\""#)
            && !env_result.contains("ANTHROPIC_API_KEY"),
        "{env_result}"
    );
    let cell2 = &results["t_cell2"];
    assert!(
        cell2.contains("ValueError") && cell2.contains("*** ***"),
        "{cell2}"
    );

    // ...nor in any file seer wrote: outputs (notebook, transcript, run.json) and state
    // (records, logs, the workspace, whose key file the cell deleted).
    let outputs = env.path().join("outputs");
    assert_no_file_contains(&outputs, &[SECRET, KEY]);
    assert_no_file_contains(&env.home, &[SECRET, KEY]);
    // What a cell's subprocess printed reached the kernel's log, redacted.
    let kernel_logs: Vec<String> = files_under(&env.home)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("kernel-"))
        })
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    assert!(
        kernel_logs
            .iter()
            .any(|l| l.lines().any(|l| l == "subprocess: ***")),
        "{kernel_logs:?}"
    );
    let written = files_under(&outputs);
    assert!(
        written
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "jsonl"))
    );
    let notebook = written
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "ipynb"))
        .unwrap();
    let nb = std::fs::read_to_string(notebook).unwrap();
    assert!(
        nb.contains("secret: ***") && nb.contains(r#""secret":"***""#),
        "{nb}"
    );
}

#[test]
fn the_watchdog_holds_no_secret_or_api_key() {
    let env = Env::new();
    env.write(
        "main.rhai",
        r#"
let sb = Sandbox(#{ secrets: ["MY_SECRET"], timeout: 600 }).start();
print(sb.exec("test \"$MY_SECRET\" = my-secret-value-8c1f2e && echo has-secret"));
sb.detach();
print(sb.id);
"#,
    );
    let out = env
        .cmd()
        .env("ANTHROPIC_API_KEY", KEY)
        .env("OPENAI_API_KEY", KEY)
        .env("MY_SECRET", SECRET)
        .args(["run", "main.rhai"])
        .output()
        .unwrap();
    let stdout = ok(&out);
    assert!(stdout.contains("has-secret"), "{stdout}");
    let id = stdout.lines().last().unwrap().trim().to_string();
    let dir = env.home.join("sandboxes").join(&id);
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sandbox.json")).unwrap()).unwrap();
    let pid = record["watchdog_pid"].as_u64().expect("a watchdog pid");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(cmdline.contains("__watchdog"), "{cmdline}");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ).replace('\0', "\n");
    for v in [
        SECRET,
        KEY,
        "MY_SECRET",
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
    ] {
        assert!(
            !environ.contains(v),
            "{v} in the watchdog's environment:\n{environ}"
        );
    }
    assert!(environ.contains("SEER_HOME="), "{environ}");

    // Ending the sandbox ends its watchdog.
    env.terminate(&id);
    wait_for("the watchdog to exit", Duration::from_secs(5), || {
        !std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains("__watchdog"))
    });
}

/// A secret printed half to stdout and half to stderr by one cell (each half on its own is
/// no secret) is masked in both, in what the script gets and in the notebook on disk.
#[test]
fn a_secret_split_between_stdout_and_stderr_is_redacted() {
    let env = Env::new();
    env.write(
        "main.rhai",
        r#"
let sb = Sandbox(#{ execution_mode: "notebook", secrets: ["MY_SECRET"] }).start();
let nb = create_notebook_session(sb, (), #{ name: "nb" });
let r = nb.exec("import os, sys\ns = os.environ['MY_SECRET']\nprint('out:', s[:9], end='', flush=True)\nsys.stderr.write(s[9:] + ' :err')\nsys.stderr.flush()");
print(r.text);
"#,
    );
    let out = env
        .cmd()
        .env("MY_SECRET", SECRET)
        .args(["run", "main.rhai"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout, "out: ****** :err\n");
    let run = env.runs().pop().unwrap();
    let notebook = std::fs::read_to_string(run.join("nb.ipynb")).unwrap();
    let nb: serde_json::Value = serde_json::from_str(&notebook).unwrap();
    let streams: Vec<String> = nb["cells"][0]["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| seer::kernel::bundle_text(&o["text"]))
        .collect();
    assert_eq!(streams, ["out: ***", "*** :err"]);
}
