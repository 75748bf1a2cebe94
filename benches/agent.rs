//! Agent harness overhead. A loopback server speaking the Anthropic wire format answers
//! at once (a tool call per turn, then text) and the tool is seer's real notebook MCP
//! server over HTTP with an instant backend, so what is timed is the harness: request
//! building, SSE parsing, history checks, transcript writes, the MCP round trip.
//! Reference, same process: a bare reqwest POST reading the same SSE reply plus a bare
//! rmcp call of the same tool. Then 16 agents in parallel: wall time, CPU time and memory
//! of this process per agent. Run with `cargo bench --bench agent`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use common::{CannedNotebook, median};

#[path = "../tests/common/fake_anthropic.rs"]
#[allow(dead_code)]
mod fake_anthropic;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_anthropic::{FakeAnthropic, Reply, text_turn, tool_turn};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use seer::agent::providers::{ApiKey, Kind, ProviderConfig};
use seer::agent::run::{AgentConfig, run};
use seer::notebook::mcp::{ServerOptions, serve_http};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const TURNS: usize = 50;
const PARALLEL: usize = 16;
const PARALLEL_TURNS: usize = 20;

/// Tool calls until the history holds `turns - 1` of them, then a final text.
fn responder(turns: usize) -> fake_anthropic::Responder {
    Arc::new(move |_, body: &Value| {
        let done = body["messages"]
            .as_array()
            .map(|m| m.iter().filter(|m| m["role"] == "assistant").count())
            .unwrap_or(0);
        if done + 1 < turns {
            Reply::Sse(tool_turn(
                "Next step.",
                &[(
                    &format!("toolu_{done}"),
                    "notebooks__execute_code",
                    json!({"code": format!("x = {done} * 2\nx")}),
                )],
                1000 + 50 * done as u64,
                30,
            ))
        } else {
            Reply::Sse(text_turn("Finished.", 1000, 10))
        }
    })
}

/// (user+system CPU seconds, resident MiB) of this process.
fn cpu_and_rss() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap_or(0) + 2..]
        .split_whitespace()
        .collect();
    let tick = 100.0;
    let cpu = (fields[11].parse::<f64>().unwrap_or(0.0) + fields[12].parse::<f64>().unwrap_or(0.0))
        / tick;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu, rss_kb / 1024.0)
}

async fn agent_run(url: &str, mcp: &Value, dir: &std::path::Path, name: &str) -> (u32, Duration) {
    let cfg: AgentConfig = serde_json::from_value(json!({
        "prompt": "Investigate.", "mcp_config": mcp, "max_turns": 100, "live_log": false, "name": name,
    }))
    .expect("config");
    let mut pc = ProviderConfig::new(Kind::Anthropic);
    pc.base_url = url.to_string();
    let provider = pc
        .build_with_key(ApiKey::new("sk-bench"))
        .expect("provider");
    let mut ignore = |_: Value| Ok(());
    let t = Instant::now();
    let r = run(
        &cfg,
        provider.as_ref(),
        dir,
        &dir.join(format!("{name}.jsonl")),
        &mut ignore,
        &CancellationToken::new(),
    )
    .await
    .expect("agent run");
    (r.turns, t.elapsed())
}

async fn server() -> (Value, seer::mcp_http::HttpServer) {
    let srv = serve_http(
        Arc::new(CannedNotebook::new(|_, code| {
            format!("ran {} chars\n", code.len())
        })),
        ServerOptions::default(),
        CancellationToken::new(),
    )
    .await
    .expect("server");
    let mcp = json!({"notebooks": {"type": "http", "url": srv.url,
        "headers": {"Authorization": format!("Bearer {}", srv.token)}}});
    (mcp, srv)
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    // The fakes run their own runtimes: started (and dropped) outside ours.
    let solo_fake = FakeAnthropic::start_with(responder(TURNS));
    let par_fake = FakeAnthropic::start_with(responder(PARALLEL_TURNS));
    rt.block_on(async {
        // 1. One agent, TURNS turns, 5 runs.
        let fake = &solo_fake;
        let (mcp, srv) = server().await;
        let mut per_turn = vec![];
        for i in 0..6 {
            let (turns, took) = agent_run(&fake.url, &mcp, dir.path(), &format!("solo{i}")).await;
            assert_eq!(turns as usize, TURNS);
            if i > 0 {
                per_turn.push(took.as_secs_f64() * 1000.0 / TURNS as f64);
            }
        }
        let harness = median(&per_turn);

        // Reference: the same HTTP exchange and the same MCP call, without the harness.
        let client = reqwest::Client::new();
        let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 8192, "stream": true,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Investigate."}]}]});
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(srv.url.clone())
                .auth_header(srv.token.clone()),
        );
        let mcp_client = ().serve(transport).await.expect("mcp client");
        let mut refs = vec![];
        for i in 0..(TURNS * 5) {
            let t = Instant::now();
            let resp = client
                .post(format!("{}/v1/messages", fake.url))
                .header("x-api-key", "sk-bench")
                .header("anthropic-version", "2023-06-01")
                .json(&body)
                .send()
                .await
                .expect("post");
            let _ = resp.bytes().await.expect("body");
            let args = json!({"code": format!("x = {i} * 2\nx")});
            mcp_client
                .call_tool(
                    CallToolRequestParams::new("execute_code")
                        .with_arguments(args.as_object().cloned().unwrap_or_default()),
                )
                .await
                .expect("tool");
            refs.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let reference = median(&refs);
        let _ = mcp_client.cancel().await;

        println!("## Agent harness, per turn ({TURNS}-turn runs, median of 5)\n");
        println!("| measure | ms per turn |");
        println!("|---|---|");
        println!("| seer run_agent turn (provider request + SSE + tool call + transcript) | {harness:.2} |");
        println!("| reference: bare POST + bare MCP call, same servers | {reference:.2} |");
        println!("| harness overhead | {:.2} ({:.2}x the reference) |\n", harness - reference, harness / reference);

        // 2. PARALLEL agents at once, each with its own MCP server.
        let fake = &par_fake;
        let mut servers = vec![];
        for _ in 0..PARALLEL {
            servers.push(server().await);
        }
        let (cpu0, rss0) = cpu_and_rss();
        let peak = Arc::new(std::sync::Mutex::new(rss0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = {
            let (peak, stop) = (peak.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let (_, rss) = cpu_and_rss();
                    if let Ok(mut p) = peak.lock() {
                        *p = p.max(rss);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        let t = Instant::now();
        let mut tasks = vec![];
        for (i, (mcp, _)) in servers.iter().enumerate() {
            let url = fake.url.clone();
            let mcp = mcp.clone();
            let d = dir.path().to_path_buf();
            tasks.push(tokio::spawn(async move { agent_run(&url, &mcp, &d, &format!("par{i}")).await }));
        }
        let mut turns = 0;
        for task in tasks {
            turns += task.await.expect("task").0;
        }
        let wall = t.elapsed();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = sampler.join();
        let (cpu1, _) = cpu_and_rss();
        let peak = *peak.lock().expect("peak");
        println!("## {PARALLEL} agents in parallel, {PARALLEL_TURNS} turns each ({turns} turns in all)\n");
        println!("| measure | value |");
        println!("|---|---|");
        println!("| wall time | {:.0} ms ({:.2} ms per turn overall) |", wall.as_secs_f64() * 1000.0, wall.as_secs_f64() * 1000.0 / turns as f64);
        println!("| CPU time of this process (harness + fake + {PARALLEL} MCP servers) | {:.0} ms, {:.1} ms per agent |", (cpu1 - cpu0) * 1000.0, (cpu1 - cpu0) * 1000.0 / PARALLEL as f64);
        println!("| resident memory, before → peak | {rss0:.1} → {peak:.1} MiB, {:.2} MiB per agent |", (peak - rss0) / PARALLEL as f64);
    });
}
