//! Process lifecycle: Ctrl-C and SIGTERM end every sandbox process quickly, `seer gc`
//! ends orphans of a killed seer, `seer ps` lists live sandboxes, the timeout watchdog
//! ends a detached sandbox.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Env, ok, pids_matching, text};

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `seer run` on a script that prints "ready" and then blocks in a long exec
/// whose process tree includes `sleep <tag>` and a backgrounded grandchild `sleep <tag+1>`.
fn start_blocked(env: &Env, tag: u32) -> (std::process::Child, String) {
    env.write(
        "main.rhai",
        &format!(
            "let sb = Sandbox(#{{}}).start();\nprint(`ready ${{sb.id}}`);\nsb.exec(\"(sleep {} &) ; sleep {tag}\");\nprint(\"not reached\");\n",
            tag + 1
        ),
    );
    let mut child = env
        .cmd()
        .args(["run", "main.rhai"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("ready sb-"),
        "unexpected first line: {line:?}"
    );
    let id = line.trim().trim_start_matches("ready ").to_string();
    wait_for("the sleeps to start", Duration::from_secs(10), || {
        !pids_matching(&format!("sleep {tag}")).is_empty()
            && !pids_matching(&format!("sleep {}", tag + 1)).is_empty()
    });
    (child, id)
}

fn signal_ends_everything(sig: nix::sys::signal::Signal, tag: u32, want_code: i32) {
    let env = Env::new();
    let (mut child, id) = start_blocked(&env, tag);
    let sent = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
    let status = child.wait().unwrap();
    wait_for("sandbox processes to go", Duration::from_secs(2), || {
        pids_matching(&format!("sleep {tag}")).is_empty()
            && pids_matching(&format!("sleep {}", tag + 1)).is_empty()
    });
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(status.code(), Some(want_code));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("interrupted: the script was stopped and its sandboxes ended"),
        "{err}"
    );
    // The record says it ended; ps lists nothing live.
    let ps = ok(&env.cmd().arg("ps").output().unwrap());
    assert!(!ps.contains(&id), "{ps}");
    let all = ok(&env.cmd().args(["ps", "--all"]).output().unwrap());
    assert!(all.contains(&id) && all.contains("terminated"), "{all}");
}

#[test]
fn ctrl_c_ends_all_sandbox_processes_within_2s() {
    signal_ends_everything(nix::sys::signal::Signal::SIGINT, 41001, 130);
}

#[test]
fn sigterm_ends_all_sandbox_processes_within_2s() {
    signal_ends_everything(nix::sys::signal::Signal::SIGTERM, 41011, 143);
}

/// Starts `seer run` on a script whose sandbox (config `cfg`) leaves `sleep <marker>` running
/// in the background, then waits in the script; returns the child and the sandbox id once
/// the sandbox is ready.
fn start_with_orphan(env: &Env, cfg: &str, marker: u32) -> (std::process::Child, String) {
    env.write(
        "main.rhai",
        &format!(
            "let sb = Sandbox({cfg}).start();\nsb.exec(\"sleep {marker} > /dev/null 2>&1 &\");\nprint(`ready ${{sb.id}}`);\nsleep(300);\n"
        ),
    );
    let mut child = env
        .cmd()
        .args(["run", "main.rhai"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().trim_start_matches("ready ").to_string())
}

#[test]
fn ps_lists_and_gc_ends_orphans_of_a_killed_seer() {
    let env = Env::new();
    let (mut child, id) = start_with_orphan(&env, "#{}", 41021);
    let sleeper = pids_matching("sleep 41021");
    assert_eq!(sleeper.len(), 1);

    let ps = ok(&env.cmd().arg("ps").output().unwrap());
    let row = ps
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{id} not in\n{ps}"));
    assert!(row.contains(" local ") && row.contains("running"), "{row}");
    assert!(
        row.contains(&child.id().to_string()),
        "owner pid missing: {row}"
    );
    // PIDS lists process groups: the orphan's group is the one of the command that started it.
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", sleeper[0])).unwrap();
    let pgid = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_string();
    assert!(row.contains(&pgid), "process group {pgid} missing: {row}");

    // SIGKILL: seer gets no chance to clean up.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        pids_matching("sleep 41021").len(),
        1,
        "the orphan should still be there"
    );
    let ps = ok(&env.cmd().arg("ps").output().unwrap());
    assert!(ps.contains("(gone)"), "{ps}");

    let gc = ok(&env.cmd().arg("gc").output().unwrap());
    assert_eq!(gc, format!("ended {id}\n"));
    wait_for("the orphan to go", Duration::from_secs(2), || {
        pids_matching("sleep 41021").is_empty()
    });
    let ps = ok(&env.cmd().arg("ps").output().unwrap());
    assert!(!ps.contains(&id), "{ps}");
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
    assert!(ok(&env.cmd().arg("ps").output().unwrap()).contains(&id));
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
            let all = ok(&env.cmd().args(["ps", "--all"]).output().unwrap());
            all.lines()
                .any(|l| l.starts_with(&id) && l.contains("timed_out"))
        },
    );
    assert!(
        pids_matching(&format!(
            "__watchdog {}",
            env.home.join("sandboxes").join(&id).display()
        ))
        .is_empty()
    );
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
    assert!(
        err.contains("starting local sandbox") && err.contains("sandbox terminated"),
        "{err}"
    );
    let out = env.cmd().args(["run", "main.rhai"]).output().unwrap();
    assert_eq!(text(&out).1, "", "quiet by default");
}

#[test]
fn the_watchdog_ends_the_sandbox_of_a_killed_seer() {
    let env = Env::new();
    let (mut child, _) = start_with_orphan(&env, "#{ timeout: 600 }", 41033);
    assert_eq!(pids_matching("sleep 41033").len(), 1);
    // SIGKILL: seer cannot clean up; the watchdog (own process group) notices.
    child.kill().unwrap();
    child.wait().unwrap();
    wait_for(
        "the watchdog to end the orphan",
        Duration::from_secs(5),
        || pids_matching("sleep 41033").is_empty(),
    );
    // The record is saved once the process groups are gone.
    wait_for("the record to say orphaned", Duration::from_secs(5), || {
        ok(&env.cmd().args(["ps", "--all"]).output().unwrap()).contains("orphaned")
    });
}
