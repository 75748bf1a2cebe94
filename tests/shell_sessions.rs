//! CLI and local sessions: an agent (against the loopback Anthropic fake) runs shell and
//! Python through the session's MCP tools, in the sandbox or in a local folder, with the
//! workspace's libraries importable, output limits and timeouts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use common::Env;
use common::fake_anthropic::{
    FakeAnthropic, answer, cached, call_turn, tool_names, tool_results, tool_turn,
};
use serde_json::json;

#[test]
fn an_agent_works_in_a_cli_session_inside_the_sandbox() {
    let fake = FakeAnthropic::start(vec![
        tool_turn(
            "",
            &[
                (
                    "t1",
                    "shell__run_shell",
                    json!({"command": "echo hi; python -c 'import helpers; print(helpers.double(4))'"}),
                ),
                (
                    "t2",
                    "shell__run_python",
                    json!({"code": "import helpers, os\nprint(helpers.double(21), os.getcwd().endswith('workspace'))"}),
                ),
                (
                    "t3",
                    "shell__run_shell",
                    json!({"command": "echo oops >&2; exit 3"}),
                ),
                (
                    "t4",
                    "shell__run_shell",
                    json!({"command": "sleep 5", "timeout_s": 0.5}),
                ),
            ],
            10,
            5,
        ),
        answer("done"),
    ]);
    let env = Env::new();
    let (out, stdout, stderr) = env.run_agent_script(
        r#"
let sb = Sandbox(#{}).start();
let ws = Workspace(#{ libraries: [Library::from_code("helpers", "def double(x):\n    return 2 * x\n")] });
let s = create_cli_session(sb, ws);
print(s.exec_python("import helpers; print(helpers.double(5))"));
let r = run_agent(#{ user_message: "go", mcp_config: s.mcp_config, base_url: ARGS[0], live_log: false });
print(r.final_text);
"#,
        &fake.url,
    );
    assert!(out.status.success(), "{stderr}\n{stdout}");
    assert_eq!(stdout, "10\n\ndone\n");
    let seen = fake.requests();
    let mut tools = tool_names(&seen[0].1);
    tools.sort();
    assert_eq!(tools, ["shell__run_python", "shell__run_shell"]);
    let result = |id: &str, is_error: bool, text: &str| {
        json!({"type": "tool_result", "tool_use_id": id, "is_error": is_error,
               "content": [{"type": "text", "text": text}]})
    };
    assert_eq!(
        tool_results(&seen[1].1),
        [
            result("t1", false, "[exit code 0]\nhi\n8\n"),
            result("t2", false, "[exit code 0]\n42 True\n"),
            result("t3", true, "[exit code 3]\n\n[stderr]\noops\n"),
            // The end of the history carries a prompt-cache breakpoint.
            cached(result(
                "t4",
                true,
                "command timed out after 0.5s and was killed: sleep 5\n--- output so far ---\n"
            )),
        ]
    );
}

#[test]
fn an_agent_works_in_a_local_folder_in_a_local_session() {
    let fake = FakeAnthropic::start(vec![
        call_turn(
            "t1",
            "shell__run_shell",
            json!({"command": "pwd; echo data > notes.txt; python -c 'import helpers; print(helpers.NAME)'"}),
        ),
        answer("done"),
    ]);
    let env = Env::new();
    let (out, stdout, stderr) = env.run_agent_script(
        r#"
let ws = Workspace(#{ libraries: [Library::from_code("helpers", "NAME = 'lib ok'\n")] });
let s = create_local_session(ws, #{ workspace_dir: "work", name: "local" });
let r = run_agent(#{ user_message: "go", mcp_config: s.mcp_config, base_url: ARGS[0], live_log: false });
print(s.workspace_path);
"#,
        &fake.url,
    );
    assert!(out.status.success(), "{stderr}\n{stdout}");
    let work = std::fs::canonicalize(env.path().join("work")).unwrap();
    assert_eq!(
        std::fs::canonicalize(stdout.trim()).unwrap(),
        work,
        "{stdout}"
    );
    // The command ran in the workspace folder, with the library importable.
    assert_eq!(
        tool_results(&fake.requests()[1].1),
        [
            json!({"type": "tool_result", "tool_use_id": "t1", "is_error": false, "content": [
            {"type": "text", "text": format!("[exit code 0]\n{}\nlib ok\n", work.display())}],
            "cache_control": {"type": "ephemeral"}})
        ]
    );
    assert_eq!(
        std::fs::read_to_string(work.join("notes.txt")).unwrap(),
        "data\n"
    );
}

// The same tests with every sandbox on ssh and on Slurm.
on_remote_backends!(an_agent_works_in_a_cli_session_inside_the_sandbox,);
