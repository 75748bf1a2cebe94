use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::*;
use crate::notebook::RunStatus;
use crate::notebook::nbformat::MultiLine;
use crate::notebook::render::tests::{PNG, bundle, error, stream, text_of};

// ---- a test double of the notebook session ----------------------------------------

/// An in-memory notebook. Each line of "code" is a command: `print:X` (stdout),
/// `eprint:X` (stderr), `result:X` (execute_result), `png` (a figure display), `raise` (an
/// exception), `sleep` (waits for interrupt()), `timeout`, `die`, `big:N` (N chars of
/// stdout), `fail` (the trait returns Err).
#[derive(Default)]
struct FakeNotebook {
    cells: Mutex<Vec<Cell>>,
    /// What `cell_timeout` says.
    timeout: Option<Duration>,
    execution_count: AtomicI64,
    interrupt: Notify,
    running: AtomicBool,
    calls: Mutex<Vec<&'static str>>,
}

impl FakeNotebook {
    fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Runs `code` and keeps the cell's source and outputs, as a session does.
    async fn run(&self, cell_index: usize, code: &str) -> anyhow::Result<CellRun> {
        let run = self.run_commands(cell_index, code).await?;
        self.cells.lock().unwrap()[cell_index] = Cell::Code {
            id: format!("c{cell_index}"),
            metadata: Default::default(),
            source: MultiLine::from_text(code),
            execution_count: run.execution_count,
            outputs: run.outputs.clone(),
        };
        Ok(run)
    }

    async fn run_commands(&self, cell_index: usize, code: &str) -> anyhow::Result<CellRun> {
        let mut outputs = Vec::new();
        let mut status = RunStatus::Ok;
        let mut note = None;
        for line in code.lines() {
            let (cmd, arg) = line.split_once(':').unwrap_or((line, ""));
            match cmd {
                "print" => outputs.push(stream("stdout", &format!("{arg}\n"))),
                "eprint" => outputs.push(stream("stderr", &format!("{arg}\n"))),
                "result" => outputs.push(bundle(true, &[("text/plain", json!(arg))])),
                "png" => outputs.push(bundle(
                    false,
                    &[
                        ("image/png", json!([&PNG[..40], "\n", &PNG[40..]])),
                        ("text/plain", json!("<Figure size 1x1 with 1 Axes>")),
                    ],
                )),
                "raise" => {
                    outputs.push(error("ZeroDivisionError", "division by zero"));
                    status = RunStatus::Error;
                }
                "sleep" => {
                    let interrupted = self.interrupt.notified();
                    tokio::pin!(interrupted);
                    interrupted.as_mut().enable();
                    self.running.store(true, Ordering::SeqCst);
                    interrupted.await;
                    self.running.store(false, Ordering::SeqCst);
                    outputs.push(error("KeyboardInterrupt", ""));
                    status = RunStatus::Error;
                }
                "timeout" => status = RunStatus::TimedOut,
                "die" => {
                    status = RunStatus::KernelDied;
                    note =
                        Some("the kernel died; it was restarted and its state is lost".to_string());
                }
                "big" => {
                    let n: usize = arg.parse()?;
                    let text: String = "0123456789".chars().cycle().take(n).collect();
                    outputs.push(stream("stdout", &text));
                }
                "fail" => anyhow::bail!("the kernel is gone"),
                other => anyhow::bail!("unknown fake command {other:?}"),
            }
            if status != RunStatus::Ok {
                break;
            }
        }
        let execution_count = match status {
            RunStatus::KernelDied => None,
            _ => Some(self.execution_count.fetch_add(1, Ordering::SeqCst) + 1),
        };
        Ok(CellRun {
            cell_index: Some(cell_index),
            execution_count,
            outputs,
            status,
            note,
        })
    }
}

#[async_trait::async_trait]
impl NotebookTools for FakeNotebook {
    async fn execute_code(&self, code: String) -> anyhow::Result<CellRun> {
        let index = {
            let mut cells = self.cells.lock().unwrap();
            cells.push(Cell::Code {
                id: String::new(),
                metadata: Default::default(),
                source: MultiLine::from_text(&code),
                execution_count: None,
                outputs: vec![],
            });
            cells.len() - 1
        };
        self.run(index, &code).await
    }

    async fn add_markdown(&self, content: String) -> anyhow::Result<usize> {
        let mut cells = self.cells.lock().unwrap();
        cells.push(Cell::Markdown {
            id: String::new(),
            metadata: Default::default(),
            source: MultiLine::from_text(&content),
        });
        Ok(cells.len() - 1)
    }

    async fn edit_cell(&self, code: String, cell_index: i64) -> anyhow::Result<CellRun> {
        let index = {
            let cells = self.cells.lock().unwrap();
            let len = cells.len() as i64;
            let index = if cell_index < 0 {
                len + cell_index
            } else {
                cell_index
            };
            if index < 0 || index >= len {
                return Err(anyhow::anyhow!(
                    "cell index {cell_index} is out of range: the notebook has {len} cells"
                ))
                .context("cannot edit the cell");
            }
            if let Cell::Markdown { .. } = cells[index as usize] {
                anyhow::bail!("cell {index} is a markdown cell; edit_cell edits code cells");
            }
            index as usize
        };
        self.run(index, &code).await
    }

    async fn interrupt(&self) -> anyhow::Result<()> {
        self.calls.lock().unwrap().push("interrupt");
        self.interrupt.notify_waiters();
        Ok(())
    }

    async fn restart(&self) -> anyhow::Result<()> {
        self.calls.lock().unwrap().push("restart");
        self.execution_count.store(0, Ordering::SeqCst);
        Ok(())
    }

    async fn shutdown(&self) -> anyhow::Result<()> {
        self.calls.lock().unwrap().push("shutdown");
        anyhow::bail!("the kernel was already shut down")
    }

    fn read_cell(&self, cell_index: i64) -> anyhow::Result<(usize, Cell)> {
        let cells = self.cells.lock().unwrap();
        let len = cells.len() as i64;
        let index = if cell_index < 0 {
            len + cell_index
        } else {
            cell_index
        };
        if index < 0 || index >= len {
            anyhow::bail!("cell_index {cell_index} is out of range: the notebook has {len} cells");
        }
        Ok((index as usize, cells[index as usize].clone()))
    }

    fn cell_timeout(&self) -> Option<Duration> {
        self.timeout
    }
}

// ---- helpers ------------------------------------------------------------------------

fn args(v: Value) -> CallToolRequestParams {
    CallToolRequestParams::new("").with_arguments(v.as_object().cloned().unwrap_or_default())
}

async fn call(
    client: &rmcp::service::RunningService<rmcp::RoleClient, ()>,
    tool: &'static str,
    a: Value,
) -> CallToolResult {
    let mut params = args(a);
    params.name = tool.into();
    client.call_tool(params).await.unwrap()
}

// ---- over MCP (in process) ----------------------------------------------------------

#[tokio::test]
async fn lists_tools_with_their_schemas() {
    let client = connect_in_process(FakeNotebook::new(), ServerOptions::default())
        .await
        .unwrap();
    let info = client.peer_info().unwrap();
    let implementation = info.server_info.as_ref().unwrap();
    assert_eq!(implementation.name, "seer-notebook");
    assert_eq!(implementation.version, env!("CARGO_PKG_VERSION"));
    assert!(
        info.instructions
            .as_deref()
            .unwrap()
            .contains("execute_code")
    );

    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "add_markdown",
            "edit_cell",
            "execute_code",
            "interrupt_kernel",
            "read_cell",
            "restart_kernel",
            "shutdown_session"
        ]
    );
    let schema = |name: &str| {
        let tool = tools.iter().find(|t| t.name == name).unwrap();
        Value::Object((*tool.input_schema).clone())
    };
    let description = |name: &str| {
        tools
            .iter()
            .find(|t| t.name == name)
            .unwrap()
            .description
            .clone()
            .unwrap()
    };

    let execute = schema("execute_code");
    assert_eq!(execute["type"], "object");
    assert_eq!(execute["required"], json!(["code"]));
    assert_eq!(execute["properties"]["code"]["type"], "string");
    assert!(
        execute["properties"]["code"]["description"]
            .as_str()
            .unwrap()
            .contains("Python")
    );

    let markdown = schema("add_markdown");
    assert_eq!(markdown["required"], json!(["content"]));
    assert_eq!(markdown["properties"]["content"]["type"], "string");

    let edit = schema("edit_cell");
    assert_eq!(edit["required"], json!(["code"]));
    assert_eq!(edit["properties"]["cell_index"]["type"], "integer");
    assert_eq!(edit["properties"]["cell_index"]["default"], json!(-1));

    for name in ["interrupt_kernel", "restart_kernel", "shutdown_session"] {
        let s = schema(name);
        assert_eq!(s["type"], "object", "{name}");
        assert!(
            s.get("required").is_none_or(|r| r == &json!([])),
            "{name}: {s}"
        );
    }
    let read = schema("read_cell");
    assert_eq!(read["required"], json!(["cell_index"]));
    assert_eq!(read["properties"]["cell_index"]["type"], "integer");
    assert_eq!(read["properties"]["offset"]["default"], json!(0));
    assert!(description("read_cell").contains("`offset` to pass for the next page"));
    let read_tool = tools.iter().find(|t| t.name == "read_cell").unwrap();
    assert_eq!(
        read_tool
            .annotations
            .as_ref()
            .and_then(|a| a.read_only_hint),
        Some(true)
    );
    // Without a cell timeout, no tool carries one.
    assert!(tools.iter().all(|t| t.meta.is_none()), "{tools:?}");
    assert!(description("restart_kernel").contains("ALL kernel state is lost"));
    assert!(description("execute_code").contains("[cell N, execution_count M]"));
    assert!(description("edit_cell").contains("-1 (the default) is the last cell"));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn round_trip_of_every_tool() {
    let fake = FakeNotebook::new();
    let client = connect_in_process(fake.clone(), ServerOptions::default())
        .await
        .unwrap();

    let r = call(
        &client,
        "execute_code",
        json!({"code": "print:hello\nresult:42"}),
    )
    .await;
    assert_eq!(text_of(&r), "[cell 0, execution_count 1]\nhello\n42");
    assert_eq!(r.is_error, Some(false));

    let r = call(&client, "add_markdown", json!({"content": "# Notes"})).await;
    assert_eq!(text_of(&r), "[markdown cell 1 added]");

    let r = call(&client, "execute_code", json!({"code": "raise"})).await;
    assert!(
        text_of(&r)
            .starts_with("[cell 2, execution_count 2]\nZeroDivisionError: division by zero\n"),
        "{}",
        text_of(&r)
    );
    assert!(text_of(&r).ends_with("\n[error: the code raised an exception]"));
    assert!(!text_of(&r).contains('\u{1b}'));
    assert_eq!(
        r.is_error,
        Some(false),
        "a Python exception is a normal result"
    );

    let r = call(&client, "execute_code", json!({"code": "die"})).await;
    assert_eq!(
        text_of(&r),
        "[cell 3, no execution_count]\n[kernel died while running this code]\n\
         [note: the kernel died; it was restarted and its state is lost]"
    );

    let r = call(&client, "interrupt_kernel", json!({})).await;
    assert_eq!(
        text_of(&r),
        "Interrupt sent to the kernel; variables are kept."
    );
    let r = call(&client, "restart_kernel", json!({})).await;
    assert!(text_of(&r).contains("All variables"));
    let r = call(&client, "shutdown_session", json!({})).await;
    assert_eq!(r.is_error, Some(true));
    assert_eq!(text_of(&r), "the kernel was already shut down");
    assert_eq!(
        *fake.calls.lock().unwrap(),
        ["interrupt", "restart", "shutdown"]
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn images_come_back_as_image_content() {
    let client = connect_in_process(FakeNotebook::new(), ServerOptions::default())
        .await
        .unwrap();
    let r = call(
        &client,
        "execute_code",
        json!({"code": "print:plotting\npng"}),
    )
    .await;
    assert_eq!(
        text_of(&r),
        "[cell 0, execution_count 1]\nplotting\n<Figure size 1x1 with 1 Axes>\n[image 1: image/png, attached]"
    );
    assert_eq!(r.content.len(), 2);
    let image = r.content[1].as_image().unwrap();
    assert_eq!(
        (image.mime_type.as_str(), image.data.as_str()),
        ("image/png", PNG)
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn edit_cell_takes_negative_and_default_indices() {
    let client = connect_in_process(FakeNotebook::new(), ServerOptions::default())
        .await
        .unwrap();
    call(&client, "execute_code", json!({"code": "print:a"})).await;
    call(&client, "execute_code", json!({"code": "print:b"})).await;
    let r = call(
        &client,
        "edit_cell",
        json!({"code": "print:c", "cell_index": -2}),
    )
    .await;
    assert_eq!(text_of(&r), "[cell 0, execution_count 3]\nc");
    let r = call(&client, "edit_cell", json!({"code": "print:d"})).await;
    assert_eq!(text_of(&r), "[cell 1, execution_count 4]\nd");
    let r = call(
        &client,
        "edit_cell",
        json!({"code": "print:e", "cell_index": 0}),
    )
    .await;
    assert_eq!(text_of(&r), "[cell 0, execution_count 5]\ne");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn trait_errors_are_tool_errors() {
    let client = connect_in_process(FakeNotebook::new(), ServerOptions::default())
        .await
        .unwrap();
    call(&client, "execute_code", json!({"code": "print:a"})).await;
    call(&client, "add_markdown", json!({"content": "text"})).await;

    let r = call(
        &client,
        "edit_cell",
        json!({"code": "print:x", "cell_index": 7}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert_eq!(r.content.len(), 1);
    assert_eq!(
        text_of(&r),
        "cannot edit the cell: cell index 7 is out of range: the notebook has 2 cells"
    );

    let r = call(&client, "edit_cell", json!({"code": "print:x"})).await;
    assert_eq!(r.is_error, Some(true));
    assert_eq!(
        text_of(&r),
        "cell 1 is a markdown cell; edit_cell edits code cells"
    );

    let r = call(&client, "execute_code", json!({"code": "fail"})).await;
    assert_eq!(
        (r.is_error, text_of(&r)),
        (Some(true), "the kernel is gone")
    );

    // A missing argument is also a tool error (rmcp's behaviour), not a protocol error.
    let r = call(&client, "execute_code", json!({})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("code"), "{}", text_of(&r));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn interrupt_reaches_running_code() {
    let fake = FakeNotebook::new();
    let client = connect_in_process(fake.clone(), ServerOptions::default())
        .await
        .unwrap();
    let running = call(
        &client,
        "execute_code",
        json!({"code": "print:start\nsleep"}),
    );
    let interrupt = async {
        while !fake.running.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        call(&client, "interrupt_kernel", json!({})).await
    };
    let (r, i) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(running, interrupt)
    })
    .await
    .expect("the interrupted cell did not return");
    assert_eq!(i.is_error, Some(false));
    assert!(
        text_of(&r).starts_with("[cell 0, execution_count 1]\nstart\nKeyboardInterrupt: \n"),
        "{}",
        text_of(&r)
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn truncation_limit_comes_from_the_options() {
    let client = connect_in_process(
        FakeNotebook::new(),
        ServerOptions {
            max_output_chars: 10,
        },
    )
    .await
    .unwrap();
    let r = call(&client, "execute_code", json!({"code": "big:25"})).await;
    assert_eq!(
        text_of(&r),
        "[cell 0, execution_count 1]\n01234\n[... 15 characters omitted ...]\n01234"
    );
    client.cancel().await.unwrap();

    let client = connect_in_process(FakeNotebook::new(), ServerOptions::default())
        .await
        .unwrap();
    let r = call(&client, "execute_code", json!({"code": "big:50000"})).await;
    let text = text_of(&r);
    assert!(text.contains("\n[... 30000 characters omitted ...]\n"));
    assert_eq!(
        text.chars().count(),
        "[cell 0, execution_count 1]\n".len()
            + 20_000
            + "\n[... 30000 characters omitted ...]\n".len()
    );
    client.cancel().await.unwrap();
}

// ---- stdio --------------------------------------------------------------------------

/// serve_stdio is `serve_until_closed` on joined stdin/stdout; this drives the same
/// function over a duplex pipe and checks that it returns when the client closes.
#[tokio::test]
async fn stdio_server_runs_until_the_client_closes() {
    let (server_end, client_end) = tokio::io::duplex(64 * 1024);
    let (server_read, server_write) = tokio::io::split(server_end);
    let task = tokio::spawn(serve_until_closed(
        server(FakeNotebook::new(), ServerOptions::default()),
        tokio::io::join(server_read, server_write),
    ));
    let client = ().serve(client_end).await.unwrap();
    assert_eq!(client.list_all_tools().await.unwrap().len(), 7);
    let r = call(&client, "execute_code", json!({"code": "print:over stdio"})).await;
    assert_eq!(text_of(&r), "[cell 0, execution_count 1]\nover stdio");
    client.cancel().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

// ---- HTTP ---------------------------------------------------------------------------

#[tokio::test]
async fn http_client_lists_and_calls_with_the_token() {
    let cancel = CancellationToken::new();
    let http = serve_http(
        FakeNotebook::new(),
        ServerOptions::default(),
        cancel.clone(),
    )
    .await
    .unwrap();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(http.url.clone())
            .auth_header(http.token.clone()),
    );
    let client = ().serve(transport).await.unwrap();
    assert_eq!(client.list_all_tools().await.unwrap().len(), 7);
    let r = call(
        &client,
        "execute_code",
        json!({"code": "print:over http\npng"}),
    )
    .await;
    assert_eq!(
        text_of(&r),
        "[cell 0, execution_count 1]\nover http\n<Figure size 1x1 with 1 Axes>\n[image 1: image/png, attached]"
    );
    assert_eq!(r.content[1].as_image().unwrap().data, PNG);

    // Without the token the client cannot even connect.
    let anonymous = ().serve(StreamableHttpClientTransport::from_uri(http.url.clone())).await;
    assert!(anonymous.is_err());

    client.cancel().await.unwrap();
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), http.join)
        .await
        .unwrap()
        .unwrap();
}

// ---- interop with the official Python SDK -------------------------------------------

#[tokio::test]
async fn official_python_sdk_can_use_the_http_server() {
    // The official `mcp` SDK comes from the test Python env (`tests/setup.sh`).
    let python = crate::testenv::python();
    let cancel = CancellationToken::new();
    let http = serve_http(
        FakeNotebook::new(),
        ServerOptions::default(),
        cancel.clone(),
    )
    .await
    .unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mcp_interop.py");
    let run = tokio::process::Command::new(&python)
        .arg(script)
        .env("MCP_URL", &http.url)
        .env("MCP_TOKEN", &http.token)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the interop script hung")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "interop script failed:\n{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad JSON from the script ({e}):\n{}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });

    assert_eq!(report["initialize"]["serverInfo"]["name"], "seer-notebook");
    assert_eq!(
        report["initialize"]["serverInfo"]["version"],
        env!("CARGO_PKG_VERSION")
    );
    let mut names: Vec<&str> = report["tools"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "add_markdown",
            "edit_cell",
            "execute_code",
            "interrupt_kernel",
            "read_cell",
            "restart_kernel",
            "shutdown_session"
        ]
    );
    let edit = report["tools"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "edit_cell")
        .unwrap();
    assert_eq!(edit["inputSchema"]["required"], json!(["code"]));
    assert_eq!(
        edit["inputSchema"]["properties"]["cell_index"]["default"],
        json!(-1)
    );

    assert_eq!(
        report["hello"]["content"],
        json!([{"type": "text", "text": "[cell 0, execution_count 1]\nhello"}])
    );
    assert_ne!(report["hello"]["isError"], json!(true));
    let png = &report["png"]["content"];
    assert_eq!(
        png[0]["text"],
        "[cell 1, execution_count 2]\n<Figure size 1x1 with 1 Axes>\n[image 1: image/png, attached]"
    );
    assert_eq!(
        (
            png[1]["type"].as_str(),
            png[1]["mimeType"].as_str(),
            png[1]["data"].as_str()
        ),
        (Some("image"), Some("image/png"), Some(PNG))
    );
    assert_eq!(report["bad_index"]["isError"], json!(true));

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), http.join)
        .await
        .unwrap()
        .unwrap();
}

// ---- read_cell and the cell timeout ----------------------------------------------------

#[tokio::test]
async fn read_cell_returns_source_and_outputs_paged() {
    let client = connect_in_process(FakeNotebook::new(), ServerOptions::default())
        .await
        .unwrap();
    call(
        &client,
        "execute_code",
        json!({"code": "print:hello\neprint:careful\nresult:42"}),
    )
    .await;
    call(&client, "add_markdown", json!({"content": "# Found 42"})).await;
    call(
        &client,
        "execute_code",
        json!({"code": "print:a plot\npng"}),
    )
    .await;
    call(&client, "execute_code", json!({"code": "raise"})).await;

    let read = |a: Value| {
        let client = &client;
        async move {
            let r = call(client, "read_cell", a).await;
            let images: Vec<String> = r.content[1..]
                .iter()
                .map(|c| c.as_image().unwrap().data.clone())
                .collect();
            (r.is_error, text_of(&r).to_string(), images)
        }
    };
    assert_eq!(
        read(json!({"cell_index": 0})).await,
        (
            Some(false),
            "[cell 0, execution_count 1]\n[source]\nprint:hello\neprint:careful\nresult:42\n\
             [outputs]\nhello\n[stderr]\ncareful\n42\n\
             [shown: characters 0-81 of 81; the end of cell 0]"
                .to_string(),
            vec![]
        )
    );
    assert_eq!(
        read(json!({"cell_index": 1})).await,
        (
            Some(false),
            "[markdown cell 1]\n# Found 42\n[shown: characters 0-10 of 10; the end of cell 1]"
                .to_string(),
            vec![]
        )
    );
    // The image comes with the page that mentions it, and only with that one.
    let full = "[source]\nprint:a plot\npng\n[outputs]\na plot\n<Figure size 1x1 with 1 Axes>\n\
                [image 1: image/png, attached]";
    assert_eq!(
        read(json!({"cell_index": 2})).await,
        (
            Some(false),
            format!(
                "[cell 2, execution_count 2]\n{full}\n[shown: characters 0-{n} of {n}; the end of cell 2]",
                n = full.len()
            ),
            vec![PNG.to_string()]
        )
    );
    // Pages of 30 characters end after a line where one ends in the page's second half.
    assert_eq!(
        read(json!({"cell_index": 2, "limit": 30})).await,
        (
            Some(false),
            format!(
                "[cell 2, execution_count 2]\n[source]\nprint:a plot\npng\n\
                 [shown: characters 0-26 of {n}; {} more: read_cell with cell_index=2, offset=26]",
                full.len() - 26,
                n = full.len()
            ),
            vec![]
        )
    );
    assert_eq!(
        read(json!({"cell_index": 2, "offset": 60, "limit": 1000})).await,
        (
            Some(false),
            format!(
                "[cell 2, execution_count 2]\n{}\n[shown: characters 60-{n} of {n}; the end of cell 2]",
                &full[60..],
                n = full.len()
            ),
            vec![PNG.to_string()]
        )
    );
    // An exception's cell, by a negative index.
    let (is_error, text, _) = read(json!({"cell_index": -1})).await;
    assert_eq!(is_error, Some(false));
    assert!(
        text.starts_with(
            "[cell 3, execution_count 3]\n[source]\nraise\n[outputs]\nZeroDivisionError: division by zero\n"
        ),
        "{text}"
    );
    // Bad indices and offsets are tool errors.
    assert_eq!(
        read(json!({"cell_index": 4})).await,
        (
            Some(true),
            "cell_index 4 is out of range: the notebook has 4 cells".to_string(),
            vec![]
        )
    );
    assert_eq!(
        read(json!({"cell_index": 1, "offset": 10})).await,
        (
            Some(true),
            "offset 10 is past the end of cell 1, which has 10 characters".to_string(),
            vec![]
        )
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn read_cell_pages_a_long_output_whole() {
    let client = connect_in_process(
        FakeNotebook::new(),
        ServerOptions {
            max_output_chars: 10,
        },
    )
    .await
    .unwrap();
    let r = call(&client, "execute_code", json!({"code": "big:25"})).await;
    assert!(text_of(&r).contains("[... 15 characters omitted ...]"));
    // The cell's text is `[source]\nbig:25\n[outputs]\n` and the 25 digits: 51
    // characters, 10 to a page by default (the server's output limit), pages ending after a
    // line where one ends in their second half (the page's own last newline is not shown
    // twice, so it is not in `body`).
    let mut offset = 0;
    let mut pages = vec![];
    loop {
        let r = call(
            &client,
            "read_cell",
            json!({"cell_index": 0, "offset": offset}),
        )
        .await;
        let text = text_of(&r).to_string();
        let last = text.lines().last().unwrap().to_string();
        pages.push(text);
        match last.split_once("offset=") {
            Some((_, next)) => offset = next.trim_end_matches(']').parse().unwrap(),
            None => break,
        }
    }
    let header = "[cell 0, execution_count 1]\n";
    let body: String = pages
        .iter()
        .map(|p| {
            let p = p.strip_prefix(header).unwrap();
            let cut = p.rfind("\n[shown: ").unwrap();
            p[..cut].to_string()
        })
        .collect::<Vec<_>>()
        .join("|");
    assert_eq!(
        body,
        "[source]|big:25|[outputs]|0123456789|0123456789|01234"
    );
    assert_eq!(
        pages.last().unwrap().lines().last().unwrap(),
        "[shown: characters 46-51 of 51; the end of cell 0]"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_cell_timeout_is_in_the_running_tools_meta() {
    let fake = Arc::new(FakeNotebook {
        timeout: Some(Duration::from_secs(90)),
        ..Default::default()
    });
    let client = connect_in_process(fake, ServerOptions::default())
        .await
        .unwrap();
    let tools = client.list_all_tools().await.unwrap();
    let mut metas: Vec<(String, Value)> = tools
        .iter()
        .map(|t| (t.name.to_string(), json!(t.meta)))
        .collect();
    metas.sort_by(|a, b| a.0.cmp(&b.0));
    let timeout = json!({"seer/timeout_s": 90.0});
    assert_eq!(
        metas,
        [
            ("add_markdown".to_string(), Value::Null),
            ("edit_cell".to_string(), timeout.clone()),
            ("execute_code".to_string(), timeout),
            ("interrupt_kernel".to_string(), Value::Null),
            ("read_cell".to_string(), Value::Null),
            ("restart_kernel".to_string(), Value::Null),
            ("shutdown_session".to_string(), Value::Null),
        ]
    );
    client.cancel().await.unwrap();
}
