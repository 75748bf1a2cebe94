//! Sandboxes: the config types, the backend trait, the local backend, and what keeps track
//! of live sandboxes and their processes.

pub mod config;
pub mod fsutil;
pub mod local;
pub mod models;
pub mod pyenv;
pub mod registry;
pub mod repos;
pub mod sync;
pub mod watchdog;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use config::SandboxConfig;

/// What to run in a sandbox.
#[derive(Debug, Clone)]
pub enum Command {
    /// A `bash -c` command line.
    Shell(String),
    /// Python source fed to the env's interpreter on stdin.
    Python(String),
}

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub timeout: Option<Duration>,
    /// Working directory, relative to the workspace.
    pub cwd: Option<String>,
    /// A host folder to run in instead (local sessions, local backend only); wins over
    /// `cwd`.
    pub host_cwd: Option<std::path::PathBuf>,
    pub env: BTreeMap<String, String>,
}

/// The result of a finished command.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}

/// A long-running process started in a sandbox (a kernel, a server), in its own process
/// group that the sandbox records and ends on terminate.
pub struct Spawned {
    pub child: tokio::process::Child,
    pub pgid: i32,
}

/// The GPUs a sandbox asked for (`gpu`, `gpu_count` of its config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GpuRequest {
    /// The GPU type as configured (`"H100"`, `"any"`, …).
    pub kind: String,
    pub count: u32,
}

impl GpuRequest {
    /// The request of a config; `None` when `gpu` is unset.
    pub fn of(config: &SandboxConfig) -> Option<Self> {
        config.gpu.as_ref().map(|kind| Self {
            kind: kind.clone(),
            count: config.gpu_count,
        })
    }
}

/// What a started sandbox reports about itself.
#[derive(Debug, Clone, Serialize)]
pub struct SandboxInfo {
    pub id: String,
    pub backend: String,
    pub workspace: PathBuf,
    pub dir: PathBuf,
    pub models: Vec<models::ModelHandle>,
    pub repos: Vec<repos::RepoHandle>,
    /// The GPUs the sandbox was started with (`None`: CPU only).
    pub gpu: Option<GpuRequest>,
    /// Whether its processes share this machine's network (`false`: `network: false`, a
    /// network namespace of their own; seer reaches its kernels over Unix sockets).
    pub network: bool,
    pub env: Option<pyenv::PythonEnv>,
    /// The config as recorded (hidden model names masked, secrets as names only).
    pub config: serde_json::Value,
}

/// One started sandbox, whatever machine it runs on.
#[async_trait::async_trait]
pub trait Sandbox: Send + Sync {
    fn info(&self) -> SandboxInfo;
    /// Runs a command to its end (or its timeout, or cancellation).
    async fn exec(
        &self,
        cmd: Command,
        opts: ExecOptions,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput>;
    /// Starts a long-running process; its stdout and stderr go to `logs/<log_name>.log`.
    fn spawn(
        &self,
        program: &str,
        args: &[String],
        opts: &ExecOptions,
        log_name: &str,
    ) -> Result<Spawned>;
    /// Ends a process group started by `spawn` and forgets it.
    fn kill_group(&self, pgid: i32);
    /// The Python interpreter of the sandbox's env.
    fn python(&self) -> PathBuf;
    fn write_file(&self, path: &str, contents: &[u8]) -> Result<()>;
    fn read_file(&self, path: &str) -> Result<Vec<u8>>;
    fn ensure_dir(&self, path: &str) -> Result<()>;
    /// Saves the workspace; returns the snapshot id.
    fn snapshot(&self, description: &str) -> Result<String>;
    /// Ends every process of the sandbox. Idempotent.
    fn terminate(&self) -> Result<()>;
    fn is_terminated(&self) -> bool;
    /// Keeps the sandbox alive after this seer process exits (until its `timeout`).
    fn detach(&self) -> Result<()>;
    /// Whether `detach` was called (by this or an earlier run).
    fn is_detached(&self) -> bool;
    /// Removes secret values (this sandbox's and the process-wide ones, see
    /// [`crate::secrets`]) from a text before it is shown or written anywhere.
    fn redact(&self, text: &str) -> String;
}
