//! Tests against a loopback fake server that speaks the Anthropic and OpenAI
//! streaming wire formats, records every request and injects faults. No real
//! provider is ever called.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::*;

const KEY: &str = "sk-test-SECRET-0123456789";

#[derive(Debug, Clone)]
struct Recorded {
    path: String,
    headers: BTreeMap<String, String>,
    body: Value,
}

#[derive(Debug, Clone)]
enum Reply {
    /// 200 SSE stream; `cut_at` closes the socket after that many bytes.
    Stream {
        wire: String,
        cut_at: Option<usize>,
        delay: Duration,
    },
    /// A plain HTTP response.
    Status {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
}

fn stream(wire: String) -> Reply {
    Reply::Stream {
        wire,
        cut_at: None,
        delay: Duration::ZERO,
    }
}

fn status(status: u16, headers: Vec<(&'static str, String)>, body: Value) -> Reply {
    Reply::Status {
        status,
        headers,
        body: body.to_string(),
    }
}

struct Fake {
    base: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Fake {
    async fn start(replies: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(replies)));
        let recs = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (recs, script) = (recs.clone(), script.clone());
                tokio::spawn(async move { serve(sock, recs, script).await });
            }
        });
        Self {
            base: format!("http://{addr}"),
            requests,
        }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

async fn serve(
    mut sock: tokio::net::TcpStream,
    recs: Arc<Mutex<Vec<Recorded>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
) {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut tmp).await.unwrap();
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap().to_string();
    let path = request_line.split(' ').nth(1).unwrap().to_string();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers["content-length"].parse().unwrap();
    while buf.len() < head_end + len {
        let n = sock.read(&mut tmp).await.unwrap();
        assert!(n > 0, "client closed mid-body");
        buf.extend_from_slice(&tmp[..n]);
    }
    let body: Value = serde_json::from_slice(&buf[head_end..head_end + len]).unwrap();
    recs.lock().unwrap().push(Recorded {
        path,
        headers,
        body,
    });
    let reply = script
        .lock()
        .unwrap()
        .pop_front()
        .expect("script exhausted");
    match reply {
        Reply::Status {
            status,
            headers,
            body,
        } => {
            let mut out = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            out.push_str(&body);
            let _ = sock.write_all(out.as_bytes()).await;
        }
        Reply::Stream {
            wire,
            cut_at,
            delay,
        } => {
            tokio::time::sleep(delay).await;
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n";
            if sock.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let bytes = wire.as_bytes();
            let bytes = &bytes[..cut_at.unwrap_or(bytes.len()).min(bytes.len())];
            // Small writes exercise the SSE parser's buffering.
            for c in bytes.chunks(7) {
                if sock.write_all(c).await.is_err() {
                    return;
                }
                let _ = sock.flush().await;
                tokio::task::yield_now().await;
            }
        }
    }
    let _ = sock.shutdown().await;
}

// ---------- wire builders ----------

fn sse_anthropic(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| format!("event: {}\ndata: {}\n\n", e["type"].as_str().unwrap(), e))
        .collect()
}

fn a_start() -> Value {
    json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5", "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": 25, "output_tokens": 1, "cache_read_input_tokens": 7, "cache_creation_input_tokens": 3}}})
}

fn a_end(stop: &str, out: u64) -> Vec<Value> {
    vec![
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": out}}),
        json!({"type": "message_stop"}),
    ]
}

fn anthropic_text_turn(parts: &[&str]) -> String {
    let mut ev = vec![
        a_start(),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "ping"}),
    ];
    for p in parts {
        ev.push(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}));
    }
    ev.push(json!({"type": "content_block_stop", "index": 0}));
    ev.extend(a_end("end_turn", 15));
    sse_anthropic(&ev)
}

fn anthropic_tool_turn() -> String {
    let mut ev = vec![
        a_start(),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me look."}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_01", "name": "run_code", "input": {}}}),
    ];
    for frag in ["", "{\"code\": \"pri", "nt(1)\", \"ti", "meout\": 3", "0}"] {
        ev.push(json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": frag}}));
    }
    ev.push(json!({"type": "content_block_stop", "index": 1}));
    ev.extend(a_end("tool_use", 40));
    sse_anthropic(&ev)
}

fn anthropic_thinking_turn() -> String {
    let mut ev = vec![
        a_start(),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm, "}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "2+2=4."}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIYAh"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "4"}}),
        json!({"type": "content_block_stop", "index": 1}),
    ];
    ev.extend(a_end("end_turn", 9));
    sse_anthropic(&ev)
}

fn sse_openai(chunks: &[Value]) -> String {
    let mut s: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    s.push_str("data: [DONE]\n\n");
    s
}

fn o_chunk(delta: Value, finish: Value) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4.1",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

fn o_usage() -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4.1", "choices": [],
        "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42, "prompt_tokens_details": {"cached_tokens": 10}}})
}

fn openai_text_turn(parts: &[&str]) -> String {
    let mut c = vec![o_chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for p in parts {
        c.push(o_chunk(json!({"content": p}), Value::Null));
    }
    c.push(o_chunk(json!({}), json!("stop")));
    c.push(o_usage());
    sse_openai(&c)
}

fn openai_tool_turn() -> String {
    let c = vec![
        o_chunk(
            json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": "call_A", "type": "function", "function": {"name": "run_code", "arguments": ""}}]}),
            Value::Null,
        ),
        o_chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"code\":"}}]}),
            Value::Null,
        ),
        o_chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": " \"x=1\"}"}}]}),
            Value::Null,
        ),
        o_chunk(
            json!({"tool_calls": [{"index": 1, "id": "call_B", "type": "function", "function": {"name": "read", "arguments": "{}"}}]}),
            Value::Null,
        ),
        o_chunk(json!({}), json!("tool_calls")),
        o_usage(),
    ];
    sse_openai(&c)
}

// ---------- helpers ----------

fn config(kind: Kind, base: &str) -> ProviderConfig {
    ProviderConfig {
        kind,
        base_url: base.to_string(),
        api_key_env: "UNUSED".into(),
        model: default_model(kind).into(),
        timeout: Duration::from_secs(10),
        max_retries: 4,
        retry_base_delay: Duration::from_millis(5),
    }
}

fn provider(kind: Kind, fake: &Fake) -> Box<dyn Provider> {
    config(kind, &fake.base)
        .build_with_key(ApiKey::new(KEY))
        .unwrap()
}

fn tools() -> Vec<ToolSpec> {
    vec![ToolSpec {
        name: "run_code".into(),
        description: "Run Python".into(),
        input_schema: json!({"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}),
    }]
}

/// A conversation with a tool call and an image-bearing tool result.
fn convo_request() -> Request {
    Request {
        model: String::new(),
        system: "You are a probe.".into(),
        messages: vec![
            Message {
                role: Role::User,
                content: vec![Block::Text("Plot it".into())],
            },
            Message {
                role: Role::Assistant,
                content: vec![
                    Block::Thinking {
                        text: "plan".into(),
                        signature: Some("sig".into()),
                    },
                    Block::Text("Running.".into()),
                    Block::ToolUse {
                        id: "t1".into(),
                        name: "run_code".into(),
                        input: json!({"code": "plot()"}),
                    },
                ],
            },
            Message {
                role: Role::User,
                content: vec![Block::ToolResult {
                    tool_use_id: "t1".into(),
                    content: vec![
                        ResultPart::Text("done".into()),
                        ResultPart::Image {
                            media_type: "image/png".into(),
                            data_base64: "iVBORw0KGgo=".into(),
                        },
                    ],
                    is_error: false,
                }],
            },
        ],
        tools: tools(),
        max_tokens: 1024,
        options: Options {
            temperature: Some(0.5),
            ..Default::default()
        },
    }
}

fn simple_request() -> Request {
    Request {
        model: "m-override".into(),
        system: String::new(),
        messages: vec![Message {
            role: Role::User,
            content: vec![Block::Text("hi".into())],
        }],
        tools: vec![],
        max_tokens: 100,
        options: Options::default(),
    }
}

async fn run(p: &dyn Provider, req: &Request) -> (anyhow::Result<Response>, Vec<StreamEvent>) {
    let mut events = Vec::new();
    let r = p
        .stream(
            &p.request_body(req),
            &mut |e| events.push(e),
            &CancellationToken::new(),
        )
        .await;
    (r, events)
}

fn strip_raw(mut r: Response) -> Response {
    r.raw = Value::Null;
    r
}

// ---------- anthropic ----------

#[tokio::test]
async fn anthropic_text_turn_and_request_shape() {
    let fake = Fake::start(vec![stream(anthropic_text_turn(&["Hel", "lo ✓"]))]).await;
    let p = provider(Kind::Anthropic, &fake);
    let req = convo_request();
    let (resp, events) = run(p.as_ref(), &req).await;
    let resp = resp.unwrap();
    assert_eq!(
        strip_raw(resp.clone()),
        Response {
            content: vec![Block::Text("Hello ✓".into())],
            stop_reason: StopReason::EndTurn,
            usage: Usage {
                input_tokens: 25,
                output_tokens: 15,
                cache_read_tokens: 7,
                cache_write_tokens: 3
            },
            raw: Value::Null,
        }
    );
    assert_eq!(resp.raw.as_array().unwrap().len(), 8);
    assert_eq!(
        events,
        vec![
            StreamEvent::TextDelta("Hel".into()),
            StreamEvent::TextDelta("lo ✓".into()),
            StreamEvent::Done(resp.clone())
        ]
    );
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.headers["x-api-key"], KEY);
    assert_eq!(r.headers["anthropic-version"], "2023-06-01");
    assert_eq!(r.headers["content-type"], "application/json");
    assert!(!r.headers.contains_key("authorization"));
    assert_eq!(r.body, p.request_body(&req));
    assert_eq!(
        r.body,
        json!({
            "model": "claude-sonnet-4-5-20250929",
            "max_tokens": 1024,
            "stream": true,
            "system": [{"type": "text", "text": "You are a probe.", "cache_control": {"type": "ephemeral"}}],
            "temperature": 0.5,
            "tools": [{"name": "run_code", "description": "Run Python",
                "input_schema": {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]},
                "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Plot it", "cache_control": {"type": "ephemeral"}}]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "plan", "signature": "sig"},
                    {"type": "text", "text": "Running."},
                    {"type": "tool_use", "id": "t1", "name": "run_code", "input": {"code": "plot()"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "is_error": false, "content": [
                    {"type": "text", "text": "done"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}],
                    "cache_control": {"type": "ephemeral"}}]}
            ]
        })
    );
}

#[tokio::test]
async fn anthropic_tool_use_fragments() {
    let fake = Fake::start(vec![stream(anthropic_tool_turn())]).await;
    let p = provider(Kind::Anthropic, &fake);
    let (resp, events) = run(p.as_ref(), &simple_request()).await;
    let resp = strip_raw(resp.unwrap());
    assert_eq!(
        resp.content,
        vec![
            Block::Text("Let me look.".into()),
            Block::ToolUse {
                id: "toolu_01".into(),
                name: "run_code".into(),
                input: json!({"code": "print(1)", "timeout": 30})
            }
        ]
    );
    assert_eq!(resp.stop_reason, StopReason::ToolUse);
    assert_eq!(
        events[..2],
        [
            StreamEvent::TextDelta("Let me look.".into()),
            StreamEvent::ToolUseStart {
                id: "toolu_01".into(),
                name: "run_code".into()
            }
        ]
    );
    assert_eq!(fake.requests()[0].body["model"], "m-override");
    assert!(fake.requests()[0].body.get("system").is_none());
}

#[tokio::test]
async fn anthropic_thinking() {
    let fake = Fake::start(vec![stream(anthropic_thinking_turn())]).await;
    let p = provider(Kind::Anthropic, &fake);
    let (resp, events) = run(p.as_ref(), &simple_request()).await;
    let resp = resp.unwrap();
    assert_eq!(
        resp.content,
        vec![
            Block::Thinking {
                text: "Hmm, 2+2=4.".into(),
                signature: Some("EqQBCgIYAh".into())
            },
            Block::Text("4".into())
        ]
    );
    assert_eq!(
        events[..3],
        [
            StreamEvent::ThinkingDelta("Hmm, ".into()),
            StreamEvent::ThinkingDelta("2+2=4.".into()),
            StreamEvent::TextDelta("4".into())
        ]
    );
}

// ---------- openai ----------

#[tokio::test]
async fn openai_text_turn_and_request_shape() {
    let fake = Fake::start(vec![stream(openai_text_turn(&["Hi", " there"]))]).await;
    let p = provider(Kind::OpenAi, &fake);
    let req = convo_request();
    let (resp, events) = run(p.as_ref(), &req).await;
    let resp = resp.unwrap();
    assert_eq!(
        strip_raw(resp.clone()),
        Response {
            content: vec![Block::Text("Hi there".into())],
            stop_reason: StopReason::EndTurn,
            usage: Usage {
                input_tokens: 20,
                output_tokens: 12,
                cache_read_tokens: 10,
                cache_write_tokens: 0
            },
            raw: Value::Null,
        }
    );
    assert_eq!(
        events,
        vec![
            StreamEvent::TextDelta("Hi".into()),
            StreamEvent::TextDelta(" there".into()),
            StreamEvent::Done(resp)
        ]
    );
    let r = &fake.requests()[0];
    assert_eq!(r.path, "/chat/completions");
    assert_eq!(r.headers["authorization"], format!("Bearer {KEY}"));
    assert!(!r.headers.contains_key("x-api-key"));
    assert_eq!(r.body, p.request_body(&req));
    assert_eq!(
        r.body,
        json!({
            "model": "gpt-5",
            "max_tokens": 1024,
            "stream": true,
            "stream_options": {"include_usage": true},
            "temperature": 0.5,
            "tools": [{"type": "function", "function": {"name": "run_code", "description": "Run Python",
                "parameters": {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}}}],
            "messages": [
                {"role": "system", "content": "You are a probe."},
                {"role": "user", "content": "Plot it"},
                {"role": "assistant", "content": "Running.", "tool_calls": [
                    {"id": "t1", "type": "function", "function": {"name": "run_code", "arguments": "{\"code\":\"plot()\"}"}}]},
                {"role": "tool", "tool_call_id": "t1", "content": "done\n(1 image(s) attached in the next user message)"},
                {"role": "user", "content": [
                    {"type": "text", "text": "Images returned by the tool calls above:"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}
            ]
        })
    );
}

#[tokio::test]
async fn openai_tool_call_fragments() {
    let fake = Fake::start(vec![stream(openai_tool_turn())]).await;
    let p = provider(Kind::OpenAi, &fake);
    let (resp, events) = run(p.as_ref(), &simple_request()).await;
    let resp = resp.unwrap();
    assert_eq!(
        resp.content,
        vec![
            Block::ToolUse {
                id: "call_A".into(),
                name: "run_code".into(),
                input: json!({"code": "x=1"})
            },
            Block::ToolUse {
                id: "call_B".into(),
                name: "read".into(),
                input: json!({})
            }
        ]
    );
    assert_eq!(resp.stop_reason, StopReason::ToolUse);
    assert_eq!(
        events[..2],
        [
            StreamEvent::ToolUseStart {
                id: "call_A".into(),
                name: "run_code".into()
            },
            StreamEvent::ToolUseStart {
                id: "call_B".into(),
                name: "read".into()
            }
        ]
    );
}

// ---------- faults ----------

#[tokio::test]
async fn retries_429_with_retry_after_then_succeeds() {
    let fake = Fake::start(vec![
        status(
            429,
            vec![("retry-after", "0".into())],
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}),
        ),
        stream(anthropic_text_turn(&["ok"])),
    ])
    .await;
    let p = provider(Kind::Anthropic, &fake);
    let (resp, _) = run(p.as_ref(), &simple_request()).await;
    assert_eq!(resp.unwrap().content, vec![Block::Text("ok".into())]);
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].body, reqs[1].body);
}

#[tokio::test]
async fn retries_500_then_succeeds_openai() {
    let fake = Fake::start(vec![
        status(
            500,
            vec![],
            json!({"error": {"message": "boom", "type": "server_error"}}),
        ),
        stream(openai_text_turn(&["ok"])),
    ])
    .await;
    let p = provider(Kind::OpenAi, &fake);
    let (resp, _) = run(p.as_ref(), &simple_request()).await;
    assert_eq!(resp.unwrap().content, vec![Block::Text("ok".into())]);
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn retries_529_overloaded_then_succeeds() {
    let fake = Fake::start(vec![
        status(529, vec![("retry-after-ms", "1".into())], json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})),
        stream(anthropic_text_turn(&["ok"])),
    ])
    .await;
    let p = provider(Kind::Anthropic, &fake);
    let (resp, _) = run(p.as_ref(), &simple_request()).await;
    assert_eq!(resp.unwrap().content, vec![Block::Text("ok".into())]);
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn retries_midstream_overloaded_error_event() {
    let mut wire = sse_anthropic(&[a_start()]);
    wire.push_str(&sse_anthropic(&[
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    ]));
    let fake = Fake::start(vec![stream(wire), stream(anthropic_text_turn(&["ok"]))]).await;
    let p = provider(Kind::Anthropic, &fake);
    let (resp, _) = run(p.as_ref(), &simple_request()).await;
    assert_eq!(resp.unwrap().content, vec![Block::Text("ok".into())]);
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn retries_stream_cut_mid_event() {
    for kind in [Kind::Anthropic, Kind::OpenAi, Kind::Gemini] {
        let wire = match kind {
            Kind::Anthropic => anthropic_tool_turn(),
            Kind::OpenAi => openai_tool_turn(),
            Kind::Gemini => gemini::gemini_tool_turn(),
        };
        let cut = Reply::Stream {
            cut_at: Some(wire.len() / 2 + 3),
            wire: wire.clone(),
            delay: Duration::ZERO,
        };
        let fake = Fake::start(vec![cut, stream(wire)]).await;
        let p = provider(kind, &fake);
        let (resp, _) = run(p.as_ref(), &simple_request()).await;
        assert_eq!(resp.unwrap().stop_reason, StopReason::ToolUse, "{kind:?}");
        assert_eq!(fake.requests().len(), 2, "{kind:?}");
    }
}

#[tokio::test]
async fn timeout_is_reported() {
    let fake = Fake::start(vec![Reply::Stream {
        wire: anthropic_text_turn(&["late"]),
        cut_at: None,
        delay: Duration::from_secs(5),
    }])
    .await;
    let mut cfg = config(Kind::Anthropic, &fake.base);
    cfg.timeout = Duration::from_millis(200);
    cfg.max_retries = 0;
    let p = cfg.build_with_key(ApiKey::new(KEY)).unwrap();
    let start = std::time::Instant::now();
    let (resp, _) = run(p.as_ref(), &simple_request()).await;
    let msg = format!("{:#}", resp.unwrap_err());
    assert!(msg.contains("timed out after 200ms"), "{msg}");
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn cancellation_aborts_at_once() {
    let fake = Fake::start(vec![Reply::Stream {
        wire: openai_text_turn(&["late"]),
        cut_at: None,
        delay: Duration::from_secs(5),
    }])
    .await;
    let p = provider(Kind::OpenAi, &fake);
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        c2.cancel();
    });
    let start = std::time::Instant::now();
    let err = p
        .stream(&p.request_body(&simple_request()), &mut |_| {}, &cancel)
        .await
        .unwrap_err();
    assert_eq!(format!("{err:#}"), "openai: cancelled");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn unauthorized_is_not_retried_and_hides_key() {
    for kind in [Kind::Anthropic, Kind::OpenAi] {
        // A hostile server echoing the key back must not leak it either.
        let fake = Fake::start(vec![status(
            401,
            vec![],
            json!({"type": "error", "error": {"type": "authentication_error", "message": format!("invalid x-api-key {KEY}")}}),
        )])
        .await;
        let p = provider(kind, &fake);
        let (resp, _) = run(p.as_ref(), &simple_request()).await;
        let msg = format!(
            "{:#} / {:?}",
            resp.as_ref().unwrap_err(),
            resp.as_ref().unwrap_err()
        );
        assert!(msg.contains("HTTP 401"), "{msg}");
        assert!(
            msg.contains("authentication_error: invalid x-api-key [REDACTED]"),
            "{msg}"
        );
        assert!(msg.contains(p.name()), "{msg}");
        assert!(!msg.contains(KEY), "{msg}");
        assert_eq!(fake.requests().len(), 1);
    }
}

#[test]
fn debug_output_hides_key() {
    let cfg = config(Kind::Anthropic, "http://127.0.0.1:1");
    let a = AnthropicProvider::new(cfg.clone(), ApiKey::new(KEY), reqwest::Client::new());
    let o = OpenAiProvider::new(cfg, ApiKey::new(KEY), reqwest::Client::new());
    let dbg = format!("{a:?} {o:?}");
    assert!(dbg.contains("ApiKey([REDACTED])"), "{dbg}");
    assert!(!dbg.contains(KEY), "{dbg}");
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);
impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn gives_up_after_max_retries_without_leaking_key_in_logs() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let err_body =
        json!({"error": {"message": format!("upstream down (key {KEY})"), "type": "server_error"}});
    let fake = Fake::start(vec![
        status(503, vec![], err_body.clone()),
        status(503, vec![], err_body.clone()),
        status(503, vec![], err_body),
    ])
    .await;
    let mut cfg = config(Kind::OpenAi, &fake.base);
    cfg.max_retries = 2;
    let p = cfg.build_with_key(ApiKey::new(KEY)).unwrap();
    let (resp, _) = run(p.as_ref(), &simple_request()).await;
    let msg = format!("{:#}", resp.unwrap_err());
    assert_eq!(
        msg,
        "openai: giving up after 2 retries: openai: HTTP 503: server_error: upstream down (key [REDACTED])"
    );
    assert_eq!(fake.requests().len(), 3);
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("retrying provider request"), "{logs}");
    assert!(!logs.contains(KEY), "{logs}");
}

#[tokio::test]
async fn connection_refused_is_retried_then_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut cfg = config(Kind::Anthropic, &base);
    cfg.max_retries = 1;
    let p = cfg.build_with_key(ApiKey::new(KEY)).unwrap();
    let msg = format!(
        "{:#}",
        run(p.as_ref(), &simple_request()).await.0.unwrap_err()
    );
    assert!(
        msg.starts_with("anthropic: giving up after 1 retries: anthropic: could not reach"),
        "{msg}"
    );
    assert!(!msg.contains(KEY));
}

// ---------- construction ----------

#[test]
fn missing_key_names_the_env_var() {
    let mut config = ProviderConfig::new(Kind::Anthropic);
    config.api_key_env = "SEER_TEST_SURELY_UNSET_KEY_VAR".into();
    let err = config.build().err().unwrap();
    assert_eq!(
        err.to_string(),
        "no API key for the anthropic provider: set the environment variable SEER_TEST_SURELY_UNSET_KEY_VAR"
    );
    let err = Kind::parse("gemma").err().unwrap();
    assert_eq!(
        err.to_string(),
        "unknown provider \"gemma\"; expected \"anthropic\", \"claude\", \"openai\" or \"gemini\""
    );
}

#[test]
fn kinds_and_defaults() {
    assert_eq!(Kind::parse("Claude").unwrap(), Kind::Anthropic);
    assert_eq!(Kind::parse("openai").unwrap(), Kind::OpenAi);
    assert_eq!(default_model(Kind::Anthropic), "claude-sonnet-4-5-20250929");
    assert_eq!(default_model(Kind::OpenAi), "gpt-5");
    assert_eq!(default_model(Kind::Gemini), "gemini-3-pro-preview");
    assert_eq!(
        join_url("http://x/v1/", "/chat/completions"),
        "http://x/v1/chat/completions"
    );
    let c = ProviderConfig::new(Kind::OpenAi);
    assert_eq!((c.timeout, c.max_retries), (Duration::from_secs(600), 4));
}

// ---------- fidelity of the fakes against the official Python SDKs ----------

const SDK_SCRIPT: &str = r#"
import json, sys
base, which = sys.argv[1], sys.argv[2]
if which == "anthropic":
    import anthropic
    c = anthropic.Anthropic(base_url=base, api_key="k", max_retries=0)
    with c.messages.stream(model="m", max_tokens=10,
                           messages=[{"role": "user", "content": "hi"}]) as s:
        m = s.get_final_message()
    out = {"content": [b.model_dump(exclude_none=True) for b in m.content],
           "stop_reason": m.stop_reason,
           "usage": [m.usage.input_tokens, m.usage.output_tokens]}
else:
    import openai
    c = openai.OpenAI(base_url=base, api_key="k", max_retries=0)
    with c.chat.completions.stream(model="m", messages=[{"role": "user", "content": "hi"}],
                                   stream_options={"include_usage": True}) as s:
        m = s.get_final_completion()
    ch = m.choices[0]
    out = {"content": ch.message.content,
           "tool_calls": [[t.id, t.function.name, json.loads(t.function.arguments)]
                          for t in (ch.message.tool_calls or [])],
           "finish_reason": ch.finish_reason,
           "usage": [m.usage.prompt_tokens, m.usage.completion_tokens]}
print(json.dumps(out))
"#;

async fn sdk_parse(python: &std::path::Path, wire: String, which: &str) -> Value {
    let fake = Fake::start(vec![stream(wire)]).await;
    let base = match which {
        "anthropic" => fake.base.clone(),
        _ => format!("{}/v1", fake.base),
    };
    let out = tokio::process::Command::new(python)
        .args(["-c", SDK_SCRIPT, &base, which])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The official SDKs come from the test Python env (`tests/setup.sh`).
#[tokio::test]
async fn fakes_match_official_sdks() {
    let python = crate::testenv::python();
    assert_eq!(
        sdk_parse(&python, anthropic_tool_turn(), "anthropic").await,
        json!({"content": [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_01", "name": "run_code", "input": {"code": "print(1)", "timeout": 30}}],
            "stop_reason": "tool_use", "usage": [25, 40]})
    );
    let thinking = sdk_parse(&python, anthropic_thinking_turn(), "anthropic").await;
    assert_eq!(
        thinking["content"],
        json!([{"type": "thinking", "thinking": "Hmm, 2+2=4.", "signature": "EqQBCgIYAh"},
               {"type": "text", "text": "4"}])
    );
    assert_eq!(
        sdk_parse(&python, openai_tool_turn(), "openai").await,
        json!({"content": null, "tool_calls": [["call_A", "run_code", {"code": "x=1"}], ["call_B", "read", {}]],
               "finish_reason": "tool_calls", "usage": [30, 12]})
    );
    assert_eq!(
        sdk_parse(&python, openai_text_turn(&["Hi", " there"]), "openai").await,
        json!({"content": "Hi there", "tool_calls": [], "finish_reason": "stop", "usage": [30, 12]})
    );
}

#[tokio::test]
async fn fatal_midstream_errors_are_not_retried() {
    let mut wire = sse_anthropic(&[a_start()]);
    wire.push_str(&sse_anthropic(&[
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": "bad thing"}}),
    ]));
    let fake = Fake::start(vec![stream(wire)]).await;
    let p = provider(Kind::Anthropic, &fake);
    let msg = format!(
        "{:#}",
        run(p.as_ref(), &simple_request()).await.0.unwrap_err()
    );
    assert_eq!(
        msg,
        "anthropic: stream error invalid_request_error: bad thing"
    );
    assert_eq!(fake.requests().len(), 1);

    let wire = format!(
        "data: {}\n\n",
        json!({"error": {"message": "context too long", "type": "invalid_request_error"}})
    );
    let fake = Fake::start(vec![stream(wire)]).await;
    let p = provider(Kind::OpenAi, &fake);
    let msg = format!(
        "{:#}",
        run(p.as_ref(), &simple_request()).await.0.unwrap_err()
    );
    assert_eq!(
        msg,
        "openai: stream error invalid_request_error: context too long"
    );
    assert_eq!(fake.requests().len(), 1);
}

mod gemini;

// ---------- prompt caching and context windows ----------

/// A longer history: a thinking turn with a call, two results, another call and its result.
fn long_history() -> Vec<Message> {
    let result = |id: &str, text: &str| Block::ToolResult {
        tool_use_id: id.into(),
        content: vec![ResultPart::Text(text.into())],
        is_error: false,
    };
    let call = |id: &str| Block::ToolUse {
        id: id.into(),
        name: "run_code".into(),
        input: json!({"code": id}),
    };
    vec![
        Message {
            role: Role::User,
            content: vec![Block::Text("Go".into())],
        },
        Message {
            role: Role::Assistant,
            content: vec![
                Block::Thinking {
                    text: "plan".into(),
                    signature: Some("sig".into()),
                },
                call("a"),
                call("b"),
            ],
        },
        Message {
            role: Role::User,
            content: vec![result("a", "1"), result("b", "2")],
        },
        Message {
            role: Role::Assistant,
            content: vec![call("c")],
        },
        Message {
            role: Role::User,
            content: vec![result("c", "3")],
        },
    ]
}

#[test]
fn anthropic_breakpoints_mark_tools_system_and_the_last_two_turns() {
    let cfg = config(Kind::Anthropic, "http://127.0.0.1:1");
    let mut req = convo_request();
    req.messages = long_history();
    req.options = Options::default();
    let cc = json!({"type": "ephemeral"});
    let result = |id: &str, text: &str| {
        json!({"type": "tool_result", "tool_use_id": id, "is_error": false,
               "content": [{"type": "text", "text": text}]})
    };
    let call =
        |id: &str| json!({"type": "tool_use", "id": id, "name": "run_code", "input": {"code": id}});
    let mut marked_b = result("b", "2");
    marked_b["cache_control"] = cc.clone();
    let mut marked_c = result("c", "3");
    marked_c["cache_control"] = cc.clone();
    let body = anthropic::body(&req, &cfg);
    assert_eq!(
        body,
        json!({
            "model": "claude-sonnet-4-5-20250929",
            "max_tokens": 1024,
            "stream": true,
            "system": [{"type": "text", "text": "You are a probe.", "cache_control": cc}],
            "tools": [{"name": "run_code", "description": "Run Python",
                "input_schema": {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]},
                "cache_control": cc}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Go"}]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "plan", "signature": "sig"}, call("a"), call("b")]},
                {"role": "user", "content": [result("a", "1"), marked_b]},
                {"role": "assistant", "content": [call("c")]},
                {"role": "user", "content": [marked_c]},
            ]
        })
    );
    assert_eq!(body.to_string().matches("cache_control").count(), 4);

    // No tools and no system prompt: the two message breakpoints only. A thinking block
    // or an empty text cannot carry one, so the block before it does.
    req.tools.clear();
    req.system.clear();
    req.messages = vec![
        Message {
            role: Role::User,
            content: vec![Block::Text("Hi".into()), Block::Text(String::new())],
        },
        Message {
            role: Role::Assistant,
            content: vec![
                Block::Text("Partial".into()),
                Block::Thinking {
                    text: "t".into(),
                    signature: Some("s".into()),
                },
            ],
        },
    ];
    let body = anthropic::body(&req, &cfg);
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [
                {"type": "text", "text": "Hi", "cache_control": cc}, {"type": "text", "text": ""}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Partial", "cache_control": cc},
                {"type": "thinking", "thinking": "t", "signature": "s"}]},
        ])
    );
    assert_eq!((body.get("system"), body.get("tools")), (None, None));

    // `kwargs.cache: false`: no breakpoint anywhere, the system prompt a plain string.
    let mut req = convo_request();
    req.messages = long_history();
    req.options.cache = Some(false);
    let body = anthropic::body(&req, &cfg);
    assert!(!body.to_string().contains("cache_control"), "{body}");
    assert_eq!(body["system"], "You are a probe.");
    // The other providers send no breakpoints (their caching is automatic).
    req.options.cache = None;
    for kind in [Kind::OpenAi, Kind::Gemini] {
        let p = config(kind, "http://127.0.0.1:1")
            .build_with_key(ApiKey::new(KEY))
            .unwrap();
        let body = p.request_body(&req);
        assert!(!body.to_string().contains("cache_control"), "{body}");
    }
}

/// Each provider's cached tokens land in `cache_read_tokens`, `input_tokens` is the
/// uncached rest, and `context_tokens` the whole prompt.
#[tokio::test]
async fn usage_counts_cached_tokens_for_all_providers() {
    let mut got = vec![];
    for (kind, wire) in [
        (Kind::Anthropic, anthropic_text_turn(&["ok"])),
        (Kind::OpenAi, openai_text_turn(&["ok"])),
        (Kind::Gemini, gemini::gemini_tool_turn()),
    ] {
        let fake = Fake::start(vec![stream(wire)]).await;
        let p = provider(kind, &fake);
        let usage = run(p.as_ref(), &simple_request()).await.0.unwrap().usage;
        got.push((kind, usage, usage.context_tokens()));
    }
    let usage = |input_tokens, output_tokens, cache_read_tokens, cache_write_tokens| Usage {
        input_tokens,
        output_tokens,
        cache_read_tokens,
        cache_write_tokens,
    };
    assert_eq!(
        got,
        [
            // input_tokens 25 (uncached), cache_read_input_tokens 7, cache_creation 3.
            (Kind::Anthropic, usage(25, 15, 7, 3), 35),
            // prompt_tokens 30 of which cached_tokens 10.
            (Kind::OpenAi, usage(20, 12, 10, 0), 30),
            // promptTokenCount 40 of which cachedContentTokenCount 10; output 12 + 5 thoughts.
            (Kind::Gemini, usage(30, 17, 10, 0), 40),
        ]
    );
}

/// Over the window each provider answers in its own words; all become
/// `ProviderError::ContextTooLong`, which is not retried and survives added context.
#[tokio::test]
async fn context_too_long_is_recognised_for_all_providers() {
    let cases = [
        (
            Kind::Anthropic,
            json!({"type": "error", "error": {"type": "invalid_request_error",
                   "message": "prompt is too long: 250123 tokens > 200000 maximum"}}),
            "anthropic: HTTP 400: invalid_request_error: prompt is too long: 250123 tokens > 200000 maximum",
            (Some(250_123), Some(200_000)),
        ),
        (
            Kind::OpenAi,
            json!({"error": {"message": "This model's maximum context length is 128000 tokens. However, your messages resulted in 130500 tokens. Please reduce the length of the messages.",
                   "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}),
            "openai: HTTP 400: invalid_request_error: This model's maximum context length is 128000 tokens. However, your messages resulted in 130500 tokens. Please reduce the length of the messages.",
            (Some(130_500), Some(128_000)),
        ),
        (
            Kind::Gemini,
            json!({"error": {"code": 400, "message": "The input token count (1200293) exceeds the maximum number of tokens allowed (1048576).",
                   "status": "INVALID_ARGUMENT"}}),
            "gemini: HTTP 400: INVALID_ARGUMENT: The input token count (1200293) exceeds the maximum number of tokens allowed (1048576).",
            (Some(1_200_293), Some(1_048_576)),
        ),
    ];
    for (kind, body, message, (tokens, limit)) in cases {
        let fake = Fake::start(vec![status(400, vec![], body)]).await;
        let p = provider(kind, &fake);
        let err = run(p.as_ref(), &simple_request()).await.0.unwrap_err();
        assert_eq!(
            ProviderError::find(&err),
            Some(&ProviderError::ContextTooLong {
                tokens,
                limit,
                message: message.into()
            }),
            "{kind:?}"
        );
        assert_eq!(format!("{err:#}"), message);
        assert!(is_context_too_long(&err));
        assert!(is_context_too_long(&err.context("turn 3")));
        assert_eq!(fake.requests().len(), 1, "{kind:?} was retried");
    }
    // Another 400 is not one.
    let fake = Fake::start(vec![status(
        400,
        vec![],
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: 99999 > 64000"}}),
    )])
    .await;
    let err = run(provider(Kind::Anthropic, &fake).as_ref(), &simple_request())
        .await
        .0
        .unwrap_err();
    assert!(!is_context_too_long(&err), "{err:#}");
    assert_eq!(ProviderError::find(&err), None);

    // An error event in the stream says it too (OpenAI's shape).
    let wire = format!(
        "data: {}\n\n",
        json!({"error": {"message": "Your input exceeds the context window of this model. Please adjust your input and try again.",
                         "type": "invalid_request_error", "code": "context_length_exceeded"}})
    );
    let fake = Fake::start(vec![stream(wire)]).await;
    let err = run(provider(Kind::OpenAi, &fake).as_ref(), &simple_request())
        .await
        .0
        .unwrap_err();
    assert_eq!(
        ProviderError::find(&err),
        Some(&ProviderError::ContextTooLong {
            tokens: None,
            limit: None,
            message: "openai: stream error invalid_request_error: Your input exceeds the context window of this model. Please adjust your input and try again.".into()
        })
    );
}

/// The other wordings: Anthropic's `max_tokens` overflow and its byte limit, OpenAI's for
/// GPT-5 and the one vLLM and OpenRouter copy.
#[test]
fn context_too_long_wordings() {
    let anthropic = |status, ty: &str, msg: &str| {
        error::anthropic(
            Some(status),
            &json!({"type": "error", "error": {"type": ty, "message": msg}}),
        )
    };
    assert_eq!(
        anthropic(
            400,
            "invalid_request_error",
            "input length and `max_tokens` exceed context limit: 199759 + 8192 > 200000, decrease input length or `max_tokens` and try again"
        ),
        Some((Some(199_759), Some(191_808)))
    );
    assert_eq!(
        anthropic(
            413,
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes."
        ),
        Some((None, None))
    );
    assert_eq!(
        anthropic(400, "invalid_request_error", "messages: field required"),
        None
    );
    assert_eq!(
        anthropic(
            529,
            "overloaded_error",
            "prompt is too long: 1 tokens > 0 maximum"
        ),
        None
    );
    let openai = |msg: &str, code: &str| {
        error::openai(
            Some(400),
            &json!({"error": {"message": msg, "type": "invalid_request_error", "param": "messages", "code": code}}),
        )
    };
    assert_eq!(
        openai(
            "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.",
            ""
        ),
        Some((Some(4_000), Some(3_096)))
    );
    assert_eq!(
        openai(
            "Input tokens exceed the configured limit of 272000 tokens. Your messages resulted in 300012 tokens. Please reduce the length of the messages.",
            "context_length_exceeded"
        ),
        Some((Some(300_012), Some(272_000)))
    );
    assert_eq!(
        openai(
            "This endpoint's maximum context length is 200000 tokens. However, you requested about 250000 tokens (240000 of text input, 10000 in the output). Please reduce the length of either one.",
            ""
        ),
        Some((Some(250_000), Some(200_000)))
    );
    assert_eq!(
        openai("Invalid 'messages': empty array.", "empty_array"),
        None
    );
    assert_eq!(
        error::gemini(
            Some(400),
            &json!({"error": {"code": 400, "message": "Invalid JSON payload received.", "status": "INVALID_ARGUMENT"}})
        ),
        None
    );
}
