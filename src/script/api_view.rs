//! The live view from scripts: the first session or agent of a run starts it (see
//! `view`); `session.view_url` / `session.jupyter_url` give a notebook's page and
//! `sandbox.jupyter_url` the run's page (`()` when the view is off).

use std::sync::{Arc, Weak};

use rhai::{Dynamic, Engine};
use serde_json::{Value, json};

use super::Host;
use super::api_session::SessionHandle;
use crate::live::Kind;

/// The run's sandboxes and finished agents, for its page.
fn run_info(host: &Weak<Host>) -> Value {
    let Some(host) = host.upgrade() else {
        return Value::Null;
    };
    let owned: Vec<_> = host.owned.lock().map(|v| v.clone()).unwrap_or_default();
    let sandboxes: Vec<Value> = owned
        .iter()
        .map(|sb| {
            let info = sb.info();
            let status = if sb.is_terminated() {
                "terminated"
            } else if sb.is_detached() {
                "detached"
            } else {
                "running"
            };
            json!({
                "id": info.id, "backend": info.backend, "status": status,
                "models": info.models.iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
                "gpu": info.config.get("gpu").cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    let agents = host.agents.lock().map(|v| v.clone()).unwrap_or_default();
    json!({"sandboxes": sandboxes, "agents": agents})
}

/// Starts the live view (once per process) and records this run in it.
pub fn start(host: &Arc<Host>) {
    if super::super::view::live(&host.rt).is_none() {
        return;
    }
    if let Some(hub) = crate::live::hub() {
        let weak = Arc::downgrade(host);
        hub.run_started(
            &host.run_dir,
            &host.script_path.to_string_lossy(),
            Arc::new(move || run_info(&weak)),
        );
    }
}

fn url_or_unit(url: Option<String>) -> Dynamic {
    url.map(Dynamic::from).unwrap_or(Dynamic::UNIT)
}

pub fn register(engine: &mut Engine, host: &Arc<Host>) {
    use super::api_util::getter;
    let notebook_url = |s: &mut SessionHandle| {
        url_or_unit(crate::view::doc_url(
            Kind::Notebook,
            &s.session.notebook_path,
        ))
    };
    getter(
        engine,
        "view_url",
        "",
        "The notebook's live page (seer's own page on 127.0.0.1 with a token, not a Jupyter server); `()` when the view is off (`SEER_VIEW=off`).",
        notebook_url,
    );
    getter(
        engine,
        "jupyter_url",
        "",
        "Seer's name for `view_url`: the notebook's live page (seer's own, not a Jupyter server).",
        notebook_url,
    );
    let _ = host;
}

/// `sandbox.jupyter_url`: the run's live page.
pub fn run_url(host: &Arc<Host>) -> Dynamic {
    start(host);
    url_or_unit(crate::view::run_url(&host.run_dir))
}
