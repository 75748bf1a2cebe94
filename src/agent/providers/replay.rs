//! The `replay` provider: answers each request with the next assistant turn recorded in
//! a seer transcript (`"type": "response"` lines with their `content`), so the loop runs
//! the recorded tool calls for real against the current session. Offline and free: it
//! reports no token usage.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context as _, bail};
use async_trait::async_trait;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::blocks::{block_from_json, block_to_json};
use super::{Block, Provider, Request, Response, StopReason, StreamEvent, Usage};

/// Replays a transcript's assistant turns in order.
#[derive(Debug)]
pub struct ReplayProvider {
    path: PathBuf,
    turns: Vec<(Vec<Block>, StopReason)>,
    next: AtomicUsize,
}

fn stop_from(s: &str) -> StopReason {
    match s {
        "end_turn" => StopReason::EndTurn,
        "tool_use" => StopReason::ToolUse,
        "max_tokens" => StopReason::MaxTokens,
        other => StopReason::Other(other.to_string()),
    }
}

impl ReplayProvider {
    /// Reads the assistant turns of the transcript at `path`.
    pub fn from_transcript(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the replay transcript {}", path.display()))?;
        let mut turns = vec![];
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not a JSON line", path.display(), i + 1))?;
            if v.get("type").and_then(Value::as_str) != Some("response") {
                continue;
            }
            let Some(content) = v.get("content").and_then(Value::as_array) else {
                bail!(
                    "{}:{}: this response has no `content` (written by an older seer?); it cannot be replayed",
                    path.display(),
                    i + 1
                );
            };
            let blocks = content
                .iter()
                .map(block_from_json)
                .collect::<anyhow::Result<Vec<_>>>()
                .with_context(|| format!("{}:{}", path.display(), i + 1))?;
            let stop = v
                .get("stop_reason")
                .and_then(Value::as_str)
                .unwrap_or("end_turn");
            turns.push((blocks, stop_from(stop)));
        }
        if turns.is_empty() {
            bail!(
                "{} has no assistant turns to replay: give the transcript of an agent run (outputs/<run>/transcripts/<name>.jsonl)",
                path.display()
            );
        }
        Ok(Self {
            path: path.to_path_buf(),
            turns,
            next: AtomicUsize::new(0),
        })
    }

    /// How many assistant turns the transcript holds.
    pub fn len(&self) -> usize {
        self.turns.len()
    }

    /// True when there is nothing to replay (never, once built).
    pub fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }
}

#[async_trait]
impl Provider for ReplayProvider {
    fn name(&self) -> &str {
        "replay"
    }

    async fn stream(
        &self,
        _body: &Value,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
        cancel: &CancellationToken,
    ) -> anyhow::Result<Response> {
        if cancel.is_cancelled() {
            bail!("cancelled");
        }
        let i = self.next.fetch_add(1, Ordering::SeqCst);
        let Some((content, stop)) = self.turns.get(i) else {
            bail!(
                "replay: {} has {} assistant turns and the agent asked for turn {}",
                self.path.display(),
                self.turns.len(),
                i + 1
            );
        };
        for b in content {
            match b {
                Block::Text(t) => on_event(StreamEvent::TextDelta(t.clone())),
                Block::Thinking { text, .. } => on_event(StreamEvent::ThinkingDelta(text.clone())),
                Block::ToolUse { id, name, .. } => on_event(StreamEvent::ToolUseStart {
                    id: id.clone(),
                    name: name.clone(),
                }),
                Block::ToolResult { .. } => {}
            }
        }
        let resp = Response {
            content: content.clone(),
            stop_reason: stop.clone(),
            usage: Usage::default(),
            raw: json!({"replayed_turn": i + 1, "from": self.path.display().to_string()}),
        };
        on_event(StreamEvent::Done(resp.clone()));
        Ok(resp)
    }

    fn request_body(&self, req: &Request) -> Value {
        let messages: Vec<Value> = req
            .messages
            .iter()
            .map(|m| {
                json!({"role": match m.role { super::Role::User => "user", super::Role::Assistant => "assistant" },
                       "content": m.content.iter().map(block_to_json).collect::<Vec<_>>()})
            })
            .collect();
        json!({"replay": self.path.display().to_string(), "system": req.system, "messages": messages,
               "tools": req.tools.iter().map(|t| &t.name).collect::<Vec<_>>()})
    }
}
