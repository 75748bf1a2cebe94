//! The live terminal log of an agent run, in the spirit of Seer's: the agent's text, each
//! tool call with its arguments, results shortened, turn and token counters. On a terminal
//! a spinner (indicatif) shows the turn and token counters while the model works and the
//! lines print above it; otherwise plain lines go to stderr. Every line starts with the
//! agent's name so parallel agents stay readable.

use std::io::IsTerminal;

use indicatif::ProgressBar;

use crate::sandbox::progress::spinner;

/// Where the log goes; `None` when disabled.
pub struct LiveLog {
    name: String,
    enabled: bool,
    bar: Option<ProgressBar>,
}

/// Shortens `s` to `n` characters on one line, saying how much was cut.
pub fn one_line(s: &str, n: usize) -> String {
    let flat: String = s
        .trim()
        .chars()
        .map(|c| if c == '\n' { '⏎' } else { c })
        .collect();
    let count = flat.chars().count();
    if count <= n {
        flat
    } else {
        format!(
            "{}… [{} more chars]",
            flat.chars().take(n).collect::<String>(),
            count - n
        )
    }
}

impl LiveLog {
    pub fn new(name: &str, enabled: bool) -> Self {
        let bar = (enabled && std::io::stderr().is_terminal())
            .then(|| spinner(format!("[{name}] starting")));
        Self {
            name: name.to_string(),
            enabled,
            bar,
        }
    }

    fn line(&self, text: &str) {
        if !self.enabled {
            return;
        }
        let line = format!("[{}] {text}", self.name);
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// The spinner's status (turn, tokens); plain output shows it only at turn starts.
    pub fn status(&self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("[{}] {text}", self.name));
        }
    }

    pub fn turn(&self, turn: u32, max: u32, input: u64, output: u64) {
        let s = format!("turn {turn}/{max} · {input} in / {output} out tokens");
        self.status(&format!("{s} · waiting for the model"));
        if self.bar.is_none() {
            self.line(&s);
        }
    }

    pub fn text(&self, text: &str) {
        if !text.trim().is_empty() {
            self.line(text.trim());
        }
    }

    pub fn thinking(&self, text: &str) {
        self.line(&format!("(thinking) {}", one_line(text, 200)));
    }

    pub fn tool_call(&self, name: &str, input: &serde_json::Value) {
        self.status(&format!("running {name}"));
        self.line(&format!("→ {name} {}", one_line(&input.to_string(), 300)));
    }

    pub fn tool_result(&self, is_error: bool, text: &str) {
        let mark = if is_error { "✗" } else { "←" };
        self.line(&format!("{mark} {}", one_line(text, 300)));
    }

    pub fn done(&self, summary: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.line(summary);
    }
}

impl Drop for LiveLog {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
