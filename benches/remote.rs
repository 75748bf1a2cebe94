//! The ssh backend vs the local one, in one run: sandbox start (env cache warm), notebook
//! cell round trips (`i+1`, 200 each), MCP `execute_code` in-process, and a plain
//! `ssh host true` as the connection's floor. The "host" is a private sshd on loopback that
//! this bench starts (as the tests do). Run with `cargo bench --bench remote`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: a failed unwrap is a failed run

mod common;
#[path = "../tests/common/sshd.rs"]
#[allow(dead_code)] // the tests' fixture, of which the bench uses a part
mod sshd;

use std::sync::Arc;
use std::time::Instant;

use common::{median_p99, ms};
use rmcp::model::CallToolRequestParams;
use seer::notebook::mcp::{ServerOptions, connect_in_process};
use seer::notebook::session::{NotebookSession, SessionOptions};
use seer::sandbox::config::{BackendKind, ExecutionMode, SandboxConfig};
use seer::sandbox::{Sandbox, StartRequest};
use sshd::Sshd;
use tokio_util::sync::CancellationToken;

const CELLS: usize = 200;

struct Row {
    start: Vec<f64>,
    cells: Vec<f64>,
    mcp: Vec<f64>,
}

async fn measure(
    config: SandboxConfig,
    dir: &std::path::Path,
    cancel: &CancellationToken,
) -> anyhow::Result<Row> {
    let mut start = vec![];
    let mut sb: Option<Arc<dyn Sandbox>> = None;
    for _ in 0..3 {
        let req = StartRequest {
            config: config.clone(),
            base_dir: dir.to_path_buf(),
            ..Default::default()
        };
        let t = Instant::now();
        let s = seer::sandbox::start(req, cancel).await?;
        start.push(ms(t.elapsed()));
        if let Some(old) = sb.replace(s) {
            old.terminate()?;
        }
    }
    let sb = sb.ok_or_else(|| anyhow::anyhow!("no sandbox"))?;
    let opts = SessionOptions {
        name: "bench".into(),
        output_dir: dir.join("out"),
        ..Default::default()
    };
    let session = NotebookSession::start(sb.clone(), opts, cancel).await?;
    let cells = common::cell_round_trips(&session, CELLS, cancel).await?;
    let client = connect_in_process(session.tools(), ServerOptions::default()).await?;
    let mut mcp = vec![];
    for i in 0..CELLS {
        let args = serde_json::json!({"code": format!("{i}+1")})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let t = Instant::now();
        client
            .call_tool(CallToolRequestParams::new("execute_code").with_arguments(args))
            .await?;
        mcp.push(ms(t.elapsed()));
    }
    client.cancel().await?;
    session.shutdown().await?;
    sb.terminate()?;
    Ok(Row { start, cells, mcp })
}

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    common::isolate(dir.path());
    // SAFETY: still before any other thread exists.
    unsafe { std::env::set_var("SEER_REMOTE_BINARY", env!("CARGO_BIN_EXE_seer")) };
    let sshd = Sshd::start();
    let remote = dir.path().join("remote");
    std::fs::create_dir_all(&remote)?;
    // The host keeps its env cache warm, as a GPU box does: share the bench's.
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-cache");
    std::fs::create_dir_all(&cache)?;
    std::os::unix::fs::symlink(&cache, remote.join("cache"))?;

    let mut ssh_true = vec![];
    for _ in 0..5 {
        let t = Instant::now();
        let out = sshd.ssh(&["true"]);
        anyhow::ensure!(out.status.success(), "ssh failed: {out:?}");
        ssh_true.push(ms(t.elapsed()));
    }

    let local = SandboxConfig {
        execution_mode: ExecutionMode::Notebook,
        ..SandboxConfig::default()
    };
    let ssh = SandboxConfig {
        backend: BackendKind::Ssh,
        host: Some(Sshd::HOST.into()),
        ssh_options: vec!["-F".into(), sshd.config().to_string_lossy().to_string()],
        remote_dir: Some(remote.to_string_lossy().to_string()),
        ..local.clone()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (l, s) = rt.block_on(async {
        let cancel = CancellationToken::new();
        let l = measure(local, dir.path(), &cancel).await?;
        let s = measure(ssh, dir.path(), &cancel).await?;
        anyhow::Ok((l, s))
    })?;

    println!(
        "| what | local median ms | local p99 ms | ssh median ms | ssh p99 ms | ssh − local (median) |"
    );
    println!("|---|---|---|---|---|---|");
    for (what, a, b) in [
        ("notebook cell `i+1` (200)", &l.cells, &s.cells),
        ("MCP execute_code, in-process client (200)", &l.mcp, &s.mcp),
    ] {
        let (am, ap) = median_p99(a);
        let (bm, bp) = median_p99(b);
        println!(
            "| {what} | {am:.2} | {ap:.2} | {bm:.2} | {bp:.2} | {:+.2} |",
            bm - am
        );
    }
    let first = |v: &Vec<f64>| v[0];
    let warm = |v: &Vec<f64>| {
        let mut w = v[1..].to_vec();
        w.sort_by(|a, b| a.total_cmp(b));
        w[w.len() / 2]
    };
    println!(
        "| sandbox start, first (ssh: copies seer to the host) | {:.0} | | {:.0} | | |",
        first(&l.start),
        first(&s.start)
    );
    println!(
        "| sandbox start, warm (median of 2) | {:.0} | | {:.0} | | {:+.0} |",
        warm(&l.start),
        warm(&s.start),
        warm(&s.start) - warm(&l.start)
    );
    let (tm, _) = median_p99(&ssh_true);
    println!();
    println!(
        "`ssh host true` (median of 5): {tm:.0} ms; ssh warm start − ssh connect: {:.0} ms",
        warm(&s.start) - tm
    );
    Ok(())
}
