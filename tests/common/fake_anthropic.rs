//! A loopback server speaking the Anthropic Messages wire format (SSE) that answers
//! each request with the next scripted turn, and records what it was sent. The turns
//! are built from the same events the real API streams (checked against the official
//! SDK in the providers' unit tests). It serves any SSE body, so `fake_openai` and
//! `fake_gemini` turns go through it too; it tells the API from the request's path.
//!
//! Off by default, two emulations make usage depend on what was sent, as the real APIs'
//! does (see [`FakeAnthropic::with_window`] and [`FakeAnthropic::with_caching`]):
//! - **A context window.** The prompt's size is estimated as one token per 4 bytes of
//!   the JSON of its parts ([`prompt_tokens`]: each tool, system block and message block,
//!   without `cache_control`); over the window the request is answered with the API's
//!   own error (Anthropic: 400 `invalid_request_error` "prompt is too long: N tokens > M
//!   maximum"; OpenAI: 400 `context_length_exceeded`; Gemini: 400 `INVALID_ARGUMENT` "The
//!   input token count (N) exceeds the maximum number of tokens allowed (M)."), and under
//!   it the scripted turn's input usage is replaced by the estimate.
//! - **Anthropic's prompt caching.** A block with `cache_control` ends a cacheable
//!   prefix (tools, then system, then messages). A request whose breakpoint prefix equals
//!   one an earlier request wrote (within the TTL, 5 minutes, refreshed by each read)
//!   reads the longest such prefix: `cache_read_input_tokens`; its later breakpoints are
//!   written: `cache_creation_input_tokens` up to the last one; the rest is
//!   `input_tokens`. Unlike the API, the fake looks for hits at the breakpoints only (not
//!   up to 20 blocks before them) and caches prefixes of any size (the API ignores
//!   breakpoints below 1024 tokens or so).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// The API a request was sent to, from its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `POST /v1/messages`.
    Anthropic,
    /// `POST .../chat/completions`.
    OpenAi,
    /// `POST /v1beta/models/{model}:streamGenerateContent`.
    Gemini,
}

impl Api {
    /// The API of a request head (`POST <path> HTTP/1.1` ...).
    pub fn of(head: &str) -> Self {
        let path = head.split_whitespace().nth(1).unwrap_or("");
        if path.contains(":streamGenerateContent") || path.contains(":generateContent") {
            Self::Gemini
        } else if path.contains("/chat/completions") {
            Self::OpenAi
        } else {
            Self::Anthropic
        }
    }
}

/// What the emulations (see the module docs) make of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    /// The prompt's estimated size ([`prompt_tokens`]).
    pub tokens: u64,
    /// Uncached input reported.
    pub input: u64,
    /// Reported as read from the cache.
    pub cache_read: u64,
    /// Reported as written to the cache.
    pub cache_write: u64,
    /// Answered with the context-window error instead of a turn.
    pub over_window: bool,
}

#[derive(Default)]
struct Emulation {
    window: Option<u64>,
    caching: bool,
    ttl: Option<Duration>,
    /// Prefix hash -> when it expires.
    cache: HashMap<u64, Instant>,
    measured: Vec<Measured>,
}

impl Emulation {
    fn active(&self) -> bool {
        self.window.is_some() || self.caching
    }
}

/// A running fake; it stops with the runtime it owns when dropped.
pub struct FakeAnthropic {
    pub url: String,
    pub seen: Seen,
    emulation: Arc<Mutex<Emulation>>,
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
        let emulation: Arc<Mutex<Emulation>> = Arc::default();
        rt.spawn(serve(listener, responder, seen.clone(), emulation.clone()));
        Self {
            url,
            seen,
            emulation,
            _rt: rt,
        }
    }

    /// Enforces a context window of `tokens` (estimated, see [`prompt_tokens`]): a larger
    /// prompt gets the API's own error, and every answer's input usage is the estimate.
    pub fn with_window(self, tokens: u64) -> Self {
        self.emulation.lock().unwrap().window = Some(tokens);
        self
    }

    /// Emulates Anthropic's prompt caching (see the module docs); input usage is then
    /// measured from the request.
    pub fn with_caching(self) -> Self {
        self.emulation.lock().unwrap().caching = true;
        self
    }

    /// How long a cached prefix lives after its last use (default 5 minutes).
    pub fn with_cache_ttl(self, ttl: Duration) -> Self {
        self.emulation.lock().unwrap().ttl = Some(ttl);
        self
    }

    /// What the emulations made of each request so far (empty when they are off).
    pub fn measured(&self) -> Vec<Measured> {
        self.emulation.lock().unwrap().measured.clone()
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

/// `block` with the prompt-cache breakpoint seer puts on the end of the history (and on
/// the end of the previous turn).
pub fn cached(mut block: Value) -> Value {
    block["cache_control"] = json!({"type": "ephemeral"});
    block
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

/// A JSON error response.
fn json_error(status: &str, body: Value) -> Reply {
    let body = body.to_string();
    Reply::Raw(format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ))
}

/// The error `api` answers a prompt of `tokens` over a window of `window` with, as the
/// real APIs word it.
pub fn too_long_error(api: Api, tokens: u64, window: u64) -> Reply {
    match api {
        Api::Anthropic => json_error(
            "400 Bad Request",
            json!({"type": "error", "error": {"type": "invalid_request_error",
                   "message": format!("prompt is too long: {tokens} tokens > {window} maximum")}}),
        ),
        Api::OpenAi => json_error(
            "400 Bad Request",
            json!({"error": {"message": format!("This model's maximum context length is {window} tokens. However, your messages resulted in {tokens} tokens. Please reduce the length of the messages."),
                   "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}),
        ),
        Api::Gemini => json_error(
            "400 Bad Request",
            json!({"error": {"code": 400,
                   "message": format!("The input token count ({tokens}) exceeds the maximum number of tokens allowed ({window})."),
                   "status": "INVALID_ARGUMENT"}}),
        ),
    }
}

/// `v` without `cache_control` fields (they mark a prefix; they are not part of it).
fn without_cache_control(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("cache_control");
    }
    v
}

/// The parts of a prompt in order, as the estimate and the cache see them: each the JSON
/// of a tool, system block, message block (Anthropic), message (OpenAI) or content
/// (Gemini), and whether it carries a `cache_control` breakpoint.
fn prompt_parts(api: Api, body: &Value) -> Vec<(String, bool)> {
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let part = |v: &Value| {
        (
            without_cache_control(v).to_string(),
            v.get("cache_control").is_some(),
        )
    };
    let mut parts = vec![];
    match api {
        Api::Anthropic => {
            parts.extend(list(&body["tools"]).iter().map(part));
            match &body["system"] {
                Value::String(s) => parts.push((json!(s).to_string(), false)),
                v => parts.extend(list(v).iter().map(part)),
            }
            for (i, m) in list(&body["messages"]).iter().enumerate() {
                let blocks = match &m["content"] {
                    Value::String(s) => vec![json!({"type": "text", "text": s})],
                    v => list(v),
                };
                for b in &blocks {
                    let (text, marked) = part(b);
                    parts.push((format!("{i}:{}:{text}", m["role"]), marked));
                }
            }
        }
        Api::OpenAi => {
            parts.extend(list(&body["tools"]).iter().map(part));
            parts.extend(list(&body["messages"]).iter().map(part));
        }
        Api::Gemini => {
            if !body["systemInstruction"].is_null() {
                parts.push(part(&body["systemInstruction"]));
            }
            parts.extend(list(&body["tools"]).iter().map(part));
            parts.extend(list(&body["contents"]).iter().map(part));
        }
    }
    parts
}

/// The fake's estimate of a prompt's size: one token per 4 bytes of its parts' JSON.
pub fn prompt_tokens(api: Api, body: &Value) -> u64 {
    prompt_parts(api, body)
        .iter()
        .map(|(p, _)| p.len() as u64)
        .sum::<u64>()
        / 4
}

impl Emulation {
    /// Measures a request: its size, and with caching what it reads and writes (updating
    /// the cache).
    fn measure(&mut self, api: Api, body: &Value) -> Measured {
        let parts = prompt_parts(api, body);
        let mut hasher = DefaultHasher::new();
        let mut bytes = 0u64;
        // (prefix hash, prefix tokens) at each breakpoint.
        let mut breakpoints = vec![];
        for (p, marked) in &parts {
            hasher.write(p.as_bytes());
            hasher.write_u8(0);
            bytes += p.len() as u64;
            if *marked {
                breakpoints.push((hasher.finish(), bytes / 4));
            }
        }
        let tokens = bytes / 4;
        let over_window = self.window.is_some_and(|w| tokens > w);
        let (mut read, mut write) = (0, 0);
        // A refused request reads and writes nothing.
        if self.caching && api == Api::Anthropic && !over_window {
            let now = Instant::now();
            let ttl = self.ttl.unwrap_or(Duration::from_secs(300));
            self.cache.retain(|_, expires| *expires > now);
            let hit = breakpoints
                .iter()
                .rposition(|(hash, _)| self.cache.contains_key(hash));
            if let Some(i) = hit {
                read = breakpoints[i].1;
                self.cache.insert(breakpoints[i].0, now + ttl);
            }
            let new = &breakpoints[hit.map_or(0, |i| i + 1)..];
            if let Some((_, last)) = new.last() {
                write = last - read;
            }
            for (hash, _) in new {
                self.cache.insert(*hash, now + ttl);
            }
        }
        Measured {
            tokens,
            input: tokens - read - write,
            cache_read: read,
            cache_write: write,
            over_window,
        }
    }
}

/// `turn` (an SSE body) with its input usage replaced by what was measured.
fn with_measured_usage(api: Api, turn: &str, m: &Measured) -> String {
    let rewrite = |v: &mut Value| match api {
        Api::Anthropic => {
            if v["type"] == "message_start" {
                let usage = &mut v["message"]["usage"];
                usage["input_tokens"] = json!(m.input);
                usage["cache_read_input_tokens"] = json!(m.cache_read);
                usage["cache_creation_input_tokens"] = json!(m.cache_write);
            }
        }
        Api::OpenAi => {
            if let Some(usage) = v.get_mut("usage").filter(|u| u.is_object()) {
                let completion = usage["completion_tokens"].as_u64().unwrap_or(0);
                usage["prompt_tokens"] = json!(m.tokens);
                usage["total_tokens"] = json!(m.tokens + completion);
                usage["prompt_tokens_details"] = json!({"cached_tokens": m.cache_read});
            }
        }
        Api::Gemini => {
            if let Some(usage) = v.get_mut("usageMetadata").filter(|u| u.is_object()) {
                let n = |k: &str| usage[k].as_u64().unwrap_or(0);
                let out = n("candidatesTokenCount") + n("thoughtsTokenCount");
                usage["promptTokenCount"] = json!(m.tokens);
                usage["totalTokenCount"] = json!(m.tokens + out);
            }
        }
    };
    turn.split_inclusive('\n')
        .map(|line| {
            let body = line.trim_end_matches(['\r', '\n']);
            let end = &line[body.len()..];
            match body
                .strip_prefix("data: ")
                .and_then(|d| serde_json::from_str::<Value>(d).ok())
            {
                Some(mut v) => {
                    rewrite(&mut v);
                    format!("data: {v}{end}")
                }
                None => line.to_string(),
            }
        })
        .collect()
}

async fn serve(
    listener: tokio::net::TcpListener,
    responder: Responder,
    seen: Seen,
    emulation: Arc<Mutex<Emulation>>,
) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let responder = responder.clone();
        let seen = seen.clone();
        let emulation = emulation.clone();
        tokio::spawn(async move {
            let Some(req) = read_request(&mut sock).await else {
                return;
            };
            let reply = {
                let mut seen = seen.lock().unwrap();
                let mut emulation = emulation.lock().unwrap();
                let n = seen.len();
                let api = Api::of(&req.0);
                let measured = emulation.active().then(|| emulation.measure(api, &req.1));
                let reply = match measured {
                    Some(m) if m.over_window => {
                        too_long_error(api, m.tokens, emulation.window.unwrap_or(0))
                    }
                    Some(m) => match responder(n, &req.1) {
                        Reply::Sse(turn) => Reply::Sse(with_measured_usage(api, &turn, &m)),
                        other => other,
                    },
                    None => responder(n, &req.1),
                };
                if let Some(m) = measured {
                    emulation.measured.push(m);
                }
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
