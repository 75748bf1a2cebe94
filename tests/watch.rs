//! `seer run --watch`: a save reruns the script; the rerun reuses the warm sandbox and
//! its kernel (a Python variable set by the previous run is still there); a burst of
//! saves gives one rerun; a script that no longer compiles waits for the next save with
//! everything kept warm; a changed sandbox config starts a new sandbox and ends the old
//! one; Ctrl-C ends the watch and every process it started.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use std::time::Duration;

use common::fake_anthropic::FakeAnthropic;
use common::{Env, Running, Stream, read_jsonl, wait_gone};

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
    let mut c = env.cmd();
    c.args(["run", "--watch", "main.rhai"]);
    let mut seer = Running::start(c);
    let first = seer.expect("run sandbox=", 120);
    assert_eq!(field(&first, "n"), "1");
    assert_eq!(field(&first, "task"), "first");
    let id = field(&first, "sandbox").to_string();
    seer.expect("[watch] run finished", 10);

    // Save the script the way editors do: a new file renamed over the old one.
    let tmp = env.write(".main.rhai.swp", &format!("{SCRIPT}\n// edited\n"));
    std::fs::rename(&tmp, env.path().join("main.rhai")).unwrap();
    let second = seer.expect("run sandbox=", 60);
    assert_eq!(field(&second, "sandbox"), id, "the warm sandbox is reused");
    assert_eq!(field(&second, "n"), "2", "the kernel kept `n`");
    seer.expect("[watch] run finished", 10);

    // A file the script read: editing it reruns too. A burst of saves: one rerun.
    for i in 0..5 {
        env.write("task.md", &format!("burst{i} task"));
        std::thread::sleep(Duration::from_millis(20));
    }
    let third = seer.expect("run sandbox=", 60);
    assert_eq!(field(&third, "task"), "burst4");
    assert_eq!(field(&third, "n"), "3");
    seer.expect("[watch] run finished", 10);
    std::thread::sleep(Duration::from_millis(700));
    for (_, l) in seer.unread() {
        assert!(
            !l.contains("run sandbox="),
            "a second rerun for one burst: {l}"
        );
    }

    // A broken script: the error with its position, no rerun, everything kept warm.
    env.write("main.rhai", "let x = ;\n");
    assert_eq!(
        seer.expect("main.rhai:1:", 30),
        "error: main.rhai:1:9: Unexpected ';'"
    );
    assert_eq!(
        seer.expect("[watch] not rerun", 5),
        "[watch] not rerun: fix the script and save"
    );
    env.write("main.rhai", SCRIPT);
    let fixed = seer.expect("run sandbox=", 60);
    assert_eq!(field(&fixed, "sandbox"), id);
    assert_eq!(field(&fixed, "n"), "4");
    seer.expect("[watch] run finished", 10);

    // Another sandbox config: a new sandbox; the old one is ended after the clean run.
    env.write(
        "main.rhai",
        &SCRIPT.replace(
            "execution_mode: \"notebook\"",
            "execution_mode: \"notebook\", env: #{ X: \"1\" }",
        ),
    );
    let changed = seer.expect("run sandbox=", 120);
    assert_ne!(field(&changed, "sandbox"), id);
    assert_eq!(field(&changed, "n"), "1", "a fresh kernel");
    assert_eq!(
        seer.expect(&format!("ended sandbox {id}"), 10),
        format!("[watch] ended sandbox {id}: this run did not use it")
    );
    let new_id = field(&changed, "sandbox").to_string();
    seer.expect("[watch] run finished", 10);

    // Ctrl-C (between runs): the watch ends with everything it started.
    seer.ctrl_c();
    wait_gone(&env.home.to_string_lossy(), Duration::from_secs(5));
    // All it printed: a line per run; on stderr, the watch's own lines and the error.
    let run = |id: &str, n: u32, task: &str| format!("run sandbox={id} n={n} task={task} task");
    assert_eq!(
        seer.all(Stream::Out),
        [
            run(&id, 1, "first"),
            run(&id, 2, "first"),
            run(&id, 3, "burst4"),
            run(&id, 4, "burst4"),
            run(&new_id, 1, "burst4"),
        ]
    );
    let finished = "[watch] run finished; waiting for changes (Ctrl-C to stop)";
    let rerunning = "[watch] rerunning main.rhai";
    assert_eq!(
        seer.all(Stream::Err),
        [
            finished,
            rerunning,
            finished,
            rerunning,
            finished,
            "error: main.rhai:1:9: Unexpected ';'",
            "[watch] not rerun: fix the script and save",
            rerunning,
            finished,
            rerunning,
            &format!("[watch] ended sandbox {id}: this run did not use it"),
            finished,
            "",
            "stopping: ending the script and its sandboxes…",
            "[watch] stopped; every sandbox it started has ended",
        ]
    );
}

#[test]
fn a_save_cancels_a_running_agent_and_its_transcript_stays_valid() {
    let fake = FakeAnthropic::hanging();
    let env = Env::new();
    let script = "print(\"agent starting\");\nrun_agent(#{ user_message: \"think\", tools: \"none\", base_url: ARGS[0], name: \"slow\" });\n";
    env.write("main.rhai", script);
    let mut c = env.agent_cmd();
    c.args(["run", "--watch", "main.rhai", "--", &fake.url]);
    let mut seer = Running::start(c);
    seer.expect("[slow] turn 1/", 60);
    let started = std::time::Instant::now();
    env.write("main.rhai", &format!("{script}// edited\n"));
    seer.expect("[watch] change: stopping", 10);
    seer.expect("[watch] rerunning", 10);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    seer.expect("agent starting", 10);
    // Ctrl-C once the second run's agent is waiting on the provider too.
    seer.expect("[slow] turn 1/", 10);
    seer.ctrl_c();
    assert_eq!(seer.all(Stream::Out), ["agent starting", "agent starting"]);
    let turn = "[slow] turn 1/60 · 0 in / 0 out tokens";
    assert_eq!(
        seer.all(Stream::Err),
        [
            turn,
            "[watch] change: stopping the running script",
            "[watch] rerunning main.rhai",
            turn,
            "",
            "stopping: ending the script and its sandboxes…",
            "[watch] run interrupted; waiting for changes (Ctrl-C to stop)",
            "[watch] stopped; every sandbox it started has ended",
        ]
    );
    // Every transcript is valid JSONL; each ends with its error line: both runs were
    // cancelled mid-request.
    let last_lines: Vec<serde_json::Value> = env
        .runs()
        .iter()
        .map(|run| run.join("transcripts/slow.jsonl"))
        .filter(|t| t.exists())
        .map(|t| read_jsonl(&t).pop().unwrap())
        .collect();
    let cancelled = serde_json::json!({"type": "error", "message": "anthropic: cancelled"});
    assert_eq!(last_lines, [cancelled.clone(), cancelled]);
}
