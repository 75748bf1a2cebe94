//! Helpers the benches share: timing conversions, order statistics, and the environment
//! that keeps a bench's sandboxes in a temp dir with the real `seer` as watchdog.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A sorted copy.
pub fn sorted(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s
}

pub fn median(v: &[f64]) -> f64 {
    let s = sorted(v);
    s[s.len() / 2]
}

/// (median, p99).
pub fn median_p99(v: &[f64]) -> (f64, f64) {
    let s = sorted(v);
    let p99 = ((s.len() as f64) * 0.99) as usize;
    (s[s.len() / 2], s[p99.saturating_sub(1)])
}

/// Sandboxes in `dir`, the watchdog run by the real `seer` binary (an embedding program
/// must never be its own watchdog), envs cached under the target dir.
pub fn isolate(dir: &Path) {
    // SAFETY: called first thing in main, before any other thread exists.
    unsafe {
        std::env::set_var("SEER_HOME", dir.join("state"));
        std::env::set_var("SEER_BIN", env!("CARGO_BIN_EXE_seer"));
        std::env::set_var("SEER_CACHE_DIR", bench_cache());
    }
}

/// The benches' env cache, as a real path: the target's `tmp` may be a symlink, which
/// bubblewrap cannot mount a sandbox's cache under.
pub fn bench_cache() -> PathBuf {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-cache");
    std::fs::create_dir_all(&cache).expect("creating the benches' env cache");
    cache.canonicalize().unwrap_or(cache)
}

/// Round trips of `n` notebook cells `i+1` on `session` (ms each).
pub async fn cell_round_trips(
    session: &seer::notebook::session::NotebookSession,
    n: usize,
    cancel: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<Vec<f64>> {
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        let t = std::time::Instant::now();
        session
            .execute(&format!("{i}+1"), false, None, cancel)
            .await?;
        v.push(ms(t.elapsed()));
    }
    Ok(v)
}

/// A notebook backend that answers every cell at once with `output(n, code)` (cell `n`), so
/// a bench times the MCP transport and the harness, not a kernel.
pub struct CannedNotebook {
    next: std::sync::atomic::AtomicUsize,
    output: fn(usize, &str) -> String,
}

impl CannedNotebook {
    pub fn new(output: fn(usize, &str) -> String) -> Self {
        Self {
            next: Default::default(),
            output,
        }
    }
}

#[async_trait::async_trait]
impl seer::notebook::mcp::NotebookTools for CannedNotebook {
    async fn execute_code(&self, code: String) -> anyhow::Result<seer::notebook::CellRun> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(seer::notebook::CellRun {
            cell_index: Some(n),
            execution_count: Some(n as i64 + 1),
            outputs: vec![seer::notebook::nbformat::Output::Stream {
                name: "stdout".into(),
                text: seer::notebook::nbformat::MultiLine::Text((self.output)(n, &code)),
            }],
            status: seer::notebook::RunStatus::Ok,
            note: None,
        })
    }
    async fn add_markdown(&self, _: String) -> anyhow::Result<usize> {
        Ok(0)
    }
    async fn edit_cell(&self, code: String, _: i64) -> anyhow::Result<seer::notebook::CellRun> {
        self.execute_code(code).await
    }
    async fn interrupt(&self) -> anyhow::Result<()> {
        Ok(())
    }
    async fn restart(&self) -> anyhow::Result<()> {
        Ok(())
    }
    async fn shutdown(&self) -> anyhow::Result<()> {
        Ok(())
    }
    fn read_cell(&self, _: i64) -> anyhow::Result<(usize, seer::notebook::nbformat::Cell)> {
        anyhow::bail!("this backend keeps no cells")
    }
}
