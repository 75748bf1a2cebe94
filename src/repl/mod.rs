//! `seer repl`: interactive Rhai with the whole API.
//!
//! State persists across entries: variables live in one `Scope`; `fn` definitions and
//! `import` statements are kept as two ASTs that are merged in front of every new entry
//! (imports first, then functions, then the entry), because `eval_with_scope` alone forgets
//! both. Imports re-run on every entry; the module resolver's cache makes that cheap.
//!
//! Ctrl-C: at the prompt rustyline reads it as a key (raw mode) and clears the line.
//! While an entry runs the terminal is in cooked mode, so it arrives as SIGINT; a task on
//! the runtime cancels the host's current token, which stops the script between
//! operations (the progress hook) and inside blocking calls (exec, cells, agent runs watch
//! the token). Every entry gets a fresh token. Sandboxes stay; a second Ctrl-C after 2 s
//! on an entry that does not stop quits (ending the REPL's sandboxes).

pub mod commands;
pub mod complete;
pub mod show;
pub mod validate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rhai::{AST, Dynamic, Engine, EvalAltResult, Scope, Stmt};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Editor};
use tokio_util::sync::CancellationToken;

use crate::script::errors::{self, Located};
use crate::script::reference::{self, ApiFn, Kind};
use crate::script::{Host, build_engine};
use complete::{ReplHelper, Words};

/// Whether an entry is running, and since when it was cancelled (for the force-quit).
#[derive(Default)]
pub struct Running {
    busy: AtomicBool,
    cancelled_at: Mutex<Option<Instant>>,
}

impl Running {
    fn start(&self) {
        if let Ok(mut c) = self.cancelled_at.lock() {
            *c = None;
        }
        self.busy.store(true, Ordering::SeqCst);
    }

    fn stop(&self) {
        self.busy.store(false, Ordering::SeqCst);
    }
}

/// What to do after an entry.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

/// The REPL's state: the engine, the variables, the remembered functions and imports.
pub struct Repl {
    pub host: Arc<Host>,
    engine: Engine,
    scope: Scope<'static>,
    fns: AST,
    imports: AST,
    /// The file `:reload` runs again.
    last_load: Option<PathBuf>,
    running: Arc<Running>,
    /// The registered API with the standard library (for `:help` and completion).
    api: Vec<ApiFn>,
    base_words: Words,
}

fn fresh_scope() -> Scope<'static> {
    let mut scope = Scope::new();
    scope.push_constant("ARGS", rhai::Array::new());
    scope
}

impl Repl {
    pub fn new(host: Arc<Host>, running: Arc<Running>) -> Self {
        let engine = build_engine(&host);
        let api = reference::api(&engine, true);
        let base_words = base_words(&api);
        Self {
            host,
            engine,
            scope: fresh_scope(),
            fns: AST::empty(),
            imports: AST::empty(),
            last_load: None,
            running,
            api,
            base_words,
        }
    }

    /// One entry from the prompt: a `:command` or Rhai code.
    pub fn handle(&mut self, input: &str) -> Flow {
        let trimmed = input.trim();
        if trimmed.starts_with(':') {
            return commands::run(self, trimmed);
        }
        match self.eval(input, None) {
            Ok(v) => {
                if let Some(text) = show::show(&v, &|d: &Dynamic| self.describe(d)) {
                    println!("{text}");
                }
            }
            Err(msg) => eprintln!("{msg}"),
        }
        Flow::Continue
    }

    /// Compiles and runs `src` in the REPL's state. `file` is the file it came from
    /// (`:load`), for error positions. The error is the text to print.
    pub fn eval(&mut self, src: &str, file: Option<&Path>) -> Result<Dynamic, String> {
        let shown = file
            .map(errors::display_path)
            .unwrap_or_else(|| "input".to_string());
        let mut ast = self
            .engine
            .compile_with_scope(&self.scope, src)
            .map_err(|e| format!("error: {}", errors::locate_parse(&e, src, &shown)))?;
        if file.is_some() {
            ast.set_source(shown.clone());
        }
        // Functions are kept even when the entry then fails at run time.
        self.fns += ast.clone_functions_only();
        let run = self.imports.merge(&self.fns).merge(&ast);
        let cancel: CancellationToken = self.host.renew_cancel();
        self.running.start();
        let result = self
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut self.scope, &run);
        self.running.stop();
        match result {
            Ok(v) => {
                let imports: Vec<Stmt> = ast
                    .statements()
                    .iter()
                    .filter(|s| matches!(s, Stmt::Import(..)))
                    .cloned()
                    .collect();
                if !imports.is_empty() {
                    self.imports += AST::new(imports, rhai::Module::new());
                }
                Ok(v)
            }
            Err(_) if cancel.is_cancelled() => {
                Err("cancelled (sandboxes are kept; `:sandboxes` lists them)".into())
            }
            Err(e) => Err(format!("error: {}", self.locate(&e, &shown))),
        }
    }

    fn locate(&self, err: &EvalAltResult, shown: &str) -> Located {
        let dir = self.host.script_dir.clone();
        let mut loc = errors::locate(err, shown, &move |source: &str| {
            let p = Path::new(source);
            [
                p.to_path_buf(),
                dir.join(source),
                dir.join(format!("{source}.rhai")),
            ]
            .iter()
            .find(|c| c.is_file())
            .map(|c| errors::display_path(c))
            .unwrap_or_else(|| source.to_string())
        });
        if let Some(m) = crate::script::seer_names::Names::new(&self.engine).explain(&loc.message) {
            loc.message = m;
        }
        loc
    }

    /// Text for a value of a registered type, with its `to_string` when it has one.
    pub fn describe(&self, v: &Dynamic) -> String {
        let mut scope = Scope::new();
        scope.push("__value", v.clone());
        match self
            .engine
            .eval_with_scope::<String>(&mut scope, "to_string(__value)")
        {
            Ok(s) if !s.is_empty() => s,
            _ => format!("<{}>", self.engine.map_type_name(v.type_name())),
        }
    }

    /// Runs a script file in the REPL's state (`:load`).
    pub fn load(&mut self, path: &Path) -> Result<Dynamic, String> {
        let src = std::fs::read_to_string(path)
            .map_err(|e| format!("error: cannot read {}: {e}", path.display()))?;
        self.last_load = Some(path.to_path_buf());
        self.eval(&src, Some(path))
    }

    pub fn last_load(&self) -> Option<PathBuf> {
        self.last_load.clone()
    }

    /// A fresh scope and no remembered functions or imports; ends what the REPL started.
    pub fn reset(&mut self) {
        self.end_sandboxes();
        if let Ok(mut owned) = self.host.owned.lock() {
            owned.clear();
        }
        self.scope = fresh_scope();
        self.fns = AST::empty();
        self.imports = AST::empty();
    }

    /// Ends the sandboxes this REPL started, except detached ones.
    pub fn end_sandboxes(&self) {
        end_sandboxes(&self.host);
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn api(&self) -> &[ApiFn] {
        &self.api
    }

    /// Script-defined functions: (name, params, doc comments).
    pub fn script_fns(&self) -> Vec<(String, Vec<String>, Vec<String>)> {
        self.fns
            .iter_functions()
            .map(|f| {
                (
                    f.name.to_string(),
                    f.params.iter().map(|p| p.to_string()).collect(),
                    f.comments.iter().map(|c| c.to_string()).collect(),
                )
            })
            .collect()
    }

    /// Completion words for the current state.
    pub fn words(&self) -> Words {
        let mut w = self.base_words.clone();
        for (name, params, _) in self.script_fns() {
            if !params.is_empty() {
                w.methods.push((name.clone(), "?".into()));
            }
            w.functions.push(name);
        }
        for (name, _, value) in self.scope.iter() {
            w.vars.push((
                name.to_string(),
                reference::script_type(&self.engine, value.type_name()),
            ));
        }
        for s in self.imports.statements() {
            let Stmt::Import(x, pos) = s else { continue };
            let (path, alias) = &**x;
            let rhai::Expr::StringConstant(path, _) = path else {
                continue;
            };
            let Ok(module) =
                self.engine
                    .module_resolver()
                    .resolve(&self.engine, None, path.as_str(), *pos)
            else {
                continue;
            };
            let mut members: Vec<String> = module
                .gen_fn_signatures_with_mapper(|s| s.into())
                .filter_map(|sig| sig.split('(').next().map(str::to_string))
                .collect();
            members.extend(module.iter_var().map(|(n, _)| n.to_string()));
            w.modules.insert(alias.name.to_string(), members);
        }
        w
    }
}

fn base_words(api: &[ApiFn]) -> Words {
    let mut w = Words::default();
    for f in api {
        match (&f.module, f.kind) {
            (Some(m), _) => w.modules.entry(m.clone()).or_default().push(f.name.clone()),
            // Syntax (`spawn`) is called like a function, never as a method.
            (None, Kind::Syntax) => w.functions.push(f.name.clone()),
            (None, Kind::Function) => {
                w.functions.push(f.name.clone());
                // `x.len()` is `len(x)`: offer functions as methods of their first
                // parameter's type (not constructors, not untyped ones).
                if let Some((_, t)) = f.params.first()
                    && t != "?"
                    && !f.name.starts_with(char::is_uppercase)
                {
                    w.methods.push((f.name.clone(), t.clone()));
                }
            }
            (None, _) => {
                if let Some(t) = f.this_type() {
                    w.methods.push((f.name.clone(), t.to_string()));
                }
            }
        }
    }
    w
}

/// Ends the host's sandboxes that are neither terminated nor detached.
pub fn end_sandboxes(host: &Host) {
    let owned: Vec<_> = host.owned.lock().map(|v| v.clone()).unwrap_or_default();
    for sb in owned {
        if sb.is_detached() || sb.is_terminated() {
            continue;
        }
        let id = sb.info().id;
        match sb.terminate() {
            Ok(()) => eprintln!("ended sandbox {id}"),
            Err(e) => eprintln!("warning: could not terminate sandbox {id}: {e:#}"),
        }
    }
}

fn watch_signals(host: Arc<Host>, running: Arc<Running>) {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = host.rt.clone();
    rt.spawn(async move {
        let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::warn!("cannot watch for Ctrl-C; it will not stop a running entry");
            return;
        };
        loop {
            let code = tokio::select! {
                _ = int.recv() => {
                    if !running.busy.load(Ordering::SeqCst) {
                        continue;
                    }
                    // An interactive chat's turn: Ctrl-C interrupts that turn only.
                    let turn = host.interrupt.lock().ok().and_then(|s| s.clone());
                    if let Some(turn) = turn
                        && !turn.is_cancelled()
                    {
                        turn.cancel();
                        continue;
                    }
                    let since = running.cancelled_at.lock().ok().and_then(|c| *c);
                    match since {
                        None => {
                            if let Ok(mut c) = running.cancelled_at.lock() {
                                *c = Some(Instant::now());
                            }
                            host.cancel().cancel();
                            continue;
                        }
                        Some(t) if t.elapsed() < Duration::from_secs(2) => continue,
                        Some(_) => {
                            eprintln!("\nthe entry does not stop: quitting");
                            130
                        }
                    }
                }
                _ = term.recv() => 143,
                _ = hup.recv() => 129,
            };
            host.cancel().cancel();
            let h = host.clone();
            let _ = tokio::task::spawn_blocking(move || end_sandboxes(&h)).await;
            std::process::exit(code);
        }
    });
}

fn history_path() -> PathBuf {
    crate::paths::state_dir().join("repl_history")
}

/// `seer repl [--output-dir D]`.
pub fn run(output_root: PathBuf) -> ExitCode {
    let _ = dotenvy::dotenv();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(crate::script::SCRIPT_STACK)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    let run_dir = output_root.join(format!("repl-{stamp}"));
    let host = Arc::new(Host::new(
        rt.handle().clone(),
        CancellationToken::new(),
        cwd.join("repl"),
        cwd,
        run_dir,
        vec![],
    ));
    let running = Arc::new(Running::default());
    watch_signals(host.clone(), running.clone());
    let mut repl = Repl::new(host.clone(), running);

    let config = Config::builder()
        .auto_add_history(false)
        .history_ignore_dups(true)
        .and_then(|b| b.max_history_size(1000))
        .map(|b| b.completion_type(CompletionType::List).build());
    let editor = config.and_then(Editor::<ReplHelper, DefaultHistory>::with_config);
    let mut rl = match editor {
        Ok(rl) => rl,
        Err(e) => {
            eprintln!("error: cannot start the line editor: {e}");
            return ExitCode::FAILURE;
        }
    };
    rl.set_helper(Some(ReplHelper::new(repl.words())));
    let history = history_path();
    if let Err(e) = crate::paths::ensure_state_dir() {
        tracing::warn!("{e:#}");
    }
    if rl.load_history(&history).is_err() {
        tracing::debug!("no REPL history yet at {}", history.display());
    }
    println!(
        "seer {} — Rhai with seer's API. :help for commands, Tab completes, Ctrl-D quits.",
        env!("CARGO_PKG_VERSION")
    );
    loop {
        match rl.readline("seer> ") {
            Ok(input) => {
                if input.trim().is_empty() {
                    continue;
                }
                let _ = rl.add_history_entry(input.as_str());
                if let Err(e) = rl.save_history(&history) {
                    tracing::debug!("cannot save the REPL history: {e}");
                }
                let flow = repl.handle(&input);
                if let Some(h) = rl.helper_mut() {
                    h.words = repl.words();
                }
                if flow == Flow::Quit {
                    break;
                }
            }
            // Ctrl-C at the prompt: the line is dropped, the REPL goes on.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("error: reading input: {e}");
                break;
            }
        }
    }
    repl.end_sandboxes();
    rt.shutdown_timeout(Duration::from_millis(100));
    ExitCode::SUCCESS
}
