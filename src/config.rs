//! Strict conversion of script values (Rhai maps) into typed Rust configs.
//!
//! Every config struct uses `#[serde(deny_unknown_fields)]`; this module turns serde's
//! errors into messages that name the field (with its path, e.g. `models[0].name`), the
//! expected type, and for a misspelt key or enum value the closest valid one.

use std::time::Duration;

use serde::de::DeserializeOwned;

/// A config that did not fit its type. The message is complete and user-facing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Deserializes `value` into `T`; `what` names the config in messages ("Sandbox config").
pub fn from_json<T: DeserializeOwned>(
    what: &str,
    value: serde_json::Value,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner().to_string();
        ConfigError(describe(what, &path, &inner))
    })
}

/// Deserializes a Rhai value (usually an object map) into `T`.
pub fn from_dynamic<T: DeserializeOwned>(
    what: &str,
    value: &rhai::Dynamic,
) -> Result<T, ConfigError> {
    let json: serde_json::Value = rhai::serde::from_dynamic(value)
        .map_err(|e| ConfigError(format!("{what}: {}", strip_position(&e.to_string()))))?;
    from_json(what, json)
}

/// A timeout given in seconds, which must be more than zero. The error names `field`
/// (`field `timeout`: must be ...`); callers put what it belongs to in front, like the other
/// config errors (`exec options: field `timeout`: ...`).
pub fn positive_seconds(field: &str, secs: f64) -> Result<Duration, String> {
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!(
            "field `{field}`: must be a positive number of seconds, not {secs}"
        ));
    }
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("field `{field}`: {secs} seconds is more than a timer can hold"))
}

/// Removes the ` (line L, position C)` rhai appends to its messages.
pub fn strip_position(msg: &str) -> String {
    match msg.rfind(" (line ") {
        Some(i) if msg.ends_with(')') => msg[..i].to_string(),
        _ => msg.to_string(),
    }
}

/// Names between backticks in a serde message, in order.
fn backticked(msg: &str) -> Vec<&str> {
    msg.split('`').skip(1).step_by(2).collect()
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

fn describe(what: &str, path: &str, msg: &str) -> String {
    for (prefix, noun) in [("unknown field", "field"), ("unknown variant", "value")] {
        if msg.starts_with(prefix) {
            // For an unknown field the path ends with the field itself: show its parent.
            let parent = if noun == "field" {
                path.rsplit_once('.').map(|(p, _)| p).unwrap_or("")
            } else {
                path
            };
            let at = if parent == "." || parent.is_empty() {
                String::new()
            } else {
                format!(" in `{parent}`")
            };
            let names = backticked(msg);
            let (bad, valid) = match names.split_first() {
                Some((bad, valid)) => (*bad, valid),
                None => ("?", &[][..]),
            };
            let mut out = format!("{what}: unknown {noun} `{bad}`{at}");
            if let Some(best) = closest(bad, valid.iter().copied()) {
                out.push_str(&format!("; did you mean `{best}`?"));
            }
            if !valid.is_empty() {
                let list: Vec<String> = valid.iter().map(|v| format!("`{v}`")).collect();
                out.push_str(&format!(" (valid {noun}s: {})", list.join(", ")));
            }
            return out;
        }
    }
    if path == "." || path.is_empty() {
        format!("{what}: {msg}")
    } else {
        format!("{what}: field `{path}`: {msg}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        name: String,
        #[serde(default)]
        hidden: bool,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Cli,
        Notebook,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        #[serde(default)]
        gpu: Option<String>,
        #[serde(default)]
        gpu_count: u32,
        #[serde(default)]
        models: Vec<Inner>,
        #[serde(default)]
        mode: Option<Mode>,
    }

    fn err(v: serde_json::Value) -> String {
        from_json::<Outer>("Sandbox config", v).unwrap_err().0
    }

    #[test]
    fn messages_name_field_path_type_and_suggestion() {
        let cases = [
            (
                json!({"gpus": "A100"}),
                "Sandbox config: unknown field `gpus`; did you mean `gpu`? (valid fields: `gpu`, `gpu_count`, `models`, `mode`)",
            ),
            (
                json!({"gpu": 5}),
                "Sandbox config: field `gpu`: invalid type: integer `5`, expected a string",
            ),
            (
                json!({"models": [{"name": "a"}, {"nam": "b"}]}),
                "Sandbox config: unknown field `nam` in `models[1]`; did you mean `name`? (valid fields: `name`, `hidden`)",
            ),
            (
                json!({"models": [{"hidden": true}]}),
                "Sandbox config: field `models[0]`: missing field `name`",
            ),
            (
                json!({"mode": "notbook"}),
                "Sandbox config: unknown value `notbook` in `mode`; did you mean `notebook`? (valid values: `cli`, `notebook`)",
            ),
            (
                json!({"gpu_count": -1}),
                "Sandbox config: field `gpu_count`: invalid value: integer `-1`, expected u32",
            ),
            (
                json!("A100"),
                "Sandbox config: invalid type: string \"A100\", expected struct Outer",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(err(input.clone()), want, "input {input}");
        }
    }

    #[test]
    fn valid_config_parses() {
        let got: Outer = from_json(
            "x",
            json!({"gpu": null, "models": [{"name": "m", "hidden": true}]}),
        )
        .unwrap();
        assert_eq!(
            got,
            Outer {
                gpu: None,
                gpu_count: 0,
                models: vec![Inner {
                    name: "m".into(),
                    hidden: true
                }],
                mode: None
            }
        );
    }

    #[test]
    fn timeouts_must_be_positive_seconds() {
        assert_eq!(
            positive_seconds("timeout", 1.5),
            Ok(Duration::from_millis(1500))
        );
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(
                positive_seconds("timeout", bad).unwrap_err(),
                format!("field `timeout`: must be a positive number of seconds, not {bad}")
            );
        }
        assert_eq!(
            positive_seconds("t", 1e30).unwrap_err(),
            "field `t`: 1000000000000000000000000000000 seconds is more than a timer can hold"
        );
    }

    #[test]
    fn far_misspellings_get_no_suggestion() {
        assert_eq!(closest("zzz", ["gpu", "models"]), None);
        assert_eq!(
            closest("pyhton_version", ["python_version", "gpu"]),
            Some("python_version")
        );
    }
}
