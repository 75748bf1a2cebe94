//! Sandboxes: the config types, the backend trait, the local backend, and what keeps track
//! of live sandboxes and their processes.

pub mod bounds;
pub mod config;
pub mod fsutil;
pub mod local;
pub mod models;
pub mod provision;
pub mod pyenv;
pub mod registry;
pub mod remote;
pub mod repos;
pub mod seer_paths;
pub mod sync;
pub mod watchdog;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub use config::SandboxConfig;

/// Everything needed to start a sandbox, whatever its backend.
#[derive(Debug, Clone, Default)]
pub struct StartRequest {
    pub config: SandboxConfig,
    /// Where relative host paths (local files, model dirs, repos) resolve: the script's folder.
    pub base_dir: PathBuf,
    /// Start from this snapshot's workspace.
    pub snapshot: Option<String>,
    /// The script that started it, for `seer ps`.
    pub script: Option<String>,
    /// The id to use (a remote host's agent is given the local one); else a new one.
    pub id: Option<String>,
    /// The values of the config's `secrets` (else read from the environment).
    pub secrets: Option<SecretValues>,
}

/// Secret values by name; `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct SecretValues(pub BTreeMap<String, String>);

impl std::fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// Checks a sandbox id given from outside (it names a folder).
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        anyhow::bail!("`{id}` is not a valid sandbox id (letters, digits, `-` and `_`)");
    }
    Ok(())
}

/// Starts a sandbox on the backend its config names.
pub async fn start(
    req: StartRequest,
    cancel: &CancellationToken,
) -> Result<std::sync::Arc<dyn Sandbox>> {
    match req.config.backend {
        config::BackendKind::Ssh | config::BackendKind::Slurm | config::BackendKind::Modal => {
            Ok(remote::RemoteSandbox::start(req, cancel).await?)
        }
        _ => {
            let env = provision::ProvisionEnv::resolve(&req.config.provision_env);
            Ok(provision::scope(env, local::LocalSandbox::start(req, cancel)).await?)
        }
    }
}

/// Reconnects to a live sandbox by id (`Sandbox::from_id`), on whatever machine it runs.
pub async fn attach(id: &str) -> Result<std::sync::Arc<dyn Sandbox>> {
    let dir = crate::paths::sandboxes_dir().join(id);
    let backend = registry::SandboxRecord::load(&dir).map(|r| r.backend);
    match backend.as_deref() {
        Ok("modal") => anyhow::bail!(
            "not supported yet: reattaching to a modal sandbox (it ends with the seer that started it)"
        ),
        Ok("ssh" | "slurm") => Ok(remote::RemoteSandbox::attach(id).await?),
        _ => Ok(local::LocalSandbox::attach(id)?),
    }
}

/// What to run in a sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Command {
    /// A `bash -c` command line.
    Shell(String),
    /// Python source fed to the env's interpreter on stdin.
    Python(String),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}

/// A long-running process started in a sandbox (a kernel, a server), in its own process
/// group that the sandbox records and ends on terminate.
pub struct Spawned {
    /// Its process group on the sandbox's machine.
    pub pgid: i32,
    /// Becomes `Some(how it ended)` when the process has exited (or the sandbox's machine
    /// can no longer be reached).
    pub exited: tokio::sync::watch::Receiver<Option<String>>,
}

/// The GPUs a sandbox asked for (`gpu`, `gpu_count` of its config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// What a started sandbox reports about itself. Paths are on the sandbox's machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxInfo {
    pub id: String,
    pub backend: String,
    /// The machine it runs on: `None` for this one, else the ssh destination.
    #[serde(default)]
    pub host: Option<String>,
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
    /// The Python interpreter of the sandbox's env (a path on the sandbox's machine).
    fn python(&self) -> String;
    /// Workspace files (paths relative to the workspace, never out of it).
    fn write_file(&self, path: &str, contents: &[u8]) -> Result<()>;
    fn read_file(&self, path: &str) -> Result<Vec<u8>>;
    fn ensure_dir(&self, path: &str) -> Result<()>;
    /// Files of seer's own in the sandbox's folder (`tmp/…`, `logs/…`; relative to
    /// `info().dir`), written 0600.
    fn write_private(&self, rel: &str, contents: &[u8]) -> Result<()>;
    fn read_private(&self, rel: &str) -> Result<Vec<u8>>;
    /// Copies a local folder's contents to `dest`, a folder on the sandbox's machine inside
    /// the sandbox's folder (made if missing; files there are overwritten).
    fn upload(&self, local: &std::path::Path, dest: &std::path::Path) -> Result<()>;
    /// A local folder where seer stages what it uploads, when the sandbox runs on another
    /// machine (`None`: it runs on this one and its paths are local).
    fn staging_dir(&self) -> Option<PathBuf> {
        None
    }
    /// A Unix socket on this machine that reaches `socket`, a Unix socket in the sandbox
    /// (the same path for a local sandbox; a forward through the connection otherwise).
    async fn reach_socket(&self, socket: &std::path::Path) -> Result<PathBuf>;
    /// Whether something accepts connections on `socket` in the sandbox.
    async fn socket_listening(&self, socket: &std::path::Path) -> bool;
    /// A port on this machine's loopback that reaches `port` on the sandbox's loopback
    /// (the same port for a sandbox on this machine).
    fn reach_port(&self, port: u16) -> Result<u16> {
        Ok(port)
    }
    /// A port on the sandbox's loopback that reaches `port` on this machine's loopback
    /// (the same port for a sandbox on this machine).
    fn expose_port(&self, port: u16) -> Result<u16> {
        Ok(port)
    }
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

    /// Redacts texts read one after another (see [`crate::secrets::Redactor::redact_joined`]).
    fn redact_joined(&self, parts: &mut [String]) {
        for p in parts.iter_mut() {
            *p = self.redact(p);
        }
    }

    /// How many processes of the sandbox its memory bound has killed so far (0 where no
    /// memory cgroup could be made, or not known).
    async fn oom_kills(&self) -> u64 {
        0
    }
}
