//! The record of every sandbox (`<state>/sandboxes/<id>/sandbox.json`): who owns it, which
//! processes it has, when it must end. `seer ps`, `seer gc`, the watchdog and
//! `Sandbox::from_id` read it; only the functions here write it.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::models::ModelHandle;
use super::repos::RepoHandle;
use crate::paths;
use crate::process::{self, ProcDir};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Starting,
    Running,
    Terminated,
    TimedOut,
    Failed,
    Orphaned,
}

impl Status {
    pub fn is_live(self) -> bool {
        matches!(self, Status::Starting | Status::Running)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub id: String,
    pub backend: String,
    /// The ssh destination of a sandbox on another machine (its `dir` is then this
    /// machine's folder for it: record, logs, staging).
    #[serde(default)]
    pub host: Option<String>,
    /// The Slurm job of a `slurm` sandbox.
    #[serde(default)]
    pub job_id: Option<String>,
    pub dir: PathBuf,
    pub workspace: PathBuf,
    pub status: Status,
    pub created_at: f64,
    #[serde(default)]
    pub ended_at: Option<f64>,
    #[serde(default)]
    pub end_reason: Option<String>,
    /// The seer process that owns the sandbox; `None` once detached.
    pub owner_pid: Option<u32>,
    #[serde(default)]
    pub owner_start: Option<u64>,
    /// Unix time at which the watchdog ends the sandbox.
    #[serde(default)]
    pub deadline: Option<f64>,
    #[serde(default)]
    pub watchdog_pid: Option<u32>,
    #[serde(default)]
    pub script: Option<String>,
    /// The config as given (secrets are names only, never values).
    pub config: serde_json::Value,
    #[serde(default)]
    pub env_path: Option<PathBuf>,
    #[serde(default)]
    pub models: Vec<ModelHandle>,
    #[serde(default)]
    pub repos: Vec<RepoHandle>,
}

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl SandboxRecord {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("sandbox.json")
    }

    pub fn procs(&self) -> ProcDir {
        ProcDir::new(self.dir.join("procs"))
    }

    /// Writes the record atomically (temp file + rename).
    pub fn save(&self) -> Result<()> {
        let path = Self::path(&self.dir);
        let tmp = self
            .dir
            .join(format!("sandbox.json.tmp-{}", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    pub fn load(dir: &Path) -> Result<Self> {
        let path = Self::path(dir);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
    }

    /// Whether the owning seer process is gone (detached sandboxes have no owner to lose).
    pub fn owner_gone(&self) -> bool {
        match self.owner_pid {
            Some(pid) => !process::owner_alive(pid, self.owner_start),
            None => false,
        }
    }

    /// Process ids still alive: process groups of commands, and the watchdog.
    pub fn live_pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self
            .procs()
            .list()
            .into_iter()
            .map(|(g, _)| g)
            .filter(|g| process::group_alive(*g))
            .collect();
        if let Some(w) = self.watchdog_pid
            && process::pid_alive(w as i32)
        {
            pids.push(w as i32);
        }
        pids
    }

    /// Ends every process of the sandbox and records why. Safe to call more than once and
    /// from any process (owner, watchdog, `seer gc`).
    pub fn end(&mut self, status: Status, reason: &str) -> Result<()> {
        if let Some(w) = self.watchdog_pid.take()
            && w != std::process::id()
        {
            process::kill_pid(w as i32);
        }
        self.procs().kill_all(Duration::from_secs(1));
        crate::sandbox::bounds::end(&self.dir);
        if self.status.is_live() {
            self.status = status;
            self.ended_at = Some(now());
            self.end_reason = Some(reason.to_string());
        }
        self.save()
    }
}

/// Every sandbox record in the state dir, oldest first. Unreadable records are skipped
/// with a warning.
pub fn list_all() -> Vec<SandboxRecord> {
    let dir = paths::sandboxes_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return vec![];
    };
    let mut out: Vec<SandboxRecord> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("sandbox.json").exists())
        .filter_map(|e| match SandboxRecord::load(&e.path()) {
            Ok(r) => Some(r),
            Err(err) => {
                tracing::warn!("skipping sandbox record: {err:#}");
                None
            }
        })
        .collect();
    out.sort_by(|a, b| a.created_at.total_cmp(&b.created_at));
    out
}

/// Ends every live sandbox whose owning seer process is gone. Returns the ended ids.
pub fn gc() -> Vec<String> {
    let mut ended = vec![];
    for mut rec in list_all() {
        if rec.status.is_live() && rec.owner_gone() {
            let pids = rec.live_pids();
            match rec.end(Status::Orphaned, "owner process gone (seer gc)") {
                Ok(()) => {
                    tracing::info!(id = rec.id, ?pids, "ended orphaned sandbox");
                    ended.push(rec.id.clone());
                }
                Err(e) => tracing::warn!(id = rec.id, "could not end sandbox: {e:#}"),
            }
        }
    }
    ended
}

/// The record of a sandbox this process holds, kept in step with the file: the watchdog or
/// `seer gc` may change it from outside, so every change starts from what is on disk.
pub struct LiveRecord {
    dir: PathBuf,
    rec: std::sync::Mutex<SandboxRecord>,
}

impl LiveRecord {
    pub fn new(rec: SandboxRecord) -> Self {
        Self {
            dir: rec.dir.clone(),
            rec: std::sync::Mutex::new(rec),
        }
    }

    /// Applies `f` to the record as on disk, and saves it.
    pub fn update(&self, f: impl FnOnce(&mut SandboxRecord)) -> Result<()> {
        let mut rec = self
            .rec
            .lock()
            .map_err(|_| anyhow::anyhow!("sandbox record lock poisoned"))?;
        if let Ok(disk) = SandboxRecord::load(&self.dir) {
            *rec = disk;
        }
        f(&mut rec);
        rec.save()
    }

    /// Ends the sandbox as on disk (its recorded processes too), with `status` and `reason`.
    pub fn end(&self, status: Status, reason: &str) -> Result<()> {
        let mut rec = self
            .rec
            .lock()
            .map_err(|_| anyhow::anyhow!("sandbox record lock poisoned"))?;
        if let Ok(disk) = SandboxRecord::load(&self.dir) {
            *rec = disk;
        }
        rec.end(status, reason)
    }

    /// The config as recorded.
    pub fn config(&self) -> serde_json::Value {
        self.rec
            .lock()
            .map(|r| r.config.clone())
            .unwrap_or_default()
    }

    /// Whether it has ended (by this process, the watchdog or `seer gc`), or its record is
    /// gone.
    pub fn ended(&self) -> bool {
        SandboxRecord::load(&self.dir).map_or(true, |r| !r.status.is_live())
    }

    /// No owner any more: it outlives this process (until its `timeout`).
    pub fn detach(&self) -> Result<()> {
        self.update(|r| {
            r.owner_pid = None;
            r.owner_start = None;
        })
    }

    pub fn detached(&self) -> bool {
        SandboxRecord::load(&self.dir)
            .map(|r| r.owner_pid.is_none())
            .unwrap_or(false)
    }
}
