//! Cost estimates: a price table per model family (USD per million tokens), matched by
//! the longest prefix of the model id so dated ids (`claude-sonnet-4-5-20250929`) find
//! their family. A script can override it with `prices` in `run_agent`. The table is an
//! estimate as published by the providers in 2025-2026; check their pages for billing.

use serde::Deserialize;

use super::providers::Usage;

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    pub input: f64,
    pub output: f64,
    /// Prompt-cache reads; defaults to a tenth of `input`.
    #[serde(default)]
    pub cache_read: Option<f64>,
    /// Prompt-cache writes; defaults to 1.25 × `input`.
    #[serde(default)]
    pub cache_write: Option<f64>,
}

const fn p(input: f64, output: f64) -> Prices {
    Prices {
        input,
        output,
        cache_read: None,
        cache_write: None,
    }
}

/// (model id prefix, prices).
const TABLE: &[(&str, Prices)] = &[
    ("claude-opus-4-5", p(5.0, 25.0)),
    ("claude-opus-4-1", p(15.0, 75.0)),
    ("claude-opus-4", p(15.0, 75.0)),
    ("claude-sonnet-4", p(3.0, 15.0)),
    ("claude-3-7-sonnet", p(3.0, 15.0)),
    ("claude-3-5-sonnet", p(3.0, 15.0)),
    ("claude-haiku-4-5", p(1.0, 5.0)),
    ("claude-3-5-haiku", p(0.8, 4.0)),
    ("gpt-5-nano", p(0.05, 0.4)),
    ("gpt-5-mini", p(0.25, 2.0)),
    ("gpt-5", p(1.25, 10.0)),
    ("gpt-4.1-nano", p(0.1, 0.4)),
    ("gpt-4.1-mini", p(0.4, 1.6)),
    ("gpt-4.1", p(2.0, 8.0)),
    ("gpt-4o-mini", p(0.15, 0.6)),
    ("gpt-4o", p(2.5, 10.0)),
    ("o4-mini", p(1.1, 4.4)),
    ("o3", p(2.0, 8.0)),
];

/// The table's prices for `model` (ignoring an `org/` prefix as OpenRouter uses).
pub fn prices_for(model: &str) -> Option<Prices> {
    let bare = model.rsplit('/').next().unwrap_or(model);
    TABLE
        .iter()
        .filter(|(prefix, _)| bare.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, p)| *p)
}

/// Estimated cost of `usage` in USD.
pub fn cost(usage: &Usage, prices: &Prices) -> f64 {
    let m = 1_000_000.0;
    usage.input_tokens as f64 * prices.input / m
        + usage.output_tokens as f64 * prices.output / m
        + usage.cache_read_tokens as f64 * prices.cache_read.unwrap_or(prices.input * 0.1) / m
        + usage.cache_write_tokens as f64 * prices.cache_write.unwrap_or(prices.input * 1.25) / m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_and_cost_adds_up() {
        assert_eq!(prices_for("gpt-4.1-mini-2025-04-14"), Some(p(0.4, 1.6)));
        assert_eq!(prices_for("gpt-4.1"), Some(p(2.0, 8.0)));
        assert_eq!(prices_for("openai/gpt-4o-mini"), Some(p(0.15, 0.6)));
        assert_eq!(prices_for("claude-sonnet-4-5-20250929"), Some(p(3.0, 15.0)));
        assert_eq!(prices_for("llama-3-8b"), None);
        let usage = Usage {
            input_tokens: 1_000_000,
            output_tokens: 100_000,
            cache_read_tokens: 1_000_000,
            cache_write_tokens: 0,
        };
        let c = cost(&usage, &p(3.0, 15.0));
        assert!((c - (3.0 + 1.5 + 0.3)).abs() < 1e-9, "{c}");
    }
}
