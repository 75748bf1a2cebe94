//! The agent family: `run_agent(#{...}[, callback])` runs the loop of `agent::run`
//! against the MCP servers of `mcp_config`. `run_agent_interactive`, `parallel` and
//! `spawn` arrive later and say "not supported yet".

use std::sync::Arc;

use rhai::{Dynamic, Engine, FnPtr, Map, NativeCallContext};

use super::{Host, RhaiResult, not_supported, runtime_error};
use crate::agent::providers::provider_from;
use crate::agent::run::{AgentConfig, AgentResult, run};
use crate::config::from_dynamic;

fn result_map(r: &AgentResult) -> Map {
    let mut usage = Map::new();
    usage.insert("input_tokens".into(), (r.usage.input_tokens as i64).into());
    usage.insert(
        "output_tokens".into(),
        (r.usage.output_tokens as i64).into(),
    );
    usage.insert("turns".into(), (r.turns as i64).into());
    let mut m = Map::new();
    m.insert("final_text".into(), r.final_text.clone().into());
    m.insert("turns".into(), (r.turns as i64).into());
    m.insert("stop_reason".into(), r.stop_reason.clone().into());
    m.insert("usage".into(), usage.into());
    m.insert(
        "transcript".into(),
        r.transcript.to_string_lossy().to_string().into(),
    );
    m
}

fn transcript_path(host: &Host, name: &str) -> std::path::PathBuf {
    let dir = host.run_dir.join("transcripts");
    let mut p = dir.join(format!("{name}.jsonl"));
    let mut n = 2;
    while p.exists() {
        p = dir.join(format!("{name}-{n}.jsonl"));
        n += 1;
    }
    p
}

fn run_agent(
    host: &Host,
    ctx: Option<&NativeCallContext>,
    m: Map,
    cb: Option<FnPtr>,
) -> RhaiResult<Map> {
    let cfg: AgentConfig =
        from_dynamic("run_agent", &Dynamic::from_map(m)).map_err(|e| runtime_error(e.0))?;
    let provider = provider_from(&cfg.provider, cfg.base_url.clone(), cfg.api_key_env.clone())
        .map_err(|e| runtime_error(format!("run_agent: {e:#}")))?;
    let path = transcript_path(host, cfg.name.as_deref().unwrap_or("agent"));
    let cancel = host.cancel();
    let base = host.script_dir.clone();
    let mut on_event = |ev: serde_json::Value| -> anyhow::Result<()> {
        if let (Some(cb), Some(ctx)) = (&cb, ctx) {
            let arg = rhai::serde::to_dynamic(&ev).map_err(|e| anyhow::anyhow!("{e}"))?;
            let _: Dynamic = cb
                .call_within_context(ctx, (arg,))
                .map_err(|e| anyhow::anyhow!("the run_agent callback failed: {e}"))?;
        }
        Ok(())
    };
    let r = host.block_on(async {
        run(
            &cfg,
            provider.as_ref(),
            &base,
            &path,
            &mut on_event,
            &cancel,
        )
        .await
    })?;
    Ok(result_map(&r))
}

pub fn register(engine: &mut Engine, host: &Arc<Host>) {
    let h = host.clone();
    engine.register_fn("run_agent", move |m: Map| run_agent(&h, None, m, None));
    let h = host.clone();
    engine.register_fn(
        "run_agent",
        move |ctx: NativeCallContext, m: Map, cb: FnPtr| run_agent(&h, Some(&ctx), m, Some(cb)),
    );
    for name in ["run_agent_interactive", "parallel", "spawn"] {
        engine.register_fn(name, move |_: Dynamic| -> RhaiResult<Dynamic> {
            Err(not_supported(name))
        });
        engine.register_fn(name, move |_: Dynamic, _: Dynamic| -> RhaiResult<Dynamic> {
            Err(not_supported(name))
        });
    }
}
