//! The ssh, slurm and modal backends: a sandbox on another machine (an ssh host, the node
//! of a Slurm job: see [`slurm`], or a Modal container: see [`modal`]), run there by seer
//! itself.
//!
//! `RemoteSandbox` implements [`Sandbox`] by calls to `seer __sandbox-agent` on the host
//! ([`agent`]), which hosts the local backend there. The two talk over one `ssh` process's
//! stdin/stdout ([`ssh`]), multiplexed by yamux ([`protocol`]): control calls, and forwards
//! of the Unix sockets of the sandbox's kernels. The sandbox's record stays on this machine
//! (`seer ps`, `Sandbox::from_id`) and names the host; notebooks and transcripts are
//! written here as cells complete. The connection and its forwards run on a small runtime of
//! their own, so the synchronous parts of the trait can wait on them from anywhere.

pub mod agent;
pub mod link;
pub mod modal;
pub mod protocol;
pub mod slurm;
pub mod ssh;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use self::protocol::{Exited, Request, Started, decode, encode, recv, reply, send};
use super::config::SandboxConfig;
use super::fsutil::resolve_host;
use super::registry::{LiveRecord, SandboxRecord, Status, now};
use super::{Command, ExecOptions, ExecOutput, Sandbox, SandboxInfo, Spawned, StartRequest};
use crate::paths;
use crate::secrets::Redactor;

/// yamux settings of both ends: larger windows than the default for bulk copies, and a
/// write timeout that a slow link does not hit.
pub(crate) fn yamux_config() -> tokio_yamux::Config {
    tokio_yamux::Config {
        max_stream_window_size: 4 * 1024 * 1024,
        connection_write_timeout: Duration::from_secs(120),
        keepalive_interval: Duration::from_secs(10),
        ..tokio_yamux::Config::default()
    }
}

/// A runtime that may be dropped anywhere (a plain one panics when dropped in async
/// code): its threads are left to end in the background.
struct BackgroundRuntime(Option<tokio::runtime::Runtime>);

impl Drop for BackgroundRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// One connection to one host's agent.
struct Conn {
    /// Dropping it ends the ssh process (kill-on-drop) and with it the connection; the
    /// agent then ends the sandbox unless it was detached.
    _runtime: BackgroundRuntime,
    handle: tokio::runtime::Handle,
    control: tokio_yamux::Control,
    lost: Arc<AtomicBool>,
    /// This machine's loopback ports the host may connect back to (`expose_port`).
    backs: Arc<Mutex<HashSet<u16>>>,
    host: String,
    transport: ssh::Transport,
    stderr_tail: Arc<Mutex<Vec<String>>>,
}

impl Conn {
    async fn open(target: &ssh::Transport, log: &Path, redactor: Redactor) -> Result<Arc<Self>> {
        let runtime = BackgroundRuntime(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("seer-ssh")
                .enable_all()
                .build()
                .context("starting the connection's runtime")?,
        ));
        let handle = runtime
            .0
            .as_ref()
            .map(|rt| rt.handle().clone())
            .ok_or_else(|| anyhow!("no runtime"))?;
        let target2 = target.clone();
        let log = log.to_path_buf();
        let connected = handle
            .spawn(async move { ssh::connect(&target2, &log, redactor).await })
            .await??;
        let lost = Arc::new(AtomicBool::new(false));
        let backs: Arc<Mutex<HashSet<u16>>> = Arc::default();
        let backs2 = backs.clone();
        let stderr_tail = connected.stderr_tail.clone();
        let lost2 = lost.clone();
        let acknowledged = matches!(target, ssh::Transport::Slurm(_));
        let control = handle
            .spawn(async move {
                let ssh::Connected {
                    mut child,
                    reader,
                    writer,
                    ..
                } = connected;
                type Read = Box<dyn tokio::io::AsyncRead + Send + Unpin>;
                type Write = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;
                let (reader, writer): (Read, Write) = if acknowledged {
                    let (r, w) = link::acknowledged(reader, writer);
                    (Box::new(r), Box::new(w))
                } else {
                    (Box::new(reader), Box::new(writer))
                };
                let io = tokio::io::join(reader, writer);
                let mut session = tokio_yamux::Session::new_client(io, yamux_config());
                let control = session.control();
                tokio::spawn(async move {
                    // The agent opens streams only for connections to `expose_port`s.
                    while let Some(Ok(stream)) = session.next().await {
                        let backs = backs2.clone();
                        tokio::spawn(async move {
                            if let Err(e) = connect_back(stream, &backs).await {
                                tracing::debug!("connection from the host: {e:#}");
                            }
                        });
                    }
                    lost2.store(true, Ordering::SeqCst);
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                });
                control
            })
            .await?;
        Ok(Arc::new(Self {
            _runtime: runtime,
            backs,
            handle,
            control,
            lost,
            host: target.shown(),
            transport: target.clone(),
            stderr_tail,
        }))
    }

    /// An error for a call that failed because the connection is gone.
    fn lost_error(&self, e: anyhow::Error) -> anyhow::Error {
        if self.lost.load(Ordering::SeqCst)
            && let ssh::Transport::Slurm(job) = &self.transport
            && let Some(why) = job.why_ended_blocking()
        {
            return anyhow!(
                "{why}; the sandbox's processes there have ended (its notebooks and transcripts here are intact)"
            );
        }
        if self.lost.load(Ordering::SeqCst) {
            let tail = self
                .stderr_tail
                .lock()
                .map(|t| t.join("\n"))
                .unwrap_or_default();
            anyhow!(
                "the connection to `{}` was lost; the sandbox's processes there have ended{}",
                self.host,
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(" (ssh said: {tail})")
                }
            )
        } else {
            e
        }
    }

    async fn stream(&self) -> Result<tokio_yamux::StreamHandle> {
        let mut control = self.control.clone();
        control
            .open_stream()
            .await
            .map_err(|e| self.lost_error(anyhow!("opening a stream to `{}`: {e:?}", self.host)))
    }

    /// One call and its reply, run on the connection's runtime.
    async fn call<T: for<'de> serde::Deserialize<'de> + Send + 'static>(
        self: &Arc<Self>,
        req: Request,
    ) -> Result<T> {
        let me = self.clone();
        let out = self
            .handle
            .spawn(async move {
                let stream = me.stream().await?;
                let (mut r, mut w) = protocol::pumped(stream);
                send(&mut w, &req).await?;
                reply::<_, T>(&mut r).await
            })
            .await
            .map_err(|e| anyhow!("the call to `{}` panicked: {e}", self.host))?;
        out.map_err(|e| self.lost_error(e))
    }

    /// [`Conn::call`] from synchronous code.
    fn call_blocking<T: for<'de> serde::Deserialize<'de> + Send + 'static>(
        self: &Arc<Self>,
        req: Request,
    ) -> Result<T> {
        let (tx, rx) = std::sync::mpsc::channel();
        let me = self.clone();
        self.handle.spawn(async move {
            let _ = tx.send(me.call::<T>(req).await);
        });
        rx.recv()
            .map_err(|_| anyhow!("the connection to `{}` was closed", self.host))?
    }

    /// Serves one local connection of a forward: a `Connect`/`ConnectTcp` call, then the
    /// stream and `client` piped both ways until either side closes.
    async fn pipe<S>(self: Arc<Self>, req: Request, mut client: S)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let res = async {
            let stream = self.stream().await?;
            let (mut r, mut w) = protocol::pumped(stream);
            send(&mut w, &req).await?;
            reply::<_, serde_json::Value>(&mut r).await?;
            protocol::splice(r, w, &mut client).await
        }
        .await;
        if let Err(e) = res {
            tracing::debug!("forward to `{}`: {e:#}", self.host);
        }
    }

    /// [`Conn::call_blocking`] of a call that answers nothing.
    fn call_unit(self: &Arc<Self>, req: Request) -> Result<()> {
        self.call_blocking::<serde_json::Value>(req).map(|_| ())
    }

    /// Sends a tar archive of `entries` (local path, name in the archive) to be unpacked
    /// into `dest` on the host.
    async fn upload(
        self: &Arc<Self>,
        entries: Vec<(PathBuf, PathBuf)>,
        dest: PathBuf,
    ) -> Result<()> {
        let me = self.clone();
        let total: u64 = entries.iter().map(|(p, _)| tree_size(p)).sum();
        let host = self.host.clone();
        let out = self
            .handle
            .spawn(async move {
                let stream = me.stream().await?;
                let (mut r, mut w) = protocol::pumped(stream);
                send(&mut w, &Request::Upload { dest }).await?;
                let bridge = tokio_util::io::SyncIoBridge::new(w);
                let bar = (total > 8 * 1024 * 1024)
                    .then(|| crate::progress::bytes_bar(total, &format!("copying to {host}")));
                let bar2 = bar.clone();
                let mut w = tokio::task::spawn_blocking(move || -> Result<_> {
                    let counting = Counting {
                        inner: bridge,
                        bar: bar2,
                    };
                    let mut tar = tar::Builder::new(counting);
                    tar.follow_symlinks(true);
                    for (path, name) in &entries {
                        if path.is_dir() {
                            tar.append_dir_all(name, path)
                        } else {
                            tar.append_path_with_name(path, name)
                        }
                        .with_context(|| format!("reading {}", path.display()))?;
                    }
                    let counting = tar.into_inner()?;
                    Ok(counting.inner.into_inner())
                })
                .await??;
                w.shutdown().await?;
                if let Some(b) = bar {
                    b.finish_and_clear();
                }
                reply::<_, serde_json::Value>(&mut r).await?;
                Ok::<_, anyhow::Error>(())
            })
            .await
            .map_err(|e| anyhow!("the upload to `{}` panicked: {e}", self.host))?;
        out.map_err(|e| self.lost_error(e))
    }
}

/// A connection the host opened to one of this machine's `expose_port`s.
async fn connect_back(
    stream: tokio_yamux::StreamHandle,
    allowed: &Mutex<HashSet<u16>>,
) -> Result<()> {
    let (mut r, w) = protocol::pumped(stream);
    let Some(protocol::Back { back }) = recv::<_, protocol::Back>(&mut r).await? else {
        return Ok(());
    };
    let ok = allowed.lock().map(|a| a.contains(&back)).unwrap_or(false);
    if !ok {
        bail!("the host asked for port {back}, which was not exposed to it");
    }
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", back)).await?;
    protocol::splice(r, w, &mut tcp).await
}

/// Models as the script named them: the host saw local model folders under their upload
/// paths, which the agent's prompt must not show. `config` is the recorded (masked) config,
/// so a hidden model keeps its alias.
fn configured_names(models: &mut [super::models::ModelHandle], config: &serde_json::Value) {
    for (i, m) in models.iter_mut().enumerate() {
        let given = &config["models"][i];
        if let Some(name) = given["name"].as_str() {
            m.name = name.to_string();
        }
        if m.base_model.is_some()
            && let Some(base) = given["base_model"].as_str()
        {
            m.base_model = Some(base.to_string());
        }
    }
}

/// Passes writes through, moving a progress bar.
struct Counting<W> {
    inner: W,
    bar: Option<indicatif::ProgressBar>,
}

impl<W: std::io::Write> std::io::Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(b) = &self.bar {
            b.inc(n as u64);
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn tree_size(p: &Path) -> u64 {
    let Ok(meta) = std::fs::metadata(p) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| tree_size(&e.path())).sum())
        .unwrap_or(0)
}

pub struct RemoteSandbox {
    info: SandboxInfo,
    python: String,
    /// This machine's folder of the sandbox: its record, `logs/ssh.log`, `stage/`.
    local_dir: PathBuf,
    conn: Arc<Conn>,
    redactor: Redactor,
    record: LiveRecord,
    terminated: AtomicBool,
    /// Remote Unix sockets already forwarded to `stage/`.
    forwarded: Mutex<HashSet<PathBuf>>,
    /// Host port → this machine's port forwarding to it (`reach_port`).
    reached: Mutex<BTreeMap<u16, u16>>,
    /// This machine's port → the host's port leading back to it (`expose_port`).
    exposed: Mutex<BTreeMap<u16, u16>>,
}

/// The values of the config's `secrets` in this process's environment (or `.env`).
fn secret_values(cfg: &SandboxConfig) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for name in &cfg.secrets {
        match std::env::var(name) {
            Ok(v) => {
                crate::secrets::protect(&v);
                out.insert(name.clone(), v);
            }
            Err(_) => tracing::warn!(
                "secret `{name}` is not set in the environment or in .env; the sandbox starts without it"
            ),
        }
    }
    out
}

/// The config the host's agent gets: local inputs (files, dirs, model and repo folders)
/// sent to its upload folder and named by their paths there.
async fn send_inputs(
    conn: &Arc<Conn>,
    cfg: &SandboxConfig,
    base: &Path,
    id: &str,
) -> Result<serde_json::Value> {
    let mut value = serde_json::to_value(cfg)?;
    let mut uploads: Vec<(PathBuf, PathBuf)> = vec![];
    let mut remote_root: Option<PathBuf> = None;
    let mut root = async || -> Result<PathBuf> {
        if let Some(r) = &remote_root {
            return Ok(r.clone());
        }
        let r: PathBuf = conn.call(Request::UploadDir { id: id.into() }).await?;
        remote_root = Some(r.clone());
        Ok(r)
    };
    for (field, want_dir) in [("local_files", false), ("local_dirs", true)] {
        let items = match field {
            "local_files" => &cfg.local_files,
            _ => &cfg.local_dirs,
        };
        for (i, m) in items.iter().enumerate() {
            let src = resolve_host(base, m.local());
            let ok = if want_dir {
                src.is_dir()
            } else {
                src.is_file()
            };
            if !ok {
                bail!(
                    "{field}[{i}]: {} is not an existing {} (relative paths start at the script's folder {})",
                    src.display(),
                    if want_dir { "directory" } else { "file" },
                    base.display()
                );
            }
            let name = src
                .file_name()
                .map(PathBuf::from)
                .ok_or_else(|| anyhow!("{field}[{i}]: {} has no file name", src.display()))?;
            let rel = PathBuf::from(field).join(i.to_string()).join(&name);
            let there = root().await?.join(&rel);
            let entry = &mut value[field][i];
            *entry = match m.sandbox() {
                Some(s) => serde_json::json!([there, s]),
                // Keeps its own name at the workspace root, as locally.
                None => serde_json::json!([there, name]),
            };
            uploads.push((src, rel));
        }
    }
    for (i, m) in cfg.models.iter().enumerate() {
        for key in ["name", "base_model"] {
            let Some(name) = value["models"][i][key].as_str().map(str::to_string) else {
                continue;
            };
            if !super::models::is_local_name(&name, base) {
                continue;
            }
            let src = resolve_host(base, &name);
            if !src.is_dir() {
                bail!(
                    "models[{i}].{key}: {} is not a directory (relative paths start at the script's folder {})",
                    src.display(),
                    base.display()
                );
            }
            let leaf = src
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| "model".into());
            let rel = PathBuf::from("models")
                .join(format!("{i}-{key}"))
                .join(leaf);
            value["models"][i][key] = root()
                .await?
                .join(&rel)
                .to_string_lossy()
                .to_string()
                .into();
            uploads.push((src, rel));
        }
        let _ = m;
    }
    for (i, r) in cfg.repos.iter().enumerate() {
        if let Some(src) = super::repos::local_source(&r.url, base) {
            let leaf = src
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| "repo".into());
            let rel = PathBuf::from("repos").join(i.to_string()).join(leaf);
            value["repos"][i]["url"] = root()
                .await?
                .join(&rel)
                .to_string_lossy()
                .to_string()
                .into();
            uploads.push((src, rel));
        }
    }
    if !uploads.is_empty() {
        let dest = root().await?;
        conn.upload(uploads, dest).await?;
    }
    Ok(value)
}

impl RemoteSandbox {
    /// Connects to the host, sends the config's local inputs, and has the agent there
    /// provision the sandbox. On failure the local record says why.
    pub async fn start(req: StartRequest, cancel: &CancellationToken) -> Result<Arc<Self>> {
        let cfg = &req.config;
        cfg.validate().map_err(|e| anyhow!(e))?;
        if req.snapshot.is_some() {
            bail!(
                "not supported yet: starting an ssh sandbox from a snapshot (snapshots stay on the host that made them)"
            );
        }
        let slurm = cfg.backend == super::config::BackendKind::Slurm;
        let mut modal = None;
        let (backend, host, cluster, ssh_target) = if slurm {
            let cluster = slurm::Cluster::of(cfg)?;
            let host = cluster.login.as_ref().map(|t| t.shown());
            ("slurm", host, Some(cluster), None)
        } else if cfg.backend == super::config::BackendKind::Modal {
            let m = modal::Modal::prepare(cfg, cancel).await?;
            let host = Some(m.shown());
            modal = Some(m);
            ("modal", host, None, None)
        } else {
            let t = ssh::Target::of(cfg)?;
            ("ssh", Some(t.shown()), None, Some(t))
        };
        let id = super::local::new_id("sb");
        let local_dir = paths::sandboxes_dir().join(&id);
        paths::create_state_subdir(&local_dir)?;
        for d in ["logs", "stage"] {
            paths::create_private_dir(&local_dir.join(d))
                .with_context(|| format!("creating {}", local_dir.join(d).display()))?;
        }
        let me = std::process::id();
        let mut record = SandboxRecord {
            id: id.clone(),
            backend: backend.into(),
            host,
            job_id: None,
            dir: local_dir.clone(),
            workspace: PathBuf::new(),
            status: Status::Starting,
            created_at: now(),
            ended_at: None,
            end_reason: None,
            owner_pid: Some(me),
            owner_start: crate::process::start_time(me),
            deadline: None,
            watchdog_pid: None,
            script: req.script.clone(),
            config: super::local::masked_config(cfg)?,
            env_path: None,
            models: vec![],
            repos: vec![],
        };
        record.save()?;
        let mut job = None;
        let result = async {
            let transport = match (&cluster, ssh_target) {
                (Some(cluster), _) => {
                    let j = cluster.submit(cfg, &id).await?;
                    tracing::info!(id, job = j.id, "submitted the slurm sandbox's job");
                    record.job_id = Some(j.id.clone());
                    record.save()?;
                    job = Some(j.clone());
                    j.wait_running(cancel).await?;
                    ssh::Transport::Slurm(j)
                }
                (None, Some(t)) => {
                    tracing::info!(id, host = %t.shown(), "starting ssh sandbox");
                    ssh::Transport::Ssh(t)
                }
                (None, None) => match modal {
                    Some(m) => {
                        tracing::info!(id, "starting modal sandbox");
                        ssh::Transport::Modal(Box::new(m))
                    }
                    None => bail!("no place to start the sandbox"),
                },
            };
            Self::provision(&req, &transport, record.clone(), cancel).await
        }
        .await;
        if let Err(e) = &result {
            if let Some(j) = &job {
                j.cancel().await;
            }
            let reason = format!("start failed: {e:#}");
            if let Err(e2) = record.end(Status::Failed, &reason) {
                tracing::warn!("could not record failed start of {id}: {e2:#}");
            }
        }
        result
    }

    async fn provision(
        req: &StartRequest,
        target: &ssh::Transport,
        mut record: SandboxRecord,
        cancel: &CancellationToken,
    ) -> Result<Arc<Self>> {
        let cfg = &req.config;
        let secrets = secret_values(cfg);
        let redactor = Redactor::new(secrets.values().cloned());
        // Resolved here, from this machine's environment, as `secrets` are.
        let provision_env = super::provision::ProvisionEnv::resolve(&cfg.provision_env).into_vars();
        let spinner =
            crate::progress::spinner(format!("starting the sandbox on {}", target.shown()));
        let work = async {
            let conn =
                Conn::open(target, &record.dir.join("logs/ssh.log"), redactor.clone()).await?;
            let config = send_inputs(&conn, cfg, &req.base_dir, &record.id).await?;
            let base_dir: PathBuf = conn
                .call(Request::UploadDir {
                    id: record.id.clone(),
                })
                .await?;
            let started: Started = conn
                .call(Request::Start {
                    id: record.id.clone(),
                    config,
                    base_dir,
                    script: req.script.clone(),
                    secrets,
                    provision_env,
                })
                .await?;
            Ok::<_, anyhow::Error>((conn, started))
        };
        let outcome = tokio::select! {
            r = work => r,
            _ = cancel.cancelled() => Err(anyhow!("cancelled")),
        };
        spinner.finish_and_clear();
        let (conn, mut started) = outcome?;
        configured_names(&mut started.info.models, &record.config);
        record.workspace = started.info.workspace.clone();
        record.models = started.info.models.clone();
        record.repos = started.info.repos.clone();
        record.status = Status::Running;
        record.save()?;
        Ok(Self::assemble(record, conn, started, redactor))
    }

    fn assemble(
        record: SandboxRecord,
        conn: Arc<Conn>,
        started: Started,
        redactor: Redactor,
    ) -> Arc<Self> {
        let mut info = started.info;
        // As recorded at start, under the names the script gave (`configured_names`).
        info.models = record.models.clone();
        info.backend = record.backend.clone();
        info.host = record.host.clone();
        info.config = record.config.clone();
        Arc::new(Self {
            info,
            python: started.python,
            local_dir: record.dir.clone(),
            conn,
            redactor,
            record: LiveRecord::new(record),
            terminated: AtomicBool::new(false),
            forwarded: Mutex::new(HashSet::new()),
            reached: Mutex::new(BTreeMap::new()),
            exposed: Mutex::new(BTreeMap::new()),
        })
    }

    /// Reconnects to a live sandbox on its host (`Sandbox::from_id`). As locally, the
    /// caller does not own it: it lives on when this connection ends.
    pub async fn attach(id: &str) -> Result<Arc<Self>> {
        super::check_id(id)?;
        let dir = paths::sandboxes_dir().join(id);
        let record = SandboxRecord::load(&dir)?;
        if !record.status.is_live() {
            bail!(
                "sandbox `{id}` is not running any more ({:?}: {})",
                record.status,
                record.end_reason.clone().unwrap_or_default()
            );
        }
        let cfg: SandboxConfig = serde_json::from_value(record.config.clone())
            .with_context(|| format!("reading the config of sandbox `{id}`"))?;
        let target = match (&record.job_id, cfg.backend) {
            (Some(job), super::config::BackendKind::Slurm) => {
                let job = slurm::Job {
                    id: job.clone(),
                    cluster: slurm::Cluster::of(&cfg)?,
                };
                if let Some(why) = job.why_ended_blocking() {
                    bail!("sandbox `{id}` is not running any more: {why}");
                }
                ssh::Transport::Slurm(job)
            }
            _ => ssh::Transport::Ssh(ssh::Target::of(&cfg)?),
        };
        let secrets = secret_values(&cfg);
        let redactor = Redactor::new(secrets.values().cloned());
        let conn = Conn::open(&target, &dir.join("logs/ssh.log"), redactor.clone()).await?;
        let started: Started = conn
            .call(Request::Attach {
                id: id.into(),
                secrets,
            })
            .await
            .with_context(|| format!("attaching to sandbox `{id}` on {}", target.shown()))?;
        Ok(Self::assemble(record, conn, started, redactor))
    }

    fn check_live(&self) -> Result<()> {
        if self.is_terminated() {
            if self.conn.lost.load(Ordering::SeqCst) {
                return Err(self.conn.lost_error(anyhow!("lost")));
            }
            bail!("sandbox {} has been terminated", self.info.id);
        }
        Ok(())
    }

    /// Forwards the remote socket `socket` to its place under `stage/` (once).
    async fn forward(&self, socket: &Path) -> Result<PathBuf> {
        let rel = socket
            .strip_prefix(&self.info.dir)
            .map_err(|_| anyhow!("{} is not in the sandbox's folder", socket.display()))?;
        let local = self.local_dir.join("stage").join(rel);
        {
            let mut done = self
                .forwarded
                .lock()
                .map_err(|_| anyhow!("forward table poisoned"))?;
            if !done.insert(socket.to_path_buf()) {
                return Ok(local);
            }
        }
        if let Some(parent) = local.parent() {
            paths::create_private_dir(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let _ = std::fs::remove_file(&local);
        let conn = self.conn.clone();
        let remote = socket.to_path_buf();
        let local2 = local.clone();
        self.conn
            .handle
            .spawn(async move {
                let listener = tokio::net::UnixListener::bind(&local2)
                    .with_context(|| format!("listening on {}", local2.display()))?;
                tokio::spawn(async move {
                    while let Ok((client, _)) = listener.accept().await {
                        let req = Request::Connect {
                            socket: remote.clone(),
                        };
                        tokio::spawn(conn.clone().pipe(req, client));
                    }
                });
                Ok::<_, anyhow::Error>(())
            })
            .await??;
        Ok(local)
    }
}

#[async_trait::async_trait]
impl Sandbox for RemoteSandbox {
    fn info(&self) -> SandboxInfo {
        self.info.clone()
    }

    async fn exec(
        &self,
        cmd: Command,
        opts: ExecOptions,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput> {
        self.check_live()?;
        if opts.host_cwd.is_some() {
            bail!(
                "not supported yet: a local folder as the working directory of a command in an ssh sandbox"
            );
        }
        let conn = self.conn.clone();
        let stop = cancel.child_token();
        let stop2 = stop.clone();
        let call = self.conn.handle.spawn(async move {
            let stream = conn.stream().await?;
            let (mut r, mut w) = protocol::pumped(stream);
            send(&mut w, &Request::Exec { cmd, opts }).await?;
            tokio::select! {
                out = reply::<_, ExecOutput>(&mut r) => out,
                _ = stop2.cancelled() => {
                    // Closing our side cancels the command on the host.
                    let _ = w.shutdown().await;
                    bail!("cancelled")
                }
            }
        });
        let out = call
            .await
            .map_err(|e| anyhow!("the call to `{}` failed: {e}", self.conn.host))?;
        drop(stop);
        out.map_err(|e| self.conn.lost_error(e))
    }

    fn spawn(
        &self,
        program: &str,
        args: &[String],
        opts: &ExecOptions,
        log_name: &str,
    ) -> Result<Spawned> {
        self.check_live()?;
        let (tx, exited) = tokio::sync::watch::channel(None);
        let (ptx, prx) = std::sync::mpsc::channel();
        let conn = self.conn.clone();
        let req = Request::Spawn {
            program: program.into(),
            args: args.to_vec(),
            opts: opts.clone(),
            log_name: log_name.into(),
        };
        self.conn.handle.spawn(async move {
            let started = async {
                let stream = conn.stream().await?;
                let (mut r, mut w) = protocol::pumped(stream);
                send(&mut w, &req).await?;
                let pgid: i32 = reply(&mut r).await?;
                Ok::<_, anyhow::Error>((pgid, r, w))
            }
            .await;
            match started {
                Ok((pgid, mut r, _w)) => {
                    let _ = ptx.send(Ok(pgid));
                    let status = match recv::<_, Exited>(&mut r).await {
                        Ok(Some(e)) => e.exited,
                        _ => format!("the connection to `{}` was lost", conn.host),
                    };
                    let _ = tx.send(Some(status));
                }
                Err(e) => {
                    let _ = ptx.send(Err(conn.lost_error(e)));
                }
            }
        });
        let pgid = prx
            .recv()
            .map_err(|_| anyhow!("the connection to `{}` was closed", self.conn.host))??;
        Ok(Spawned { pgid, exited })
    }

    fn kill_group(&self, pgid: i32) {
        if let Err(e) = self
            .conn
            .call_blocking::<serde_json::Value>(Request::Kill { pgid })
        {
            tracing::debug!("killing process group {pgid} on {}: {e:#}", self.conn.host);
        }
    }

    fn python(&self) -> String {
        self.python.clone()
    }

    fn write_file(&self, path: &str, contents: &[u8]) -> Result<()> {
        self.check_live()?;
        self.conn.call_unit(Request::WriteFile {
            path: path.into(),
            data: encode(contents),
        })
    }

    fn read_file(&self, path: &str) -> Result<Vec<u8>> {
        self.check_live()?;
        let data: String = self
            .conn
            .call_blocking(Request::ReadFile { path: path.into() })?;
        decode(&data)
    }

    fn ensure_dir(&self, path: &str) -> Result<()> {
        self.check_live()?;
        self.conn
            .call_unit(Request::EnsureDir { path: path.into() })
    }

    fn write_private(&self, rel: &str, contents: &[u8]) -> Result<()> {
        self.check_live()?;
        self.conn.call_unit(Request::WritePrivate {
            rel: rel.into(),
            data: encode(contents),
        })
    }

    fn read_private(&self, rel: &str) -> Result<Vec<u8>> {
        let data: String = self
            .conn
            .call_blocking(Request::ReadPrivate { rel: rel.into() })?;
        decode(&data)
    }

    fn upload(&self, local: &Path, dest: &Path) -> Result<()> {
        self.check_live()?;
        let mut entries = vec![];
        for e in std::fs::read_dir(local).with_context(|| format!("reading {}", local.display()))? {
            let e = e?;
            entries.push((e.path(), PathBuf::from(e.file_name())));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let conn = self.conn.clone();
        let dest = dest.to_path_buf();
        self.conn.handle.spawn(async move {
            let _ = tx.send(conn.upload(entries, dest).await);
        });
        rx.recv()
            .map_err(|_| anyhow!("the connection to `{}` was closed", self.conn.host))?
    }

    fn staging_dir(&self) -> Option<PathBuf> {
        Some(self.local_dir.join("stage"))
    }

    async fn reach_socket(&self, socket: &Path) -> Result<PathBuf> {
        self.forward(socket).await
    }

    async fn oom_kills(&self) -> u64 {
        self.conn.call::<u64>(Request::OomKills).await.unwrap_or(0)
    }

    async fn socket_listening(&self, socket: &Path) -> bool {
        self.conn
            .call::<bool>(Request::Listening {
                socket: socket.to_path_buf(),
            })
            .await
            .unwrap_or(false)
    }

    fn reach_port(&self, port: u16) -> Result<u16> {
        self.check_live()?;
        let mut reached = self
            .reached
            .lock()
            .map_err(|_| anyhow!("forward table poisoned"))?;
        if let Some(p) = reached.get(&port) {
            return Ok(*p);
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let conn = self.conn.clone();
        self.conn.handle.spawn(async move {
            let listener = match tokio::net::TcpListener::bind(("127.0.0.1", 0)).await {
                Ok(l) => l,
                Err(e) => {
                    let _ = tx.send(Err(anyhow!("listening on this machine's loopback: {e}")));
                    return;
                }
            };
            let _ = tx.send(listener.local_addr().map(|a| a.port()).map_err(Into::into));
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(conn.clone().pipe(Request::ConnectTcp { port }, client));
            }
        });
        let here = rx
            .recv()
            .map_err(|_| anyhow!("the connection to `{}` was closed", self.conn.host))??;
        reached.insert(port, here);
        Ok(here)
    }

    fn expose_port(&self, port: u16) -> Result<u16> {
        self.check_live()?;
        let mut exposed = self
            .exposed
            .lock()
            .map_err(|_| anyhow!("forward table poisoned"))?;
        if let Some(p) = exposed.get(&port) {
            return Ok(*p);
        }
        if let Ok(mut b) = self.conn.backs.lock() {
            b.insert(port);
        }
        let there: u16 = self.conn.call_blocking(Request::ListenBack { port })?;
        exposed.insert(port, there);
        Ok(there)
    }

    fn snapshot(&self, description: &str) -> Result<String> {
        self.check_live()?;
        self.conn.call_blocking(Request::Snapshot {
            description: description.into(),
        })
    }

    fn terminate(&self) -> Result<()> {
        if self.terminated.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        if !self.conn.lost.load(Ordering::SeqCst)
            && let Err(e) = self
                .conn
                .call_blocking::<serde_json::Value>(Request::Terminate)
        {
            tracing::warn!(
                "ending sandbox {} on {}: {e:#}",
                self.info.id,
                self.conn.host
            );
        }
        self.record.end(Status::Terminated, "terminated")?;
        if let ssh::Transport::Slurm(job) = &self.conn.transport {
            job.cancel_blocking();
        }
        tracing::info!(id = self.info.id, "sandbox terminated");
        Ok(())
    }

    fn is_terminated(&self) -> bool {
        if self.terminated.load(Ordering::SeqCst) || self.conn.lost.load(Ordering::SeqCst) {
            return true;
        }
        self.record.ended()
    }

    fn detach(&self) -> Result<()> {
        if let ssh::Transport::Modal(_) = &self.conn.transport {
            bail!(
                "not supported yet: detaching a modal sandbox (it ends with the seer that started it)"
            );
        }
        self.conn.call_unit(Request::Detach)?;
        self.record.detach()
    }

    fn is_detached(&self) -> bool {
        self.record.detached()
    }

    fn redact(&self, text: &str) -> String {
        self.redactor.redact(text)
    }

    fn redact_joined(&self, parts: &mut [String]) {
        self.redactor.redact_joined(parts)
    }
}
