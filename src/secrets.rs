//! Keeping secret values out of everything seer writes: logs, errors, records.

/// Replaces every known secret value in a text with `***`.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    values: Vec<String>,
}

impl Redactor {
    /// Values shorter than 4 characters are not redacted: they would mangle ordinary text
    /// and are not secrets worth the name.
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut values: Vec<String> = values.into_iter().filter(|v| v.len() >= 4).collect();
        // Longest first, so a secret containing another is replaced whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Self { values }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), "***");
            }
        }
        out
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
}
