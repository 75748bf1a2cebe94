//! Notebook execution speed, seer vs. Python's jupyter_client, same machine, same kernel
//! kind (ipykernel from the same env): 200 × `1+1` round trips, median and p99, first 20
//! vs. last 20 cells; and session start vs. bare kernel start. Prints a table; run with
//! `cargo bench --bench notebook`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use common::{median_p99, ms};

use std::sync::Arc;
use std::time::Instant;

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use seer::kernel::Kernel;
use seer::notebook::mcp::{ServerOptions, connect_in_process, serve_http};
use seer::notebook::session::{NotebookSession, SessionOptions};
use seer::sandbox::config::{ExecutionMode, SandboxConfig};
use seer::sandbox::local::{LocalSandbox, StartRequest};
use seer::sandbox::{ExecOptions, Sandbox};
use tokio_util::sync::CancellationToken;

const CELLS: usize = 200;

const PYTHON_REFERENCE: &str = r#"
import json, time
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name="python3")
times = []
for i in range(200):
    t = time.perf_counter()
    kc.execute_interactive(f"{i}+1", output_hook=lambda m: None, timeout=30)
    times.append((time.perf_counter() - t) * 1000)
kc.stop_channels(); km.shutdown_kernel(now=True)
print(json.dumps(times))
"#;

fn summary(v: &[f64]) -> (f64, f64, f64, f64) {
    let (median, p99) = median_p99(v);
    let first: f64 = v[..20].iter().sum::<f64>() / 20.0;
    let last: f64 = v[v.len() - 20..].iter().sum::<f64>() / 20.0;
    (median, p99, first, last)
}

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    common::isolate(dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let cancel = CancellationToken::new();
        let config = SandboxConfig { execution_mode: ExecutionMode::Notebook, ..SandboxConfig::default() };
        let req = StartRequest { config, base_dir: dir.path().to_path_buf(), ..Default::default() };
        let sb: Arc<dyn Sandbox> = LocalSandbox::start(req, &cancel).await?;

        // Bare kernel start (spawn → kernel_info answered), three times.
        let mut kernel_starts = vec![];
        for _ in 0..3 {
            let t = Instant::now();
            let k = Kernel::start(sb.clone(), ExecOptions::default(), &cancel).await?;
            kernel_starts.push(ms(t.elapsed()));
            k.shutdown().await;
        }
        let mut session_starts = vec![];
        let mut session = None;
        for i in 0..3 {
            let opts = SessionOptions { name: format!("bench{i}"), output_dir: dir.path().join("out"), ..Default::default() };
            let t = Instant::now();
            let s = NotebookSession::start(sb.clone(), opts, &cancel).await?;
            session_starts.push(ms(t.elapsed()));
            if let Some(old) = session.replace(s) {
                let old: Arc<NotebookSession> = old;
                old.shutdown().await?;
            }
        }
        let session = session.ok_or_else(|| anyhow::anyhow!("no session"))?;
        let mut seer_times = vec![];
        for i in 0..CELLS {
            let t = Instant::now();
            session.execute(&format!("{i}+1"), false, None, &cancel).await?;
            seer_times.push(ms(t.elapsed()));
        }

        // MCP execute_code round trips, in-process and over streamable HTTP.
        let args = |i: usize| serde_json::json!({"code": format!("{i}+1")}).as_object().cloned().unwrap_or_default();
        let client = connect_in_process(session.tools(), ServerOptions::default()).await?;
        let mut mcp_inproc = vec![];
        for i in 0..CELLS {
            let t = Instant::now();
            client.call_tool(CallToolRequestParams::new("execute_code").with_arguments(args(i))).await?;
            mcp_inproc.push(ms(t.elapsed()));
        }
        client.cancel().await?;
        let http = serve_http(session.tools(), ServerOptions::default(), cancel.child_token()).await?;
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(http.url.clone()).auth_header(http.token.clone()),
        );
        let client = ().serve(transport).await?;
        let mut mcp_http = vec![];
        for i in 0..CELLS {
            let t = Instant::now();
            client.call_tool(CallToolRequestParams::new("execute_code").with_arguments(args(i))).await?;
            mcp_http.push(ms(t.elapsed()));
        }
        client.cancel().await?;
        session.shutdown().await?;

        let out = sb.exec(seer::sandbox::Command::Python(PYTHON_REFERENCE.into()), ExecOptions::default(), &cancel).await?;
        anyhow::ensure!(out.exit_code == 0, "reference failed: {}", out.stderr);
        let py_times: Vec<f64> = serde_json::from_str(out.stdout.trim())?;
        sb.terminate()?;

        let (sm, sp, sf, sl) = summary(&seer_times);
        let (pm, pp, pf, pl) = summary(&py_times);
        kernel_starts.sort_by(|a, b| a.total_cmp(b));
        session_starts.sort_by(|a, b| a.total_cmp(b));
        println!("| client | cells | median ms | p99 ms | mean of first 20 | mean of last 20 | last/first |");
        println!("|---|---|---|---|---|---|---|");
        println!("| seer NotebookSession.execute (writes the .ipynb each cell) | {CELLS} | {sm:.2} | {sp:.2} | {sf:.2} | {sl:.2} | {:.2} |", sl / sf);
        println!("| Python jupyter_client execute_interactive | {CELLS} | {pm:.2} | {pp:.2} | {pf:.2} | {pl:.2} | {:.2} |", pl / pf);
        let (im, ip, _, _) = summary(&mcp_inproc);
        let (hm, hp, _, _) = summary(&mcp_http);
        println!("| MCP execute_code, in-process client | {CELLS} | {im:.2} | {ip:.2} | | | |");
        println!("| MCP execute_code, streamable HTTP + bearer token | {CELLS} | {hm:.2} | {hp:.2} | | | |");
        println!();
        println!("seer/jupyter_client median ratio: {:.2}", sm / pm);
        println!("kernel start (median of 3): {:.0} ms; session start (median of 3): {:.0} ms; session - kernel: {:.0} ms",
            kernel_starts[1], session_starts[1], session_starts[1] - kernel_starts[1]);
        anyhow::Ok(())
    })
}
