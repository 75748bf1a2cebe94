//! `run_agent` end to end: a loopback server speaking the Anthropic Messages wire format
//! (SSE) answers with scripted turns — a tool call, then text — while the tool runs for
//! real in a notebook session reached over MCP. The test checks what seer sent.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use common::fake_anthropic::{
    Api, FakeAnthropic, Measured, Reply, answer, call_turn, compute_6x7, head_lines, http_error,
    last_tool_results, prompt_tokens, text_turn, tool_names,
};
use common::{Env, error_line, failed, lines, read_json, read_jsonl};
use serde_json::{Value, json};

#[test]
fn run_agent_drives_a_notebook_through_mcp_against_an_anthropic_wire_fake() {
    let fake = FakeAnthropic::start(compute_6x7("notebooks__execute_code"));
    let env = Env::new();
    let (out, stdout, stderr) = env.run_agent_script(
        r#"
let sb = Sandbox(#{ execution_mode: "notebook" }).start();
let s = create_notebook_session(sb, (), #{ name: "agent" });
let events = [];
let r = run_agent(#{ user_message: "What is 6 * 7?", mcp_config: s.mcp_config, base_url: ARGS[0], name: "solver", max_turns: 5 },
                  |m| events.push(m.type));
print(to_json(#{ final: r.final_text, turns: r.turns, stop: r.stop_reason, events: events, usage: r.usage, transcript: r.transcript }));
"#,
        &fake.url,
    );
    assert!(out.status.success(), "{stderr}\n{stdout}");
    let run = env.the_run();
    let got: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        got,
        json!({"final": "The answer is 42.", "turns": 2, "stop": "end_turn",
               "events": ["usage", "text", "tool_call", "tool_result", "usage", "text", "done"],
               "usage": {"input_tokens": 300, "output_tokens": 27, "cache_read_tokens": 0,
                         "cache_write_tokens": 0, "turns": 2, "cost_usd": 0.001305},
               "transcript": format!("outputs/{run}/transcripts/solver.jsonl")})
    );
    // The live log on stderr: text, the call with its arguments, the result, a summary.
    assert_eq!(
        lines(&stderr),
        [
            "[solver] turn 1/5 · 0 in / 0 out tokens",
            "[solver] Let me compute.",
            "[solver] → notebooks__execute_code {\"code\":\"6 * 7\"}",
            "[solver] ← [cell 0, execution_count 1]⏎42",
            "[solver] turn 2/5 · 100 in / 20 out tokens",
            "[solver] The answer is 42.",
            "[solver] done: end_turn after 2 turns · 300 in / 27 out tokens · $0.0013",
        ]
    );
    // run.json sums up the agents.
    let record = read_json(&env.runs()[0].join("run.json"));
    assert_eq!(
        record["agent_totals"],
        json!({"agents": 1, "input_tokens": 300, "output_tokens": 27, "cache_read_tokens": 0,
               "cache_write_tokens": 0, "cost_usd": 0.001305})
    );
    assert_eq!(
        record["agents"],
        json!([{"name": "solver", "provider": "anthropic", "model": "claude-sonnet-4-5-20250929",
                "stop_reason": "end_turn", "turns": 2, "input_tokens": 300, "output_tokens": 27,
                "cache_read_tokens": 0, "cache_write_tokens": 0, "cost_usd": 0.001305,
                "transcript": format!("outputs/{run}/transcripts/solver.jsonl")}])
    );

    let seen = fake.requests();
    assert_eq!(seen.len(), 2);
    let (head, first) = &seen[0];
    // The headers: the key, the API version, a streamed JSON body (its length as sent).
    let (request, headers) = head_lines(head);
    assert_eq!(request, "POST /v1/messages HTTP/1.1");
    let port = fake.url.rsplit(':').next().unwrap();
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        headers,
        pairs(&[
            ("accept", "text/event-stream"),
            ("anthropic-version", "2023-06-01"),
            ("content-length", &first.to_string().len().to_string()),
            ("content-type", "application/json"),
            ("host", &format!("127.0.0.1:{port}")),
            ("x-api-key", "sk-test-key-0123456789"),
        ])
    );
    assert_eq!(first["stream"], true);
    assert_eq!(first["model"], "claude-sonnet-4-5-20250929");
    assert_eq!(
        tool_names(first),
        [
            "notebooks__add_markdown",
            "notebooks__edit_cell",
            "notebooks__execute_code",
            "notebooks__interrupt_kernel",
            "notebooks__read_cell",
            "notebooks__restart_kernel",
            "notebooks__shutdown_session"
        ]
    );
    // Prompt caching: breakpoints on the last tool and the end of the history.
    assert_eq!(
        first["tools"].as_array().unwrap().last().unwrap()["cache_control"],
        json!({"type": "ephemeral"})
    );
    assert_eq!(
        first["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "What is 6 * 7?",
                                             "cache_control": {"type": "ephemeral"}}]}])
    );
    // The second request answers the tool call with what the kernel computed; its
    // breakpoints mark where the first request ended and its own end.
    let second = &seen[1].1;
    assert_eq!(
        second["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "What is 6 * 7?",
                                          "cache_control": {"type": "ephemeral"}}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me compute."},
                {"type": "tool_use", "id": "toolu_1", "name": "notebooks__execute_code", "input": {"code": "6 * 7"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": false,
                 "content": [{"type": "text", "text": "[cell 0, execution_count 1]\n42"}],
                 "cache_control": {"type": "ephemeral"}}]},
        ])
    );

    // The transcript has each message once (the user's, every response and tool result),
    // a record per request, and no key.
    let path = env.path().join(got["transcript"].as_str().unwrap());
    let kinds: Vec<Value> = read_jsonl(&path)
        .iter()
        .map(|l| l["type"].clone())
        .collect();
    assert_eq!(
        kinds,
        [
            "start",
            "user",
            "request",
            "response",
            "tool_result",
            "request",
            "response",
            "done"
        ]
    );
    assert!(
        !std::fs::read_to_string(&path)
            .unwrap()
            .contains("sk-test-key")
    );
}

#[test]
fn run_agent_config_errors_are_clear() {
    let env = Env::new();
    for (code, want) in [
        (
            "run_agent(#{ promt: \"x\" });",
            "error: main.rhai:1:1: run_agent: unknown field `promt`; did you mean `prompt`? (valid fields: \
             `prompt`, `mcp_config`, `provider`, `model`, `base_url`, `api_key_env`, `max_turns`, `max_tokens`, \
             `system_prompt`, `user_message`, `tools`, `name`, `transcript`, `prices`, `live_log`, `request_timeout`, \
             `max_retries`, `kwargs`, `context_window`, `context`, `limits`, `tool_timeout`)\n",
        ),
        (
            "run_agent(#{ user_message: \"x\", provider: \"nope\" });",
            "error: main.rhai:1:1: run_agent: unknown provider \"nope\"; expected \"anthropic\" \
             (alias \"claude\"), \"openai\", \"gemini\", \"claude-code\" or \"replay\"\n",
        ),
        (
            "run_agent(#{ user_message: \"x\", mcp_config: #{ a: #{ type: \"stdio\", command: \"/no/such/server\" } }, base_url: \"http://127.0.0.1:9\" });",
            "error: main.rhai:1:1: MCP server `a`: cannot start `/no/such/server`: \
             No such file or directory (os error 2)\n",
        ),
    ] {
        let (out, _, _) = env.run_agent_script(code, "");
        assert_eq!(failed(&out), want, "{code}");
    }
}

#[test]
fn replay_reruns_a_transcripts_tool_calls_for_real_without_the_provider() {
    let fake = FakeAnthropic::start(compute_6x7("notebooks__execute_code"));
    let env = Env::new();
    let (out, stdout, stderr) = env.run_agent_script(
        r#"
let sb = Sandbox(#{ execution_mode: "notebook" }).start();
let s = create_notebook_session(sb, (), #{ name: "live" });
let r = run_agent(#{ user_message: "What is 6 * 7?", mcp_config: s.mcp_config, base_url: ARGS[0], name: "live" });
// A fresh sandbox and session: the replay runs the recorded calls there.
let sb2 = Sandbox(#{ execution_mode: "notebook" }).start();
let s2 = create_notebook_session(sb2, (), #{ name: "replayed" });
let events = [];
let r2 = run_agent(#{ provider: "replay", transcript: r.transcript, user_message: "What is 6 * 7?",
                      mcp_config: s2.mcp_config, name: "replayed" }, |m| events.push(m.type));
print(to_json(#{ final: r2.final_text, turns: r2.turns, usage: r2.usage, events: events,
                 notebook: s2.notebook_path, same_sandbox: sb.id == sb2.id }));
"#,
        &fake.url,
    );
    assert!(out.status.success(), "{stderr}\n{stdout}");
    let got: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        got,
        json!({"final": "The answer is 42.", "turns": 2,
               "usage": {"input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0, "cache_write_tokens": 0, "turns": 2, "cost_usd": 0.0},
               "events": ["usage", "text", "tool_call", "tool_result", "usage", "text", "done"],
               "notebook": format!("outputs/{}/replayed.ipynb", env.the_run()), "same_sandbox": false})
    );
    // The provider was asked twice, by the live run only.
    assert_eq!(fake.requests().len(), 2);
    // The replayed call ran in the new kernel: its notebook has the cell and its result.
    let nb = read_json(&env.path().join(got["notebook"].as_str().unwrap()));
    let mut cells = nb["cells"].clone();
    for c in cells.as_array_mut().unwrap() {
        c.as_object_mut().unwrap().remove("id"); // random
    }
    assert_eq!(
        cells,
        json!([{"cell_type": "code", "execution_count": 1, "metadata": {}, "source": ["6 * 7"],
                "outputs": [{"output_type": "execute_result", "execution_count": 1, "metadata": {},
                             "data": {"text/plain": ["42"]}}]}])
    );
}

#[test]
fn replay_errors_say_what_is_missing() {
    let env = Env::new();
    env.write("empty.jsonl", "{\"type\": \"start\"}\n");
    for (code, want) in [
        (
            "run_agent(#{ provider: \"replay\", user_message: \"x\" });",
            "error: main.rhai:1:1: run_agent: provider \"replay\" needs `transcript`: \
             the path of a transcript to replay (outputs/<run>/transcripts/<name>.jsonl)\n",
        ),
        (
            "run_agent(#{ provider: \"replay\", user_message: \"x\", transcript: \"empty.jsonl\" });",
            "error: main.rhai:1:1: run_agent: <dir>/empty.jsonl has no assistant turns to replay: \
             give the transcript of an agent run (outputs/<run>/transcripts/<name>.jsonl)\n",
        ),
        (
            "run_agent(#{ provider: \"replay\", user_message: \"x\", transcript: \"nope.jsonl\" });",
            "error: main.rhai:1:1: run_agent: reading the replay transcript <dir>/nope.jsonl: \
             No such file or directory (os error 2)\n",
        ),
        (
            "run_agent(#{ provider: \"gemma\", user_message: \"x\" });",
            "error: main.rhai:1:1: run_agent: unknown provider \"gemma\"; expected \"anthropic\" \
             (alias \"claude\"), \"openai\", \"gemini\", \"claude-code\" or \"replay\"\n",
        ),
    ] {
        let (out, _, _) = env.run_agent_script(code, "");
        assert_eq!(env.normalise(&failed(&out)), want, "{code}");
    }
}

/// First turn: run code that reports, after a second, which sandbox its kernel runs in
/// (the sandbox id's hex as a decimal number: pids say nothing, every isolated kernel is
/// pid 2 in its own pid namespace); once the tool result is back: say it.
fn pid_responder(_: usize, body: &Value) -> Reply {
    match last_tool_results(body) {
        Some(result) => Reply::Sse(answer(&format!("kernel says {result}"))),
        None => Reply::Sse(call_turn(
            "toolu_pid",
            "notebooks__execute_code",
            json!({"code": "import os, time; time.sleep(1); int(os.environ['SEER_SANDBOX_ID'][3:], 16)"}),
        )),
    }
}

#[test]
fn two_agents_run_in_parallel_each_against_its_own_kernel() {
    let fake = FakeAnthropic::respond(pid_responder);
    let env = Env::new();
    let (out, stdout, stderr) = env.run_agent_script(
        r#"
let sa = create_notebook_session(Sandbox(#{ execution_mode: "notebook" }).start(), (), #{ name: "a" });
let sb = create_notebook_session(Sandbox(#{ execution_mode: "notebook" }).start(), (), #{ name: "b" });
let url = ARGS[0];
let rs = parallel([
    || run_agent(#{ user_message: "pid?", mcp_config: sa.mcp_config, base_url: url, name: "a" }),
    || run_agent(#{ user_message: "pid?", mcp_config: sb.mcp_config, base_url: url, name: "b" }),
]);
// spawn: start now, join later.
let t = spawn(|| run_agent(#{ user_message: "pid?", mcp_config: sa.mcp_config, base_url: url, name: "c" }));
let c = t.join();
print(to_json([rs[0].final_text, rs[1].final_text, c.final_text, t.is_done()]));
"#,
        &fake.url,
    );
    assert!(out.status.success(), "{stderr}\n{stdout}");
    let got: Vec<Value> = serde_json::from_str(stdout.trim()).unwrap();
    let pid = |v: &Value| -> String {
        // The longest run of digits: the kernel's sandbox (the result also has a cell number).
        v.as_str()
            .unwrap()
            .split(|c: char| !c.is_ascii_digit())
            .max_by_key(|s| s.len())
            .unwrap()
            .to_string()
    };
    let (a, b) = (pid(&got[0]), pid(&got[1]));
    assert!(!a.is_empty() && !b.is_empty(), "{got:?}");
    assert_ne!(a, b, "each agent has its own kernel");
    // The spawned agent (c) used session a's kernel, in its second cell.
    let says = |cell: u32, pid: &str| {
        format!(
            "kernel says [{{\"text\":\"[cell {cell}, execution_count {}]\\n{pid}\",\"type\":\"text\"}}]",
            cell + 1
        )
    };
    assert_eq!(
        got,
        [
            json!(says(0, &a)),
            json!(says(0, &b)),
            json!(says(1, &a)),
            json!(true)
        ]
    );
    // Both agents' first requests came before either had its tool result back (the
    // tool sleeps a second): they ran at the same time.
    let seen = fake.requests();
    assert_eq!(seen.len(), 6);
    assert!(last_tool_results(&seen[0].1).is_none() && last_tool_results(&seen[1].1).is_none());
    // Each agent has its own live log (the lines of the three interleave).
    for (name, cell, pid) in [("a", 0, &a), ("b", 0, &b), ("c", 1, &a)] {
        let tag = format!("[{name}] ");
        let log: Vec<&str> = stderr.lines().filter(|l| l.starts_with(&tag)).collect();
        assert_eq!(
            log,
            [
                format!("{tag}turn 1/60 · 0 in / 0 out tokens"),
                format!(
                    "{tag}→ notebooks__execute_code {{\"code\":\"import os, time; time.sleep(1); int(os.environ['SEER_SANDBOX_ID'][3:], 16)\"}}"
                ),
                format!("{tag}← [cell {cell}, execution_count {}]⏎{pid}", cell + 1),
                format!("{tag}turn 2/60 · 10 in / 5 out tokens"),
                format!("{tag}{}", says(cell, pid)),
                format!("{tag}done: end_turn after 2 turns · 20 in / 10 out tokens · $0.0002"),
            ],
            "{stderr}"
        );
    }
}

#[test]
fn a_spawned_closure_error_is_raised_by_join_with_its_position() {
    let env = Env::new();
    let (out, _, _) = env.run_agent_script(
        "let t = spawn(|| {\n  let x = 1;\n  throw \"boom\";\n});\nt.join();\n",
        "",
    );
    // The closure's error at its own position, then the call chain to the join (the
    // closure's generated name normalised).
    let err = failed(&out);
    let lines: Vec<String> = err
        .lines()
        .map(|l| match (l.find("'anon$"), l.rfind('\'')) {
            (Some(i), Some(j)) if j > i => format!("{}'<closure>{}", &l[..i], &l[j..]),
            _ => l.to_string(),
        })
        .collect();
    assert_eq!(
        lines,
        [
            "error: main.rhai:3:3: boom",
            "  in call to function '<closure>' at main.rhai:5:3"
        ]
    );
}

#[test]
fn a_repeated_identical_failing_call_is_reported_to_the_model() {
    let fake = FakeAnthropic::respond(|n, _| {
        if n < 3 {
            Reply::Sse(call_turn(
                &format!("toolu_{n}"),
                "notebooks__no_such_tool",
                json!({"x": 1}),
            ))
        } else {
            Reply::Sse(answer("I give up on that tool."))
        }
    });
    let env = Env::new();
    let (out, stdout, stderr) = env.run_agent_script(
        r#"
let s = create_notebook_session(Sandbox(#{ execution_mode: "notebook" }).start(), (), #{});
let repeats = [];
let r = run_agent(#{ user_message: "go", mcp_config: s.mcp_config, base_url: ARGS[0], live_log: false },
    |m| if m.type == "tool_result" { repeats.push(m.repeated_failures ?? 1) });
print(to_json(#{ final: r.final_text, repeats: repeats }));
"#,
        &fake.url,
    );
    assert!(out.status.success(), "{stderr}\n{stdout}");
    let got: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        got,
        json!({"final": "I give up on that tool.", "repeats": [1, 2, 3]})
    );
    assert_eq!(stderr, "", "live_log: false is quiet");
    // From the second identical failure on, seer adds a note to the result.
    let unknown = json!({"type": "text", "text": "unknown tool `notebooks__no_such_tool`; the tools are: \
        notebooks__add_markdown, notebooks__edit_cell, notebooks__execute_code, notebooks__interrupt_kernel, \
        notebooks__read_cell, notebooks__restart_kernel, notebooks__shutdown_session"});
    let note = |n: u32| {
        json!({"type": "text", "text": format!("[seer] This exact call (notebooks__no_such_tool with the \
            same arguments) has now failed {n} times. Do not repeat it unchanged: change the arguments or \
            try another approach.")})
    };
    let seen = fake.requests();
    let results: Vec<Value> = seen[1..]
        .iter()
        .map(|(_, body)| serde_json::from_str(&last_tool_results(body).unwrap()).unwrap())
        .collect();
    assert_eq!(
        results,
        [
            json!([unknown]),
            json!([unknown, note(2)]),
            json!([unknown, note(3)])
        ]
    );
}

#[test]
fn run_agent_survives_429_500_529_and_a_cut_stream_then_times_out_on_a_silent_server() {
    let cut = {
        let full = text_turn("never finished", 10, 5);
        let mut s: String = full.chars().take(full.len() / 2).collect();
        s.truncate(s.rfind("\n\n").unwrap() + 2);
        s
    };
    let fake = FakeAnthropic::respond(move |n, _| match n {
        0 => http_error(
            429,
            "Too Many Requests",
            "rate_limit_error",
            "retry-after: 0\r\n",
        ),
        1 => http_error(
            500,
            "Internal Server Error",
            "api_error",
            "retry-after: 0\r\n",
        ),
        2 => http_error(529, "Overloaded", "overloaded_error", "retry-after: 0\r\n"),
        3 => Reply::Sse(cut.clone()),
        _ => Reply::Sse(answer("made it")),
    });
    let env = Env::new();
    let (out, stdout, stderr) = env.run_agent_script(
        r#"let r = run_agent(#{ user_message: "hi", tools: "none", base_url: ARGS[0] }); print(r.final_text);"#,
        &fake.url,
    );
    assert!(out.status.success(), "{stderr}\n{stdout}");
    assert_eq!(stdout, "made it\n");
    // The live log (the retries are logged as warnings in between).
    let log: Vec<&str> = stderr.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(
        log,
        [
            "[agent] turn 1/60 · 0 in / 0 out tokens",
            "[agent] made it",
            "[agent] done: end_turn after 1 turns · 10 in / 5 out tokens · $0.0001",
        ]
    );
    assert_eq!(fake.requests().len(), 5);

    let silent = FakeAnthropic::hanging();
    let started = std::time::Instant::now();
    let (out, _, _) = env.run_agent_script(
        r#"run_agent(#{ user_message: "hi", tools: "none", base_url: ARGS[0], request_timeout: 0.5, max_retries: 1, name: "slow" });"#,
        &silent.url,
    );
    let err = failed(&out);
    assert_eq!(
        error_line(&err),
        "error: main.rhai:1:1: anthropic: giving up after 1 retries: anthropic: request timed out \
         after 500ms (per-request timeout)"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(silent.requests().len(), 2, "one try and one retry");
    assert!(!err.contains("sk-test-key"));
    // The transcript ends with the error.
    let run = env.runs().pop().unwrap();
    let transcript = read_jsonl(&run.join("transcripts/slow.jsonl"));
    assert_eq!(
        transcript.last().unwrap(),
        &json!({"type": "error", "message": "anthropic: giving up after 1 retries: anthropic: request \
                timed out after 500ms (per-request timeout)"})
    );
}

// The same tests with every sandbox on ssh and on Slurm.
on_remote_backends!(
    run_agent_drives_a_notebook_through_mcp_against_an_anthropic_wire_fake,
    replay_reruns_a_transcripts_tool_calls_for_real_without_the_provider,
    two_agents_run_in_parallel_each_against_its_own_kernel,
    a_repeated_identical_failing_call_is_reported_to_the_model,
);

/// Prompt caching end to end: against a fake that caches as Anthropic does, the second
/// turn reads the whole first request from the cache (the breakpoint where it ended) and
/// writes only what came after; `usage` adds it up and the cost uses Sonnet's cache prices
/// (reads $0.30, writes $3.75 per million tokens, against $3 for plain input).
#[test]
fn a_second_turn_reads_the_first_turns_prefix_from_the_cache() {
    let fake = FakeAnthropic::start(compute_6x7("notebooks__execute_code")).with_caching();
    let env = Env::new();
    let (out, stdout, stderr) = env.run_agent_script(
        r#"
let sb = Sandbox(#{ execution_mode: "notebook" }).start();
let s = create_notebook_session(sb, (), #{ name: "agent" });
let r = run_agent(#{ prompt: "You compute.", user_message: "What is 6 * 7?", mcp_config: s.mcp_config,
                     base_url: ARGS[0], name: "solver", max_turns: 5, live_log: false });
print(to_json(#{ final: r.final_text, usage: r.usage }));
"#,
        &fake.url,
    );
    assert!(out.status.success(), "{stderr}\n{stdout}");
    let seen = fake.requests();
    assert_eq!(seen.len(), 2);
    let t1 = prompt_tokens(Api::Anthropic, &seen[0].1);
    let t2 = prompt_tokens(Api::Anthropic, &seen[1].1);
    // The tools, the system prompt and the question: a sizeable prefix.
    assert!(t1 > 500 && t2 > t1, "{t1} {t2}");
    assert_eq!(
        fake.measured(),
        [
            // Nothing cached yet: the whole prompt is written, up to its last breakpoint.
            Measured {
                tokens: t1,
                input: 0,
                cache_read: 0,
                cache_write: t1,
                over_window: false
            },
            // The first request's prompt is read back; the call and its result are written.
            Measured {
                tokens: t2,
                input: 0,
                cache_read: t1,
                cache_write: t2 - t1,
                over_window: false
            },
        ]
    );
    let (read, write) = (t1 as f64, t2 as f64);
    let cost = (0.0 * 3.0 + 27.0 * 15.0 + read * 0.3 + write * 3.75) / 1e6;
    assert_eq!(
        serde_json::from_str::<Value>(stdout.trim()).unwrap(),
        json!({"final": "The answer is 42.",
               "usage": {"input_tokens": 0, "output_tokens": 27, "cache_read_tokens": t1,
                         "cache_write_tokens": t2, "turns": 2, "cost_usd": cost}})
    );
    // Cheaper than sending it all uncached.
    assert!(cost < ((t1 + t2) as f64 * 3.0 + 27.0 * 15.0) / 1e6);
}

/// The fakes' window and caching, as the official SDKs (anthropic, openai, google-genai)
/// read them: cache usage fields, and each API's own context-too-long error.
#[test]
fn the_fakes_windows_and_cache_speak_each_apis_wire_format() {
    use common::{fake_gemini, fake_openai};
    let anthropic = FakeAnthropic::respond(|_, _| Reply::Sse(text_turn("ok", 1, 2)))
        .with_window(600)
        .with_caching();
    let openai =
        FakeAnthropic::respond(|_, _| Reply::Sse(fake_openai::text_turn("ok"))).with_window(600);
    let gemini =
        FakeAnthropic::respond(|_, _| Reply::Sse(fake_gemini::text_turn("ok"))).with_window(600);
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sdk_long_context.py");
    let out = std::process::Command::new(common::test_python())
        .arg(script)
        .args([&anthropic.url, &format!("{}/v1", openai.url), &gemini.url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();

    let tokens = |fake: &FakeAnthropic, api| -> Vec<u64> {
        fake.requests()
            .iter()
            .map(|(_, b)| prompt_tokens(api, b))
            .collect()
    };
    let a = tokens(&anthropic, Api::Anthropic);
    let o = tokens(&openai, Api::OpenAi);
    let g = tokens(&gemini, Api::Gemini);
    assert!(a[2] > 600 && o[1] > 600 && g[1] > 600, "{a:?} {o:?} {g:?}");
    assert_eq!(
        anthropic.measured(),
        [
            Measured {
                tokens: a[0],
                input: 0,
                cache_read: 0,
                cache_write: a[0],
                over_window: false
            },
            Measured {
                tokens: a[1],
                input: 0,
                cache_read: a[0],
                cache_write: a[1] - a[0],
                over_window: false
            },
            Measured {
                tokens: a[2],
                input: a[2],
                cache_read: 0,
                cache_write: 0,
                over_window: true
            },
        ]
    );
    assert_eq!(
        got,
        json!({
            "anthropic": {
                "turns": [[0, 0, a[0]], [0, a[0], a[1] - a[0]]],
                "too_long": {"status": 400, "body": {"type": "error", "error": {"type": "invalid_request_error",
                    "message": format!("prompt is too long: {} tokens > 600 maximum", a[2])}}}},
            "openai": {
                "usage": [o[0], 0],
                "too_long": {"status": 400, "code": "context_length_exceeded", "type": "invalid_request_error",
                    "param": "messages",
                    "message": format!("This model's maximum context length is 600 tokens. However, your messages resulted in {} tokens. Please reduce the length of the messages.", o[1])}},
            "gemini": {
                "usage": [g[0]],
                "too_long": {"code": 400, "status": "INVALID_ARGUMENT",
                    "message": format!("The input token count ({}) exceeds the maximum number of tokens allowed (600).", g[1])}},
        })
    );
}

/// seer's own providers against the fakes' emulation: a cached prefix is read back, expires
/// after its TTL and is not asked for with `cache: false`; over the window each provider's
/// error becomes `ProviderError::ContextTooLong` (what the agent loop compacts on).
#[test]
fn the_providers_read_the_fakes_cache_and_recognise_their_window_errors() {
    use seer::agent::providers::{
        ApiKey, Block, Kind, Message, Options, ProviderConfig, ProviderError, Request, Role, Usage,
        is_context_too_long,
    };
    use std::time::Duration;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let request = |text: &str, options: Options| Request {
        model: String::new(),
        system: "You are terse. ".repeat(20),
        messages: vec![Message {
            role: Role::User,
            content: vec![Block::Text(text.into())],
        }],
        tools: vec![],
        max_tokens: 10,
        options,
    };
    let send = |kind: Kind, fake: &FakeAnthropic, req: &Request| {
        let mut cfg = ProviderConfig::new(kind);
        cfg.base_url = fake.url.clone();
        cfg.max_retries = 0;
        let p = cfg.build_with_key(ApiKey::new(common::TEST_KEY)).unwrap();
        let body = p.request_body(req);
        rt.block_on(p.stream(
            &body,
            &mut |_| {},
            &tokio_util::sync::CancellationToken::new(),
        ))
    };
    let usage = |input_tokens, cache_read_tokens, cache_write_tokens| Usage {
        input_tokens,
        output_tokens: 2,
        cache_read_tokens,
        cache_write_tokens,
    };

    let fake = FakeAnthropic::respond(|_, _| Reply::Sse(text_turn("ok", 1, 2)))
        .with_window(400)
        .with_caching()
        .with_cache_ttl(Duration::from_millis(500));
    let hi = request("Hello there.", Options::default());
    let mut got = vec![];
    for _ in 0..2 {
        got.push(send(Kind::Anthropic, &fake, &hi).unwrap().usage);
    }
    std::thread::sleep(Duration::from_millis(700));
    got.push(send(Kind::Anthropic, &fake, &hi).unwrap().usage);
    let uncached = request(
        "Hello there.",
        Options {
            cache: Some(false),
            ..Options::default()
        },
    );
    got.push(send(Kind::Anthropic, &fake, &uncached).unwrap().usage);
    let t = prompt_tokens(Api::Anthropic, &fake.requests()[0].1);
    // Without breakpoints the system prompt is a plain string, a few bytes shorter.
    let plain = prompt_tokens(Api::Anthropic, &fake.requests()[3].1);
    assert_eq!(
        got,
        [
            usage(0, 0, t),     // written
            usage(0, t, 0),     // read back
            usage(0, 0, t),     // expired: written again
            usage(plain, 0, 0), // no breakpoints: plain input
        ]
    );
    assert_eq!(got[1].context_tokens(), t);

    let long = request(&"x".repeat(4000), Options::default());
    for (kind, fake) in [
        (Kind::Anthropic, fake),
        (
            Kind::OpenAi,
            FakeAnthropic::respond(|_, _| Reply::Sse(common::fake_openai::text_turn("ok")))
                .with_window(400),
        ),
        (
            Kind::Gemini,
            FakeAnthropic::respond(|_, _| Reply::Sse(common::fake_gemini::text_turn("ok")))
                .with_window(400),
        ),
    ] {
        let err = send(kind, &fake, &long).unwrap_err();
        let (head, body) = fake.requests().pop().unwrap();
        let n = prompt_tokens(Api::of(&head), &body);
        assert!(n > 400, "{kind:?}: {n}");
        let message = match kind {
            Kind::Anthropic => format!(
                "anthropic: HTTP 400: invalid_request_error: prompt is too long: {n} tokens > 400 maximum"
            ),
            Kind::OpenAi => format!(
                "openai: HTTP 400: invalid_request_error: This model's maximum context length is 400 tokens. However, your messages resulted in {n} tokens. Please reduce the length of the messages."
            ),
            Kind::Gemini => format!(
                "gemini: HTTP 400: INVALID_ARGUMENT: The input token count ({n}) exceeds the maximum number of tokens allowed (400)."
            ),
        };
        assert_eq!(
            ProviderError::find(&err),
            Some(&ProviderError::ContextTooLong {
                tokens: Some(n),
                limit: Some(400),
                message
            }),
        );
        assert!(is_context_too_long(&err.context("turn 7")));
    }
}

/// Issue #23: a cell that lasts longer than the MCP session's keep-alive (2 s here; an
/// hour by default) returns its output to the agent: the keep-alive counts idle time only.
#[test]
fn a_cell_outlasting_the_mcp_keep_alive_returns_its_output_to_the_agent() {
    let code = "import time\ntime.sleep(6)\nprint('done')";
    let fake = FakeAnthropic::start(vec![
        call_turn("toolu_1", "notebooks__execute_code", json!({"code": code})),
        answer("Done."),
    ]);
    let env = Env::new();
    env.write(
        "main.rhai",
        r#"
let s = create_notebook_session(Sandbox(#{ execution_mode: "notebook" }).start(), (), #{});
let r = run_agent(#{ user_message: "go", mcp_config: s.mcp_config, base_url: ARGS[0], live_log: false });
print(r.final_text);
"#,
    );
    let out = env
        .agent_cmd()
        .env("SEER_MCP_KEEPALIVE_S", "2")
        .args(["run", "main.rhai", "--", &fake.url])
        .output()
        .unwrap();
    let (stdout, stderr) = common::text(&out);
    assert!(out.status.success(), "{stderr}\n{stdout}");
    assert_eq!(stdout.trim(), "Done.");
    let seen = fake.requests();
    let result: Value = serde_json::from_str(&last_tool_results(&seen[1].1).unwrap()).unwrap();
    assert_eq!(
        result,
        json!([{"type": "text", "text": "[cell 0, execution_count 1]\ndone"}])
    );
}
