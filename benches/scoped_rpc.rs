//! ScopedSandbox RPC round trips vs. a direct kernel exec of the same function: 200 calls of
//! `add(a, b)` each way, median and p99. Prints a table; run with
//! `cargo bench --bench scoped_rpc`.
//!
//! - library form: the generated client module in a Jupyter kernel calls the RPC server
//!   (timed inside Python: the pure client round trip; and as whole notebook cells);
//! - MCP form: an rmcp client calls the tool, over streamable HTTP with the bearer token
//!   and in-process;
//! - seer's own Rust RPC client (what `scoped.rpc` uses);
//! - reference: the same function defined in the kernel and called in a cell.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use common::{median_p99, ms};

use std::sync::Arc;
use std::time::Instant;

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use seer::notebook::session::{NotebookSession, SessionOptions};
use seer::sandbox::Sandbox;
use seer::sandbox::config::{ExecutionMode, SandboxConfig};
use seer::sandbox::local::{LocalSandbox, StartRequest};
use seer::scoped::{self, ScopedSandbox};
use tokio_util::sync::CancellationToken;

const CALLS: usize = 200;

const INTERFACE: &str = r#"
@expose
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b
"#;

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    common::isolate(dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let cancel = CancellationToken::new();
        let start = |mode: ExecutionMode| StartRequest {
            config: SandboxConfig { execution_mode: mode, ..SandboxConfig::default() },
            base_dir: dir.path().to_path_buf(),
            ..StartRequest::default()
        };
        // The scoped side.
        let scoped_sb: Arc<dyn Sandbox> = LocalSandbox::start(start(ExecutionMode::Cli), &cancel).await?;
        let scoped = ScopedSandbox::new(scoped_sb.clone(), &[], None, dir.path())?;
        let iface = dir.path().join("bench_iface.py");
        std::fs::write(&iface, INTERFACE)?;
        let t = Instant::now();
        let server = scoped.serve(&iface, "bench_tools", &cancel).await?;
        let serve_ms = ms(t.elapsed());

        // The agent side: a notebook kernel with the client module and a local `add`.
        let nb_sb: Arc<dyn Sandbox> = LocalSandbox::start(start(ExecutionMode::Notebook), &cancel).await?;
        let opts = SessionOptions { name: "bench".into(), output_dir: dir.path().join("out"), ..Default::default() };
        let session = NotebookSession::start(nb_sb.clone(), opts, &cancel).await?;
        nb_sb.write_file("bench_tools.py", scoped::client_module("bench_tools", &server).as_bytes())?;
        let setup = "import bench_tools, time, json\ndef add(a: int, b: int) -> int:\n    return a + b\n";
        let r = session.execute(setup, true, None, &cancel).await?;
        anyhow::ensure!(r.status == seer::notebook::RunStatus::Ok, "setup failed: {:?}", r.outputs);

        let cells = |code: fn(usize) -> String| {
            let session = session.clone();
            let cancel = cancel.clone();
            async move {
                let mut times = vec![];
                for i in 0..CALLS {
                    let t = Instant::now();
                    let r = session.execute(&code(i), false, None, &cancel).await?;
                    anyhow::ensure!(r.status == seer::notebook::RunStatus::Ok, "cell failed: {:?}", r.outputs);
                    times.push(ms(t.elapsed()));
                }
                anyhow::Ok(times)
            }
        };
        let direct_cells = cells(|i| format!("add({i}, 1)")).await?;
        let library_cells = cells(|i| format!("bench_tools.add({i}, 1)")).await?;
        // The client's own round trip, timed in the kernel.
        let loop_code = format!(
            "_t = []\nfor _i in range({CALLS}):\n    _s = time.perf_counter()\n    bench_tools.add(_i, 1)\n    _t.append((time.perf_counter() - _s) * 1000)\nprint(json.dumps(_t))"
        );
        let r = session.execute(&loop_code, false, None, &cancel).await?;
        let text = seer::notebook::render::outputs_text(&r.outputs);
        let in_kernel: Vec<f64> = serde_json::from_str(text.trim())?;
        let direct_code = format!(
            "_t = []\nfor _i in range({CALLS}):\n    _s = time.perf_counter()\n    add(_i, 1)\n    _t.append((time.perf_counter() - _s) * 1000)\nprint(json.dumps(_t))"
        );
        let r = session.execute(&direct_code, false, None, &cancel).await?;
        let in_kernel_direct: Vec<f64> =
            serde_json::from_str(seer::notebook::render::outputs_text(&r.outputs).trim())?;

        // seer's Rust client.
        let mut rust_rpc = vec![];
        for i in 0..CALLS {
            let t = Instant::now();
            server.call("add", serde_json::json!({"a": i, "b": 1})).await?;
            rust_rpc.push(ms(t.elapsed()));
        }

        // MCP: streamable HTTP with the bearer token, and in-process.
        let args = |i: usize| serde_json::json!({"a": i, "b": 1}).as_object().cloned().unwrap_or_default();
        let http = scoped::mcp::serve_http(server.clone(), cancel.child_token()).await?;
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(http.url.clone()).auth_header(http.token.clone()),
        );
        let client = ().serve(transport).await?;
        let mut mcp_http = vec![];
        for i in 0..CALLS {
            let t = Instant::now();
            client.call_tool(CallToolRequestParams::new("add").with_arguments(args(i))).await?;
            mcp_http.push(ms(t.elapsed()));
        }
        client.cancel().await?;
        let client = scoped::mcp::connect_in_process(server.clone()).await?;
        let mut mcp_inproc = vec![];
        for i in 0..CALLS {
            let t = Instant::now();
            client.call_tool(CallToolRequestParams::new("add").with_arguments(args(i))).await?;
            mcp_inproc.push(ms(t.elapsed()));
        }
        client.cancel().await?;

        session.shutdown().await?;
        scoped.stop_servers().await;
        nb_sb.terminate()?;
        scoped_sb.terminate()?;

        println!("| path | calls | median ms | p99 ms |");
        println!("|---|---|---|---|");
        let row = |name: &str, v: &[f64]| {
            let (m, p) = median_p99(v);
            println!("| {name} | {CALLS} | {m:.3} | {p:.3} |");
        };
        row("reference: `add(i, 1)` defined in the kernel, one notebook cell per call", &direct_cells);
        row("library form: `bench_tools.add(i, 1)`, one notebook cell per call", &library_cells);
        row("reference: `add` defined in the kernel, timed inside the kernel", &in_kernel_direct);
        row("library form: client round trip, timed inside the kernel (urllib → RPC server)", &in_kernel);
        row("seer's Rust RPC client (`scoped.rpc`)", &rust_rpc);
        row("MCP form: rmcp client, streamable HTTP + bearer token", &mcp_http);
        row("MCP form: rmcp client, in-process", &mcp_inproc);
        println!();
        println!("serve() of the interface (RPC server start, no models): {serve_ms:.0} ms");
        anyhow::Ok(())
    })
}
