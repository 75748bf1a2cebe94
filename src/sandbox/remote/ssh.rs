//! Reaching the sandbox agent on another machine through the system `ssh` client, so the
//! user's `~/.ssh/config`, keys, agent, ProxyJump and ControlMaster keep working.
//!
//! One `ssh` process per sandbox runs a short POSIX-sh launcher on the host: it checks for
//! python3, asks for the seer binary when the host has no copy of this exact build (it is
//! then streamed over the same connection into `<remote_dir>/bin/`), and `exec`s
//! `seer __sandbox-agent` with the remote state and cache folders under `remote_dir`. The
//! agent prints one ready line, and from then on the stream carries yamux frames only.
//!
//! The launcher is the same for the slurm backend: only the process that runs it differs
//! ([`Transport`]): `srun` into the sandbox's job (see [`super::slurm`]) instead of `ssh`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

use super::protocol::{MISSING, NEED_BINARY, READY};
use crate::sandbox::config::SandboxConfig;
use crate::secrets::Redactor;

/// Where seer lives on the host when `remote_dir` is not given.
pub const DEFAULT_REMOTE_DIR: &str = "~/.cache/seer-remote";
/// How long connecting and the handshake may take (a first binary upload aside).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// An ssh destination and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// What `ssh` is given as the destination (`user@host` or an alias).
    pub destination: String,
    pub port: Option<u16>,
    pub options: Vec<String>,
    /// seer's folder on the host, as the host's shell reads it (`~/` allowed).
    pub remote_dir: String,
}

impl Target {
    pub fn of(cfg: &SandboxConfig) -> Result<Self> {
        let host = cfg
            .host
            .clone()
            .ok_or_else(|| anyhow!("Sandbox config: field `host` is missing"))?;
        Self::parse("host", &host, cfg, cfg.remote_dir.as_deref())
    }

    /// `host` (the config's field `field`) with the config's `ssh_options`.
    pub fn parse(
        field: &str,
        host: &str,
        cfg: &SandboxConfig,
        remote_dir: Option<&str>,
    ) -> Result<Self> {
        let (destination, port) = match host.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && !h.contains(':') && !p.is_empty() => {
                let port: u16 = p.parse().map_err(|_| {
                    anyhow!("Sandbox config: field `{field}`: `{p}` in `{host}` is not a port")
                })?;
                (h.to_string(), Some(port))
            }
            _ => (host.to_string(), None),
        };
        Ok(Self {
            destination,
            port,
            options: cfg.ssh_options.clone(),
            remote_dir: remote_dir.unwrap_or(DEFAULT_REMOTE_DIR).to_string(),
        })
    }

    /// How the host is named in messages and `seer ps`.
    pub fn shown(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.destination),
            None => self.destination.clone(),
        }
    }

    /// `ssh … destination -- command`, with no tty (a tty would corrupt the byte stream)
    /// and keep-alives, so a dead network is noticed in about 15 s.
    pub(super) fn command(&self, remote_command: &str) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("ssh");
        c.args(["-T", "-o", "BatchMode=yes", "-o", "ServerAliveInterval=5"])
            .args(["-o", "ServerAliveCountMax=3", "-o", "ConnectTimeout=20"]);
        if let Some(p) = self.port {
            c.arg("-p").arg(p.to_string());
        }
        c.args(&self.options)
            .arg("--")
            .arg(&self.destination)
            .arg(remote_command);
        c
    }
}

/// The binary sent to hosts: `$SEER_REMOTE_BINARY` (e.g. a static musl build, for hosts
/// with an older glibc), else this seer.
fn local_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("SEER_REMOTE_BINARY").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    crate::sandbox::local::seer_exe()
}

/// A name for one exact build: version, size and modification time of the binary.
fn build_name(bin: &Path) -> Result<(String, u64)> {
    let meta = std::fs::metadata(bin).with_context(|| format!("reading {}", bin.display()))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok((
        format!("seer-{}-{}-{mtime}", env!("CARGO_PKG_VERSION"), meta.len()),
        meta.len(),
    ))
}

/// How the byte stream to the agent is obtained: a process running the launcher.
#[derive(Debug, Clone)]
pub enum Transport {
    /// `ssh HOST launcher`.
    Ssh(Target),
    /// `srun --jobid J --overlap … sh -c launcher` into the sandbox's Slurm job, here or
    /// through `ssh` to the login node.
    Slurm(super::slurm::Job),
    /// `python modal_helper.py`: the launcher in a Modal sandbox (see [`super::modal`]).
    Modal(Box<super::modal::Modal>),
}

impl Transport {
    /// How the machine is named in messages.
    pub fn shown(&self) -> String {
        match self {
            Transport::Ssh(t) => t.shown(),
            Transport::Slurm(j) => j.shown(),
            Transport::Modal(m) => m.shown(),
        }
    }

    fn remote_dir(&self) -> &str {
        match self {
            Transport::Ssh(t) => &t.remote_dir,
            Transport::Slurm(j) => &j.cluster.shared_dir,
            Transport::Modal(_) => DEFAULT_REMOTE_DIR,
        }
    }

    fn command(&self, launcher: &str) -> tokio::process::Command {
        match self {
            Transport::Ssh(t) => t.command(launcher),
            Transport::Slurm(j) => j.srun(launcher),
            Transport::Modal(m) => m.command(),
        }
    }

    /// The error of a failed start: `why`, and how to check the way seer went.
    fn start_failed(&self, why: &str) -> String {
        match self {
            Transport::Ssh(t) => format!(
                "could not start seer on `{shown}` over ssh: {why}\n(check that `ssh {shown}` works without a password prompt: seer runs ssh with BatchMode=yes)",
                shown = t.shown()
            ),
            Transport::Slurm(j) => j.start_failed(why),
            Transport::Modal(m) => m.start_failed(why),
        }
    }
}

/// A word for the host's `sh`: `~/x` stays expandable, everything else is quoted.
pub(super) fn sh_path(p: &str) -> String {
    match p.strip_prefix("~/") {
        Some(rest) => format!("\"$HOME\"/'{rest}'"),
        None => format!("'{p}'"),
    }
}

/// The launcher run by the host's shell. In a Slurm job (`job`) the state folder is the
/// job's own (`jobs/$SLURM_JOB_ID/state`: pids are per node), the Hugging Face cache is
/// under `remote_dir` unless `HF_HOME` is set, and the agent's pid and binary are written
/// where the job's script watches them.
fn launcher(remote_dir: &str, name: &str, size: u64, job: bool) -> String {
    let dir = sh_path(remote_dir);
    let (state, before) = if job {
        (
            "$d/jobs/$SLURM_JOB_ID/state",
            "j=\"$d/jobs/$SLURM_JOB_ID\"; echo \"$b\" > \"$j/binary\"; echo $$ > \"$j/agent.pid\"; \
             export HF_HOME=\"${HF_HOME:-$d/huggingface}\"; ",
        )
    } else {
        ("$d/state", "")
    };
    // srun holds the agent's small writes back (Nagle) until seer's side acknowledges them.
    let flag = if job { " --acknowledged" } else { "" };
    format!(
        "umask 077; d={dir}; \
         command -v python3 >/dev/null 2>&1 || {{ echo '{MISSING} python3 is not installed on this host (seer needs python3 to make the sandbox env)'; exit 3; }}; \
         mkdir -p \"$d/bin\" \"{state}\" \"$d/cache\" || {{ echo \"{MISSING} cannot create $d\"; exit 3; }}; \
         b=\"$d/bin/{name}\"; \
         if [ ! -x \"$b\" ]; then echo {NEED_BINARY}; head -c {size} > \"$b.part.$$\" && chmod 700 \"$b.part.$$\" && mv \"$b.part.$$\" \"$b\" || exit 4; fi; \
         {before}SEER_HOME=\"{state}\" SEER_CACHE_DIR=\"$d/cache\" exec \"$b\" __sandbox-agent{flag}"
    )
}

/// A running `ssh` process with the agent at its other end, ready for yamux.
pub struct Connected {
    pub child: Child,
    pub reader: BufReader<ChildStdout>,
    pub writer: ChildStdin,
    /// The last lines ssh and the agent wrote on stderr (also in the log file).
    pub stderr_tail: Arc<Mutex<Vec<String>>>,
}

/// Starts `ssh`, sends the binary if the host needs it, and waits for the agent's ready
/// line. ssh's stderr (and the agent's log) goes to `log` through `redactor`.
pub async fn connect(target: &Transport, log: &Path, redactor: Redactor) -> Result<Connected> {
    let bin = local_binary()?;
    let (name, size) = build_name(&bin)?;
    let job = matches!(target, Transport::Slurm(_));
    let launcher = launcher(target.remote_dir(), &name, size, job);
    let mut child = target
        .command(&launcher)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Ctrl-C in the terminal goes to seer, which ends the sandbox and then the
        // connection; ssh must not die first.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| match target {
            Transport::Ssh(_) => "starting `ssh` (is the OpenSSH client installed?)",
            Transport::Slurm(_) => "starting `srun` (or `ssh` to the login node)",
            Transport::Modal(_) => "starting seer's Modal helper",
        })?;
    let stderr_tail = Arc::new(Mutex::new(Vec::<String>::new()));
    if let Some(err) = child.stderr.take() {
        let tail = stderr_tail.clone();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        tokio::spawn(copy_stderr(err, file, tail, redactor));
    }
    let (Some(stdout), Some(mut writer)) = (child.stdout.take(), child.stdin.take()) else {
        bail!("ssh started without pipes");
    };
    if let Transport::Modal(m) = target {
        writer
            .write_all(&m.spec_line(&launcher)?)
            .await
            .context("sending the sandbox's spec to seer's Modal helper")?;
    }
    let mut reader = BufReader::new(stdout);
    let shown = target.shown();
    let handshake = async {
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                return Ok::<_, anyhow::Error>(None);
            }
            let l = line.trim_end();
            if l.starts_with(READY) {
                return Ok(Some(()));
            } else if let Some(what) = l.strip_prefix(MISSING) {
                bail!("{shown}: {}", what.trim());
            } else if l == NEED_BINARY {
                send_binary(&bin, size, &mut writer, &shown).await?;
            } else {
                // The host's rc files may print; anything before the ready line is noise.
                tracing::debug!(host = %shown, "before the agent: {l}");
            }
        }
    };
    let outcome = tokio::time::timeout(CONNECT_TIMEOUT + upload_allowance(size), handshake).await;
    let fail = |why: String, child: &mut Child, tail: &Arc<Mutex<Vec<String>>>| {
        let _ = child.start_kill();
        let tail = tail.lock().map(|t| t.join("\n")).unwrap_or_default();
        let said = if tail.is_empty() {
            String::new()
        } else if job {
            format!("; srun said:\n{tail}")
        } else if let Transport::Modal(_) = target {
            format!("; the helper said:\n{tail}")
        } else {
            format!("; ssh said:\n{tail}")
        };
        anyhow!(target.start_failed(&format!("{why}{said}")))
    };
    match outcome {
        Ok(Ok(Some(()))) => Ok(Connected {
            child,
            reader,
            writer,
            stderr_tail,
        }),
        Ok(Ok(None)) => {
            // Let the stderr copier catch up with ssh's last words.
            let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            let why = match status {
                Ok(Ok(s)) if job => format!("srun ended ({s})"),
                Ok(Ok(s)) if matches!(target, Transport::Modal(_)) => {
                    format!("the helper ended ({s})")
                }
                Ok(Ok(s)) => format!("ssh ended ({s})"),
                _ => "the connection closed".to_string(),
            };
            Err(fail(why, &mut child, &stderr_tail))
        }
        Ok(Err(e)) => Err(fail(format!("{e:#}"), &mut child, &stderr_tail)),
        Err(_) => Err(fail(
            format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            &mut child,
            &stderr_tail,
        )),
    }
}

/// Extra time for sending the binary (at 1 MB/s at worst).
fn upload_allowance(size: u64) -> Duration {
    Duration::from_secs(size / 1_000_000)
}

async fn send_binary(bin: &Path, size: u64, to: &mut ChildStdin, host: &str) -> Result<()> {
    let bar = crate::progress::bytes_bar(size, &format!("copying seer to {host}"));
    let mut file = tokio::fs::File::open(bin)
        .await
        .with_context(|| format!("opening {}", bin.display()))?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut sent = 0u64;
    while sent < size {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            bail!("{} changed while it was being sent", bin.display());
        }
        let n = n.min((size - sent) as usize);
        to.write_all(&buf[..n])
            .await
            .context("sending the seer binary")?;
        sent += n as u64;
        bar.set_position(sent);
    }
    to.flush().await?;
    bar.finish_and_clear();
    Ok(())
}

async fn copy_stderr(
    err: tokio::process::ChildStderr,
    mut file: std::fs::File,
    tail: Arc<Mutex<Vec<String>>>,
    redactor: Redactor,
) {
    use std::io::Write;
    let mut lines = BufReader::new(err).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line = redactor.redact(&line);
        let _ = writeln!(file, "{line}");
        if let Ok(mut t) = tail.lock() {
            t.push(line);
            let excess = t.len().saturating_sub(20);
            t.drain(..excess);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str) -> Target {
        let cfg: SandboxConfig = serde_json::from_value(serde_json::json!({
            "backend": "ssh", "host": host, "ssh_options": ["-F", "/x/cfg"]
        }))
        .unwrap();
        Target::of(&cfg).unwrap()
    }

    #[test]
    fn destinations_with_and_without_a_port() {
        assert_eq!(
            target("gpu-box"),
            Target {
                destination: "gpu-box".into(),
                port: None,
                options: vec!["-F".into(), "/x/cfg".into()],
                remote_dir: DEFAULT_REMOTE_DIR.into(),
            }
        );
        let t = target("me@10.0.0.2:2222");
        assert_eq!(
            (t.destination.as_str(), t.port),
            ("me@10.0.0.2", Some(2222))
        );
        let cfg: SandboxConfig = serde_json::from_value(serde_json::json!({
            "backend": "ssh", "host": "box:http"
        }))
        .unwrap();
        assert_eq!(
            Target::of(&cfg).unwrap_err().to_string(),
            "Sandbox config: field `host`: `http` in `box:http` is not a port"
        );
    }

    #[test]
    fn remote_paths_are_quoted_for_sh() {
        assert_eq!(sh_path("~/.cache/seer"), "\"$HOME\"/'.cache/seer'");
        assert_eq!(sh_path("/srv/seer dir"), "'/srv/seer dir'");
    }
}
