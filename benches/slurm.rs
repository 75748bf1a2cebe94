//! The slurm backend on an idle cluster: submit → first notebook cell, split into the
//! scheduler's part (submit → the job's script started, by the stamp it writes) and seer's
//! part (the rest: noticing the job runs, the `srun --overlap` step, the agent, the sandbox
//! and kernel start, the session and the cell), with a bare `srun true` on the same cluster as a reference; then
//! 200 notebook cell round trips `i+1` through the job vs a local sandbox in the same run.
//! The cluster is the tests' private single-node Slurm (`tests/common/slurm.rs`), started
//! by this bench. Run with `cargo bench --bench slurm`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: a failed unwrap is a failed run

mod common;
// The tests' fixtures (dead code allowed inside), of which the bench uses the cluster.
#[path = "../tests/common/mod.rs"]
mod fixtures;

use std::path::Path;
use std::sync::Arc;
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

/// Seconds since the epoch, as the job scripts' `date +%s.%N` writes them.
fn epoch_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Waits for a job script's start stamp (`date +%s.%N`) in `file` and returns it.
fn stamp(file: &Path) -> anyhow::Result<f64> {
    let t = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(file)
            && let Ok(v) = text.trim().parse::<f64>()
        {
            return Ok(v);
        }
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(30),
            "no start stamp in {}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(5));
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
    shared: &Path,
    cancel: &CancellationToken,
) -> anyhow::Result<(f64, f64)> {
    let req = StartRequest {
        config: config.clone(),
        base_dir: dir.to_path_buf(),
        ..Default::default()
    };
    let submitted = epoch_now();
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
    // The newest job's folder is this sandbox's.
    let job = std::fs::read_dir(shared.join("jobs"))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .ok_or_else(|| anyhow::anyhow!("no job folder"))?;
    let started = stamp(&shared.join(format!("jobs/{job}/started")))?;
    session.shutdown().await?;
    sb.terminate()?;
    Ok((ms(total), (started - submitted) * 1000.0))
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
    let v = common::cell_round_trips(&session, CELLS, cancel).await?;
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

    // A bare batch job: submit → its script started, by the same kind of stamp.
    let mut sbatch_started = vec![];
    for i in 0..5 {
        wait_idle(&slurm);
        let file = dir.path().join(format!("bare-{i}"));
        let submitted = epoch_now();
        let out = slurm
            .cmd("sbatch")
            .args([
                "--parsable",
                "--output=/dev/null",
                "--wrap",
                &format!("date +%s.%N > {}; sleep 60", file.display()),
            ])
            .output()?;
        anyhow::ensure!(out.status.success(), "sbatch failed: {out:?}");
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        sbatch_started.push((stamp(&file)? - submitted) * 1000.0);
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
        starts.push(rt.block_on(first_cell(&on_slurm, dir.path(), &shared, &cancel))?);
    }
    wait_idle(&slurm);
    let (l, s) = rt.block_on(async {
        let l = cells(&local, dir.path(), &cancel).await?;
        let s = cells(&on_slurm, dir.path(), &cancel).await?;
        anyhow::Ok((l, s))
    })?;
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
        "bare `sbatch --wrap` → its script started (median of 5): {:.0} ms (all: {:?})",
        median(&sbatch_started),
        sbatch_started.iter().map(|v| v.round()).collect::<Vec<_>>()
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
