//! Running a script: read it, compile it, run it on a blocking thread while the async
//! runtime watches for Ctrl-C/SIGTERM, then end every sandbox the run owns and write
//! `run.json` into the run's output folder.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rhai::{Array, Dynamic, Scope};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::errors::{self, Located};
use super::{Host, api_agent, build_engine};
use crate::sandbox::registry::now;
use crate::warm::WarmPool;

pub struct RunOptions {
    pub script: PathBuf,
    pub args: Vec<String>,
    /// Parent of the run folders (`outputs/` in the current dir by default).
    pub output_root: PathBuf,
    /// `--resume RUN_DIR`: run in that earlier run's folder, and let its sweeps skip the
    /// items it finished.
    pub resume: Option<PathBuf>,
}

/// How a run ended, as a process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed,
    Interrupted(i32),
}

impl Outcome {
    pub fn code(self) -> u8 {
        match self {
            Outcome::Ok => 0,
            Outcome::Failed => 1,
            Outcome::Interrupted(sig) => (128 + sig) as u8,
        }
    }
}

fn read_script(path: &Path) -> Result<(PathBuf, String), String> {
    let abs = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let src = std::fs::read_to_string(&abs)
        .map_err(|e| format!("cannot read script {}: {e}", path.display()))?;
    Ok((abs, src))
}

/// `seer check FILE`: prints every syntax error as `file:line:col: message`.
pub fn check(path: &Path) -> Outcome {
    let (_, src) = match read_script(path) {
        Ok(x) => x,
        Err(e) => {
            crate::output::err_line(&format!("error: {e}"));
            return Outcome::Failed;
        }
    };
    let engine = super::syntax_engine();
    let shown = path.to_string_lossy().to_string();
    print_warnings(&src, &shown);
    let errs = errors::all_parse_errors(&engine, &src, &shown);
    if errs.is_empty() {
        // Methods and properties the values' seer types do not have.
        let findings = match super::api_engine() {
            Ok((_rt, api)) => match api.compile(&src) {
                Ok(ast) => super::static_check::check(&api, &ast),
                Err(_) => vec![],
            },
            Err(e) => {
                tracing::warn!("cannot build the API engine for the name check: {e:#}");
                vec![]
            }
        };
        if findings.is_empty() {
            crate::output::out_line(&format!("{shown}: ok"));
            return Outcome::Ok;
        }
        for f in &findings {
            crate::output::err_line(&format!("{shown}:{}:{}: {}", f.line, f.col, f.message));
        }
        crate::output::err_line(&format!("{} unknown name(s)", findings.len()));
        Outcome::Failed
    } else {
        for e in &errs {
            crate::output::err_line(&format!("{e}"));
        }
        crate::output::err_line(&format!("{} syntax error(s)", errs.len()));
        Outcome::Failed
    }
}

/// Prints the script's lint warnings (`lint`) to stderr.
fn print_warnings(src: &str, shown: &str) {
    for w in super::lint::warnings(src) {
        crate::output::err_line(&format!("warning: {}", w.located(shown)));
    }
}

fn run_dir_for(root: &Path, script: &Path) -> PathBuf {
    let stem = script
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "run".into());
    // `main.rhai` in an experiment folder is named after the folder.
    let name = if stem == "main" {
        script
            .parent()
            .and_then(|p| p.file_name())
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or(stem)
    } else {
        stem
    };
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    let base = root.join(format!("{name}-{stamp}"));
    let mut dir = base.clone();
    let mut n = 2;
    while dir.exists() {
        dir = PathBuf::from(format!("{}-{n}", base.display()));
        n += 1;
    }
    dir
}

/// `seer run FILE [-- ARGS]`.
pub fn run(opts: RunOptions) -> Outcome {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(crate::script::SCRIPT_STACK)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::output::err_line(&format!("error: cannot start the async runtime: {e}"));
            return Outcome::Failed;
        }
    };
    let cancel = CancellationToken::new();
    let signal = Arc::new(Mutex::new(None::<i32>));
    let interrupt = crate::agent::chat_terminal::InterruptSlot::default();
    {
        let _guard = rt.enter();
        spawn_signal_watch(cancel.clone(), signal.clone(), interrupt.clone());
    }
    let (outcome, _) = run_once(&rt, &opts, &cancel, &signal, interrupt, None);
    // Do not wait for a script thread stuck in a call that ignores cancellation.
    rt.shutdown_timeout(Duration::from_millis(100));
    outcome
}

/// One run of the script on `rt`. With a warm `pool` (`--watch`) the sandboxes and
/// kernels it uses stay for the next run instead of ending. Returns the outcome and the
/// host files the run read through seer.
pub(crate) fn run_once(
    rt: &tokio::runtime::Runtime,
    opts: &RunOptions,
    cancel: &CancellationToken,
    signal: &Arc<Mutex<Option<i32>>>,
    interrupt: crate::agent::chat_terminal::InterruptSlot,
    pool: Option<Arc<WarmPool>>,
) -> (Outcome, Vec<PathBuf>) {
    let (script, src) = match read_script(&opts.script) {
        Ok(x) => x,
        Err(e) => {
            crate::output::err_line(&format!("error: {e}"));
            return (Outcome::Failed, vec![]);
        }
    };
    let script_dir = script
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    // `.env` next to the script, then in the current dir; real env vars win.
    let _ = dotenvy::from_path(script_dir.join(".env"));
    let _ = dotenvy::dotenv();

    if let Err(e) = super::Limits::from_env() {
        crate::output::err_line(&format!("error: {e}"));
        return (Outcome::Failed, vec![]);
    }
    let shown = opts.script.to_string_lossy().to_string();
    let run_dir = match &opts.resume {
        Some(dir) if dir.is_dir() => dir.clone(),
        Some(dir) => {
            crate::output::err_line(&format!(
                "error: --resume {}: no such run folder (give the folder of the run to resume, outputs/<script>-<time>)",
                dir.display()
            ));
            return (Outcome::Failed, vec![]);
        }
        None => run_dir_for(&opts.output_root, &script),
    };
    let started = Instant::now();
    let started_at = now();
    let mut host = Host::new(
        rt.handle().clone(),
        cancel.clone(),
        script.clone(),
        script_dir.clone(),
        run_dir.clone(),
        opts.args.clone(),
    );
    host.interrupt = interrupt;
    host.pool = pool.clone();
    host.resume = opts.resume.is_some();
    if let Some(p) = &pool {
        p.begin_run();
    }
    let host = Arc::new(host);
    host.track(&script);

    let outcome = rt.block_on(async {
        let engine = Arc::new(build_engine(&host));
        host.set_engine(&engine);
        // Kept for explaining a failed run's error (`seer_names`) after the script ended.
        let names_engine = engine.clone();
        let mut ast = match engine.compile(&src) {
            Ok(ast) => ast,
            Err(e) => {
                crate::output::err_line(&format!("error: {}", errors::locate_parse(&e, &src, &shown)));
                return (Outcome::Failed, Some("syntax error".to_string()));
            }
        };
        ast.set_source(shown.clone());
        print_warnings(&src, &shown);
        let mut scope = Scope::new();
        let args: Array = opts.args.iter().map(|a| Dynamic::from(a.clone())).collect();
        scope.push_constant("ARGS", args);
        let h = host.clone();
        let mut job = tokio::task::spawn_blocking(move || {
            let r = engine.run_ast_with_scope(&mut scope, &ast);
            // Closures started with `spawn` and never joined are part of the run.
            let tasks = h.tasks.lock().map(|mut t| std::mem::take(&mut *t)).unwrap_or_default();
            api_agent::join_all(tasks);
            r
        });
        let result = tokio::select! {
            r = &mut job => Some(r),
            // A native call that ignores cancellation must not keep us from cleaning up.
            _ = async { cancel.cancelled().await; tokio::time::sleep(Duration::from_millis(1500)).await } => None,
        };
        match result {
            Some(Ok(Ok(()))) => (Outcome::Ok, None),
            Some(Ok(Err(err))) => {
                if cancel.is_cancelled() {
                    (Outcome::Interrupted(signal_number(signal)), Some("interrupted".into()))
                } else {
                    let mut loc = locate(&err, &shown, &script_dir);
                    if let Some(m) =
                        super::seer_names::Names::new(&names_engine).explain(&loc.message)
                    {
                        loc.message = m;
                    }
                    crate::output::err_line(&format!("error: {loc}"));
                    (Outcome::Failed, Some(loc.to_string()))
                }
            }
            Some(Err(join)) => {
                crate::output::err_line(&format!("error: the script thread failed: {join}"));
                (Outcome::Failed, Some(join.to_string()))
            }
            None => (Outcome::Interrupted(signal_number(signal)), Some("interrupted".into())),
        }
    });
    let (outcome, error) = outcome;
    if let Some(hub) = crate::live::hub() {
        let status = match outcome {
            Outcome::Ok => "ok",
            Outcome::Failed => "error",
            Outcome::Interrupted(_) => "interrupted",
        };
        hub.run_ended(&run_dir, status, error.clone());
    }

    // `--watch`: the sessions' kernels stay warm with their sandboxes.
    if let Some(pool) = &pool {
        let sessions: Vec<_> = host
            .sessions
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        for s in sessions {
            let sid = s.sandbox().info().id;
            if !pool.holds(&sid) {
                continue;
            }
            let key = crate::warm::kernel_key(&s.name, s.init_code());
            if let Some(k) = rt.block_on(s.take_kernel())
                && !k.is_dead()
            {
                pool.put_kernel(sid, key, k);
            }
        }
        for id in pool.end_run(outcome == Outcome::Ok) {
            crate::output::err_line(&format!(
                "[watch] ended sandbox {id}: this run did not use it"
            ));
        }
    }
    // End what the run started (detached sandboxes live on until their timeout; warm
    // ones until the next run or the end of the watch).
    let owned: Vec<_> = host.owned.lock().map(|v| v.clone()).unwrap_or_default();
    let mut sandboxes = vec![];
    for sb in &owned {
        let info = sb.info();
        let detached = sb.is_detached();
        let warm = pool.as_ref().is_some_and(|p| p.holds(&info.id));
        if !detached
            && !warm
            && !sb.is_terminated()
            && let Err(e) = sb.terminate()
        {
            crate::output::err_line(&format!(
                "warning: could not terminate sandbox {}: {e:#}",
                info.id
            ));
        }
        sandboxes.push(json!({
            "id": info.id, "backend": info.backend, "detached": detached, "config": info.config,
            "python_env": info.env.as_ref().map(|e| json!({
                "key": e.key, "python_version": e.python_version, "packages": e.packages, "installed": e.installed,
            })),
            "models": info.models, "repos": info.repos,
        }));
    }
    if matches!(outcome, Outcome::Interrupted(_)) && pool.is_none() {
        crate::output::err_line("interrupted: the script was stopped and its sandboxes ended");
    }
    let agents: Vec<serde_json::Value> = host.agents.lock().map(|v| v.clone()).unwrap_or_default();
    let sum = |k: &str| agents.iter().filter_map(|a| a[k].as_u64()).sum::<u64>();
    let costs: Vec<f64> = agents
        .iter()
        .filter_map(|a| a["cost_usd"].as_f64())
        .collect();
    let agent_totals = json!({
        "agents": agents.len(), "input_tokens": sum("input_tokens"), "output_tokens": sum("output_tokens"),
        "cache_read_tokens": sum("cache_read_tokens"), "cache_write_tokens": sum("cache_write_tokens"),
        "cost_usd": if costs.len() == agents.len() { Some(costs.iter().sum::<f64>()) } else { None },
    });
    let sweeps: Vec<crate::sweep::Summary> =
        host.sweeps.lock().map(|v| v.clone()).unwrap_or_default();
    let record = json!({
        "script": script, "script_sha256": hex::encode(Sha256::digest(src.as_bytes())),
        "args": &opts.args, "seer_version": env!("CARGO_PKG_VERSION"),
        "started_at": started_at, "ended_at": now(), "duration_s": started.elapsed().as_secs_f64(),
        "status": match outcome { Outcome::Ok => "ok", Outcome::Failed => "error", Outcome::Interrupted(_) => "interrupted" },
        "error": error, "sandboxes": sandboxes, "agents": agents, "agent_totals": agent_totals,
        "resumed": opts.resume.is_some(), "sweeps": sweeps,
    });
    // The run's record is part of its result: a run whose record cannot be written fails
    // (what it already wrote, notebooks and transcripts, stays where it is).
    let run_json = run_dir.join("run.json");
    let mut outcome = outcome;
    if let Err(e) = crate::paths::create_private_dir(&run_dir)
        .and_then(|()| std::fs::write(&run_json, serde_json::to_vec_pretty(&record)?))
    {
        crate::output::err_line(&format!(
            "error: could not write the run record {}: {e}",
            run_json.display()
        ));
        if outcome == Outcome::Ok {
            outcome = Outcome::Failed;
        }
    }
    let reads = host
        .reads
        .lock()
        .map(|r| r.iter().cloned().collect())
        .unwrap_or_default();
    (outcome, reads)
}

fn signal_number(s: &Arc<Mutex<Option<i32>>>) -> i32 {
    s.lock().ok().and_then(|g| *g).unwrap_or(2)
}

pub(crate) fn spawn_signal_watch(
    cancel: CancellationToken,
    which: Arc<Mutex<Option<i32>>>,
    interrupt: crate::agent::chat_terminal::InterruptSlot,
) {
    use tokio::signal::unix::{SignalKind, signal};
    tokio::spawn(async move {
        let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::warn!("cannot watch for Ctrl-C; interrupting will not clean up sandboxes");
            return;
        };
        let sig = loop {
            // SIGHUP: the terminal closed.
            let sig =
                tokio::select! { _ = int.recv() => 2, _ = term.recv() => 15, _ = hup.recv() => 1 };
            // Ctrl-C during an interactive chat's turn interrupts that turn only.
            let turn = interrupt.lock().ok().and_then(|s| s.clone());
            match turn {
                Some(turn) if sig == 2 && !turn.is_cancelled() => turn.cancel(),
                _ => break sig,
            }
        };
        if let Ok(mut w) = which.lock() {
            *w = Some(sig);
        }
        crate::output::err_line("\nstopping: ending the script and its sandboxes…");
        cancel.cancel();
    });
}

/// Locates a script error (see `errors::locate`), modules' files found from the script's
/// folder.
pub(crate) fn locate(err: &rhai::EvalAltResult, shown: &str, script_dir: &Path) -> Located {
    let dir = script_dir.to_path_buf();
    errors::locate(err, shown, &move |source: &str| {
        let p = Path::new(source);
        let candidates = [
            p.to_path_buf(),
            dir.join(source),
            dir.join(format!("{source}.rhai")),
        ];
        candidates
            .iter()
            .find(|c| c.is_file())
            .map(|c| errors::display_path(c))
            .unwrap_or_else(|| source.to_string())
    })
}
