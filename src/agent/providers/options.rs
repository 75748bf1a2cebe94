//! Provider options a script passes as `kwargs` (Seer's name for provider-specific
//! options): the sampling and thinking settings seer knows, checked against the provider,
//! and `extra_body`, fields merged into the request body as given.

use anyhow::{Result, bail};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::Kind;

/// `run_agent`'s `kwargs`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Sampling temperature (Anthropic 0–1; OpenAI and Gemini 0–2).
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Nucleus sampling, 0–1.
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Top-k sampling (Anthropic, Gemini).
    #[serde(default)]
    pub top_k: Option<u32>,
    /// Tokens the model may think before answering (Anthropic extended thinking, at least
    /// 1024 and below `max_tokens`; Gemini's thinking budget). `max_thinking_tokens` is the
    /// Claude Agent SDK's name, which Seer's kwargs pass.
    #[serde(default, alias = "max_thinking_tokens")]
    pub thinking_budget: Option<u32>,
    /// OpenAI reasoning models: `minimal`, `low`, `medium` or `high`.
    #[serde(default)]
    pub reasoning_effort: Option<String>,
    /// Stop sequences.
    #[serde(default)]
    pub stop: Option<Vec<String>>,
    /// Prompt caching (default on). Anthropic's requests then carry `cache_control`
    /// breakpoints; `false` sends none. OpenAI and Gemini cache prompts by themselves and
    /// cannot be told not to, so for them only `true` is accepted.
    #[serde(default)]
    pub cache: Option<bool>,
    /// Fields merged into the request body as given (objects merged key by key), for
    /// provider options seer does not know.
    #[serde(default)]
    pub extra_body: Option<Map<String, Value>>,
}

fn range(name: &str, v: Option<f64>, lo: f64, hi: f64, provider: &str) -> Result<()> {
    match v {
        Some(x) if !(lo..=hi).contains(&x) => {
            bail!("kwargs: `{name}` must be between {lo} and {hi} for {provider}, not {x}")
        }
        _ => Ok(()),
    }
}

impl Options {
    /// Checks the options against what `kind`'s API accepts.
    pub fn check(&self, kind: Kind, max_tokens: u32) -> Result<()> {
        let provider = kind.name();
        let t_max = if kind == Kind::Anthropic { 1.0 } else { 2.0 };
        range("temperature", self.temperature, 0.0, t_max, provider)?;
        range("top_p", self.top_p, 0.0, 1.0, provider)?;
        if self.top_k == Some(0) {
            bail!("kwargs: `top_k` must be at least 1");
        }
        if kind == Kind::OpenAi && self.top_k.is_some() {
            bail!(
                "kwargs: the openai provider has no `top_k` (Chat Completions does not take it); a compatible server that does can get it through `extra_body`"
            );
        }
        if let Some(b) = self.thinking_budget {
            match kind {
                Kind::OpenAi => bail!(
                    "kwargs: the openai provider has no `thinking_budget`; use `reasoning_effort` (\"low\", \"medium\", \"high\")"
                ),
                Kind::Anthropic if b < 1024 || b >= max_tokens => bail!(
                    "kwargs: `thinking_budget` must be at least 1024 and below `max_tokens` ({max_tokens}) for anthropic, not {b}"
                ),
                _ => {}
            }
        }
        if let Some(e) = &self.reasoning_effort {
            if kind != Kind::OpenAi {
                bail!(
                    "kwargs: `reasoning_effort` is the openai provider's; {provider} takes `thinking_budget`"
                );
            }
            if !["minimal", "low", "medium", "high"].contains(&e.as_str()) {
                bail!(
                    "kwargs: `reasoning_effort` must be \"minimal\", \"low\", \"medium\" or \"high\", not {e:?}"
                );
            }
        }
        if let Some(s) = &self.stop
            && s.iter().any(String::is_empty)
        {
            bail!("kwargs: `stop` sequences must not be empty");
        }
        if self.cache == Some(false) && kind != Kind::Anthropic {
            bail!(
                "kwargs: `cache: false` is the anthropic provider's; {provider} caches prompts by itself (automatic prompt caching) and cannot be told not to"
            );
        }
        Ok(())
    }

    /// Whether requests ask for prompt caching (`cache`, default on).
    pub fn cache_enabled(&self) -> bool {
        self.cache != Some(false)
    }

    /// `extra_body` merged into `body`: objects key by key, anything else replaced.
    pub fn merge_extra(&self, body: &mut Value) {
        if let Some(extra) = &self.extra_body {
            merge(body, &Value::Object(extra.clone()));
        }
    }
}

fn merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        a.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn opts(v: Value) -> Options {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn options_are_checked_per_provider() {
        let err = |v: Value, kind: Kind| opts(v).check(kind, 8192).unwrap_err().to_string();
        assert_eq!(
            err(json!({"temperature": 1.5}), Kind::Anthropic),
            "kwargs: `temperature` must be between 0 and 1 for anthropic, not 1.5"
        );
        opts(json!({"temperature": 1.5}))
            .check(Kind::OpenAi, 8192)
            .unwrap();
        assert_eq!(
            err(json!({"thinking_budget": 100}), Kind::Anthropic),
            "kwargs: `thinking_budget` must be at least 1024 and below `max_tokens` (8192) for anthropic, not 100"
        );
        assert_eq!(
            err(json!({"max_thinking_tokens": 2048}), Kind::OpenAi),
            "kwargs: the openai provider has no `thinking_budget`; use `reasoning_effort` (\"low\", \"medium\", \"high\")"
        );
        assert_eq!(
            err(json!({"reasoning_effort": "max"}), Kind::OpenAi),
            "kwargs: `reasoning_effort` must be \"minimal\", \"low\", \"medium\" or \"high\", not \"max\""
        );
        assert_eq!(
            err(json!({"top_k": 5}), Kind::OpenAi),
            "kwargs: the openai provider has no `top_k` (Chat Completions does not take it); a compatible server that does can get it through `extra_body`"
        );
        opts(json!({"thinking_budget": 0, "top_k": 3}))
            .check(Kind::Gemini, 8192)
            .unwrap();
        assert_eq!(
            err(json!({"cache": false}), Kind::OpenAi),
            "kwargs: `cache: false` is the anthropic provider's; openai caches prompts by itself (automatic prompt caching) and cannot be told not to"
        );
        opts(json!({"cache": false}))
            .check(Kind::Anthropic, 8192)
            .unwrap();
        opts(json!({"cache": true}))
            .check(Kind::Gemini, 8192)
            .unwrap();
        assert!(!opts(json!({"cache": false})).cache_enabled());
        assert!(Options::default().cache_enabled());
    }

    #[test]
    fn extra_body_merges_objects_and_replaces_the_rest() {
        let mut body = json!({"a": {"x": 1, "y": 2}, "b": [1], "c": 3});
        opts(json!({"extra_body": {"a": {"y": 5, "z": 6}, "b": [2], "d": true}}))
            .merge_extra(&mut body);
        assert_eq!(
            body,
            json!({"a": {"x": 1, "y": 5, "z": 6}, "b": [2], "c": 3, "d": true})
        );
    }
}
