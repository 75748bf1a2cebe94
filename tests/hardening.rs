//! Regression tests for the "Isolation and secrets" hardening: private modes for what holds
//! a secret, workspace paths that do not follow links out, names checked before they become
//! file names, zombie owners, broken pipes, `Skill(...)`, an unwritable `run.json`, NUL
//! bytes in `env`, and the Rhai limits.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{Env, ok};

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{p:?}: {e}"))
        .permissions()
        .mode()
        & 0o777
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

const IFACE: &str =
    "def add(a: int, b: int) -> int:\n    \"\"\"Adds.\"\"\"\n    return a + b\n\nexpose(add)\n";

#[test]
fn state_dir_run_folder_connection_files_and_client_modules_are_private() {
    let env = Env::new();
    env.write("iface.py", IFACE);
    let out = env.run(
        r#"
let sb = Sandbox(#{ execution_mode: "notebook" }).start();
let s = create_notebook_session(sb, (), #{ name: "probe" });
s.exec("1");
let scoped = ScopedSandbox().start();
let skill = scoped.serve("iface.py", #{ expose_as: "skill", name: "tools" });
let lib = scoped.serve("iface.py", #{ name: "tools2" });
let s2 = create_notebook_session(sb, Workspace(#{ libraries: [lib] }), #{ name: "withlib" });
print(s2.exec_or_throw("import tools2; tools2.add(2, 3)").text);
print(sb.state_dir);
print(run_dir());
"#,
        &[],
    );
    let stdout = ok(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "5", "{stdout}");
    let n = lines.len();
    let sb_dir = PathBuf::from(lines[n - 2]);
    let run_dir = env.path().join(lines[n - 1]);
    assert_eq!(mode(&env.home), 0o700, "state dir; stdout: {stdout}");
    assert_eq!(mode(&sb_dir), 0o700, "sandbox dir");
    assert_eq!(mode(&run_dir), 0o700, "run folder");
    let files = walk(&env.home);
    let conn: Vec<&PathBuf> = files
        .iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("kernel-") && n.ends_with(".json")
        })
        .collect();
    assert!(conn.len() >= 2, "no connection files in {files:?}");
    for p in &conn {
        assert_eq!(mode(p), 0o600, "{}", p.display());
        assert!(std::fs::read_to_string(p).unwrap().contains("\"key\""));
    }
    // Generated client modules hold the RPC token: the skill's copy and the library's.
    let clients: Vec<&PathBuf> = files
        .iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n == "tools.py" || n == "tools2.py")
        })
        .collect();
    assert!(clients.len() >= 2, "no client modules in {files:?}");
    for p in &clients {
        assert!(std::fs::read_to_string(p).unwrap().contains("TOKEN"));
        assert_eq!(mode(p), 0o600, "{}", p.display());
    }
}

#[test]
fn planted_links_are_not_followed_by_file_methods_or_snapshots() {
    let env = Env::new();
    let host_file = env.write("host/secret.txt", "host secret");
    let host_dir = host_file.parent().unwrap().to_path_buf();
    let out = env.run(
        r#"
let sb = Sandbox().start();
sb.exec(`ln -s ${ARGS[0]} report.md && ln -s ${ARGS[1]} hostdir && ln -s inner.txt alias.txt`);
sb.write_file("inner.txt", "inner");
try { sb.write_file("report.md", "agent text"); print("wrote"); } catch (e) { print(e); }
try { print(sb.read_file("report.md")); } catch (e) { print(e); }
try { sb.write_file("hostdir/new.txt", "x"); print("wrote"); } catch (e) { print(e); }
try { sb.ensure_dir("hostdir/sub"); print("made"); } catch (e) { print(e); }
try { sb.exec("touch ran-here", #{ cwd: "hostdir" }); print("ran"); } catch (e) { print(e); }
print(sb.read_file("alias.txt"));
let snap = sb.snapshot("with links");
print(snap);
let sb2 = Sandbox::from_snapshot(snap).start();
print(sb2.exec("readlink report.md; readlink hostdir; cat alias.txt"));
"#,
        &[host_file.to_str().unwrap(), host_dir.to_str().unwrap()],
    );
    let stdout = ok(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    for l in &lines[..5] {
        assert!(
            l.contains("symbolic link") && l.contains("out of the sandbox workspace"),
            "{stdout}"
        );
    }
    assert!(
        lines[0].contains("`report.md` is a symbolic link to"),
        "{stdout}"
    );
    assert!(lines[0].contains(host_file.to_str().unwrap()), "{stdout}");
    assert_eq!(lines[5], "inner");
    assert_eq!(std::fs::read_to_string(&host_file).unwrap(), "host secret");
    assert!(
        !host_dir.join("new.txt").exists()
            && !host_dir.join("sub").exists()
            && !host_dir.join("ran-here").exists()
    );
    // The snapshot holds the links, not the host files they point to.
    let snap = env.home.join("snapshots").join(lines[6]).join("workspace");
    assert!(
        std::fs::symlink_metadata(snap.join("report.md"))
            .unwrap()
            .is_symlink()
    );
    assert!(
        std::fs::symlink_metadata(snap.join("hostdir"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(mode(&env.home.join("snapshots").join(lines[6])), 0o700);
    assert_eq!(
        lines[7..10],
        [
            host_file.to_str().unwrap(),
            host_dir.to_str().unwrap(),
            "inner"
        ]
    );
}

fn wait_for(what: &str, timeout: std::time::Duration, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_zombie_owner_counts_as_gone_for_gc_and_the_watchdog() {
    use std::io::{BufRead, BufReader};
    use std::time::Duration;
    let env = Env::new();
    env.write(
        "main.rhai",
        "let a = Sandbox(#{ timeout: 0 }).start();\nlet b = Sandbox(#{ timeout: 600 }).start();\nprint(a.id + \" \" + b.id);\nsleep(300);\n",
    );
    let mut child = env
        .cmd()
        .args(["run", "main.rhai"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let (a, b) = line.trim().split_once(' ').unwrap();
    // SIGKILL and no wait: seer stays a zombie of this test process, with its start time.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for("seer to be a zombie", Duration::from_secs(5), || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
        stat[stat.rfind(')').unwrap() + 2..].starts_with('Z')
    });
    let ps = |all: bool| {
        let mut c = env.cmd();
        c.arg("ps");
        if all {
            c.arg("--all");
        }
        ok(&c.output().unwrap())
    };
    // The watchdog of `b` sees its owner gone and ends it.
    wait_for("the watchdog to end b", Duration::from_secs(10), || {
        !ps(false).contains(b)
    });
    assert!(ps(false).contains(a), "{}", ps(false));
    assert!(ps(false).contains("(gone)"), "{}", ps(false));
    let gc = ok(&env.cmd().arg("gc").output().unwrap());
    assert_eq!(gc, format!("ended {a}\n"));
    assert!(!ps(false).contains(a));
    child.wait().unwrap();
}

/// A `Stdio` whose reader is already gone: every write to it fails with a broken pipe.
fn closed_pipe() -> (std::process::Stdio, std::process::Stdio) {
    let (r, w) = nix::unistd::pipe().unwrap();
    drop(r);
    let w2 = w.try_clone().unwrap();
    (w.into(), w2.into())
}

fn run_json(env: &Env) -> serde_json::Value {
    let outputs = env.path().join("outputs");
    let dir = std::fs::read_dir(&outputs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    serde_json::from_slice(&std::fs::read(dir.path().join("run.json")).unwrap()).unwrap()
}

#[test]
fn a_closed_stdout_ends_output_quietly() {
    // `seer run x.rhai | head -1`: the script goes on and the run keeps its own code.
    let env = Env::new();
    env.write(
        "main.rhai",
        "for i in 0..200 { print(`line ${i}`); }\ndebug(\"dbg\");\nwrite_file(\"done.txt\", \"yes\");\n",
    );
    let (out, _) = closed_pipe();
    let o = env
        .cmd()
        .args(["run", "main.rhai"])
        .stdout(out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(env.path().join("done.txt")).unwrap(),
        "yes"
    );
    assert_eq!(run_json(&env)["status"], "ok");

    // Both streams closed (`2>&1 | head -1`) and a failing script: its own code, 1.
    let env = Env::new();
    env.write("main.rhai", "print(\"a\");\nthrow \"boom\";\n");
    let (out, err) = closed_pipe();
    let o = env
        .cmd()
        .args(["run", "main.rhai"])
        .stdout(out)
        .stderr(err)
        .status()
        .unwrap();
    assert_eq!(o.code(), Some(1));
    assert_eq!(run_json(&env)["status"], "error");

    // `seer ps --all | head -1`, `seer docs | head -1`, `seer gc | head -1`: exit 0.
    let env = Env::new();
    env.write("main.rhai", "Sandbox().start();\n");
    ok(&env.cmd().args(["run", "main.rhai"]).output().unwrap());
    for args in [
        &["ps", "--all"][..],
        &["ps", "--all", "--json"],
        &["docs"],
        &["gc"],
        &["check", "main.rhai"],
    ] {
        let (out, _) = closed_pipe();
        let o = env.cmd().args(args).stdout(out).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn skills_are_constructible_from_rhai() {
    let env = Env::new();
    let out = env.run(
        r#"
let a = Skill(#{ name: "probe-steps", description: "How to probe", body: "1. Look." });
let b = Skill::from_text("other", "d", "b");
let c = Skill(#{ name: "bare" });
print(a.name + " " + a.description + " " + a.body);
print(b.name + " " + c.name + " [" + c.body + "]");
let s = create_local_session(Workspace(#{ skills: [a, b] }));
print(s.exec("cat .claude/skills/probe-steps/SKILL.md"));
"#,
        &[],
    );
    let stdout = ok(&out);
    assert!(
        stdout.starts_with("probe-steps How to probe 1. Look.\nother bare []\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("name: probe-steps") && stdout.contains("1. Look."),
        "{stdout}"
    );
    let docs = ok(&env.cmd().arg("docs").output().unwrap());
    assert!(
        docs.contains("Skill::from_text") && docs.contains("Skill(cfg"),
        "docs"
    );
    assert!(
        !docs.contains("Skill::new"),
        "Skill::new cannot be called from Rhai"
    );
}

#[test]
fn an_unwritable_run_json_fails_the_run_and_keeps_its_files() {
    let env = Env::new();
    // `run.json` is a folder, so the record cannot be written.
    let out = env.run(
        "import \"seer/outputs\" as out;\nwrite_file(path_join(run_dir(), \"run.json/blocker\"), \"\");\nout::save_markdown(\"notes.md\", \"kept\");\n",
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: could not write the run record ") && err.contains("run.json"),
        "{err}"
    );
    let run = std::fs::read_dir(env.path().join("outputs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(
        std::fs::read_to_string(run.join("notes.md")).unwrap(),
        "kept"
    );
}

#[test]
fn a_bad_limit_variable_is_a_clear_error() {
    let env = Env::new();
    env.write("main.rhai", "print(1);\n");
    let out = env
        .cmd()
        .args(["run", "main.rhai"])
        .env("SEER_MAX_STRING_SIZE", "lots")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: SEER_MAX_STRING_SIZE=\"lots\" is not a whole number"),
        "{err}"
    );
    // Raised limits let a big string through.
    env.write(
        "main.rhai",
        "let s = \"x\";\nfor i in 0..12 { s += s; }\nprint(s.len());\n",
    );
    let small = env
        .cmd()
        .args(["run", "main.rhai"])
        .env("SEER_MAX_STRING_SIZE", "1000")
        .output()
        .unwrap();
    assert_eq!(small.status.code(), Some(1));
    assert_eq!(
        ok(&env.cmd().args(["run", "main.rhai"]).output().unwrap()),
        "4096\n"
    );
}
