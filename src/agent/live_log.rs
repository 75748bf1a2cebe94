//! The live terminal log of an agent run, in the spirit of Seer's: the agent's text, each
//! tool call with its arguments, results shortened, turn and token counters. On a terminal
//! a spinner (indicatif) shows the turn and token counters while the model works and the
//! lines print above it; otherwise plain lines go to stderr. Every line starts with the
//! agent's name so parallel agents stay readable.

use std::io::IsTerminal;

use std::sync::Mutex;

use indicatif::ProgressBar;

use crate::progress::spinner;

/// Where the log goes. The spinner exists only while a turn runs, so it never draws
/// over a prompt (the interactive chat's).
pub struct LiveLog {
    name: String,
    enabled: bool,
    tty: bool,
    bar: Mutex<Option<ProgressBar>>,
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
        Self {
            name: name.to_string(),
            enabled,
            tty: enabled && std::io::stderr().is_terminal(),
            bar: Mutex::new(None),
        }
    }

    fn line(&self, text: &str) {
        if !self.enabled {
            return;
        }
        let line = format!("[{}] {text}", self.name);
        match self.bar.lock().ok().as_deref().and_then(Option::as_ref) {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// The spinner's status (turn, tokens), starting the spinner on a terminal.
    pub fn status(&self, text: &str) {
        if !self.tty {
            return;
        }
        let msg = format!("[{}] {text}", self.name);
        if let Ok(mut bar) = self.bar.lock() {
            match bar.as_ref() {
                Some(b) => b.set_message(msg),
                None => *bar = Some(spinner(msg)),
            }
        }
    }

    /// Removes the spinner until the next turn.
    pub fn pause(&self) {
        if let Some(bar) = self.bar.lock().ok().and_then(|mut b| b.take()) {
            bar.finish_and_clear();
        }
    }

    pub fn turn(&self, turn: u32, max: u32, input: u64, output: u64) {
        let s = format!("turn {turn}/{max} · {input} in / {output} out tokens");
        if self.tty {
            self.status(&format!("{s} · waiting for the model"));
        } else {
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
        self.pause();
        self.line(summary);
    }
}

impl Drop for LiveLog {
    fn drop(&mut self) {
        self.pause();
    }
}
