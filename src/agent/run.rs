//! The agent loop: send the conversation and the tools of every MCP server to the
//! provider, run the tool calls it asks for, feed the results back, until the model ends
//! its turn, `max_turns` is reached, or the run is cancelled. Every request and response
//! goes to a JSONL transcript as it happens.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::live_log::{LiveLog, one_line};
use super::mcp_client::{McpConnections, ToolOutput, ToolPart};
use super::pricing::{Prices, cost, prices_for};
use super::providers::blocks::block_to_json;
use super::providers::{
    Block, Kind, Message, Options, Provider, ProviderConfig, ReplayProvider, Request, ResultPart,
    Role, StopReason, StreamEvent, ToolSpec, Usage, default_model,
};
use crate::config::positive_seconds;

/// The first user message when `user_message` is not given (Seer's `run_agent` puts the
/// task in `prompt`, the system prompt, and may send no user message at all; the provider
/// APIs need one).
pub const DEFAULT_USER_MESSAGE: &str = "Begin. Follow the instructions in the system prompt, and end with a summary of what you found.";

fn sixty() -> u32 {
    60
}
fn max_tokens() -> u32 {
    8192
}
fn anthropic() -> String {
    "anthropic".into()
}
fn yes() -> bool {
    true
}

/// After this many identical failures of one call (same tool, same arguments), the
/// result tells the model to stop repeating it.
const REPEAT_WARNING_AFTER: u32 = 2;

/// `run_agent`'s options, as a script gives them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The system prompt, as in Seer (the task usually goes here).
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub mcp_config: Value,
    #[serde(default = "anthropic")]
    pub provider: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default = "sixty")]
    pub max_turns: u32,
    #[serde(default = "max_tokens")]
    pub max_tokens: u32,
    /// Another name for `prompt` (giving both is an error).
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// The first user message, as in Seer; [`DEFAULT_USER_MESSAGE`] when not given.
    #[serde(default)]
    pub user_message: Option<String>,
    /// `"none"`: an agent without tools on purpose (a judge). Without it an empty
    /// `mcp_config` is an error, never a silent tool-less run.
    #[serde(default)]
    pub tools: Option<String>,
    /// Names the transcript file and prefixes the live log.
    #[serde(default)]
    pub name: Option<String>,
    /// For `provider: "replay"`: the transcript whose assistant turns are replayed.
    #[serde(default)]
    pub transcript: Option<String>,
    /// Overrides the price table (USD per million tokens) for the cost estimate.
    #[serde(default)]
    pub prices: Option<Prices>,
    /// Print the live log to stderr (default true).
    #[serde(default = "yes")]
    pub live_log: bool,
    /// Seconds one request may take, stream included (default 600).
    #[serde(default)]
    pub request_timeout: Option<f64>,
    /// Retries of a failed request (default 4).
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// Provider options (Seer's `kwargs`): `temperature`, `top_p`, `top_k`,
    /// `thinking_budget` (alias `max_thinking_tokens`), `reasoning_effort`, `stop`,
    /// `extra_body`.
    #[serde(default)]
    pub kwargs: Options,
}

impl AgentConfig {
    /// The system prompt: `prompt` or its other name `system_prompt` (empty if neither).
    pub fn system(&self) -> Result<String> {
        match (&self.prompt, &self.system_prompt) {
            (Some(_), Some(_)) => bail!(
                "give `prompt` or `system_prompt`, not both: they are the same thing, the system prompt (as in Seer)"
            ),
            (Some(p), None) | (None, Some(p)) => Ok(p.clone()),
            (None, None) => Ok(String::new()),
        }
    }

    /// The first user message: `user_message`, else [`DEFAULT_USER_MESSAGE`].
    pub fn first_user_message(&self) -> String {
        match &self.user_message {
            Some(u) if !u.trim().is_empty() => u.clone(),
            _ => DEFAULT_USER_MESSAGE.to_string(),
        }
    }

    /// Checks what can be checked before anything starts. `interactive`: the chat, where
    /// the system prompt may be empty.
    pub fn validate(&self, interactive: bool) -> Result<()> {
        let system = self.system()?;
        let user = self.user_message.as_deref().unwrap_or("");
        if !interactive && system.trim().is_empty() && user.trim().is_empty() {
            bail!(
                "`prompt` (the system prompt, as in Seer) and `user_message` (the first user message) are both missing or empty: give the agent its task in one of them"
            );
        }
        match Kind::parse(&self.provider) {
            Ok(kind) => self.kwargs.check(kind, self.max_tokens)?,
            Err(_) if self.kwargs != Options::default() && self.provider != "replay" => bail!(
                "not supported yet: `kwargs` with the {} provider",
                self.provider
            ),
            Err(_) => {}
        }
        let servers = if self.mcp_config.is_null() {
            0
        } else {
            super::mcp_client::parse_config(&self.mcp_config)?.len()
        };
        match self.tools.as_deref() {
            None if servers == 0 => bail!(
                "the agent would have no tools: `mcp_config` is {}; give a session's `mcp_config`, or `tools: \"none\"` for an agent without tools on purpose (a judge)",
                if self.mcp_config.is_null() {
                    "missing"
                } else {
                    "empty"
                }
            ),
            None => Ok(()),
            Some("none") if servers > 0 => bail!(
                "`tools: \"none\"` but `mcp_config` names {servers} server(s); drop one of them"
            ),
            Some("none") => Ok(()),
            Some(other) => bail!(
                "`tools` must be \"none\" (an agent without tools on purpose), not {other:?}; tools come from `mcp_config`"
            ),
        }
    }

    /// The model the run uses: the configured one, else the provider's default.
    pub fn effective_model(&self) -> Option<String> {
        if let Some(m) = &self.model {
            return Some(m.clone());
        }
        Kind::parse(&self.provider)
            .ok()
            .map(|k| default_model(k).to_string())
    }

    /// Prices for the cost estimate: the override, else the table's for the model.
    pub fn prices(&self) -> Option<Prices> {
        if self.provider == "replay" {
            return Some(Prices {
                input: 0.0,
                output: 0.0,
                cache_read: None,
                cache_write: None,
            });
        }
        self.prices
            .or_else(|| self.effective_model().and_then(|m| prices_for(&m)))
    }
}

/// The provider named in `cfg`: `replay` reads its transcript (relative to `base_dir`);
/// `anthropic`/`claude`/`openai` read their key from the environment.
pub fn build_provider(cfg: &AgentConfig, base_dir: &Path) -> Result<Box<dyn Provider>> {
    match cfg.provider.trim().to_ascii_lowercase().as_str() {
        "replay" => {
            let Some(t) = &cfg.transcript else {
                bail!(
                    "provider \"replay\" needs `transcript`: the path of a transcript to replay (outputs/<run>/transcripts/<name>.jsonl)"
                );
            };
            Ok(Box::new(ReplayProvider::from_transcript(
                &base_dir.join(t),
            )?))
        }
        "anthropic" | "claude" | "openai" | "gemini" => {
            let mut pc = ProviderConfig::new(Kind::parse(&cfg.provider)?);
            if let Some(url) = &cfg.base_url {
                pc.base_url = url.clone();
            }
            if let Some(env) = &cfg.api_key_env {
                pc.api_key_env = env.clone();
            }
            if let Some(t) = cfg.request_timeout {
                pc.timeout = positive_seconds("request_timeout", t).map_err(|e| anyhow!(e))?;
            }
            if let Some(n) = cfg.max_retries {
                pc.max_retries = n;
            }
            pc.build()
        }
        "claude-code" => bail!(
            "not supported yet: provider \"claude-code\" in an interactive chat (run_agent supports it)"
        ),
        other => bail!(
            "unknown provider {other:?}; expected \"anthropic\" (alias \"claude\"), \"openai\", \"gemini\", \"claude-code\" or \"replay\""
        ),
    }
}

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

/// Appends one JSON object per line; flushed after each.
struct Transcript {
    file: std::fs::File,
    path: PathBuf,
    /// The live view's copy (when the view is on).
    live: Option<crate::live::Feed>,
}

impl Transcript {
    fn create(path: &Path) -> Result<Self> {
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)?;
        }
        let file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            live: crate::live::Feed::open(crate::live::Kind::Transcript, path),
        })
    }

    /// Writes one event; secret values (process-wide, see [`crate::secrets`]) are redacted
    /// from it, whatever part of the conversation brought them in.
    fn write(&mut self, event: Value) -> Result<()> {
        let mut line = crate::secrets::redact(&serde_json::to_string(&event)?);
        if let Some(live) = &self.live {
            live.push(&line);
        }
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .with_context(|| format!("writing {}", self.path.display()))
    }
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
    let transcript = Transcript::create(transcript_path)?;
    let conns = if cfg.mcp_config.is_null() {
        McpConnections::connect(&json!({}), base_dir, cancel).await?
    } else {
        McpConnections::connect(&cfg.mcp_config, base_dir, cancel).await?
    };
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
        let _ = transcript.write(json!({"type": "error", "message": msg}));
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
        transcript.write(json!({"type": "start", "provider": provider.name(), "model": cfg.model, "tools": tools.iter().map(|t| &t.name).collect::<Vec<_>>()}))?;
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
        })
    }

    /// Records that the user interrupted the current turn.
    fn interrupted(&mut self) -> Result<()> {
        self.transcript
            .write(json!({"type": "interrupted", "turn": self.turns}))
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
            self.turns += 1;
            let turns = self.turns;
            self.log.turn(
                turns,
                cfg.max_turns,
                self.usage.input_tokens,
                self.usage.output_tokens,
            );
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
                .write(json!({"type": "request", "turn": turns, "body": &body}))?;
            let mut ignore = |_: StreamEvent| {};
            let resp = self.provider.stream(&body, &mut ignore, cancel).await?;
            self.transcript.write(json!({"type": "response", "turn": turns, "stop_reason": stop_name(&resp.stop_reason),
                "content": resp.content.iter().map(block_to_json).collect::<Vec<_>>(),
                "usage": {"input_tokens": resp.usage.input_tokens, "output_tokens": resp.usage.output_tokens,
                          "cache_read_tokens": resp.usage.cache_read_tokens, "cache_write_tokens": resp.usage.cache_write_tokens},
                "raw": resp.raw}))?;
            let usage = &mut self.usage;
            usage.input_tokens += resp.usage.input_tokens;
            usage.output_tokens += resp.usage.output_tokens;
            usage.cache_read_tokens += resp.usage.cache_read_tokens;
            usage.cache_write_tokens += resp.usage.cache_write_tokens;
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
                        self.transcript.write(record)?;
                        let mut ev = json!({"type": "tool_result", "id": id, "name": name, "is_error": out.is_error, "text": out.text()});
                        if repeated > 1 {
                            ev["repeated_failures"] = json!(repeated);
                        }
                        on_event(ev)?;
                        results.push(Block::ToolResult {
                            tool_use_id: id.clone(),
                            content: result_parts(&out),
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
        }
        Ok(())
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
            transcript: self.transcript.path.clone(),
            model: self.cfg.effective_model(),
            cost_usd: self.cfg.prices().map(|p| cost(&usage, &p)),
        };
        self.transcript.write(
            json!({"type": "done", "turns": result.turns, "stop_reason": result.stop_reason,
            "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "cache_read_tokens": usage.cache_read_tokens, "cache_write_tokens": usage.cache_write_tokens,
            "cost_usd": result.cost_usd}),
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
