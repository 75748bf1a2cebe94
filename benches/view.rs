//! The live view (issue #14), measured in Debian's headless chromium driven by
//! playwright-core (`tests/fixtures/view_browser.cjs`): (1) cell done → visible, a `seer run`
//! with the live view on runs 100 cells that each print the kernel's `time.time()` as their
//! last act; the open notebook page notes `Date.now()` when each cell's output enters the
//! DOM and at the next animation frame (the one that paints it); p50 and p95. (2) load
//! time of a 1,000-cell notebook page served by `seer view` (navigation start → load event,
//! in the browser), median of 7 loads. Runs the release `seer` binary. Run with
//! `cargo bench --bench view`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

#[allow(dead_code)]
#[path = "../tests/common/browser.rs"]
mod browser;
mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use browser::Chromium;
use serde_json::json;

const CELLS: usize = 100;
const BIG: usize = 1000;
const LOADS: usize = 7;

/// Each cell sleeps 50 ms (so cells arrive one by one, as a working agent's do), then
/// prints the kernel's clock as its last act.
const LATENCY_SCRIPT: &str = r#"
let sb = Sandbox(#{ execution_mode: "notebook" }).start();
let s = create_notebook_session(sb, (), #{ name: "latency" });
print(s.view_url);
print(s.workspace_path);
s.exec("import os, time\nwhile not os.path.exists('go'): time.sleep(0.02)");
for i in 0..CELLS { s.exec(`time.sleep(0.05); print(f't={time.time():.6f} cell ${i}')`); }
s.exec("while not os.path.exists('done'): time.sleep(0.02)", #{ hidden: true });
"#;

/// 1,000 cells: a markdown heading every tenth, code with a stream output otherwise.
const BIG_SCRIPT: &str = r#"
let sb = Sandbox(#{ execution_mode: "notebook" }).start();
let s = create_notebook_session(sb, (), #{ name: "big" });
for i in 0..BIG {
    if i % 10 == 0 {
        s.add_markdown(`## Part ${i / 10}` + "\n\nSome *markdown* with a [link](https://example.org).");
    } else {
        s.exec("def f(x):\n    return x * " + i + "\nprint(f'cell " + i + ":', f(2))");
    }
}
"#;

/// A running `seer` with its stdout and stderr lines on one channel.
struct Seer {
    child: Child,
    lines: Receiver<String>,
}

impl Seer {
    fn start(dir: &Path, args: &[&str], view: bool) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_seer"))
            .current_dir(dir)
            .env("SEER_HOME", dir.join("state"))
            .env("SEER_CACHE_DIR", seer::testenv::shared_cache())
            .env("SEER_VIEW", if view { "on" } else { "off" })
            .env("HF_HUB_OFFLINE", "1")
            .env_remove("RUST_LOG")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start seer");
        let (tx, lines) = channel();
        let tx2 = tx.clone();
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        let err = BufReader::new(child.stderr.take().expect("stderr"));
        std::thread::spawn(move || {
            for l in out.lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        std::thread::spawn(move || {
            for l in err.lines().map_while(Result::ok) {
                let _ = tx2.send(l);
            }
        });
        Self { child, lines }
    }

    /// The next line that starts with `prefix`.
    fn line(&self, prefix: &str) -> String {
        loop {
            let l = self
                .lines
                .recv_timeout(Duration::from_secs(300))
                .unwrap_or_else(|_| panic!("seer printed no line starting with {prefix:?}"));
            if l.starts_with(prefix) {
                return l;
            }
        }
    }
}

impl Seer {
    /// What it printed that was not read yet (after it ended).
    fn rest(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(1))
            .into_iter()
            .chain(self.lines.try_iter())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Seer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value at `q` (0..1) of a sorted list (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn numbers(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

fn main() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let shots = seer::testenv::screenshots();
    let browser = Chromium::start();

    // (1) Cell done → visible.
    let dir = tmp.path().join("latency");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("main.rhai"),
        LATENCY_SCRIPT.replace("CELLS", &CELLS.to_string()),
    )
    .unwrap();
    let mut run = Seer::start(&dir, &["run", "main.rhai"], true);
    let url = run.line("http://127.0.0.1:");
    let workspace = run.line("/");
    let got = browser.run(
        "latency",
        json!({"url": url, "workspace": workspace, "cells": CELLS, "shots": shots}),
    );
    let status = run.child.wait().unwrap();
    assert!(
        status.success(),
        "the latency script failed:\n{}",
        run.rest()
    );
    let lat = common::sorted(&numbers(&got["latencies_ms"]));
    assert_eq!(lat.len(), CELLS, "one figure per cell: {got}");
    let paint = common::sorted(&numbers(&got["paint_ms"]));
    assert_eq!(paint.len(), CELLS, "one figure per cell: {got}");

    // (2) Load time of a 1,000-cell notebook page, served by `seer view`.
    let dir = tmp.path().join("big");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("main.rhai"),
        BIG_SCRIPT.replace("BIG", &BIG.to_string()),
    )
    .unwrap();
    let mut make = Seer::start(&dir, &["run", "main.rhai"], false);
    let status = make.child.wait().unwrap();
    assert!(
        status.success(),
        "the 1,000-cell script failed:\n{}",
        make.rest()
    );
    let runs: Vec<String> = std::fs::read_dir(dir.join("outputs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let nb: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("outputs").join(&runs[0]).join("big.ipynb")).unwrap(),
    )
    .unwrap();
    let cells = nb["cells"].as_array().unwrap().len();
    assert_eq!(cells, BIG);
    let view = Seer::start(&dir, &["view", "outputs"], false);
    let line = view.line("seer view: the runs in ");
    let index = line.rsplit(' ').next().unwrap();
    let (base, token) = index.split_once("?token=").unwrap();
    let page = format!("{base}runs/{}/notebooks/big?token={token}", runs[0]);
    let got = browser.run(
        "load",
        json!({"url": page, "repeat": LOADS, "shots": shots}),
    );
    drop(view);
    assert_eq!(got["cells"], BIG, "the page shows every cell: {got}");
    let loads = numbers(&got["load_ms"]);
    let bytes = got["bytes"].as_f64().unwrap_or(f64::NAN);

    println!("| what | n | p50 / median ms | p95 ms | min ms | max ms |");
    println!("|---|---|---|---|---|---|");
    for (what, v) in [
        ("its output in the page's DOM", &lat),
        ("the next animation frame (painted)", &paint),
    ] {
        println!(
            "| cell done (kernel `time.time()`) → {what} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            v.len(),
            quantile(v, 0.5),
            quantile(v, 0.95),
            v[0],
            v[v.len() - 1]
        );
    }
    let sl = common::sorted(&loads);
    println!(
        "| load of a {BIG}-cell notebook page (`seer view`; navigation start → load event) | {} | {:.1} | | {:.1} | {:.1} |",
        sl.len(),
        common::median(&sl),
        sl[0],
        sl[sl.len() - 1]
    );
    println!();
    println!(
        "1,000-cell page: {:.0} KB of HTML; loads (ms, in order): {:?}",
        bytes / 1024.0,
        loads
    );
}
