use std::time::Duration;

use rmcp::ServiceExt;
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
