//! `seer repl` driven in a real pseudo-terminal (tmux, on a private socket), plus
//! `seer docs` and `seer definitions`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use common::tmux::Tmux;
use common::{Env, ok, pids_matching, wait_for};

/// `seer repl` in a terminal of its own, at its first prompt.
fn start(env: &Env) -> Tmux {
    let t = Tmux::start(env, &[], "repl");
    t.wait_for("the prompt", Duration::from_secs(30), |s| {
        s.contains("seer> ")
    });
    t
}

/// A whole entry: typed, run, and back at the prompt (within `timeout`).
fn entry(t: &Tmux, text: &str, timeout: Duration) {
    let before = t.screen().matches("seer> ").count();
    t.line(text);
    t.wait_count("seer> ", before + 1, timeout);
}

/// The REPL's banner, the first line of every session.
fn banner() -> String {
    format!(
        "seer {} — Rhai with seer's API. :help for commands, Tab completes, Ctrl-D quits.",
        env!("CARGO_PKG_VERSION")
    )
}

/// `run_agent`'s doc line, as `:help`, `seer docs` and the definitions show it.
const RUN_AGENT_DOC: &str = "Runs an LLM tool loop over the MCP servers of `mcp_config`: `#{ prompt (the system prompt, as \
    in Seer), user_message (the first user message; default: \"Begin. Follow the instructions in \
    the system prompt, and end with a summary of what you found.\"), mcp_config, tools: \"none\" \
    (no tools on purpose; otherwise an empty mcp_config is an error), provider: \
    anthropic|claude|openai|gemini|claude-code|replay, model, base_url, api_key_env, kwargs: #{ \
    temperature, top_p, top_k, thinking_budget, reasoning_effort, stop, extra_body, cache }, \
    max_turns, max_tokens, system_prompt (= prompt), name, transcript (replay), prices, live_log, \
    request_timeout, max_retries, context_window, context: #{ strategy: \
    auto|edit|summary|trim|none, threshold, keep_last, max_tool_result, summary_model, trim_keep }, \
    limits: #{ turns, tokens, cost_usd, wall_s, tool_calls }, tool_timeout }`; the callback gets every event \
    (`text`, `thinking`, `tool_call`, `tool_result`, `usage`, `error`, `done`). Returns `#{ \
    final_text, turns, stop_reason (= stop: end_turn, max_turns, turn_limit, token_limit, \
    cost_limit, time_limit, tool_call_limit, …), model, usage: #{ input_tokens, output_tokens, \
    cost_usd, … }, transcript }`.";

/// A whole session on screen: the banner, then `lines`.
fn session(lines: &[&str]) -> Vec<String> {
    let mut all = vec![banner()];
    all.extend(lines.iter().map(|l| l.to_string()));
    all
}

#[test]
fn multi_line_entry_state_across_lines_completion_and_help() {
    let env = Env::new();
    env.write(
        "util.rhai",
        "/// Doubles a number.\nfn double(x) { x * 2 }\nfn triple(x) { x * 3 }\n",
    );
    let t = start(&env);

    // A fn over several lines: Enter inside the braces continues the entry.
    t.line("fn add(a, b) {");
    t.line("  let s = \"}\"; // a brace in a string and a comment: {");
    t.line("  a + b");
    t.line("}");
    // The fn defined above is usable on the next entry.
    entry(&t, "add(40, 2)", Duration::from_secs(10));
    t.wait_for("add's result", Duration::from_secs(10), |s| {
        s.lines().any(|l| l.trim() == "42")
    });

    // An import alias is kept for later entries.
    entry(&t, "import \"util\" as u;", Duration::from_secs(10));
    entry(&t, "let x = u::triple(5);", Duration::from_secs(10));
    t.line("x + 1");
    t.wait_for("the import's result", Duration::from_secs(10), |s| {
        s.lines().any(|l| l.trim() == "16")
    });

    // Completion: a registered function, a module member, a variable's method.
    t.type_text("run_ag");
    t.keys(&["Tab"]);
    t.wait_for("run_agent completed", Duration::from_secs(5), |s| {
        s.contains("seer> run_agent")
    });
    t.keys(&["C-c"]);
    t.type_text("u::dou");
    t.keys(&["Tab"]);
    t.type_text("(4)");
    t.keys(&["Enter"]);
    t.wait_for("the completed module call", Duration::from_secs(5), |s| {
        s.contains("seer> u::double(4)") && s.lines().any(|l| l.trim() == "8")
    });

    // Values print readably; errors print with a position and the REPL goes on.
    t.line("#{ name: \"probe\", layers: [1, 2, 3] }");
    t.wait_for("a map", Duration::from_secs(5), |s| {
        s.contains("#{ layers: [1, 2, 3], name: \"probe\" }")
    });
    t.line("let y = nope + 1;");
    t.wait_for("an error with a position", Duration::from_secs(5), |s| {
        s.contains("error: input:1:9: Variable not found: nope")
    });
    t.line("add(1, 1)");
    t.wait_for("the REPL after an error", Duration::from_secs(5), |s| {
        s.lines().any(|l| l.trim() == "2")
    });

    t.line(":help run_agent");
    t.wait_for("help", Duration::from_secs(5), |s| {
        s.contains("run_agent(cfg: map") && s.contains("Runs an LLM tool loop")
    });
    // The whole session: every entry, value and error as typed and shown.
    t.assert_lines(&session(&[
        "seer> fn add(a, b) {",
        "  let s = \"}\"; // a brace in a string and a comment: {",
        "  a + b",
        "}",
        "seer> add(40, 2)",
        "42",
        "seer> import \"util\" as u;",
        "seer> let x = u::triple(5);",
        "seer> x + 1",
        "16",
        "seer> run_agent",
        "seer> u::double(4)",
        "8",
        "seer> #{ name: \"probe\", layers: [1, 2, 3] }",
        "#{ layers: [1, 2, 3], name: \"probe\" }",
        "seer> let y = nope + 1;",
        "error: input:1:9: Variable not found: nope",
        "seer> add(1, 1)",
        "2",
        "seer> :help run_agent",
        "run_agent(cfg: map) -> map",
        &format!("    {RUN_AGENT_DOC}"),
        "run_agent(cfg: map, callback: Fn) -> map",
        "seer>",
    ]));
    t.line(":quit");
    wait_for("the REPL to quit on :quit", Duration::from_secs(10), || {
        !t.alive()
    });
    assert!(
        env.home.join("repl_history").is_file(),
        "no history file in the state dir"
    );
}

#[test]
fn load_reload_and_reset() {
    let env = Env::new();
    env.write("lib.rhai", "let counter = 10;\nfn bump(n) { n + 1 }\n");
    let t = start(&env);
    entry(&t, ":load lib.rhai", Duration::from_secs(10));
    t.wait_for("loaded", Duration::from_secs(5), |s| {
        s.contains("loaded lib.rhai")
    });
    t.line("bump(counter)");
    t.wait_for("state from the file", Duration::from_secs(5), |s| {
        s.lines().any(|l| l.trim() == "11")
    });
    env.write("lib.rhai", "let counter = 20;\nfn bump(n) { n + 2 }\n");
    t.line(":reload");
    t.wait_count("loaded lib.rhai", 2, Duration::from_secs(5));
    t.line("bump(counter)");
    t.wait_for(
        "state from the reloaded file",
        Duration::from_secs(5),
        |s| s.lines().any(|l| l.trim() == "22"),
    );
    entry(&t, ":reset", Duration::from_secs(10));
    t.line("counter");
    t.wait_for("a fresh scope", Duration::from_secs(5), |s| {
        s.contains("Variable not found: counter")
    });
    t.assert_lines(&session(&[
        "seer> :load lib.rhai",
        "loaded lib.rhai",
        "seer> bump(counter)",
        "11",
        "seer> :reload",
        "loaded lib.rhai",
        "seer> bump(counter)",
        "22",
        "seer> :reset",
        "state cleared",
        "seer> counter",
        "error: input:1:1: Variable not found: counter",
        "seer>",
    ]));
}

#[test]
fn ctrl_c_cancels_a_long_exec_and_ctrl_d_ends_the_sandboxes() {
    let env = Env::new();
    let t = start(&env);
    // The first start may build the uv env for the shared cache.
    t.line("let sb = Sandbox().start(); sb.id");
    t.wait_for("the sandbox", Duration::from_secs(600), |s| {
        s.lines().any(|l| l.trim().starts_with("sb-"))
    });
    // A process that outlives its exec: Ctrl-D must end it with the sandbox.
    t.line("sb.exec(\"(sleep 41777 &)\"); \"bg started\"");
    t.wait_count("bg started", 2, Duration::from_secs(30));
    assert_eq!(pids_matching("sleep 41777").len(), 1, "{}", t.screen());

    t.line("sb.exec(\"sleep 41555\")");
    wait_for("the exec to start", Duration::from_secs(20), || {
        !pids_matching("sleep 41555").is_empty()
    });
    let sent = Instant::now();
    t.keys(&["C-c"]);
    t.wait_for("cancelled", Duration::from_secs(5), |s| {
        s.contains("cancelled")
    });
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(3), "cancelling took {took:?}");
    assert!(
        pids_matching("sleep 41555").is_empty(),
        "the cancelled command is still running"
    );

    // The sandbox is still there and usable.
    t.line("sb.exec(\"echo still-$((40 + 2))\")");
    t.wait_for("the sandbox after Ctrl-C", Duration::from_secs(20), |s| {
        s.contains("still-42")
    });
    t.line(":sandboxes");
    t.wait_for(":sandboxes", Duration::from_secs(5), |s| {
        s.lines()
            .any(|l| l.starts_with("sb-") && l.contains("local"))
    });
    // A loop in the script itself stops too (the progress hook).
    t.line("let n = 0; loop { n += 1; }");
    std::thread::sleep(Duration::from_millis(300));
    t.keys(&["C-c"]);
    t.wait_count("cancelled", 2, Duration::from_secs(5));
    t.line("sb.is_running");
    t.wait_for("the sandbox still running", Duration::from_secs(5), |s| {
        s.lines().any(|l| l.trim() == "true")
    });

    let id = t.lines()[2].clone();
    let cancelled = "^Ccancelled (sandboxes are kept; `:sandboxes` lists them)";
    t.assert_lines(&session(&[
        "seer> let sb = Sandbox().start(); sb.id",
        &id,
        "seer> sb.exec(\"(sleep 41777 &)\"); \"bg started\"",
        "bg started",
        "seer> sb.exec(\"sleep 41555\")",
        cancelled,
        "seer> sb.exec(\"echo still-$((40 + 2))\")",
        "still-42",
        "", // exec's output ends with its newline
        "seer> :sandboxes",
        &format!(
            "{id}  local  {}",
            env.home
                .join("sandboxes")
                .join(&id)
                .join("workspace")
                .display()
        ),
        "seer> let n = 0; loop { n += 1; }",
        cancelled,
        "seer> sb.is_running",
        "true",
        "seer>",
    ]));
    t.keys(&["C-d"]);
    // The REPL quits and ends the sandbox with the process it left running.
    wait_for(
        "the REPL to quit on Ctrl-D, leaving no sandbox process",
        Duration::from_secs(10),
        || !t.alive() && pids_matching("sleep 41777").is_empty(),
    );
}

#[test]
fn docs_lists_the_api() {
    let env = Env::new();
    let out = ok(&env.cmd().arg("docs").output().expect("seer docs"));
    // These whole lines, in this order.
    let want = [
        "# seer API reference",
        "## Sandboxes",
        "- `Sandbox(cfg: map) -> Sandbox`",
        "- `sb.exec(cmd: string) -> string`",
        "- `Sandbox::from_id(id: string) -> Sandbox`",
        "- `s.exec(code: string, opts: map)`",
        "### `run_agent`",
        "",
        RUN_AGENT_DOC,
        "## Helpers",
    ];
    let lines: Vec<&str> = out.lines().collect();
    let mut at = 0;
    for line in want {
        match lines[at..].iter().position(|l| *l == line) {
            Some(i) => at += i + 1,
            None => panic!("no line {line:?} after line {at} of:\n{out}"),
        }
    }
    // The doc of `run_agent` right under its heading.
    let heading = lines.iter().position(|l| *l == "### `run_agent`").unwrap();
    assert_eq!(lines[heading + 1..heading + 3], ["", RUN_AGENT_DOC]);
}

#[test]
fn definitions_are_written_and_parse_as_rhai_definitions() {
    let env = Env::new();
    let dir = env.path().join("defs");
    ok(&env
        .cmd()
        .args(["definitions", "defs"])
        .output()
        .expect("seer definitions"));
    // One file per module; Rhai's standard library comes along, so the language server
    // knows `len`, `push`…
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "Library.d.rhai",
            "Sandbox.d.rhai",
            "Skill.d.rhai",
            "__builtin-operators__.d.rhai",
            "__builtin__.d.rhai",
            "__static__.d.rhai",
            "seer.d.rhai"
        ]
    );
    let seer = std::fs::read_to_string(dir.join("seer.d.rhai")).expect("seer.d.rhai");
    let seer_lines: Vec<&str> = seer.lines().collect();
    assert_eq!(seer_lines[0], "module static;");
    for line in [
        "fn exec(this: Sandbox, cmd: string) -> string;",
        "fn get id(this: Sandbox) -> string;",
    ] {
        assert!(seer_lines.contains(&line), "no line {line:?} in:\n{seer}");
    }
    // `run_agent` with its doc comment.
    let doc = format!("/// {RUN_AGENT_DOC}");
    let decl = [doc.as_str(), "fn run_agent(cfg: map, callback: Fn) -> map;"];
    assert!(
        seer_lines.windows(2).any(|w| w == decl),
        "no {decl:?} in:\n{seer}"
    );
    let sandbox = std::fs::read_to_string(dir.join("Sandbox.d.rhai")).expect("Sandbox.d.rhai");
    let sandbox_lines: Vec<&str> = sandbox.lines().collect();
    assert_eq!(sandbox_lines[0], "module Sandbox;");
    assert!(
        sandbox_lines.contains(&"fn from_id(id: string) -> Sandbox;"),
        "{sandbox}"
    );
    // Every declaration is well formed: a doc line, a header, or `fn …;`.
    for (name, text) in [("seer.d.rhai", &seer), ("Sandbox.d.rhai", &sandbox)] {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                line.starts_with("///")
                    || line.starts_with("module ")
                    || (line.starts_with("fn ") && line.ends_with(';') && line.contains('(')),
                "{name}: malformed line {line:?}"
            );
        }
    }
}
