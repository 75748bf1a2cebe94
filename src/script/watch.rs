//! `seer run --watch FILE`: run the script, and run it again whenever it, a module it
//! imports (any `.rhai` under its folder) or a host file it read through seer (task files,
//! libraries, skills, replayed transcripts) changes. Directories are watched, not files,
//! since editors save by writing a new file and renaming it over the old one.
//!
//! A change cancels the running script (the same token Ctrl-C uses), waits for it to stop,
//! and starts it again after the saves have been quiet for [`DEBOUNCE`]; a burst of saves
//! gives one rerun. A script that no longer compiles prints its error and waits for the
//! next save, keeping everything warm. Sandboxes and kernels stay warm between runs (see
//! `warm`). Ctrl-C ends the watch and everything it started.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher};
use tokio_util::sync::CancellationToken;

use super::errors;
use super::runner::{Outcome, RunOptions, run_once, spawn_signal_watch};
use crate::warm::WarmPool;

/// Quiet time after the last save before the rerun starts.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

enum Msg {
    Changed(Vec<PathBuf>),
    Done(Outcome, Vec<PathBuf>),
}

/// What makes a path worth a rerun.
struct Relevant {
    script_dir: PathBuf,
    outputs: PathBuf,
    reads: BTreeSet<PathBuf>,
}

impl Relevant {
    fn matches(&self, p: &Path) -> bool {
        if p.starts_with(&self.outputs) {
            return false;
        }
        if self.reads.iter().any(|r| p == r || p.starts_with(r)) {
            return true;
        }
        p.starts_with(&self.script_dir)
            && p.extension().is_some_and(|e| e == "rhai")
            && !p
                .components()
                .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
    }
}

fn is_write(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
    )
}

/// Runs `opts` under watch until Ctrl-C/SIGTERM; returns the signal's outcome.
pub fn watch(opts: RunOptions) -> Outcome {
    let script = match std::path::absolute(&opts.script) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {}: {e}", opts.script.display());
            return Outcome::Failed;
        }
    };
    let script_dir = script
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(crate::script::SCRIPT_STACK)
        .build()
    {
        Ok(rt) => Arc::new(rt),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Outcome::Failed;
        }
    };
    let exit = CancellationToken::new();
    let signal = Arc::new(Mutex::new(None::<i32>));
    let interrupt = crate::agent::chat_terminal::InterruptSlot::default();
    {
        let _guard = rt.enter();
        spawn_signal_watch(exit.clone(), signal.clone(), interrupt.clone());
    }
    let (tx, rx) = channel::<Msg>();
    let fs_tx = tx.clone();
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res
            && is_write(&ev.kind)
        {
            let _ = fs_tx.send(Msg::Changed(ev.paths));
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: cannot watch files: {e}");
            return Outcome::Failed;
        }
    };
    if let Err(e) = watcher.watch(&script_dir, RecursiveMode::Recursive) {
        eprintln!("error: cannot watch {}: {e}", script_dir.display());
        return Outcome::Failed;
    }
    let mut watched: BTreeSet<PathBuf> = [script_dir.clone()].into();
    let mut relevant = Relevant {
        script_dir: script_dir.clone(),
        outputs: std::path::absolute(&opts.output_root)
            .unwrap_or_else(|_| opts.output_root.clone()),
        reads: [script.clone()].into(),
    };
    let pool = WarmPool::new();
    let opts = Arc::new(opts);
    let mut first = true;
    'runs: loop {
        if exit.is_cancelled() {
            break;
        }
        // A script that does not compile waits for the next save; everything stays warm.
        if let Some(err) = compile_error(&script, &opts.script) {
            eprintln!("error: {err}");
            eprintln!("[watch] not rerun: fix the script and save");
            if !wait_for_change(&rx, &relevant, &exit) {
                break;
            }
            continue;
        }
        if !first {
            eprintln!("[watch] rerunning {}", opts.script.display());
        }
        first = false;
        let run_cancel = exit.child_token();
        {
            let (rt, opts, tx, pool, signal, interrupt, run_cancel) = (
                rt.clone(),
                opts.clone(),
                tx.clone(),
                pool.clone(),
                signal.clone(),
                interrupt.clone(),
                run_cancel.clone(),
            );
            std::thread::spawn(move || {
                let (outcome, reads) =
                    run_once(&rt, &opts, &run_cancel, &signal, interrupt, Some(pool));
                let _ = tx.send(Msg::Done(outcome, reads));
            });
        }
        // Wait for the run to end, or a change to cut it short.
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(Msg::Done(outcome, reads)) => {
                    track(&mut watcher, &mut watched, &mut relevant, reads);
                    eprintln!(
                        "[watch] run {}; waiting for changes (Ctrl-C to stop)",
                        match outcome {
                            Outcome::Ok => "finished",
                            Outcome::Failed => "failed",
                            Outcome::Interrupted(_) => "interrupted",
                        }
                    );
                    if !wait_for_change(&rx, &relevant, &exit) {
                        break 'runs;
                    }
                    continue 'runs;
                }
                Ok(Msg::Changed(paths)) => {
                    if paths.iter().any(|p| relevant.matches(p)) {
                        eprintln!("[watch] change: stopping the running script");
                        run_cancel.cancel();
                        let reads = wait_done(&rx);
                        track(&mut watcher, &mut watched, &mut relevant, reads);
                        settle(&rx, &relevant);
                        continue 'runs;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if exit.is_cancelled() {
                        let _ = wait_done(&rx);
                        break 'runs;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break 'runs,
            }
        }
    }
    pool.terminate_all();
    eprintln!("[watch] stopped; every sandbox it started has ended");
    match *signal.lock().unwrap_or_else(|p| p.into_inner()) {
        Some(sig) => Outcome::Interrupted(sig),
        None => Outcome::Interrupted(2),
    }
}

fn compile_error(script: &Path, shown: &Path) -> Option<String> {
    let src = match std::fs::read_to_string(script) {
        Ok(s) => s,
        Err(e) => return Some(format!("cannot read script {}: {e}", shown.display())),
    };
    // The same syntax as a run (custom syntax such as `spawn` included).
    let engine = super::syntax_engine();
    match engine.compile(&src) {
        Ok(_) => None,
        Err(e) => Some(errors::locate_parse(&e, &src, &shown.to_string_lossy()).to_string()),
    }
}

/// Adds the files a run read to the watch (their folders, for rename-saves).
fn track(
    watcher: &mut notify::RecommendedWatcher,
    watched: &mut BTreeSet<PathBuf>,
    relevant: &mut Relevant,
    reads: Vec<PathBuf>,
) {
    for r in reads {
        let dir = if r.is_dir() {
            r.clone()
        } else {
            r.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        if !watched.iter().any(|w| dir.starts_with(w)) {
            match watcher.watch(&dir, RecursiveMode::Recursive) {
                Ok(()) => {
                    watched.insert(dir);
                }
                Err(e) => tracing::warn!("cannot watch {}: {e}", dir.display()),
            }
        }
        relevant.reads.insert(r);
    }
}

/// Waits for the running script's end; returns what it read.
fn wait_done(rx: &Receiver<Msg>) -> Vec<PathBuf> {
    loop {
        match rx.recv() {
            Ok(Msg::Done(_, reads)) => return reads,
            Ok(Msg::Changed(_)) => {}
            Err(_) => return vec![],
        }
    }
}

/// Waits until relevant saves have been quiet for [`DEBOUNCE`].
fn settle(rx: &Receiver<Msg>, relevant: &Relevant) {
    let mut last = Instant::now();
    loop {
        let left = DEBOUNCE.saturating_sub(last.elapsed());
        if left.is_zero() {
            return;
        }
        match rx.recv_timeout(left) {
            Ok(Msg::Changed(paths)) if paths.iter().any(|p| relevant.matches(p)) => {
                last = Instant::now();
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

/// Blocks until a relevant change has settled (true) or the watch ends (false).
fn wait_for_change(rx: &Receiver<Msg>, relevant: &Relevant, exit: &CancellationToken) -> bool {
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(Msg::Changed(paths)) if paths.iter().any(|p| relevant.matches(p)) => {
                settle(rx, relevant);
                return true;
            }
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => {
                if exit.is_cancelled() {
                    return false;
                }
            }
            Err(RecvTimeoutError::Disconnected) => return false,
        }
    }
}
