//! Running closures at the same time, with a cap: `parallel(fns[, #{ max_parallel }])`
//! and `sweep(#{ items | grid, run, max_parallel, retries, name })`. Both run on a pool of
//! at most `max_parallel` threads that take the next closure or item as one finishes.
//!
//! A sweep records each item as it finishes (`crate::sweep`: `results.jsonl`,
//! `results.csv`), goes on past a failed item (after `retries` more attempts), shows a
//! progress line (done / running / failed of N, the agents' cost so far), and returns
//! the rows in item order. Under `seer run --resume RUN_DIR` the items an earlier run
//! finished are not run again.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rhai::{Array, Dynamic, Engine, EvalAltResult, FnPtr, Map, NativeCallContext};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::api_util::func;
use super::{Host, RhaiResult, runtime_error, terminated};
use crate::sweep::{Results, Row, Status, Summary};

/// Runs `job(ctx, i)` for every `i < count` on at most `cap` threads, each with its own
/// call context; a thread takes the next index when its job ends. No job starts once
/// `stop()` is true. Returns each job's value (`None` for a job that did not run or
/// panicked); an error only when no thread could be started.
fn pool<T: Send>(
    ctx: &NativeCallContext,
    count: usize,
    cap: usize,
    stop: &(dyn Fn() -> bool + Sync),
    job: &(dyn Fn(&NativeCallContext, usize) -> T + Sync),
) -> RhaiResult<Vec<Option<T>>> {
    let slots: Vec<Mutex<Option<T>>> = (0..count).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    #[allow(deprecated)]
    let store = ctx.store_data();
    let engine = ctx.engine();
    let started = std::thread::scope(|scope| {
        let mut handles = vec![];
        let mut first_error = None;
        for _ in 0..cap.clamp(1, count.max(1)) {
            let (store, next, slots) = (&store, &next, &slots);
            let spawned = std::thread::Builder::new()
                .name("seer-pool".into())
                .stack_size(super::SCRIPT_STACK)
                .spawn_scoped(scope, move || {
                    #[allow(deprecated)]
                    let ctx = store.create_context(engine);
                    while !stop() {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= count {
                            break;
                        }
                        let v = job(&ctx, i);
                        if let Ok(mut slot) = slots[i].lock() {
                            *slot = Some(v);
                        }
                    }
                });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        // Joined here, so a panicked thread is not re-raised by the scope: it leaves its
        // job's slot empty (the other threads take the jobs it did not reach).
        let started = handles.len();
        for h in handles {
            if h.join().is_err() {
                tracing::error!("a thread of `parallel`/`sweep` panicked");
            }
        }
        match first_error {
            Some(e) if started == 0 => Err(e),
            _ => Ok(()),
        }
    });
    if let Err(e) = started {
        return Err(runtime_error(format!("cannot start a thread: {e}")));
    }
    Ok(slots
        .into_iter()
        .map(|s| s.into_inner().ok().flatten())
        .collect())
}

/// A whole number option of at least `min`.
fn count_option(what: &str, field: &str, v: &Dynamic, min: i64) -> RhaiResult<usize> {
    match v.as_int() {
        Ok(n) if n >= min => Ok(n as usize),
        Ok(n) => Err(runtime_error(format!(
            "{what}: `{field}` must be at least {min}, not {n}"
        ))),
        Err(t) => Err(runtime_error(format!(
            "{what}: `{field}` must be a whole number, not {t}"
        ))),
    }
}

/// An error for a key of `m` that is not one of `valid`, naming the closest.
fn check_fields(what: &str, m: &Map, valid: &[&str]) -> RhaiResult<()> {
    for k in m.keys() {
        if !valid.contains(&k.as_str()) {
            let mut msg = format!("{what}: unknown field `{k}`");
            if let Some(best) = crate::config::closest(k, valid.iter().copied()) {
                msg.push_str(&format!("; did you mean `{best}`?"));
            }
            let list: Vec<String> = valid.iter().map(|v| format!("`{v}`")).collect();
            msg.push_str(&format!(" (valid fields: {})", list.join(", ")));
            return Err(runtime_error(msg));
        }
    }
    Ok(())
}

/// `parallel(fns[, opts])`: every closure of `fns`, at most `max_parallel` at once (all
/// at once without it); their values in order, the first error (in order) raised after all
/// have finished.
fn parallel(
    host: &Host,
    ctx: &NativeCallContext,
    fns: Array,
    opts: Option<Map>,
) -> RhaiResult<Array> {
    let ptrs = fns
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            f.try_cast::<FnPtr>().ok_or_else(|| {
                runtime_error(format!(
                    "parallel: item {i} is not a function; give closures, e.g. parallel([|| run_agent(a), || run_agent(b)])"
                ))
            })
        })
        .collect::<RhaiResult<Vec<_>>>()?;
    let mut cap = ptrs.len();
    if let Some(o) = &opts {
        check_fields("parallel", o, &["max_parallel"])?;
        if let Some(v) = o.get("max_parallel") {
            cap = count_option("parallel", "max_parallel", v, 1)?;
        }
    }
    let cancel = host.cancel();
    let stop = || cancel.is_cancelled();
    let job = |ctx: &NativeCallContext, i: usize| ptrs[i].call_within_context::<Dynamic>(ctx, ());
    let results = pool(ctx, ptrs.len(), cap, &stop, &job)
        .map_err(|e| runtime_error(format!("parallel: {}", e)))?;
    let mut out = Array::new();
    for r in results {
        match r {
            Some(r) => out.push(r?),
            None if cancel.is_cancelled() => return Err(terminated()),
            None => return Err(runtime_error("parallel: a closure panicked")),
        }
    }
    Ok(out)
}

/// A sweep as the script gave it.
struct Spec {
    /// The items the closure gets, and the same as JSON (the rows' `item`, the keys).
    items: Vec<(Dynamic, Value)>,
    run: FnPtr,
    max_parallel: usize,
    retries: u32,
    name: Option<String>,
}

const SWEEP_FIELDS: &[&str] = &["items", "grid", "run", "max_parallel", "retries", "name"];

/// The default of `max_parallel`.
const DEFAULT_MAX_PARALLEL: usize = 4;

fn to_json(what: &str, v: &Dynamic) -> Result<Value, String> {
    rhai::serde::from_dynamic::<Value>(v).map_err(|e| {
        format!(
            "{what} cannot be written as JSON ({}): give numbers, strings, booleans, arrays and maps",
            crate::config::strip_position(&e.to_string())
        )
    })
}

fn parse_spec(m: Map) -> RhaiResult<Spec> {
    check_fields("sweep", &m, SWEEP_FIELDS)?;
    let run = match m.get("run") {
        None => {
            return Err(runtime_error(
                "sweep: `run` is missing: the closure each item runs, e.g. `run: |item| #{ score: score(item) }`",
            ));
        }
        Some(f) => f.clone().try_cast::<FnPtr>().ok_or_else(|| {
            runtime_error(format!(
                "sweep: `run` must be a closure (`|item| ...`), not {}",
                f.type_name()
            ))
        })?,
    };
    let items: Vec<(Dynamic, Value)> = match (m.get("items"), m.get("grid")) {
        (Some(_), Some(_)) => {
            return Err(runtime_error("sweep: give `items` or `grid`, not both"));
        }
        (None, None) => {
            return Err(runtime_error(
                "sweep: give `items: [...]` (one closure call per item) or `grid: #{ name: [values], ... }` (one per combination)",
            ));
        }
        (Some(items), None) => {
            let arr = items.clone().try_cast::<Array>().ok_or_else(|| {
                runtime_error(format!(
                    "sweep: `items` must be an array, not {}",
                    items.type_name()
                ))
            })?;
            arr.into_iter()
                .enumerate()
                .map(|(i, d)| {
                    let j = to_json(&format!("item {i}"), &d)
                        .map_err(|e| runtime_error(format!("sweep: {e}")))?;
                    Ok((d, j))
                })
                .collect::<RhaiResult<_>>()?
        }
        (None, Some(grid)) => {
            let g = grid.clone().try_cast::<Map>().ok_or_else(|| {
                runtime_error(format!(
                    "sweep: `grid` must be a map of parameter names to arrays of values, not {}",
                    grid.type_name()
                ))
            })?;
            let mut axes = std::collections::BTreeMap::new();
            for (k, v) in g {
                let j = to_json(&format!("grid `{k}`"), &v)
                    .map_err(|e| runtime_error(format!("sweep: {e}")))?;
                let values = match j {
                    Value::Array(a) => a,
                    fixed => vec![fixed],
                };
                axes.insert(k.to_string(), values);
            }
            crate::sweep::grid_items(&axes)
                .into_iter()
                .map(|j| {
                    let d = rhai::serde::to_dynamic(&j)
                        .map_err(|e| runtime_error(format!("sweep: {e}")))?;
                    Ok((d, j))
                })
                .collect::<RhaiResult<_>>()?
        }
    };
    let max_parallel = match m.get("max_parallel") {
        Some(v) => count_option("sweep", "max_parallel", v, 1)?,
        None => DEFAULT_MAX_PARALLEL,
    };
    let retries = match m.get("retries") {
        Some(v) => u32::try_from(count_option("sweep", "retries", v, 0)?)
            .map_err(|_| runtime_error("sweep: `retries` is too large"))?,
        None => 0,
    };
    let name = match m.get("name") {
        None => None,
        Some(n) => {
            let n = n
                .clone()
                .into_string()
                .map_err(|t| runtime_error(format!("sweep: `name` must be a string, not {t}")))?;
            crate::paths::check_file_name("sweep: `name`", &n)
                .map_err(|e| runtime_error(e.to_string()))?;
            Some(n)
        }
    };
    Ok(Spec {
        items,
        run,
        max_parallel,
        retries,
        name,
    })
}

/// What a closure's value becomes in its row: a map as it is, `()` an empty map, anything
/// else `{"value": ...}`.
fn result_of(v: Dynamic) -> Result<serde_json::Map<String, Value>, String> {
    if v.is_unit() {
        return Ok(serde_json::Map::new());
    }
    match to_json("its result", &v)? {
        Value::Object(m) => Ok(m),
        other => Ok([("value".to_string(), other)].into_iter().collect()),
    }
}

fn utc_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The sweep's counters and its progress line: an indicatif bar on a terminal, a plain
/// line per finished item otherwise.
struct Progress {
    label: String,
    total: usize,
    done: usize,
    failed: usize,
    running: usize,
    bar: Option<indicatif::ProgressBar>,
    /// How many agents the run had recorded when the sweep started (for its cost).
    agents_before: usize,
}

impl Progress {
    fn counts(&self, host: &Host) -> String {
        let mut s = format!(
            "{} done · {} running · {} failed of {}",
            self.done, self.running, self.failed, self.total
        );
        let costs: Vec<f64> = host
            .agents
            .lock()
            .map(|a| {
                a.iter()
                    .skip(self.agents_before)
                    .filter_map(|a| a["cost_usd"].as_f64())
                    .collect()
            })
            .unwrap_or_default();
        if !costs.is_empty() {
            s.push_str(&format!(" · ${:.4}", costs.iter().sum::<f64>()));
        }
        s
    }

    fn say(&self, line: &str) {
        let line = format!("[{}] {line}", self.label);
        match &self.bar {
            Some(bar) => bar.println(line),
            None => {
                crate::output::err_line(&line);
            }
        }
    }

    fn update(&self, host: &Host) {
        if let Some(bar) = &self.bar {
            bar.set_position((self.done + self.failed) as u64);
            bar.set_message(format!("[{}] {}", self.label, self.counts(host)));
        }
    }
}

/// Why a sweep stopped before its end.
enum Stop {
    Cancelled,
    /// The results could not be written.
    Io(String),
}

/// Everything the pool's threads share.
struct Shared<'a> {
    host: &'a Host,
    spec: &'a Spec,
    cancel: CancellationToken,
    results: Mutex<Results>,
    progress: Mutex<Progress>,
    stopped: AtomicBool,
}

impl Shared<'_> {
    fn item_text(&self, i: usize) -> String {
        crate::agent::live_log::one_line(&self.spec.items[i].1.to_string(), 80)
    }

    fn error_text(&self, e: &EvalAltResult) -> String {
        let shown = super::errors::display_path(&self.host.script_path);
        let mut loc = super::runner::locate(e, &shown, &self.host.script_dir);
        loc.trace.clear();
        loc.to_string()
    }

    /// Runs item `i` (with its retries) and records its row.
    fn run_item(&self, ctx: &NativeCallContext, i: usize) -> Result<Row, Stop> {
        let (item, json) = &self.spec.items[i];
        if let Ok(mut p) = self.progress.lock() {
            p.running += 1;
            p.update(self.host);
        }
        let started = Instant::now();
        let started_at = utc_now();
        let max_attempts = self.spec.retries + 1;
        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            let r = self
                .spec
                .run
                .call_within_context::<Dynamic>(ctx, (item.clone(),));
            if self.cancel.is_cancelled() {
                return Err(Stop::Cancelled);
            }
            match r {
                Ok(v) => break result_of(v),
                Err(e) if matches!(*e, EvalAltResult::ErrorTerminated(..)) => {
                    return Err(Stop::Cancelled);
                }
                Err(e) => {
                    let text = self.error_text(&e);
                    if attempts >= max_attempts {
                        break Err(text);
                    }
                    if let Ok(p) = self.progress.lock() {
                        p.say(&format!(
                            "item {i} {} failed (attempt {attempts} of {max_attempts}), trying again: {}",
                            self.item_text(i),
                            crate::agent::live_log::one_line(&text, 200)
                        ));
                    }
                }
            }
        };
        let duration = started.elapsed().as_secs_f64();
        let (status, result, error) = match outcome {
            Ok(m) => (Status::Ok, Some(m), None),
            Err(e) => (Status::Failed, None, Some(e)),
        };
        let row = Row {
            index: i,
            item: json.clone(),
            status,
            result,
            error,
            attempts,
            started_at,
            ended_at: utc_now(),
            duration_s: (duration * 1000.0).round() / 1000.0,
        };
        let written = self
            .results
            .lock()
            .map_err(|_| Stop::Io("the results' lock is poisoned".into()))
            .and_then(|mut r| {
                r.record(row.clone())
                    .map_err(|e| Stop::Io(format!("{e:#}")))
            });
        if let Ok(mut p) = self.progress.lock() {
            p.running = p.running.saturating_sub(1);
            match status {
                Status::Ok => p.done += 1,
                Status::Failed => p.failed += 1,
            }
            let how = match &row.error {
                None => format!("ok in {:.1} s", row.duration_s),
                Some(e) => format!("failed: {}", crate::agent::live_log::one_line(e, 200)),
            };
            let line = format!(
                "item {i} {} {how} · {}",
                self.item_text(i),
                p.counts(self.host)
            );
            if p.bar.is_none() || status == Status::Failed {
                p.say(&line);
            }
            p.update(self.host);
        }
        written.map(|()| row)
    }
}

fn sweep(host: &Host, ctx: &NativeCallContext, m: Map) -> RhaiResult<Array> {
    let spec = parse_spec(m)?;
    let total = spec.items.len();
    // Each item once: the parameters are what `--resume` knows an item by.
    let mut keys: HashMap<String, usize> = HashMap::new();
    for (i, (_, j)) in spec.items.iter().enumerate() {
        if let Some(first) = keys.insert(crate::sweep::key(j), i) {
            return Err(runtime_error(format!(
                "sweep: items {first} and {i} are the same ({}); each item must differ (add a field such as `seed` to run one twice)",
                crate::agent::live_log::one_line(&j.to_string(), 80)
            )));
        }
    }
    let stem = crate::sweep::file_stem(spec.name.as_deref());
    let slot = {
        let mut sweeps = host
            .sweeps
            .lock()
            .map_err(|_| runtime_error("sweep: state poisoned"))?;
        if sweeps.iter().any(|s| s.jsonl == format!("{stem}.jsonl")) {
            return Err(runtime_error(format!(
                "sweep: this run already wrote {stem}.jsonl; give each sweep of a run its own `name`"
            )));
        }
        sweeps.push(Summary {
            name: spec.name.clone(),
            jsonl: format!("{stem}.jsonl"),
            csv: format!("{stem}.csv"),
            items: total,
            ok: 0,
            failed: 0,
            resumed: 0,
            complete: false,
        });
        sweeps.len() - 1
    };
    let (results, resumed) = Results::open(&host.run_dir, &stem, host.resume, &keys)
        .map_err(|e| runtime_error(format!("sweep: {e:#}")))?;
    let label = match &spec.name {
        Some(n) => format!("sweep {n}"),
        None => "sweep".to_string(),
    };
    let jsonl_shown = super::errors::display_path(results.jsonl_path());
    let csv_shown = super::errors::display_path(results.csv_path());
    let todo: Vec<usize> = (0..total)
        .filter(|i| {
            !resumed
                .done
                .contains_key(&crate::sweep::key(&spec.items[*i].1))
        })
        .collect();
    let agents_before = host.agents.lock().map(|a| a.len()).unwrap_or(0);
    let tty = std::io::stderr().is_terminal();
    let progress = Progress {
        label: label.clone(),
        total,
        done: resumed.done.len(),
        failed: 0,
        running: 0,
        bar: None,
        agents_before,
    };
    let cap = spec.max_parallel.min(todo.len().max(1));
    progress.say(&format!(
        "{total} items, at most {cap} at once → {jsonl_shown}"
    ));
    if host.resume {
        let mut line = format!(
            "resuming: {} of {total} items done in the earlier run, {} to run",
            resumed.done.len(),
            todo.len()
        );
        if resumed.failed > 0 {
            line.push_str(&format!(" ({} failed before: run again)", resumed.failed));
        }
        if resumed.unreadable > 0 {
            line.push_str(&format!(
                " ({} unreadable line(s) skipped: cut when the run was stopped)",
                resumed.unreadable
            ));
        }
        progress.say(&line);
    }
    let mut progress = progress;
    if tty && !todo.is_empty() {
        let bar = crate::progress::count_bar(total as u64, String::new());
        bar.set_position(progress.done as u64);
        progress.bar = Some(bar);
        progress.update(host);
    }
    let started = Instant::now();
    let shared = Shared {
        host,
        spec: &spec,
        cancel: host.cancel(),
        results: Mutex::new(results),
        progress: Mutex::new(progress),
        stopped: AtomicBool::new(false),
    };
    let stop = || shared.cancel.is_cancelled() || shared.stopped.load(Ordering::SeqCst);
    let job = |ctx: &NativeCallContext, j: usize| {
        let r = shared.run_item(ctx, todo[j]);
        if r.is_err() {
            shared.stopped.store(true, Ordering::SeqCst);
        }
        r
    };
    let ran = pool(ctx, todo.len(), cap, &stop, &job);
    let progress = shared.progress.into_inner().ok();
    if let Some(bar) = progress.as_ref().and_then(|p| p.bar.as_ref()) {
        bar.finish_and_clear();
    }
    let ran = ran.map_err(|e| runtime_error(format!("sweep: {e}")))?;
    let mut rows: Vec<Row> = resumed.done.into_values().collect();
    let mut cancelled = shared.cancel.is_cancelled();
    let mut io_error = None;
    let mut panicked = 0;
    for r in ran {
        match r {
            Some(Ok(row)) => rows.push(row),
            Some(Err(Stop::Cancelled)) => cancelled = true,
            Some(Err(Stop::Io(e))) => {
                io_error.get_or_insert(e);
            }
            None if !cancelled && io_error.is_none() => panicked += 1,
            None => {}
        }
    }
    rows.sort_by_key(|r| r.index);
    let ok = rows.iter().filter(|r| r.status == Status::Ok).count();
    let failed = rows.len() - ok;
    if let Ok(mut sweeps) = host.sweeps.lock()
        && let Some(s) = sweeps.get_mut(slot)
    {
        s.ok = ok;
        s.failed = failed;
        s.resumed = total - todo.len();
        s.complete = rows.len() == total;
    }
    if cancelled {
        return Err(terminated());
    }
    if let Some(e) = io_error {
        return Err(runtime_error(format!("sweep: {e}")));
    }
    if panicked > 0 {
        return Err(runtime_error(format!(
            "sweep: {panicked} item(s) panicked (a bug in seer); the others are in {jsonl_shown}"
        )));
    }
    if let Some(p) = &progress {
        p.say(&format!(
            "done: {ok} ok, {failed} failed of {total} in {:.1} s → {csv_shown}",
            started.elapsed().as_secs_f64()
        ));
    }
    rows.iter()
        .map(|r| rhai::serde::to_dynamic(r).map_err(|e| runtime_error(format!("sweep: {e}"))))
        .collect()
}

/// `parallel`'s doc, as `seer docs` and `:help` show it.
const PARALLEL_DOC: &str = "Runs closures (e.g. `|| run_agent(a)`) at the same time, each on its own thread, at most `max_parallel` at once when given (`parallel(fns, #{ max_parallel: 4 })`); returns their results in order (the first error is raised once all finished).";

/// `sweep`'s doc, as `seer docs` and `:help` show it.
pub const SWEEP_DOC: &str = "Runs `run` once per item, at most `max_parallel` (default 4) at once: `#{ items: [...] or grid: #{ name: [values], ... } (every combination), run: |item| #{ results }, max_parallel, retries (default 0), name }`. A failed item is recorded with its error and the sweep goes on. Each item's row `#{ index, item, status: ok|failed, result, error, attempts, started_at, ended_at, duration_s }` goes to `results.jsonl` and `results.csv` in the run folder as it finishes (`results-<name>.*` with a name); returns the rows in item order. `seer run --resume RUN_DIR` runs only the items not done.";

pub fn register(engine: &mut Engine, host: &Arc<Host>) {
    let h = host.clone();
    func(
        engine,
        "parallel",
        "fns",
        PARALLEL_DOC,
        move |ctx: NativeCallContext, fns: Array| {
            parallel(&h, &ctx, fns, None).map_err(|e| super::at_call(e, &ctx))
        },
    );
    let h = host.clone();
    func(
        engine,
        "parallel",
        "fns, opts",
        PARALLEL_DOC,
        move |ctx: NativeCallContext, fns: Array, opts: Map| {
            parallel(&h, &ctx, fns, Some(opts)).map_err(|e| super::at_call(e, &ctx))
        },
    );
    let h = host.clone();
    func(
        engine,
        "sweep",
        "cfg -> array",
        SWEEP_DOC,
        move |ctx: NativeCallContext, m: Map| {
            sweep(&h, &ctx, m).map_err(|e| super::at_call(e, &ctx))
        },
    );
}
