//! Provider errors the agent loop acts on, recognised from each provider's own error
//! shape. Everything else stays a plain `anyhow` error with the provider's message.
//!
//! - Anthropic: HTTP 400 `invalid_request_error` "prompt is too long: N tokens > M maximum",
//!   or "input length and `max_tokens` exceed context limit: N + O > W, ...", and HTTP 413
//!   `request_too_large` (the body is over the API's byte limit).
//! - OpenAI (and the servers that copy its format: vLLM, OpenRouter): `code:
//!   "context_length_exceeded"`, or a message "This model's maximum context length is M
//!   tokens. However, your messages resulted in N tokens ..." / "... you requested T tokens
//!   (N in the messages, O in the completion) ...".
//! - Gemini: HTTP 400 `INVALID_ARGUMENT` "The input token count (N) exceeds the maximum
//!   number of tokens allowed (M)."

use serde_json::Value;

/// An error of a provider call that the caller can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The request does not fit the model's context window. Never retried as it is: the
    /// history has to get shorter first.
    #[error("{message}")]
    ContextTooLong {
        /// Input tokens the request had, as the provider counted them, when it said.
        tokens: Option<u64>,
        /// Input tokens the request may have (the window, less `max_tokens` where the
        /// provider counts that in), when it said.
        limit: Option<u64>,
        /// The whole message (provider, status and the provider's text).
        message: String,
    },
}

impl ProviderError {
    /// The provider error in `err` (or in its chain of causes), if there is one.
    pub fn find(err: &anyhow::Error) -> Option<&ProviderError> {
        err.chain().find_map(|e| e.downcast_ref::<ProviderError>())
    }
}

/// Whether `err` (as returned by [`super::Provider::stream`], with or without added
/// context) says the prompt is too long for the model's context window.
pub fn is_context_too_long(err: &anyhow::Error) -> bool {
    matches!(
        ProviderError::find(err),
        Some(ProviderError::ContextTooLong { .. })
    )
}

/// `(tokens, limit)` of a context-too-long error, from the HTTP status and the parsed
/// JSON error body; `None` for any other error.
pub(crate) type TooLong = Option<(Option<u64>, Option<u64>)>;

/// The numbers in `text`, in order (digits only; `1,000` reads as 1 and 0).
fn numbers(text: &str) -> Vec<u64> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// The first number after `marker` in `text`.
fn number_after(text: &str, marker: &str) -> Option<u64> {
    let rest = &text[text.find(marker)? + marker.len()..];
    numbers(rest).first().copied()
}

fn error_field<'a>(body: &'a Value, key: &str) -> &'a str {
    body.pointer(&format!("/error/{key}"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Anthropic's shapes (the body as `{"type": "error", "error": {"type", "message"}}`,
/// which its SSE `error` event also has).
pub(crate) fn anthropic(status: Option<u16>, body: &Value) -> TooLong {
    let (ty, msg) = (error_field(body, "type"), error_field(body, "message"));
    if status == Some(413) || ty == "request_too_large" {
        return Some((None, None));
    }
    if ty != "invalid_request_error" {
        return None;
    }
    if let Some(i) = msg.find("prompt is too long") {
        // "prompt is too long: 250000 tokens > 200000 maximum"
        let n = numbers(&msg[i..]);
        return Some((n.first().copied(), n.get(1).copied()));
    }
    if let Some(i) = msg.find("exceed context limit") {
        // "input length and `max_tokens` exceed context limit: 199759 + 8192 > 200000, ..."
        return Some(match numbers(&msg[i..])[..] {
            [input, output, window, ..] => (Some(input), window.checked_sub(output)),
            _ => (None, None),
        });
    }
    None
}

/// OpenAI's shape (`{"error": {"message", "type", "param", "code"}}`), as OpenAI and the
/// servers that copy it word it.
pub(crate) fn openai(_status: Option<u16>, body: &Value) -> TooLong {
    let (code, msg) = (error_field(body, "code"), error_field(body, "message"));
    let lower = msg.to_ascii_lowercase();
    let recognised = code == "context_length_exceeded"
        || lower.contains("maximum context length")
        || lower.contains("exceeds the context window");
    if !recognised {
        return None;
    }
    // "Input tokens exceed the configured limit of 272000 tokens." (GPT-5's wording)
    let window = number_after(&lower, "maximum context length is")
        .or_else(|| number_after(&lower, "limit of"));
    if let Some(tokens) = number_after(&lower, "resulted in") {
        return Some((Some(tokens), window));
    }
    // "However, you requested 5000 tokens (4000 in the messages, 1000 in the completion)".
    let requested = &lower[lower.find("you requested").unwrap_or(lower.len())..];
    Some(match numbers(requested)[..] {
        [_, input, output, ..] if requested.contains("in the completion") => {
            (Some(input), window.and_then(|w| w.checked_sub(output)))
        }
        [total, ..] => (Some(total), window),
        [] => (None, window),
    })
}

/// Gemini's shape (`{"error": {"code": 400, "message", "status": "INVALID_ARGUMENT"}}`).
pub(crate) fn gemini(_status: Option<u16>, body: &Value) -> TooLong {
    let msg = error_field(body, "message");
    if error_field(body, "status") != "INVALID_ARGUMENT" {
        return None;
    }
    let i = msg.find("input token count")?;
    if !msg.contains("exceeds the maximum number of tokens") {
        return None;
    }
    let n = numbers(&msg[i..]);
    Some((n.first().copied(), n.get(1).copied()))
}
