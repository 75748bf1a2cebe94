//! Anthropic Messages API provider: request body construction and the
//! streaming event decoder (`message_start`, `content_block_start`,
//! `content_block_delta`, `content_block_stop`, `message_delta`,
//! `message_stop`, `ping`, `error`).

use std::collections::BTreeMap;

use anyhow::{Context as _, anyhow};
use async_trait::async_trait;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::retry::{self, ApiKey, AttemptError, Call, StreamDecoder};
use super::sse::SseEvent;
use super::{
    Block, Provider, ProviderConfig, Request, Response, Role, StopReason, StreamEvent, Usage,
    join_url, model_for,
};

/// API version header value.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Talks to the Anthropic Messages API.
#[derive(Debug)]
pub struct AnthropicProvider {
    config: ProviderConfig,
    key: ApiKey,
    client: reqwest::Client,
}

impl AnthropicProvider {
    /// Creates the provider.
    pub fn new(config: ProviderConfig, key: ApiKey, client: reqwest::Client) -> Self {
        Self {
            config,
            key,
            client,
        }
    }

    fn headers(&self) -> anyhow::Result<HeaderMap> {
        let mut h = HeaderMap::new();
        h.insert(
            "x-api-key",
            retry::header_value(self.key.expose(), "the API key")?,
        );
        h.insert(
            "anthropic-version",
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert("accept", HeaderValue::from_static("text/event-stream"));
        Ok(h)
    }
}

/// A block as the API takes it back: unsigned thinking cannot be sent, so it is dropped.
fn block_json(block: &Block) -> Option<Value> {
    if let Block::Thinking {
        signature: None, ..
    } = block
    {
        tracing::debug!("dropping unsigned thinking block from anthropic request");
        return None;
    }
    Some(super::blocks::block_to_json(block))
}

/// A prompt-cache breakpoint: the prefix up to the block that carries it is cached for
/// five minutes (refreshed by each read).
fn breakpoint() -> Value {
    json!({"type": "ephemeral"})
}

/// Marks the last block of `message` that may carry a breakpoint (not thinking, not
/// empty text, which the API refuses to mark).
fn mark_last_block(message: &mut Value) {
    let Some(content) = message.get_mut("content").and_then(Value::as_array_mut) else {
        return;
    };
    let markable = |b: &Value| {
        let ty = b.get("type").and_then(Value::as_str).unwrap_or("");
        let empty_text = ty == "text" && b.get("text").and_then(Value::as_str) == Some("");
        !matches!(ty, "thinking" | "redacted_thinking") && !empty_text
    };
    if let Some(block) = content.iter_mut().rev().find(|b| markable(b)) {
        block["cache_control"] = breakpoint();
    }
}

/// Prompt caching: breakpoints (at most 4, as the API allows) on the last tool (the tools
/// prefix), the system prompt (tools + system, which survives any change of the history),
/// the end of the last message (the moving end of the history, written for the next
/// turn) and the end of the user message before it (where the previous request ended, so
/// this one reads all of it from the cache).
fn add_breakpoints(body: &mut Value) {
    if let Some(last) = body
        .get_mut("tools")
        .and_then(Value::as_array_mut)
        .and_then(|t| t.last_mut())
    {
        last["cache_control"] = breakpoint();
    }
    if let Some(system) = body.get("system").and_then(Value::as_str) {
        body["system"] = json!([{"type": "text", "text": system, "cache_control": breakpoint()}]);
    }
    let Some(messages) = body.get_mut("messages").and_then(Value::as_array_mut) else {
        return;
    };
    let Some(last) = messages.len().checked_sub(1) else {
        return;
    };
    let previous = (0..last)
        .rev()
        .find(|&i| messages[i].get("role").and_then(Value::as_str) == Some("user"));
    for i in previous.into_iter().chain([last]) {
        mark_last_block(&mut messages[i]);
    }
}

/// The JSON body for `req`.
pub(crate) fn body(req: &Request, config: &ProviderConfig) -> Value {
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| {
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            let content: Vec<Value> = m.content.iter().filter_map(block_json).collect();
            json!({"role": role, "content": content})
        })
        .collect();
    let mut body = json!({
        "model": model_for(req, config),
        "max_tokens": req.max_tokens,
        "messages": messages,
        "stream": true,
    });
    if !req.system.is_empty() {
        body["system"] = json!(req.system);
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
            .collect();
    }
    let o = &req.options;
    for (k, v) in [("temperature", o.temperature), ("top_p", o.top_p)] {
        if let Some(v) = v {
            body[k] = json!(v);
        }
    }
    if let Some(k) = o.top_k {
        body["top_k"] = json!(k);
    }
    if let Some(s) = &o.stop {
        body["stop_sequences"] = json!(s);
    }
    if let Some(b) = o.thinking_budget {
        body["thinking"] = json!({"type": "enabled", "budget_tokens": b});
    }
    if o.cache_enabled() {
        add_breakpoints(&mut body);
    }
    o.merge_extra(&mut body);
    body
}

#[async_trait]
impl Provider for AnthropicProvider {
    fn name(&self) -> &str {
        "anthropic"
    }

    async fn stream(
        &self,
        body: &Value,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
        cancel: &CancellationToken,
    ) -> anyhow::Result<Response> {
        let call = Call {
            provider: self.name(),
            config: &self.config,
            key: &self.key,
            client: &self.client,
            url: join_url(&self.config.base_url, "v1/messages"),
            headers: self.headers()?,
            body,
            too_long: super::error::anthropic,
        };
        let new_decoder = || Box::new(Decoder::default()) as Box<dyn StreamDecoder>;
        retry::run(call, &new_decoder, on_event, cancel).await
    }

    fn request_body(&self, req: &Request) -> Value {
        body(req, &self.config)
    }
}

#[derive(Debug)]
enum Partial {
    Text(String),
    Thinking(String, Option<String>),
    ToolUse {
        id: String,
        name: String,
        json: String,
        input: Option<Value>,
    },
}

/// Decodes one Anthropic event stream.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    blocks: BTreeMap<u64, Partial>,
    usage: Usage,
    stop_reason: Option<String>,
    raw: Vec<Value>,
    done: bool,
}

fn u(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

fn fatal(e: anyhow::Error) -> AttemptError {
    AttemptError::Fatal(e)
}

impl Decoder {
    fn usage_from(&mut self, usage: &Value) {
        if let Some(n) = u(usage, "input_tokens") {
            self.usage.input_tokens = n;
        }
        if let Some(n) = u(usage, "output_tokens") {
            self.usage.output_tokens = n;
        }
        if let Some(n) = u(usage, "cache_read_input_tokens") {
            self.usage.cache_read_tokens = n;
        }
        if let Some(n) = u(usage, "cache_creation_input_tokens") {
            self.usage.cache_write_tokens = n;
        }
    }
}

impl StreamDecoder for Decoder {
    fn event(
        &mut self,
        ev: &SseEvent,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<(), AttemptError> {
        let v: Value = serde_json::from_str(&ev.data)
            .with_context(|| format!("anthropic: invalid JSON in {:?} event", ev.event))
            .map_err(AttemptError::retryable)?;
        let ty = v
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(ev.event.as_str())
            .to_string();
        self.raw.push(v.clone());
        let index = u(&v, "index").unwrap_or(0);
        match ty.as_str() {
            "message_start" => {
                if let Some(usage) = v.pointer("/message/usage") {
                    self.usage_from(usage);
                }
            }
            "content_block_start" => {
                let cb = v.get("content_block").cloned().unwrap_or(Value::Null);
                let s = |k: &str| cb.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let partial = match cb.get("type").and_then(Value::as_str) {
                    Some("text") => Partial::Text(s("text")),
                    Some("thinking") => Partial::Thinking(
                        s("thinking"),
                        cb.get("signature")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                    ),
                    Some("tool_use") => {
                        let (id, name) = (s("id"), s("name"));
                        on_event(StreamEvent::ToolUseStart {
                            id: id.clone(),
                            name: name.clone(),
                        });
                        Partial::ToolUse {
                            id,
                            name,
                            json: String::new(),
                            input: None,
                        }
                    }
                    other => {
                        tracing::debug!(?other, "anthropic: ignoring content block type");
                        return Ok(());
                    }
                };
                self.blocks.insert(index, partial);
            }
            "content_block_delta" => {
                let d = v.get("delta").cloned().unwrap_or(Value::Null);
                let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let block = self.blocks.get_mut(&index);
                match (d.get("type").and_then(Value::as_str), block) {
                    (Some("text_delta"), Some(Partial::Text(t))) => {
                        let text = s("text");
                        t.push_str(&text);
                        on_event(StreamEvent::TextDelta(text));
                    }
                    (Some("thinking_delta"), Some(Partial::Thinking(t, _))) => {
                        let text = s("thinking");
                        t.push_str(&text);
                        on_event(StreamEvent::ThinkingDelta(text));
                    }
                    (Some("signature_delta"), Some(Partial::Thinking(_, sig))) => {
                        sig.get_or_insert_with(String::new)
                            .push_str(&s("signature"));
                    }
                    (Some("input_json_delta"), Some(Partial::ToolUse { json, .. })) => {
                        json.push_str(&s("partial_json"));
                    }
                    (ty, _) => tracing::debug!(?ty, index, "anthropic: ignoring delta"),
                }
            }
            "content_block_stop" => {
                if let Some(Partial::ToolUse {
                    json, input, name, ..
                }) = self.blocks.get_mut(&index)
                {
                    let parsed = if json.trim().is_empty() {
                        Value::Object(Default::default())
                    } else {
                        serde_json::from_str(json)
                            .with_context(|| {
                                format!("anthropic: tool {name:?} input is not valid JSON")
                            })
                            .map_err(fatal)?
                    };
                    *input = Some(parsed);
                }
            }
            "message_delta" => {
                if let Some(r) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(r.to_string());
                }
                if let Some(usage) = v.get("usage") {
                    self.usage_from(usage);
                }
            }
            "message_stop" => self.done = true,
            "ping" => {}
            "error" => {
                let etype = v
                    .pointer("/error/type")
                    .and_then(Value::as_str)
                    .unwrap_or("error");
                let msg = v
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let message = format!("anthropic: stream error {etype}: {msg}");
                if let Some((tokens, limit)) = super::error::anthropic(None, &v) {
                    return Err(AttemptError::too_long(message, tokens, limit));
                }
                let err = anyhow!(message);
                return Err(match etype {
                    "overloaded_error" | "api_error" | "rate_limit_error" => {
                        AttemptError::retryable(err)
                    }
                    _ => AttemptError::Fatal(err),
                });
            }
            other => tracing::debug!(other, "anthropic: ignoring event"),
        }
        Ok(())
    }

    fn finished(&self) -> bool {
        self.done
    }

    fn into_response(self: Box<Self>) -> Result<Response, AttemptError> {
        if !self.done {
            return Err(AttemptError::retryable(anyhow!(
                "anthropic: stream ended before message_stop"
            )));
        }
        let mut content = Vec::new();
        for (_, b) in self.blocks {
            content.push(match b {
                Partial::Text(t) => Block::Text(t),
                Partial::Thinking(text, signature) => Block::Thinking { text, signature },
                Partial::ToolUse {
                    id,
                    name,
                    json,
                    input,
                } => {
                    let input = match input {
                        Some(i) => i,
                        None if json.trim().is_empty() => Value::Object(Default::default()),
                        None => serde_json::from_str(&json)
                            .context("anthropic: tool input is not valid JSON")
                            .map_err(fatal)?,
                    };
                    Block::ToolUse { id, name, input }
                }
            });
        }
        let stop_reason = match self.stop_reason.as_deref() {
            Some("end_turn") => StopReason::EndTurn,
            Some("tool_use") => StopReason::ToolUse,
            Some("max_tokens") => StopReason::MaxTokens,
            Some(other) => StopReason::Other(other.to_string()),
            None => StopReason::Other("unknown".to_string()),
        };
        Ok(Response {
            content,
            stop_reason,
            usage: self.usage,
            raw: Value::Array(self.raw),
        })
    }
}
