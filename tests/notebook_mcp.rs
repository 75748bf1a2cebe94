//! A real notebook session's MCP server (streamable HTTP, bearer token) driven by the
//! official Python MCP SDK.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{Env, test_python, validate_notebooks};

#[test]
fn python_mcp_client_drives_a_real_session() {
    let python = test_python();
    let env = Env::new();
    env.write(
        "main.rhai",
        "let sb = Sandbox(#{ execution_mode: \"notebook\" }).start();\nlet s = create_notebook_session(sb, (), #{ name: \"agent\" });\nprint(to_json(s.mcp_config));\nprint(s.notebook_path);\nsleep(120);\n",
    );
    let mut seer = env
        .cmd()
        .args(["run", "main.rhai"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(seer.stdout.take().unwrap()).lines();
    let config = lines.next().unwrap().unwrap();
    let notebook = env.path().join(lines.next().unwrap().unwrap());
    let cfg: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(cfg["notebooks"]["type"], "http");
    assert!(
        cfg["notebooks"]["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );

    let out = Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/mcp_session_client.py"
        ))
        .arg(&config)
        .output()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(seer.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    seer.wait().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["no_token"], 401);
    assert_eq!(
        got["tools"],
        serde_json::json!([
            "add_markdown",
            "edit_cell",
            "execute_code",
            "interrupt_kernel",
            "restart_kernel",
            "shutdown_session"
        ])
    );
    let calc = got["calc"]["content"][0]["text"].as_str().unwrap();
    assert!(calc.contains("42"), "{calc}");
    assert_eq!(got["calc"]["isError"], false);
    assert_eq!(got["img"]["content"][1]["type"], "image");
    assert_eq!(got["img"]["content"][1]["mimeType"], "image/png");
    let err = got["err"]["content"][0]["text"].as_str().unwrap();
    assert!(
        err.contains("ZeroDivisionError") && !err.contains('\u{1b}'),
        "{err}"
    );
    let edit = got["edit"]["content"][0]["text"].as_str().unwrap();
    assert!(edit.contains("43"), "{edit}");

    // The agent's work is in the notebook, which stays on disk after Ctrl-C.
    let nb: serde_json::Value = serde_json::from_slice(&std::fs::read(&notebook).unwrap()).unwrap();
    let sources: Vec<String> = nb["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["source"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(sources[0], "x + 1");
    assert_eq!(sources[3], "# Found 42");
    assert_eq!(validate_notebooks(&env.path().join("outputs")), 1);
}

#[test]
fn seer_mcp_notebook_serves_a_live_sandbox_over_stdio() {
    let python = test_python();
    let env = Env::new();
    let out = env.run("let sb = Sandbox(#{ execution_mode: \"notebook\", timeout: 300 }).start();\nsb.detach();\nprint(sb.id);", &[]);
    let id = common::ok(&out).trim().to_string();
    let out = Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/mcp_stdio_client.py"
        ))
        .arg(env!("CARGO_BIN_EXE_seer"))
        .arg(&id)
        .env("SEER_HOME", &env.home)
        .env("SEER_CACHE_DIR", common::shared_cache())
        .current_dir(env.path())
        .output()
        .unwrap();
    common::ok(&env.run(&format!("Sandbox::from_id(\"{id}\").terminate();"), &[]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        got["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "execute_code")
    );
    assert!(got["text"].as_str().unwrap().contains("42"), "{got}");
    assert_eq!(validate_notebooks(&env.path().join("outputs")), 1);
}

#[test]
fn agent_mcp_client_reaches_http_and_stdio_servers() {
    use seer::agent::mcp_client::{McpConnections, ToolPart};
    let env = Env::new();
    // An HTTP server (a session in a running seer) and a sandbox for a stdio server.
    env.write(
        "main.rhai",
        "let sb = Sandbox(#{ execution_mode: \"notebook\", timeout: 300 }).start();\nsb.detach();\nlet s = create_notebook_session(sb, ());\nprint(to_json(s.mcp_config));\nprint(sb.id);\nsleep(120);\n",
    );
    let mut seer = env
        .cmd()
        .args(["run", "main.rhai"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(seer.stdout.take().unwrap()).lines();
    let http: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let id = lines.next().unwrap().unwrap();
    let config = serde_json::json!({
        "nb": http["notebooks"],
        "cli": {"type": "stdio", "command": env!("CARGO_BIN_EXE_seer"), "args": ["mcp", "notebook", id],
                "env": {"SEER_HOME": env.home.to_string_lossy(), "SEER_CACHE_DIR": common::shared_cache().to_string_lossy()}},
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let result = rt.block_on(async {
        let cancel = tokio_util::sync::CancellationToken::new();
        let mut conns = McpConnections::connect(&config, env.path(), &cancel)
            .await
            .unwrap();
        let names: Vec<String> = conns.tools().iter().map(|t| t.qualified.clone()).collect();
        let a = conns
            .call(
                "nb__execute_code",
                serde_json::json!({"code": "7 * 6"}),
                &cancel,
            )
            .await;
        let b = conns
            .call(
                "cli__execute_code",
                serde_json::json!({"code": "'stdio'"}),
                &cancel,
            )
            .await;
        let unknown = conns.call("nb__nope", serde_json::json!({}), &cancel).await;
        conns.close().await;
        (names, a, b, unknown)
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(seer.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    seer.wait().unwrap();
    common::ok(&env.run(&format!("Sandbox::from_id(\"{id}\").terminate();"), &[]));
    let (names, a, b, unknown) = result;
    assert!(
        names.contains(&"nb__execute_code".to_string())
            && names.contains(&"cli__edit_cell".to_string()),
        "{names:?}"
    );
    assert!(
        !a.is_error && matches!(&a.parts[0], ToolPart::Text(t) if t.contains("42")),
        "{a:?}"
    );
    assert!(!b.is_error && b.text().contains("'stdio'"), "{b:?}");
    assert!(
        unknown.is_error && unknown.text().starts_with("unknown tool `nb__nope`"),
        "{unknown:?}"
    );
}
