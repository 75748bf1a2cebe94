//! Isolation of a local sandbox's processes with bubblewrap (`bwrap`).
//!
//! Every process the sandbox runs for its user or agent (commands, kernels, RPC and MCP
//! servers) starts as `bwrap <mounts> -- program args`:
//! - with no capabilities (`--cap-drop ALL`, bounding set included), in a user namespace
//!   of its own that maps only the invoking uid and allows no nested user namespace
//!   (`--unshare-user --disable-userns`) where this host allows one; where it does not,
//!   `--cap-drop ALL` alone (bwrap then runs it with `no_new_privs` and no root
//!   privileges); a bwrap that can do neither is refused (see [`probe`]). So even as root
//!   a cell cannot `mount`, remount the system writable or `unshare` its way out;
//! - in a session of its own with no controlling terminal (seer calls `setsid` before
//!   bwrap: see [`crate::sandbox::bounds::Enter`]), so `TIOCSTI` cannot push input into
//!   the user's terminal; the session's process group is the one seer ends;
//! - the system is bound read-only (`/`), with a fresh `/dev` (its own `devpts`: no host
//!   terminal is reachable), a `/proc` of its own pid namespace (no host process is
//!   visible) and `/tmp` bound to the sandbox's own `tmp/` folder, which every process of
//!   the sandbox shares (kernel, commands, RPC servers) and no other sandbox sees;
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
//! What it does not promise: the system (`/usr`, `/etc`, …) stays readable, the network is
//! open unless `network: false`, and `/proc/self/mountinfo` names the host paths of what
//! is mounted (the covered folders show as covered, not their contents). Memory, process
//! and file-size bounds are [`crate::sandbox::bounds`]'s.

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
    /// Host folders a process of the sandbox cannot see, for [`Jail::hint`]: the script's
    /// folder and the host's `/tmp` (the sandbox's `/tmp` is its own `tmp/`).
    unseen: Vec<PathBuf>,
    own_tmp: PathBuf,
    /// Host folders bound into the sandbox at their own paths (seen inside as outside).
    visible: Vec<PathBuf>,
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
pub(super) fn bwrap_for(cfg: &SandboxConfig) -> Result<Option<Bwrap>> {
    let found = crate::sandbox::pyenv::which("bwrap");
    match (cfg.isolation, found) {
        (Some(Isolation::None), _) => Ok(None),
        (_, Some(b)) => probe(&b).map(Some),
        (Some(Isolation::Bwrap), None) => bail!(
            "isolation: \"bwrap\" needs bubblewrap, which is not installed: install it (`apt-get install bubblewrap`) or set `isolation: \"none\"`"
        ),
        (None, None) => {
            warn_unisolated();
            Ok(None)
        }
    }
}

/// A bubblewrap binary and how it drops privileges on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Bwrap {
    pub path: PathBuf,
    /// Whether a user namespace of its own works here (else `--cap-drop ALL` alone).
    pub userns: bool,
}

/// The flags that drop every privilege, with or without a user namespace.
fn privilege_flags(userns: bool) -> &'static [&'static str] {
    if userns {
        &["--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
    } else {
        &["--cap-drop", "ALL"]
    }
}

/// Finds out, once per seer process and bwrap binary, whether `bwrap` here can run a
/// process with no capabilities in a user namespace, or at least with no capabilities;
/// an error (refusing the isolated sandbox) when it can do neither.
pub(super) fn probe(bwrap: &Path) -> Result<Bwrap> {
    static SEEN: std::sync::Mutex<Vec<(PathBuf, Result<bool, String>)>> =
        std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN
        .lock()
        .map_err(|_| anyhow::anyhow!("bwrap probe lock poisoned"))?;
    let result = match seen.iter().find(|(p, _)| p == bwrap) {
        Some((_, r)) => r.clone(),
        None => {
            let r = run_probe(bwrap);
            seen.push((bwrap.to_path_buf(), r.clone()));
            r
        }
    };
    match result {
        Ok(userns) => Ok(Bwrap {
            path: bwrap.to_path_buf(),
            userns,
        }),
        Err(e) => bail!(
            "isolation: bubblewrap ({}) cannot drop the capabilities of the sandbox's processes here, so it would not isolate them: {e}. Use a bubblewrap that supports `--cap-drop` (0.4 or later), or set `isolation: \"none\"` knowing its processes can do what you can",
            bwrap.display()
        ),
    }
}

/// Runs `bwrap … cat /proc/self/status` with each set of privilege flags and checks that
/// the process has no effective capability.
fn run_probe(bwrap: &Path) -> Result<bool, String> {
    let mut last = String::new();
    for userns in [true, false] {
        let mut cmd = std::process::Command::new(bwrap);
        cmd.args(privilege_flags(userns))
            .args(["--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"])
            .args(["--unshare-pid", "--", "cat", "/proc/self/status"])
            .env_clear()
            .stdin(std::process::Stdio::null());
        match cmd.output() {
            Ok(out) if out.status.success() => {
                let status = String::from_utf8_lossy(&out.stdout);
                let eff = status
                    .lines()
                    .find_map(|l| l.strip_prefix("CapEff:"))
                    .map(str::trim);
                if eff.is_some_and(|e| e.bytes().all(|b| b == b'0')) {
                    return Ok(userns);
                }
                last = format!("its processes kept capabilities (CapEff {eff:?})");
            }
            Ok(out) => last = String::from_utf8_lossy(&out.stderr).trim().to_string(),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
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
    pub(super) fn plan(bwrap: Bwrap, cfg: &SandboxConfig, l: &Layout) -> Self {
        let mut a: Vec<OsString> = privilege_flags(bwrap.userns)
            .iter()
            .map(OsString::from)
            .collect();
        push(&mut a, "--ro-bind", &[Path::new("/"), Path::new("/")]);
        push(&mut a, "--dev", &[Path::new("/dev")]);
        push(&mut a, "--proc", &[Path::new("/proc")]);
        // One /tmp for every process of the sandbox: its own `tmp/` folder.
        let tmp = l.dir.join("tmp");
        push(&mut a, "--bind", &[&tmp, Path::new("/tmp")]);
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
        let visible = a
            .windows(3)
            .filter(|w| w[0] == "--bind" || w[0] == "--ro-bind" || w[0] == "--dev-bind")
            .filter(|w| w[1] == w[2] && w[2] != "/")
            .map(|w| PathBuf::from(&w[2]))
            .collect();
        let mut unseen = vec![PathBuf::from("/tmp")];
        unseen.extend(l.script_dir.map(Path::to_path_buf));
        Self {
            bwrap: bwrap.path,
            args: a,
            network: cfg.network,
            unseen,
            own_tmp: tmp,
            visible,
        }
    }

    /// A hint for an error `text` (a failed command's stderr) that names a host file the
    /// sandbox cannot see: one in the script's folder, or in the host's `/tmp` but not in
    /// the sandbox's own. `None` when it names none.
    pub(super) fn hint(&self, text: &str) -> Option<String> {
        let mut named: Vec<PathBuf> = vec![];
        for word in text.split(|c: char| c.is_whitespace() || "'\"`:,()[]".contains(c)) {
            if !word.starts_with('/') || word.len() < 2 {
                continue;
            }
            let p = PathBuf::from(word);
            if named.contains(&p) || !p.exists() {
                continue;
            }
            let hidden = self.unseen.iter().any(|u| {
                p.strip_prefix(u).is_ok_and(|rest| {
                    // Under /tmp: hidden unless the sandbox's own /tmp has it too.
                    *u != Path::new("/tmp") || !self.own_tmp.join(rest).exists()
                })
            });
            if hidden && !self.visible.iter().any(|v| p.starts_with(v)) {
                named.push(p);
            }
        }
        let first = named.first()?;
        Some(format!(
            "\nseer: `{}` is a file of the host that this sandbox cannot see (its /tmp is its own, and the script's folder is not in it); copy it in with `local_files` or `local_dirs` in the sandbox config, or `sb.write_file`\n",
            first.display()
        ))
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
