//! Google's Gemini API provider (`provider: "gemini"`): the block-based messages become
//! `contents` of `user`/`model` turns with `text`, `functionCall`, `functionResponse` and
//! `inlineData` parts, tools one `functionDeclarations` list (schemas as
//! `parametersJsonSchema`, which takes JSON Schema as MCP servers write it), and the
//! stream is `streamGenerateContent?alt=sse`: each event a whole `GenerateContentResponse`
//! whose parts are appended, until one carries a `finishReason`.
//!
//! The model goes into the URL, not the body: the body [`body`] builds carries it as
//! `model` (so the transcript shows it), and [`GeminiProvider::stream`] takes it out.
//!
//! Gemini's `thoughtSignature`s (which its thinking models need back with their function
//! calls) are kept as [`Block::Thinking`] blocks with a signature in front of the part
//! they came with, and sent back on the part that follows them. Function calls without
//! an `id` (older models) get one made here, `seer_call_…`, never sent back.

use std::collections::HashMap;

use anyhow::{Context as _, anyhow};
use async_trait::async_trait;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::retry::{self, ApiKey, AttemptError, Call, StreamDecoder};
use super::sse::SseEvent;
use super::{
    Block, Provider, ProviderConfig, Request, Response, ResultPart, Role, StopReason, StreamEvent,
    Usage, join_url, model_for,
};

/// Prefix of the call ids seer makes for calls Gemini sent without one.
const MADE_ID: &str = "seer_call_";

/// Talks to the Gemini API (or a server speaking it).
#[derive(Debug)]
pub struct GeminiProvider {
    config: ProviderConfig,
    key: ApiKey,
    client: reqwest::Client,
}

impl GeminiProvider {
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
            "x-goog-api-key",
            retry::header_value(self.key.expose(), "the API key")?,
        );
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert("accept", HeaderValue::from_static("text/event-stream"));
        Ok(h)
    }
}

/// The parts of one message; `names` maps call ids to tool names (a `functionResponse`
/// names its function).
fn parts(blocks: &[Block], names: &HashMap<String, String>) -> Vec<Value> {
    let mut out = vec![];
    let mut images = vec![];
    let mut signature: Option<String> = None;
    for b in blocks {
        let mut part = match b {
            Block::Text(t) => json!({"text": t}),
            Block::Thinking { signature: s, .. } => {
                // Thought text is the model's; only its signature goes back.
                if s.is_some() {
                    signature = s.clone();
                }
                continue;
            }
            Block::ToolUse { id, name, input } => {
                let mut call = json!({"name": name, "args": input});
                if !id.starts_with(MADE_ID) {
                    call["id"] = json!(id);
                }
                json!({"functionCall": call})
            }
            Block::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => {
                let mut text = vec![];
                for p in content {
                    match p {
                        ResultPart::Text(t) => text.push(t.as_str()),
                        ResultPart::Image {
                            media_type,
                            data_base64,
                        } => images.push(
                            json!({"inlineData": {"mimeType": media_type, "data": data_base64}}),
                        ),
                    }
                }
                let key = if *is_error { "error" } else { "output" };
                let name = names.get(tool_use_id).cloned().unwrap_or_default();
                let mut resp = json!({"name": name, "response": {key: text.join("\n")}});
                if !tool_use_id.starts_with(MADE_ID) {
                    resp["id"] = json!(tool_use_id);
                }
                json!({"functionResponse": resp})
            }
        };
        if let Some(s) = signature.take() {
            part["thoughtSignature"] = json!(s);
        }
        out.push(part);
    }
    out.extend(images);
    out
}

/// The JSON body for `req` (with `model`, which [`GeminiProvider::stream`] moves into
/// the URL).
pub(crate) fn body(req: &Request, config: &ProviderConfig) -> Value {
    let mut names = HashMap::new();
    for m in &req.messages {
        for b in &m.content {
            if let Block::ToolUse { id, name, .. } = b {
                names.insert(id.clone(), name.clone());
            }
        }
    }
    let contents: Vec<Value> = req
        .messages
        .iter()
        .map(|m| {
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "model",
            };
            json!({"role": role, "parts": parts(&m.content, &names)})
        })
        .collect();
    let o = &req.options;
    let mut generation = Map::new();
    generation.insert("maxOutputTokens".into(), json!(req.max_tokens));
    for (k, v) in [("temperature", o.temperature), ("topP", o.top_p)] {
        if let Some(v) = v {
            generation.insert(k.into(), json!(v));
        }
    }
    if let Some(k) = o.top_k {
        generation.insert("topK".into(), json!(k));
    }
    if let Some(s) = &o.stop {
        generation.insert("stopSequences".into(), json!(s));
    }
    if let Some(b) = o.thinking_budget {
        generation.insert(
            "thinkingConfig".into(),
            json!({"thinkingBudget": b, "includeThoughts": true}),
        );
    }
    let mut body = json!({
        "model": model_for(req, config),
        "contents": contents,
        "generationConfig": generation,
    });
    if !req.system.is_empty() {
        // As Google's SDK sends it.
        body["systemInstruction"] = json!({"role": "user", "parts": [{"text": req.system}]});
    }
    if !req.tools.is_empty() {
        let decls: Vec<Value> = req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "parametersJsonSchema": t.input_schema}))
            .collect();
        body["tools"] = json!([{"functionDeclarations": decls}]);
    }
    o.merge_extra(&mut body);
    body
}

#[async_trait]
impl Provider for GeminiProvider {
    fn name(&self) -> &str {
        "gemini"
    }

    async fn stream(
        &self,
        body: &Value,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
        cancel: &CancellationToken,
    ) -> anyhow::Result<Response> {
        let mut sent = body.clone();
        let model = sent
            .as_object_mut()
            .and_then(|o| o.remove("model"))
            .and_then(|m| m.as_str().map(str::to_string))
            .unwrap_or_else(|| self.config.model.clone());
        // `models/x` and `x` both name a model, as in the SDK.
        let model = model.strip_prefix("models/").unwrap_or(&model).to_string();
        let call = Call {
            provider: self.name(),
            config: &self.config,
            key: &self.key,
            client: &self.client,
            url: join_url(
                &self.config.base_url,
                &format!("v1beta/models/{model}:streamGenerateContent?alt=sse"),
            ),
            headers: self.headers()?,
            body: &sent,
            too_long: super::error::gemini,
        };
        let new_decoder = || Box::new(Decoder::default()) as Box<dyn StreamDecoder>;
        retry::run(call, &new_decoder, on_event, cancel).await
    }

    fn request_body(&self, req: &Request) -> Value {
        body(req, &self.config)
    }
}

/// Decodes one Gemini event stream.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    content: Vec<Block>,
    finish_reason: Option<String>,
    usage: Usage,
    raw: Vec<Value>,
    calls: usize,
}

impl Decoder {
    /// Appends text to the last block when it is text of the same kind (a stream sends a
    /// text in many parts).
    fn push_text(&mut self, text: &str, thought: bool) {
        match (self.content.last_mut(), thought) {
            (Some(Block::Text(t)), false) => t.push_str(text),
            (
                Some(Block::Thinking {
                    text: t,
                    signature: None,
                }),
                true,
            ) => t.push_str(text),
            _ if thought => self.content.push(Block::Thinking {
                text: text.to_string(),
                signature: None,
            }),
            _ => self.content.push(Block::Text(text.to_string())),
        }
    }

    fn part(
        &mut self,
        part: &Value,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<(), AttemptError> {
        let thought = part.get("thought").and_then(Value::as_bool) == Some(true);
        if let Some(sig) = part.get("thoughtSignature").and_then(Value::as_str) {
            // The signature belongs to this part: kept in front of it.
            self.content.push(Block::Thinking {
                text: String::new(),
                signature: Some(sig.to_string()),
            });
        }
        if let Some(t) = part.get("text").and_then(Value::as_str) {
            if t.is_empty() {
                return Ok(());
            }
            self.push_text(t, thought);
            on_event(if thought {
                StreamEvent::ThinkingDelta(t.to_string())
            } else {
                StreamEvent::TextDelta(t.to_string())
            });
        } else if let Some(call) = part.get("functionCall") {
            let name = call
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    AttemptError::Fatal(anyhow!("gemini: a functionCall without a name"))
                })?
                .to_string();
            self.calls += 1;
            let id = match call.get("id").and_then(Value::as_str) {
                Some(id) if !id.is_empty() => id.to_string(),
                _ => format!("{MADE_ID}{}_{}", uuid::Uuid::new_v4().simple(), self.calls),
            };
            let input = match call.get("args") {
                Some(a) if a.is_object() => a.clone(),
                None | Some(Value::Null) => json!({}),
                Some(other) => {
                    return Err(AttemptError::Fatal(anyhow!(
                        "gemini: the arguments of {name:?} are not an object: {other}"
                    )));
                }
            };
            on_event(StreamEvent::ToolUseStart {
                id: id.clone(),
                name: name.clone(),
            });
            self.content.push(Block::ToolUse { id, name, input });
        }
        Ok(())
    }
}

impl StreamDecoder for Decoder {
    fn event(
        &mut self,
        ev: &SseEvent,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<(), AttemptError> {
        let data = ev.data.trim();
        if data.is_empty() {
            return Ok(());
        }
        let v: Value = serde_json::from_str(data)
            .context("gemini: invalid JSON event")
            .map_err(AttemptError::retryable)?;
        self.raw.push(v.clone());
        if let Some(err) = v.get("error") {
            let msg = err.get("message").and_then(Value::as_str).unwrap_or("");
            let status = err.get("status").and_then(Value::as_str).unwrap_or("error");
            let message = format!("gemini: stream error {status}: {msg}");
            if let Some((tokens, limit)) = super::error::gemini(None, &v) {
                return Err(AttemptError::too_long(message, tokens, limit));
            }
            let e = anyhow!(message);
            return Err(
                if matches!(status, "UNAVAILABLE" | "RESOURCE_EXHAUSTED" | "INTERNAL") {
                    AttemptError::retryable(e)
                } else {
                    AttemptError::Fatal(e)
                },
            );
        }
        if let Some(u) = v.get("usageMetadata") {
            let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
            let cached = n("cachedContentTokenCount");
            self.usage = Usage {
                input_tokens: n("promptTokenCount").saturating_sub(cached),
                output_tokens: n("candidatesTokenCount") + n("thoughtsTokenCount"),
                cache_read_tokens: cached,
                cache_write_tokens: 0,
            };
        }
        if let Some(reason) = v
            .pointer("/promptFeedback/blockReason")
            .and_then(Value::as_str)
        {
            return Err(AttemptError::Fatal(anyhow!(
                "gemini: the prompt was blocked ({reason})"
            )));
        }
        let Some(cand) = v.pointer("/candidates/0") else {
            return Ok(());
        };
        for part in cand
            .pointer("/content/parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.part(part, on_event)?;
        }
        if let Some(r) = cand.get("finishReason").and_then(Value::as_str) {
            self.finish_reason = Some(r.to_string());
        }
        Ok(())
    }

    fn finished(&self) -> bool {
        // The event with the finish reason is the last one Gemini sends.
        self.finish_reason.is_some()
    }

    fn into_response(self: Box<Self>) -> Result<Response, AttemptError> {
        let Some(reason) = self.finish_reason else {
            return Err(AttemptError::retryable(anyhow!(
                "gemini: stream ended before a finishReason"
            )));
        };
        let has_calls = self
            .content
            .iter()
            .any(|b| matches!(b, Block::ToolUse { .. }));
        let stop_reason = match reason.as_str() {
            // Gemini says STOP after function calls too.
            "STOP" if has_calls => StopReason::ToolUse,
            "STOP" => StopReason::EndTurn,
            "MAX_TOKENS" => StopReason::MaxTokens,
            other => StopReason::Other(other.to_ascii_lowercase()),
        };
        Ok(Response {
            content: self.content,
            stop_reason,
            usage: self.usage,
            raw: Value::Array(self.raw),
        })
    }
}
