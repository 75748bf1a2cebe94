//! A loopback server speaking the Anthropic Messages wire format (SSE) that answers
//! each request with the next scripted turn, and records what it was sent. The turns
//! are built from the same events the real API streams (checked against the official
//! SDK in the providers' unit tests).

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// (request head, JSON body) of every request, in order.
pub type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// What the fake answers to one request.
pub enum Reply {
    /// 200 with this SSE body.
    Sse(String),
    /// These exact bytes (status line, headers, body), then close.
    Raw(String),
    /// Read the request and never answer.
    Hang,
}

/// Picks the reply from the request number (0-based) and the JSON body.
pub type Responder = Arc<dyn Fn(usize, &Value) -> Reply + Send + Sync>;

/// An HTTP error response with a JSON error body in Anthropic's shape.
pub fn http_error(status: u16, reason: &str, kind: &str, extra_headers: &str) -> Reply {
    let body = json!({"type": "error", "error": {"type": kind, "message": reason}}).to_string();
    Reply::Raw(format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra_headers}connection: close\r\n\r\n{body}",
        body.len()
    ))
}

/// The last message's tool results as text, if the request answers tool calls.
pub fn last_tool_results(body: &Value) -> Option<String> {
    let last = body["messages"].as_array()?.last()?;
    let parts: Vec<String> = last["content"]
        .as_array()?
        .iter()
        .filter(|b| b["type"] == "tool_result")
        .map(|b| b["content"].to_string())
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n"))
}

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
        let turns = Mutex::new(turns.into_iter());
        Self::start_with(Arc::new(move |_, _| match turns.lock().unwrap().next() {
            Some(t) => Reply::Sse(t),
            None => http_error(
                400,
                "the fake has no more scripted turns",
                "invalid_request_error",
                "",
            ),
        }))
    }

    /// Answers every request with what `responder` picks.
    pub fn start_with(responder: Responder) -> Self {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Seen = Arc::default();
        rt.spawn(serve(listener, responder, seen.clone()));
        Self { url, seen, _rt: rt }
    }

    /// Answers every request with what `f` picks from the request number and body.
    pub fn respond(f: impl Fn(usize, &Value) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_with(Arc::new(f))
    }

    /// Reads every request and never answers.
    pub fn hanging() -> Self {
        Self::respond(|_, _| Reply::Hang)
    }

    /// What the fake was sent so far: (request head, JSON body) per request.
    pub fn requests(&self) -> Vec<(String, Value)> {
        self.seen.lock().unwrap().clone()
    }
}

/// The script of the basic agent tests: "Let me compute." with one call of `tool` (a
/// notebook's `execute_code`) running `6 * 7`, then "The answer is 42." (300 in / 27 out
/// tokens in all).
pub fn compute_6x7(tool: &str) -> Vec<String> {
    vec![
        tool_turn(
            "Let me compute.",
            &[("toolu_1", tool, json!({"code": "6 * 7"}))],
            100,
            20,
        ),
        text_turn("The answer is 42.", 200, 7),
    ]
}

/// A turn of one tool call `(id, name, input)` and no text (10 in / 5 out tokens).
pub fn call_turn(id: &str, name: &str, input: Value) -> String {
    tool_turn("", &[(id, name, input)], 10, 5)
}

/// A final text turn of 10 in / 5 out tokens.
pub fn answer(text: &str) -> String {
    text_turn(text, 10, 5)
}

/// The names of the tools a request offers.
pub fn tool_names(body: &Value) -> Vec<String> {
    body["tools"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Every `tool_result` block of a request's messages, in order.
pub fn tool_results(body: &Value) -> Vec<Value> {
    body["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
                .filter(|b| b["type"] == "tool_result")
                .collect()
        })
        .unwrap_or_default()
}

/// A request head's request line and its headers (names lowercased), sorted by name.
pub fn head_lines(head: &str) -> (String, Vec<(String, String)>) {
    let mut lines = head.lines();
    let request = lines.next().unwrap_or_default().to_string();
    let mut headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    headers.sort();
    (request, headers)
}

/// An SSE body: each event as `event: <type>` and its JSON `data:` line.
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

async fn serve(listener: tokio::net::TcpListener, responder: Responder, seen: Seen) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let responder = responder.clone();
        let seen = seen.clone();
        tokio::spawn(async move {
            let Some(req) = read_request(&mut sock).await else {
                return;
            };
            let reply = {
                let mut seen = seen.lock().unwrap();
                let n = seen.len();
                let reply = responder(n, &req.1);
                seen.push(req);
                reply
            };
            let resp = match reply {
                Reply::Sse(turn) => format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n{turn}"
                ),
                Reply::Raw(raw) => raw,
                Reply::Hang => {
                    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                    return;
                }
            };
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}
