//! The Rhai host: one engine per run with seer's API registered (one file per family),
//! the runner that executes a script on a blocking thread with cancellation, and the
//! error formatting that points at the innermost file:line:col.

pub mod api_agent;
pub mod api_sandbox;
pub mod api_scoped;
pub mod api_session;
pub mod api_shell;
pub mod api_sweep;
pub mod api_util;
pub mod api_view;
pub mod api_workspace;
pub mod errors;
pub mod lint;
pub mod reference;
pub mod runner;
pub mod seer_names;
pub mod static_check;
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
    /// `seer run --resume RUN_DIR`: `run_dir` is an earlier run's folder, and sweeps skip
    /// the items it finished.
    pub resume: bool,
    /// The sweeps of this run, for `run.json` (and so that two do not share a file).
    pub sweeps: Mutex<Vec<crate::sweep::Summary>>,
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
            resume: false,
            sweeps: Mutex::new(vec![]),
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
        let req = crate::sandbox::StartRequest {
            config,
            base_dir: self.script_dir.clone(),
            script: Some(self.script_path.to_string_lossy().to_string()),
            ..Default::default()
        };
        let cancel = self.cancel();
        let sb = self.block_on(async move { crate::sandbox::start(req, &cancel).await })?;
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

/// Stack of every thread that runs script code (the runtime's, `spawn`'s, `parallel`'s): a
/// Rhai call level takes a few KiB of native stack (more in debug builds), and the 2 MiB
/// default would overflow (an abort, not an error) before `SEER_MAX_CALL_LEVELS` is
/// reached. 32 MiB is address space, committed only as it is used.
pub const SCRIPT_STACK: usize = 32 << 20;

/// Limits that stop a runaway script with a clear error instead of exhausting memory or
/// the stack. Generous by default; each can be changed with an environment variable (0 =
/// unlimited, except for the call and expression depths):
///
/// | variable | default | limits |
/// |---|---|---|
/// | `SEER_MAX_STRING_SIZE` | 128 MiB | bytes of one string |
/// | `SEER_MAX_ARRAY_SIZE` | 10,000,000 | elements of one array |
/// | `SEER_MAX_MAP_SIZE` | 10,000,000 | entries of one object map |
/// | `SEER_MAX_CALL_LEVELS` | 256 | nested function calls (recursion) |
/// | `SEER_MAX_EXPR_DEPTH` | 256 | nesting of one expression |
/// | `SEER_MAX_OPERATIONS` | 0 (unlimited) | operations of the whole run |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    pub max_call_levels: usize,
    pub max_expr_depth: usize,
    pub max_operations: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_string_size: 128 << 20,
            max_array_size: 10_000_000,
            max_map_size: 10_000_000,
            max_call_levels: 256,
            max_expr_depth: MAX_EXPR_DEPTH,
            max_operations: 0,
        }
    }
}

impl Limits {
    /// The defaults, overridden by the `SEER_MAX_*` environment variables; an error names
    /// a variable that is not a whole number (or is 0 where 0 is not allowed).
    pub fn from_env() -> Result<Self, String> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`Self::from_env`] over any variable lookup.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut l = Limits::default();
        let read = |name: &str, value: &mut u64, zero_ok: bool| -> Result<(), String> {
            let Some(text) = get(name).filter(|t| !t.trim().is_empty()) else {
                return Ok(());
            };
            match text.trim().replace('_', "").parse::<u64>() {
                Ok(0) if !zero_ok => Err(format!("{name}={text:?}: must be at least 1")),
                Ok(n) => {
                    *value = n;
                    Ok(())
                }
                Err(_) => Err(format!(
                    "{name}={text:?} is not a whole number (0 means unlimited)"
                )),
            }
        };
        let mut v = [
            l.max_string_size as u64,
            l.max_array_size as u64,
            l.max_map_size as u64,
            l.max_call_levels as u64,
            l.max_expr_depth as u64,
            l.max_operations,
        ];
        read("SEER_MAX_STRING_SIZE", &mut v[0], true)?;
        read("SEER_MAX_ARRAY_SIZE", &mut v[1], true)?;
        read("SEER_MAX_MAP_SIZE", &mut v[2], true)?;
        read("SEER_MAX_CALL_LEVELS", &mut v[3], false)?;
        read("SEER_MAX_EXPR_DEPTH", &mut v[4], false)?;
        read("SEER_MAX_OPERATIONS", &mut v[5], true)?;
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        l.max_string_size = size(v[0]);
        l.max_array_size = size(v[1]);
        l.max_map_size = size(v[2]);
        l.max_call_levels = size(v[3]);
        l.max_expr_depth = size(v[4]);
        l.max_operations = v[5];
        Ok(l)
    }

    fn apply(&self, engine: &mut Engine) {
        engine.set_max_string_size(self.max_string_size);
        engine.set_max_array_size(self.max_array_size);
        engine.set_max_map_size(self.max_map_size);
        engine.set_max_call_levels(self.max_call_levels);
        engine.set_max_expr_depths(self.max_expr_depth, self.max_expr_depth);
        engine.set_max_operations(self.max_operations);
    }
}

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
    // `seer run` checks the variables first and fails on a bad one; elsewhere (the REPL)
    // a bad one falls back to the defaults with a warning.
    let limits = Limits::from_env().unwrap_or_else(|e| {
        tracing::warn!("{e}; using the default limits");
        Limits::default()
    });
    limits.apply(&mut engine);
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
    api_sweep::register(&mut engine, host);
    api_view::register(&mut engine, host);
    engine
}

/// An engine with the whole API, for reading it (`seer docs`, `seer check`): its host
/// runs nothing (a current-thread runtime, the current dir as the script's folder).
pub fn api_engine() -> anyhow::Result<(tokio::runtime::Runtime, Engine)> {
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let dir = std::env::current_dir()?;
    let host = Arc::new(Host::new(
        rt.handle().clone(),
        tokio_util::sync::CancellationToken::new(),
        dir.join("docs.rhai"),
        dir.clone(),
        dir.join("outputs"),
        vec![],
    ));
    let engine = build_engine(&host);
    Ok((rt, engine))
}

#[cfg(test)]
mod limits_tests {
    use super::Limits;

    #[test]
    fn limits_come_from_the_environment_with_clear_errors() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Limits::from_vars(vars(&[])).unwrap(), Limits::default());
        let l = Limits::from_vars(vars(&[
            ("SEER_MAX_STRING_SIZE", "1_000"),
            ("SEER_MAX_OPERATIONS", "5000"),
            ("SEER_MAX_ARRAY_SIZE", "0"),
            ("SEER_MAX_CALL_LEVELS", " 32 "),
        ]))
        .unwrap();
        assert_eq!(
            (
                l.max_string_size,
                l.max_operations,
                l.max_array_size,
                l.max_call_levels
            ),
            (1000, 5000, 0, 32)
        );
        let e = Limits::from_vars(vars(&[("SEER_MAX_MAP_SIZE", "lots")])).unwrap_err();
        assert!(
            e.contains("SEER_MAX_MAP_SIZE=\"lots\" is not a whole number"),
            "{e}"
        );
        let e = Limits::from_vars(vars(&[("SEER_MAX_CALL_LEVELS", "0")])).unwrap_err();
        assert!(
            e.contains("SEER_MAX_CALL_LEVELS=\"0\": must be at least 1"),
            "{e}"
        );
    }
}
