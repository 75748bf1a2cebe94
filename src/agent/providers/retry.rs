//! The HTTP driver shared by all providers: one streaming POST, retried with
//! exponential backoff and jitter on transient failures (429, 408, 5xx
//! including Anthropic's 529, connection errors, timeouts, a stream cut before its
//! final event, a retryable mid-stream error event), honouring `retry-after`
//! and `retry-after-ms`, bounded by a per-attempt timeout and a cancellation
//! token. Error messages never contain the API key: any server text is
//! passed through [`ApiKey::redact`] first.

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use reqwest::header::HeaderMap;
use tokio_util::sync::CancellationToken;

use super::error::{ProviderError, TooLong};
use super::sse::{SseEvent, SseParser};
use super::{ProviderConfig, Response, StreamEvent};

/// An API key. `Debug` never shows it.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, for the auth header only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// Replaces any occurrence of the key in `text`.
    pub(crate) fn redact(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.0, "[REDACTED]")
        }
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey([REDACTED])")
    }
}

/// Outcome of one failed attempt.
#[derive(Debug)]
pub(crate) enum AttemptError {
    /// Worth another try, after `retry_after` if the server said so.
    Retryable {
        error: anyhow::Error,
        retry_after: Option<Duration>,
    },
    /// Give up now.
    Fatal(anyhow::Error),
}

impl AttemptError {
    pub(crate) fn retryable(error: anyhow::Error) -> Self {
        Self::Retryable {
            error,
            retry_after: None,
        }
    }

    /// A prompt too long for the model's window: never retried as it is (the caller
    /// shortens the history), and typed so the caller can tell (see [`ProviderError`]).
    pub(crate) fn too_long(message: String, tokens: Option<u64>, limit: Option<u64>) -> Self {
        Self::Fatal(anyhow::Error::new(ProviderError::ContextTooLong {
            tokens,
            limit,
            message,
        }))
    }
}

/// Recognises a provider's context-too-long error from the HTTP status (`None` for an
/// error event in a stream) and the JSON error body.
pub(crate) type TooLongFn = fn(Option<u16>, &serde_json::Value) -> TooLong;

/// Per-provider stream decoder: turns SSE events into [`StreamEvent`]s and
/// finally a [`Response`].
pub(crate) trait StreamDecoder: Send {
    /// Handles one SSE event.
    fn event(
        &mut self,
        ev: &SseEvent,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<(), AttemptError>;
    /// True once the provider's final event was seen.
    fn finished(&self) -> bool;
    /// Builds the response; only called when [`Self::finished`] or at end of
    /// stream (where it may still accept a lenient ending).
    fn into_response(self: Box<Self>) -> Result<Response, AttemptError>;
}

/// True for HTTP statuses worth retrying.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429) || (500..=599).contains(&status)
}

/// Server-requested delay: `retry-after-ms` first, then `retry-after` in
/// (possibly fractional) seconds. HTTP-date values are ignored.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok();
    if let Some(ms) = get("retry-after-ms").filter(|v| v.is_finite() && *v >= 0.0) {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    get("retry-after")
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(Duration::from_secs_f64)
}

/// Exponential backoff for retry number `attempt` (0-based) with jitter in
/// `[50%, 100%]`, capped at 60 s.
pub(crate) fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(attempt.min(16)));
    let capped = exp.min(Duration::from_secs(60));
    let r = (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 1000.0;
    capped.mul_f64(0.5 + 0.5 * r)
}

/// Extracts `error.type` / `error.message` from a JSON error body (shape
/// shared by Anthropic and OpenAI), else the raw body, truncated.
pub(crate) fn error_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        let err = v.get("error").unwrap_or(&v);
        let msg = err.get("message").and_then(|m| m.as_str());
        let ty = err
            .get("type")
            .or_else(|| err.get("code"))
            .and_then(|m| m.as_str())
            // Google's shape: `{"error": {"code": 429, "message", "status": "RESOURCE_EXHAUSTED"}}`.
            .or_else(|| err.get("status").and_then(|m| m.as_str()));
        match (ty, msg) {
            (Some(t), Some(m)) => return format!("{t}: {m}"),
            (None, Some(m)) => return m.to_string(),
            _ => {}
        }
    }
    let trimmed = body.trim();
    if trimmed.chars().count() > 500 {
        format!("{}…", trimmed.chars().take(500).collect::<String>())
    } else {
        trimmed.to_string()
    }
}

/// Everything one streaming call needs.
pub(crate) struct Call<'a> {
    pub provider: &'a str,
    pub config: &'a ProviderConfig,
    pub key: &'a ApiKey,
    pub client: &'a reqwest::Client,
    pub url: String,
    pub headers: HeaderMap,
    pub body: &'a serde_json::Value,
    /// The provider's context-too-long recogniser.
    pub too_long: TooLongFn,
}

/// Runs the call with retries, timeout and cancellation; sends `StreamEvent::Done` once
/// with the final response.
pub(crate) async fn run(
    call: Call<'_>,
    new_decoder: &(dyn Fn() -> Box<dyn StreamDecoder> + Sync),
    on_event: &mut (dyn FnMut(StreamEvent) + Send),
    cancel: &CancellationToken,
) -> anyhow::Result<Response> {
    let provider = call.provider;
    let mut attempt: u32 = 0;
    loop {
        let one = tokio::time::timeout(
            call.config.timeout,
            attempt_once(&call, new_decoder(), on_event),
        );
        let outcome = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(anyhow!("{provider}: cancelled")),
            r = one => r,
        };
        let (error, retry_after) = match outcome {
            // Retried like a dropped connection, as the official SDKs do.
            Err(_elapsed) => (
                anyhow!(
                    "{provider}: request timed out after {:?} (per-request timeout)",
                    call.config.timeout
                ),
                None,
            ),
            Ok(Ok(resp)) => {
                on_event(StreamEvent::Done(resp.clone()));
                return Ok(resp);
            }
            Ok(Err(AttemptError::Fatal(e))) => return Err(e),
            Ok(Err(AttemptError::Retryable { error, retry_after })) => (error, retry_after),
        };
        if attempt >= call.config.max_retries {
            return Err(error.context(format!("{provider}: giving up after {attempt} retries")));
        }
        let delay = retry_after.unwrap_or_else(|| backoff(call.config.retry_base_delay, attempt));
        attempt += 1;
        tracing::warn!(
            provider,
            attempt,
            max_retries = call.config.max_retries,
            delay_ms = delay.as_millis() as u64,
            error = %format!("{error:#}"),
            "retrying provider request"
        );
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(anyhow!("{provider}: cancelled")),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

async fn attempt_once(
    call: &Call<'_>,
    mut decoder: Box<dyn StreamDecoder>,
    on_event: &mut (dyn FnMut(StreamEvent) + Send),
) -> Result<Response, AttemptError> {
    let provider = call.provider;
    let resp = call
        .client
        .post(&call.url)
        .headers(call.headers.clone())
        .json(call.body)
        .send()
        .await;
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            let err = anyhow!(
                "{provider}: could not reach {}: {}",
                call.url,
                call.key.redact(&format!("{e:#}"))
            );
            return Err(if e.is_builder() {
                AttemptError::Fatal(err)
            } else {
                AttemptError::retryable(err)
            });
        }
    };
    let status = resp.status();
    if !status.is_success() {
        let after = retry_after(resp.headers());
        let text = resp.text().await.unwrap_or_default();
        let msg = call.key.redact(&error_message(&text));
        let message = format!("{provider}: HTTP {}: {msg}", status.as_u16());
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        if let Some((tokens, limit)) = (call.too_long)(Some(status.as_u16()), &json) {
            return Err(AttemptError::too_long(message, tokens, limit));
        }
        let err = anyhow!(message);
        return Err(if is_retryable_status(status.as_u16()) {
            AttemptError::Retryable {
                error: err,
                retry_after: after,
            }
        } else {
            AttemptError::Fatal(err)
        });
    }
    let mut resp = resp;
    let mut parser = SseParser::new();
    loop {
        let chunk = resp.chunk().await.map_err(|e| {
            AttemptError::retryable(anyhow!(
                "{provider}: stream interrupted: {}",
                call.key.redact(&format!("{e:#}"))
            ))
        })?;
        let Some(chunk) = chunk else { break };
        for ev in parser.feed(&chunk) {
            decoder.event(&ev, on_event)?;
            if decoder.finished() {
                return decoder.into_response();
            }
        }
    }
    if parser.has_partial() {
        // Flush a final event the server did not terminate with a blank line.
        for ev in parser.feed(b"\n\n") {
            decoder.event(&ev, on_event)?;
        }
    }
    decoder.into_response()
}

/// Adds context to a header-value construction failure without echoing the
/// value (which may be the key).
pub(crate) fn header_value(
    value: &str,
    what: &str,
) -> anyhow::Result<reqwest::header::HeaderValue> {
    let mut v = reqwest::header::HeaderValue::from_str(value)
        .map_err(|_| anyhow!("invalid characters in {what}"))
        .context("building request headers")?;
    v.set_sensitive(true);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
    }

    #[test]
    fn backoff_grows_with_jitter() {
        let base = Duration::from_millis(100);
        for attempt in 0..5 {
            let d = backoff(base, attempt);
            let full = base * 2u32.pow(attempt);
            assert!(d >= full / 2 && d <= full, "{d:?} vs {full:?}");
        }
        assert!(backoff(base, 40) <= Duration::from_secs(60));
    }

    #[test]
    fn statuses_and_messages() {
        assert!(is_retryable_status(429) && is_retryable_status(529) && is_retryable_status(500));
        assert!(!is_retryable_status(401) && !is_retryable_status(400));
        assert_eq!(
            error_message(
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
            ),
            "overloaded_error: Overloaded"
        );
        assert_eq!(error_message("plain"), "plain");
        let key = ApiKey::new("sk-secret");
        assert_eq!(key.redact("bad key sk-secret"), "bad key [REDACTED]");
        assert_eq!(format!("{key:?}"), "ApiKey([REDACTED])");
    }
}
