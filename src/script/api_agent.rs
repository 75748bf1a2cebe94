//! The agent family: `run_agent(#{...}[, callback])` runs the loop of `agent::run`
//! against the MCP servers of `mcp_config`; `spawn(closure)` runs a closure (usually an
//! agent) on its own thread (`parallel` and `sweep`, with a cap: `api_sweep`).
//! `run_agent_interactive(#{...})` is a terminal chat (`agent::chat_terminal`).

use std::sync::{Arc, Mutex};

use rhai::{Dynamic, Engine, EvalAltResult, FnPtr, Map, NativeCallContext};

use super::api_util::func;
use super::reference::Syntax;
use super::{Host, RhaiResult, at_call, runtime_error, terminated};
use crate::agent::chat_terminal::TerminalInput;
use crate::agent::claude_code;
use crate::agent::run::{AgentConfig, AgentResult, build_provider, run, run_interactive};
use crate::config::from_dynamic;

fn result_map(r: &AgentResult) -> Map {
    let mut usage = Map::new();
    usage.insert("input_tokens".into(), (r.usage.input_tokens as i64).into());
    usage.insert(
        "output_tokens".into(),
        (r.usage.output_tokens as i64).into(),
    );
    usage.insert(
        "cache_read_tokens".into(),
        (r.usage.cache_read_tokens as i64).into(),
    );
    usage.insert(
        "cache_write_tokens".into(),
        (r.usage.cache_write_tokens as i64).into(),
    );
    usage.insert("turns".into(), (r.turns as i64).into());
    usage.insert(
        "cost_usd".into(),
        r.cost_usd.map(Dynamic::from_float).unwrap_or(Dynamic::UNIT),
    );
    let mut m = Map::new();
    m.insert("final_text".into(), r.final_text.clone().into());
    m.insert("turns".into(), (r.turns as i64).into());
    m.insert("stop_reason".into(), r.stop_reason.clone().into());
    // The same, under the short name the limits are documented with (`result.stop`).
    m.insert("stop".into(), r.stop_reason.clone().into());
    m.insert("usage".into(), usage.into());
    m.insert(
        "model".into(),
        r.model.clone().map(Dynamic::from).unwrap_or(Dynamic::UNIT),
    );
    m.insert(
        "transcript".into(),
        r.transcript.to_string_lossy().to_string().into(),
    );
    m
}

/// The agent's `name` becomes its transcript's file name.
fn check_name(what: &str, cfg: &AgentConfig) -> RhaiResult<()> {
    match &cfg.name {
        Some(n) => crate::paths::check_file_name(&format!("{what}: `name`"), n)
            .map_err(|e| runtime_error(e.to_string())),
        None => Ok(()),
    }
}

/// Claims the transcript file of an agent named `name`: `transcripts/<name>.jsonl`, else
/// the first free `<name>-N.jsonl` (N = 2, 3, …). The file is created empty and exclusively
/// (`create_new`), so agents started at the same time (`parallel`, `spawn`, `sweep`) never
/// share a file, whatever order they start in; the agent's transcript writer then fills it.
fn claim_transcript(host: &Host, what: &str, name: &str) -> RhaiResult<std::path::PathBuf> {
    // The run folder is private (0700); the transcripts' folder is made inside it.
    if let Err(e) = crate::paths::create_private_dir(&host.run_dir) {
        tracing::warn!("cannot create {}: {e}", host.run_dir.display());
    }
    let dir = host.run_dir.join("transcripts");
    std::fs::create_dir_all(&dir)
        .map_err(|e| runtime_error(format!("{what}: cannot create {}: {e}", dir.display())))?;
    let mut n = 1u64;
    loop {
        let p = if n == 1 {
            dir.join(format!("{name}.jsonl"))
        } else {
            dir.join(format!("{name}-{n}.jsonl"))
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(_) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => {
                return Err(runtime_error(format!(
                    "{what}: cannot create the transcript {}: {e}",
                    p.display()
                )));
            }
        }
    }
}

/// Passes each agent event to the script's callback (if any) as a map.
fn callback<'a>(
    cb: &'a Option<FnPtr>,
    ctx: Option<&'a NativeCallContext<'a>>,
) -> impl FnMut(serde_json::Value) -> anyhow::Result<()> + Send + 'a {
    move |ev| {
        if let (Some(cb), Some(ctx)) = (cb, ctx) {
            let arg = rhai::serde::to_dynamic(&ev).map_err(|e| anyhow::anyhow!("{e}"))?;
            let _: Dynamic = cb
                .call_within_context(ctx, (arg,))
                .map_err(|e| anyhow::anyhow!("the agent callback failed: {e}"))?;
        }
        Ok(())
    }
}

fn run_agent(
    host: &Arc<Host>,
    ctx: Option<&NativeCallContext>,
    m: Map,
    cb: Option<FnPtr>,
) -> RhaiResult<Map> {
    let cfg: AgentConfig =
        from_dynamic("run_agent", &Dynamic::from_map(m)).map_err(|e| runtime_error(e.0))?;
    check_name("run_agent", &cfg)?;
    if let Some(t) = &cfg.transcript {
        host.track(&host.script_dir.join(t));
    }
    let provider = if cfg.provider == "claude-code" {
        None
    } else {
        Some(
            build_provider(&cfg, &host.script_dir)
                .map_err(|e| runtime_error(format!("run_agent: {e:#}")))?,
        )
    };
    cfg.validate(false)
        .map_err(|e| runtime_error(format!("run_agent: {e:#}")))?;
    let path = claim_transcript(host, "run_agent", cfg.name.as_deref().unwrap_or("agent"))?;
    super::api_view::start(host);
    let cancel = host.cancel();
    let base = host.script_dir.clone();
    let mut on_event = callback(&cb, ctx);
    let r = if let Some(provider) = provider {
        host.block_on(async {
            run(
                &cfg,
                provider.as_ref(),
                &base,
                &path,
                &mut on_event,
                &cancel,
            )
            .await
        })?
    } else {
        host.block_on(claude_code::run(&cfg, &base, &path, &mut on_event, &cancel))?
    };
    host.record_agent(agent_summary(&cfg, &r));
    Ok(result_map(&r))
}

/// A terminal chat with the agent: see `agent::chat_terminal`. `prompt` may be empty.
fn run_agent_interactive(
    host: &Arc<Host>,
    ctx: Option<&NativeCallContext>,
    m: Map,
    cb: Option<FnPtr>,
) -> RhaiResult<Map> {
    let cfg: AgentConfig = from_dynamic("run_agent_interactive", &Dynamic::from_map(m))
        .map_err(|e| runtime_error(e.0))?;
    check_name("run_agent_interactive", &cfg)?;
    let provider = build_provider(&cfg, &host.script_dir)
        .map_err(|e| runtime_error(format!("run_agent_interactive: {e:#}")))?;
    cfg.validate(true)
        .map_err(|e| runtime_error(format!("run_agent_interactive: {e:#}")))?;
    let history = Some(crate::paths::state_dir().join("chat_history"));
    let mut input = TerminalInput::new(history, host.interrupt.clone())
        .map_err(|e| runtime_error(format!("run_agent_interactive: no terminal: {e:#}")))?;
    let path = claim_transcript(
        host,
        "run_agent_interactive",
        cfg.name.as_deref().unwrap_or("chat"),
    )?;
    super::api_view::start(host);
    let cancel = host.cancel();
    let base = host.script_dir.clone();
    let mut on_event = callback(&cb, ctx);
    let r = host.block_on(async {
        run_interactive(
            &cfg,
            provider.as_ref(),
            &base,
            &path,
            &mut input,
            &mut on_event,
            &cancel,
        )
        .await
    })?;
    host.record_agent(agent_summary(&cfg, &r));
    Ok(result_map(&r))
}

fn agent_summary(cfg: &AgentConfig, r: &AgentResult) -> serde_json::Value {
    serde_json::json!({
        "name": cfg.name.as_deref().unwrap_or("agent"), "provider": cfg.provider, "model": r.model,
        "turns": r.turns, "stop_reason": r.stop_reason,
        "input_tokens": r.usage.input_tokens, "output_tokens": r.usage.output_tokens,
        "cache_read_tokens": r.usage.cache_read_tokens, "cache_write_tokens": r.usage.cache_write_tokens,
        "cost_usd": r.cost_usd, "transcript": r.transcript,
    })
}

/// A closure running on its own thread, from `spawn`.
#[derive(Clone)]
pub struct Task {
    state: Arc<Mutex<TaskState>>,
}

type TaskResult = Result<Dynamic, Box<EvalAltResult>>;

enum TaskState {
    Running(std::thread::JoinHandle<TaskResult>),
    Finished(Dynamic),
    Failed,
}

impl Task {
    /// The closure's value; its error is raised by the first `join` only.
    fn join(&self) -> RhaiResult<Dynamic> {
        let mut st = self
            .state
            .lock()
            .map_err(|_| runtime_error("task: state poisoned"))?;
        match std::mem::replace(&mut *st, TaskState::Failed) {
            TaskState::Running(h) => {
                let r = h
                    .join()
                    .unwrap_or_else(|_| Err(runtime_error("the spawned closure panicked")));
                if let Ok(v) = &r {
                    *st = TaskState::Finished(v.clone());
                }
                r
            }
            TaskState::Finished(v) => {
                *st = TaskState::Finished(v.clone());
                Ok(v)
            }
            TaskState::Failed => Err(runtime_error(
                "task: it failed, and its error was raised by an earlier join()",
            )),
        }
    }

    fn is_done(&self) -> bool {
        match self.state.lock().as_deref() {
            Ok(TaskState::Running(h)) => h.is_finished(),
            _ => true,
        }
    }
}

/// Starts `f` on its own thread and returns a task to `join()`.
fn spawn(host: &Arc<Host>, ctx: NativeCallContext, f: FnPtr) -> RhaiResult<Task> {
    let engine = host
        .engine()
        .ok_or_else(|| runtime_error("spawn: no engine (the run is ending)"))?;
    #[allow(deprecated)]
    let store = ctx.store_data();
    let handle = std::thread::Builder::new()
        .name("seer-spawn".into())
        .stack_size(super::SCRIPT_STACK)
        .spawn(move || {
            #[allow(deprecated)]
            let ctx = store.create_context(&engine);
            f.call_within_context::<Dynamic>(&ctx, ())
        })
        .map_err(|e| runtime_error(format!("spawn: cannot start a thread: {e}")))?;
    let task = Task {
        state: Arc::new(Mutex::new(TaskState::Running(handle))),
    };
    host.track_task(task.clone());
    Ok(task)
}

/// Waits for every task spawned during the run (the runner calls this at the end).
pub fn join_all(tasks: Vec<Task>) {
    for t in tasks {
        let _ = t.join();
    }
}

/// `spawn` as `seer docs` and `:help` show it. Rhai's metadata lists functions, not custom
/// syntax, so `reference` takes this from here.
pub const SPAWN: Syntax = Syntax {
    keyword: "spawn",
    params: &[("f", "Fn")],
    ret: "Task",
    doc: "Starts a closure on its own thread and returns a Task: `t.join()` waits for its value (raising its error), `t.is_done()`.",
};

/// Syntax seer adds to Rhai (also needed to merely compile a script): `spawn` is a
/// reserved word in Rhai, made a custom keyword taking the closure (`spawn(|| ...)`
/// parses as `spawn` + a parenthesized expression). Documented by [`SPAWN`].
pub fn register_syntax(engine: &mut Engine) {
    if let Err(e) = engine.register_custom_syntax(["spawn", "$expr$"], false, |ctx, inputs| {
        let f = ctx.eval_expression_tree(&inputs[0])?;
        ctx.call_fn::<Dynamic>("__seer_spawn", (f,))
    }) {
        tracing::error!("cannot register `spawn`: {e}");
    }
}

pub fn register(engine: &mut Engine, host: &Arc<Host>) {
    const RUN_AGENT: &str = "Runs an LLM tool loop over the MCP servers of `mcp_config`: `#{ prompt (the system prompt, as in Seer), user_message (the first user message; default: \"Begin. Follow the instructions in the system prompt, and end with a summary of what you found.\"), mcp_config, tools: \"none\" (no tools on purpose; otherwise an empty mcp_config is an error), provider: anthropic|claude|openai|gemini|claude-code|replay, model, base_url, api_key_env, kwargs: #{ temperature, top_p, top_k, thinking_budget, reasoning_effort, stop, extra_body, cache }, max_turns, max_tokens, system_prompt (= prompt), name, transcript (replay), prices, live_log, request_timeout, max_retries, context_window, context: #{ strategy: auto|edit|summary|trim|none, threshold, keep_last, max_tool_result, summary_model, trim_keep }, limits: #{ turns, tokens, cost_usd, wall_s, tool_calls }, tool_timeout }`; the callback gets every event (`text`, `thinking`, `tool_call`, `tool_result`, `usage`, `error`, `done`). Returns `#{ final_text, turns, stop_reason (= stop: end_turn, max_turns, turn_limit, token_limit, cost_limit, time_limit, tool_call_limit, …), model, usage: #{ input_tokens, output_tokens, cost_usd, … }, transcript }`.";
    let h = host.clone();
    func(engine, "run_agent", "cfg", RUN_AGENT, move |m: Map| {
        run_agent(&h, None, m, None)
    });
    let h = host.clone();
    func(
        engine,
        "run_agent",
        "cfg, callback",
        RUN_AGENT,
        move |ctx: NativeCallContext, m: Map, cb: FnPtr| run_agent(&h, Some(&ctx), m, Some(cb)),
    );
    register_syntax(engine);
    // What `spawn` calls: internal (`__`), so not in the reference; see [`SPAWN`].
    let h = host.clone();
    engine.register_fn("__seer_spawn", move |ctx: NativeCallContext, f: FnPtr| {
        let pos = ctx.call_position();
        spawn(&h, ctx, f).map_err(|mut e| {
            if e.position().is_none() {
                e.set_position(pos);
            }
            e
        })
    });
    engine.register_type_with_name::<Task>("Task");
    let h = host.clone();
    func(
        engine,
        "join",
        "",
        "Waits for the spawned closure and returns its value (or raises its error).",
        move |ctx: NativeCallContext, t: &mut Task| {
            let r = t.join();
            if h.cancel().is_cancelled() {
                return Err(terminated());
            }
            r.map_err(|e| at_call(e, &ctx))
        },
    );
    func(
        engine,
        "is_done",
        "",
        "Whether the spawned closure has finished.",
        |t: &mut Task| t.is_done(),
    );
    const INTERACTIVE: &str = "A terminal chat with the agent (same options as run_agent; `prompt` optional; `user_message`, if given, is sent first): Esc or Ctrl-C interrupts its turn, Ctrl-D or /exit ends the chat. Returns the same map as run_agent.";
    let h = host.clone();
    func(
        engine,
        "run_agent_interactive",
        "cfg",
        INTERACTIVE,
        move |ctx: NativeCallContext, m: Map| run_agent_interactive(&h, Some(&ctx), m, None),
    );
    let h = host.clone();
    func(
        engine,
        "run_agent_interactive",
        "cfg, callback",
        INTERACTIVE,
        move |ctx: NativeCallContext, m: Map, cb: FnPtr| {
            run_agent_interactive(&h, Some(&ctx), m, Some(cb))
        },
    );
}
