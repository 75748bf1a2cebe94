//! A real notebook session's MCP server (streamable HTTP, bearer token) driven by the
//! official Python MCP SDK.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    Env, Running, cell_sources, read_json, shared_cache, test_python, validate_notebooks,
};
use seer::agent::mcp_client::{McpConnections, ToolOutput, ToolPart};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

/// The seven tools of a notebook session.
const TOOLS: [&str; 7] = [
    "add_markdown",
    "edit_cell",
    "execute_code",
    "interrupt_kernel",
    "read_cell",
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

/// `seer run` of a script that opens a notebook session (`sandbox` and `session` are Rhai
/// maps) and prints its `mcp_config`, with `vars` in seer's environment; returns the
/// running seer and the config.
fn serve_a_session(
    env: &Env,
    sandbox: &str,
    session: &str,
    vars: &[(&str, &str)],
) -> (Running, Value) {
    env.write(
        "main.rhai",
        &format!(
            "let sb = Sandbox({sandbox}).start();\nlet s = create_notebook_session(sb, (), {session});\nprint(to_json(s.mcp_config));\nsleep(300);\n"
        ),
    );
    let mut cmd = env.cmd();
    cmd.args(["run", "main.rhai"]).envs(vars.iter().copied());
    let mut seer = Running::start(cmd);
    let config = serde_json::from_str(&seer.next_line(120)).unwrap();
    (seer, config)
}

fn text(parts: &[&str]) -> ToolOutput {
    ToolOutput {
        parts: parts
            .iter()
            .map(|p| ToolPart::Text(p.to_string()))
            .collect(),
        is_error: false,
    }
}

/// The bug of issue #23: rmcp ended an MCP session 300 s after its last message, in the
/// middle of a quiet cell, which got a KeyboardInterrupt while the agent waited forever.
/// Now the keep-alive (here 2 s) counts idle time only.
#[test]
fn a_cell_outlasting_the_session_keep_alive_returns_its_output() {
    let env = Env::new();
    let (mut seer, config) = serve_a_session(
        &env,
        "#{ execution_mode: \"notebook\" }",
        "#{ name: \"long\" }",
        &[("SEER_MCP_KEEPALIVE_S", "2")],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (long, later) = rt.block_on(async {
        let cancel = CancellationToken::new();
        let mut conns = McpConnections::connect(&config, env.path(), &cancel)
            .await
            .unwrap();
        let code = "import time\nprint('started', flush=True)\ntime.sleep(8)\nprint('still here')";
        let long = conns
            .call("notebooks__execute_code", json!({"code": code}), &cancel)
            .await;
        // Idle for longer than the keep-alive between two calls.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let later = conns
            .call("notebooks__execute_code", json!({"code": "1 + 1"}), &cancel)
            .await;
        conns.close().await;
        (long, later)
    });
    seer.ctrl_c();
    assert_eq!(
        long,
        text(&["[cell 0, execution_count 1]\nstarted\nstill here"])
    );
    assert_eq!(later, text(&["[cell 1, execution_count 2]\n2"]));
}

/// A deadline shorter than the cell: the call ends with an error saying so, the cell is
/// interrupted (the next one runs at once) and its output stays readable.
#[test]
fn a_call_past_its_deadline_is_an_error_and_interrupts_the_cell() {
    let env = Env::new();
    let (mut seer, config) = serve_a_session(
        &env,
        "#{ execution_mode: \"notebook\" }",
        "#{ name: \"late\", timeout: 600 }",
        &[],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (deadline, late, next, took, read) = rt.block_on(async {
        let cancel = CancellationToken::new();
        let mut conns = McpConnections::connect(&config, env.path(), &cancel)
            .await
            .unwrap();
        // The session's cell timeout, plus ten minutes for an interrupt and a restart.
        let deadline = conns.deadline_for("notebooks__execute_code");
        let code = "import time\nprint('started', flush=True)\ntime.sleep(120)";
        let late = conns
            .call_with_deadline(
                "notebooks__execute_code",
                json!({"code": code}),
                &cancel,
                Duration::from_secs(3),
            )
            .await;
        let started = Instant::now();
        let next = conns
            .call(
                "notebooks__execute_code",
                json!({"code": "print('next')"}),
                &cancel,
            )
            .await;
        let took = started.elapsed();
        let read = conns
            .call("notebooks__read_cell", json!({"cell_index": 0}), &cancel)
            .await;
        conns.close().await;
        (deadline, late, next, took, read)
    });
    seer.ctrl_c();
    assert_eq!(deadline, Duration::from_secs(1200));
    assert_eq!(
        late,
        ToolOutput::error(
            "the call of `notebooks__execute_code` did not finish within 3s (its deadline) and \
             was cancelled; the server was told to stop it."
        )
    );
    assert_eq!(next, text(&["[cell 1, execution_count 2]\nnext"]));
    assert!(took < Duration::from_secs(30), "{took:?}");
    let read = read.text();
    assert!(
        read.starts_with(
            "[cell 0, execution_count 1]\n[source]\nimport time\nprint('started', flush=True)\n\
             time.sleep(120)\n[outputs]\nstarted\nKeyboardInterrupt: \n"
        ),
        "{read}"
    );
    assert!(read.ends_with("; the end of cell 0]"), "{read}");
}

/// `read_cell` gives a past cell back as the notebook holds it (the secret redacted), in
/// pages that end at line ends.
#[test]
fn read_cell_returns_a_past_cells_source_and_output_paged() {
    let env = Env::new();
    let secret = "s3cret-value-for-read-cell";
    let (mut seer, config) = serve_a_session(
        &env,
        "#{ execution_mode: \"notebook\", secrets: [\"READ_CELL_SECRET\"] }",
        "#{ name: \"pages\" }",
        &[("READ_CELL_SECRET", secret)],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (ran, whole, pages, markdown, past_end) = rt.block_on(async {
        let cancel = CancellationToken::new();
        let mut conns = McpConnections::connect(&config, env.path(), &cancel)
            .await
            .unwrap();
        let code = "import os\nfor i in range(12):\n    print(f'line {i:02d}')\nprint(os.environ['READ_CELL_SECRET'])";
        let ran = conns
            .call("notebooks__execute_code", json!({"code": code}), &cancel)
            .await;
        conns
            .call("notebooks__add_markdown", json!({"content": "# Lines\nTwelve of them."}), &cancel)
            .await;
        let read = |args: Value| {
            let (conns, cancel) = (&conns, &cancel);
            async move { conns.call("notebooks__read_cell", args, cancel).await }
        };
        let whole = read(json!({"cell_index": 0})).await;
        let mut pages = vec![];
        let mut offset = 0;
        loop {
            let page = read(json!({"cell_index": 0, "offset": offset, "limit": 60})).await;
            let text = page.text();
            pages.push(page);
            match text.rsplit_once("offset=") {
                Some((_, next)) => offset = next.trim_end_matches(']').parse().unwrap(),
                None => break,
            }
        }
        let markdown = read(json!({"cell_index": -1})).await;
        let past_end = read(json!({"cell_index": 0, "offset": 10_000})).await;
        conns.close().await;
        (ran, whole, pages, markdown, past_end)
    });
    seer.ctrl_c();
    let lines: String = (0..12).map(|i| format!("line {i:02}\n")).collect();
    assert_eq!(
        ran,
        text(&[&format!("[cell 0, execution_count 1]\n{lines}***")])
    );
    let source = "import os\nfor i in range(12):\n    print(f'line {i:02d}')\nprint(os.environ['READ_CELL_SECRET'])";
    let body = format!("[source]\n{source}\n[outputs]\n{lines}***");
    let n = body.len();
    assert_eq!(
        whole,
        text(&[&format!(
            "[cell 0, execution_count 1]\n{body}\n[shown: characters 0-{n} of {n}; the end of cell 0]"
        )])
    );
    // Pages of at most 60 characters, ending after a line where one ends in the page's
    // second half, together the whole text.
    let mut at = 0;
    let mut expected = vec![];
    while at < n {
        let mut end = (at + 60).min(n);
        if end < n
            && let Some(nl) = body[at..end].rfind('\n').filter(|nl| nl + 1 >= 30)
        {
            end = at + nl + 1;
        }
        let page = body[at..end].trim_end_matches('\n');
        let last = if end < n {
            format!(
                "[shown: characters {at}-{end} of {n}; {} more: read_cell with cell_index=0, offset={end}]",
                n - end
            )
        } else {
            format!("[shown: characters {at}-{end} of {n}; the end of cell 0]")
        };
        expected.push(text(&[&format!(
            "[cell 0, execution_count 1]\n{page}\n{last}"
        )]));
        at = end;
    }
    assert!(expected.len() > 3, "{}", expected.len());
    assert_eq!(pages, expected);
    assert_eq!(
        markdown,
        text(&[
            "[markdown cell 1]\n# Lines\nTwelve of them.\n[shown: characters 0-23 of 23; the end of cell 1]"
        ])
    );
    assert_eq!(
        past_end,
        ToolOutput::error(format!(
            "offset 10000 is past the end of cell 0, which has {n} characters"
        ))
    );
    // The notebook on disk has the same (redacted) output.
    let nb = read_json(
        &env.path()
            .join(format!("outputs/{}/pages.ipynb", env.the_run())),
    );
    let printed: String = nb["cells"][0]["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| match &o["text"] {
            Value::String(t) => t.clone(),
            Value::Array(lines) => lines.iter().map(|l| l.as_str().unwrap()).collect(),
            other => panic!("{other}"),
        })
        .collect();
    assert_eq!(printed, format!("{lines}***\n"));
}

// The same tests with every sandbox on ssh and on Slurm.
on_remote_backends!(
    python_mcp_client_drives_a_real_session,
    seer_mcp_notebook_serves_a_live_sandbox_over_stdio,
    agent_mcp_client_reaches_http_and_stdio_servers,
);
