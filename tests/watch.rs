//! `seer run --watch`: a save reruns the script; the rerun reuses the warm sandbox and
//! its kernel (a Python variable set by the previous run is still there); a burst of
//! saves gives one rerun; a script that no longer compiles waits for the next save with
//! everything kept warm; a changed sandbox config starts a new sandbox and ends the old
//! one; Ctrl-C ends the watch and every process it started.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use common::{Env, pids_matching};

const SCRIPT: &str = r#"
let sb = Sandbox(#{ execution_mode: "notebook" }).start();
let s = create_notebook_session(sb, (), #{ name: "w" });
let r = s.exec("n = globals().get('n', 0) + 1\nprint(n)");
let task = read_file("task.md");
task.trim();
let n = r.text;
n.trim();
print(`run sandbox=${sb.id} n=${n} task=${task}`);
"#;

fn lines(child: &mut std::process::Child) -> Receiver<String> {
    let (tx, rx) = channel();
    let out = BufReader::new(child.stdout.take().unwrap());
    let err = BufReader::new(child.stderr.take().unwrap());
    let t2 = tx.clone();
    std::thread::spawn(move || {
        for l in out.lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    std::thread::spawn(move || {
        for l in err.lines().map_while(Result::ok) {
            let _ = t2.send(format!("stderr: {l}"));
        }
    });
    rx
}

/// The next line containing `want`, with everything seen meanwhile.
fn expect(rx: &Receiver<String>, want: &str, secs: u64, log: &mut Vec<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if let Ok(l) = rx.recv_timeout(left) {
            log.push(l.clone());
            if l.contains(want) {
                return l;
            }
        }
    }
    panic!("{want:?} did not come in {secs}s; saw:\n{}", log.join("\n"));
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap()
}

#[test]
fn watch_reruns_warm_on_save() {
    let env = Env::new();
    env.write("main.rhai", SCRIPT);
    env.write("task.md", "first task");
    let mut child = env
        .cmd()
        .args(["run", "--watch", "main.rhai"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines(&mut child);
    let mut log = vec![];
    let first = expect(&rx, "run sandbox=", 120, &mut log);
    assert_eq!(field(&first, "n"), "1");
    assert_eq!(field(&first, "task"), "first");
    let id = field(&first, "sandbox").to_string();
    expect(&rx, "[watch] run finished", 10, &mut log);

    // Save the script the way editors do: a new file renamed over the old one.
    let tmp = env.write(".main.rhai.swp", &format!("{SCRIPT}\n// edited\n"));
    std::fs::rename(&tmp, env.path().join("main.rhai")).unwrap();
    let second = expect(&rx, "run sandbox=", 60, &mut log);
    assert_eq!(field(&second, "sandbox"), id, "the warm sandbox is reused");
    assert_eq!(field(&second, "n"), "2", "the kernel kept `n`");
    expect(&rx, "[watch] run finished", 10, &mut log);

    // A file the script read: editing it reruns too. A burst of saves: one rerun.
    for i in 0..5 {
        env.write("task.md", &format!("burst{i} task"));
        std::thread::sleep(Duration::from_millis(20));
    }
    let third = expect(&rx, "run sandbox=", 60, &mut log);
    assert_eq!(field(&third, "task"), "burst4");
    assert_eq!(field(&third, "n"), "3");
    expect(&rx, "[watch] run finished", 10, &mut log);
    std::thread::sleep(Duration::from_millis(700));
    while let Ok(l) = rx.try_recv() {
        assert!(
            !l.contains("run sandbox="),
            "a second rerun for one burst: {l}"
        );
        log.push(l);
    }

    // A broken script: the error with its position, no rerun, everything kept warm.
    env.write("main.rhai", "let x = ;\n");
    expect(&rx, "main.rhai:1:", 30, &mut log);
    expect(&rx, "[watch] not rerun", 5, &mut log);
    env.write("main.rhai", SCRIPT);
    let fixed = expect(&rx, "run sandbox=", 60, &mut log);
    assert_eq!(field(&fixed, "sandbox"), id);
    assert_eq!(field(&fixed, "n"), "4");
    expect(&rx, "[watch] run finished", 10, &mut log);

    // Another sandbox config: a new sandbox; the old one is ended after the clean run.
    env.write(
        "main.rhai",
        &SCRIPT.replace(
            "execution_mode: \"notebook\"",
            "execution_mode: \"notebook\", env: #{ X: \"1\" }",
        ),
    );
    let changed = expect(&rx, "run sandbox=", 120, &mut log);
    assert_ne!(field(&changed, "sandbox"), id);
    assert_eq!(field(&changed, "n"), "1", "a fresh kernel");
    expect(&rx, &format!("ended sandbox {id}"), 10, &mut log);

    // Ctrl-C: the watch ends with everything it started.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pids_matching(&env.home.to_string_lossy()).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        pids_matching(&env.home.to_string_lossy()).is_empty(),
        "processes left after the watch"
    );
}

#[test]
fn a_save_cancels_a_running_agent_and_its_transcript_stays_valid() {
    use common::fake_anthropic::{FakeAnthropic, Reply};
    let fake =
        FakeAnthropic::start_with(std::sync::Arc::new(|_, _: &serde_json::Value| Reply::Hang));
    let env = Env::new();
    let script = "print(\"agent starting\");\nrun_agent(#{ prompt: \"think\", base_url: ARGS[0], name: \"slow\" });\n";
    env.write("main.rhai", script);
    let mut child = env
        .cmd()
        .env("ANTHROPIC_API_KEY", "sk-test")
        .args(["run", "--watch", "main.rhai", "--", &fake.url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines(&mut child);
    let mut log = vec![];
    expect(&rx, "[slow] turn 1/", 60, &mut log);
    let started = Instant::now();
    env.write("main.rhai", &format!("{script}// edited\n"));
    expect(&rx, "[watch] change: stopping", 10, &mut log);
    expect(&rx, "[watch] rerunning", 10, &mut log);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    expect(&rx, "agent starting", 10, &mut log);
    // Ctrl-C once the second run's agent is waiting on the provider too.
    expect(&rx, "[slow] turn 1/", 10, &mut log);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    // Every transcript is valid JSONL; the cancelled one ends with its error line.
    let mut ended_with_error = 0;
    for run in std::fs::read_dir(env.path().join("outputs"))
        .unwrap()
        .flatten()
    {
        let t = run.path().join("transcripts/slow.jsonl");
        let Ok(text) = std::fs::read_to_string(&t) else {
            continue;
        };
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", t.display()))
            })
            .collect();
        if lines.last().is_some_and(|l| l["type"] == "error") {
            ended_with_error += 1;
        }
    }
    assert_eq!(ended_with_error, 2, "both runs were cancelled mid-request");
}
