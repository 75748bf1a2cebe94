//! `run_agent`'s options as a script gives them ([`AgentConfig`], checked in one place),
//! and the provider they name ([`build_provider`]).

use std::path::Path;

use anyhow::{Result, anyhow, bail};
use serde::Deserialize;
use serde_json::Value;

use super::context::{ContextConfig, Limits};
use super::pricing::{Prices, prices_for};
use super::providers::{Kind, Options, Provider, ProviderConfig, ReplayProvider, default_model};
use crate::config::positive_seconds;

/// The first user message when `user_message` is not given (Seer's `run_agent` puts the
/// task in `prompt`, the system prompt, and may send no user message at all; the provider
/// APIs need one).
pub const DEFAULT_USER_MESSAGE: &str = "Begin. Follow the instructions in the system prompt, and end with a summary of what you found.";

fn sixty() -> u32 {
    60
}
fn max_tokens() -> u32 {
    8192
}
fn anthropic() -> String {
    "anthropic".into()
}
fn yes() -> bool {
    true
}

/// `run_agent`'s options, as a script gives them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The system prompt, as in Seer (the task usually goes here).
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub mcp_config: Value,
    #[serde(default = "anthropic")]
    pub provider: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default = "sixty")]
    pub max_turns: u32,
    #[serde(default = "max_tokens")]
    pub max_tokens: u32,
    /// Another name for `prompt` (giving both is an error).
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// The first user message, as in Seer; [`DEFAULT_USER_MESSAGE`] when not given.
    #[serde(default)]
    pub user_message: Option<String>,
    /// `"none"`: an agent without tools on purpose (a judge). Without it an empty
    /// `mcp_config` is an error, never a silent tool-less run.
    #[serde(default)]
    pub tools: Option<String>,
    /// Names the transcript file and prefixes the live log.
    #[serde(default)]
    pub name: Option<String>,
    /// For `provider: "replay"`: the transcript whose assistant turns are replayed.
    #[serde(default)]
    pub transcript: Option<String>,
    /// Overrides the price table (USD per million tokens) for the cost estimate.
    #[serde(default)]
    pub prices: Option<Prices>,
    /// Print the live log to stderr (default true).
    #[serde(default = "yes")]
    pub live_log: bool,
    /// Seconds one request may take, stream included (default 600).
    #[serde(default)]
    pub request_timeout: Option<f64>,
    /// Retries of a failed request (default 4).
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// Provider options (Seer's `kwargs`): `temperature`, `top_p`, `top_k`,
    /// `thinking_budget` (alias `max_thinking_tokens`), `reasoning_effort`, `stop`,
    /// `extra_body`.
    #[serde(default)]
    pub kwargs: Options,
    /// The model's context window in tokens (default: the price table's for the model).
    #[serde(default)]
    pub context_window: Option<u64>,
    /// How the run stays inside the window (see [`super::context`]).
    #[serde(default)]
    pub context: ContextConfig,
    /// Turns, tokens, cost, wall time and tool calls the run may use.
    #[serde(default)]
    pub limits: Limits,
    /// Seconds one tool call may take (default: a notebook cell's own timeout plus ten
    /// minutes for the interrupt and a restart, else 24 h).
    #[serde(default)]
    pub tool_timeout: Option<f64>,
}

impl AgentConfig {
    /// The system prompt: `prompt` or its other name `system_prompt` (empty if neither).
    pub fn system(&self) -> Result<String> {
        match (&self.prompt, &self.system_prompt) {
            (Some(_), Some(_)) => bail!(
                "give `prompt` or `system_prompt`, not both: they are the same thing, the system prompt (as in Seer)"
            ),
            (Some(p), None) | (None, Some(p)) => Ok(p.clone()),
            (None, None) => Ok(String::new()),
        }
    }

    /// The first user message: `user_message`, else [`DEFAULT_USER_MESSAGE`].
    pub fn first_user_message(&self) -> String {
        match &self.user_message {
            Some(u) if !u.trim().is_empty() => u.clone(),
            _ => DEFAULT_USER_MESSAGE.to_string(),
        }
    }

    /// Checks what can be checked before anything starts. `interactive`: the chat, where
    /// the system prompt may be empty.
    pub fn validate(&self, interactive: bool) -> Result<()> {
        let system = self.system()?;
        let user = self.user_message.as_deref().unwrap_or("");
        if !interactive && system.trim().is_empty() && user.trim().is_empty() {
            bail!(
                "`prompt` (the system prompt, as in Seer) and `user_message` (the first user message) are both missing or empty: give the agent its task in one of them"
            );
        }
        self.context.check()?;
        self.limits.check()?;
        if self.context_window == Some(0) {
            bail!("`context_window`: must be at least 1 token");
        }
        match Kind::parse(&self.provider) {
            Ok(kind) => self.kwargs.check(kind, self.max_tokens)?,
            Err(_) if self.kwargs != Options::default() && self.provider != "replay" => bail!(
                "not supported yet: `kwargs` with the {} provider",
                self.provider
            ),
            Err(_) => {}
        }
        let servers = if self.mcp_config.is_null() {
            0
        } else {
            super::mcp_client::parse_config(&self.mcp_config)?.len()
        };
        match self.tools.as_deref() {
            None if servers == 0 => bail!(
                "the agent would have no tools: `mcp_config` is {}; give a session's `mcp_config`, or `tools: \"none\"` for an agent without tools on purpose (a judge)",
                if self.mcp_config.is_null() {
                    "missing"
                } else {
                    "empty"
                }
            ),
            None => Ok(()),
            Some("none") if servers > 0 => bail!(
                "`tools: \"none\"` but `mcp_config` names {servers} server(s); drop one of them"
            ),
            Some("none") => Ok(()),
            Some(other) => bail!(
                "`tools` must be \"none\" (an agent without tools on purpose), not {other:?}; tools come from `mcp_config`"
            ),
        }
    }

    /// The model the run uses: the configured one, else the provider's default.
    pub fn effective_model(&self) -> Option<String> {
        if let Some(m) = &self.model {
            return Some(m.clone());
        }
        Kind::parse(&self.provider)
            .ok()
            .map(|k| default_model(k).to_string())
    }

    /// Prices for the cost estimate: the override, else the table's for the model.
    pub fn prices(&self) -> Option<Prices> {
        if self.provider == "replay" {
            return Some(Prices {
                input: 0.0,
                output: 0.0,
                cache_read: None,
                cache_write: None,
            });
        }
        self.prices
            .or_else(|| self.effective_model().and_then(|m| prices_for(&m)))
    }
}

/// The provider named in `cfg`: `replay` reads its transcript (relative to `base_dir`);
/// `anthropic`/`claude`/`openai` read their key from the environment.
pub fn build_provider(cfg: &AgentConfig, base_dir: &Path) -> Result<Box<dyn Provider>> {
    match cfg.provider.trim().to_ascii_lowercase().as_str() {
        "replay" => {
            let Some(t) = &cfg.transcript else {
                bail!(
                    "provider \"replay\" needs `transcript`: the path of a transcript to replay (outputs/<run>/transcripts/<name>.jsonl)"
                );
            };
            Ok(Box::new(ReplayProvider::from_transcript(
                &base_dir.join(t),
            )?))
        }
        "anthropic" | "claude" | "openai" | "gemini" => {
            let mut pc = ProviderConfig::new(Kind::parse(&cfg.provider)?);
            if let Some(url) = &cfg.base_url {
                pc.base_url = url.clone();
            }
            if let Some(env) = &cfg.api_key_env {
                pc.api_key_env = env.clone();
            }
            if let Some(t) = cfg.request_timeout {
                pc.timeout = positive_seconds("request_timeout", t).map_err(|e| anyhow!(e))?;
            }
            if let Some(n) = cfg.max_retries {
                pc.max_retries = n;
            }
            pc.build()
        }
        "claude-code" => bail!(
            "not supported yet: provider \"claude-code\" in an interactive chat (run_agent supports it)"
        ),
        other => bail!(
            "unknown provider {other:?}; expected \"anthropic\" (alias \"claude\"), \"openai\", \"gemini\", \"claude-code\" or \"replay\""
        ),
    }
}
