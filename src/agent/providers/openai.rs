//! OpenAI Chat Completions provider: translates the block-based message
//! model into chat messages (tool calls, `role: "tool"` results, images from
//! tool results as a following `user` message) and decodes the streamed
//! `chat.completion.chunk`s (content, tool-call fragments, finish reason,
//! final usage chunk, `[DONE]`).

use std::collections::BTreeMap;

use anyhow::{Context as _, anyhow};
use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::retry::{self, ApiKey, AttemptError, Call, StreamDecoder};
use super::sse::SseEvent;
use super::{
    Block, Provider, ProviderConfig, Request, Response, ResultPart, Role, StopReason, StreamEvent,
    Usage, join_url, model_for,
};

/// Talks to an OpenAI-compatible Chat Completions endpoint.
#[derive(Debug)]
pub struct OpenAiProvider {
    config: ProviderConfig,
    key: ApiKey,
    client: reqwest::Client,
}

impl OpenAiProvider {
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
            AUTHORIZATION,
            retry::header_value(&format!("Bearer {}", self.key.expose()), "the API key")?,
        );
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert("accept", HeaderValue::from_static("text/event-stream"));
        Ok(h)
    }
}

fn image_part(media_type: &str, data: &str) -> Value {
    json!({"type": "image_url", "image_url": {"url": format!("data:{media_type};base64,{data}")}})
}

fn push_user(out: &mut Vec<Value>, texts: Vec<String>, images: Vec<Value>) {
    if images.is_empty() {
        if !texts.is_empty() {
            out.push(json!({"role": "user", "content": texts.join("\n\n")}));
        }
        return;
    }
    let mut parts: Vec<Value> = texts
        .into_iter()
        .map(|t| json!({"type": "text", "text": t}))
        .collect();
    parts.extend(images);
    out.push(json!({"role": "user", "content": parts}));
}

fn messages(req: &Request) -> Vec<Value> {
    let mut out = Vec::new();
    if !req.system.is_empty() {
        out.push(json!({"role": "system", "content": req.system}));
    }
    for m in &req.messages {
        match m.role {
            Role::Assistant => {
                let mut text = Vec::new();
                let mut calls = Vec::new();
                for b in &m.content {
                    match b {
                        Block::Text(t) => text.push(t.as_str()),
                        Block::ToolUse { id, name, input } => calls.push(json!({
                            "id": id, "type": "function",
                            "function": {"name": name, "arguments": input.to_string()}})),
                        Block::Thinking { .. } | Block::ToolResult { .. } => {}
                    }
                }
                let mut msg = json!({"role": "assistant"});
                msg["content"] = if text.is_empty() {
                    Value::Null
                } else {
                    json!(text.join("\n\n"))
                };
                if !calls.is_empty() {
                    msg["tool_calls"] = Value::Array(calls);
                }
                out.push(msg);
            }
            Role::User => {
                // Tool messages must directly follow the assistant's calls,
                // so they go first; images and text follow as one user turn.
                let mut texts = Vec::new();
                let mut images = Vec::new();
                for b in &m.content {
                    match b {
                        Block::Text(t) => texts.push(t.clone()),
                        Block::ToolResult {
                            tool_use_id,
                            content,
                            is_error,
                        } => {
                            let mut tool_text = Vec::new();
                            let mut n_images = 0;
                            for p in content {
                                match p {
                                    ResultPart::Text(t) => tool_text.push(t.as_str()),
                                    ResultPart::Image {
                                        media_type,
                                        data_base64,
                                    } => {
                                        images.push(image_part(media_type, data_base64));
                                        n_images += 1;
                                    }
                                }
                            }
                            let mut text = tool_text.join("\n");
                            if n_images > 0 {
                                if !text.is_empty() {
                                    text.push('\n');
                                }
                                text.push_str(&format!(
                                    "({n_images} image(s) attached in the next user message)"
                                ));
                            }
                            if *is_error {
                                text = format!("Error: {text}");
                            }
                            out.push(json!({"role": "tool", "tool_call_id": tool_use_id, "content": text}));
                        }
                        Block::Thinking { .. } | Block::ToolUse { .. } => {}
                    }
                }
                if !images.is_empty() {
                    texts.insert(0, "Images returned by the tool calls above:".to_string());
                }
                push_user(&mut out, texts, images);
            }
        }
    }
    out
}

/// The JSON body for `req`.
/// Whether `base_url` is OpenAI's own API (not a server that speaks its format).
fn is_openai_api(base_url: &str) -> bool {
    reqwest::Url::parse(base_url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h == "api.openai.com"))
        .unwrap_or(false)
}

pub(crate) fn body(req: &Request, config: &ProviderConfig) -> Value {
    let mut body = json!({
        "model": model_for(req, config),
        "messages": messages(req),
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    // OpenAI's own API deprecated `max_tokens` (its reasoning models reject it); the
    // servers that copy the format (vLLM, Ollama, OpenRouter, Gemini) know `max_tokens`.
    let limit = if is_openai_api(&config.base_url) {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    body[limit] = json!(req.max_tokens);
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": t.input_schema}})
            })
            .collect();
    }
    let o = &req.options;
    for (k, v) in [("temperature", o.temperature), ("top_p", o.top_p)] {
        if let Some(v) = v {
            body[k] = json!(v);
        }
    }
    if let Some(s) = &o.stop {
        body["stop"] = json!(s);
    }
    if let Some(e) = &o.reasoning_effort {
        body["reasoning_effort"] = json!(e);
    }
    o.merge_extra(&mut body);
    body
}

#[cfg(test)]
mod limit_tests {
    use super::*;
    use crate::agent::providers::Kind;

    #[test]
    fn openai_gets_max_completion_tokens_and_compatible_servers_max_tokens() {
        let req = Request {
            model: String::new(),
            system: String::new(),
            messages: vec![],
            tools: vec![],
            max_tokens: 123,
            options: Default::default(),
        };
        let mut config = ProviderConfig::new(Kind::OpenAi);
        config.base_url = "https://api.openai.com/v1".into();
        let b = body(&req, &config);
        assert_eq!(
            (b["max_completion_tokens"].clone(), b.get("max_tokens")),
            (json!(123), None)
        );
        config.base_url = "http://127.0.0.1:8000/v1".into();
        let b = body(&req, &config);
        assert_eq!(
            (b["max_tokens"].clone(), b.get("max_completion_tokens")),
            (json!(123), None)
        );
    }
}

#[async_trait]
impl Provider for OpenAiProvider {
    fn name(&self) -> &str {
        "openai"
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
            url: join_url(&self.config.base_url, "chat/completions"),
            headers: self.headers()?,
            body,
            too_long: super::error::openai,
        };
        let new_decoder = || Box::new(Decoder::default()) as Box<dyn StreamDecoder>;
        retry::run(call, &new_decoder, on_event, cancel).await
    }

    fn request_body(&self, req: &Request) -> Value {
        body(req, &self.config)
    }
}

#[derive(Debug, Default)]
struct ToolCall {
    id: String,
    name: String,
    arguments: String,
    announced: bool,
}

/// Decodes one OpenAI chunk stream.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    text: String,
    thinking: String,
    calls: BTreeMap<u64, ToolCall>,
    finish_reason: Option<String>,
    usage: Usage,
    raw: Vec<Value>,
    done: bool,
}

impl StreamDecoder for Decoder {
    fn event(
        &mut self,
        ev: &SseEvent,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<(), AttemptError> {
        let data = ev.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        let v: Value = serde_json::from_str(data)
            .context("openai: invalid JSON chunk")
            .map_err(AttemptError::retryable)?;
        self.raw.push(v.clone());
        if let Some(err) = v.get("error") {
            let msg = err.get("message").and_then(Value::as_str).unwrap_or("");
            let ty = err.get("type").and_then(Value::as_str).unwrap_or("error");
            let message = format!("openai: stream error {ty}: {msg}");
            if let Some((tokens, limit)) = super::error::openai(None, &v) {
                return Err(AttemptError::too_long(message, tokens, limit));
            }
            let e = anyhow!(message);
            return Err(if matches!(ty, "server_error" | "rate_limit_exceeded") {
                AttemptError::retryable(e)
            } else {
                AttemptError::Fatal(e)
            });
        }
        if let Some(usage) = v.get("usage").filter(|u| u.is_object()) {
            let n = |p: &str| usage.pointer(p).and_then(Value::as_u64).unwrap_or(0);
            let cached = n("/prompt_tokens_details/cached_tokens");
            self.usage = Usage {
                input_tokens: n("/prompt_tokens").saturating_sub(cached),
                output_tokens: n("/completion_tokens"),
                cache_read_tokens: cached,
                cache_write_tokens: 0,
            };
        }
        let Some(choice) = v.pointer("/choices/0") else {
            return Ok(());
        };
        if let Some(delta) = choice.get("delta") {
            for key in ["reasoning_content", "reasoning"] {
                if let Some(t) = delta
                    .get(key)
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                {
                    self.thinking.push_str(t);
                    on_event(StreamEvent::ThinkingDelta(t.to_string()));
                }
            }
            if let Some(t) = delta
                .get("content")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            {
                self.text.push_str(t);
                on_event(StreamEvent::TextDelta(t.to_string()));
            }
            for tc in delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let index = tc.get("index").and_then(Value::as_u64).unwrap_or(0);
                let call = self.calls.entry(index).or_default();
                if let Some(id) = tc.get("id").and_then(Value::as_str) {
                    call.id.push_str(id);
                }
                if let Some(name) = tc.pointer("/function/name").and_then(Value::as_str) {
                    call.name.push_str(name);
                }
                if let Some(args) = tc.pointer("/function/arguments").and_then(Value::as_str) {
                    call.arguments.push_str(args);
                }
                if !call.announced && !call.id.is_empty() && !call.name.is_empty() {
                    call.announced = true;
                    on_event(StreamEvent::ToolUseStart {
                        id: call.id.clone(),
                        name: call.name.clone(),
                    });
                }
            }
        }
        if let Some(r) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(r.to_string());
        }
        Ok(())
    }

    fn finished(&self) -> bool {
        self.done
    }

    fn into_response(self: Box<Self>) -> Result<Response, AttemptError> {
        // Lenient: some compatible servers omit `[DONE]`; a finish_reason
        // is then enough. Without either, the stream was cut.
        if !self.done && self.finish_reason.is_none() {
            return Err(AttemptError::retryable(anyhow!(
                "openai: stream ended before finish_reason / [DONE]"
            )));
        }
        let mut content = Vec::new();
        if !self.thinking.is_empty() {
            content.push(Block::Thinking {
                text: self.thinking,
                signature: None,
            });
        }
        if !self.text.is_empty() {
            content.push(Block::Text(self.text));
        }
        for (_, c) in self.calls {
            let input = if c.arguments.trim().is_empty() {
                Value::Object(Default::default())
            } else {
                serde_json::from_str(&c.arguments)
                    .with_context(|| {
                        format!("openai: arguments of tool {:?} are not valid JSON", c.name)
                    })
                    .map_err(AttemptError::Fatal)?
            };
            content.push(Block::ToolUse {
                id: c.id,
                name: c.name,
                input,
            });
        }
        let stop_reason = match self.finish_reason.as_deref() {
            Some("stop") => StopReason::EndTurn,
            Some("tool_calls") | Some("function_call") => StopReason::ToolUse,
            Some("length") => StopReason::MaxTokens,
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
