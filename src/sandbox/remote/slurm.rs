//! The slurm backend: a sandbox in a Slurm job, reached like an ssh host.
//!
//! seer submits a job with `sbatch` whose script only holds the allocation ([`job_script`]),
//! waits while it is queued (a spinner shows the job id, state and reason from `squeue`;
//! Ctrl-C cancels the job), then runs the same launcher as the ssh backend with
//! `srun --jobid J --overlap --unbuffered`: that step's stdin/stdout is the byte stream to
//! `seer __sandbox-agent`, which hosts the local backend on the job's node with the GPUs
//! Slurm gave the job. Off the cluster (`login`), every Slurm command runs on the login node
//! through `ssh`.
//!
//! Lifetime: terminate, a failed start and Ctrl-C cancel the job (`scancel`). When seer dies
//! the step's stdin closes, the agent ends the sandbox and exits, and the job's script, which
//! watches the agent's pid, ends the job unless the sandbox was detached; it also ends a
//! sandbox whose agent was killed (`seer gc` on the node). A job ended by Slurm (time limit,
//! preemption, node failure) is named with its state and reason in the error.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio_util::sync::CancellationToken;

use super::ssh::{Target, sh_path};
use crate::sandbox::config::SandboxConfig;

/// How long the job's script waits for the first agent before it ends the job (seer died
/// while the job was queued).
const FIRST_AGENT_WAIT_SECS: u32 = 300;

/// The environment variables Slurm commands run here are given: Slurm passes the
/// submitter's environment into the job, which must not carry seer's API keys there, nor
/// an enclosing job's `SLURM_*` settings (`SLURM_CONF` names the cluster's config).
const PASSED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "SLURM_CONF",
];

/// Where the Slurm commands run and where seer lives on the cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The login node, when seer runs off the cluster.
    pub login: Option<Target>,
    /// seer's folder on the shared filesystem, as the cluster's shell reads it.
    pub shared_dir: String,
}

/// A submitted job.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub cluster: Cluster,
}

/// A word for `sh`, quoted.
fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=.,:/@+".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl Cluster {
    pub fn of(cfg: &SandboxConfig) -> Result<Self> {
        let shared_dir = cfg
            .shared_dir
            .clone()
            .unwrap_or_else(|| super::ssh::DEFAULT_REMOTE_DIR.into());
        let login = match &cfg.login {
            Some(l) => Some(Target::parse("login", l, cfg, Some(&shared_dir))?),
            None => None,
        };
        Ok(Self { login, shared_dir })
    }

    /// `program args`: here with [`PASSED_ENV`] only, or on the login node through ssh.
    pub fn command(&self, program: &str, args: &[String]) -> tokio::process::Command {
        match &self.login {
            Some(t) => {
                let line: Vec<String> = std::iter::once(program.to_string())
                    .chain(args.iter().map(|a| sh_quote(a)))
                    .collect();
                t.command(&line.join(" "))
            }
            None => {
                let mut c = tokio::process::Command::new(program);
                c.args(args).env_clear();
                for name in PASSED_ENV {
                    if let Some(v) = std::env::var_os(name) {
                        c.env(name, v);
                    }
                }
                c
            }
        }
    }

    /// Runs a Slurm command to its end: its stdout, or an error with its stderr.
    async fn run(&self, program: &str, args: &[String], stdin: Option<&str>) -> Result<String> {
        use tokio::io::AsyncWriteExt;
        let mut child = self
            .command(program, args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| match &self.login {
                Some(t) => format!("starting `ssh {}` to run `{program}`", t.shown()),
                None => format!(
                    "starting `{program}` (is this a Slurm cluster's node? else set `login`)"
                ),
            })?;
        if let (Some(text), Some(mut w)) = (stdin, child.stdin.take()) {
            w.write_all(text.as_bytes()).await?;
            w.shutdown().await?;
        }
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .map_err(|_| anyhow!("`{program}` gave no answer within 60 s"))??;
        if !out.status.success() {
            bail!(
                "`{program}` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    }

    /// Submits the job of sandbox `sandbox_id`.
    pub async fn submit(&self, cfg: &SandboxConfig, sandbox_id: &str) -> Result<Job> {
        let script = job_script(&self.shared_dir);
        let out = self
            .run("sbatch", &sbatch_args(cfg, sandbox_id), Some(&script))
            .await
            .context("submitting the sandbox's Slurm job")?;
        // `--parsable`: `id` or `id;cluster`.
        let id = out.trim().split(';').next().unwrap_or_default().to_string();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
            bail!("sbatch printed no job id: {}", out.trim());
        }
        Ok(Job {
            id,
            cluster: self.clone(),
        })
    }
}

/// The `sbatch` flags of a config (see README for the mapping).
pub fn sbatch_args(cfg: &SandboxConfig, sandbox_id: &str) -> Vec<String> {
    let mut a = vec![
        "--parsable".to_string(),
        format!("--job-name=seer-{sandbox_id}"),
        "--nodes=1".into(),
        "--ntasks=1".into(),
        "--chdir=/tmp".into(),
        "--output=/dev/null".into(),
    ];
    for (flag, v) in [
        ("partition", &cfg.partition),
        ("account", &cfg.account),
        ("qos", &cfg.qos),
        ("mem", &cfg.memory),
    ] {
        if let Some(v) = v {
            a.push(format!("--{flag}={v}"));
        }
    }
    if cfg.timeout > 0 {
        a.push(format!("--time={}", time_limit_minutes(cfg.timeout)));
    }
    if let Some(c) = cfg.cpus {
        a.push(format!("--cpus-per-task={c}"));
    }
    if let Some(g) = gres(cfg) {
        a.push(format!("--gres={g}"));
    }
    a.extend(cfg.slurm_options.iter().cloned());
    a
}

/// The job's time limit for a sandbox `timeout`: the timeout plus five minutes for
/// provisioning (the env, models), in whole minutes, so that the sandbox's own watchdog,
/// which counts from when it is provisioned, ends it first.
pub fn time_limit_minutes(timeout: u64) -> u64 {
    timeout.div_ceil(60) + 5
}

/// The `--gres` request: `gres` as given, else `gpu[:type]:count` from `gpu`/`gpu_count`
/// (`"any"` asks for no type; a type is `gpu_type_map[gpu]`, else `gpu` lowercased).
pub fn gres(cfg: &SandboxConfig) -> Option<String> {
    if let Some(g) = &cfg.gres {
        return Some(g.clone());
    }
    let gpu = cfg.gpu.as_ref()?;
    let n = cfg.gpu_count;
    Some(if gpu.eq_ignore_ascii_case("any") {
        format!("gpu:{n}")
    } else {
        let kind = cfg
            .gpu_type_map
            .get(gpu)
            .cloned()
            .unwrap_or_else(|| gpu.to_lowercase());
        format!("gpu:{kind}:{n}")
    })
}

/// The job's script: it holds the allocation while an agent of seer runs in it.
pub fn job_script(shared_dir: &str) -> String {
    format!(
        r#"#!/bin/sh
# A seer sandbox: holds this allocation while seer's agent runs in it (srun --overlap).
d={dir}; j="$d/jobs/$SLURM_JOB_ID"
mkdir -p "$j" || exit 1
# When Slurm started the job (seconds since the epoch): the scheduler's part of a start.
date +%s.%N > "$j/started"
exec >>"$j/job.log" 2>&1
n=0
while [ ! -s "$j/agent.pid" ]; do
  n=$((n+1))
  if [ "$n" -gt {wait} ]; then echo "no seer agent started within {wait} s; ending the job"; exit 1; fi
  sleep 1
done
while :; do
  sleep 1
  p=$(cat "$j/agent.pid" 2>/dev/null)
  if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then continue; fi
  # The agent is gone: end what it left running, and the job unless the sandbox is
  # detached (it then waits for a new agent, scancel or its time limit).
  b=$(cat "$j/binary" 2>/dev/null)
  [ -x "$b" ] && SEER_HOME="$j/state" "$b" gc
  grep -qs '"status": "running"' "$j"/state/sandboxes/*/sandbox.json || exit 0
  sleep 5
done
"#,
        dir = sh_path(shared_dir),
        wait = FIRST_AGENT_WAIT_SECS,
    )
}

/// A job's state and reason as `squeue` shows them (`None` once Slurm forgot the job).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    pub state: String,
    pub reason: String,
}

impl JobState {
    fn ended(&self) -> bool {
        !matches!(
            self.state.as_str(),
            "PENDING" | "RUNNING" | "CONFIGURING" | "SUSPENDED" | "REQUEUED" | "RESIZING"
        )
    }

    /// Why Slurm ended the job, in words.
    pub fn why(&self) -> String {
        let what = match (self.state.as_str(), self.reason.as_str()) {
            ("TIMEOUT", _) | (_, "TimeLimit") => "it reached its time limit",
            ("PREEMPTED", _) => "it was preempted",
            ("NODE_FAIL", _) | (_, "NodeDown") => "its node failed",
            ("OUT_OF_MEMORY", _) => "it ran out of memory",
            ("CANCELLED", _) => "it was cancelled",
            ("BOOT_FAIL", _) => "its node failed to boot",
            ("DEADLINE", _) => "it reached its deadline",
            _ => "it ended",
        };
        format!("{what} ({}, reason {})", self.state, self.reason)
    }
}

impl Job {
    pub fn shown(&self) -> String {
        match &self.cluster.login {
            Some(t) => format!("Slurm job {} (via {})", self.id, t.shown()),
            None => format!("Slurm job {}", self.id),
        }
    }

    /// `srun` attaching `launcher` to the job as a step whose stdin/stdout is the stream.
    pub fn srun(&self, launcher: &str) -> tokio::process::Command {
        let args = vec![
            format!("--jobid={}", self.id),
            "--overlap".into(),
            "--unbuffered".into(),
            "--nodes=1".into(),
            "--ntasks=1".into(),
            "--chdir=/tmp".into(),
            "--quiet".into(),
            "sh".into(),
            "-c".into(),
            launcher.into(),
        ];
        self.cluster.command("srun", &args)
    }

    pub fn start_failed(&self, why: &str) -> String {
        format!(
            "could not start seer in {}: {why}\n(the job's script logs to {}/jobs/{}/job.log on the cluster)",
            self.shown(),
            self.cluster.shared_dir,
            self.id
        )
    }

    /// The job's state, or `None` when Slurm no longer knows it.
    pub async fn state(&self) -> Result<Option<JobState>> {
        let args: Vec<String> = ["--noheader", "--states=all", "--format=%T|%r", "--jobs"]
            .iter()
            .map(|s| s.to_string())
            .chain([self.id.clone()])
            .collect();
        let out = match self.cluster.run("squeue", &args, None).await {
            Ok(o) => o,
            // squeue fails on a job id it has forgotten.
            Err(e) if format!("{e:#}").contains("Invalid job id") => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(out.lines().next().and_then(|l| {
            let (state, reason) = l.trim().split_once('|')?;
            Some(JobState {
                state: state.to_string(),
                reason: reason.to_string(),
            })
        }))
    }

    /// Waits for the job to run, showing its state; Ctrl-C (`cancel`) cancels the job.
    pub async fn wait_running(&self, cancel: &CancellationToken) -> Result<()> {
        let spinner = crate::progress::spinner(format!("{}: submitted", self.shown()));
        let started = std::time::Instant::now();
        let result = async {
            loop {
                match self.state().await? {
                    Some(s) if s.state == "RUNNING" => return Ok(()),
                    Some(s) if s.ended() => {
                        bail!(
                            "{} ended before seer could start in it: {}",
                            self.shown(),
                            s.why()
                        )
                    }
                    Some(s) => spinner.set_message(format!(
                        "{}: {} (reason: {})",
                        self.shown(),
                        s.state,
                        s.reason
                    )),
                    None => bail!("Slurm no longer knows {}", self.shown()),
                }
                // Often at first (an idle cluster starts a job at once), then every 2 s.
                let pause = if started.elapsed() < Duration::from_secs(10) {
                    Duration::from_millis(100)
                } else {
                    Duration::from_secs(2)
                };
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = cancel.cancelled() => bail!("cancelled"),
                }
            }
        }
        .await;
        spinner.finish_and_clear();
        result
    }

    /// `scancel` (the job may have ended already).
    pub async fn cancel(&self) {
        match self
            .cluster
            .run("scancel", std::slice::from_ref(&self.id), None)
            .await
        {
            Ok(_) => tracing::info!(job = self.id, "cancelled the Slurm job"),
            Err(e) => tracing::warn!("cancelling {}: {e:#}", self.shown()),
        }
    }

    /// [`Job::cancel`] from synchronous code.
    pub fn cancel_blocking(&self) {
        let job = self.clone();
        if block_on(async move { job.cancel().await }).is_none() {
            tracing::warn!("could not cancel {}: no runtime", self.shown());
        }
    }

    /// Why the job is gone, when Slurm ended it (`None`: it still runs, or Slurm forgot it).
    pub fn why_ended_blocking(&self) -> Option<String> {
        let job = self.clone();
        let state = block_on(async move { job.state().await })?.ok()??;
        state
            .ended()
            .then(|| format!("{} was ended by Slurm: {}", self.shown(), state.why()))
    }
}

/// Runs `f` to its end from synchronous code, inside a runtime or not (on a thread of its
/// own); `None` if no runtime could be made.
fn block_on<T: Send + 'static>(
    f: impl std::future::Future<Output = T> + Send + 'static,
) -> Option<T> {
    let run = move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| rt.block_on(f))
    };
    std::thread::spawn(run).join().ok()?.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(v: serde_json::Value) -> SandboxConfig {
        let c: SandboxConfig = serde_json::from_value(v).unwrap();
        c.validate().unwrap();
        c
    }

    #[test]
    fn configs_map_to_sbatch_flags() {
        let c = cfg(serde_json::json!({
            "backend": "slurm", "partition": "gpu", "account": "lab", "qos": "high",
            "gpu": "A100", "gpu_count": 2, "cpus": 8, "memory": "64G", "timeout": 3600,
            "slurm_options": ["--constraint=a100"]
        }));
        assert_eq!(
            sbatch_args(&c, "sb-1"),
            [
                "--parsable",
                "--job-name=seer-sb-1",
                "--nodes=1",
                "--ntasks=1",
                "--chdir=/tmp",
                "--output=/dev/null",
                "--partition=gpu",
                "--account=lab",
                "--qos=high",
                "--mem=64G",
                "--time=65",
                "--cpus-per-task=8",
                "--gres=gpu:a100:2",
                "--constraint=a100",
            ]
        );
        let c = cfg(serde_json::json!({"backend": "slurm", "timeout": 0}));
        assert_eq!(sbatch_args(&c, "x").len(), 6, "no time limit, no GPUs");
    }

    #[test]
    fn gpus_map_to_a_gres_request() {
        let g = |v| gres(&cfg(v));
        assert_eq!(g(serde_json::json!({"backend": "slurm"})), None);
        assert_eq!(
            g(serde_json::json!({"backend": "slurm", "gpu": "any"})).as_deref(),
            Some("gpu:1")
        );
        assert_eq!(
            g(serde_json::json!({"backend": "slurm", "gpu": "H100", "gpu_count": 4, "gpu_type_map": {"H100": "h100_sxm"}})).as_deref(),
            Some("gpu:h100_sxm:4")
        );
        assert_eq!(
            g(serde_json::json!({"backend": "slurm", "gpu": "H100", "gres": "gpu:hopper:1,shard:2"})).as_deref(),
            Some("gpu:hopper:1,shard:2")
        );
    }

    #[test]
    fn time_limits_leave_room_for_provisioning() {
        assert_eq!(time_limit_minutes(60), 6);
        assert_eq!(time_limit_minutes(61), 7);
        assert_eq!(time_limit_minutes(7200), 125);
    }

    #[test]
    fn login_commands_are_quoted_for_the_remote_shell() {
        assert_eq!(sh_quote("--time=5"), "--time=5");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
        assert_eq!(sh_quote(""), "''");
    }

    #[test]
    fn slurm_reasons_in_words() {
        let s = |state: &str, reason: &str| JobState {
            state: state.into(),
            reason: reason.into(),
        };
        assert_eq!(
            s("TIMEOUT", "TimeLimit").why(),
            "it reached its time limit (TIMEOUT, reason TimeLimit)"
        );
        assert_eq!(
            s("PREEMPTED", "None").why(),
            "it was preempted (PREEMPTED, reason None)"
        );
        assert!(!s("PENDING", "Resources").ended());
        assert!(s("NODE_FAIL", "NodeDown").ended());
    }
}
