//! Keeping secret values out of everything seer writes: logs, errors, records, notebooks,
//! transcripts, and the tool results an agent's provider receives.
//!
//! Two sets of values are redacted:
//! - each sandbox's declared `secrets` (its [`Redactor`], built with its environment), and
//! - the process-wide set: every value given to [`protect`] (each sandbox's secret values
//!   are added when its environment is built, each provider key when a provider reads it)
//!   plus the provider keys of [`PROVIDER_KEY_VARS`], read from the environment at each
//!   redaction (so a key loaded from `.env` after start-up is covered too).
//!
//! Every [`Redactor`] applies both, so a value protected anywhere in the process is
//! redacted everywhere; [`redact`] applies the process-wide set alone (for output that
//! belongs to no sandbox, e.g. a third-party MCP server's tool results).

use std::sync::RwLock;

use serde_json::Value;

/// What a secret value is replaced with.
pub const MASK: &str = "***";

/// Environment variables holding provider API keys, redacted wherever they are set.
pub const PROVIDER_KEY_VARS: &[&str] = &["ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY"];

/// Values shorter than this are not redacted: they would mangle ordinary text and are not
/// secrets worth the name.
const MIN_LEN: usize = 4;

static PROTECTED: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Adds a value to the process-wide set (from now on redacted by every redactor).
pub fn protect(value: &str) {
    let value = value.trim();
    if value.len() < MIN_LEN {
        return;
    }
    if let Ok(mut set) = PROTECTED.write()
        && !set.iter().any(|v| v == value)
    {
        set.push(value.to_string());
    }
}

/// Protects the value of an environment variable, if it is set.
pub fn protect_env(name: &str) {
    if let Ok(v) = std::env::var(name) {
        protect(&v);
    }
}

/// The process-wide values: protected ones and the provider keys set in the environment.
fn global_values() -> Vec<String> {
    let mut values = PROTECTED.read().map(|s| s.clone()).unwrap_or_default();
    for name in PROVIDER_KEY_VARS {
        if let Ok(v) = std::env::var(name) {
            let v = v.trim();
            if v.len() >= MIN_LEN {
                values.push(v.to_string());
            }
        }
    }
    values
}

/// Replaces the process-wide secret values in a text.
pub fn redact(text: &str) -> String {
    Redactor::default().redact(text)
}

/// Replaces every known secret value in a text with `***`.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    values: Vec<String>,
}

impl Redactor {
    /// A redactor for these values and the process-wide ones. Values shorter than 4
    /// characters are skipped.
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let values = values.into_iter().filter(|v| v.len() >= MIN_LEN).collect();
        Self { values }
    }

    /// Every value this redactor masks, longest first (so a secret containing another is
    /// replaced whole).
    fn all_values(&self) -> Vec<String> {
        let mut values: Vec<String> = self.values.clone();
        values.extend(global_values());
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        values
    }

    /// Redacts texts a reader sees one after another (a cell's stdout and stderr, in the
    /// order they were printed): each on its own, then every secret that only appears
    /// when they are joined, masked in each part it spans. A secret printed half to
    /// stdout and half to stderr is caught this way.
    pub fn redact_joined(&self, parts: &mut [String]) {
        for p in parts.iter_mut() {
            let r = self.redact(p);
            if r != *p {
                *p = r;
            }
        }
        let joined: String = parts.concat();
        let mut hits: Vec<(usize, usize)> = vec![];
        for v in self.all_values() {
            hits.extend(
                joined
                    .match_indices(v.as_str())
                    .map(|(i, _)| (i, i + v.len())),
            );
        }
        if hits.is_empty() {
            return;
        }
        let mut start = 0;
        for p in parts.iter_mut() {
            let end = start + p.len();
            // The ranges of this part that a hit covers, in the part's own offsets.
            let mut cut: Vec<(usize, usize)> = hits
                .iter()
                .filter(|(a, b)| *a < end && *b > start)
                .map(|(a, b)| ((*a).max(start) - start, (*b).min(end) - start))
                .collect();
            cut.sort();
            if !cut.is_empty() {
                let mut out = String::with_capacity(p.len());
                let mut at = 0;
                for (a, b) in cut {
                    if b <= at {
                        continue;
                    }
                    let a = a.max(at);
                    out.push_str(&p[at..a]);
                    out.push_str(MASK);
                    at = b;
                }
                out.push_str(&p[at..]);
                *p = out;
            }
            start = end;
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let values = self.all_values();
        let mut out = text.to_string();
        for v in &values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), MASK);
            }
        }
        out
    }

    /// Redacts every string in a JSON value (keys included), in place.
    pub fn redact_json(&self, value: &mut Value) {
        redact_json_with(value, &|t| self.redact(t));
    }
}

/// Applies `redact` to every string in a JSON value (keys included), in place.
pub fn redact_json_with(value: &mut Value, redact: &dyn Fn(&str) -> String) {
    match value {
        Value::String(s) => {
            let r = redact(s);
            if r != *s {
                *s = r;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact_json_with(v, redact)),
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let rk = redact(&k);
                if rk != k
                    && let Some(v) = map.remove(&k)
                {
                    map.insert(rk.clone(), v);
                }
                if let Some(v) = map.get_mut(&rk) {
                    redact_json_with(v, redact);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_every_occurrence_and_skips_short_values() {
        let r = Redactor::new([
            "hunter22".to_string(),
            "ab".to_string(),
            "hunter22-long".to_string(),
        ]);
        assert_eq!(
            r.redact("key=hunter22 again hunter22-long ab"),
            "key=*** again *** ab"
        );
    }

    #[test]
    fn protected_values_are_redacted_by_every_redactor() {
        let value = "protected-value-5f1c2a";
        assert_eq!(redact(value), value);
        protect(value);
        protect("ab");
        assert_eq!(redact(&format!("x {value} ab")), "x *** ab");
        let own = Redactor::new(["own-secret-9d3e".to_string()]);
        assert_eq!(own.redact(&format!("{value} own-secret-9d3e")), "*** ***");
    }

    #[test]
    fn a_secret_split_between_parts_is_masked_in_each() {
        let r = Redactor::new(["split-secret-4c1d".to_string(), "whole-1234".to_string()]);
        let mut parts = vec![
            "out: split-".to_string(),
            "secret".to_string(),
            "-4c1d and whole-1234 é".to_string(),
            "nothing here".to_string(),
        ];
        r.redact_joined(&mut parts);
        assert_eq!(parts, ["out: ***", "***", "*** and *** é", "nothing here"]);
        let mut clean = vec!["a".to_string(), "b".to_string()];
        r.redact_joined(&mut clean);
        assert_eq!(clean, ["a", "b"]);
    }

    #[test]
    fn json_strings_and_keys_are_redacted() {
        let r = Redactor::new(["json-secret-77aa".to_string()]);
        let mut v = serde_json::json!({
            "text/plain": ["a json-secret-77aa b"],
            "json-secret-77aa": {"n": 1, "s": "json-secret-77aa"},
        });
        r.redact_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"text/plain": ["a *** b"], "***": {"n": 1, "s": "***"}})
        );
    }
}
