//! Sandbox start with a cold vs. warm Python env cache, against the bare process start of
//! `seer run` on a script that does nothing. Prints a table; run with
//! `cargo bench --bench sandbox_start`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SEER: &str = env!("CARGO_BIN_EXE_seer");

fn run(dir: &Path, cache: &Path, script: &str) -> Duration {
    std::fs::write(dir.join("bench.rhai"), script).expect("write script");
    let start = Instant::now();
    let out = Command::new(SEER)
        .current_dir(dir)
        .env("SEER_HOME", dir.join("state"))
        .env("SEER_CACHE_DIR", cache)
        .env("SEER_OUTPUT_DIR", dir.join("outputs"))
        .args(["run", "bench.rhai"])
        .output()
        .expect("run seer");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn stats(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(v[0]), ms(v[v.len() / 2]), ms(v[v.len() - 1]))
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache: PathBuf = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-cache");
    let warm_script = "let sb = Sandbox(#{ python_packages: [\"six\"] }).start();\nsb.terminate();";
    // Prime: uv itself and the warm env.
    run(dir.path(), &cache, warm_script);

    let n = 20;
    let bare: Vec<_> = (0..n)
        .map(|_| run(dir.path(), &cache, "let x = 1;"))
        .collect();
    let warm: Vec<_> = (0..n)
        .map(|_| run(dir.path(), &cache, warm_script))
        .collect();
    let cold: Vec<_> = (0..5)
        .map(|i| {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(i);
            // A requirement no earlier run used: a new env key, built by uv from its cache.
            let script = format!("let sb = Sandbox(#{{ python_packages: [\"six!=0.0.{nanos}\"] }}).start();\nsb.terminate();");
            run(dir.path(), &cache, &script)
        })
        .collect();

    let (b0, b1, b2) = stats(bare);
    let (w0, w1, w2) = stats(warm);
    let (c0, c1, c2) = stats(cold);
    println!("| case | runs | min ms | median ms | max ms |");
    println!("|---|---|---|---|---|");
    println!("| bare `seer run` (script does nothing) | {n} | {b0:.1} | {b1:.1} | {b2:.1} |");
    println!("| sandbox start + terminate, warm env cache | {n} | {w0:.1} | {w1:.1} | {w2:.1} |");
    println!(
        "| sandbox start + terminate, cold env (uv cache warm) | 5 | {c0:.1} | {c1:.1} | {c2:.1} |"
    );
    println!();
    println!(
        "warm start adds {:.1} ms (median) to the bare process start; cold/warm = {:.1}x",
        w1 - b1,
        c1 / w1
    );
}
