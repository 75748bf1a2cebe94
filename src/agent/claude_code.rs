//! The `claude-code` provider: drives the `claude` CLI (npm `@anthropic-ai/claude-code`)
//! in print mode with `--output-format stream-json`, as Seer's default harness does. The
//! CLI runs its own tool loop against the MCP servers of `mcp_config` (written to a 0600
//! `--mcp-config` file); seer maps its streamed messages to the same callback events as
//! the built-in loop and writes every raw message to the transcript.
//!
//! The child runs in its own process group, ended on cancel, on error and on drop. The
//! API key reaches it only through its environment.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

use super::mcp_client::{ServerConfig, parse_config};
use super::providers::Usage;
use super::run::{AgentConfig, AgentResult};
use super::transcript::Transcript;
use crate::cancel::cancellable;
use crate::process::{group_alive, kill_groups};
use crate::secrets::Redactor;

/// Where seer looks for the CLI before `PATH`.
pub const BIN_ENV: &str = "SEER_CLAUDE_BIN";

const INSTALL_HINT: &str = "install it with `npm install -g @anthropic-ai/claude-code` \
(it must be on PATH), or set SEER_CLAUDE_BIN to the `claude` executable";

/// Environment that stops the CLI's non-essential traffic (telemetry, auto-update, error
/// reports, release notes...): with a loopback `base_url` it talks to nothing else.
const QUIET_ENV: &[(&str, &str)] = &[
    ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
    ("DISABLE_TELEMETRY", "1"),
    ("DISABLE_AUTOUPDATER", "1"),
    ("DISABLE_ERROR_REPORTING", "1"),
    ("DISABLE_BUG_COMMAND", "1"),
    ("CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY", "1"),
];

/// The `claude` executable: `SEER_CLAUDE_BIN`, else `claude` on `PATH`.
pub fn find_claude() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(BIN_ENV).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        bail!(
            "the claude-code provider: {BIN_ENV} is {}, which is not a file; {INSTALL_HINT}",
            p.display()
        );
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("claude"))
                .find(|p| p.is_file())
        })
        .ok_or_else(|| {
            anyhow!(
                "the claude-code provider needs the `claude` CLI, not found on PATH; {INSTALL_HINT}"
            )
        })
}

/// `mcp_config` (see [`parse_config`]) as the CLI's `--mcp-config` JSON, with the names of
/// its servers and the secret values it holds (header values), for redaction.
pub fn claude_mcp_config(mcp_config: &Value) -> Result<(Value, Vec<String>, Vec<String>)> {
    let servers = if mcp_config.is_null() {
        vec![]
    } else {
        parse_config(mcp_config)?
    };
    let mut out = Map::new();
    let mut names = vec![];
    let mut secrets = vec![];
    for (name, cfg) in servers {
        let entry = match cfg {
            ServerConfig::Stdio { command, args, env } => {
                json!({"type": "stdio", "command": command, "args": args, "env": env})
            }
            ServerConfig::Http { url, headers } => {
                for v in headers.values() {
                    secrets.push(v.clone());
                    if let Some(token) = v.strip_prefix("Bearer ") {
                        secrets.push(token.to_string());
                    }
                }
                json!({"type": "http", "url": url, "headers": headers})
            }
        };
        names.push(name.clone());
        out.insert(name, entry);
    }
    Ok((json!({ "mcpServers": out }), names, secrets))
}

/// A private (0700) temp dir holding the `--mcp-config` file and the CLI's temp files;
/// removed on drop.
struct ConfigFile {
    dir: PathBuf,
    path: PathBuf,
}

impl ConfigFile {
    fn write(config: &Value) -> Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join(format!("seer-claude-{}", uuid::Uuid::new_v4()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let me = Self {
            path: dir.join("mcp.json"),
            dir,
        };
        me.add("mcp.json", serde_json::to_string(config)?.as_bytes())?;
        Ok(me)
    }

    /// Writes `name` (0600) into the private dir; returns its path.
    fn add(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.dir.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Ends the CLI's process group (its MCP servers included) when dropped.
struct GroupGuard(i32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if group_alive(self.0) {
            // Within the 1.5 s the runner waits after a signal.
            kill_groups(&[self.0], Duration::from_secs(1));
        }
    }
}

/// The CLI's arguments (the system prompt goes in a file, the user message to its stdin:
/// neither is visible in `ps`).
fn cli_args(
    cfg: &AgentConfig,
    config_path: &Path,
    system_file: Option<&Path>,
    servers: &[String],
) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--strict-mcp-config",
        "--no-session-persistence",
        // The agent gets the MCP tools only, as with the built-in loop: none of the CLI's
        // own tools (Bash, Edit, ...) that would act on the host outside the sandbox.
        "--tools",
        "",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push("--mcp-config".into());
    args.push(config_path.into());
    if !servers.is_empty() {
        args.push("--allowedTools".into());
        args.push(
            servers
                .iter()
                .map(|s| format!("mcp__{s}"))
                .collect::<Vec<_>>()
                .join(",")
                .into(),
        );
    }
    args.push("--max-turns".into());
    args.push(cfg.max_turns.to_string().into());
    if let Some(m) = &cfg.model {
        args.push("--model".into());
        args.push(m.into());
    }
    if let Some(f) = system_file {
        args.push("--system-prompt-file".into());
        args.push(f.into());
    }
    args
}

/// The seer name of a CLI tool name: `mcp__server__tool` → `server__tool`.
fn seer_tool_name(name: &str) -> String {
    name.strip_prefix("mcp__").unwrap_or(name).to_string()
}

fn u64_at(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// Text of a `tool_result` block's content: a string, or text and image blocks.
fn result_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p["type"].as_str() {
                Some("text") => p["text"].as_str().unwrap_or_default().to_string(),
                Some("image") => format!(
                    "[{} image]",
                    p["source"]["media_type"].as_str().unwrap_or("image")
                ),
                _ => p.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Turns the CLI's stream-json messages into seer's callback events.
#[derive(Debug, Default)]
struct Mapper {
    turns: u32,
    last_message_id: Option<String>,
    /// A tool result came after the last assistant message: the next one is a new turn.
    answered: bool,
    tool_names: HashMap<String, String>,
    usage: Usage,
    /// Text of the current assistant message; the last non-empty one is the final text.
    text: String,
    final_text: String,
    /// The `result` message, once seen.
    result: Option<Value>,
    model: Option<String>,
}

impl Mapper {
    fn handle(&mut self, msg: &Value) -> Vec<Value> {
        let mut events = vec![];
        match msg["type"].as_str() {
            Some("system") if msg["subtype"] == "init" => {
                self.model = msg["model"].as_str().map(String::from);
            }
            Some("assistant") => {
                let m = &msg["message"];
                let id = m["id"].as_str().map(String::from);
                // The CLI sends one message per content block; the blocks of one model
                // response share its id.
                if id.is_none() || id != self.last_message_id || self.answered {
                    self.turns += 1;
                    self.answered = false;
                    self.last_message_id = id;
                    if !self.text.is_empty() {
                        self.final_text = std::mem::take(&mut self.text);
                    }
                    let u = &m["usage"];
                    self.usage.input_tokens += u64_at(u, "input_tokens");
                    self.usage.output_tokens += u64_at(u, "output_tokens");
                    events.push(json!({"type": "usage", "turn": self.turns,
                        "input_tokens": self.usage.input_tokens, "output_tokens": self.usage.output_tokens}));
                }
                for block in m["content"].as_array().into_iter().flatten() {
                    match block["type"].as_str() {
                        Some("text") => {
                            let t = block["text"].as_str().unwrap_or_default();
                            self.text.push_str(t);
                            events.push(json!({"type": "text", "text": t}));
                        }
                        Some("thinking") => events.push(
                            json!({"type": "thinking", "text": block["thinking"].as_str().unwrap_or_default()}),
                        ),
                        Some("tool_use") => {
                            let id = block["id"].as_str().unwrap_or_default().to_string();
                            let name = seer_tool_name(block["name"].as_str().unwrap_or_default());
                            self.tool_names.insert(id.clone(), name.clone());
                            events.push(json!({"type": "tool_call", "id": id, "name": name, "input": block["input"]}));
                        }
                        _ => {}
                    }
                }
            }
            Some("user") => {
                for block in msg["message"]["content"].as_array().into_iter().flatten() {
                    if block["type"] != "tool_result" {
                        continue;
                    }
                    self.answered = true;
                    let id = block["tool_use_id"].as_str().unwrap_or_default();
                    let name = self.tool_names.get(id).cloned().unwrap_or_default();
                    events.push(json!({"type": "tool_result", "id": id, "name": name,
                        "is_error": block["is_error"].as_bool().unwrap_or(false),
                        "text": result_text(&block["content"])}));
                }
            }
            Some("result") => {
                if !self.text.is_empty() {
                    self.final_text = std::mem::take(&mut self.text);
                }
                if let Some(r) = msg["result"].as_str().filter(|r| !r.is_empty()) {
                    self.final_text = r.to_string();
                }
                let u = &msg["usage"];
                if u.is_object() {
                    self.usage = Usage {
                        input_tokens: u64_at(u, "input_tokens"),
                        output_tokens: u64_at(u, "output_tokens"),
                        cache_read_tokens: u64_at(u, "cache_read_input_tokens"),
                        cache_write_tokens: u64_at(u, "cache_creation_input_tokens"),
                    };
                }
                self.result = Some(msg.clone());
            }
            _ => {}
        }
        events
    }

    /// How the run ended, from the `result` message: `Ok(stop_reason)` or the error.
    fn outcome(&self) -> Option<Result<String, String>> {
        let r = self.result.as_ref()?;
        let subtype = r["subtype"].as_str().unwrap_or_default();
        if subtype == "error_max_turns" {
            return Some(Ok("max_turns".into()));
        }
        if r["is_error"].as_bool().unwrap_or(false) || subtype.starts_with("error") {
            let detail = r["result"]
                .as_str()
                .map(String::from)
                .or_else(|| r.get("errors").map(Value::to_string))
                .unwrap_or_else(|| subtype.to_string());
            return Some(Err(detail));
        }
        Some(Ok(r["stop_reason"]
            .as_str()
            .unwrap_or("end_turn")
            .to_string()))
    }
}

/// Runs the agent through the `claude` CLI. Same contract as [`super::run::run`].
pub async fn run(
    cfg: &AgentConfig,
    base_dir: &Path,
    transcript_path: &Path,
    on_event: &mut (dyn FnMut(Value) -> Result<()> + Send),
    cancel: &CancellationToken,
) -> Result<AgentResult> {
    let bin = find_claude()?;
    let (mcp, servers, mut secrets) = claude_mcp_config(&cfg.mcp_config)?;
    let key_env = cfg
        .api_key_env
        .clone()
        .unwrap_or_else(|| "ANTHROPIC_API_KEY".into());
    let key = std::env::var(&key_env)
        .ok()
        .filter(|k| !k.trim().is_empty());
    if key.is_none() && cfg.api_key_env.is_some() {
        bail!("no API key for the claude-code provider: set the environment variable {key_env}");
    }
    if let Some(k) = &key {
        crate::secrets::protect(k);
    }
    secrets.extend(key.iter().map(|k| k.trim().to_string()));
    if cfg.context != super::context::ContextConfig::default() {
        bail!(
            "not supported yet: `context` with the claude-code provider (the claude CLI compacts its context itself)"
        );
    }
    if cfg.limits != super::context::Limits::default() {
        bail!(
            "not supported yet: `limits` with the claude-code provider (use `max_turns`, which the CLI enforces)"
        );
    }
    let redactor = Redactor::new(secrets);
    let mut transcript = Transcript::create(transcript_path, redactor.clone())?;
    let result = run_cli(
        cfg,
        &bin,
        &mcp,
        &servers,
        key.as_deref().map(str::trim),
        base_dir,
        &mut transcript,
        on_event,
        cancel,
    )
    .await;
    match result {
        Ok(r) => Ok(r),
        Err(e) => {
            let msg = redactor.redact(&format!("{e:#}"));
            let _ = transcript.write(&json!({"type": "error", "message": msg}));
            Err(anyhow!(msg))
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_cli(
    cfg: &AgentConfig,
    bin: &Path,
    mcp: &Value,
    servers: &[String],
    key: Option<&str>,
    base_dir: &Path,
    transcript: &mut Transcript,
    on_event: &mut (dyn FnMut(Value) -> Result<()> + Send),
    cancel: &CancellationToken,
) -> Result<AgentResult> {
    let config_file = ConfigFile::write(mcp)?;
    let system = cfg.system()?;
    let system_file = if system.is_empty() {
        None
    } else {
        Some(config_file.add("system.md", system.as_bytes())?)
    };
    let args = cli_args(cfg, &config_file.path, system_file.as_deref(), servers);
    transcript.write(
        &json!({"type": "start", "provider": "claude-code", "model": cfg.model,
        "command": bin, "args": args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>(),
        "servers": servers}),
    )?;

    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(&args)
        .current_dir(base_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .envs(QUIET_ENV.iter().copied())
        .env("CLAUDE_CODE_MAX_OUTPUT_TOKENS", cfg.max_tokens.to_string())
        // Its per-run temp files go to the private dir removed afterwards, not /tmp.
        .env("CLAUDE_CODE_TMPDIR", &config_file.dir);
    if let Some(k) = key {
        cmd.env("ANTHROPIC_API_KEY", k);
    }
    if let Some(u) = &cfg.base_url {
        cmd.env("ANTHROPIC_BASE_URL", u);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting the claude CLI ({})", bin.display()))?;
    let _group = child.id().map(|pid| GroupGuard(pid as i32));

    let prompt = cfg.first_user_message();
    if let Some(mut stdin) = child.stdin.take() {
        // The prompt goes through stdin: no argv length limit, not visible in `ps`.
        cancellable(cancel, stdin.write_all(prompt.as_bytes()))
            .await?
            .context("sending the prompt to the claude CLI")?;
    }
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("the claude CLI has no stdout"))?;
    let stderr_task = child.stderr.take().map(|mut err| {
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let _ = err.read_to_end(&mut buf).await;
            String::from_utf8_lossy(&buf).to_string()
        })
    });

    let mut lines = BufReader::new(stdout).lines();
    let mut mapper = Mapper::default();
    loop {
        let line = cancellable(cancel, lines.next_line())
            .await?
            .context("reading the claude CLI's output")?;
        let Some(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let msg: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(_) => {
                transcript.write(&json!({"type": "cli_output", "text": line}))?;
                continue;
            }
        };
        transcript.write(&json!({"type": "message", "raw": msg}))?;
        for mut ev in mapper.handle(&msg) {
            // The CLI sends tool results to the model itself; the callback sees them
            // redacted at least.
            transcript.redactor().redact_json(&mut ev);
            if ev["type"] == "tool_call" {
                tracing::info!(
                    tool = ev["name"].as_str().unwrap_or_default(),
                    "-> {}",
                    ev["input"]
                );
            }
            if ev["type"] == "tool_result" {
                transcript.write(
                    &json!({"type": "tool_result", "turn": mapper.turns, "id": ev["id"],
                    "name": ev["name"], "is_error": ev["is_error"], "text": ev["text"]}),
                )?;
            }
            on_event(ev)?;
        }
    }
    let status = cancellable(cancel, child.wait())
        .await?
        .context("waiting for the claude CLI")?;
    let stderr = match stderr_task {
        Some(t) => tokio::time::timeout(Duration::from_secs(2), t)
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or_default(),
        None => String::new(),
    };
    if !stderr.trim().is_empty() {
        transcript.write(&json!({"type": "cli_stderr", "text": stderr}))?;
    }
    let stop_reason = match mapper.outcome() {
        Some(Ok(stop)) => stop,
        Some(Err(detail)) => {
            let msg = format!("the claude CLI reported an error: {detail}");
            on_event(json!({"type": "error", "message": transcript.redactor().redact(&msg)}))?;
            bail!(msg);
        }
        None => {
            let tail: String = {
                let lines: Vec<&str> = stderr.trim_end().lines().collect();
                lines[lines.len().saturating_sub(20)..].join("\n")
            };
            bail!("the claude CLI exited ({status}) without a result\n{tail}");
        }
    };
    let result = AgentResult {
        final_text: mapper.final_text.clone(),
        turns: mapper.turns,
        usage: mapper.usage,
        stop_reason,
        transcript: transcript.path().to_path_buf(),
        model: cfg.model.clone().or_else(|| mapper.model.clone()),
        // The CLI's own estimate, from its price table.
        cost_usd: mapper
            .result
            .as_ref()
            .and_then(|r| r["total_cost_usd"].as_f64()),
    };
    // The same `done` record as seer's own loop writes: `cost_usd` is the CLI's estimate.
    transcript.done(
        result.turns,
        &result.stop_reason,
        &result.usage,
        mapper.model.as_deref(),
        result.cost_usd,
    )?;
    on_event(json!({"type": "done", "turns": result.turns, "stop_reason": result.stop_reason}))?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcp_config_translates_to_the_cli_shape_and_collects_secrets() {
        let cfg = json!({"nb": {"type": "http", "url": "http://127.0.0.1:1/mcp", "headers": {"Authorization": "Bearer tok-123"}},
            "ev": {"command": "node", "args": ["x.js", "stdio"], "env": {"A": "b"}}});
        let (out, names, secrets) = claude_mcp_config(&cfg).unwrap();
        assert_eq!(
            out,
            json!({"mcpServers": {
                "ev": {"type": "stdio", "command": "node", "args": ["x.js", "stdio"], "env": {"A": "b"}},
                "nb": {"type": "http", "url": "http://127.0.0.1:1/mcp", "headers": {"Authorization": "Bearer tok-123"}},
            }})
        );
        assert_eq!(names, vec!["ev", "nb"]);
        assert_eq!(secrets, vec!["Bearer tok-123", "tok-123"]);
        let (empty, names, _) = claude_mcp_config(&Value::Null).unwrap();
        assert_eq!(empty, json!({"mcpServers": {}}));
        assert!(names.is_empty());
        assert!(claude_mcp_config(&json!({"x": {"type": "ftp"}})).is_err());
    }

    #[test]
    fn config_file_is_private_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let f = ConfigFile::write(&json!({"mcpServers": {}})).unwrap();
        let mode = std::fs::metadata(&f.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir = f.dir.clone();
        drop(f);
        assert!(!dir.exists());
    }

    #[test]
    fn stream_json_maps_to_the_loop_events() {
        let mut m = Mapper::default();
        let msgs = [
            json!({"type": "system", "subtype": "init", "model": "claude-x", "tools": ["mcp__nb__run"]}),
            json!({"type": "assistant", "message": {"id": "m1", "content": [{"type": "text", "text": "Let me run it."}], "usage": {"input_tokens": 10, "output_tokens": 1}}}),
            json!({"type": "assistant", "message": {"id": "m1", "content": [{"type": "tool_use", "id": "t1", "name": "mcp__nb__run", "input": {"code": "1"}}], "usage": {"input_tokens": 10, "output_tokens": 1}}}),
            json!({"type": "user", "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "1"}, {"type": "image", "source": {"media_type": "image/png"}}]}]}}),
            json!({"type": "assistant", "message": {"id": "m2", "content": [{"type": "thinking", "thinking": "hm"}, {"type": "text", "text": "Done."}], "usage": {"input_tokens": 20, "output_tokens": 2}}}),
            json!({"type": "result", "subtype": "success", "is_error": false, "result": "Done.", "stop_reason": "end_turn",
                "usage": {"input_tokens": 30, "output_tokens": 9, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 5}}),
        ];
        let events: Vec<Value> = msgs.iter().flat_map(|x| m.handle(x)).collect();
        assert_eq!(
            events,
            vec![
                json!({"type": "usage", "turn": 1, "input_tokens": 10, "output_tokens": 1}),
                json!({"type": "text", "text": "Let me run it."}),
                json!({"type": "tool_call", "id": "t1", "name": "nb__run", "input": {"code": "1"}}),
                json!({"type": "tool_result", "id": "t1", "name": "nb__run", "is_error": false, "text": "1\n[image/png image]"}),
                json!({"type": "usage", "turn": 2, "input_tokens": 30, "output_tokens": 3}),
                json!({"type": "thinking", "text": "hm"}),
                json!({"type": "text", "text": "Done."}),
            ]
        );
        assert_eq!(m.turns, 2);
        assert_eq!(m.final_text, "Done.");
        assert_eq!(m.model.as_deref(), Some("claude-x"));
        assert_eq!(
            m.usage,
            Usage {
                input_tokens: 30,
                output_tokens: 9,
                cache_read_tokens: 4,
                cache_write_tokens: 5
            }
        );
        assert_eq!(m.outcome(), Some(Ok("end_turn".into())));
    }

    #[test]
    fn a_response_after_tool_results_is_a_new_turn_even_with_the_same_id() {
        let mut m = Mapper::default();
        let assistant = json!({"type": "assistant", "message": {"id": "same", "content": [{"type": "tool_use", "id": "t", "name": "x", "input": {}}]}});
        m.handle(&assistant);
        m.handle(&assistant);
        assert_eq!(m.turns, 1);
        m.handle(&json!({"type": "user", "message": {"content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]}}));
        m.handle(&assistant);
        assert_eq!(m.turns, 2);
    }

    #[test]
    fn result_outcomes() {
        let mut m = Mapper::default();
        assert_eq!(m.outcome(), None);
        m.handle(&json!({"type": "result", "subtype": "error_max_turns", "is_error": false}));
        assert_eq!(m.outcome(), Some(Ok("max_turns".into())));
        m.handle(&json!({"type": "result", "subtype": "success", "is_error": true, "result": "API Error: 401"}));
        assert_eq!(m.outcome(), Some(Err("API Error: 401".into())));
    }

    #[test]
    fn args_carry_the_options_but_not_the_prompt() {
        let cfg: AgentConfig =
            serde_json::from_value(json!({"prompt": "secret plan", "model": "m",
            "max_turns": 3, "user_message": "the task"}))
            .unwrap();
        let system = Path::new("/t/system.md");
        let args: Vec<String> = cli_args(
            &cfg,
            Path::new("/t/mcp.json"),
            Some(system),
            &["a".into(), "b".into()],
        )
        .iter()
        .map(|a| a.to_string_lossy().to_string())
        .collect();
        let joined = args.join(" ");
        assert!(
            joined.contains("--mcp-config /t/mcp.json")
                && joined.contains("--allowedTools mcp__a,mcp__b")
                && joined.contains("--max-turns 3")
                && joined.contains("--model m")
                && joined.contains("--output-format stream-json"),
            "{joined}"
        );
        assert_eq!(
            args[args.len() - 2..],
            ["--system-prompt-file", "/t/system.md"]
        );
        assert!(!joined.contains("secret plan") && !joined.contains("the task"));
    }
}
