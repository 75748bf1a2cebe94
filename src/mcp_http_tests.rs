use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// An MCP server with nothing but the defaults: enough to initialize a session.
struct Probe;

impl ServerHandler for Probe {}

async fn serve_probe(cancel: &CancellationToken) -> HttpServer {
    serve(|| Probe, cancel.clone(), "probe").await.unwrap()
}

/// An MCP server with one tool, `sleep`, that takes `seconds` (the agent client's tests use
/// it too).
#[derive(Clone)]
pub(crate) struct Sleeper {
    tool_router: ToolRouter<Self>,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
pub(crate) struct SleepArgs {
    seconds: f64,
}

#[rmcp::tool_router]
impl Sleeper {
    pub(crate) fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[rmcp::tool(description = "Sleeps, then says so.")]
    async fn sleep(&self, Parameters(args): Parameters<SleepArgs>) -> CallToolResult {
        tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
        CallToolResult::success(vec![ContentBlock::text("slept")])
    }
}

#[rmcp::tool_handler(router = self.tool_router)]
impl ServerHandler for Sleeper {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// A raw POST of `body` (JSON-RPC) with the token and `session`, if any; returns the
/// status, the `Mcp-Session-Id` header and the body, read to the end.
async fn raw_post(
    http: &HttpServer,
    session: Option<&str>,
    body: serde_json::Value,
) -> (u16, Option<String>, String) {
    let body = body.to_string();
    let addr = host_port(&http.url);
    let mut request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nAuthorization: Bearer {}\r\n\
         MCP-Protocol-Version: 2025-06-18\r\nContent-Length: {}\r\nConnection: close\r\n",
        http.token,
        body.len()
    );
    if let Some(id) = session {
        request.push_str(&format!("Mcp-Session-Id: {id}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    conn.read_to_end(&mut received).await.unwrap();
    let text = String::from_utf8_lossy(&received).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let session = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("mcp-session-id")
            .then(|| v.trim().to_string())
    });
    (status, session, body.to_string())
}

fn host_port(url: &str) -> &str {
    url.trim_start_matches("http://").trim_end_matches("/mcp")
}

/// Sends a raw `initialize` POST and returns the response's status code.
async fn raw_status(addr: &str, path: &str, host: &str, authorization: Option<&str>) -> u16 {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"}}})
    .to_string();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(value) = authorization {
        request.push_str(&format!("Authorization: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    while !received.windows(2).any(|w| w == b"\r\n") {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed before a status line");
        received.extend_from_slice(&buf[..n]);
    }
    let status_line = String::from_utf8_lossy(&received);
    status_line.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn token_is_64_hex_chars_and_compared_exactly() {
    let a = new_token();
    assert_eq!(a.len(), 64);
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, new_token());
    assert!(constant_time_eq(a.as_bytes(), a.clone().as_bytes()));
    assert!(!constant_time_eq(a.as_bytes(), &a.as_bytes()[..63]));
    let mut b = a.clone().into_bytes();
    b[63] = if b[63] == b'0' { b'1' } else { b'0' };
    assert!(!constant_time_eq(a.as_bytes(), &b));
}

#[tokio::test]
async fn mcp_config_names_the_url_and_the_token() {
    let cancel = CancellationToken::new();
    let http = serve_probe(&cancel).await;
    assert_eq!(
        http.mcp_config("notebook"),
        json!({"notebook": {"type": "http", "url": http.url, "headers": {"Authorization": format!("Bearer {}", http.token)}}})
    );
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), http.join)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn http_requires_the_token() {
    let cancel = CancellationToken::new();
    let http = serve_probe(&cancel).await;
    assert!(
        http.url.starts_with("http://127.0.0.1:") && http.url.ends_with("/mcp"),
        "{}",
        http.url
    );
    assert!(!format!("{http:?}").contains(&http.token));
    let addr = host_port(&http.url);
    let bearer = format!("Bearer {}", http.token);
    let lower = format!("bearer {}", http.token);
    let wrong_same_length = format!("Bearer {}", "0".repeat(64));
    let cases: Vec<(&str, &str, &str, Option<&str>, u16)> = vec![
        ("no token", "/mcp", addr, None, 401),
        ("wrong token", "/mcp", addr, Some("Bearer nope"), 401),
        (
            "wrong token of the right length",
            "/mcp",
            addr,
            Some(&wrong_same_length),
            401,
        ),
        ("token without scheme", "/mcp", addr, Some(&http.token), 401),
        (
            "basic scheme",
            "/mcp",
            addr,
            Some("Basic dXNlcjpwYXNz"),
            401,
        ),
        ("other path without token", "/other", addr, None, 401),
        (
            "token, foreign Host",
            "/mcp",
            "evil.example:80",
            Some(&bearer),
            403,
        ),
        ("token", "/mcp", addr, Some(&bearer), 200),
        (
            "token, localhost Host",
            "/mcp",
            "localhost",
            Some(&bearer),
            200,
        ),
        ("lower-case scheme", "/mcp", addr, Some(&lower), 200),
    ];
    for (name, path, host, authorization, expected) in cases {
        assert_eq!(
            raw_status(addr, path, host, authorization).await,
            expected,
            "case {name:?}"
        );
    }
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), http.join)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_client_with_the_token_connects_and_one_without_cannot() {
    let cancel = CancellationToken::new();
    let http = serve_probe(&cancel).await;
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(http.url.clone())
            .auth_header(http.token.clone()),
    );
    let client = ().serve(transport).await.unwrap();
    assert!(client.peer_info().is_some());
    let anonymous = ().serve(StreamableHttpClientTransport::from_uri(http.url.clone())).await;
    assert!(anonymous.is_err());
    client.cancel().await.unwrap();
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), http.join)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn http_server_stops_on_cancel_with_a_session_open() {
    let cancel = CancellationToken::new();
    let http = serve_probe(&cancel).await;
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(http.url.clone())
            .auth_header(http.token.clone()),
    );
    let client = ().serve(transport).await.unwrap();
    assert!(client.peer_info().is_some());
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), http.join)
        .await
        .expect("server did not stop")
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(host_port(&http.url))
            .await
            .is_err()
    );
    drop(client);
}

#[test]
fn keep_alive_comes_from_the_variable() {
    assert_eq!(keep_alive_setting(None), Some(DEFAULT_KEEP_ALIVE));
    assert_eq!(keep_alive_setting(Some("")), Some(DEFAULT_KEEP_ALIVE));
    assert_eq!(keep_alive_setting(Some("2")), Some(Duration::from_secs(2)));
    assert_eq!(
        keep_alive_setting(Some(" 0.5 ")),
        Some(Duration::from_millis(500))
    );
    assert_eq!(keep_alive_setting(Some("0")), None);
    assert_eq!(keep_alive_setting(Some("-3")), Some(DEFAULT_KEEP_ALIVE));
    assert_eq!(keep_alive_setting(Some("soon")), Some(DEFAULT_KEEP_ALIVE));
    assert_eq!(DEFAULT_KEEP_ALIVE, Duration::from_secs(3600));
}

/// The keep-alive counts idle time only: a call that runs three times as long as the
/// keep-alive returns, and only then does the session, idle, end (404).
#[tokio::test]
async fn the_keep_alive_ends_idle_sessions_only() {
    let cancel = CancellationToken::new();
    let http = serve_with(
        Sleeper::new,
        cancel.clone(),
        "sleeper",
        HttpOptions {
            keep_alive: Some(Duration::from_secs(1)),
        },
    )
    .await
    .unwrap();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"}}});
    let (status, session, _) = raw_post(&http, None, init).await;
    assert_eq!(status, 200);
    let session = session.unwrap();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (status, _, _) = raw_post(&http, Some(&session), initialized).await;
    assert_eq!(status, 202);
    // No stream stays open between these requests (a raw client has no GET stream).
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                      "params": {"name": "sleep", "arguments": {"seconds": 3}}});
    let (status, _, body) = raw_post(&http, Some(&session), call).await;
    assert_eq!(status, 200);
    let data: Vec<serde_json::Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect();
    assert_eq!(
        data,
        [json!({"jsonrpc": "2.0", "id": 2, "result": {
            "content": [{"type": "text", "text": "slept"}], "isError": false}})]
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    let (status, _, body) = raw_post(&http, Some(&session), list).await;
    assert_eq!(
        (status, body.as_str()),
        (404, "Not Found: Session not found")
    );

    // rmcp's client keeps its standalone stream open, so its session is never idle, and
    // after a long quiet call it goes on as before.
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(http.url.clone())
            .auth_header(http.token.clone()),
    );
    let client = ().serve(transport).await.unwrap();
    let sleep = |seconds: f64| {
        rmcp::model::CallToolRequestParams::new("sleep")
            .with_arguments(json!({"seconds": seconds}).as_object().cloned().unwrap())
    };
    let r = client.call_tool(sleep(2.5)).await.unwrap();
    assert_eq!(r.content[0].as_text().unwrap().text, "slept");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let r = client.call_tool(sleep(0.0)).await.unwrap();
    assert_eq!(r.content[0].as_text().unwrap().text, "slept");
    client.cancel().await.unwrap();
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), http.join)
        .await
        .unwrap()
        .unwrap();
}
