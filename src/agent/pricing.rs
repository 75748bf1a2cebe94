//! What seer knows about each model: its prices (USD per million tokens, prompt-cache
//! reads and writes included) and its context window, matched by the longest prefix of the
//! model id so dated ids (`claude-sonnet-4-5-20250929`) find their family. A script can
//! override the prices with `prices` and the window with `context_window` in `run_agent`.
//! The figures are the providers' published ones (checked in July 2026); check their pages
//! for billing. Where a price depends on the prompt's size (Gemini's Pro models above
//! 200k tokens), the table has the lower tier.
//!
//! Cost is computed here only ([`cost`]), from a [`Usage`] whose `input_tokens` are the
//! uncached input (every provider's usage is normalised to that): uncached input at
//! `input`, cache reads at `cache_read`, cache writes at `cache_write`, output at `output`.

use serde::Deserialize;

use super::providers::Usage;

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    /// Uncached input.
    pub input: f64,
    /// Output (thinking included).
    pub output: f64,
    /// Prompt-cache reads; defaults to a tenth of `input`.
    #[serde(default)]
    pub cache_read: Option<f64>,
    /// Prompt-cache writes; defaults to 1.25 × `input`.
    #[serde(default)]
    pub cache_write: Option<f64>,
}

impl Prices {
    /// Cache reads: `cache_read`, else a tenth of `input`.
    pub fn cache_read(&self) -> f64 {
        self.cache_read.unwrap_or(self.input / 10.0)
    }

    /// Cache writes: `cache_write`, else 1.25 × `input` (Anthropic's 5-minute writes).
    pub fn cache_write(&self) -> f64 {
        self.cache_write.unwrap_or(self.input * 1.25)
    }
}

/// One family of models.
struct Model {
    /// Model id prefix.
    prefix: &'static str,
    prices: Prices,
    /// Input tokens a request may carry.
    context_window: u64,
}

const K200: u64 = 200_000;
const M1: u64 = 1_000_000;
/// Gemini's windows: 1,048,576 input tokens.
const GEMINI: u64 = 1_048_576;

/// Anthropic: 5-minute cache writes at 1.25 × input, reads at 0.1 × input.
const fn claude(prefix: &'static str, input: f64, output: f64, window: u64) -> Model {
    Model {
        prefix,
        prices: Prices {
            input,
            output,
            cache_read: Some(input / 10.0),
            cache_write: Some(input * 1.25),
        },
        context_window: window,
    }
}

/// OpenAI and Gemini: cached input at its listed price; caching is automatic and writing
/// to the cache costs nothing extra (their usage never reports cache writes).
const fn cached(prefix: &'static str, input: f64, cached: f64, output: f64, window: u64) -> Model {
    Model {
        prefix,
        prices: Prices {
            input,
            output,
            cache_read: Some(cached),
            cache_write: Some(input),
        },
        context_window: window,
    }
}

/// The table. Windows are the input a request may carry: Claude Sonnet 4/4.5 have 200k
/// (their 1M beta needs a header seer does not send), Opus/Sonnet 4.6 and Opus 4.7 1M;
/// GPT-5 models take 272k of input in their 400k window (the rest is output).
const TABLE: &[Model] = &[
    claude("claude-opus-4-7", 5.0, 25.0, M1),
    claude("claude-opus-4-6", 5.0, 25.0, M1),
    claude("claude-opus-4-5", 5.0, 25.0, K200),
    claude("claude-opus-4-1", 15.0, 75.0, K200),
    claude("claude-opus-4", 15.0, 75.0, K200),
    claude("claude-sonnet-4-6", 3.0, 15.0, M1),
    claude("claude-sonnet-4", 3.0, 15.0, K200),
    claude("claude-3-7-sonnet", 3.0, 15.0, K200),
    claude("claude-3-5-sonnet", 3.0, 15.0, K200),
    claude("claude-haiku-4-5", 1.0, 5.0, K200),
    claude("claude-3-5-haiku", 0.8, 4.0, K200),
    claude("claude-3-haiku", 0.25, 1.25, K200),
    claude("claude-3-opus", 15.0, 75.0, K200),
    cached("gpt-5.4", 2.5, 0.25, 15.0, 272_000),
    cached("gpt-5.2", 1.75, 0.175, 14.0, 272_000),
    cached("gpt-5.1", 1.25, 0.125, 10.0, 272_000),
    cached("gpt-5-chat", 1.25, 0.125, 10.0, 128_000),
    cached("gpt-5-nano", 0.05, 0.005, 0.4, 272_000),
    cached("gpt-5-mini", 0.25, 0.025, 2.0, 272_000),
    cached("gpt-5", 1.25, 0.125, 10.0, 272_000),
    cached("gpt-4.1-nano", 0.1, 0.025, 0.4, 1_047_576),
    cached("gpt-4.1-mini", 0.4, 0.1, 1.6, 1_047_576),
    cached("gpt-4.1", 2.0, 0.5, 8.0, 1_047_576),
    cached("gpt-4o-mini", 0.15, 0.075, 0.6, 128_000),
    cached("gpt-4o", 2.5, 1.25, 10.0, 128_000),
    cached("o4-mini", 1.1, 0.275, 4.4, K200),
    cached("o3-mini", 1.1, 0.55, 4.4, K200),
    cached("o3", 2.0, 0.5, 8.0, K200),
    cached("o1", 15.0, 7.5, 60.0, K200),
    cached("gemini-3.1-pro", 2.0, 0.2, 12.0, GEMINI),
    cached("gemini-3-pro", 2.0, 0.2, 12.0, GEMINI),
    cached("gemini-3-flash", 0.5, 0.05, 3.0, GEMINI),
    cached("gemini-2.5-pro", 1.25, 0.125, 10.0, GEMINI),
    cached("gemini-2.5-flash-lite", 0.1, 0.01, 0.4, GEMINI),
    cached("gemini-2.5-flash", 0.3, 0.03, 2.5, GEMINI),
    cached("gemini-2.0-flash-lite", 0.075, 0.01875, 0.3, GEMINI),
    cached("gemini-2.0-flash", 0.1, 0.025, 0.4, GEMINI),
];

/// The table's entry for `model`, ignoring an `org/` prefix as OpenRouter uses and
/// Gemini's `models/`.
fn lookup(model: &str) -> Option<&'static Model> {
    let bare = model.rsplit('/').next().unwrap_or(model);
    TABLE
        .iter()
        .filter(|m| bare.starts_with(m.prefix))
        .max_by_key(|m| m.prefix.len())
}

/// The table's prices for `model`.
pub fn prices_for(model: &str) -> Option<Prices> {
    lookup(model).map(|m| m.prices)
}

/// The most input tokens a request to `model` may carry (its context window, less what
/// is reserved for output where the provider reserves it: 272k of GPT-5's 400k), from the
/// table; `None` for a model it does not know (a local server's, say): give
/// `context_window` then.
pub fn context_window(model: &str) -> Option<u64> {
    lookup(model).map(|m| m.context_window)
}

/// Estimated cost of `usage` in USD.
pub fn cost(usage: &Usage, prices: &Prices) -> f64 {
    let m = 1_000_000.0;
    (usage.input_tokens as f64 * prices.input
        + usage.output_tokens as f64 * prices.output
        + usage.cache_read_tokens as f64 * prices.cache_read()
        + usage.cache_write_tokens as f64 * prices.cache_write())
        / m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prices(input: f64, output: f64, cache_read: f64, cache_write: f64) -> Prices {
        Prices {
            input,
            output,
            cache_read: Some(cache_read),
            cache_write: Some(cache_write),
        }
    }

    #[test]
    fn longest_prefix_wins() {
        assert_eq!(
            prices_for("gpt-4.1-mini-2025-04-14"),
            Some(prices(0.4, 1.6, 0.1, 0.4))
        );
        assert_eq!(prices_for("gpt-4.1"), Some(prices(2.0, 8.0, 0.5, 2.0)));
        assert_eq!(
            prices_for("openai/gpt-4o-mini"),
            Some(prices(0.15, 0.6, 0.075, 0.15))
        );
        assert_eq!(
            prices_for("claude-sonnet-4-5-20250929"),
            Some(prices(3.0, 15.0, 0.3, 3.75))
        );
        assert_eq!(
            prices_for("claude-opus-4-6"),
            Some(prices(5.0, 25.0, 0.5, 6.25))
        );
        assert_eq!(
            prices_for("models/gemini-2.5-flash"),
            Some(prices(0.3, 2.5, 0.03, 0.3))
        );
        assert_eq!(prices_for("llama-3-8b"), None);
    }

    #[test]
    fn context_windows() {
        let got: Vec<(&str, Option<u64>)> = [
            "claude-sonnet-4-5-20250929",
            "claude-sonnet-4-6",
            "claude-opus-4-1-20250805",
            "claude-opus-4-6",
            "claude-haiku-4-5",
            "anthropic/claude-3-5-haiku-latest",
            "gpt-4o-2024-08-06",
            "gpt-4.1-mini",
            "gpt-5",
            "gpt-5-chat-latest",
            "o3",
            "o4-mini",
            "gemini-3-pro-preview",
            "gemini-2.5-pro",
            "models/gemini-2.0-flash",
            "llama-3-8b",
        ]
        .into_iter()
        .map(|m| (m, context_window(m)))
        .collect();
        assert_eq!(
            got,
            [
                ("claude-sonnet-4-5-20250929", Some(200_000)),
                ("claude-sonnet-4-6", Some(1_000_000)),
                ("claude-opus-4-1-20250805", Some(200_000)),
                ("claude-opus-4-6", Some(1_000_000)),
                ("claude-haiku-4-5", Some(200_000)),
                ("anthropic/claude-3-5-haiku-latest", Some(200_000)),
                ("gpt-4o-2024-08-06", Some(128_000)),
                ("gpt-4.1-mini", Some(1_047_576)),
                ("gpt-5", Some(272_000)),
                ("gpt-5-chat-latest", Some(128_000)),
                ("o3", Some(200_000)),
                ("o4-mini", Some(200_000)),
                ("gemini-3-pro-preview", Some(1_048_576)),
                ("gemini-2.5-pro", Some(1_048_576)),
                ("models/gemini-2.0-flash", Some(1_048_576)),
                ("llama-3-8b", None),
            ]
        );
    }

    #[test]
    fn cost_uses_each_models_cache_prices() {
        let usage = Usage {
            input_tokens: 1_000_000,
            output_tokens: 100_000,
            cache_read_tokens: 2_000_000,
            cache_write_tokens: 400_000,
        };
        let cost_of = |model: &str| cost(&usage, &prices_for(model).unwrap());
        // Sonnet: 3 + 1.5 + 2 × 0.3 + 0.4 × 3.75.
        assert!((cost_of("claude-sonnet-4-5") - 6.6).abs() < 1e-9);
        // GPT-4.1: 2 + 0.8 + 2 × 0.5 + 0.4 × 2 (a write is plain input).
        assert!((cost_of("gpt-4.1") - 4.6).abs() < 1e-9);
        // Gemini 2.5 Pro: 1.25 + 1 + 2 × 0.125 + 0.4 × 1.25.
        assert!((cost_of("gemini-2.5-pro") - 3.0).abs() < 1e-9);
        // An override without cache prices: reads 0.1 ×, writes 1.25 × input.
        let custom = Prices {
            input: 2.0,
            output: 10.0,
            cache_read: None,
            cache_write: None,
        };
        assert!((cost(&usage, &custom) - (2.0 + 1.0 + 0.4 + 1.0)).abs() < 1e-9);
    }
}
