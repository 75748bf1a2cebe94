//! The Rhai host: one engine per run with seer's API registered (one file per family),
//! the runner that executes a script on a blocking thread with cancellation, and the
//! error formatting that points at the innermost file:line:col.

pub mod api_agent;
pub mod api_sandbox;
pub mod api_scoped;
pub mod api_session;
pub mod api_shell;
pub mod api_util;
pub mod api_workspace;
pub mod errors;
pub mod reference;
pub mod runner;
pub mod stdlib;
pub mod watch;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rhai::{Dynamic, Engine, EvalAltResult, Position};
use tokio_util::sync::CancellationToken;

use crate::sandbox::Sandbox;

pub type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// What registered functions share during one run.
pub struct Host {
    pub rt: tokio::runtime::Handle,
    /// Cancels what the script is doing now; replaced per REPL line (`renew_cancel`).
    cancel: Mutex<CancellationToken>,
    pub script_path: PathBuf,
    pub script_dir: PathBuf,
    /// `outputs/<experiment>-<timestamp>/`: created on first use.
    pub run_dir: PathBuf,
    pub args: Vec<String>,
    /// Sandboxes this run started: ended when the run ends unless detached.
    pub owned: Mutex<Vec<Arc<dyn Sandbox>>>,
    /// The run's engine, for `spawn` (threads that outlive the native call).
    pub engine: Mutex<std::sync::Weak<Engine>>,
    /// Closures started with `spawn`: joined before the run ends.
    pub tasks: Mutex<Vec<api_agent::Task>>,
    /// A summary of every agent run (tokens, cost), for `run.json`.
    pub agents: Mutex<Vec<serde_json::Value>>,
    /// The turn of an interactive chat that Ctrl-C interrupts instead of the script.
    pub interrupt: crate::agent::chat_terminal::InterruptSlot,
    /// `seer run --watch`: sandboxes and kernels kept warm across runs.
    pub pool: Option<Arc<crate::warm::WarmPool>>,
    /// Notebook sessions this run opened (their kernels go to the pool at the end).
    pub sessions: Mutex<Vec<Arc<crate::notebook::session::NotebookSession>>>,
    /// Host files the script read through seer: `--watch` reruns when one changes.
    pub reads: Mutex<std::collections::BTreeSet<PathBuf>>,
}

impl Host {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rt: tokio::runtime::Handle,
        cancel: CancellationToken,
        script_path: PathBuf,
        script_dir: PathBuf,
        run_dir: PathBuf,
        args: Vec<String>,
    ) -> Self {
        Self {
            rt,
            cancel: Mutex::new(cancel),
            script_path,
            script_dir,
            run_dir,
            args,
            owned: Mutex::new(vec![]),
            engine: Mutex::new(std::sync::Weak::new()),
            tasks: Mutex::new(vec![]),
            agents: Mutex::new(vec![]),
            interrupt: Arc::default(),
            pool: None,
            sessions: Mutex::new(vec![]),
            reads: Mutex::new(Default::default()),
        }
    }

    /// The token that stops what the script is doing now (Ctrl-C, hot reload).
    pub fn cancel(&self) -> CancellationToken {
        match self.cancel.lock() {
            Ok(t) => t.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replaces the token with a fresh one, so the next REPL line can run after Ctrl-C
    /// stopped the previous one. Returns the new token.
    pub fn renew_cancel(&self) -> CancellationToken {
        let fresh = CancellationToken::new();
        match self.cancel.lock() {
            Ok(mut t) => *t = fresh.clone(),
            Err(p) => *p.into_inner() = fresh.clone(),
        }
        fresh
    }

    /// Runs an async operation to its end from the script thread. Operations watch the
    /// cancellation token themselves (so they can clean up, e.g. kill a process group);
    /// once cancelled, the script is stopped with a non-catchable termination.
    pub fn block_on<T>(&self, fut: impl Future<Output = anyhow::Result<T>>) -> RhaiResult<T> {
        let cancel = self.cancel();
        let out = self.rt.block_on(fut);
        if cancel.is_cancelled() {
            return Err(terminated());
        }
        out.map_err(|e| runtime_error(format!("{e:#}")))
    }

    pub fn set_engine(&self, engine: &Arc<Engine>) {
        if let Ok(mut e) = self.engine.lock() {
            *e = Arc::downgrade(engine);
        }
    }

    pub fn engine(&self) -> Option<Arc<Engine>> {
        self.engine.lock().ok().and_then(|e| e.upgrade())
    }

    pub fn track_task(&self, t: api_agent::Task) {
        if let Ok(mut v) = self.tasks.lock() {
            v.push(t);
        }
    }

    pub fn record_agent(&self, summary: serde_json::Value) {
        if let Ok(mut v) = self.agents.lock() {
            v.push(summary);
        }
    }

    /// Notes a host file or folder the script depends on (for `--watch`).
    pub fn track(&self, path: &std::path::Path) {
        if let (Ok(mut r), Ok(p)) = (self.reads.lock(), std::path::absolute(path)) {
            r.insert(p);
        }
    }

    pub fn own(&self, sb: Arc<dyn Sandbox>) {
        if let Ok(mut v) = self.owned.lock() {
            v.push(sb);
        }
    }

    /// Starts a local sandbox that a session made for itself (`create_local_session`,
    /// `create_local_notebook_session`), owned by this run.
    pub fn start_session_sandbox(
        &self,
        config: crate::sandbox::SandboxConfig,
    ) -> RhaiResult<Arc<dyn Sandbox>> {
        let req = crate::sandbox::local::StartRequest {
            config,
            base_dir: self.script_dir.clone(),
            snapshot: None,
            script: Some(self.script_path.to_string_lossy().to_string()),
        };
        let cancel = self.cancel();
        let sb = self.block_on(async move {
            crate::sandbox::local::LocalSandbox::start(req, &cancel).await
        })?;
        let sb: Arc<dyn Sandbox> = sb;
        self.own(sb.clone());
        Ok(sb)
    }
}

/// A script error with a message; rhai fills in the position of the failing call.
pub fn runtime_error(msg: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(msg.into()),
        Position::NONE,
    ))
}

/// Gives an error the position of the native call in `ctx` when it has none: rhai
/// does not fill it in for namespaced calls such as `Sandbox::from_id(..)`.
pub fn at_call(mut e: Box<EvalAltResult>, ctx: &rhai::NativeCallContext) -> Box<EvalAltResult> {
    if e.position().is_none() {
        e.set_position(ctx.call_position());
    }
    e
}

pub fn terminated() -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorTerminated(
        Dynamic::from("cancelled"),
        Position::NONE,
    ))
}

/// A feature that exists in Seer's API but not here yet.
pub fn not_supported(what: &str) -> Box<EvalAltResult> {
    runtime_error(format!(
        "not supported yet: {what} (see the README's list of what works)"
    ))
}

/// Nesting allowed in expressions (rhai's defaults are tight for map-heavy code inside
/// functions, such as a `run_agent(cfg + #{ ... })` call).
const MAX_EXPR_DEPTH: usize = 256;

/// An engine that parses seer scripts (custom syntax included) without the API, for
/// checking syntax.
pub fn syntax_engine() -> Engine {
    let mut engine = Engine::new_raw();
    engine.set_max_expr_depths(MAX_EXPR_DEPTH, MAX_EXPR_DEPTH);
    api_agent::register_syntax(&mut engine);
    engine
}

/// Builds the engine for one run, with every API family registered.
pub fn build_engine(host: &Arc<Host>) -> Engine {
    let mut engine = Engine::new_raw();
    engine.set_max_expr_depths(MAX_EXPR_DEPTH, MAX_EXPR_DEPTH);
    engine.register_global_module(rhai::packages::Package::as_shared_module(
        &rhai::packages::StandardPackage::new(),
    ));
    let mut files = rhai::module_resolvers::FileModuleResolver::new_with_path(&host.script_dir);
    files.enable_cache(true);
    engine.set_module_resolver(stdlib::Resolver::new(files));
    let h = host.clone();
    engine.on_progress(move |_| {
        if h.cancel().is_cancelled() {
            Some(Dynamic::from("cancelled"))
        } else {
            None
        }
    });
    api_util::register(&mut engine, host);
    api_sandbox::register(&mut engine, host);
    api_workspace::register(&mut engine, host);
    api_scoped::register(&mut engine, host);
    api_session::register(&mut engine, host);
    api_shell::register(&mut engine, host);
    api_agent::register(&mut engine, host);
    engine
}
