//! A loopback server speaking the Anthropic Messages wire format (SSE) that answers
//! each request with the next scripted turn, and records what it was sent. The turns
//! are built from the same events the real API streams (checked against the official
//! SDK in the providers' unit tests).

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// (request head, JSON body) of every request, in order.
pub type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// A running fake; it stops with the runtime it owns when dropped.
pub struct FakeAnthropic {
    pub url: String,
    pub seen: Seen,
    _rt: tokio::runtime::Runtime,
}

impl FakeAnthropic {
    /// Serves `turns` (SSE bodies, see [`text_turn`] and [`tool_turn`]) one per request;
    /// after the last one it answers 500 to anything else.
    pub fn start(turns: Vec<String>) -> Self {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Seen = Arc::default();
        rt.spawn(serve(listener, turns, seen.clone()));
        Self { url, seen, _rt: rt }
    }

    pub fn requests(&self) -> Vec<(String, Value)> {
        self.seen.lock().unwrap().clone()
    }
}

pub fn sse(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| {
            format!(
                "event: {}\ndata: {}\n\n",
                e["type"].as_str().unwrap_or(""),
                e
            )
        })
        .collect()
}

fn message_start(input: u64) -> Value {
    // Every response of the real API has its own id.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let id = format!(
        "msg_{:04}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    json!({"type": "message_start", "message": {"id": id, "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": input, "output_tokens": 1}}})
}

/// A turn with optional text followed by tool calls `(id, name, input)`, the input
/// streamed as two `input_json_delta` fragments.
pub fn tool_turn(
    text: &str,
    calls: &[(&str, &str, Value)],
    input_tokens: u64,
    output_tokens: u64,
) -> String {
    let mut ev = vec![message_start(input_tokens)];
    let mut index = 0;
    if !text.is_empty() {
        ev.push(json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}));
        ev.push(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}));
        ev.push(json!({"type": "content_block_stop", "index": 0}));
        index = 1;
    }
    for (id, name, input) in calls {
        let s = input.to_string();
        let mid = s
            .char_indices()
            .nth(s.chars().count() / 2)
            .map(|(i, _)| i)
            .unwrap_or(0);
        ev.push(json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}));
        ev.push(json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": &s[..mid]}}));
        ev.push(json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": &s[mid..]}}));
        ev.push(json!({"type": "content_block_stop", "index": index}));
        index += 1;
    }
    ev.push(json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": output_tokens}}));
    ev.push(json!({"type": "message_stop"}));
    sse(&ev)
}

/// A final text turn (`end_turn`).
pub fn text_turn(text: &str, input_tokens: u64, output_tokens: u64) -> String {
    sse(&[
        message_start(input_tokens),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": output_tokens}}),
        json!({"type": "message_stop"}),
    ])
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<(String, Value)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = sock.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(i) = text.find("\r\n\r\n") {
            let head = text[..i].to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if buf.len() >= i + 4 + len {
                let body = serde_json::from_slice::<Value>(&buf[i + 4..i + 4 + len])
                    .unwrap_or(Value::Null);
                return Some((head, body));
            }
        }
    }
}

async fn serve(listener: tokio::net::TcpListener, turns: Vec<String>, seen: Seen) {
    let turns = Arc::new(Mutex::new(turns.into_iter()));
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let turns = turns.clone();
        let seen = seen.clone();
        tokio::spawn(async move {
            let Some(req) = read_request(&mut sock).await else {
                return;
            };
            let turn = {
                let mut seen = seen.lock().unwrap();
                seen.push(req);
                turns.lock().unwrap().next()
            };
            let resp = match turn {
                Some(turn) => format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n{turn}"
                ),
                None => {
                    let body = r#"{"type":"error","error":{"type":"invalid_request_error","message":"the fake has no more scripted turns"}}"#;
                    format!(
                        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                }
            };
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}
