//! Keeping a long run inside its model's context window, and inside its limits.
//!
//! Compaction (`context: #{ strategy, threshold, keep_last, max_tool_result, summary_model,
//! trim_keep }` of `run_agent`) acts on the conversation before a request when its
//! estimated size passes the threshold (and once more when the provider still answers
//! "prompt too long"):
//! - `edit`: tool results older than the last `keep_last` turns are replaced by a stub
//!   saying where the output lives (a notebook cell, which the notebook's `read_cell`
//!   tool shows again). The notebook is the agent's memory, so nothing is lost for good.
//! - `summary`: the model (or `summary_model`) summarises everything but the last turns;
//!   the history becomes the first user message + the summary + the last turns (tool
//!   calls and their results stay paired).
//! - `trim`: the oldest turns are dropped until `trim_keep` of the input is left.
//! - `auto` (default): `edit`, then `summary` when that is not enough.
//! - `none`: everything is sent, for experiments that must see it all.
//!
//! Sizes are estimates in tokens: the last request's measured context (input, cache reads
//! and writes, and its output) plus about one token per four bytes of what came after it.

use std::collections::HashMap;

use anyhow::{Result, bail};
use serde::Deserialize;

use super::providers::{Block, Message, ResultPart, Role};

/// Tokens per byte of the estimate (about four bytes a token for English and code).
const BYTES_PER_TOKEN: u64 = 4;
/// What an image counts for in the estimate.
const IMAGE_TOKENS: u64 = 1_600;
/// The prefix of a stub left by `edit`: a result that starts with it is already cleared.
pub const CLEARED: &str = "[seer: this result was cleared";

/// How a run keeps its context small.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    #[default]
    Auto,
    Edit,
    Summary,
    Trim,
    None,
}

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Auto => "auto",
            Strategy::Edit => "edit",
            Strategy::Summary => "summary",
            Strategy::Trim => "trim",
            Strategy::None => "none",
        }
    }
}

/// `run_agent`'s `context` map.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextConfig {
    #[serde(default)]
    pub strategy: Strategy,
    /// When to compact: a fraction of the window (`0.7`, the default) or a token count
    /// (`40000`).
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Turns (assistant messages with what answered them) kept whole; default 3.
    #[serde(default)]
    pub keep_last: Option<u32>,
    /// Characters of one tool result the model sees; the rest is cut with a note saying
    /// where the whole output is. Default 100000 (about 25k tokens, Claude Code's cap).
    #[serde(default)]
    pub max_tool_result: Option<u64>,
    /// The model that writes summaries (default: the agent's own).
    #[serde(default)]
    pub summary_model: Option<String>,
    /// What fraction of the input `trim` keeps (default 0.5).
    #[serde(default)]
    pub trim_keep: Option<f64>,
}

impl ContextConfig {
    pub fn check(&self) -> Result<()> {
        if let Some(t) = self.threshold
            && !(t > 0.0 && t.is_finite())
        {
            bail!(
                "context: field `threshold`: {t} is neither a fraction of the window (like 0.7) nor a token count (like 40000)"
            );
        }
        if let Some(k) = self.trim_keep
            && !(k > 0.0 && k < 1.0)
        {
            bail!("context: field `trim_keep`: {k} is not a fraction between 0 and 1");
        }
        if self.max_tool_result == Some(0) {
            bail!("context: field `max_tool_result`: must be at least 1 character");
        }
        Ok(())
    }

    pub fn keep_last(&self) -> usize {
        self.keep_last.unwrap_or(3) as usize
    }

    pub fn max_tool_result(&self) -> usize {
        self.max_tool_result.unwrap_or(100_000) as usize
    }

    pub fn trim_keep(&self) -> f64 {
        self.trim_keep.unwrap_or(0.5)
    }

    /// The size in tokens past which the run compacts, for a window of `window` tokens.
    pub fn threshold_tokens(&self, window: u64) -> u64 {
        match self.threshold {
            Some(t) if t > 1.0 => t as u64,
            Some(t) => (window as f64 * t) as u64,
            None => (window as f64 * 0.7) as u64,
        }
    }
}

/// `run_agent`'s `limits` map: when one is reached, the run ends cleanly before its next
/// turn, with the limit as its stop reason.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Model turns (as `max_turns`).
    #[serde(default)]
    pub turns: Option<u32>,
    /// Tokens in all: input (cached or not) and output.
    #[serde(default)]
    pub tokens: Option<u64>,
    /// Estimated cost in USD.
    #[serde(default)]
    pub cost_usd: Option<f64>,
    /// Seconds since the run started.
    #[serde(default)]
    pub wall_s: Option<f64>,
    /// Tool calls.
    #[serde(default)]
    pub tool_calls: Option<u32>,
}

/// Where a run stands, for [`Limits::reached`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub turns: u32,
    pub tokens: u64,
    pub cost_usd: Option<f64>,
    pub wall_s: f64,
    pub tool_calls: u32,
}

impl Limits {
    pub fn check(&self) -> Result<()> {
        if self.turns == Some(0) {
            bail!("limits: field `turns`: must be at least 1");
        }
        if self.tool_calls == Some(0) {
            bail!("limits: field `tool_calls`: must be at least 1");
        }
        if self.tokens == Some(0) {
            bail!("limits: field `tokens`: must be at least 1");
        }
        for (field, v) in [("cost_usd", self.cost_usd), ("wall_s", self.wall_s)] {
            if let Some(v) = v
                && !(v > 0.0 && v.is_finite())
            {
                bail!("limits: field `{field}`: {v} is not a positive number");
            }
        }
        Ok(())
    }

    /// The limit reached by `p` (its stop reason and a line for the terminal), if any.
    pub fn reached(&self, p: &Progress) -> Option<(&'static str, String)> {
        if let Some(t) = self.turns
            && p.turns >= t
        {
            return Some(("turn_limit", format!("reached its limit of {t} turns")));
        }
        if let Some(t) = self.tokens
            && p.tokens >= t
        {
            return Some((
                "token_limit",
                format!("reached its limit of {t} tokens ({} used)", p.tokens),
            ));
        }
        if let (Some(c), Some(spent)) = (self.cost_usd, p.cost_usd)
            && spent >= c
        {
            return Some((
                "cost_limit",
                format!("reached its cost limit of ${c} (${spent:.4} spent)"),
            ));
        }
        if let Some(w) = self.wall_s
            && p.wall_s >= w
        {
            return Some(("time_limit", format!("reached its time limit of {w} s")));
        }
        if let Some(n) = self.tool_calls
            && p.tool_calls >= n
        {
            return Some((
                "tool_call_limit",
                format!("reached its limit of {n} tool calls"),
            ));
        }
        None
    }
}

/// Estimated tokens of a block.
fn block_tokens(b: &Block) -> u64 {
    let bytes = match b {
        Block::Text(t) => t.len(),
        Block::Thinking { text, .. } => text.len(),
        Block::ToolUse { name, input, .. } => name.len() + input.to_string().len(),
        Block::ToolResult { content, .. } => {
            return content
                .iter()
                .map(|p| match p {
                    ResultPart::Text(t) => t.len() as u64 / BYTES_PER_TOKEN,
                    ResultPart::Image { .. } => IMAGE_TOKENS,
                })
                .sum::<u64>()
                + 8;
        }
    };
    bytes as u64 / BYTES_PER_TOKEN + 4
}

/// Estimated tokens of messages.
pub fn estimate(messages: &[Message]) -> u64 {
    messages
        .iter()
        .map(|m| 4 + m.content.iter().map(block_tokens).sum::<u64>())
        .sum()
}

/// The index of the first message of the last `keep` turns (an assistant message), or
/// `messages.len()` when `keep` is 0.
fn tail_start(messages: &[Message], keep: usize) -> usize {
    if keep == 0 {
        return messages.len();
    }
    let assistants: Vec<usize> = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| m.role == Role::Assistant)
        .map(|(i, _)| i)
        .collect();
    if assistants.len() <= keep {
        return assistants.first().copied().unwrap_or(messages.len());
    }
    assistants[assistants.len() - keep]
}

/// The notebook cell a result is the output of (`[cell N, …` as the notebook tools start
/// their results).
fn cell_of(text: &str) -> Option<u64> {
    let rest = text.strip_prefix("[cell ")?;
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

fn text_of(content: &[ResultPart]) -> String {
    content
        .iter()
        .filter_map(|p| match p {
            ResultPart::Text(t) => Some(t.as_str()),
            ResultPart::Image { .. } => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The stub that replaces a cleared result of `tool` whose text was `text`.
fn stub(tool: &str, text: &str, chars: usize) -> String {
    match cell_of(text) {
        Some(cell) => format!(
            "{CLEARED} from the context to make room ({chars} characters). It is the output of notebook cell {cell}: the notebook's read_cell tool (cell_index {cell}) shows it again.]"
        ),
        None => format!(
            "{CLEARED} from the context to make room ({chars} characters of {tool}); call the tool again if you need it.]"
        ),
    }
}

/// What `edit` cleared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cleared {
    pub results: usize,
    pub chars: usize,
}

/// `edit`: replaces the tool results before the last `keep` turns by stubs.
pub fn clear_old_results(messages: &mut [Message], keep: usize) -> Cleared {
    let names: HashMap<String, String> = messages
        .iter()
        .flat_map(|m| m.content.iter())
        .filter_map(|b| match b {
            Block::ToolUse { id, name, .. } => Some((id.clone(), name.clone())),
            _ => None,
        })
        .collect();
    let end = tail_start(messages, keep);
    let mut cleared = Cleared::default();
    for m in messages[..end].iter_mut().filter(|m| m.role == Role::User) {
        for b in m.content.iter_mut() {
            if let Block::ToolResult {
                tool_use_id,
                content,
                ..
            } = b
            {
                let text = text_of(content);
                if text.starts_with(CLEARED) {
                    continue;
                }
                let chars = text.chars().count();
                let tool = names.get(tool_use_id).map_or("a tool", String::as_str);
                *content = vec![ResultPart::Text(stub(tool, &text, chars))];
                cleared.results += 1;
                cleared.chars += chars;
            }
        }
    }
    cleared
}

/// `trim`: drops the oldest turns (after the first user message) until the estimate is at
/// most `target`, keeping the last turn. Returns how many turns were dropped.
pub fn trim(messages: &mut Vec<Message>, target: u64) -> usize {
    let mut dropped = 0;
    // messages[0] is the task; turns are (assistant, user) pairs after it.
    while estimate(messages) > target
        && messages.len() > 3
        && messages[1].role == Role::Assistant
        && messages[2].role == Role::User
    {
        messages.drain(1..3);
        dropped += 1;
    }
    if dropped > 0 {
        let note = format!("[seer: {dropped} earlier turn(s) were dropped to make room]");
        let first = &mut messages[0].content;
        first.retain(|b| !matches!(b, Block::Text(t) if t.starts_with("[seer: ") && t.contains("dropped to make room")));
        first.push(Block::Text(note));
    }
    dropped
}

/// Where `summary` splits the history: the messages before the index are summarised
/// (none: nothing to summarise).
pub fn summary_split(messages: &[Message], keep: usize) -> Option<usize> {
    let at = tail_start(messages, keep.max(1));
    (at > 1 && messages.first().is_some_and(|m| m.role == Role::User)).then_some(at)
}

/// The history as text for the summariser: every message, long results shortened.
pub fn render_for_summary(messages: &[Message], per_result: usize) -> String {
    let mut out = String::new();
    for m in messages {
        let who = match m.role {
            Role::User => "USER",
            Role::Assistant => "ASSISTANT",
        };
        for b in &m.content {
            match b {
                Block::Text(t) => out.push_str(&format!("{who}: {t}\n\n")),
                Block::Thinking { .. } => {}
                Block::ToolUse { name, input, .. } => {
                    out.push_str(&format!("{who} called {name} with {input}\n\n"))
                }
                Block::ToolResult {
                    content, is_error, ..
                } => {
                    let t = text_of(content);
                    let short: String = t.chars().take(per_result).collect();
                    let more = t.chars().count().saturating_sub(per_result);
                    out.push_str(&format!(
                        "RESULT{}: {short}{}\n\n",
                        if *is_error { " (error)" } else { "" },
                        if more > 0 {
                            format!(" […{more} more characters]")
                        } else {
                            String::new()
                        }
                    ));
                }
            }
        }
    }
    out
}

/// The system prompt of a summary request.
pub const SUMMARY_SYSTEM: &str = "You condense the working history of an AI research agent so that it can continue its investigation with less context. Write a dense summary: the task, what was tried, the key results with their exact numbers, names, cell indices and file paths, what failed and why, open questions, and the next steps planned. Do not invent anything; keep every fact the agent will need.";

/// `summary`: the history becomes the first user message with the summary added, then the
/// messages from `split` on.
pub fn apply_summary(messages: &mut Vec<Message>, split: usize, summary: &str) {
    let mut first = messages[0].clone();
    first.content.retain(|b| matches!(b, Block::Text(_)));
    first.content.push(Block::Text(format!(
        "[seer: the earlier part of this conversation was summarised to make room; the notebook keeps every cell, and its read_cell tool shows any of them again]\n\n{summary}"
    )));
    let tail = messages.split_off(split);
    *messages = std::iter::once(first).chain(tail).collect();
}

/// Cuts a tool result whose text is over `cap` characters, with a line saying how much was
/// cut and where the whole output is.
pub fn cap_result(content: &mut Vec<ResultPart>, cap: usize) -> Option<usize> {
    let text = text_of(content);
    let total = text.chars().count();
    if total <= cap {
        return None;
    }
    let kept: String = text.chars().take(cap).collect();
    let cut = total - cap;
    let whole = match cell_of(&text) {
        Some(cell) => {
            format!("the whole output is in the notebook, cell {cell} (read_cell pages through it)")
        }
        None => "the transcript keeps nothing more; narrow the call to see the rest".to_string(),
    };
    let images: Vec<ResultPart> = content
        .drain(..)
        .filter(|p| matches!(p, ResultPart::Image { .. }))
        .collect();
    content.push(ResultPart::Text(format!(
        "{kept}\n[seer: cut {cut} of {total} characters here; {whole}]"
    )));
    content.extend(images);
    Some(cut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(t: &str) -> Message {
        Message {
            role: Role::User,
            content: vec![Block::Text(t.into())],
        }
    }
    fn call(id: &str) -> Message {
        Message {
            role: Role::Assistant,
            content: vec![Block::ToolUse {
                id: id.into(),
                name: "nb__execute_code".into(),
                input: json!({"code": "x"}),
            }],
        }
    }
    fn result(id: &str, text: &str) -> Message {
        Message {
            role: Role::User,
            content: vec![Block::ToolResult {
                tool_use_id: id.into(),
                content: vec![ResultPart::Text(text.into())],
                is_error: false,
            }],
        }
    }
    fn history(n: usize) -> Vec<Message> {
        let mut m = vec![user("task")];
        for i in 0..n {
            m.push(call(&format!("t{i}")));
            m.push(result(
                &format!("t{i}"),
                &format!("[cell {i}, execution_count {}]\n{}", i + 1, "x".repeat(400)),
            ));
        }
        m
    }
    fn result_text(m: &Message) -> String {
        match &m.content[0] {
            Block::ToolResult { content, .. } => text_of(content),
            _ => String::new(),
        }
    }

    #[test]
    fn edit_clears_all_but_the_last_turns_with_stubs_naming_the_cell() {
        let mut m = history(5);
        let before = estimate(&m);
        let c = clear_old_results(&mut m, 2);
        assert_eq!(
            c,
            Cleared {
                results: 3,
                chars: 3 * 428
            }
        );
        assert_eq!(
            result_text(&m[2]),
            "[seer: this result was cleared from the context to make room (428 characters). It is the output of notebook cell 0: the notebook's read_cell tool (cell_index 0) shows it again.]"
        );
        assert!(result_text(&m[8]).starts_with("[cell 3, execution_count 4]"));
        assert!(estimate(&m) < before);
        // Clearing again finds nothing new.
        assert_eq!(clear_old_results(&mut m, 2), Cleared::default());
    }

    #[test]
    fn trim_drops_whole_turns_and_says_so() {
        let mut m = history(6);
        let target = estimate(&m) / 2;
        let dropped = trim(&mut m, target);
        assert_eq!(dropped, 4);
        assert_eq!(m.len(), 1 + 2 * 2);
        assert_eq!(
            m[0].content,
            vec![
                Block::Text("task".into()),
                Block::Text("[seer: 4 earlier turn(s) were dropped to make room]".into())
            ]
        );
        assert_eq!(m[1].role, Role::Assistant);
        assert!(super::super::run::check_history(&m).is_ok());
    }

    #[test]
    fn summary_keeps_the_task_and_the_last_turns_paired() {
        let mut m = history(4);
        let split = summary_split(&m, 2).unwrap();
        assert_eq!(split, 5);
        apply_summary(&mut m, split, "SUMMARY");
        assert_eq!(m.len(), 5);
        assert_eq!(m[0].content.len(), 2);
        assert!(super::super::run::check_history(&m).is_ok());
        assert_eq!(summary_split(&history(1), 2), None);
    }

    #[test]
    fn a_long_result_is_cut_with_where_the_rest_is() {
        let mut c = vec![ResultPart::Text(format!(
            "[cell 7, execution_count 9]\n{}",
            "y".repeat(100)
        ))];
        assert_eq!(cap_result(&mut c, 40), Some(88));
        assert_eq!(
            c,
            vec![ResultPart::Text(format!(
                "[cell 7, execution_count 9]\n{}\n[seer: cut 88 of 128 characters here; the whole output is in the notebook, cell 7 (read_cell pages through it)]",
                "y".repeat(12)
            ))]
        );
        let mut short = vec![ResultPart::Text("ok".into())];
        assert_eq!(cap_result(&mut short, 40), None);
    }

    #[test]
    fn limits_name_what_was_reached() {
        let l = Limits {
            cost_usd: Some(0.5),
            tool_calls: Some(3),
            ..Default::default()
        };
        let mut p = Progress {
            cost_usd: Some(0.1),
            tool_calls: 2,
            ..Default::default()
        };
        assert_eq!(l.reached(&p), None);
        p.tool_calls = 3;
        assert_eq!(
            l.reached(&p),
            Some((
                "tool_call_limit",
                "reached its limit of 3 tool calls".into()
            ))
        );
        p.cost_usd = Some(0.6);
        assert_eq!(
            l.reached(&p),
            Some((
                "cost_limit",
                "reached its cost limit of $0.5 ($0.6000 spent)".into()
            ))
        );
        assert_eq!(
            format!(
                "{:#}",
                Limits {
                    wall_s: Some(-1.0),
                    ..Default::default()
                }
                .check()
                .unwrap_err()
            ),
            "limits: field `wall_s`: -1 is not a positive number"
        );
    }
}
