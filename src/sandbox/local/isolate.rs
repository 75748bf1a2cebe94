//! Isolation of a local sandbox's processes with bubblewrap (`bwrap`).
//!
//! Every process the sandbox runs for its user or agent (commands, kernels, RPC and MCP
//! servers) starts as `bwrap <mounts> -- program args`:
//! - the system is bound read-only (`/`), with a fresh `/dev`, a `/proc` of its own pid
//!   namespace (no host process is visible) and a private `/tmp`;
//! - the host home, seer's state dir and cache dir, and the Hugging Face hub cache are
//!   covered by empty tmpfs mounts, so other sandboxes, credentials (`~/.ssh`, `~/.env`,
//!   `~/.npmrc`) and the cache folders of hidden models are out of reach;
//! - then what this sandbox was given comes back: its Python env and the interpreter it
//!   was made from (read-only), its own folder (read-only: records, libraries, hidden
//!   models, private venv), the models it was configured with (read-only), and, writable,
//!   its workspace (or a local session's host folder), its `tmp/` and a `home/` that is
//!   `HOME` inside;
//! - `network: false` adds a network namespace of its own (loopback only);
//! - with `gpu` set, the `/dev/nvidia*` devices are bound in.
//!
//! The process group stays the one seer made for `bwrap` (no `--new-session`), so ending
//! the group ends everything inside, as without isolation.
//!
//! What it does not promise: the system (`/usr`, `/etc`, …) stays readable, the network is
//! open unless `network: false`, and a process can still use up the machine's CPU, memory
//! and disk (no cgroup limits).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::sandbox::config::{Isolation, SandboxConfig};
use crate::sandbox::models::ModelHandle;

/// The mounts of one sandbox, computed once at start (and at reattach).
#[derive(Debug, Clone)]
pub(super) struct Jail {
    bwrap: PathBuf,
    /// Everything before the per-process part (the writable work folder, `--chdir`).
    args: Vec<OsString>,
    /// Whether the processes share the host's network (`network` of the config).
    pub network: bool,
}

/// What a sandbox consists of on the host, for [`Jail::plan`].
pub(super) struct Layout<'a> {
    pub dir: &'a Path,
    pub workspace: &'a Path,
    pub env_path: &'a Path,
    pub models: &'a [ModelHandle],
    /// The script's folder (its `.env`, other files): covered too.
    pub script_dir: Option<&'a Path>,
}

/// Whether `cfg` asks for isolation and it can be had: `Ok(None)` means "run unisolated"
/// (asked for, or bubblewrap is missing under the default, which warns once per process).
pub(super) fn bwrap_for(cfg: &SandboxConfig) -> Result<Option<PathBuf>> {
    let found = crate::sandbox::pyenv::which("bwrap");
    match (cfg.isolation, found) {
        (Some(Isolation::None), _) => Ok(None),
        (_, Some(b)) => Ok(Some(b)),
        (Some(Isolation::Bwrap), None) => bail!(
            "isolation: \"bwrap\" needs bubblewrap, which is not installed: install it (`apt-get install bubblewrap`) or set `isolation: \"none\"`"
        ),
        (None, None) => {
            warn_unisolated();
            Ok(None)
        }
    }
}

/// The one-line warning of an unisolated default sandbox, once per seer process.
fn warn_unisolated() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        tracing::warn!(
            "the sandbox is not isolated: bubblewrap is not installed (`apt-get install bubblewrap`); its processes can read what you can"
        );
    });
}

fn push(args: &mut Vec<OsString>, flag: &str, paths: &[&Path]) {
    args.push(flag.into());
    for p in paths {
        args.push(p.as_os_str().to_owned());
    }
}

/// `--tmpfs dir` if `dir` exists (bwrap cannot mount over a missing path on a read-only
/// root).
fn cover(args: &mut Vec<OsString>, dir: &Path) {
    if dir.is_absolute() && dir.is_dir() {
        push(args, "--tmpfs", &[dir]);
    }
}

/// `--ro-bind p p` if `p` exists.
fn ro(args: &mut Vec<OsString>, p: &Path) {
    if p.exists() {
        push(args, "--ro-bind", &[p, p]);
    }
}

/// What the interpreter of the venv at `env` needs from outside it: the folder its
/// `pyvenv.cfg` names as `home` (where `bin/python` may link to), and the installation
/// the interpreter really lives in (`<prefix>/bin/python3.x`, with its standard library).
fn interpreter_mounts(env: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    if let Ok(cfg) = std::fs::read_to_string(env.join("pyvenv.cfg"))
        && let Some(home) = cfg.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "home").then(|| PathBuf::from(v.trim()))
        })
    {
        out.push(home);
    }
    if let Ok(real) = std::fs::canonicalize(env.join("bin/python"))
        && let Some(prefix) = real.parent().and_then(Path::parent)
    {
        out.push(prefix.to_path_buf());
    }
    out
}

/// The folder to bind for a model at `path`: its repo folder in the hub cache
/// (`models--org--name`, whose snapshot files link into `blobs/`), else the directory
/// itself with its real location.
fn model_mounts(path: &Path, hub: Option<&Path>) -> Vec<PathBuf> {
    if let Some(hub) = hub
        && let Ok(rest) = path.strip_prefix(hub)
        && let Some(first) = rest.components().next()
    {
        return vec![hub.join(first)];
    }
    let mut out = vec![path.to_path_buf()];
    if let Ok(real) = std::fs::canonicalize(path)
        && real != path
    {
        out.push(real);
    }
    out
}

impl Jail {
    /// The mounts for a sandbox laid out as `l`, under the config `cfg`.
    pub(super) fn plan(bwrap: PathBuf, cfg: &SandboxConfig, l: &Layout) -> Self {
        let mut a: Vec<OsString> = Vec::new();
        push(&mut a, "--ro-bind", &[Path::new("/"), Path::new("/")]);
        push(&mut a, "--dev", &[Path::new("/dev")]);
        push(&mut a, "--proc", &[Path::new("/proc")]);
        push(&mut a, "--tmpfs", &[Path::new("/tmp")]);
        for flag in ["--unshare-pid", "--unshare-ipc", "--unshare-uts"] {
            a.push(flag.into());
        }
        if !cfg.network {
            a.push("--unshare-net".into());
        }
        // Cover what must not be seen ...
        if let Some(home) = dirs::home_dir() {
            cover(&mut a, &home);
        }
        cover(&mut a, &crate::paths::state_dir());
        cover(&mut a, &crate::paths::cache_dir());
        if let Some(d) = l.script_dir {
            cover(&mut a, d);
        }
        let hub = crate::sandbox::models::hf_hub_cache_dir().ok();
        if let Some(h) = &hub {
            cover(&mut a, h);
        }
        // ... then bring back what the sandbox was given, read-only ...
        for p in interpreter_mounts(l.env_path) {
            ro(&mut a, &p);
        }
        ro(&mut a, l.env_path);
        if let Ok(real) = std::fs::canonicalize(l.env_path)
            && real != l.env_path
        {
            ro(&mut a, &real);
        }
        for m in l.models.iter().filter(|m| !m.hidden) {
            let paths = std::iter::once(&m.path).chain(m.base_model_path.as_ref());
            for p in paths {
                for mount in model_mounts(Path::new(p), hub.as_deref()) {
                    ro(&mut a, &mount);
                }
            }
        }
        ro(&mut a, l.dir);
        // ... and writable: the workspace, the sandbox's tmp and its home.
        for w in [
            l.workspace.to_path_buf(),
            l.dir.join("tmp"),
            l.dir.join("home"),
        ] {
            push(&mut a, "--bind", &[&w, &w]);
        }
        if cfg.gpu.is_some()
            && let Ok(entries) = std::fs::read_dir("/dev")
        {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with("nvidia") {
                    let p = e.path();
                    push(&mut a, "--dev-bind", &[&p, &p]);
                }
            }
        }
        Self {
            bwrap,
            args: a,
            network: cfg.network,
        }
    }

    /// `program args` run inside the jail, in `cwd`; `extra_rw` (a local session's host
    /// folder) is bound writable too.
    pub(super) fn wrap(
        &self,
        program: &Path,
        args: &[String],
        cwd: &Path,
        extra_rw: Option<&Path>,
    ) -> (PathBuf, Vec<OsString>) {
        let mut a = self.args.clone();
        if let Some(x) = extra_rw {
            push(&mut a, "--bind", &[x, x]);
        }
        push(&mut a, "--chdir", &[cwd]);
        a.push("--".into());
        a.push(program.as_os_str().to_owned());
        a.extend(args.iter().map(OsString::from));
        (self.bwrap.clone(), a)
    }
}

/// The sandbox's own home (`HOME` inside the jail), created with the sandbox.
pub(super) fn home_dir(dir: &Path) -> PathBuf {
    dir.join("home")
}
