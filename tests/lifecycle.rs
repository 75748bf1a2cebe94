//! Process lifecycle: Ctrl-C and SIGTERM end every sandbox process quickly, `seer gc`
//! ends orphans of a killed seer, `seer ps` lists live sandboxes, the timeout watchdog
//! ends a detached sandbox.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use std::time::{Duration, Instant};

use common::{Env, Running, Stream, ok, pids_matching, plain_log, text, wait_for, wait_gone};
use nix::sys::signal::Signal;

/// `seer ps` (`--all` with `all`): the header, then one row per sandbox split into its
/// columns, the AGE column written `<age>`.
fn ps(env: &Env, all: bool) -> Vec<Vec<String>> {
    let mut c = env.cmd();
    c.arg("ps");
    if all {
        c.arg("--all");
    }
    let out = ok(&c.output().unwrap());
    let mut rows = out.lines();
    assert_eq!(
        rows.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["ID", "BACKEND", "STATUS", "AGE", "OWNER", "PIDS", "DIR"],
        "{out}"
    );
    rows.map(|l| {
        let mut cols: Vec<String> = l.split_whitespace().map(str::to_string).collect();
        cols[3] = "<age>".into();
        cols
    })
    .collect()
}

fn cols(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Starts `seer run` on a script that prints "ready" and then blocks in a long exec
/// whose process tree includes `sleep <tag>` and a backgrounded grandchild `sleep <tag+1>`.
fn start_blocked(env: &Env, tag: u32) -> (Running, String) {
    let mut seer = env.spawn(&format!(
        "let sb = Sandbox(#{{}}).start();\nprint(`ready ${{sb.id}}`);\nsb.exec(\"(sleep {} &) ; sleep {tag}\");\nprint(\"not reached\");\n",
        tag + 1
    ));
    let line = seer.next_line(120);
    let id = line.strip_prefix("ready ").unwrap_or_default().to_string();
    assert!(id.starts_with("sb-"), "unexpected first line: {line:?}");
    wait_for("the sleeps to start", Duration::from_secs(10), || {
        !pids_matching(&format!("sleep {tag}")).is_empty()
            && !pids_matching(&format!("sleep {}", tag + 1)).is_empty()
    });
    (seer, id)
}

fn signal_ends_everything(sig: Signal, tag: u32, want_code: i32) {
    let env = Env::new();
    let (mut seer, id) = start_blocked(&env, tag);
    let sent = Instant::now();
    let status = seer.signal(sig);
    wait_for("sandbox processes to go", Duration::from_secs(2), || {
        pids_matching(&format!("sleep {tag}")).is_empty()
            && pids_matching(&format!("sleep {}", tag + 1)).is_empty()
    });
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(status.code(), Some(want_code));
    assert_eq!(
        seer.all(Stream::Err),
        [
            "",
            "stopping: ending the script and its sandboxes…",
            "interrupted: the script was stopped and its sandboxes ended"
        ]
    );
    assert_eq!(seer.all(Stream::Out), [format!("ready {id}")]);
    // The record says it ended; ps lists nothing live.
    assert_eq!(ps(&env, false), Vec::<Vec<String>>::new());
    let dir = env.home.join("sandboxes").join(&id);
    let owner = seer.child.id().to_string();
    assert_eq!(
        ps(&env, true),
        [cols(&[
            &id,
            "local",
            "terminated",
            "<age>",
            &owner,
            "(gone)",
            "-",
            &dir.to_string_lossy()
        ])]
    );
}

#[test]
fn ctrl_c_ends_all_sandbox_processes_within_2s() {
    signal_ends_everything(Signal::SIGINT, 41001, 130);
}

#[test]
fn sigterm_ends_all_sandbox_processes_within_2s() {
    signal_ends_everything(Signal::SIGTERM, 41011, 143);
}

/// Starts `seer run` on a script whose sandbox (config `cfg`) leaves `sleep <marker>` running
/// in the background, then waits in the script; returns seer and the sandbox id once the
/// sandbox is ready.
fn start_with_orphan(env: &Env, cfg: &str, marker: u32) -> (Running, String) {
    let mut seer = env.spawn(&format!(
        "let sb = Sandbox({cfg}).start();\nsb.exec(\"sleep {marker} > /dev/null 2>&1 &\");\nprint(`ready ${{sb.id}}`);\nsleep(300);\n"
    ));
    let line = seer.next_line(120);
    let id = line.strip_prefix("ready ").unwrap_or_default().to_string();
    assert!(id.starts_with("sb-"), "unexpected first line: {line:?}");
    (seer, id)
}

#[test]
fn ps_lists_and_gc_ends_orphans_of_a_killed_seer() {
    let env = Env::new();
    let (mut seer, id) = start_with_orphan(&env, "#{}", 41021);
    let sleeper = pids_matching("sleep 41021");
    assert_eq!(sleeper.len(), 1);

    // PIDS lists process groups: the orphan's group is the one of the command that started it.
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", sleeper[0])).unwrap();
    let pgid = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_string();
    let rows = ps(&env, false);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let groups: Vec<&str> = rows[0][5].split(',').collect();
    assert!(
        groups.contains(&pgid.as_str()),
        "process group {pgid} missing: {rows:?}"
    );
    let dir = env.home.join("sandboxes").join(&id);
    let owner = seer.child.id().to_string();
    let row = |status: &str, owner: &[&str]| {
        let mut r = cols(&[&id, "local", status, "<age>"]);
        r.extend(cols(owner));
        r.extend(cols(&[&rows[0][5], &dir.to_string_lossy()]));
        r
    };
    assert_eq!(rows, [row("running", &[&owner])]);

    // SIGKILL: seer gets no chance to clean up.
    seer.child.kill().unwrap();
    seer.child.wait().unwrap();
    assert_eq!(
        pids_matching("sleep 41021").len(),
        1,
        "the orphan should still be there"
    );
    assert_eq!(ps(&env, false), [row("running", &[&owner, "(gone)"])]);

    let gc = ok(&env.cmd().arg("gc").output().unwrap());
    assert_eq!(gc, format!("ended {id}\n"));
    wait_for("the orphan to go", Duration::from_secs(2), || {
        pids_matching("sleep 41021").is_empty()
    });
    assert_eq!(ps(&env, false), Vec::<Vec<String>>::new());
    assert_eq!(
        ok(&env.cmd().arg("gc").output().unwrap()),
        "no orphaned sandboxes\n"
    );
}

#[test]
fn timeout_watchdog_ends_a_detached_sandbox() {
    let env = Env::new();
    let out = env.run(
        "let sb = Sandbox(#{ timeout: 2 }).start();\nsb.exec(\"sleep 41031 > /dev/null 2>&1 &\");\nsb.detach();\nprint(sb.id);\n",
        &[],
    );
    let id = ok(&out).trim().to_string();
    // Detached: the run ended but the sandbox and its process live on...
    assert_eq!(pids_matching("sleep 41031").len(), 1);
    let rows = ps(&env, false);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][..3], cols(&[&id, "local", "running"]), "{rows:?}");
    // ...and reconnecting works while it lives.
    let out = env.run(
        &format!("let sb = Sandbox::from_id(\"{id}\");\nprint(sb.exec(\"echo again\"));"),
        &[],
    );
    assert_eq!(ok(&out), "again\n\n");
    // ...until the watchdog ends it at its deadline.
    wait_for("the watchdog", Duration::from_secs(6), || {
        pids_matching("sleep 41031").is_empty()
    });
    // The watchdog kills first, then records why.
    wait_for(
        "the record to say timed_out",
        Duration::from_secs(2),
        || {
            ps(&env, true)
                .iter()
                .any(|r| r[0] == id && r[2] == "timed_out")
        },
    );
    // ...and exits right after recording it.
    wait_gone(
        &format!(
            "__watchdog {}",
            env.home.join("sandboxes").join(&id).display()
        ),
        Duration::from_secs(2),
    );
}

#[test]
fn the_watchdog_ends_the_processes_of_a_sandbox_whose_folder_was_removed() {
    let env = Env::new();
    let out = env.run(
        "let sb = Sandbox(#{ timeout: 300 }).start();\nsb.exec(\"sleep 41034 > /dev/null 2>&1 &\");\nsb.detach();\nprint(sb.id);\n",
        &[],
    );
    let id = ok(&out).trim().to_string();
    assert_eq!(pids_matching("sleep 41034").len(), 1);
    let dir = env.home.join("sandboxes").join(&id);
    // The sandbox's cgroups (a memory and a pids group on these hosts).
    let cgroups: Vec<std::path::PathBuf> = std::fs::read_to_string(dir.join("cgroups"))
        .unwrap()
        .lines()
        .map(std::path::PathBuf::from)
        .collect();
    assert!(
        !cgroups.is_empty() && cgroups.iter().all(|c| c.is_dir()),
        "{cgroups:?}"
    );
    // Removed under it (a test's temp dir, a cleaned state dir): nothing could find the
    // sandbox's processes any more, so the watchdog ends them and itself, and removes the
    // cgroups it read before.
    std::fs::remove_dir_all(&dir).unwrap();
    wait_gone("sleep 41034", Duration::from_secs(5));
    wait_gone(
        &format!("__watchdog {}", dir.display()),
        Duration::from_secs(2),
    );
    assert!(!dir.exists(), "the folder was made again");
    let left: Vec<&std::path::PathBuf> = cgroups.iter().filter(|c| c.exists()).collect();
    assert!(left.is_empty(), "cgroups left: {left:?}");
}

#[test]
fn version_and_verbose_logging() {
    let env = Env::new();
    let out = env.cmd().arg("--version").output().unwrap();
    assert_eq!(ok(&out), format!("seer {}\n", env!("CARGO_PKG_VERSION")));
    env.write("main.rhai", "Sandbox(#{}).start();");
    let out = env.cmd().args(["-v", "run", "main.rhai"]).output().unwrap();
    let (_, err) = text(&out);
    assert!(out.status.success());
    // Log lines without colours and timestamps: the sandbox starts, its Python env
    // (built or found in the cache), the sandbox ends.
    let log: Vec<String> = err.lines().map(plain_log).collect();
    let id = log[0]
        .split('"')
        .nth(1)
        .unwrap_or_else(|| panic!("{err}"))
        .to_string();
    let env_line = log.get(1).map(String::as_str).unwrap_or_default();
    assert!(
        [
            "INFO python env: cache hit key=\"py3.11-",
            "INFO python env: created key=\"py3.11-"
        ]
        .iter()
        .any(|p| env_line.starts_with(p)),
        "{err}"
    );
    assert_eq!(
        log,
        [
            format!(
                "INFO starting local sandbox id=\"{id}\" dir={}",
                env.home.join("sandboxes").join(&id).display()
            ),
            env_line.to_string(),
            format!("INFO sandbox terminated id=\"{id}\""),
        ]
    );
    let out = env.cmd().args(["run", "main.rhai"]).output().unwrap();
    assert_eq!(text(&out).1, "", "quiet by default");
}

#[test]
fn the_watchdog_ends_the_sandbox_of_a_killed_seer() {
    let env = Env::new();
    let (mut seer, id) = start_with_orphan(&env, "#{ timeout: 600 }", 41033);
    assert_eq!(pids_matching("sleep 41033").len(), 1);
    // SIGKILL: seer cannot clean up; the watchdog (own process group) notices.
    seer.child.kill().unwrap();
    seer.child.wait().unwrap();
    wait_for(
        "the watchdog to end the orphan",
        Duration::from_secs(5),
        || pids_matching("sleep 41033").is_empty(),
    );
    // The record is saved once the process groups are gone.
    wait_for("the record to say orphaned", Duration::from_secs(5), || {
        ps(&env, true)
            .iter()
            .any(|r| r[0] == id && r[2] == "orphaned")
    });
}
