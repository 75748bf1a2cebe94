//! `seer run --watch`: how long from a save to the rerun's first statement (beyond the
//! debounce), and time to the first notebook exec of a script with a preloaded tiny model,
//! cold (`seer run`) vs. warm (a rerun under `--watch` that reuses sandbox and kernel).
//! Runs the release `seer` binary. Run with `cargo bench --bench watch`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use common::median;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const TORCH_ENV: &str =
    "python_packages: [\"torch\", \"transformers\", \"peft\"], execution_mode: \"notebook\"";
const DEBOUNCE_MS: f64 = 100.0;
const SAVES: usize = 10;

fn seer(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_seer"));
    c.current_dir(dir)
        .env("SEER_HOME", dir.join("state"))
        .env(
            "SEER_CACHE_DIR",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("seer-cache"),
        )
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("RUST_LOG");
    c
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn value(line: &str, key: &str) -> f64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn next_with(rx: &Receiver<String>, key: &str) -> String {
    loop {
        let l = rx
            .recv_timeout(Duration::from_secs(300))
            .expect("the watched script printed nothing");
        if l.contains(key) {
            return l;
        }
    }
}

fn main() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/make_tiny_model.py"
    );
    std::fs::write(
        dir.join("make.rhai"),
        format!(
            "let sb = Sandbox(#{{ {TORCH_ENV} }}).start();\nsb.exec(\"python {fixture} {}\");",
            dir.join("models").display()
        ),
    )
    .expect("write");
    let st = seer(dir).args(["run", "make.rhai"]).status().expect("seer");
    assert!(st.success(), "making the tiny model failed");
    let script = |edit: usize| {
        format!(
            r#"let started = unix_time();
print(`started=${{started}}`);
let sb = Sandbox(#{{ {TORCH_ENV}, models: [#{{ name: "./models/base" }}] }}).start();
let s = create_notebook_session(sb, (), #{{ name: "m" }});
s.exec("1 + 1");
print(`first_exec_s=${{unix_time() - started}}`);
// edit {edit}
"#
        )
    };
    std::fs::write(dir.join("main.rhai"), script(0)).expect("write");

    // Cold: plain runs.
    let mut cold = vec![];
    for _ in 0..3 {
        let out = seer(dir).args(["run", "main.rhai"]).output().expect("seer");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        cold.push(value(&next_line(&text, "first_exec_s"), "first_exec_s"));
    }

    // Warm: reruns under --watch.
    let mut child = seer(dir)
        .args(["run", "--watch", "main.rhai"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("seer --watch");
    let (tx, rx) = channel();
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    std::thread::spawn(move || {
        for l in out.lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let first_watch = value(&next_with(&rx, "first_exec_s"), "first_exec_s");
    let mut warm = vec![];
    let mut latency = vec![];
    for i in 1..=SAVES {
        std::thread::sleep(Duration::from_millis(300));
        let saved = now();
        std::fs::write(dir.join("main.rhai"), script(i)).expect("write");
        let started = value(&next_with(&rx, "started="), "started");
        latency.push((started - saved) * 1000.0 - DEBOUNCE_MS);
        warm.push(value(&next_with(&rx, "first_exec_s"), "first_exec_s"));
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    let _ = child.wait();

    let cold_m = median(&cold) * 1000.0;
    let warm_m = median(&warm) * 1000.0;
    println!("## seer run --watch (debounce {DEBOUNCE_MS:.0} ms)\n");
    println!("| measure | median | samples |");
    println!("|---|---|---|");
    println!(
        "| save → rerun's first statement, beyond the debounce | {:.1} ms | {SAVES} (min {:.1}, max {:.1}) |",
        median(&latency),
        latency.iter().cloned().fold(f64::INFINITY, f64::min),
        latency.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
    );
    println!("| start → first exec, tiny model preloaded, cold `seer run` | {cold_m:.0} ms | 3 |");
    println!(
        "| same, first run under --watch (cold) | {:.0} ms | 1 |",
        first_watch * 1000.0
    );
    println!("| same, warm rerun (sandbox + kernel + model reused) | {warm_m:.1} ms | {SAVES} |");
    println!("| cold / warm | {:.0}x | |", cold_m / warm_m);
}

fn next_line(text: &str, key: &str) -> String {
    text.lines()
        .find(|l| l.contains(key))
        .unwrap_or_default()
        .to_string()
}
