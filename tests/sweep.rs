//! Many agents at once (#20): transcripts of parallel agents never share a file,
//! `parallel` with a cap, `sweep` (items or a grid, a cap, retries, failures recorded,
//! `results.jsonl` and `results.csv`), and `seer run --resume` of a sweep killed halfway.
//! Every run is a real `seer run`; agents talk to a loopback fake of the Anthropic API.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::path::Path;
use std::time::Duration;

use common::fake_anthropic::{FakeAnthropic, Reply, answer};
use common::{Env, error_line, failed, ok, read_json, read_jsonl, wait_for};
use nix::sys::signal::Signal;
use serde_json::{Value, json};

/// `results.jsonl`'s rows without what depends on timing (`started_at`, `ended_at`,
/// `duration_s`, checked to be there), sorted by index.
fn rows_of(path: &Path) -> Vec<Value> {
    let mut rows = read_jsonl(path);
    for r in &mut rows {
        let m = r.as_object_mut().unwrap();
        for k in ["started_at", "ended_at"] {
            let t = m.remove(k).unwrap_or_else(|| panic!("no {k} in {m:?}"));
            assert!(
                chrono::DateTime::parse_from_rfc3339(t.as_str().unwrap()).is_ok(),
                "{t}"
            );
        }
        let d = m.remove("duration_s").unwrap();
        assert!(d.as_f64().unwrap() >= 0.0, "{d}");
    }
    rows.sort_by_key(|r| r["index"].as_u64());
    rows
}

/// The most intervals of `log` (lines `<id> start|end <unix time>`) open at one time.
fn max_overlap(log: &str) -> usize {
    let mut events: Vec<(f64, i32)> = log
        .lines()
        .map(|l| {
            let parts: Vec<&str> = l.split(' ').collect();
            let t: f64 = parts[2].parse().unwrap();
            (t, if parts[1] == "start" { 1 } else { -1 })
        })
        .collect();
    // At one instant, an end before a start: touching intervals do not overlap.
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut open, mut most) = (0i32, 0i32);
    for (_, d) in events {
        open += d;
        most = most.max(open);
    }
    assert_eq!(open, 0, "every start has an end:\n{log}");
    most as usize
}

/// A function of the scripts below: records its start and end in `times.log` around a
/// sleep of `secs`.
const TIMED: &str = r#"
fn timed(id, secs) {
    append_file("times.log", `${id} start ${unix_time()}` + "\n");
    sleep(secs);
    append_file("times.log", `${id} end ${unix_time()}` + "\n");
}
"#;

/// The types of a transcript's records, in order.
fn record_types(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["type"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[test]
fn unnamed_agents_under_parallel_keep_whole_transcripts_of_their_own() {
    // Each agent is answered after what it asked, so a transcript shows whose it is.
    let fake = FakeAnthropic::respond(|_, body| {
        let asked = body["messages"].to_string();
        let n = (1..=6)
            .find(|n| asked.contains(&format!("question {n}")))
            .unwrap_or(0);
        Reply::Sse(answer(&format!("answer {n}")))
    });
    let env = Env::new();
    let (out, stdout, stderr) = env.run_agent_script(
        r#"
fn ask(n, url) { run_agent(#{ user_message: `question ${n}`, tools: "none", base_url: url, live_log: false }) }
let url = ARGS[0];
let rs = parallel([|| ask(1, url), || ask(2, url), || ask(3, url), || ask(4, url), || ask(5, url), || ask(6, url)]);
for r in rs { print(r.final_text + "\t" + r.transcript); }
"#,
        &fake.url,
    );
    assert!(out.status.success(), "{stderr}\n{stdout}");
    let run = env.runs().pop().unwrap();
    let dir = run.join("transcripts");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "agent-2.jsonl",
            "agent-3.jsonl",
            "agent-4.jsonl",
            "agent-5.jsonl",
            "agent-6.jsonl",
            "agent.jsonl"
        ]
    );
    // Each agent's own transcript, whole: its question, its answer, start to done.
    let mut seen = vec![];
    for line in stdout.lines() {
        let (text, path) = line.split_once('\t').unwrap();
        let n: usize = text.strip_prefix("answer ").unwrap().parse().unwrap();
        let records = read_jsonl(&env.path().join(path));
        assert_eq!(
            record_types(&records),
            ["start", "user", "request", "response", "done"],
            "{path}"
        );
        assert_eq!(records[1]["text"], format!("question {n}"), "{path}");
        assert_eq!(
            records[3]["content"][0]["text"],
            format!("answer {n}"),
            "{path}"
        );
        seen.push((n, path.to_string()));
    }
    let numbers: Vec<usize> = seen.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5, 6]);
    let mut paths: Vec<&String> = seen.iter().map(|(_, p)| p).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), 6, "{seen:?}");
}

#[test]
fn parallel_with_a_cap_runs_at_most_that_many_at_once() {
    let env = Env::new();
    let out = env.run(
        &format!(
            r#"{TIMED}
fn work(i) {{ timed(i, 1.0); i * 10 }}
let fns = [];
for i in 0..6 {{ fns.push(Fn("work").curry(i)); }}
print(parallel(fns, #{{ max_parallel: 2 }}));
print(parallel([|| 1, || 2]));
"#
        ),
        &[],
    );
    assert_eq!(ok(&out), "[0, 10, 20, 30, 40, 50]\n[1, 2]\n");
    let log = std::fs::read_to_string(env.path().join("times.log")).unwrap();
    assert_eq!(log.lines().count(), 12, "{log}");
    // Never more than the cap; and the cap is used (1 s per closure leaves a wide margin).
    assert_eq!(max_overlap(&log), 2, "{log}");

    let bad = env.run("parallel([|| 1], #{ max_paralel: 2 });", &[]);
    assert_eq!(
        error_line(&failed(&bad)),
        "error: main.rhai:1:1: parallel: unknown field `max_paralel`; did you mean `max_parallel`? (valid fields: `max_parallel`)"
    );
    let bad = env.run("parallel([|| 1], #{ max_parallel: 0 });", &[]);
    assert_eq!(
        error_line(&failed(&bad)),
        "error: main.rhai:1:1: parallel: `max_parallel` must be at least 1, not 0"
    );
}

#[test]
fn a_sweep_of_agents_records_every_item_and_goes_on_past_a_failure() {
    let fake = FakeAnthropic::respond(|_, body| {
        let asked = body["messages"].to_string();
        let n = (1..=4)
            .find(|n| asked.contains(&format!("question {n}")))
            .unwrap_or(0);
        Reply::Sse(answer(&format!("answer {n}")))
    });
    let env = Env::new();
    let script = r#"
let url = ARGS[0];
let rows = sweep(#{
    items: [#{ n: 1 }, #{ n: 2 }, #{ n: 3 }, #{ n: 4 }],
    max_parallel: 2,
    retries: 1,
    run: |item| {
        if item.n == 3 { throw `no answer to ${item.n}`; }
        if item.n == 4 && !file_exists("tried-4") { write_file("tried-4", ""); throw "flaky"; }
        let r = run_agent(#{ user_message: `question ${item.n}`, tools: "none", base_url: url, live_log: false, name: `q${item.n}` });
        #{ answer: r.final_text, turns: r.turns, tokens: r.usage.output_tokens }
    }
});
print(to_json(rows));
"#;
    let (out, stdout, stderr) = env.run_agent_script(script, &fake.url);
    assert!(out.status.success(), "{stderr}\n{stdout}");
    let (line, text) = script
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("no answer"))
        .unwrap();
    let at = format!("main.rhai:{}:{}", line + 1, text.find("throw").unwrap() + 1);
    let run = env.runs().pop().unwrap();
    let ok_row = |i: u64, n: u64, attempts: u64| {
        json!({"index": i, "item": {"n": n}, "status": "ok", "error": null, "attempts": attempts,
               "result": {"answer": format!("answer {n}"), "turns": 1, "tokens": 5}})
    };
    let want = vec![
        ok_row(0, 1, 1),
        ok_row(1, 2, 1),
        json!({"index": 2, "item": {"n": 3}, "status": "failed", "result": null, "attempts": 2,
               "error": format!("{at}: no answer to 3")}),
        ok_row(3, 4, 2),
    ];
    assert_eq!(rows_of(&run.join("results.jsonl")), want);
    // The script gets the same rows, in item order.
    let mut returned: Vec<Value> = serde_json::from_str(stdout.trim()).unwrap();
    for r in &mut returned {
        for k in ["started_at", "ended_at", "duration_s"] {
            r.as_object_mut().unwrap().remove(k).unwrap();
        }
    }
    assert_eq!(returned, want);
    // The CSV: a header, then one line per item in order (`duration_s`, last, varies).
    let csv = std::fs::read_to_string(run.join("results.csv")).unwrap();
    let cut: Vec<&str> = csv.lines().map(|l| l.rsplit_once(',').unwrap().0).collect();
    assert_eq!(
        cut,
        [
            "index,status,n,answer,tokens,turns,error,attempts",
            "0,ok,1,answer 1,5,1,,1",
            "1,ok,2,answer 2,5,1,,1",
            &format!("2,failed,3,,,,{at}: no answer to 3,2"),
            "3,ok,4,answer 4,5,1,,2",
        ]
    );
    let record = read_json(&run.join("run.json"));
    assert_eq!(
        record["sweeps"],
        json!([{"name": null, "jsonl": "results.jsonl", "csv": "results.csv", "items": 4,
                "ok": 3, "failed": 1, "resumed": 0, "complete": true}])
    );
    assert_eq!(record["resumed"], false);
    let mut transcripts: Vec<String> = std::fs::read_dir(run.join("transcripts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    transcripts.sort();
    assert_eq!(transcripts, ["q1.jsonl", "q2.jsonl", "q4.jsonl"]);
    // The failure and the retry are on the terminal as they happen, then a summary.
    let log: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("[sweep]"))
        .collect();
    assert_eq!(
        log[0],
        format!(
            "[sweep] 4 items, at most 2 at once → outputs/{}/results.jsonl",
            env.the_run()
        )
    );
    assert!(
        log.iter().any(|l| l.starts_with(&format!(
            "[sweep] item 2 {{\"n\":3}} failed (attempt 1 of 2), trying again: {at}: no answer to 3"
        ))),
        "{stderr}"
    );
    assert!(
        log.last()
            .unwrap()
            .starts_with("[sweep] done: 3 ok, 1 failed of 4 in "),
        "{stderr}"
    );
}

#[test]
fn a_grid_sweep_runs_every_combination_at_most_max_parallel_at_once() {
    let env = Env::new();
    let out = env.run(
        &format!(
            r#"{TIMED}
let rows = sweep(#{{
    grid: #{{ layer: [1, 2, 3], alpha: [0.5, 2.0], model: "tiny" }},
    max_parallel: 3,
    name: "steer",
    run: |p| {{ timed(`${{p.layer}}/${{p.alpha}}`, 1.0); #{{ effect: p.layer * p.alpha }} }}
}});
print(rows.len());
"#
        ),
        &[],
    );
    assert_eq!(ok(&out), "6\n");
    let run = env.runs().pop().unwrap();
    let rows = rows_of(&run.join("results-steer.jsonl"));
    let want: Vec<Value> = [(0.5, 1), (0.5, 2), (0.5, 3), (2.0, 1), (2.0, 2), (2.0, 3)]
        .iter()
        .enumerate()
        .map(|(i, (alpha, layer))| {
            json!({"index": i, "item": {"alpha": alpha, "layer": layer, "model": "tiny"},
                   "status": "ok", "result": {"effect": alpha * *layer as f64}, "error": null,
                   "attempts": 1})
        })
        .collect();
    assert_eq!(rows, want);
    assert!(run.join("results-steer.csv").is_file());
    assert!(!run.join("results.jsonl").exists());
    let log = std::fs::read_to_string(env.path().join("times.log")).unwrap();
    assert_eq!(log.lines().count(), 12, "{log}");
    // Never more than the cap; and items did run together (1 s each leaves a wide margin).
    let overlap = max_overlap(&log);
    assert!((2..=3).contains(&overlap), "{overlap}:\n{log}");
}

#[test]
fn sweep_options_are_checked() {
    let env = Env::new();
    let cases = [
        (
            "sweep(#{ items: [1], run: |x| x, max_paralel: 2 });",
            "sweep: unknown field `max_paralel`; did you mean `max_parallel`? (valid fields: `items`, `grid`, `run`, `max_parallel`, `retries`, `name`)",
        ),
        (
            "sweep(#{ items: [1], grid: #{ a: [1] }, run: |x| x });",
            "sweep: give `items` or `grid`, not both",
        ),
        (
            "sweep(#{ items: [1, 2] });",
            "sweep: `run` is missing: the closure each item runs, e.g. `run: |item| #{ score: score(item) }`",
        ),
        (
            "sweep(#{ items: [#{ a: 1 }, 2, #{ a: 1 }], run: |x| x });",
            "sweep: items 0 and 2 are the same ({\"a\":1}); each item must differ (add a field such as `seed` to run one twice)",
        ),
        (
            "sweep(#{ items: [1], run: |x| x, retries: -1 });",
            "sweep: `retries` must be at least 0, not -1",
        ),
        (
            "sweep(#{ items: [1], run: |x| x, name: \"a/b\" });",
            "sweep: `name` contains `/` (a name, not a path): got \"a/b\"; it names a file or folder seer writes, so give a plain name such as \"probe\"",
        ),
        (
            "sweep(#{ items: [1], run: |x| x });\nsweep(#{ items: [2], run: |x| x });",
            "sweep: this run already wrote results.jsonl; give each sweep of a run its own `name`",
        ),
    ];
    for (script, want) in cases {
        let err = failed(&env.run(script, &[]));
        // The call's position: the last line's first column.
        let at = format!("main.rhai:{}:1", script.lines().count());
        assert_eq!(error_line(&err), format!("error: {at}: {want}"), "{script}");
    }
}

#[test]
fn a_sweep_killed_halfway_and_resumed_runs_each_item_once() {
    let env = Env::new();
    let script = r#"
let items = [];
for n in 1..=12 { items.push(#{ n: n }); }
let rows = sweep(#{
    items: items,
    max_parallel: 3,
    run: |item| {
        append_file("starts.log", `${item.n}` + "\n");
        sleep(0.4);
        #{ square: item.n * item.n }
    }
});
print(`${rows.len()} rows`);
"#;
    let mut seer = env.spawn(script);
    let run = || env.runs().pop();
    let rows_now = || {
        run()
            .and_then(|r| std::fs::read_to_string(r.join("results.jsonl")).ok())
            .map(|t| t.lines().filter(|l| l.ends_with('}')).count())
            .unwrap_or(0)
    };
    wait_for("4 items done", Duration::from_secs(60), || rows_now() >= 4);
    seer.signal(Signal::SIGKILL);
    let run = run().unwrap();
    // The rows written before the kill (a line cut by the kill does not count).
    let before: Vec<Value> = std::fs::read_to_string(run.join("results.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(before.len() >= 4 && before.len() < 12, "{before:?}");

    let out = env
        .cmd()
        .args(["run", "--resume", run.to_str().unwrap(), "main.rhai"])
        .output()
        .unwrap();
    assert_eq!(ok(&out), "12 rows\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "[sweep] resuming: {} of 12 items done in the earlier run, {} to run",
            before.len(),
            12 - before.len()
        )),
        "{stderr}"
    );
    // One run folder, every item once, ok, with its result; the rows of before as they were.
    assert_eq!(env.runs(), std::slice::from_ref(&run));
    let after = read_jsonl(&run.join("results.jsonl"));
    let mut indices: Vec<u64> = after.iter().map(|r| r["index"].as_u64().unwrap()).collect();
    indices.sort();
    assert_eq!(indices, (0..12).collect::<Vec<u64>>());
    for r in &after {
        let n = r["item"]["n"].as_i64().unwrap();
        assert_eq!(r["index"], n - 1);
        assert_eq!(r["status"], "ok");
        assert_eq!(r["result"], json!({"square": n * n}));
    }
    for b in &before {
        assert!(after.contains(b), "{b} lost on resume");
    }
    // Items done before the kill did not run again; the others ran at most twice (those
    // that were running at the kill).
    let starts = std::fs::read_to_string(env.path().join("starts.log")).unwrap();
    for n in 1..=12 {
        let count = starts.lines().filter(|l| *l == n.to_string()).count();
        let was_done = before.iter().any(|b| b["item"]["n"] == n);
        if was_done {
            assert_eq!(count, 1, "item {n}:\n{starts}");
        } else {
            assert!((1..=2).contains(&count), "item {n}:\n{starts}");
        }
    }
    let csv = std::fs::read_to_string(run.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 13, "{csv}");
    let record = read_json(&run.join("run.json"));
    assert_eq!(record["resumed"], true);
    assert_eq!(record["sweeps"][0]["resumed"], before.len());
    assert_eq!(record["sweeps"][0]["ok"], 12);

    // A folder that is not there.
    let out = env
        .cmd()
        .args(["run", "--resume", "outputs/nothing", "main.rhai"])
        .output()
        .unwrap();
    assert_eq!(
        error_line(&failed(&out)),
        "error: --resume outputs/nothing: no such run folder (give the folder of the run to resume, outputs/<script>-<time>)"
    );
}
