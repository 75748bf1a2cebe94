//! Resource bounds of a sandbox: memory, processes and the size of one file.
//!
//! All processes of one sandbox (kernel, commands, RPC servers) run in one control group
//! made for it, so `memory` and `pids` bound the sandbox as a whole. seer makes the group
//! where it can:
//! - cgroup v2 with the `memory` and `pids` controllers: `<root>/seer/<id>` (as root, or
//!   where the `seer` folder is delegated to this user);
//! - else the cgroup v1 `memory` and `pids` hierarchies (hybrid hosts, older containers),
//!   each beside the cgroup seer runs in;
//! - else per-process rlimits (`RLIMIT_AS` for an explicit `memory`, `RLIMIT_NPROC` for an
//!   explicit `pids`, which counts every process of the user), with a warning once.
//!
//! `max_file_size` is always an rlimit (`RLIMIT_FSIZE`): a write past it fails with
//! `EFBIG` ("File too large"). Memory written to the sandbox's tmpfs (`/dev/shm`) counts
//! against `memory`. The folders of the groups made are listed in the sandbox's
//! `cgroups` file, so whoever ends the sandbox (its owner, the watchdog, `seer gc`) can
//! kill what is left in them and remove them.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use nix::sys::resource::Resource;

use crate::sandbox::config::SandboxConfig;

/// Processes a sandbox may have at once (threads count) unless its config says otherwise.
pub const DEFAULT_PIDS: u64 = 4096;

/// The bounds asked for, with defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounds {
    /// Bytes of memory (resident, tmpfs and page cache) of the whole sandbox.
    pub memory: u64,
    /// Whether `memory` was set in the config (the rlimit fallback applies only then).
    pub memory_explicit: bool,
    /// Processes and threads of the whole sandbox.
    pub pids: u64,
    pub pids_explicit: bool,
    /// Bytes one file may grow to.
    pub file_size: Option<u64>,
}

/// Parses an amount like `"32G"`, `"512M"`, `"4096K"` or `"8T"` (binary units; a bare
/// number is megabytes, as Slurm's `--mem`). `None` when it is not one.
pub fn parse_amount(s: &str) -> Option<u64> {
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 'M'),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let shift = match unit {
        'K' => 10,
        'M' => 20,
        'G' => 30,
        'T' => 40,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

/// Physical memory of this machine in bytes (`MemTotal` of `/proc/meminfo`).
fn mem_total() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

impl Bounds {
    /// The bounds of `cfg`: `memory` defaults to 80% of this machine's memory (so a
    /// runaway cell cannot take the host down), `pids` to [`DEFAULT_PIDS`], the file size
    /// to none.
    pub fn of(cfg: &SandboxConfig) -> Result<Self> {
        let memory = match &cfg.memory {
            Some(m) => Some(parse_amount(m).with_context(|| {
                format!("Sandbox config: field `memory`: `{m}` is not an amount like \"32G\"")
            })?),
            None => None,
        };
        let file_size = match &cfg.max_file_size {
            Some(m) => Some(parse_amount(m).with_context(|| {
                format!(
                    "Sandbox config: field `max_file_size`: `{m}` is not an amount like \"10G\""
                )
            })?),
            None => None,
        };
        if cfg.pids == Some(0) {
            bail!("Sandbox config: field `pids`: must be at least 1");
        }
        let default_memory = mem_total().map(|t| t / 10 * 8).unwrap_or(u64::MAX);
        Ok(Self {
            memory: memory.unwrap_or(default_memory),
            memory_explicit: memory.is_some(),
            pids: cfg.pids.unwrap_or(DEFAULT_PIDS),
            pids_explicit: cfg.pids.is_some(),
            file_size,
        })
    }
}

/// How the bounds of a sandbox are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// A cgroup v2 group (its folder).
    V2(PathBuf),
    /// cgroup v1 groups: the memory one and the pids one.
    V1 { memory: PathBuf, pids: PathBuf },
    /// Per-process rlimits only.
    Rlimits,
}

impl Applied {
    /// The group folders.
    fn dirs(&self) -> Vec<PathBuf> {
        match self {
            Applied::V2(d) => vec![d.clone()],
            Applied::V1 { memory, pids } => vec![memory.clone(), pids.clone()],
            Applied::Rlimits => vec![],
        }
    }

    /// A short description for logs and the README's terms.
    pub fn describe(&self) -> &'static str {
        match self {
            Applied::V2(_) => "cgroup v2",
            Applied::V1 { .. } => "cgroup v1",
            Applied::Rlimits => "rlimits",
        }
    }
}

/// The cgroup file systems of this machine, read from a mount table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Mounts {
    v2: Option<PathBuf>,
    v1_memory: Option<PathBuf>,
    v1_pids: Option<PathBuf>,
}

fn mounts(mount_table: &str) -> Mounts {
    let mut m = Mounts::default();
    for line in mount_table.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 {
            continue;
        }
        let (dir, kind, opts) = (PathBuf::from(f[1]), f[2], f[3]);
        let has = |o: &str| opts.split(',').any(|x| x == o);
        match kind {
            "cgroup2" if m.v2.is_none() => m.v2 = Some(dir),
            "cgroup" if has("memory") && m.v1_memory.is_none() => m.v1_memory = Some(dir),
            "cgroup" if has("pids") && m.v1_pids.is_none() => m.v1_pids = Some(dir),
            _ => {}
        }
    }
    m
}

/// The path of this process's group in the hierarchy whose `/proc/self/cgroup` line names
/// `controller` (`""` for the v2 line `0::/…`).
fn own_group(self_cgroup: &str, controller: &str) -> Option<String> {
    self_cgroup.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = if controller.is_empty() {
            ctrls.is_empty()
        } else {
            ctrls.split(',').any(|c| c == controller)
        };
        hit.then(|| path.to_string())
    })
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).with_context(|| format!("writing `{value}` to {}", path.display()))
}

/// Makes a v2 group `<root>/seer/<name>` with the memory and pids controllers.
fn make_v2(root: &Path, name: &str, b: &Bounds) -> Result<PathBuf> {
    let controllers = std::fs::read_to_string(root.join("cgroup.controllers"))
        .with_context(|| format!("reading {}", root.join("cgroup.controllers").display()))?;
    for c in ["memory", "pids"] {
        if !controllers.split_whitespace().any(|x| x == c) {
            bail!(
                "the cgroup v2 root {} has no {c} controller",
                root.display()
            );
        }
    }
    let enable = |dir: &Path| -> Result<()> {
        let on = std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
        if ["memory", "pids"]
            .iter()
            .all(|c| on.split_whitespace().any(|x| x == *c))
        {
            return Ok(());
        }
        write(&dir.join("cgroup.subtree_control"), "+memory +pids")
    };
    enable(root)?;
    let base = root.join("seer");
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    enable(&base)?;
    let dir = base.join(name);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    write(&dir.join("memory.max"), &b.memory.to_string())?;
    // Swap would turn the bound into a slow host: none beyond it.
    if dir.join("memory.swap.max").exists() {
        write(&dir.join("memory.swap.max"), "0")?;
    }
    write(&dir.join("pids.max"), &b.pids.to_string())?;
    Ok(dir)
}

/// Makes v1 groups `seer-<name>` beside this process's memory and pids groups.
fn make_v1(
    memory_root: &Path,
    pids_root: &Path,
    self_cgroup: &str,
    name: &str,
    b: &Bounds,
) -> Result<(PathBuf, PathBuf)> {
    let beside = |root: &Path, ctrl: &str| -> Result<PathBuf> {
        let own = own_group(self_cgroup, ctrl).unwrap_or_else(|| "/".into());
        let dir = root
            .join(own.trim_start_matches('/'))
            .join(format!("seer-{name}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    };
    let memory = beside(memory_root, "memory")?;
    let limit = b.memory.min(i64::MAX as u64 / 4096 * 4096).to_string();
    write(&memory.join("memory.limit_in_bytes"), &limit)?;
    if memory.join("memory.memsw.limit_in_bytes").exists() {
        // Best effort: some kernels refuse memsw below what is swapped already.
        let _ = write(&memory.join("memory.memsw.limit_in_bytes"), &limit);
    }
    let pids = beside(pids_root, "pids")?;
    write(&pids.join("pids.max"), &b.pids.to_string())?;
    Ok((memory, pids))
}

/// Where the list of a sandbox's group folders is kept.
fn list_path(sandbox_dir: &Path) -> PathBuf {
    sandbox_dir.join("cgroups")
}

/// Makes the groups of sandbox `id` (or finds them again, at reattach) and records them in
/// its folder. Falls back to rlimits, with one warning per seer process, when no cgroup
/// can be made here.
pub fn create(sandbox_dir: &Path, id: &str, b: &Bounds) -> Applied {
    let table = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let found = mounts(&table);
    let mut why = vec![];
    let applied = 'made: {
        if let Some(root) = &found.v2 {
            match make_v2(root, id, b) {
                Ok(d) => break 'made Applied::V2(d),
                Err(e) => why.push(format!("{e:#}")),
            }
        }
        if let (Some(m), Some(p)) = (&found.v1_memory, &found.v1_pids) {
            match make_v1(m, p, &own, id, b) {
                Ok((memory, pids)) => break 'made Applied::V1 { memory, pids },
                Err(e) => why.push(format!("{e:#}")),
            }
        }
        Applied::Rlimits
    };
    if applied == Applied::Rlimits {
        warn_rlimits(&why);
    }
    let list: String = applied
        .dirs()
        .iter()
        .map(|d| format!("{}\n", d.display()))
        .collect();
    if let Err(e) = std::fs::write(list_path(sandbox_dir), list) {
        tracing::warn!("could not record the sandbox's cgroups: {e}");
    }
    tracing::debug!(id, how = applied.describe(), "resource bounds applied");
    applied
}

fn warn_rlimits(why: &[String]) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        tracing::warn!(
            "no cgroup could be made for the sandbox ({}): its memory and process bounds are per-process rlimits, applied only where set in the config",
            if why.is_empty() {
                "no memory and pids cgroup controllers are mounted".to_string()
            } else {
                why.join("; ")
            }
        );
    });
}

/// What a new process of the sandbox does between fork and exec: a session of its own (no
/// controlling terminal: nothing in the sandbox can push input into the user's terminal
/// with `TIOCSTI`), the sandbox's groups, its rlimits.
#[derive(Debug, Clone)]
pub struct Enter {
    procs: Vec<CString>,
    rlimits: Vec<(Resource, u64)>,
}

impl Enter {
    pub fn new(applied: &Applied, b: &Bounds) -> Self {
        let procs = applied
            .dirs()
            .iter()
            .filter_map(|d| {
                CString::new(d.join("cgroup.procs").into_os_string().into_encoded_bytes()).ok()
            })
            .collect();
        let mut rlimits = vec![];
        if let Some(f) = b.file_size {
            rlimits.push((Resource::RLIMIT_FSIZE, f));
        }
        if *applied == Applied::Rlimits {
            if b.memory_explicit {
                rlimits.push((Resource::RLIMIT_AS, b.memory));
            }
            if b.pids_explicit {
                rlimits.push((Resource::RLIMIT_NPROC, b.pids));
            }
        }
        Self { procs, rlimits }
    }

    /// Runs in the child after `fork`: only async-signal-safe calls, no allocation.
    pub fn apply(&self) -> std::io::Result<()> {
        use nix::fcntl::{OFlag, open};
        use nix::sys::stat::Mode;
        nix::unistd::setsid()?;
        for p in &self.procs {
            let fd = open(
                p.as_c_str(),
                OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            nix::unistd::write(&fd, b"0")?;
        }
        for (r, v) in &self.rlimits {
            nix::sys::resource::setrlimit(*r, *v, *v)?;
        }
        Ok(())
    }
}

/// How many times the kernel's OOM killer has killed a process of the sandbox so far
/// (0 without a memory cgroup).
pub fn oom_kills(applied: &Applied) -> u64 {
    let (file, key) = match applied {
        Applied::V2(d) => (d.join("memory.events"), "oom_kill"),
        Applied::V1 { memory, .. } => (memory.join("memory.oom_control"), "oom_kill"),
        Applied::Rlimits => return 0,
    };
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == key).then(|| v.trim().parse().ok())?
            })
        })
        .unwrap_or(0)
}

/// The group folders recorded for the sandbox in `sandbox_dir` (none if it has none or is
/// gone).
pub fn recorded(sandbox_dir: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string(list_path(sandbox_dir))
        .map(|list| {
            list.lines()
                .filter(|l| !l.is_empty())
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Kills every process still in the sandbox's groups (one that left its process group
/// with `setsid` included) and removes the groups. Safe to call more than once.
pub fn end(sandbox_dir: &Path) {
    end_groups(&recorded(sandbox_dir));
    let _ = std::fs::remove_file(list_path(sandbox_dir));
}

/// [`end`] for group folders read earlier (the watchdog's, when the sandbox's folder was
/// removed under it).
pub fn end_groups(dirs: &[PathBuf]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    for d in dirs {
        loop {
            let pids: Vec<i32> = std::fs::read_to_string(d.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect();
            for p in &pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            match std::fs::remove_dir(d) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) if std::time::Instant::now() > deadline => {
                    tracing::warn!("could not remove the cgroup {}: {e}", d.display());
                    break;
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        assert_eq!(parse_amount("32G"), Some(32 << 30));
        assert_eq!(parse_amount("512M"), Some(512 << 20));
        assert_eq!(parse_amount("4K"), Some(4096));
        assert_eq!(parse_amount("100"), Some(100 << 20));
        assert_eq!(parse_amount("1T"), Some(1 << 40));
        for bad in ["", "G", "lots", "1.5G", "-1G", "3X", "99999999999999999T"] {
            assert_eq!(parse_amount(bad), None, "{bad}");
        }
    }

    #[test]
    fn mount_tables_and_own_groups() {
        let hybrid = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n\
            cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n\
            cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0\n\
            cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n";
        assert_eq!(
            mounts(hybrid),
            Mounts {
                v2: Some("/sys/fs/cgroup/unified".into()),
                v1_memory: Some("/sys/fs/cgroup/memory".into()),
                v1_pids: Some("/sys/fs/cgroup/pids".into()),
            }
        );
        let own = "8:pids:/\n4:memory:/process_api/abc\n1:cpu,cpuacct:/x\n0::/user.slice\n";
        assert_eq!(
            own_group(own, "memory").as_deref(),
            Some("/process_api/abc")
        );
        assert_eq!(own_group(own, "pids").as_deref(), Some("/"));
        assert_eq!(own_group(own, "cpuacct").as_deref(), Some("/x"));
        assert_eq!(own_group(own, "").as_deref(), Some("/user.slice"));
        assert_eq!(own_group(own, "blkio"), None);
    }

    #[test]
    fn a_v2_root_without_the_controllers_is_refused_and_one_with_them_gets_the_limits() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let b = Bounds {
            memory: 1 << 30,
            memory_explicit: true,
            pids: 64,
            pids_explicit: true,
            file_size: None,
        };
        std::fs::write(root.join("cgroup.controllers"), "hugetlb\n").unwrap();
        assert_eq!(
            format!("{:#}", make_v2(root, "sb-1", &b).unwrap_err()),
            format!(
                "the cgroup v2 root {} has no memory controller",
                root.display()
            )
        );
        std::fs::write(root.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        std::fs::write(root.join("cgroup.subtree_control"), "memory pids\n").unwrap();
        std::fs::create_dir_all(root.join("seer")).unwrap();
        std::fs::write(root.join("seer/cgroup.subtree_control"), "").unwrap();
        let made = make_v2(root, "sb-1", &b).unwrap();
        assert_eq!(made, root.join("seer/sb-1"));
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
        assert_eq!(read("seer/cgroup.subtree_control"), "+memory +pids");
        assert_eq!(read("seer/sb-1/memory.max"), "1073741824");
        assert_eq!(read("seer/sb-1/pids.max"), "64");
    }
}
