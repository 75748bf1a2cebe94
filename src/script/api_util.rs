//! Helpers every script needs: host files, environment lookup, JSON, paths, time, sleep,
//! script args, and `print` routed to stdout and tracing. Also the registration helpers
//! every API family uses ([`func`], [`getter`], [`module_fn`]): they register a function
//! with its script-level parameters and doc comment, which `reference` reads back from
//! rhai's metadata for `seer docs`, `seer definitions` and the REPL's `:help`.

use std::any::TypeId;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rhai::{
    Array, Dynamic, Engine, FuncRegistration, ImmutableString, Module, NativeCallContext,
    RhaiNativeFunc, Variant,
};

use super::{Host, RhaiResult, runtime_error, terminated};
use crate::sandbox::fsutil::resolve_host;

/// Registers `f` as the script function (or method) `name`, documented.
///
/// `params` lists what a script passes, comma-separated: each a name with an optional
/// `: type`, then optionally `-> type` for the result (`"cmd: string, opts: map"`,
/// `"cfg: map -> map"`). A method's receiver (a `&mut` first parameter) is not listed. A
/// type left out comes from the Rust signature: write one only where the Rust type says
/// less than a script sees (a `Dynamic` that is a Workspace, a `Dynamic` result that is
/// always a map). `doc` is one paragraph of Markdown.
pub fn func<A: 'static, const N: usize, const X: bool, R: Variant + Clone, const F: bool, FN>(
    engine: &mut Engine,
    name: &str,
    params: &str,
    doc: &str,
    f: FN,
) where
    FN: RhaiNativeFunc<A, N, X, R, F> + Send + Sync + 'static,
{
    let info = params_info::<A, N, X, R, F, FN>(engine, name, params);
    FuncRegistration::new(name)
        .with_params_info(info)
        .with_comments(comments(doc))
        .register_into_engine(engine, f);
}

/// Registers `f` as the property getter `value.prop`, documented; `params` is empty or a
/// result type (`"-> map"`), as for [`func`].
pub fn getter<A: 'static, const X: bool, R: Variant + Clone, const F: bool, FN>(
    engine: &mut Engine,
    prop: &str,
    params: &str,
    doc: &str,
    f: FN,
) where
    FN: RhaiNativeFunc<A, 1, X, R, F> + Send + Sync + 'static,
{
    let info = params_info::<A, 1, X, R, F, FN>(engine, prop, params);
    FuncRegistration::new_getter(prop)
        .with_params_info(info)
        .with_comments(comments(doc))
        .register_into_engine(engine, f);
}

/// Sets `f` into a static module (`Library::from_file`) as `name`, documented as for
/// [`func`]. `engine` names the types (it must know the custom types already).
pub fn module_fn<A: 'static, const N: usize, const X: bool, R: Variant + Clone, const F: bool, FN>(
    module: &mut Module,
    engine: &Engine,
    name: &str,
    params: &str,
    doc: &str,
    f: FN,
) where
    FN: RhaiNativeFunc<A, N, X, R, F> + Send + Sync + 'static,
{
    let info = params_info::<A, N, X, R, F, FN>(engine, name, params);
    FuncRegistration::new(name)
        .with_params_info(info)
        .with_comments(comments(doc))
        .set_into_module(module, f);
}

/// A doc paragraph as rhai keeps doc comments: one `///` block.
fn comments(doc: &str) -> Vec<String> {
    if doc.trim().is_empty() {
        return vec![];
    }
    let block = doc
        .lines()
        .map(|l| format!("/// {}", l.trim()))
        .collect::<Vec<_>>()
        .join("\n");
    vec![block]
}

/// rhai's parameter info (`name: type` per Rust parameter, then the result type unless it
/// is `()`) from the listed script parameters and the Rust signature, as rhai's own
/// `register_fn` records it but with names. Listed parameters that do not line up with the
/// Rust ones are a registration mistake: logged, and recorded unnamed (the reference test
/// catches unnamed parameters).
fn params_info<A: 'static, const N: usize, const X: bool, R: Variant + Clone, const F: bool, FN>(
    engine: &Engine,
    name: &str,
    params: &str,
) -> Vec<String>
where
    FN: RhaiNativeFunc<A, N, X, R, F>,
{
    let rust = FN::param_names();
    let (listed, ret) = match params.split_once("->") {
        Some((p, r)) => (p, Some(r.trim())),
        None => (params, None),
    };
    let listed: Vec<(&str, Option<&str>)> = listed
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once(':') {
            Some((n, t)) => (n.trim(), Some(t.trim())),
            None => (p, None),
        })
        .collect();
    let receiver = usize::from(rust.first().is_some_and(|t| t.starts_with("&mut ")));
    let named = listed.len() + receiver == N;
    if !named {
        tracing::warn!(
            "registering `{name}`: {} listed parameters for {} script parameters",
            listed.len(),
            N - receiver
        );
    }
    let mut info: Vec<String> = rust
        .iter()
        .enumerate()
        .map(|(i, rust_type)| {
            let given = i
                .checked_sub(receiver)
                .and_then(|j| listed.get(j))
                .filter(|_| named);
            let pname = given.map_or("_", |(n, _)| n);
            match given.and_then(|(_, t)| *t) {
                Some(t) => format!("{pname}: {t}"),
                None => format!("{pname}: {}", type_name(engine, rust_type)),
            }
        })
        .collect();
    match ret {
        Some(r) if !r.is_empty() => info.push(r.to_string()),
        _ if FN::return_type() != TypeId::of::<()>() => {
            info.push(type_name(engine, FN::return_type_name()))
        }
        _ => {}
    }
    info
}

/// A Rust type as rhai's `register_fn` records it: custom and standard types by their
/// script names, a `&mut` receiver kept as such.
fn type_name(engine: &Engine, rust: &str) -> String {
    match rust.strip_prefix("&mut ") {
        Some(t) => format!("&mut {}", engine.map_type_name(t)),
        None => engine.map_type_name(rust).to_string(),
    }
}

fn host_path(host: &Host, p: &str) -> std::path::PathBuf {
    resolve_host(&host.script_dir, p)
}

fn to_json_value(v: &Dynamic) -> RhaiResult<serde_json::Value> {
    rhai::serde::from_dynamic(v).map_err(|e| runtime_error(format!("to_json: {e}")))
}

pub fn register(engine: &mut Engine, host: &Arc<Host>) {
    engine.on_print(|s| {
        tracing::debug!(target: "seer::script", "{s}");
        crate::output::out_line(s);
    });
    engine.on_debug(|s, src, pos| {
        tracing::debug!(target: "seer::script", "{s}");
        crate::output::err_line(&format!(
            "[debug {}{pos:?}] {s}",
            src.map(|s| format!("{s} ")).unwrap_or_default()
        ));
    });

    let h = host.clone();
    func(
        engine,
        "read_file",
        "path",
        "Reads a host file (relative to the script's folder).",
        move |p: &str| -> RhaiResult<String> {
            let path = host_path(&h, p);
            h.track(&path);
            std::fs::read_to_string(&path).map_err(|e| {
                runtime_error(format!("read_file: cannot read {}: {e}", path.display()))
            })
        },
    );
    let h = host.clone();
    func(
        engine,
        "write_file",
        "path, text",
        "Writes a host file (relative to the script's folder).",
        move |p: &str, content: &str| -> RhaiResult<()> {
            let path = host_path(&h, p);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    runtime_error(format!(
                        "write_file: cannot create {}: {e}",
                        parent.display()
                    ))
                })?;
            }
            std::fs::write(&path, content).map_err(|e| {
                runtime_error(format!("write_file: cannot write {}: {e}", path.display()))
            })
        },
    );
    let h = host.clone();
    func(
        engine,
        "append_file",
        "path, text",
        "Appends to a host file.",
        move |p: &str, content: &str| -> RhaiResult<()> {
            use std::io::Write;
            let path = host_path(&h, p);
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(content.as_bytes()))
                .map_err(|e| {
                    runtime_error(format!("append_file: cannot write {}: {e}", path.display()))
                })
        },
    );
    let h = host.clone();
    func(
        engine,
        "file_exists",
        "path",
        "Whether a host file exists.",
        move |p: &str| host_path(&h, p).exists(),
    );

    const ENV: &str = "An environment variable, `()` (or the default) when unset.";
    func(engine, "env", "name", ENV, |name: &str| -> Dynamic {
        std::env::var(name)
            .map(Dynamic::from)
            .unwrap_or(Dynamic::UNIT)
    });
    func(
        engine,
        "env",
        "name, default",
        ENV,
        |name: &str, default: &str| -> String {
            std::env::var(name).unwrap_or_else(|_| default.to_string())
        },
    );

    func(
        engine,
        "parse_json",
        "text",
        "Parses JSON text into Rhai values.",
        |s: &str| -> RhaiResult<Dynamic> {
            let v: serde_json::Value =
                serde_json::from_str(s).map_err(|e| runtime_error(format!("parse_json: {e}")))?;
            rhai::serde::to_dynamic(v)
        },
    );
    const TO_JSON: &str = "Serializes a value as JSON (`pretty` for indented).";
    func(
        engine,
        "to_json",
        "value",
        TO_JSON,
        |v: Dynamic| -> RhaiResult<String> {
            serde_json::to_string(&to_json_value(&v)?)
                .map_err(|e| runtime_error(format!("to_json: {e}")))
        },
    );
    func(
        engine,
        "to_json",
        "value, pretty",
        TO_JSON,
        |v: Dynamic, pretty: bool| -> RhaiResult<String> {
            let j = to_json_value(&v)?;
            let s = if pretty {
                serde_json::to_string_pretty(&j)
            } else {
                serde_json::to_string(&j)
            };
            s.map_err(|e| runtime_error(format!("to_json: {e}")))
        },
    );

    const PATH_JOIN: &str = "Joins path parts.";
    func(
        engine,
        "path_join",
        "base, part",
        PATH_JOIN,
        |a: &str, b: &str| -> String { Path::new(a).join(b).to_string_lossy().to_string() },
    );
    func(
        engine,
        "path_join",
        "parts",
        PATH_JOIN,
        |parts: Array| -> RhaiResult<String> {
            let mut p = std::path::PathBuf::new();
            for part in parts {
                let s = part
                    .into_immutable_string()
                    .map_err(|t| runtime_error(format!("path_join: expected strings, got {t}")))?;
                p.push(s.as_str());
            }
            Ok(p.to_string_lossy().to_string())
        },
    );
    let h = host.clone();
    func(
        engine,
        "script_dir",
        "",
        "The script's folder (the current dir in the REPL).",
        move || h.script_dir.to_string_lossy().to_string(),
    );
    let h = host.clone();
    func(engine, "script_path", "", "The script's path.", move || {
        h.script_path.to_string_lossy().to_string()
    });
    let h = host.clone();
    func(
        engine,
        "run_dir",
        "",
        "This run's output folder (created on use).",
        move || -> RhaiResult<String> {
            crate::paths::create_private_dir(&h.run_dir).map_err(|e| {
                runtime_error(format!(
                    "run_dir: cannot create {}: {e}",
                    h.run_dir.display()
                ))
            })?;
            Ok(h.run_dir.to_string_lossy().to_string())
        },
    );
    let h = host.clone();
    func(
        engine,
        "args",
        "",
        "The script's arguments (also `ARGS`).",
        move || -> Array {
            h.args
                .iter()
                .map(|a| Dynamic::from(ImmutableString::from(a.as_str())))
                .collect()
        },
    );

    let h = host.clone();
    let sleep = move |secs: f64| -> RhaiResult<()> {
        if !secs.is_finite() || secs < 0.0 {
            return Err(runtime_error(format!(
                "sleep: {secs} is not a number of seconds >= 0"
            )));
        }
        let cancel = h.cancel();
        h.rt.block_on(async {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = tokio::time::sleep(Duration::from_secs_f64(secs)) => {}
            }
        });
        if cancel.is_cancelled() {
            Err(terminated())
        } else {
            Ok(())
        }
    };
    let s2 = sleep.clone();
    const SLEEP: &str = "Waits some seconds; Ctrl-C interrupts it.";
    func(engine, "sleep", "seconds", SLEEP, sleep);
    func(engine, "sleep", "seconds", SLEEP, move |secs: i64| {
        s2(secs as f64)
    });

    func(engine, "now", "", "The current time, RFC 3339.", || {
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    });
    func(
        engine,
        "unix_time",
        "",
        "Seconds since the epoch, as a float.",
        crate::sandbox::registry::now,
    );

    // Python's string repetition, `"=" * 60` (operators are not listed in the reference).
    const REPEAT: &str = "`text * n` or `n * text`: `text` repeated `n` times, as in Python \
        (`\"=\" * 60`); `\"\"` when `n` is 0 or less.";
    func(
        engine,
        "*",
        "text, count",
        REPEAT,
        |ctx: NativeCallContext, s: &str, n: i64| repeat(&ctx, s, n),
    );
    func(
        engine,
        "*",
        "count, text",
        REPEAT,
        |ctx: NativeCallContext, n: i64, s: &str| repeat(&ctx, s, n),
    );
}

/// `s` repeated `n` times (`""` for `n` < 1), within the script's string limit: a huge
/// count is an error before anything is allocated.
fn repeat(ctx: &NativeCallContext, s: &str, n: i64) -> RhaiResult<String> {
    let n = usize::try_from(n).unwrap_or(0);
    let max = ctx.engine().max_string_size();
    let too_large = || {
        Box::new(rhai::EvalAltResult::ErrorDataTooLarge(
            "Length of string".to_string(),
            ctx.call_position(),
        ))
    };
    let len = s.len().checked_mul(n).ok_or_else(too_large)?;
    if max > 0 && len > max {
        return Err(too_large());
    }
    let mut out = String::new();
    out.try_reserve_exact(len).map_err(|_| too_large())?;
    for _ in 0..n {
        out.push_str(s);
    }
    Ok(out)
}
