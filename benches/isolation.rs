//! What bubblewrap isolation costs, same run, same machine: sandbox start + terminate, one
//! command (`sb.exec("true")`, a new process each time) and a notebook cell round trip
//! (`s.exec("1+1")` on a live kernel), each with `isolation: "none"` and `"bwrap"`.
//! Prints a table; run with `cargo bench --bench isolation`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: a failed unwrap is a failed bench

mod common;

use std::path::Path;
use std::process::Command;

const SEER: &str = env!("CARGO_BIN_EXE_seer");
const N: usize = 40;

/// Runs a script that times its own operations with `unix_time()` and prints one JSON
/// object of millisecond lists.
fn timings(dir: &Path, isolation: &str) -> serde_json::Value {
    let script = format!(
        r#"
let starts = [];
for i in 0..{N} {{
    let t0 = unix_time();
    let sb = Sandbox(#{{ execution_mode: "notebook", isolation: "{isolation}", timeout: 0 }}).start();
    sb.terminate();
    starts.push((unix_time() - t0) * 1000.0);
}}
let sb = Sandbox(#{{ execution_mode: "notebook", isolation: "{isolation}", timeout: 0 }}).start();
let execs = [];
for i in 0..{N} {{
    let t0 = unix_time();
    sb.exec("true");
    execs.push((unix_time() - t0) * 1000.0);
}}
let s = create_notebook_session(sb, ());
s.exec("1+1");
let cells = [];
for i in 0..{N} {{
    let t0 = unix_time();
    s.exec("1+1");
    cells.push((unix_time() - t0) * 1000.0);
}}
sb.terminate();
print(to_json(#{{ start: starts, exec: execs, cell: cells }}));
"#
    );
    std::fs::write(dir.join("bench.rhai"), script).unwrap();
    let out = Command::new(SEER)
        .current_dir(dir)
        .env("SEER_HOME", dir.join("state"))
        .env("SEER_CACHE_DIR", seer::testenv::shared_cache())
        .env("SEER_OUTPUT_DIR", dir.join("outputs"))
        .args(["run", "bench.rhai"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn column(v: &serde_json::Value, key: &str) -> Vec<f64> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    // Warm up the env cache and the kernel's imports once.
    timings(dir.path(), "none");
    let plain = timings(dir.path(), "none");
    let jailed = timings(dir.path(), "bwrap");
    println!(
        "| operation ({N} runs) | none: median / p99 ms | bwrap: median / p99 ms | bwrap − none (median) |"
    );
    println!("|---|---|---|---|");
    for (key, what) in [
        ("start", "sandbox start + terminate"),
        ("exec", "`sb.exec(\"true\")` (a new process)"),
        ("cell", "notebook cell `1+1`"),
    ] {
        let (a, a99) = common::median_p99(&column(&plain, key));
        let (b, b99) = common::median_p99(&column(&jailed, key));
        println!(
            "| {what} | {a:.2} / {a99:.2} | {b:.2} / {b99:.2} | {:+.2} ms |",
            b - a
        );
    }
}
