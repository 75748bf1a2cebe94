//! The one transcript writer of every provider (seer's own loop and `claude-code`): a JSONL
//! file in the run folder, one event per line, each message written once, so a transcript
//! grows with the run, not with its square.
//!
//! Records: `start` (provider, model, system prompt, tools), `user` (a user message),
//! `request` (a turn's request: how many messages and the estimated context size, not the
//! body), `response` (the assistant's content, stop reason, usage), `tool_result`,
//! `compaction` (what was cleared, summarised or dropped, tokens before and after),
//! `limit` (a limit reached), `error`, `interrupted`, and `done` (turns, tokens, `cost_usd`,
//! stop reason). The `replay` provider reads `response`s and follows `compaction`s; the
//! view renders all of them.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::providers::Usage;
use crate::secrets::Redactor;

/// Appends one JSON object per line; flushed after each.
pub struct Transcript {
    file: std::fs::File,
    path: PathBuf,
    /// The live view's copy (when the view is on).
    live: Option<crate::live::Feed>,
    redactor: Redactor,
    /// Bytes written so far (for the benchmark of growth per turn).
    bytes: u64,
}

impl Transcript {
    /// A new transcript at `path` (its folder made); every line goes through `redactor`
    /// (which also applies the process-wide secret values, see [`crate::secrets`]).
    pub fn create(path: &Path, redactor: Redactor) -> Result<Self> {
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)?;
        }
        let file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            live: crate::live::Feed::open(crate::live::Kind::Transcript, path),
            redactor,
            bytes: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The redactor every line goes through.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Writes one event, secret values redacted.
    pub fn write(&mut self, event: &Value) -> Result<()> {
        let mut line = self.redactor.redact(&serde_json::to_string(event)?);
        if let Some(live) = &self.live {
            live.push(&line);
        }
        line.push('\n');
        self.bytes += line.len() as u64;
        self.file
            .write_all(line.as_bytes())
            .with_context(|| format!("writing {}", self.path.display()))
    }

    /// The first record: who runs, with which system prompt and tools.
    pub fn start(
        &mut self,
        provider: &str,
        model: Option<&str>,
        system: &str,
        tools: &[String],
    ) -> Result<()> {
        self.write(
            &json!({"type": "start", "provider": provider, "model": model,
            "system": system, "tools": tools}),
        )
    }

    /// A user message added to the conversation.
    pub fn user(&mut self, turn: u32, text: &str) -> Result<()> {
        self.write(&json!({"type": "user", "turn": turn, "text": text}))
    }

    /// The last record: how the run ended and what it cost. `cost_usd` is the same field
    /// for every provider.
    pub fn done(
        &mut self,
        turns: u32,
        stop_reason: &str,
        usage: &Usage,
        model: Option<&str>,
        cost_usd: Option<f64>,
    ) -> Result<()> {
        self.write(&json!({"type": "done", "turns": turns, "stop_reason": stop_reason,
            "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "cache_read_tokens": usage.cache_read_tokens, "cache_write_tokens": usage.cache_write_tokens,
            "model": model, "cost_usd": cost_usd}))
    }
}
