//! The agent loop: send the conversation and the tools of every MCP server to the
//! provider, run the tool calls it asks for, feed the results back, until the model ends
//! its turn, `max_turns` is reached, or the run is cancelled. Every request and response
//! goes to a JSONL transcript as it happens.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub use super::config::{AgentConfig, DEFAULT_USER_MESSAGE, build_provider};
use super::context::{self, Progress, Strategy};
use super::live_log::{LiveLog, one_line};
use super::mcp_client::{McpConnections, ToolOutput, ToolPart};
use super::pricing::cost;
use super::providers::blocks::block_to_json;
use super::providers::{
    Block, Message, Options, Provider, Request, ResultPart, Role, StopReason, StreamEvent,
    ToolSpec, Usage,
};
use super::transcript::Transcript;
use crate::config::positive_seconds;

/// After this many identical failures of one call (same tool, same arguments), the
/// result tells the model to stop repeating it.
const REPEAT_WARNING_AFTER: u32 = 2;

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentResult {
    pub final_text: String,
    pub turns: u32,
    pub usage: Usage,
    pub stop_reason: String,
    pub transcript: PathBuf,
    /// The model asked for (provider default when none was given).
    pub model: Option<String>,
    /// Estimated cost in USD; `None` when the model has no known price.
    pub cost_usd: Option<f64>,
}

/// Every tool call answered exactly once, in order, right after the assistant turn that
/// made it: providers reject any other history.
pub fn check_history(messages: &[Message]) -> Result<()> {
    for (i, m) in messages.iter().enumerate() {
        let calls: Vec<&str> = m
            .content
            .iter()
            .filter_map(|b| match b {
                Block::ToolUse { id, .. } => Some(id.as_str()),
                _ => None,
            })
            .collect();
        if calls.is_empty() {
            continue;
        }
        let Some(next) = messages.get(i + 1) else {
            bail!("history: the tool calls of message {i} have no results");
        };
        let answers: Vec<&str> = next
            .content
            .iter()
            .filter_map(|b| match b {
                Block::ToolResult { tool_use_id, .. } => Some(tool_use_id.as_str()),
                _ => None,
            })
            .collect();
        let unique: HashSet<&&str> = answers.iter().collect();
        if answers != calls || unique.len() != answers.len() {
            bail!(
                "history: message {i} calls tools {calls:?} but message {} answers {answers:?}",
                i + 1
            );
        }
    }
    Ok(())
}

fn result_parts(out: &ToolOutput) -> Vec<ResultPart> {
    out.parts
        .iter()
        .map(|p| match p {
            ToolPart::Text(t) => ResultPart::Text(t.clone()),
            ToolPart::Image { mime_type, data } => ResultPart::Image {
                media_type: mime_type.clone(),
                data_base64: data.clone(),
            },
        })
        .collect()
}

/// Replaces the process-wide secret values (the run's sandboxes' `secrets` and the
/// provider keys) in a tool result's text; images are left as they are.
fn redact_output(out: &mut ToolOutput) {
    for p in &mut out.parts {
        if let ToolPart::Text(t) = p {
            let r = crate::secrets::redact(t);
            if r != *t {
                *t = r;
            }
        }
    }
}

fn stop_name(s: &StopReason) -> String {
    match s {
        StopReason::EndTurn => "end_turn".into(),
        StopReason::ToolUse => "tool_use".into(),
        StopReason::MaxTokens => "max_tokens".into(),
        StopReason::Other(o) => o.clone(),
    }
}

/// Where an interactive chat gets the user's messages, and how it learns that a turn
/// can be interrupted.
pub trait ChatInput: Send {
    /// The user's next message; `None` ends the chat.
    fn next_message(&mut self) -> Option<String>;
    /// A turn started: cancelling `turn` interrupts it, not the chat.
    fn turn_started(&mut self, turn: &CancellationToken);
    /// The turn ended; `interrupted` if it was cancelled.
    fn turn_ended(&mut self, interrupted: bool);
}

type OnEvent<'a> = &'a mut (dyn FnMut(Value) -> Result<()> + Send);

async fn open(
    cfg: &AgentConfig,
    base_dir: &Path,
    transcript_path: &Path,
    cancel: &CancellationToken,
) -> Result<(Transcript, McpConnections)> {
    let transcript = Transcript::create(transcript_path, crate::secrets::Redactor::default())?;
    let mut conns = if cfg.mcp_config.is_null() {
        McpConnections::connect(&json!({}), base_dir, cancel).await?
    } else {
        McpConnections::connect(&cfg.mcp_config, base_dir, cancel).await?
    };
    let deadline = match cfg.tool_timeout {
        Some(t) => Some(positive_seconds("tool_timeout", t).map_err(|e| anyhow!(e))?),
        None => None,
    };
    conns.set_call_deadline(deadline);
    Ok((transcript, conns))
}

fn record_error(
    result: &Result<AgentResult>,
    transcript: &mut Transcript,
    on_event: OnEvent<'_>,
    cancel: &CancellationToken,
) {
    if let Err(e) = result {
        let msg = crate::secrets::redact(&format!("{e:#}"));
        let _ = transcript.write(&json!({"type": "error", "message": msg}));
        if !cancel.is_cancelled() {
            let _ = on_event(json!({"type": "error", "message": msg}));
        }
    }
}

/// Runs the loop. `on_event` receives `#{type: text|tool_call|tool_result|usage|done, ...}`
/// maps as JSON values while the agent runs; an error from it stops the run.
pub async fn run(
    cfg: &AgentConfig,
    provider: &dyn Provider,
    base_dir: &Path,
    transcript_path: &Path,
    on_event: OnEvent<'_>,
    cancel: &CancellationToken,
) -> Result<AgentResult> {
    let (mut transcript, mut conns) = open(cfg, base_dir, transcript_path, cancel).await?;
    let result = async {
        let mut chat = Chat::new(cfg, provider, &conns, &mut transcript)?;
        chat.send(cfg.first_user_message(), on_event, cancel)
            .await?;
        chat.finish(on_event)
    }
    .await;
    conns.close().await;
    record_error(&result, &mut transcript, on_event, cancel);
    result
}

/// A chat: `user_message` (if given) is the first message, then `input` gives the next
/// ones until it returns `None`. Cancelling a turn's token (Esc, Ctrl-C) stops that turn
/// only; the history stays valid (an interrupted assistant turn is dropped) and the
/// chat goes on. Cancelling `cancel` ends the chat.
pub async fn run_interactive(
    cfg: &AgentConfig,
    provider: &dyn Provider,
    base_dir: &Path,
    transcript_path: &Path,
    input: &mut dyn ChatInput,
    on_event: OnEvent<'_>,
    cancel: &CancellationToken,
) -> Result<AgentResult> {
    let (mut transcript, mut conns) = open(cfg, base_dir, transcript_path, cancel).await?;
    let result = async {
        let mut chat = Chat::new(cfg, provider, &conns, &mut transcript)?;
        let mut first = cfg.user_message.clone().filter(|p| !p.trim().is_empty());
        loop {
            let msg = match first.take() {
                Some(m) => m,
                None => match input.next_message() {
                    Some(m) => m,
                    None => {
                        chat.stop = "user_ended".into();
                        break;
                    }
                },
            };
            if msg.trim().is_empty() {
                continue;
            }
            let turn = cancel.child_token();
            input.turn_started(&turn);
            let r = chat.send(msg, on_event, &turn).await;
            chat.log.pause();
            let interrupted = turn.is_cancelled();
            input.turn_ended(interrupted);
            match r {
                Ok(()) => {}
                Err(_) if interrupted && !cancel.is_cancelled() => chat.interrupted()?,
                Err(e) => return Err(e),
            }
        }
        chat.finish(on_event)
    }
    .await;
    conns.close().await;
    record_error(&result, &mut transcript, on_event, cancel);
    result
}

/// The conversation and its accounting.
struct Chat<'a> {
    cfg: &'a AgentConfig,
    provider: &'a dyn Provider,
    conns: &'a McpConnections,
    transcript: &'a mut Transcript,
    tools: Vec<ToolSpec>,
    system: String,
    messages: Vec<Message>,
    usage: Usage,
    log: LiveLog,
    failures: HashMap<(String, String), u32>,
    final_text: String,
    stop: String,
    turns: u32,
    /// The context window compaction keeps to (`None`: unknown, no compaction).
    window: Option<u64>,
    /// The last request's measured size (tokens, output included) and how many messages
    /// it covered; `None` after a compaction changed what it measured.
    measured: Option<(usize, u64)>,
    started: Instant,
    tool_calls: u32,
}

impl<'a> Chat<'a> {
    fn new(
        cfg: &'a AgentConfig,
        provider: &'a dyn Provider,
        conns: &'a McpConnections,
        transcript: &'a mut Transcript,
    ) -> Result<Self> {
        let tools: Vec<ToolSpec> = conns
            .tools()
            .iter()
            .map(|t| ToolSpec {
                name: t.qualified.clone(),
                description: t.description.clone(),
                input_schema: t.input_schema.clone(),
            })
            .collect();
        if tools.is_empty() && cfg.tools.is_none() {
            bail!(
                "the agent would have no tools: the MCP servers of `mcp_config` offer none; say `tools: \"none\"` for an agent without tools on purpose"
            );
        }
        let system = cfg.system()?;
        let names: Vec<String> = tools.iter().map(|t| t.name.clone()).collect();
        transcript.start(provider.name(), cfg.model.as_deref(), &system, &names)?;
        // The replay provider sends nothing anywhere: it has no window to keep to.
        let window = match provider.name() {
            "replay" => None,
            _ => cfg.context_window.or_else(|| {
                cfg.effective_model()
                    .and_then(|m| super::pricing::context_window(&m))
            }),
        };
        Ok(Self {
            cfg,
            provider,
            conns,
            transcript,
            tools,
            system,
            messages: vec![],
            usage: Usage::default(),
            log: LiveLog::new(cfg.name.as_deref().unwrap_or("agent"), cfg.live_log),
            failures: HashMap::new(),
            final_text: String::new(),
            stop: "max_turns".into(),
            turns: 0,
            window,
            measured: None,
            started: Instant::now(),
            tool_calls: 0,
        })
    }

    /// Where the run stands against its limits.
    fn progress(&self) -> Progress {
        let u = &self.usage;
        Progress {
            turns: self.turns,
            tokens: u.input_tokens + u.output_tokens + u.cache_read_tokens + u.cache_write_tokens,
            cost_usd: self.cfg.prices().map(|p| cost(u, &p)),
            wall_s: self.started.elapsed().as_secs_f64(),
            tool_calls: self.tool_calls,
        }
    }

    /// The estimated size of the next request in tokens.
    fn context_size(&self) -> u64 {
        match self.measured {
            Some((n, tokens)) if n <= self.messages.len() => {
                tokens + context::estimate(&self.messages[n..])
            }
            _ => {
                context::estimate(&self.messages)
                    + (self.system.len() as u64) / 4
                    + self
                        .tools
                        .iter()
                        .map(|t| {
                            (t.description.len() + t.input_schema.to_string().len()) as u64 / 4
                        })
                        .sum::<u64>()
            }
        }
    }

    /// Compacts the history when it has grown past the threshold (or, with `force`, after
    /// the provider said the prompt is too long). Returns whether anything changed.
    async fn compact(&mut self, force: bool, cancel: &CancellationToken) -> Result<bool> {
        let cfg = &self.cfg.context;
        let Some(window) = self.window else {
            return Ok(false);
        };
        let before = self.context_size();
        let threshold = if force {
            (before as f64 * 0.6) as u64
        } else {
            cfg.threshold_tokens(window)
        };
        if before <= threshold || cfg.strategy == Strategy::None {
            return Ok(false);
        }
        let keep = if force {
            cfg.keep_last().min(1)
        } else {
            cfg.keep_last()
        };
        let began = Instant::now();
        let mut record = json!({"type": "compaction", "turn": self.turns, "strategy": cfg.strategy.name(),
            "tokens_before": before, "threshold": threshold, "window": window});
        if matches!(cfg.strategy, Strategy::Auto | Strategy::Edit) {
            let c = context::clear_old_results(&mut self.messages, keep);
            record["cleared_results"] = json!(c.results);
            record["cleared_chars"] = json!(c.chars);
            self.measured = None;
        }
        if cfg.strategy == Strategy::Trim {
            let target = (before as f64 * cfg.trim_keep()) as u64;
            let dropped = context::trim(&mut self.messages, target.min(threshold));
            record["dropped_turns"] = json!(dropped);
            self.measured = None;
        }
        let summarise = match cfg.strategy {
            Strategy::Summary => true,
            Strategy::Auto => self.context_size() > threshold,
            _ => false,
        };
        if summarise && let Some(split) = context::summary_split(&self.messages, keep) {
            let summary = self.summarise(split, window, cancel).await?;
            record["summarised_messages"] = json!(split);
            record["summary"] = json!(summary);
            context::apply_summary(&mut self.messages, split, &summary);
            self.measured = None;
        }
        let after = self.context_size();
        record["tokens_after"] = json!(after);
        record["took_ms"] = json!((began.elapsed().as_secs_f64() * 100_000.0).round() / 100.0);
        self.transcript.write(&record)?;
        self.log.done(&format!(
            "context: compacted ({}) {before} → {after} tokens of a {window}-token window",
            cfg.strategy.name()
        ));
        Ok(after < before)
    }

    /// Asks the model (or `summary_model`) for a summary of the messages before `split`.
    async fn summarise(
        &mut self,
        split: usize,
        window: u64,
        cancel: &CancellationToken,
    ) -> Result<String> {
        // What the summariser reads must fit in its window too.
        let budget_chars = (window as usize).saturating_mul(2);
        let mut text = context::render_for_summary(&self.messages[..split], 2_000);
        if text.len() > budget_chars {
            let cut = text.len() - budget_chars;
            let at = text.ceil_char_boundary(cut);
            text = format!(
                "[…the oldest {cut} characters are left out…]\n{}",
                &text[at..]
            );
        }
        let req = Request {
            model: self
                .cfg
                .context
                .summary_model
                .clone()
                .or_else(|| self.cfg.model.clone())
                .unwrap_or_default(),
            system: context::SUMMARY_SYSTEM.to_string(),
            messages: vec![Message {
                role: Role::User,
                content: vec![Block::Text(format!(
                    "Here is the history to summarise:\n\n{text}\nWrite the summary now."
                ))],
            }],
            tools: vec![],
            max_tokens: self.cfg.max_tokens.min(8_000),
            // A one-off request: a cache write would never be read (and OpenAI and Gemini
            // ignore the option).
            options: Options {
                cache: Some(false),
                ..Options::default()
            },
        };
        let body = self.provider.request_body(&req);
        let mut ignore = |_: StreamEvent| {};
        let resp = self
            .provider
            .stream(&body, &mut ignore, cancel)
            .await
            .context("summarising the history to make room in the context window")?;
        self.add_usage(&resp.usage);
        let summary: String = resp
            .content
            .iter()
            .filter_map(|b| match b {
                Block::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        if summary.trim().is_empty() {
            bail!("summarising the history to make room: the model returned no text");
        }
        Ok(summary)
    }

    fn add_usage(&mut self, u: &Usage) {
        let usage = &mut self.usage;
        usage.input_tokens += u.input_tokens;
        usage.output_tokens += u.output_tokens;
        usage.cache_read_tokens += u.cache_read_tokens;
        usage.cache_write_tokens += u.cache_write_tokens;
    }

    /// Ends the run at a limit: the stop reason, a line on the terminal and in the
    /// transcript.
    fn limit_reached(&mut self, stop: &str, why: &str) -> Result<()> {
        self.stop = stop.to_string();
        self.log.done(&format!("limit: the run {why}; stopping"));
        self.transcript.write(
            &json!({"type": "limit", "turn": self.turns, "stop_reason": stop, "message": why}),
        )
    }

    /// Records that the user interrupted the current turn.
    fn interrupted(&mut self) -> Result<()> {
        self.transcript
            .write(&json!({"type": "interrupted", "turn": self.turns}))
    }

    /// Adds a user message (joined to the last one when that is the user's, e.g. the
    /// tool results before an interruption) and runs turns until the model ends its
    /// turn or `max_turns` turns were run for this message.
    async fn send(
        &mut self,
        text: String,
        on_event: OnEvent<'_>,
        cancel: &CancellationToken,
    ) -> Result<()> {
        self.transcript.user(self.turns + 1, &text)?;
        match self.messages.last_mut() {
            Some(last) if last.role == Role::User => last.content.push(Block::Text(text)),
            _ => self.messages.push(Message {
                role: Role::User,
                content: vec![Block::Text(text)],
            }),
        }
        self.stop = "max_turns".into();
        let cfg = self.cfg;
        for _ in 0..cfg.max_turns {
            if cancel.is_cancelled() {
                bail!("cancelled");
            }
            if let Some((stop, why)) = cfg.limits.reached(&self.progress()) {
                self.limit_reached(stop, &why)?;
                break;
            }
            self.compact(false, cancel).await?;
            self.turns += 1;
            let turns = self.turns;
            self.log.turn(
                turns,
                cfg.max_turns,
                self.usage.input_tokens,
                self.usage.output_tokens,
            );
            let resp = self.request(turns, cancel).await?;
            self.transcript.write(&json!({"type": "response", "turn": turns, "stop_reason": stop_name(&resp.stop_reason),
                "content": resp.content.iter().map(block_to_json).collect::<Vec<_>>(),
                "usage": {"input_tokens": resp.usage.input_tokens, "output_tokens": resp.usage.output_tokens,
                          "cache_read_tokens": resp.usage.cache_read_tokens, "cache_write_tokens": resp.usage.cache_write_tokens},
                "raw": resp.raw}))?;
            self.add_usage(&resp.usage);
            // What this request measured, its answer included: the base of the next
            // estimate (the assistant message is pushed below).
            let u = &resp.usage;
            self.measured = Some((
                self.messages.len() + 1,
                u.input_tokens + u.cache_read_tokens + u.cache_write_tokens + u.output_tokens,
            ));
            let usage = &self.usage;
            on_event(
                json!({"type": "usage", "turn": turns, "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}),
            )?;
            let mut results = vec![];
            let mut text = String::new();
            for block in &resp.content {
                match block {
                    Block::Text(t) => {
                        text.push_str(t);
                        self.log.text(t);
                        on_event(json!({"type": "text", "text": t}))?;
                    }
                    Block::Thinking { text: t, .. } => {
                        self.log.thinking(t);
                        on_event(json!({"type": "thinking", "text": t}))?
                    }
                    Block::ToolUse { id, name, input } => {
                        on_event(
                            json!({"type": "tool_call", "id": id, "name": name, "input": input}),
                        )?;
                        // Every call of the turn is answered (the history must stay
                        // valid); past the limit without running.
                        if cfg.limits.tool_calls.is_some_and(|n| self.tool_calls >= n) {
                            let text = format!(
                                "[seer] Not run: the run reached its limit of {} tool calls.",
                                self.tool_calls
                            );
                            self.transcript.write(&json!({"type": "tool_result", "turn": turns, "id": id, "name": name, "is_error": true, "text": text}))?;
                            results.push(Block::ToolResult {
                                tool_use_id: id.clone(),
                                content: vec![ResultPart::Text(text)],
                                is_error: true,
                            });
                            continue;
                        }
                        self.tool_calls += 1;
                        let (out, repeated) = self.call_tool(name, input, cancel).await;
                        if cancel.is_cancelled() {
                            bail!("cancelled");
                        }
                        let mut record = json!({"type": "tool_result", "turn": turns, "id": id, "name": name, "is_error": out.is_error, "text": out.text()});
                        let images: Vec<Value> = out
                            .parts
                            .iter()
                            .filter_map(|p| match p {
                                ToolPart::Image { mime_type, data } => {
                                    Some(json!({"media_type": mime_type, "data": data}))
                                }
                                ToolPart::Text(_) => None,
                            })
                            .collect();
                        if !images.is_empty() {
                            record["images"] = json!(images);
                        }
                        let mut content = result_parts(&out);
                        if cfg.context.strategy != Strategy::None
                            && let Some(cut) =
                                context::cap_result(&mut content, cfg.context.max_tool_result())
                        {
                            record["cut_chars"] = json!(cut);
                        }
                        self.transcript.write(&record)?;
                        let mut ev = json!({"type": "tool_result", "id": id, "name": name, "is_error": out.is_error, "text": out.text()});
                        if repeated > 1 {
                            ev["repeated_failures"] = json!(repeated);
                        }
                        on_event(ev)?;
                        results.push(Block::ToolResult {
                            tool_use_id: id.clone(),
                            content,
                            is_error: out.is_error,
                        });
                    }
                    Block::ToolResult { .. } => {}
                }
            }
            self.messages.push(Message {
                role: Role::Assistant,
                content: resp.content.clone(),
            });
            if !text.is_empty() {
                self.final_text = text;
            }
            if results.is_empty() {
                self.stop = stop_name(&resp.stop_reason);
                break;
            }
            self.messages.push(Message {
                role: Role::User,
                content: results,
            });
            if let Some(n) = cfg.limits.tool_calls
                && self.tool_calls >= n
            {
                let why = format!("reached its limit of {n} tool calls");
                self.limit_reached("tool_call_limit", &why)?;
                break;
            }
        }
        Ok(())
    }

    /// Sends the conversation as turn `turn`'s request. When the provider answers that the
    /// prompt is too long, compacts and retries once (or, with `strategy: "none"`, fails
    /// saying so).
    async fn request(
        &mut self,
        turn: u32,
        cancel: &CancellationToken,
    ) -> Result<super::providers::Response> {
        let cfg = self.cfg;
        let mut retried = false;
        loop {
            check_history(&self.messages)?;
            let req = Request {
                model: cfg.model.clone().unwrap_or_default(),
                system: self.system.clone(),
                messages: self.messages.clone(),
                tools: self.tools.clone(),
                max_tokens: cfg.max_tokens,
                options: cfg.kwargs.clone(),
            };
            let body = self.provider.request_body(&req);
            self.transcript
                .write(&json!({"type": "request", "turn": turn,
                "messages": self.messages.len(), "context_tokens": self.context_size()}))?;
            let mut ignore = |_: StreamEvent| {};
            match self.provider.stream(&body, &mut ignore, cancel).await {
                Ok(r) => return Ok(r),
                Err(e) if !retried && super::providers::is_context_too_long(&e) => {
                    if cfg.context.strategy == Strategy::None {
                        return Err(e.context(format!(
                            "the conversation no longer fits the model's context window{} and `context: #{{ strategy: \"none\" }}` keeps everything; use \"auto\", \"edit\", \"summary\" or \"trim\" to make room",
                            self.window.map(|w| format!(" ({w} tokens)")).unwrap_or_default()
                        )));
                    }
                    if self.window.is_none() {
                        // Learn the window from here on: about the size just refused.
                        self.window = Some(self.context_size());
                    }
                    if !self.compact(true, cancel).await? {
                        return Err(e.context("the prompt is too long for the model and compaction could not make it shorter (the last turns alone are too big: lower `context.max_tool_result`)"));
                    }
                    retried = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs one tool call; a call that failed before with the same arguments gets a
    /// note telling the model to change course. Returns the failure count.
    async fn call_tool(
        &mut self,
        name: &str,
        input: &Value,
        cancel: &CancellationToken,
    ) -> (ToolOutput, u32) {
        tracing::debug!(tool = name, "-> {}", one_line(&input.to_string(), 200));
        self.log.tool_call(name, input);
        let mut out = self.conns.call(name, input.clone(), cancel).await;
        // The one place every tool result (from any server, seer's or not) enters the
        // conversation: secret values go before the history, transcript, log or callback.
        redact_output(&mut out);
        let mut repeated = 0;
        if out.is_error && !cancel.is_cancelled() {
            let n = self
                .failures
                .entry((name.to_string(), input.to_string()))
                .or_default();
            *n += 1;
            repeated = *n;
            if *n >= REPEAT_WARNING_AFTER {
                out.parts.push(ToolPart::Text(format!(
                    "[seer] This exact call ({name} with the same arguments) has now failed {n} times. \
                     Do not repeat it unchanged: change the arguments or try another approach."
                )));
            }
        }
        self.log.tool_result(out.is_error, &out.text());
        (out, repeated)
    }

    fn finish(self, on_event: OnEvent<'_>) -> Result<AgentResult> {
        let usage = self.usage;
        let result = AgentResult {
            final_text: self.final_text,
            turns: self.turns,
            usage,
            stop_reason: self.stop,
            transcript: self.transcript.path().to_path_buf(),
            model: self.cfg.effective_model(),
            cost_usd: self.cfg.prices().map(|p| cost(&usage, &p)),
        };
        self.transcript.done(
            result.turns,
            &result.stop_reason,
            &usage,
            result.model.as_deref(),
            result.cost_usd,
        )?;
        self.log.done(&format!(
            "done: {} after {} turns · {} in / {} out tokens · {}",
            result.stop_reason,
            result.turns,
            usage.input_tokens,
            usage.output_tokens,
            result
                .cost_usd
                .map(|c| format!("${c:.4}"))
                .unwrap_or_else(|| "cost unknown".into())
        ));
        on_event(
            json!({"type": "done", "turns": result.turns, "stop_reason": result.stop_reason, "cost_usd": result.cost_usd}),
        )?;
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str) -> Block {
        Block::ToolUse {
            id: id.into(),
            name: "t".into(),
            input: json!({}),
        }
    }
    fn answer(id: &str) -> Block {
        Block::ToolResult {
            tool_use_id: id.into(),
            content: vec![],
            is_error: false,
        }
    }
    fn msg(role: Role, content: Vec<Block>) -> Message {
        Message { role, content }
    }

    #[test]
    fn history_invariants() {
        let ok = vec![
            msg(Role::User, vec![Block::Text("hi".into())]),
            msg(Role::Assistant, vec![call("a"), call("b")]),
            msg(Role::User, vec![answer("a"), answer("b")]),
        ];
        assert!(check_history(&ok).is_ok());
        let unanswered = vec![msg(Role::Assistant, vec![call("a")])];
        assert!(
            check_history(&unanswered)
                .unwrap_err()
                .to_string()
                .contains("have no results")
        );
        let wrong_order = vec![
            msg(Role::Assistant, vec![call("a"), call("b")]),
            msg(Role::User, vec![answer("b"), answer("a")]),
        ];
        assert!(check_history(&wrong_order).is_err());
        let twice = vec![
            msg(Role::Assistant, vec![call("a")]),
            msg(Role::User, vec![answer("a"), answer("a")]),
        ];
        assert!(check_history(&twice).is_err());
    }
}
