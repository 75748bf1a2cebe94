//! Process groups: whether they are alive and how to end them, grandchildren included.
//!
//! A sandbox runs each command in its own process group, recorded as a file in its `procs/`
//! dir ([`ProcDir`]) so that `terminate`, Ctrl-C, the timeout watchdog and `seer gc` can end
//! the whole group; the agent's claude CLI child is ended the same way.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// The `procs/` directory of one sandbox: one file per live process group, named by pgid.
#[derive(Debug, Clone)]
pub struct ProcDir(PathBuf);

impl ProcDir {
    pub fn new(dir: PathBuf) -> Self {
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn add(&self, pgid: i32, label: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.0)?;
        std::fs::write(self.0.join(pgid.to_string()), label)
    }

    pub fn remove(&self, pgid: i32) {
        let _ = std::fs::remove_file(self.0.join(pgid.to_string()));
    }

    /// Recorded process groups, with their labels.
    pub fn list(&self) -> Vec<(i32, String)> {
        let Ok(entries) = std::fs::read_dir(&self.0) else {
            return vec![];
        };
        let mut out: Vec<(i32, String)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let pgid: i32 = e.file_name().to_str()?.parse().ok()?;
                let label = std::fs::read_to_string(e.path()).unwrap_or_default();
                Some((pgid, label))
            })
            .collect();
        out.sort();
        out
    }

    /// Ends every recorded group (SIGTERM, then SIGKILL after `grace`) and forgets them.
    pub fn kill_all(&self, grace: Duration) {
        let groups: Vec<i32> = self.list().into_iter().map(|(g, _)| g).collect();
        kill_groups(&groups, grace);
        for g in groups {
            self.remove(g);
        }
    }
}

/// State (field 3) and process group (field 5) of a process, from /proc/PID/stat.
fn stat_fields(pid: &str) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = stat[stat.rfind(')')? + 2..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let pgrp = rest.nth(1)?.parse().ok()?;
    Some((state, pgrp))
}

/// Whether any process of the group is still running. Zombies do not count: in a
/// container whose init does not reap, an ended process can stay a zombie forever.
pub fn group_alive(pgid: i32) -> bool {
    if pgid <= 0 || killpg(Pid::from_raw(pgid), None).is_err() {
        return false;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    entries.filter_map(|e| e.ok()).any(|e| {
        let name = e.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else {
            return false;
        };
        matches!(stat_fields(pid), Some((state, pgrp)) if pgrp == pgid && state != 'Z' && state != 'X')
    })
}

/// Whether a process is running (zombies count as gone).
pub fn pid_alive(pid: i32) -> bool {
    pid > 0
        && kill(Pid::from_raw(pid), None).is_ok()
        && !matches!(stat_fields(&pid.to_string()), Some((s, _)) if s == 'Z' || s == 'X')
}

/// The start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), to
/// tell a live owner from a new process that reused its pid.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after it follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process `pid` that started at `start` is still running. A zombie (state
/// `Z`, or `X`) has ended: a SIGKILLed seer whose parent never reaps it (a container's init,
/// a shell that is itself stopped) must count as gone for `seer gc` and the watchdog.
pub fn owner_alive(pid: u32, start: Option<u64>) -> bool {
    if matches!(stat_fields(&pid.to_string()), Some((s, _)) if s == 'Z' || s == 'X') {
        return false;
    }
    match (start_time(pid), start) {
        (Some(now), Some(then)) => now == then,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// The process groups of running processes whose environment holds `var=value` (as they
/// were started: `/proc/PID/environ`), this process's own group excepted.
pub fn groups_with_env(var: &str, value: &str) -> Vec<i32> {
    let want = format!("{var}={value}").into_bytes();
    let own = nix::unistd::getpgrp().as_raw();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    let mut groups: Vec<i32> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name();
            let pid = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))?
                .to_string();
            let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
            if !environ.split(|b| *b == 0).any(|kv| kv == want.as_slice()) {
                return None;
            }
            let (state, pgrp) = stat_fields(&pid)?;
            (state != 'Z' && state != 'X' && pgrp != own).then_some(pgrp)
        })
        .collect();
    groups.sort();
    groups.dedup();
    groups
}

/// SIGTERM to every group, wait up to `grace` for them to go, SIGKILL what is left.
pub fn kill_groups(groups: &[i32], grace: Duration) {
    let groups: Vec<i32> = groups.iter().copied().filter(|g| *g > 1).collect();
    for g in &groups {
        let _ = killpg(Pid::from_raw(*g), Signal::SIGTERM);
        // A stopped process does not act on SIGTERM until continued.
        let _ = killpg(Pid::from_raw(*g), Signal::SIGCONT);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && groups.iter().any(|g| group_alive(*g)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for g in &groups {
        if group_alive(*g) {
            tracing::debug!(pgid = g, "process group ignored SIGTERM; sending SIGKILL");
            let _ = killpg(Pid::from_raw(*g), Signal::SIGKILL);
        }
    }
}

/// Ends one process (not a group), e.g. the watchdog.
pub fn kill_pid(pid: i32) {
    if pid > 1 {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn kill_all_ends_grandchildren_and_forgets_groups() {
        let dir = tempfile::tempdir().unwrap();
        let procs = ProcDir::new(dir.path().join("procs"));
        // bash starts a background sleep (a grandchild of ours) and then waits.
        let mut child = std::process::Command::new("bash")
            .args(["-c", "sleep 300 & sleep 300; wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id() as i32;
        procs.add(pgid, "test").unwrap();
        assert_eq!(procs.list(), vec![(pgid, "test".to_string())]);
        std::thread::sleep(Duration::from_millis(100));
        procs.kill_all(Duration::from_secs(1));
        let _ = child.wait();
        assert!(!group_alive(pgid));
        assert!(procs.list().is_empty());
    }

    #[test]
    fn own_process_is_alive_with_its_start_time() {
        let me = std::process::id();
        let start = start_time(me);
        assert!(start.is_some());
        assert!(owner_alive(me, start));
        assert!(!owner_alive(me, start.map(|s| s + 1)));
    }

    #[test]
    fn a_zombie_owner_is_gone() {
        // A child that exits and is not waited for stays a zombie with its start time.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = start_time(pid);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !matches!(stat_fields(&pid.to_string()), Some(('Z', _))) {
            assert!(Instant::now() < deadline, "the child never became a zombie");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(start_time(pid), start, "a zombie keeps its start time");
        assert!(!owner_alive(pid, start));
        assert!(!owner_alive(pid, None));
        assert!(!pid_alive(pid as i32));
        child.wait().unwrap();
    }
}
