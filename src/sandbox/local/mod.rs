//! The local backend: a sandbox is a directory under the state dir (workspace, logs,
//! process records) plus a cached Python env; its commands run on this machine, each in
//! its own process group, with a clean environment that holds only what the config gives.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::bounds::{self, Applied, Bounds, Enter};
use super::config::SandboxConfig;
use super::fsutil::{self, resolve_inside};
use super::models::{self, ModelHandle};
use super::pyenv::{self, PythonEnv};
use super::registry::{LiveRecord, SandboxRecord, Status, now};
use super::repos::{self, Install, RepoHandle};
use super::sync::{copy_tree, copy_workspace};
use super::{Command, ExecOptions, ExecOutput, GpuRequest, Sandbox, SandboxInfo};
use crate::paths;
use crate::process::{self, ProcDir};
use crate::secrets::Redactor;

mod host;
mod isolate;
mod proc_env;
mod support;

use host::{check_gpu, check_system_packages};
use isolate::{Jail, Layout};
use proc_env::build_env;
use support::{collect, plan_copies, redacted_log, site_packages};
pub(crate) use support::{masked_config, seer_exe};

/// What `start` found out about this machine before provisioning.
struct Checked {
    /// `CUDA_VISIBLE_DEVICES` for a `gpu` sandbox.
    cuda: Option<String>,
    /// bubblewrap, for an isolated sandbox.
    bwrap: Option<isolate::Bwrap>,
    /// The resource bounds of its config.
    bounds: Bounds,
}

pub use super::StartRequest;

pub struct LocalSandbox {
    id: String,
    dir: PathBuf,
    workspace: PathBuf,
    procs: ProcDir,
    env: PythonEnv,
    proc_env: BTreeMap<String, String>,
    redactor: Redactor,
    models: Vec<ModelHandle>,
    repos: Vec<RepoHandle>,
    gpu: Option<GpuRequest>,
    /// The bubblewrap mounts its processes run under (`None`: not isolated).
    jail: Option<Jail>,
    /// How its resource bounds are applied (its cgroups), and what each new process does
    /// before it starts (a session of its own, the cgroups, rlimits).
    applied: Applied,
    enter: Enter,
    record: LiveRecord,
    terminated: AtomicBool,
}

pub(crate) fn new_id(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

impl LocalSandbox {
    /// Provisions a sandbox. On failure after its directory exists, whatever it started is
    /// ended and the directory (with its logs) is kept.
    pub async fn start(req: StartRequest, cancel: &CancellationToken) -> Result<Arc<Self>> {
        let cfg = &req.config;
        cfg.validate().map_err(|e| anyhow!(e))?;
        let cuda = check_gpu(cfg)?;
        let bwrap = isolate::bwrap_for(cfg)?;
        let bounds = Bounds::of(cfg)?;
        if !cfg.network && bwrap.is_none() {
            bail!("network: false needs isolation: set `isolation: \"bwrap\"` (bubblewrap)");
        }
        check_system_packages(&cfg.system_packages)?;
        let snapshot_dir = match &req.snapshot {
            Some(id) => {
                let d = paths::snapshots_dir().join(id);
                if !d.join("workspace").is_dir() {
                    bail!(
                        "snapshot `{id}` not found in {}",
                        paths::snapshots_dir().display()
                    );
                }
                Some(d)
            }
            None => None,
        };

        let id = match &req.id {
            Some(id) => {
                super::check_id(id)?;
                id.clone()
            }
            None => new_id("sb"),
        };
        let dir = paths::sandboxes_dir().join(&id);
        let workspace = dir.join("workspace");
        let files = plan_copies(
            "local_files",
            &cfg.local_files,
            &req.base_dir,
            &workspace,
            false,
        )?;
        let dirs = plan_copies(
            "local_dirs",
            &cfg.local_dirs,
            &req.base_dir,
            &workspace,
            true,
        )?;
        paths::create_state_subdir(&dir)?;
        for d in ["workspace", "logs", "procs", "tmp", "models", "home"] {
            std::fs::create_dir_all(dir.join(d))
                .with_context(|| format!("creating {}", dir.join(d).display()))?;
        }
        let me = std::process::id();
        let mut record = SandboxRecord {
            id: id.clone(),
            backend: "local".into(),
            host: None,
            job_id: None,
            dir: dir.clone(),
            workspace: workspace.clone(),
            status: Status::Starting,
            created_at: now(),
            ended_at: None,
            end_reason: None,
            owner_pid: Some(me),
            owner_start: process::start_time(me),
            deadline: None,
            watchdog_pid: None,
            script: req.script.clone(),
            config: masked_config(cfg)?,
            env_path: None,
            models: vec![],
            repos: vec![],
        };
        record.save()?;
        tracing::info!(id, dir = %dir.display(), "starting local sandbox");

        let result = Self::provision(
            &req,
            record.clone(),
            Checked {
                cuda,
                bwrap,
                bounds,
            },
            files,
            dirs,
            snapshot_dir,
            cancel,
        )
        .await;
        if let Err(e) = &result {
            let reason = format!("start failed: {e:#}");
            if let Err(e2) = record.end(Status::Failed, &reason) {
                tracing::warn!("could not record failed start of {id}: {e2:#}");
            }
        }
        result
    }

    async fn provision(
        req: &StartRequest,
        mut record: SandboxRecord,
        checked: Checked,
        files: Vec<(PathBuf, PathBuf)>,
        dirs: Vec<(PathBuf, PathBuf)>,
        snapshot_dir: Option<PathBuf>,
        cancel: &CancellationToken,
    ) -> Result<Arc<Self>> {
        let cfg = &req.config;
        let Checked {
            cuda,
            bwrap,
            bounds,
        } = checked;
        let workspace = record.workspace.clone();
        let mut snapshot_repos = vec![];
        if let Some(snap) = &snapshot_dir {
            copy_workspace(&snap.join("workspace"), &workspace)
                .context("restoring the snapshot")?;
            if let Ok(bytes) = std::fs::read(snap.join("meta.json")) {
                let meta: serde_json::Value = serde_json::from_slice(&bytes)?;
                if let Some(r) = meta.get("repos") {
                    snapshot_repos =
                        serde_json::from_value::<Vec<RepoHandle>>(r.clone()).unwrap_or_default();
                }
            }
        }
        let models = models::resolve_models(
            &cfg.models,
            &req.base_dir,
            &record.dir.join("models"),
            cancel,
        )
        .await?;
        let repos = if snapshot_dir.is_some() {
            snapshot_repos
        } else {
            repos::clone_repos(&cfg.repos, &req.base_dir, &workspace, cancel).await?
        };
        let env = pyenv::ensure_env(&cfg.python_version, &cfg.env_packages(), cancel).await?;
        record.env_path = Some(env.path.clone());
        record.models = models.clone();
        record.repos = repos.clone();
        record.save()?;

        for (src, to) in &files {
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)?;
            }
            // Regular files only, holes kept (see `sync`).
            super::sync::copy_if_changed(src, to)
                .with_context(|| format!("copying {} into the sandbox", src.display()))?;
        }
        for (src, to) in &dirs {
            copy_tree(src, to)
                .with_context(|| format!("copying {} into the sandbox", src.display()))?;
        }

        let jail = bwrap.map(|b| {
            Jail::plan(
                b,
                cfg,
                &Layout {
                    dir: &record.dir,
                    workspace: &workspace,
                    env_path: &env.path,
                    models: &models,
                    script_dir: Some(&req.base_dir),
                },
            )
        });
        let home = jail.as_ref().map(|_| isolate::home_dir(&record.dir));
        let (proc_env, redactor) = build_env(
            cfg,
            &record,
            &env,
            cuda.as_deref(),
            home.as_deref(),
            req.secrets.as_ref().map(|s| &s.0),
            true,
        );
        let applied = bounds::create(&record.dir, &record.id, &bounds);
        let enter = Enter::new(&applied, &bounds);
        let sb = Arc::new(Self {
            id: record.id.clone(),
            dir: record.dir.clone(),
            workspace: workspace.clone(),
            procs: record.procs(),
            env,
            proc_env,
            redactor,
            models,
            repos,
            gpu: GpuRequest::of(cfg),
            jail,
            applied,
            enter,
            record: LiveRecord::new(record),
            terminated: AtomicBool::new(false),
        });
        sb.install_repos(cancel).await?;
        if cfg.timeout > 0 {
            sb.spawn_watchdog(cfg.timeout)?;
        }
        sb.update_record(|r| r.status = Status::Running)?;
        Ok(sb)
    }

    /// Reconnects to a live sandbox by id (`Sandbox::from_id`). The caller does not own it:
    /// it is not ended when the caller's run ends.
    pub fn attach(id: &str) -> Result<Arc<Self>> {
        Self::attach_with(id, None)
    }

    /// [`LocalSandbox::attach`] with the values of its `secrets` given (else they are read
    /// from the environment).
    pub fn attach_with(id: &str, secrets: Option<&BTreeMap<String, String>>) -> Result<Arc<Self>> {
        let dir = paths::sandboxes_dir().join(id);
        if !SandboxRecord::path(&dir).exists() {
            bail!(
                "no sandbox `{id}` in {} (see `seer ps`)",
                paths::sandboxes_dir().display()
            );
        }
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
        let env_path = record
            .env_path
            .clone()
            .ok_or_else(|| anyhow!("sandbox `{id}` has no Python env yet"))?;
        let bytes = std::fs::read(env_path.join(".seer-env.json"))
            .with_context(|| format!("reading the env of sandbox `{id}`"))?;
        let mut env: PythonEnv = serde_json::from_slice(&bytes)?;
        env.path = env_path;
        env.cache_hit = true;
        let cuda = check_gpu(&cfg).ok().flatten();
        let bounds = Bounds::of(&cfg)?;
        let applied = bounds::create(&record.dir, &record.id, &bounds);
        let enter = Enter::new(&applied, &bounds);
        let jail = isolate::bwrap_for(&cfg)?.map(|b| {
            Jail::plan(
                b,
                &cfg,
                &Layout {
                    dir: &record.dir,
                    workspace: &record.workspace,
                    env_path: &env.path,
                    models: &record.models,
                    script_dir: record
                        .script
                        .as_deref()
                        .and_then(|p| Path::new(p).parent())
                        .filter(|p| p.is_absolute()),
                },
            )
        });
        let home = jail.as_ref().map(|_| isolate::home_dir(&record.dir));
        if let Some(h) = &home {
            std::fs::create_dir_all(h).with_context(|| format!("creating {}", h.display()))?;
        }
        let (proc_env, redactor) = build_env(
            &cfg,
            &record,
            &env,
            cuda.as_deref(),
            home.as_deref(),
            secrets,
            false,
        );
        Ok(Arc::new(Self {
            id: record.id.clone(),
            dir: record.dir.clone(),
            workspace: record.workspace.clone(),
            procs: record.procs(),
            env,
            proc_env,
            redactor,
            models: record.models.clone(),
            repos: record.repos.clone(),
            gpu: GpuRequest::of(&cfg),
            jail,
            applied,
            enter,
            record: LiveRecord::new(record),
            terminated: AtomicBool::new(false),
        }))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn update_record(&self, f: impl FnOnce(&mut SandboxRecord)) -> Result<()> {
        self.record.update(f)
    }

    fn private_venv(&self) -> PathBuf {
        self.dir.join("venv")
    }

    /// Runs the `install` step of each repo in a private venv layered over the cached env
    /// (the cached env is shared and never modified).
    async fn install_repos(&self, cancel: &CancellationToken) -> Result<()> {
        let todo: Vec<&RepoHandle> = self
            .repos
            .iter()
            .filter(|r| !matches!(r.install, Install::Flag(false)))
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        let uv = pyenv::find_uv(cancel).await?;
        let venv = self.private_venv();
        if !venv.exists() {
            let venv_s = venv.to_string_lossy().to_string();
            let py = self.env.python().to_string_lossy().to_string();
            pyenv::run(
                &uv,
                &["venv", "--quiet", "--seed", "--python", &py, &venv_s],
                "uv venv",
                cancel,
            )
            .await?;
            let base_site = site_packages(&self.env.path)?;
            let own_site = site_packages(&venv)?;
            std::fs::write(
                own_site.join("_seer_base_env.pth"),
                format!("{}\n", base_site.display()),
            )?;
        }
        for (i, repo) in todo.into_iter().enumerate() {
            let (cmd, shown) = match &repo.install {
                Install::Command(c) => (Command::Shell(c.clone()), c.clone()),
                _ => {
                    let c = format!(
                        "'{}' pip install --quiet --python '{}' -e .",
                        uv.display(),
                        venv.join("bin/python").display()
                    );
                    (Command::Shell(c), "pip install -e .".to_string())
                }
            };
            let opts = ExecOptions {
                host_cwd: None,
                cwd: Some(repo.local_path.clone()),
                // The host's certificates and the config's `provision_env`.
                env: super::provision::command_env().into_iter().collect(),
                ..Default::default()
            };
            // Provisioning from the config, not agent code: it writes the private venv
            // and uses uv's cache, so it runs outside the jail.
            let out = self.spawn_and_wait(&cmd, &opts, false, cancel).await?;
            if out.exit_code != 0 {
                bail!(
                    "repos[{i}] ({}): install `{shown}` failed with exit code {}:\n{}{}",
                    repo.url,
                    out.exit_code,
                    out.stdout,
                    out.stderr
                );
            }
        }
        Ok(())
    }

    /// Starts `seer __watchdog` in its own process group: it ends the sandbox at its
    /// deadline even if this process has died.
    fn spawn_watchdog(&self, timeout: u64) -> Result<()> {
        use std::os::unix::process::CommandExt;
        let deadline = now() + timeout as f64;
        self.update_record(|r| r.deadline = Some(deadline))?;
        let exe = seer_exe()?;
        let log = std::fs::File::create(self.dir.join("logs/watchdog.log"))?;
        let mut child = std::process::Command::new(exe)
            .arg("__watchdog")
            .arg(&self.dir)
            .env_clear()
            .envs(proc_env::watchdog_env())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("starting the sandbox watchdog")?;
        let pid = child.id();
        // Reap it when it exits, so it does not linger as a zombie of ours.
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        self.update_record(|r| r.watchdog_pid = Some(pid))
    }

    fn log_exec(&self, label: &str, code: i32, took: Duration) {
        let line = format!(
            "{:.3} exit={code} took={:.3}s {}\n",
            now(),
            took.as_secs_f64(),
            self.redactor.redact(label)
        );
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("logs/exec.log"))
        {
            let _ = f.write_all(line.as_bytes());
        }
    }

    /// Runs `cmd` to its end; `isolated` runs it in the jail (when the sandbox has one).
    async fn spawn_and_wait(
        &self,
        cmd: &Command,
        opts: &ExecOptions,
        isolated: bool,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput> {
        if self.is_terminated() {
            bail!("sandbox {} has been terminated", self.id);
        }
        let cwd = match (&opts.host_cwd, &opts.cwd) {
            (Some(h), _) => h.clone(),
            (None, Some(c)) => self.work_dir(c)?,
            (None, None) => self.workspace.clone(),
        };
        if !cwd.is_dir() {
            bail!(
                "working directory `{}` does not exist in the sandbox (create it with ensure_dir)",
                opts.cwd.as_deref().unwrap_or(".")
            );
        }
        let (program, args, stdin, label): (PathBuf, Vec<String>, Option<String>, String) =
            match cmd {
                Command::Shell(c) => ("bash".into(), vec!["-c".into(), c.clone()], None, c.clone()),
                Command::Python(code) => (
                    self.env_python(),
                    vec!["-".into()],
                    Some(code.clone()),
                    format!("python: {}", code.lines().next().unwrap_or("")),
                ),
            };
        let label: String = label.chars().take(200).collect();
        let started = Instant::now();
        let (exe, argv) = self.command_line(&program, &args, &cwd, opts, isolated);
        let ooms_before = bounds::oom_kills(&self.applied);
        let mut command = tokio::process::Command::new(&exe);
        command
            .args(&argv)
            .current_dir(&cwd)
            .env_clear()
            .envs(&self.proc_env)
            .envs(&opts.env)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        self.enter_on_start(&mut command);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let pgid = child.id().map(|p| p as i32).unwrap_or(0);
        self.procs.add(pgid, &self.redactor.redact(&label))?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            tokio::spawn(async move {
                let _ = pipe.write_all(input.as_bytes()).await;
            });
        }
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = [
            child.stdout.take().map(|p| collect(p, stdout.clone())),
            child.stderr.take().map(|p| collect(p, stderr.clone())),
        ];
        enum End {
            Exited(std::process::ExitStatus),
            TimedOut(Duration),
            Cancelled,
        }
        let timeout = opts
            .timeout
            .unwrap_or(Duration::from_secs(60 * 60 * 24 * 365));
        let end = tokio::select! {
            s = child.wait() => End::Exited(s.context("waiting for the command")?),
            _ = tokio::time::sleep(timeout) => End::TimedOut(timeout),
            _ = cancel.cancelled() => End::Cancelled,
        };
        if !matches!(end, End::Exited(_)) {
            tokio::task::spawn_blocking(move || {
                process::kill_groups(&[pgid], Duration::from_millis(500))
            })
            .await?;
            let _ = child.wait().await;
        }
        // A background process started by the command may hold the pipes open: take what
        // has arrived and move on.
        for r in readers.into_iter().flatten() {
            let _ = tokio::time::timeout(Duration::from_millis(200), r).await;
        }
        if !process::group_alive(pgid) {
            self.procs.remove(pgid);
        }
        let text = |b: &Arc<Mutex<Vec<u8>>>| {
            b.lock()
                .map(|v| String::from_utf8_lossy(&v).to_string())
                .unwrap_or_default()
        };
        let took = started.elapsed();
        match end {
            End::Exited(status) => {
                use std::os::unix::process::ExitStatusExt;
                let code = status
                    .code()
                    .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
                self.log_exec(&label, code, took);
                let mut stderr = text(&stderr);
                if bounds::oom_kills(&self.applied) > ooms_before {
                    stderr.push_str(&self.oom_note());
                }
                if code != 0
                    && isolated
                    && let Some(hint) = self.jail.as_ref().and_then(|j| j.hint(&stderr))
                {
                    stderr.push_str(&hint);
                }
                Ok(ExecOutput {
                    stdout: text(&stdout),
                    stderr,
                    exit_code: code,
                })
            }
            End::TimedOut(t) => {
                self.log_exec(&label, -1, took);
                bail!(
                    "command timed out after {}s and was killed: {}\n--- output so far ---\n{}{}",
                    t.as_secs_f64(),
                    self.redactor.redact(&label),
                    self.redactor.redact(&text(&stdout)),
                    self.redactor.redact(&text(&stderr))
                )
            }
            End::Cancelled => {
                self.log_exec(&label, -2, took);
                bail!("cancelled")
            }
        }
    }

    /// The program and arguments that run `program args` in `cwd`: through bubblewrap
    /// when the sandbox is isolated and `isolated` is asked (a local session's host folder
    /// is bound writable too), else as they are.
    fn command_line(
        &self,
        program: &Path,
        args: &[String],
        cwd: &Path,
        opts: &ExecOptions,
        isolated: bool,
    ) -> (PathBuf, Vec<std::ffi::OsString>) {
        match (&self.jail, isolated) {
            (Some(jail), true) => jail.wrap(program, args, cwd, opts.host_cwd.as_deref()),
            _ => (
                program.to_path_buf(),
                args.iter().map(std::ffi::OsString::from).collect(),
            ),
        }
    }

    /// The working directory `cwd` (workspace-relative) of a command, never reached
    /// through a link out of the workspace; a missing one is left for the caller to report.
    fn work_dir(&self, cwd: &str) -> Result<PathBuf> {
        let p = resolve_inside(&self.workspace, cwd)?;
        if p.is_dir() {
            fsutil::dir_beneath(&self.workspace, cwd)
        } else {
            Ok(p)
        }
    }

    /// Makes `command` start in a session of its own (its process group is the one seer
    /// ends; no controlling terminal), in the sandbox's cgroups and under its rlimits.
    fn enter_on_start(&self, command: &mut tokio::process::Command) {
        let enter = self.enter.clone();
        // SAFETY: `Enter::apply` makes only async-signal-safe system calls (setsid, open,
        // write, close, setrlimit) on data prepared before the fork, and allocates nothing.
        unsafe {
            command.pre_exec(move || enter.apply());
        }
    }

    /// The line added to what a process killed by the sandbox's memory bound printed.
    fn oom_note(&self) -> String {
        format!(
            "\nseer: a process of this sandbox was killed by its memory bound (`memory`: {}); raise `memory` in the sandbox config or use less\n",
            self.record.config()["memory"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| "the default, 80% of the host's memory".into())
        )
    }

    fn env_python(&self) -> PathBuf {
        let own = self.private_venv().join("bin/python");
        if own.exists() { own } else { self.env.python() }
    }
}

#[async_trait::async_trait]
impl Sandbox for LocalSandbox {
    fn info(&self) -> SandboxInfo {
        SandboxInfo {
            id: self.id.clone(),
            backend: "local".into(),
            host: None,
            workspace: self.workspace.clone(),
            dir: self.dir.clone(),
            models: self.models.clone(),
            repos: self.repos.clone(),
            gpu: self.gpu.clone(),
            network: self.jail.as_ref().is_none_or(|j| j.network),
            env: Some(self.env.clone()),
            config: self.record.config(),
        }
    }

    async fn exec(
        &self,
        cmd: Command,
        opts: ExecOptions,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput> {
        self.spawn_and_wait(&cmd, &opts, true, cancel).await
    }

    fn spawn(
        &self,
        program: &str,
        args: &[String],
        opts: &ExecOptions,
        log_name: &str,
    ) -> Result<super::Spawned> {
        if self.is_terminated() {
            bail!("sandbox {} has been terminated", self.id);
        }
        let cwd = match &opts.cwd {
            Some(c) => self.work_dir(c)?,
            None => self.workspace.clone(),
        };
        let log_path = self.dir.join("logs").join(format!("{log_name}.log"));
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let (exe, argv) = self.command_line(Path::new(program), args, &cwd, opts, true);
        let mut command = tokio::process::Command::new(&exe);
        command
            .args(&argv)
            .current_dir(&cwd)
            .env_clear()
            .envs(&self.proc_env)
            .envs(&opts.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        self.enter_on_start(&mut command);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {program}"))?;
        // What it (or a subprocess of a cell) prints goes to its log through the redactor.
        let log = Arc::new(Mutex::new(log));
        if let Some(out) = child.stdout.take() {
            tokio::spawn(redacted_log(out, log.clone(), self.redactor.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(redacted_log(err, log, self.redactor.clone()));
        }
        let pgid = child
            .id()
            .map(|p| p as i32)
            .ok_or_else(|| anyhow!("{program} exited at once"))?;
        self.procs.add(pgid, log_name)?;
        let (tx, exited) = tokio::sync::watch::channel(None);
        tokio::spawn(async move {
            let status = child
                .wait()
                .await
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string());
            let _ = tx.send(Some(status));
        });
        Ok(super::Spawned { pgid, exited })
    }

    fn kill_group(&self, pgid: i32) {
        process::kill_groups(&[pgid], Duration::from_millis(500));
        self.procs.remove(pgid);
    }

    fn python(&self) -> String {
        self.env_python().to_string_lossy().to_string()
    }

    fn write_file(&self, path: &str, contents: &[u8]) -> Result<()> {
        fsutil::write_beneath(&self.workspace, path, contents)
    }

    fn read_file(&self, path: &str) -> Result<Vec<u8>> {
        fsutil::read_beneath(&self.workspace, path)
    }

    fn ensure_dir(&self, path: &str) -> Result<()> {
        fsutil::mkdir_beneath(&self.workspace, path)
    }

    fn write_private(&self, rel: &str, contents: &[u8]) -> Result<()> {
        let path = resolve_inside(&self.dir, rel)?;
        if let Some(parent) = path.parent() {
            paths::create_private_dir(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        paths::write_private(&path, contents).with_context(|| format!("writing {}", path.display()))
    }

    fn read_private(&self, rel: &str) -> Result<Vec<u8>> {
        let path = resolve_inside(&self.dir, rel)?;
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
    }

    fn upload(&self, local: &Path, dest: &Path) -> Result<()> {
        if !dest.starts_with(&self.dir) {
            bail!(
                "{} is not inside the sandbox's folder {}",
                dest.display(),
                self.dir.display()
            );
        }
        if local == dest {
            return Ok(());
        }
        copy_tree(local, dest)
            .with_context(|| format!("copying {} to {}", local.display(), dest.display()))
    }

    async fn reach_socket(&self, socket: &Path) -> Result<PathBuf> {
        Ok(socket.to_path_buf())
    }

    async fn socket_listening(&self, socket: &Path) -> bool {
        tokio::net::UnixStream::connect(socket).await.is_ok()
    }

    fn snapshot(&self, description: &str) -> Result<String> {
        let id = new_id("snap");
        let dir = paths::snapshots_dir().join(&id);
        paths::create_state_subdir(&dir)?;
        copy_workspace(&self.workspace, &dir.join("workspace")).context("saving the snapshot")?;
        let config = self.record.config();
        // Repo paths are stored relative to the workspace; a restore re-roots them.
        let repos: Vec<RepoHandle> = self
            .repos
            .iter()
            .map(|r| {
                let mut r = r.clone();
                if let Ok(rel) = Path::new(&r.local_path).strip_prefix(&self.workspace) {
                    r.local_path = rel.to_string_lossy().to_string();
                }
                r
            })
            .collect();
        let meta = serde_json::json!({
            "id": id, "description": description, "sandbox_id": self.id,
            "created_at": now(), "config": config, "repos": repos,
        });
        std::fs::write(dir.join("meta.json"), serde_json::to_vec_pretty(&meta)?)?;
        tracing::info!(id, sandbox = self.id, "snapshot saved");
        Ok(id)
    }

    fn terminate(&self) -> Result<()> {
        if self.terminated.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.record.end(Status::Terminated, "terminated")?;
        tracing::info!(id = self.id, "sandbox terminated");
        Ok(())
    }

    fn is_terminated(&self) -> bool {
        if self.terminated.load(Ordering::SeqCst) {
            return true;
        }
        // The watchdog or `seer gc` may have ended it from outside.
        self.record.ended()
    }

    fn detach(&self) -> Result<()> {
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

    async fn oom_kills(&self) -> u64 {
        bounds::oom_kills(&self.applied)
    }
}
