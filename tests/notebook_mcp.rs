//! A real notebook session's MCP server (streamable HTTP, bearer token) driven by the
//! official Python MCP SDK.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use std::process::Command;

use common::{Env, cell_sources, read_json, shared_cache, test_python, validate_notebooks};
use serde_json::{Value, json};

const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

/// The six tools of a notebook session.
const TOOLS: [&str; 6] = [
    "add_markdown",
    "edit_cell",
    "execute_code",
    "interrupt_kernel",
    "restart_kernel",
    "shutdown_session",
];

#[test]
fn python_mcp_client_drives_a_real_session() {
    let python = test_python();
    let env = Env::new();
    let mut seer = env.spawn(
        "let sb = Sandbox(#{ execution_mode: \"notebook\" }).start();\nlet s = create_notebook_session(sb, (), #{ name: \"agent\" });\nprint(to_json(s.mcp_config));\nprint(s.notebook_path);\nsleep(120);\n",
    );
    let config = seer.next_line(120);
    let notebook = seer.next_line(10);
    assert_eq!(notebook, format!("outputs/{}/agent.ipynb", env.the_run()));
    let cfg: Value = serde_json::from_str(&config).unwrap();
    // A loopback URL with its own bearer token.
    let url = cfg["notebooks"]["url"].as_str().unwrap_or_default();
    let port = url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|p| p.strip_suffix("/mcp"))
        .unwrap_or_else(|| panic!("{cfg}"));
    let token = cfg["notebooks"]["headers"]["Authorization"]
        .as_str()
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or_else(|| panic!("{cfg}"));
    assert!(
        token.len() == 64 && token.chars().all(|c| c.is_ascii_hexdigit()),
        "{token}"
    );
    assert_eq!(
        cfg,
        json!({"notebooks": {"type": "http", "url": format!("http://127.0.0.1:{port}/mcp"),
                             "headers": {"Authorization": format!("Bearer {token}")}}})
    );

    let out = Command::new(&python)
        .arg(seer::testenv::fixture("mcp_session_client.py"))
        .arg(&config)
        .output()
        .unwrap();
    seer.ctrl_c();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Each call's result as the SDK sees it: the cell, its output; the image attached; the
    // error's traceback without ANSI codes.
    let result =
        |content: Value| json!({"content": content, "isError": false, "resultType": "complete"});
    let text = |t: &str| json!([{"type": "text", "text": t}]);
    assert_eq!(
        got,
        json!({
            "no_token": 401,
            "tools": TOOLS,
            "calc": result(text("[cell 0, execution_count 1]\n42")),
            "img": result(json!([
                {"type": "text", "text": "[cell 1, execution_count 2]\n<IPython.core.display.Image object>\n[image 1: image/png, attached]"},
                {"type": "image", "mimeType": "image/png", "data": PNG_1X1}])),
            "err": result(text(
                "[cell 2, execution_count 3]\nZeroDivisionError: division by zero\n\
                 ---------------------------------------------------------------------------\n\
                 ZeroDivisionError                         Traceback (most recent call last)\n\
                 Cell In[3], line 1\n----> 1 1/0\n\nZeroDivisionError: division by zero\n\
                 [error: the code raised an exception]")),
            "md": result(text("[markdown cell 3 added]")),
            "edit": result(text("[cell 0, execution_count 4]\n43")),
        })
    );

    // The agent's work is in the notebook, which stays on disk after Ctrl-C.
    let nb = read_json(&env.path().join(&notebook));
    assert_eq!(
        cell_sources(&nb),
        [
            "x + 1".to_string(),
            format!(
                "from IPython.display import Image, display; import base64; display(Image(data=base64.b64decode('{PNG_1X1}')))"
            ),
            "1/0".to_string(),
            "# Found 42".to_string(),
        ]
    );
    assert_eq!(validate_notebooks(&env.path().join("outputs")), 1);
}

#[test]
fn seer_mcp_notebook_serves_a_live_sandbox_over_stdio() {
    let env = Env::new();
    let id = env.detached_sandbox("#{ execution_mode: \"notebook\", timeout: 300 }");
    let got = env.stdio_mcp_client(&id, None);
    env.terminate(&id);
    assert_eq!(
        got,
        json!({"tools": TOOLS, "text": "[cell 0, execution_count 1]\n42"})
    );
    assert_eq!(validate_notebooks(&env.path().join("outputs")), 1);
}

#[test]
fn agent_mcp_client_reaches_http_and_stdio_servers() {
    use seer::agent::mcp_client::{McpConnections, ToolOutput, ToolPart};
    let env = Env::new();
    // An HTTP server (a session in a running seer) and a sandbox for a stdio server.
    let mut seer = env.spawn(
        "let sb = Sandbox(#{ execution_mode: \"notebook\", timeout: 300 }).start();\nsb.detach();\nlet s = create_notebook_session(sb, ());\nprint(to_json(s.mcp_config));\nprint(sb.id);\nsleep(120);\n",
    );
    let http: Value = serde_json::from_str(&seer.next_line(120)).unwrap();
    let id = seer.next_line(10);
    let mut vars = json!({"SEER_HOME": env.home.to_string_lossy(), "SEER_CACHE_DIR": shared_cache().to_string_lossy()});
    for (k, v) in env.cluster_vars() {
        vars[k] = json!(v);
    }
    let config = json!({
        "nb": http["notebooks"],
        "cli": {"type": "stdio", "command": env!("CARGO_BIN_EXE_seer"), "args": ["mcp", "notebook", id], "env": vars},
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let result = rt.block_on(async {
        let cancel = tokio_util::sync::CancellationToken::new();
        let mut conns = McpConnections::connect(&config, env.path(), &cancel)
            .await
            .unwrap();
        let names: Vec<String> = conns.tools().iter().map(|t| t.qualified.clone()).collect();
        let a = conns
            .call("nb__execute_code", json!({"code": "7 * 6"}), &cancel)
            .await;
        let b = conns
            .call("cli__execute_code", json!({"code": "'stdio'"}), &cancel)
            .await;
        let unknown = conns.call("nb__nope", json!({}), &cancel).await;
        conns.close().await;
        (names, a, b, unknown)
    });
    seer.ctrl_c();
    env.terminate(&id);
    let (names, a, b, unknown) = result;
    // Both servers' tools, qualified by the server's name.
    let all: Vec<String> = ["cli", "nb"]
        .iter()
        .flat_map(|server| TOOLS.iter().map(move |t| format!("{server}__{t}")))
        .collect();
    assert_eq!(names, all);
    let result = |o: &ToolOutput| (o.is_error, o.parts.clone());
    assert_eq!(
        result(&a),
        (
            false,
            vec![ToolPart::Text("[cell 0, execution_count 1]\n42".into())]
        )
    );
    assert_eq!(
        result(&b),
        (
            false,
            vec![ToolPart::Text(
                "[cell 0, execution_count 1]\n'stdio'".into()
            )]
        )
    );
    assert_eq!(
        result(&unknown),
        (
            true,
            vec![ToolPart::Text(format!(
                "unknown tool `nb__nope`; the tools are: {}",
                all.join(", ")
            ))]
        )
    );
}

// The same tests with every sandbox on ssh and on Slurm.
on_remote_backends!(
    python_mcp_client_drives_a_real_session,
    seer_mcp_notebook_serves_a_live_sandbox_over_stdio,
    agent_mcp_client_reaches_http_and_stdio_servers,
);
