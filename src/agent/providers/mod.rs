//! LLM providers for the agent harness, goose style: a provider is data
//! ([`ProviderConfig`]) plus one small trait ([`Provider`]).
//!
//! Three wire formats are spoken, all streaming over SSE:
//! - [`Kind::Anthropic`]: the Anthropic Messages API (`POST {base}/v1/messages`).
//! - [`Kind::OpenAi`]: OpenAI Chat Completions (`POST {base}/chat/completions`),
//!   which many local servers also speak.
//! - [`Kind::Gemini`]: the Gemini API (`POST {base}/v1beta/models/{model}:streamGenerateContent?alt=sse`).
//!
//! The common message model ([`Message`], [`Block`]) follows Anthropic's
//! content blocks; the OpenAI provider translates it. Retries, timeout and
//! cancellation live in `retry`. API keys never appear in errors or logs.
//!
//! Note: if a stream is cut and the request retried, deltas already passed to
//! `on_event` are emitted again from the start by the new attempt.

mod anthropic;
pub mod blocks;
mod error;
mod gemini;
mod openai;
mod options;
mod replay;
mod retry;
mod sse;

#[cfg(test)]
mod tests;

use std::time::Duration;

use anyhow::{Context as _, bail};
use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

pub use anthropic::AnthropicProvider;
pub use error::{ProviderError, is_context_too_long};
pub use gemini::GeminiProvider;
pub use openai::OpenAiProvider;
pub use options::Options;
pub use replay::ReplayProvider;
pub use retry::ApiKey;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The user (also carries tool results).
    User,
    /// The model.
    Assistant,
}

/// One content block of a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// Plain text.
    Text(String),
    /// Model reasoning; Anthropic needs the signature to accept it back.
    Thinking {
        /// The reasoning text.
        text: String,
        /// Anthropic's signature, if any.
        signature: Option<String>,
    },
    /// A tool call made by the model.
    ToolUse {
        /// Call id, echoed by the matching [`Block::ToolResult`].
        id: String,
        /// Tool name.
        name: String,
        /// Arguments (a JSON object).
        input: serde_json::Value,
    },
    /// The result of a tool call.
    ToolResult {
        /// The [`Block::ToolUse`] id this answers.
        tool_use_id: String,
        /// Text and images.
        content: Vec<ResultPart>,
        /// True if the tool failed.
        is_error: bool,
    },
}

/// Part of a tool result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultPart {
    /// Text.
    Text(String),
    /// A base64-encoded image.
    Image {
        /// e.g. `image/png`.
        media_type: String,
        /// Base64 data, no data-URL prefix.
        data_base64: String,
    },
}

/// One conversation message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Author.
    pub role: Role,
    /// Content blocks.
    pub content: Vec<Block>,
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// Tool name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// JSON schema of its input object.
    pub input_schema: serde_json::Value,
}

/// A model request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Model id; empty means the provider's configured model.
    pub model: String,
    /// System prompt (omitted when empty).
    pub system: String,
    /// Conversation so far.
    pub messages: Vec<Message>,
    /// Available tools.
    pub tools: Vec<ToolSpec>,
    /// Output token limit.
    pub max_tokens: u32,
    /// Provider options (`kwargs`): sampling, thinking, extra body fields.
    pub options: Options,
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Natural end of turn.
    EndTurn,
    /// The model wants tool results.
    ToolUse,
    /// Hit `max_tokens`.
    MaxTokens,
    /// Anything else, verbatim from the provider.
    Other(String),
}

/// Token accounting, the same for every provider: the input is split into its uncached
/// part, what was read from the prompt cache and what was written to it, which add up to
/// the whole prompt ([`Usage::context_tokens`]). Anthropic reports it that way; OpenAI's
/// `prompt_tokens` and Gemini's `promptTokenCount` include their cached tokens
/// (`prompt_tokens_details.cached_tokens`, `cachedContentTokenCount`), which the decoders
/// move to `cache_read_tokens`. Neither reports cache writes (their caching is automatic
/// and writing costs nothing extra).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Uncached input tokens.
    pub input_tokens: u64,
    /// Output tokens (thinking included).
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_write_tokens: u64,
}

impl Usage {
    /// The size of the request's prompt in tokens, cached parts included: what counts
    /// against the model's context window.
    pub fn context_tokens(&self) -> u64 {
        self.input_tokens + self.cache_read_tokens + self.cache_write_tokens
    }
}

/// Incremental output, for live display.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// More answer text.
    TextDelta(String),
    /// More reasoning text.
    ThinkingDelta(String),
    /// The model started a tool call.
    ToolUseStart {
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
    },
    /// The complete response (also returned by [`Provider::stream`]).
    Done(Response),
}

/// A complete model response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// Content blocks in order.
    pub content: Vec<Block>,
    /// Why it stopped.
    pub stop_reason: StopReason,
    /// Token usage.
    pub usage: Usage,
    /// The raw JSON events received, for the transcript.
    pub raw: serde_json::Value,
}

/// A model backend.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Short name (`anthropic`, `openai`), used in errors and logs.
    fn name(&self) -> &str;
    /// The exact JSON body for `req`: built once per turn, written to the transcript and
    /// sent by [`Provider::stream`].
    fn request_body(&self, req: &Request) -> serde_json::Value;
    /// Sends `body` (from [`Provider::request_body`]), streams deltas to `on_event`,
    /// returns the full response.
    async fn stream(
        &self,
        body: &serde_json::Value,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
        cancel: &CancellationToken,
    ) -> anyhow::Result<Response>;
}

/// Wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Anthropic Messages API.
    Anthropic,
    /// OpenAI Chat Completions.
    OpenAi,
    /// Google's Gemini API (generateContent).
    Gemini,
}

impl Kind {
    /// Parses `anthropic` / `claude` / `openai` / `gemini` (case-insensitive).
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "anthropic" | "claude" => Ok(Self::Anthropic),
            "openai" => Ok(Self::OpenAi),
            "gemini" => Ok(Self::Gemini),
            other => bail!(
                "unknown provider {other:?}; expected \"anthropic\", \"claude\", \"openai\" or \"gemini\""
            ),
        }
    }

    /// The provider's name in errors and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Anthropic => "anthropic",
            Self::OpenAi => "openai",
            Self::Gemini => "gemini",
        }
    }

    /// Default base URL.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Self::Anthropic => "https://api.anthropic.com",
            Self::OpenAi => "https://api.openai.com/v1",
            Self::Gemini => "https://generativelanguage.googleapis.com",
        }
    }

    /// Environment variable overriding the base URL.
    pub fn base_url_env(self) -> &'static str {
        match self {
            Self::Anthropic => "ANTHROPIC_BASE_URL",
            Self::OpenAi => "OPENAI_BASE_URL",
            Self::Gemini => "GEMINI_BASE_URL",
        }
    }

    /// Default environment variable holding the API key.
    pub fn default_api_key_env(self) -> &'static str {
        match self {
            Self::Anthropic => "ANTHROPIC_API_KEY",
            Self::OpenAi => "OPENAI_API_KEY",
            Self::Gemini => "GEMINI_API_KEY",
        }
    }
}

/// Default model per provider kind: Seer's defaults (`claude-sonnet-4-5-20250929`,
/// `gpt-5`; for Gemini, Seer's `gemini-3.0-pro` is not an id the API knows, so its
/// published id `gemini-3-pro-preview`).
pub fn default_model(kind: Kind) -> &'static str {
    match kind {
        Kind::Anthropic => "claude-sonnet-4-5-20250929",
        Kind::OpenAi => "gpt-5",
        Kind::Gemini => "gemini-3-pro-preview",
    }
}

/// A provider as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// Wire format.
    pub kind: Kind,
    /// Base URL (no trailing path such as `/v1/messages`).
    pub base_url: String,
    /// Environment variable holding the API key.
    pub api_key_env: String,
    /// Model used when [`Request::model`] is empty.
    pub model: String,
    /// Per-attempt timeout (connect + full stream).
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff delay; doubles each retry (with jitter).
    pub retry_base_delay: Duration,
}

impl ProviderConfig {
    /// Defaults for `kind`: default base URL (or its env override), key env,
    /// model, 600 s timeout, 4 retries, 1 s base delay.
    pub fn new(kind: Kind) -> Self {
        let base_url = std::env::var(kind.base_url_env())
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| kind.default_base_url().to_string());
        Self {
            kind,
            base_url,
            api_key_env: kind.default_api_key_env().to_string(),
            model: default_model(kind).to_string(),
            timeout: Duration::from_secs(600),
            max_retries: 4,
            retry_base_delay: Duration::from_secs(1),
        }
    }

    /// Builds the provider, reading the key from `api_key_env`.
    pub fn build(&self) -> anyhow::Result<Box<dyn Provider>> {
        let key = std::env::var(&self.api_key_env)
            .ok()
            .filter(|k| !k.trim().is_empty());
        let Some(key) = key else {
            bail!(
                "no API key for the {} provider: set the environment variable {}",
                self.kind.name(),
                self.api_key_env
            );
        };
        // Whatever a sandbox or an MCP server prints, this key is redacted from it.
        crate::secrets::protect(&key);
        self.build_with_key(ApiKey::new(key.trim()))
    }

    /// Builds the provider with an explicit key.
    pub fn build_with_key(&self, key: ApiKey) -> anyhow::Result<Box<dyn Provider>> {
        let client = reqwest::Client::builder()
            .build()
            .context("building the HTTP client")?;
        Ok(match self.kind {
            Kind::Anthropic => Box::new(AnthropicProvider::new(self.clone(), key, client)),
            Kind::OpenAi => Box::new(OpenAiProvider::new(self.clone(), key, client)),
            Kind::Gemini => Box::new(GeminiProvider::new(self.clone(), key, client)),
        })
    }
}

/// Joins a base URL and a path with exactly one slash.
fn join_url(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// The model to send: the request's, else the configured one.
fn model_for<'a>(req: &'a Request, config: &'a ProviderConfig) -> &'a str {
    if req.model.is_empty() {
        &config.model
    } else {
        &req.model
    }
}
