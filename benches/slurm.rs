//! The slurm backend on an idle cluster: submit → first notebook cell, split into the
//! scheduler's part (submit → the job RUNNING, seen by polling `squeue`) and seer's part
//! (the rest: the `srun --overlap` step, the agent, the sandbox and kernel start, the
//! session and the cell), with a bare `srun true` on the same cluster as a reference; then
//! 200 notebook cell round trips `i+1` through the job vs a local sandbox in the same run.
//! The cluster is the tests' private single-node Slurm (`tests/common/slurm.rs`), started
//! by this bench. Run with `cargo bench --bench slurm`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: a failed unwrap is a failed run

mod common;
// The tests' fixtures (dead code allowed inside), of which the bench uses the cluster.
#[path = "../tests/common/mod.rs"]
mod fixtures;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{median, median_p99, ms};
use fixtures::slurm::Slurm;
use seer::notebook::session::{NotebookSession, SessionOptions};
use seer::sandbox::config::{BackendKind, ExecutionMode, SandboxConfig};
use seer::sandbox::{Sandbox, StartRequest};
use tokio_util::sync::CancellationToken;

const CELLS: usize = 200;
/// Submit → first cell, this many times (the first also copies seer to the shared dir).
const STARTS: usize = 4;

/// When each job was first seen RUNNING, by a thread polling `squeue` as fast as it
/// answers.
struct Watcher {
    running: Arc<Mutex<HashMap<String, Instant>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    fn start(conf: PathBuf) -> Self {
        let running = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (running.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let out = std::process::Command::new("squeue")
                    .env("SLURM_CONF", &conf)
                    .args(["--noheader", "--states=RUNNING", "--format=%i"])
                    .output()
                    .unwrap();
                let seen = Instant::now();
                let mut map = r.lock().unwrap();
                for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    map.entry(id.to_string()).or_insert(seen);
                }
                drop(map);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Self {
            running,
            stop,
            thread: Some(thread),
        }
    }

    /// The jobs first seen RUNNING after `since`.
    fn started_after(&self, since: Instant) -> Vec<(String, Instant)> {
        self.running
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, t)| **t > since)
            .map(|(id, t)| (id.clone(), *t))
            .collect()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits until the cluster holds no job (the node is idle again).
fn wait_idle(slurm: &Slurm) {
    slurm.wait_jobs("the cluster to be idle", 60, |jobs| {
        jobs.iter().all(|j| {
            !matches!(
                j.state.as_str(),
                "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING"
            )
        })
    });
}

/// One submit → first cell: (total ms, scheduler ms).
async fn first_cell(
    config: &SandboxConfig,
    dir: &Path,
    watcher: &Watcher,
    cancel: &CancellationToken,
) -> anyhow::Result<(f64, f64)> {
    let req = StartRequest {
        config: config.clone(),
        base_dir: dir.to_path_buf(),
        ..Default::default()
    };
    let t = Instant::now();
    let sb = seer::sandbox::start(req, cancel).await?;
    let session = NotebookSession::start(sb.clone(), session_opts(dir), cancel).await?;
    let out = session.execute("1+1", false, None, cancel).await?;
    let total = t.elapsed();
    let text = serde_json::to_value(&out.outputs)?.to_string();
    anyhow::ensure!(
        out.status == seer::notebook::RunStatus::Ok && text.contains(r#""text/plain":["2"]"#),
        "first cell gave {out:?}"
    );
    let jobs = watcher.started_after(t);
    anyhow::ensure!(jobs.len() == 1, "expected one new running job: {jobs:?}");
    let scheduler = jobs[0].1 - t;
    session.shutdown().await?;
    sb.terminate()?;
    Ok((ms(total), ms(scheduler)))
}

fn session_opts(dir: &Path) -> SessionOptions {
    SessionOptions {
        name: "bench".into(),
        output_dir: dir.join("out"),
        ..Default::default()
    }
}

/// 200 cells `i+1` on a fresh sandbox of `config`.
async fn cells(
    config: &SandboxConfig,
    dir: &Path,
    cancel: &CancellationToken,
) -> anyhow::Result<Vec<f64>> {
    let req = StartRequest {
        config: config.clone(),
        base_dir: dir.to_path_buf(),
        ..Default::default()
    };
    let sb: Arc<dyn Sandbox> = seer::sandbox::start(req, cancel).await?;
    let session = NotebookSession::start(sb.clone(), session_opts(dir), cancel).await?;
    let mut v = vec![];
    for i in 0..CELLS {
        let t = Instant::now();
        session
            .execute(&format!("{i}+1"), false, None, cancel)
            .await?;
        v.push(ms(t.elapsed()));
    }
    session.shutdown().await?;
    sb.terminate()?;
    Ok(v)
}

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    common::isolate(dir.path());
    let slurm = Slurm::start();
    // SAFETY: still before any other thread exists.
    unsafe {
        std::env::set_var("SEER_REMOTE_BINARY", env!("CARGO_BIN_EXE_seer"));
        std::env::set_var("SLURM_CONF", slurm.conf());
    }
    let shared = dir.path().join("shared");
    std::fs::create_dir_all(&shared)?;
    // The cluster keeps its env cache warm: share the bench's.
    std::os::unix::fs::symlink(common::bench_cache(), shared.join("cache"))?;

    // The scheduler alone: allocation + a step that does nothing.
    let mut srun_true = vec![];
    for _ in 0..5 {
        wait_idle(&slurm);
        let t = Instant::now();
        let out = slurm.cmd("srun").args(["--quiet", "true"]).output()?;
        anyhow::ensure!(out.status.success(), "srun true failed: {out:?}");
        srun_true.push(ms(t.elapsed()));
    }

    let watcher = Watcher::start(slurm.conf());
    // A bare batch job: submit → RUNNING, seen by the same poller.
    let mut sbatch_running = vec![];
    for _ in 0..5 {
        wait_idle(&slurm);
        let t = Instant::now();
        let out = slurm
            .cmd("sbatch")
            .args(["--parsable", "--output=/dev/null", "--wrap", "sleep 60"])
            .output()?;
        anyhow::ensure!(out.status.success(), "sbatch failed: {out:?}");
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let seen = loop {
            if let Some((_, at)) = watcher.started_after(t).into_iter().find(|j| j.0 == id) {
                break at;
            }
            anyhow::ensure!(t.elapsed() < Duration::from_secs(30), "job {id} never ran");
            std::thread::sleep(Duration::from_millis(2));
        };
        sbatch_running.push(ms(seen - t));
        let out = slurm.cmd("scancel").arg(&id).output()?;
        anyhow::ensure!(out.status.success(), "scancel failed: {out:?}");
    }

    let local = SandboxConfig {
        execution_mode: ExecutionMode::Notebook,
        ..SandboxConfig::default()
    };
    let on_slurm = SandboxConfig {
        backend: BackendKind::Slurm,
        shared_dir: Some(shared.to_string_lossy().to_string()),
        ..local.clone()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let cancel = CancellationToken::new();
    // Make (or find) the cached env locally first, so no start below builds it.
    let mut local_first = vec![];
    for _ in 0..2 {
        local_first.push(rt.block_on(first_cell_local(&local, dir.path(), &cancel))?);
    }
    let mut starts = vec![];
    for _ in 0..STARTS {
        wait_idle(&slurm);
        starts.push(rt.block_on(first_cell(&on_slurm, dir.path(), &watcher, &cancel))?);
    }
    wait_idle(&slurm);
    let (l, s) = rt.block_on(async {
        let l = cells(&local, dir.path(), &cancel).await?;
        let s = cells(&on_slurm, dir.path(), &cancel).await?;
        anyhow::Ok((l, s))
    })?;
    drop(watcher);
    drop(rt);

    println!("| submit → first cell `1+1` | total ms | scheduler ms | seer ms |");
    println!("|---|---|---|---|");
    for (i, (total, sched)) in starts.iter().enumerate() {
        let what = if i == 0 {
            "run 1 (copies seer to the shared dir)".to_string()
        } else {
            format!("run {}", i + 1)
        };
        println!(
            "| {what} | {total:.0} | {sched:.0} | {:.0} |",
            total - sched
        );
    }
    let warm = &starts[1..];
    let tm = median(&warm.iter().map(|s| s.0).collect::<Vec<_>>());
    let sm = median(&warm.iter().map(|s| s.1).collect::<Vec<_>>());
    let em = median(&warm.iter().map(|s| s.0 - s.1).collect::<Vec<_>>());
    println!("| median of runs 2–{STARTS} | {tm:.0} | {sm:.0} | {em:.0} |");
    println!(
        "| local sandbox, start → first cell (warm) | {:.0} | | |",
        local_first[1]
    );
    println!();
    let (rm, _) = median_p99(&srun_true);
    println!("`srun true` on the same cluster (median of 5): {rm:.0} ms");
    println!(
        "bare `sbatch --wrap` → RUNNING, same poller (median of 5): {:.0} ms (all: {:?})",
        median(&sbatch_running),
        sbatch_running.iter().map(|v| v.round()).collect::<Vec<_>>()
    );
    println!();
    println!("| notebook cell `i+1` ({CELLS}) | median ms | p99 ms |");
    println!("|---|---|---|");
    let (lm, lp) = median_p99(&l);
    let (sm, sp) = median_p99(&s);
    println!("| local | {lm:.2} | {lp:.2} |");
    println!("| slurm job | {sm:.2} | {sp:.2} |");
    println!("| slurm − local | {:+.2} | {:+.2} |", sm - lm, sp - lp);
    drop(slurm);
    Ok(())
}

/// Start → first cell on a local sandbox (ms).
async fn first_cell_local(
    config: &SandboxConfig,
    dir: &Path,
    cancel: &CancellationToken,
) -> anyhow::Result<f64> {
    let req = StartRequest {
        config: config.clone(),
        base_dir: dir.to_path_buf(),
        ..Default::default()
    };
    let t = Instant::now();
    let sb = seer::sandbox::start(req, cancel).await?;
    let session = NotebookSession::start(sb.clone(), session_opts(dir), cancel).await?;
    session.execute("1+1", false, None, cancel).await?;
    let total = ms(t.elapsed());
    session.shutdown().await?;
    sb.terminate()?;
    Ok(total)
}
