//! A long investigation against the loopback Anthropic fake, which emulates prompt caching
//! and a 200k-token window: 200 turns whose tool results are 20 KB each (seer's notebook MCP
//! server over HTTP with an instant backend, so the harness is what is timed). Measures, in
//! the same process: billed input with caching on vs off (price-weighted: cache reads at
//! 0.1×, writes at 1.25×), harness time per turn at turns 181-200 vs 1-20, transcript bytes
//! per turn in the last 20 turns vs the first 20, and the time of each compaction.
//! Run with `cargo bench --bench long_agent`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use common::{CannedNotebook, median};

#[path = "../tests/common/fake_anthropic.rs"]
#[allow(dead_code)]
mod fake_anthropic;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use fake_anthropic::{FakeAnthropic, Reply, text_turn, tool_turn};
use seer::agent::providers::{ApiKey, Kind, ProviderConfig};
use seer::agent::run::{AgentConfig, run};
use seer::notebook::mcp::{ServerOptions, serve_http};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const TURNS: usize = 200;
const WINDOW: u64 = 200_000;

/// A tool call per turn until turn `TURNS`, then text; records when each turn's request
/// arrived (summary requests excluded).
fn investigator(arrivals: Arc<Mutex<Vec<Instant>>>) -> FakeAnthropic {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    FakeAnthropic::respond(move |_, body: &Value| {
        if body["system"]
            .to_string()
            .contains("You condense the working history")
        {
            return Reply::Sse(text_turn("Summary of the work so far.", 0, 200));
        }
        arrivals.lock().unwrap().push(Instant::now());
        let k = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Reply::Sse(if k + 1 >= TURNS {
            text_turn("Finished.", 0, 10)
        } else {
            tool_turn(
                "Next.",
                &[(
                    &format!("toolu_{k}"),
                    "notebooks__execute_code",
                    json!({"code": format!("probe({k})")}),
                )],
                0,
                30,
            )
        })
    })
    .with_window(WINDOW)
    .with_caching()
}

/// Mean ms of a bare reqwest POST of `body` to the fake and reading its answer (the
/// wire and the fake's own work, without seer's harness), over `n` tries.
async fn bare_post(url: &str, body: &Value, n: usize) -> f64 {
    let client = reqwest::Client::new();
    let bytes = serde_json::to_vec(body).unwrap();
    let mut total = 0.0;
    for _ in 0..n {
        let t = Instant::now();
        let resp = client
            .post(format!("{url}/v1/messages"))
            .header("x-api-key", "sk-bench")
            .header("anthropic-version", "2023-06-01")
            .header("content-type", "application/json")
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        let _ = resp.bytes().await.unwrap();
        total += t.elapsed().as_secs_f64() * 1000.0;
    }
    total / n as f64
}

struct Outcome {
    /// Price-weighted input tokens billed.
    billed: f64,
    /// Input tokens had nothing been cached.
    uncached: f64,
    turn_ms: Vec<f64>,
    /// Bare POSTs of the bodies of turns 1-20 and 181-200 (mean ms).
    wire_first: f64,
    wire_last: f64,
    transcript: Vec<Value>,
}

async fn investigate(
    (fake, arrivals): &(FakeAnthropic, Arc<Mutex<Vec<Instant>>>),
    cache: bool,
    dir: &std::path::Path,
    name: &str,
) -> Outcome {
    let srv = serve_http(
        Arc::new(CannedNotebook::new(|n, _| {
            format!("{n}: {}\n", "activation 0.1234 ".repeat(1_100))
        })),
        ServerOptions::default(),
        CancellationToken::new(),
    )
    .await
    .expect("server");
    let mcp = json!({"notebooks": {"type": "http", "url": srv.url,
        "headers": {"Authorization": format!("Bearer {}", srv.token)}}});
    let cfg: AgentConfig = serde_json::from_value(json!({
        "prompt": "Investigate the model.", "mcp_config": mcp, "max_turns": TURNS + 10,
        "live_log": false, "name": name, "model": "claude-sonnet-4-5",
        "kwargs": {"cache": cache},
    }))
    .expect("config");
    let mut pc = ProviderConfig::new(Kind::Anthropic);
    pc.base_url = fake.url.clone();
    let provider = pc
        .build_with_key(ApiKey::new("sk-bench"))
        .expect("provider");
    let path = dir.join(format!("{name}.jsonl"));
    let mut ignore = |_: Value| Ok(());
    let r = run(
        &cfg,
        provider.as_ref(),
        dir,
        &path,
        &mut ignore,
        &CancellationToken::new(),
    )
    .await
    .expect("agent run");
    assert_eq!(r.turns as usize, TURNS);
    let m = fake.measured();
    let billed = m
        .iter()
        .map(|x| x.input as f64 + 0.1 * x.cache_read as f64 + 1.25 * x.cache_write as f64)
        .sum();
    let uncached = m
        .iter()
        .map(|x| (x.input + x.cache_read + x.cache_write) as f64)
        .sum();
    let arrivals = arrivals.lock().unwrap().clone();
    let turn_ms = arrivals
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64() * 1000.0)
        .collect();
    let transcript = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The same requests again without the harness: what the wire and the fake take.
    let bodies: Vec<Value> = fake
        .requests()
        .into_iter()
        .map(|(_, b)| b)
        .filter(|b| !b["system"].to_string().contains("You condense"))
        .collect();
    let mut first = 0.0;
    let mut last = 0.0;
    for i in 0..20 {
        first += bare_post(&fake.url, &bodies[i], 2).await / 20.0;
        last += bare_post(&fake.url, &bodies[bodies.len() - 20 + i], 2).await / 20.0;
    }
    Outcome {
        wire_first: first,
        wire_last: last,
        billed,
        uncached,
        turn_ms,
        transcript,
    }
}

/// Bytes of the transcript records of each turn (records without a turn count for none).
fn bytes_per_turn(records: &[Value]) -> Vec<f64> {
    let mut per = vec![0.0; TURNS + 2];
    for r in records {
        if let Some(t) = r["turn"].as_u64().filter(|t| (*t as usize) <= TURNS) {
            per[t as usize] += (r.to_string().len() + 1) as f64;
        }
    }
    per
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    // The fakes run their own runtimes: started (and dropped) outside ours.
    let fake = || {
        let arrivals = Arc::new(Mutex::new(vec![]));
        (investigator(arrivals.clone()), arrivals)
    };
    let (fake_on, fake_off) = (fake(), fake());
    let (on, off) = rt.block_on(async {
        let on = investigate(&fake_on, true, dir.path(), "cached").await;
        let off = investigate(&fake_off, false, dir.path(), "uncached").await;
        (on, off)
    });
    println!(
        "## Long investigation: {TURNS} turns, 20 KB tool results, {WINDOW}-token window (cargo bench --bench long_agent)\n"
    );
    println!("| measure | value | goal |");
    println!("|---|---|---|");
    println!(
        "| billed input, caching on (price-weighted tokens) | {:.0} | |",
        on.billed
    );
    println!("| billed input, caching off | {:.0} | |", off.billed);
    println!("| ratio on / off | {:.3} | ≤ 0.2 |", on.billed / off.billed);
    println!(
        "| input tokens sent in all (caching on; what caching saves on) | {:.0} | |",
        on.uncached
    );
    let first = mean(&on.turn_ms[..20]);
    let last = mean(&on.turn_ms[on.turn_ms.len() - 20..]);
    println!(
        "| harness time per turn, turns 1-20 / 181-200 (ms, mean) | {first:.2} / {last:.2} | |"
    );
    println!("| ratio last / first | {:.2} | |", last / first);
    println!(
        "| of which the wire and the fake (bare POST of the same bodies), first / last (ms) | {:.2} / {:.2} | |",
        on.wire_first, on.wire_last
    );
    let (hf, hl) = (first - on.wire_first, last - on.wire_last);
    println!("| harness alone (turn − bare POST), first / last (ms) | {hf:.2} / {hl:.2} | |");
    println!("| ratio last / first | {:.2} | ≤ 1.2 |", hl / hf);
    let b = bytes_per_turn(&on.transcript);
    let bf = mean(&b[1..21]);
    let bl = mean(&b[TURNS - 19..TURNS + 1]);
    println!("| transcript bytes per turn, first 20 / last 20 | {bf:.0} / {bl:.0} | |");
    println!("| ratio last / first | {:.2} | ≤ 1.2 |", bl / bf);
    let compactions: Vec<f64> = on
        .transcript
        .iter()
        .filter(|r| r["type"] == "compaction")
        .filter_map(|r| r["took_ms"].as_f64())
        .collect();
    println!("| compactions (auto) | {} | |", compactions.len());
    if !compactions.is_empty() {
        println!(
            "| time per compaction, median / max (ms) | {:.2} / {:.2} | |",
            median(&compactions),
            compactions.iter().cloned().fold(0.0, f64::max)
        );
    }
    let _ = median(&on.turn_ms);
}
