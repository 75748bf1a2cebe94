//! Helpers every script needs: host files, environment lookup, JSON, paths, time, sleep,
//! script args, and `print` routed to stdout and tracing.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rhai::{Array, Dynamic, Engine, ImmutableString};

use super::{Host, RhaiResult, runtime_error, terminated};
use crate::sandbox::fsutil::resolve_host;

fn host_path(host: &Host, p: &str) -> std::path::PathBuf {
    resolve_host(&host.script_dir, p)
}

fn to_json_value(v: &Dynamic) -> RhaiResult<serde_json::Value> {
    rhai::serde::from_dynamic(v).map_err(|e| runtime_error(format!("to_json: {e}")))
}

pub fn register(engine: &mut Engine, host: &Arc<Host>) {
    engine.on_print(|s| {
        tracing::debug!(target: "seer::script", "{s}");
        println!("{s}");
    });
    engine.on_debug(|s, src, pos| {
        tracing::debug!(target: "seer::script", "{s}");
        eprintln!(
            "[debug {}{pos:?}] {s}",
            src.map(|s| format!("{s} ")).unwrap_or_default()
        );
    });

    let h = host.clone();
    engine.register_fn("read_file", move |p: &str| -> RhaiResult<String> {
        let path = host_path(&h, p);
        h.track(&path);
        std::fs::read_to_string(&path)
            .map_err(|e| runtime_error(format!("read_file: cannot read {}: {e}", path.display())))
    });
    let h = host.clone();
    engine.register_fn(
        "write_file",
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
    engine.register_fn(
        "append_file",
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
    engine.register_fn("file_exists", move |p: &str| host_path(&h, p).exists());

    engine.register_fn("env", |name: &str| -> Dynamic {
        std::env::var(name)
            .map(Dynamic::from)
            .unwrap_or(Dynamic::UNIT)
    });
    engine.register_fn("env", |name: &str, default: &str| -> String {
        std::env::var(name).unwrap_or_else(|_| default.to_string())
    });

    engine.register_fn("parse_json", |s: &str| -> RhaiResult<Dynamic> {
        let v: serde_json::Value =
            serde_json::from_str(s).map_err(|e| runtime_error(format!("parse_json: {e}")))?;
        rhai::serde::to_dynamic(v)
    });
    engine.register_fn("to_json", |v: Dynamic| -> RhaiResult<String> {
        serde_json::to_string(&to_json_value(&v)?)
            .map_err(|e| runtime_error(format!("to_json: {e}")))
    });
    engine.register_fn(
        "to_json",
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

    engine.register_fn("path_join", |a: &str, b: &str| -> String {
        Path::new(a).join(b).to_string_lossy().to_string()
    });
    engine.register_fn("path_join", |parts: Array| -> RhaiResult<String> {
        let mut p = std::path::PathBuf::new();
        for part in parts {
            let s = part
                .into_immutable_string()
                .map_err(|t| runtime_error(format!("path_join: expected strings, got {t}")))?;
            p.push(s.as_str());
        }
        Ok(p.to_string_lossy().to_string())
    });
    let h = host.clone();
    engine.register_fn("script_dir", move || {
        h.script_dir.to_string_lossy().to_string()
    });
    let h = host.clone();
    engine.register_fn("script_path", move || {
        h.script_path.to_string_lossy().to_string()
    });
    let h = host.clone();
    engine.register_fn("run_dir", move || -> RhaiResult<String> {
        std::fs::create_dir_all(&h.run_dir).map_err(|e| {
            runtime_error(format!(
                "run_dir: cannot create {}: {e}",
                h.run_dir.display()
            ))
        })?;
        Ok(h.run_dir.to_string_lossy().to_string())
    });
    let h = host.clone();
    engine.register_fn("args", move || -> Array {
        h.args
            .iter()
            .map(|a| Dynamic::from(ImmutableString::from(a.as_str())))
            .collect()
    });

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
    engine.register_fn("sleep", sleep);
    engine.register_fn("sleep", move |secs: i64| s2(secs as f64));

    engine.register_fn("now", || {
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    });
    engine.register_fn("unix_time", crate::sandbox::registry::now);
}
