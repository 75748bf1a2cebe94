//! Long investigations: 200 turns of cells that each print about 20 KB, against a loopback
//! Anthropic fake that enforces a 50k-token context window (answering over it with the
//! API's real "prompt is too long" error), with each compaction strategy; the limits; and
//! `replay` of a compacted run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::fake_anthropic::{FakeAnthropic, Reply, http_error, text_turn, tool_turn};
use common::{Env, failed, read_jsonl};
use serde_json::{Value, json};

/// The fake's context window, in its estimate of tokens (bytes / 4).
const WINDOW: usize = 50_000;
const TURNS: usize = 200;
/// The summariser's system prompt starts so (see `agent::context::SUMMARY_SYSTEM`).
const SUMMARY: &str = "You condense the working history";

/// A model that runs a 20 KB cell every turn, reads cell 0 back at the middle turn, and
/// ends after `turns` turns; it reports its input as the request's size and refuses a
/// request over [`WINDOW`] as the API does. Summary requests get a summary.
fn investigator(turns: usize) -> FakeAnthropic {
    scripted(turns, "print('x' * 20000)", None)
}

/// [`investigator`] running `code` each turn; with `usage`, every turn reports that many
/// input tokens instead of the request's size.
fn scripted(turns: usize, code: &'static str, usage: Option<u64>) -> FakeAnthropic {
    let next = Arc::new(AtomicUsize::new(0));
    FakeAnthropic::respond(move |_, body: &Value| {
        let size = body.to_string().len() / 4;
        let tokens = usage.map_or(size, |u| u as usize);
        if size > WINDOW {
            return http_error(
                400,
                &format!("prompt is too long: {tokens} tokens > {WINDOW} maximum"),
                "invalid_request_error",
                "",
            );
        }
        if body["system"].to_string().contains(SUMMARY) {
            return Reply::Sse(text_turn(
                "Summary: each cell printed 20000 x characters; nothing else was found.",
                tokens as u64,
                20,
            ));
        }
        let k = next.fetch_add(1, Ordering::SeqCst);
        let id = format!("toolu_{k}");
        Reply::Sse(if k + 1 >= turns {
            text_turn("Done: every cell printed 20000 x.", tokens as u64, 10)
        } else if k == turns / 2 {
            tool_turn(
                "",
                &[(
                    &id,
                    "notebooks__read_cell",
                    json!({"cell_index": 0, "limit": 30000}),
                )],
                tokens as u64,
                20,
            )
        } else {
            tool_turn(
                "",
                &[(&id, "notebooks__execute_code", json!({"code": code}))],
                tokens as u64,
                20,
            )
        })
    })
}

/// Runs the investigation with `context` (a Rhai map) and returns the output and the
/// transcript's records.
fn investigate(
    context: &str,
    turns: usize,
) -> (std::process::Output, String, Vec<Value>, FakeAnthropic, Env) {
    let fake = investigator(turns);
    let env = Env::new();
    let (out, stdout, stderr) = env.run_agent_script(
        &format!(
            r#"
let sb = Sandbox(#{{ execution_mode: "notebook" }}).start();
let s = create_notebook_session(sb, (), #{{ name: "nb" }});
let r = run_agent(#{{ user_message: "Investigate.", mcp_config: s.mcp_config, base_url: ARGS[0], name: "long",
                     max_turns: {max}, context_window: {WINDOW}, context: {context}, live_log: false }});
print(`${{r.stop}} ${{r.turns}}`);
"#,
            max = turns + 10
        ),
        &fake.url,
    );
    let records = env
        .runs()
        .last()
        .map(|run| read_jsonl(&run.join("transcripts/long.jsonl")))
        .unwrap_or_default();
    let _ = stderr;
    (out, stdout, records, fake, env)
}

fn kinds(records: &[Value], kind: &str) -> Vec<Value> {
    records
        .iter()
        .filter(|r| r["type"] == kind)
        .cloned()
        .collect()
}

/// Whether the result of the `read_cell` call (made at the middle turn, after cell 0's
/// output was cleared from the context or dropped) brought cell 0's whole output back.
fn read_back(fake: &FakeAnthropic, turns: usize) -> bool {
    let id = format!("toolu_{}", turns / 2);
    let line = "x".repeat(20_000);
    fake.requests().iter().any(|(_, body)| {
        common::fake_anthropic::tool_results(body)
            .iter()
            .any(|r| r["tool_use_id"] == id.as_str() && r["content"].to_string().contains(&line))
    })
}

fn check_completed(strategy: &str, extra: &str) {
    let (out, stdout, records, fake, _env) =
        investigate(&format!("#{{ strategy: \"{strategy}\"{extra} }}"), TURNS);
    assert!(out.status.success(), "{strategy}: {}", failed(&out));
    assert_eq!(stdout, format!("end_turn {TURNS}\n"), "{strategy}");
    let compactions = kinds(&records, "compaction");
    assert!(!compactions.is_empty(), "{strategy}: no compaction");
    for c in &compactions {
        assert_eq!(c["strategy"], strategy);
        assert!(
            c["tokens_after"].as_u64() < c["tokens_before"].as_u64(),
            "{c}"
        );
    }
    // No request went over the window (the fake would have refused it; a refusal is
    // retried once after a compaction, and none was needed here).
    let refused = fake
        .requests()
        .iter()
        .filter(|(_, b)| b.to_string().len() / 4 > WINDOW)
        .count();
    assert_eq!(refused, 0, "{strategy}");
    // Each message once: the transcript grows with the turns, not their square.
    let sizes: Vec<usize> = records.iter().map(|r| r.to_string().len()).collect();
    let total: usize = sizes.iter().sum();
    assert!(total < TURNS * 30_000, "{strategy}: {total} bytes");
    assert!(
        read_back(&fake, TURNS),
        "{strategy}: cell 0 was never read back"
    );
}

#[test]
fn a_200_turn_investigation_fits_a_50k_window_with_edit() {
    check_completed("edit", "");
}

#[test]
fn a_200_turn_investigation_fits_a_50k_window_with_auto() {
    check_completed("auto", "");
}

#[test]
fn a_200_turn_investigation_fits_a_50k_window_with_summary() {
    check_completed("summary", "");
}

#[test]
fn a_200_turn_investigation_fits_a_50k_window_with_trim() {
    check_completed("trim", "");
}

#[test]
fn without_compaction_the_run_ends_with_an_error_naming_the_window_and_the_strategies() {
    let (out, _, records, _fake, _env) = investigate("#{ strategy: \"none\" }", TURNS);
    let err = failed(&out);
    assert!(
        err.contains(&format!(
            "the conversation no longer fits the model's context window ({WINDOW} tokens) and `context: #{{ strategy: \"none\" }}` keeps everything; use \"auto\", \"edit\", \"summary\" or \"trim\" to make room: anthropic: HTTP 400"
        )),
        "{err}"
    );
    // The transcript is kept, ending with the error.
    assert_eq!(records.last().unwrap()["type"], "error");
}

/// Each limit ends the run before its next turn with its stop reason, the notebook and the
/// transcript whole.
#[test]
fn each_limit_ends_the_run_with_its_stop_reason() {
    // Every turn reports 5000 input and 20 output tokens: 5020 tokens and, at $1 per
    // million, $0.00502 a turn. A cell takes 0.6 s.
    for (limits, want) in [
        ("#{ turns: 3 }", "turn_limit 3"),
        ("#{ tool_calls: 2 }", "tool_call_limit 2"),
        ("#{ tokens: 12000 }", "token_limit 3"),
        ("#{ cost_usd: 0.012 }", "cost_limit 3"),
        ("#{ wall_s: 1.0 }", "time_limit 2"),
    ] {
        let fake = scripted(50, "time.sleep(0.6)", Some(5000));
        let env = Env::new();
        let (out, stdout, stderr) = env.run_agent_script(
            &format!(
                r#"
let sb = Sandbox(#{{ execution_mode: "notebook" }}).start();
let s = create_notebook_session(sb, (), #{{ name: "nb" }});
s.exec("import time");
let r = run_agent(#{{ user_message: "Investigate.", mcp_config: s.mcp_config, base_url: ARGS[0], name: "limited",
                     limits: {limits}, prices: #{{ input: 1.0, output: 1.0 }} }});
print(`${{r.stop}} ${{r.turns}}`);
"#
            ),
            &fake.url,
        );
        assert!(out.status.success(), "{limits}: {stderr}");
        assert_eq!(stdout.trim(), want, "{limits}");
        let run = env.runs().pop().unwrap();
        let records = read_jsonl(&run.join("transcripts/limited.jsonl"));
        let last: Vec<Value> = records[records.len() - 2..]
            .iter()
            .map(|r| r["type"].clone())
            .collect();
        assert_eq!(last, ["limit", "done"], "{limits}");
        assert!(
            stderr.contains("[limited] limit: the run reached its"),
            "{limits}: {stderr}"
        );
        let nb: Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("nb.ipynb")).unwrap()).unwrap();
        assert!(!nb["cells"].as_array().unwrap().is_empty());
    }
}

#[test]
fn a_bad_limit_or_context_field_is_a_config_error_naming_it() {
    let env = Env::new();
    for (code, want) in [
        (
            "run_agent(#{ user_message: \"x\", tools: \"none\", limits: #{ cost: 1.0 } });",
            "error: main.rhai:1:1: run_agent: unknown field `cost` in `limits`; did you mean `cost_usd`? (valid fields: `turns`, `tokens`, `cost_usd`, `wall_s`, `tool_calls`)",
        ),
        (
            "run_agent(#{ user_message: \"x\", tools: \"none\", limits: #{ wall_s: -1.0 } });",
            "error: main.rhai:1:1: run_agent: limits: field `wall_s`: -1 is not a positive number",
        ),
        (
            "run_agent(#{ user_message: \"x\", tools: \"none\", context: #{ strategy: \"squash\" } });",
            "error: main.rhai:1:1: run_agent: unknown value `squash` in `context.strategy` (valid values: `auto`, `edit`, `summary`, `trim`, `none`)",
        ),
    ] {
        let (out, _, _) = env.run_agent_script(code, "");
        assert_eq!(common::error_line(&failed(&out)), want, "{code}");
    }
}

/// `replay` of a compacted run runs the same cells again.
#[test]
fn replaying_a_compacted_run_reproduces_its_cells() {
    let (out, _, records, _fake, env) = investigate("#{ strategy: \"auto\" }", 30);
    assert!(out.status.success(), "{}", failed(&out));
    assert!(!kinds(&records, "compaction").is_empty());
    let first = env.runs().pop().unwrap();
    let transcript = first.join("transcripts/long.jsonl");
    let replay = env.run(
        &format!(
            r#"
let sb = Sandbox(#{{ execution_mode: "notebook" }}).start();
let s = create_notebook_session(sb, (), #{{ name: "nb" }});
let r = run_agent(#{{ user_message: "Investigate.", mcp_config: s.mcp_config, provider: "replay", transcript: {t:?}, name: "long", live_log: false }});
print(r.stop);
"#,
            t = transcript.display().to_string()
        ),
        &[],
    );
    assert_eq!(common::ok(&replay), "end_turn\n");
    let cells = |run: &std::path::Path| -> Vec<Value> {
        let nb: Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("nb.ipynb")).unwrap()).unwrap();
        nb["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| json!([c["source"], c["outputs"]]))
            .collect()
    };
    let second = env.runs().pop().unwrap();
    assert_ne!(first, second);
    assert_eq!(cells(&first), cells(&second));
}
