//! Connections to the MCP servers named in an agent's `mcp_config` (the `.mcp.json`
//! shape): `type: "stdio"` commands, spawned and ended by seer, and `type: "http"`
//! streamable-HTTP urls with headers. Tool names are qualified per server
//! (`server__tool`), sanitized to what LLM providers accept and at most 64 characters.
//!
//! # No call waits without bound
//! - Every tool call has a deadline ([`McpConnections::deadline_for`]): the one set with
//!   [`McpConnections::set_call_deadline`] if any; else, for a tool whose server says how
//!   long it lets one call run (`_meta` [`TIMEOUT_META`], which seer's notebook server
//!   sets to the session's cell timeout), that plus [`DEADLINE_GRACE`] (the interrupt, a
//!   kernel restart and the workspace setup); else [`DEFAULT_CALL_DEADLINE`] (24 hours:
//!   GPU work can take hours). A call past its deadline is dropped, which sends
//!   `notifications/cancelled` (seer's notebook server then interrupts the cell), and the
//!   model gets an error result saying so.
//! - Starting a server and listing its tools is bounded by [`CONNECT_TIMEOUT`], closing by
//!   a few seconds.
//! - A lost connection (a stdio server that died, an HTTP server that stopped or lost the
//!   session) ends the call with an error result, and seer connects to the server again, so
//!   later calls work if it is back. HTTP streams that break are resumed a few times over
//!   about 25 s ([`SSE_RETRIES`]), not forever as rmcp's default would; an HTTP session
//!   that expired (404) is replaced by rmcp transparently.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use rmcp::model::CallToolRequestParams;
use rmcp::service::{RunningService, ServiceError};
use rmcp::transport::common::client_side_sse::SseRetryPolicy;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use crate::cancel::cancellable;
pub use crate::notebook::mcp::TIMEOUT_META;

/// The deadline of a tool call when neither the run nor the tool's server says otherwise.
pub const DEFAULT_CALL_DEADLINE: Duration = Duration::from_secs(24 * 3600);

/// Added to a server's own bound on a call ([`TIMEOUT_META`]) to make its deadline: time
/// for the interrupt, a kernel restart and the workspace setup after a timeout.
pub const DEADLINE_GRACE: Duration = Duration::from_secs(600);

/// How long starting (or restarting) a server and listing its tools may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(300);

/// How long ending a session may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times a broken HTTP stream is reopened (after 1, 2, 4, 8 and 8 s) before the
/// request fails.
pub const SSE_RETRIES: usize = 5;

/// Reopens a broken SSE stream a few times, then gives up (rmcp's default never does, so
/// a call to a server that is gone would wait forever).
#[derive(Debug)]
struct BoundedRetry;

impl SseRetryPolicy for BoundedRetry {
    fn retry(&self, times: usize) -> Option<Duration> {
        (times < SSE_RETRIES).then(|| Duration::from_secs(1 << times.min(3)))
    }
}

/// One server of an `mcp_config`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ServerConfig {
    Stdio {
        command: String,
        #[serde(default)]
        args: Vec<String>,
        #[serde(default)]
        env: BTreeMap<String, String>,
    },
    Http {
        url: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
    },
}

/// A tool as the model sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolInfo {
    /// `server__tool`, sanitized: what the model calls.
    pub qualified: String,
    pub server: String,
    pub name: String,
    pub description: String,
    pub input_schema: Value,
    /// How long the server lets one call run, if it says (its `_meta` [`TIMEOUT_META`]).
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ToolPart {
    Text(String),
    Image { mime_type: String, data: String },
}

/// What a tool call returned.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    pub parts: Vec<ToolPart>,
    pub is_error: bool,
}

impl ToolOutput {
    pub fn error(msg: impl Into<String>) -> Self {
        Self {
            parts: vec![ToolPart::Text(msg.into())],
            is_error: true,
        }
    }

    pub fn text(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                ToolPart::Text(t) => t.clone(),
                ToolPart::Image { mime_type, .. } => format!("[{mime_type} image]"),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Parses an `mcp_config` value: `{ name: {type, ...}, ... }`, or the same under
/// `mcpServers` as in `.mcp.json` files. A server without `type` but with `command` is stdio.
pub fn parse_config(config: &Value) -> Result<Vec<(String, ServerConfig)>> {
    let servers = config.get("mcpServers").unwrap_or(config);
    let map = servers
        .as_object()
        .ok_or_else(|| anyhow!("mcp_config must be a map of server name to server config"))?;
    let mut out = vec![];
    for (name, v) in map {
        let mut v = v.clone();
        if let Some(obj) = v.as_object_mut()
            && !obj.contains_key("type")
            && obj.contains_key("command")
        {
            obj.insert("type".into(), "stdio".into());
        }
        let cfg: ServerConfig = crate::config::from_json(&format!("mcp_config server `{name}`"), v)
            .map_err(|e| anyhow!(e.0))?;
        out.push((name.clone(), cfg));
    }
    Ok(out)
}

/// Eight hex digits identifying a long tool name that had to be cut short.
///
/// The hashed text keeps the framing these names were first made with (then by the Python
/// env cache's key function), so qualified names, which transcripts and replays refer to,
/// stay the same.
fn name_hash(name: &str) -> String {
    let digest = Sha256::digest(format!("seer-env-v1\npython=\n{name}\n"));
    hex::encode(&digest[4..8])
}

/// The variables of seer's environment a stdio MCP server inherits (the official SDKs'
/// default set plus the locale); anything else must be given in its config's `env`.
const STDIO_INHERITED_ENV: &[&str] = &[
    "HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "LC_ALL", "LC_CTYPE", "TZ",
];

/// Characters providers accept in tool names, at most 64 of them, unique in `taken`.
pub fn qualify(server: &str, tool: &str, taken: &mut Vec<String>) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let mut name = format!("{}__{}", clean(server), clean(tool));
    if name.len() > 64 {
        name = format!("{}_{}", &name[..55], name_hash(&name));
    }
    let base = name.clone();
    let mut n = 2;
    while taken.contains(&name) {
        let suffix = format!("_{n}");
        name = format!("{}{suffix}", &base[..base.len().min(64 - suffix.len())]);
        n += 1;
    }
    taken.push(name.clone());
    name
}

pub struct McpConnections {
    servers: HashMap<String, Server>,
    tools: Vec<ToolInfo>,
    base_dir: PathBuf,
    /// Every call's deadline, if set (else per tool: see [`McpConnections::deadline_for`]).
    deadline: Option<Duration>,
}

type Client = RunningService<RoleClient, ()>;

/// One server of the config and its current connection.
struct Server {
    config: ServerConfig,
    conn: tokio::sync::Mutex<Conn>,
}

struct Conn {
    client: Option<Arc<Client>>,
    /// Counts connections, so that concurrent calls that all lost one reconnect once.
    generation: u64,
}

/// Whether a call's error means the connection is gone (rather than an error answer).
fn connection_lost(e: &ServiceError) -> bool {
    matches!(
        e,
        ServiceError::TransportClosed
            | ServiceError::TransportSend(_)
            | ServiceError::Cancelled { .. }
    )
}

/// `90s`, `12m 5s`, `2h 10m`.
fn duration_text(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        1..60 => format!("{s}s"),
        60..3600 if s.is_multiple_of(60) => format!("{}m", s / 60),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        _ if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

/// The `_meta` bound of a tool, in seconds.
fn meta_timeout(meta: Option<&rmcp::model::MetaObject>) -> Option<Duration> {
    let secs = meta?.0.get(TIMEOUT_META)?.as_f64()?;
    (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs))
}

/// Connects to one server and lists its tools, within [`CONNECT_TIMEOUT`] and `cancel`.
async fn connect_server(
    name: &str,
    cfg: &ServerConfig,
    base_dir: &Path,
    cancel: &CancellationToken,
) -> Result<(Client, Vec<rmcp::model::Tool>)> {
    let work = async {
        let client = connect_one(name, cfg, base_dir).await?;
        match client.list_all_tools().await {
            Ok(tools) => Ok((client, tools)),
            Err(e) => {
                close_client(client).await;
                bail!("MCP server `{name}`: listing its tools failed: {e}")
            }
        }
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, cancellable(cancel, work)).await {
        Ok(r) => r.and_then(|r| r),
        Err(_) => bail!(
            "MCP server `{name}` did not start and list its tools within {}",
            duration_text(CONNECT_TIMEOUT)
        ),
    }
}

/// Ends a session (a stdio server is stopped), waiting at most [`CLOSE_TIMEOUT`].
async fn close_client(client: Client) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, client.cancel()).await;
}

/// Ends a shared session: at once if nobody else holds it, else by cancelling it.
async fn close_shared(client: Arc<Client>) {
    match Arc::try_unwrap(client) {
        Ok(c) => close_client(c).await,
        Err(shared) => shared.cancellation_token().cancel(),
    }
}

async fn connect_one(
    name: &str,
    cfg: &ServerConfig,
    base_dir: &Path,
) -> Result<RunningService<RoleClient, ()>> {
    match cfg {
        ServerConfig::Http { url, headers } => {
            let mut config = StreamableHttpClientTransportConfig::with_uri(url.clone());
            let mut custom = HashMap::new();
            for (k, v) in headers {
                if k.eq_ignore_ascii_case("authorization") {
                    config = config.auth_header(v.strip_prefix("Bearer ").unwrap_or(v).to_string());
                } else {
                    let hn = http::HeaderName::from_bytes(k.as_bytes()).with_context(|| {
                        format!("mcp_config server `{name}`: bad header name `{k}`")
                    })?;
                    let hv = http::HeaderValue::from_str(v).with_context(|| {
                        format!("mcp_config server `{name}`: bad value for header `{k}`")
                    })?;
                    custom.insert(hn, hv);
                }
            }
            config = config.custom_headers(custom);
            config.retry_config = Arc::new(BoundedRetry);
            let transport = StreamableHttpClientTransport::from_config(config);
            ().serve(transport)
                .await
                .with_context(|| format!("MCP server `{name}` ({url}) did not start a session"))
        }
        ServerConfig::Stdio { command, args, env } => {
            // Like the official MCP SDKs, a stdio server gets a minimal environment plus
            // what its config names, never seer's own (API keys, `.env` secrets).
            let inherited = STDIO_INHERITED_ENV
                .iter()
                .filter_map(|k| std::env::var(k).ok().map(|v| (*k, v)));
            let mut cmd = tokio::process::Command::new(command);
            cmd.args(args)
                .env_clear()
                .envs(inherited)
                .envs(env)
                .current_dir(base_dir)
                .kill_on_drop(true);
            let (transport, stderr) = TokioChildProcess::builder(cmd)
                .stderr(Stdio::piped())
                .spawn()
                .with_context(|| format!("MCP server `{name}`: cannot start `{command}`"))?;
            match ().serve(transport).await {
                Ok(client) => {
                    // Keep draining its stderr so it never blocks on a full pipe.
                    if let Some(mut err) = stderr {
                        let name = name.to_string();
                        tokio::spawn(async move {
                            let mut buf = [0u8; 4096];
                            while let Ok(n) = err.read(&mut buf).await {
                                if n == 0 {
                                    break;
                                }
                                tracing::debug!(
                                    server = name,
                                    "{}",
                                    String::from_utf8_lossy(&buf[..n]).trim_end()
                                );
                            }
                        });
                    }
                    Ok(client)
                }
                Err(e) => {
                    let mut text = String::new();
                    if let Some(mut err) = stderr {
                        let _ = tokio::time::timeout(
                            std::time::Duration::from_millis(500),
                            err.read_to_string(&mut text),
                        )
                        .await;
                    }
                    bail!(
                        "MCP server `{name}` (`{command}`) failed to start: {e}\n{}",
                        text.trim_end()
                    )
                }
            }
        }
    }
}

impl McpConnections {
    /// Connects to every server and lists their tools. A server that fails is an error
    /// naming it; the ones already connected are closed.
    pub async fn connect(
        config: &Value,
        base_dir: &Path,
        cancel: &CancellationToken,
    ) -> Result<Self> {
        let servers = parse_config(config)?;
        let mut me = Self {
            servers: HashMap::new(),
            tools: vec![],
            base_dir: base_dir.to_path_buf(),
            deadline: None,
        };
        let mut taken = vec![];
        for (name, cfg) in servers {
            let (client, tools) = match connect_server(&name, &cfg, base_dir, cancel).await {
                Ok(c) => c,
                Err(e) => {
                    me.close().await;
                    return Err(e);
                }
            };
            for t in tools {
                me.tools.push(ToolInfo {
                    qualified: qualify(&name, &t.name, &mut taken),
                    server: name.clone(),
                    name: t.name.to_string(),
                    description: t.description.map(|d| d.to_string()).unwrap_or_default(),
                    input_schema: Value::Object((*t.input_schema).clone()),
                    timeout: meta_timeout(t.meta.as_ref()),
                });
            }
            me.servers.insert(
                name,
                Server {
                    config: cfg,
                    conn: tokio::sync::Mutex::new(Conn {
                        client: Some(Arc::new(client)),
                        generation: 0,
                    }),
                },
            );
        }
        Ok(me)
    }

    pub fn tools(&self) -> &[ToolInfo] {
        &self.tools
    }

    /// Sets the deadline of every later call (`None`: per tool, see
    /// [`McpConnections::deadline_for`]). For a run's `tool_timeout`-style option.
    pub fn set_call_deadline(&mut self, deadline: Option<Duration>) {
        self.deadline = deadline;
    }

    /// The deadline [`McpConnections::call`] gives a call of this tool: the one set with
    /// [`McpConnections::set_call_deadline`]; else the tool's own bound (its server's
    /// `_meta` [`TIMEOUT_META`], e.g. a notebook session's cell timeout) plus
    /// [`DEADLINE_GRACE`]; else [`DEFAULT_CALL_DEADLINE`].
    pub fn deadline_for(&self, qualified: &str) -> Duration {
        if let Some(d) = self.deadline {
            return d;
        }
        self.tools
            .iter()
            .find(|t| t.qualified == qualified)
            .and_then(|t| t.timeout)
            .map_or(DEFAULT_CALL_DEADLINE, |t| t.saturating_add(DEADLINE_GRACE))
    }

    /// Calls a tool by its qualified name, with the deadline of
    /// [`McpConnections::deadline_for`]. Failures of the call (unknown tool, protocol
    /// errors, the deadline, a lost connection) come back as error outputs: the model is
    /// told, the run goes on.
    pub async fn call(
        &self,
        qualified: &str,
        args: Value,
        cancel: &CancellationToken,
    ) -> ToolOutput {
        let deadline = self.deadline_for(qualified);
        self.call_with_deadline(qualified, args, cancel, deadline)
            .await
    }

    /// [`McpConnections::call`] with this call's own deadline. A call still running at its
    /// deadline is cancelled (the server gets `notifications/cancelled`; seer's notebook
    /// server interrupts the cell) and is an error output that says so.
    pub async fn call_with_deadline(
        &self,
        qualified: &str,
        args: Value,
        cancel: &CancellationToken,
        deadline: Duration,
    ) -> ToolOutput {
        let Some(tool) = self.tools.iter().find(|t| t.qualified == qualified) else {
            let names: Vec<&str> = self.tools.iter().map(|t| t.qualified.as_str()).collect();
            return ToolOutput::error(format!(
                "unknown tool `{qualified}`; the tools are: {}",
                names.join(", ")
            ));
        };
        let args = match args {
            Value::Object(m) => m,
            Value::Null => Default::default(),
            other => {
                return ToolOutput::error(format!(
                    "tool arguments must be a JSON object, got {other}"
                ));
            }
        };
        let (client, generation) = match self.client(&tool.server, cancel).await {
            Ok(c) => c,
            Err(e) => return ToolOutput::error(format!("{e:#}")),
        };
        let call =
            client.call_tool(CallToolRequestParams::new(tool.name.clone()).with_arguments(args));
        // Dropping the call makes rmcp send `notifications/cancelled`; a server that can
        // stop its work does (seer's notebook server interrupts the kernel).
        let result = tokio::select! {
            r = tokio::time::timeout(deadline, call) => r,
            _ = cancel.cancelled() => return ToolOutput::error("cancelled"),
        };
        drop(client);
        let Ok(result) = result else {
            tracing::warn!(tool = qualified, "tool call past its deadline: cancelled");
            return ToolOutput::error(format!(
                "the call of `{qualified}` did not finish within {} (its deadline) and was \
                 cancelled; the server was told to stop it.",
                duration_text(deadline)
            ));
        };
        match result {
            Ok(r) => {
                let mut parts = vec![];
                for c in &r.content {
                    if let Some(t) = c.as_text() {
                        parts.push(ToolPart::Text(t.text.clone()));
                    } else if let Some(i) = c.as_image() {
                        parts.push(ToolPart::Image {
                            mime_type: i.mime_type.clone(),
                            data: i.data.clone(),
                        });
                    } else if let Ok(v) = serde_json::to_string(c) {
                        parts.push(ToolPart::Text(v));
                    }
                }
                if parts.is_empty()
                    && let Some(s) = &r.structured_content
                {
                    parts.push(ToolPart::Text(s.to_string()));
                }
                ToolOutput {
                    parts,
                    is_error: r.is_error.unwrap_or(false),
                }
            }
            Err(e) if connection_lost(&e) => {
                let server = &tool.server;
                tracing::warn!(server, "the connection to an MCP server was lost: {e}");
                let lost = format!(
                    "the connection to MCP server `{server}` was lost during this call ({e}): \
                     its result is lost, and it may or may not have finished."
                );
                match self.reconnect(server, generation, cancel).await {
                    Ok(()) => ToolOutput::error(format!(
                        "{lost} seer connected to the server again, so its tools work; check \
                         what the call did before repeating it (for a notebook cell: \
                         read_cell)."
                    )),
                    Err(again) => ToolOutput::error(format!(
                        "{lost} Connecting again failed ({again:#}); later calls will try again."
                    )),
                }
            }
            Err(e) => ToolOutput::error(format!("the tool call failed: {e}")),
        }
    }

    /// The server's connection and its generation; one that is closed is made again first.
    async fn client(&self, server: &str, cancel: &CancellationToken) -> Result<(Arc<Client>, u64)> {
        let s = self
            .servers
            .get(server)
            .ok_or_else(|| anyhow!("server `{server}` is not connected"))?;
        let mut conn = s.conn.lock().await;
        if let Some(c) = &conn.client
            && !c.is_transport_closed()
            && !c.is_closed()
        {
            return Ok((c.clone(), conn.generation));
        }
        tracing::info!(
            server,
            "reconnecting to an MCP server whose connection is closed"
        );
        self.replace(server, s, &mut conn, cancel)
            .await
            .with_context(|| format!("MCP server `{server}` is not reachable"))?;
        let c = conn
            .client
            .clone()
            .ok_or_else(|| anyhow!("server `{server}` is not connected"))?;
        Ok((c, conn.generation))
    }

    /// Connects to the server again, unless another call did since `generation`.
    async fn reconnect(
        &self,
        server: &str,
        generation: u64,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let s = self
            .servers
            .get(server)
            .ok_or_else(|| anyhow!("server `{server}` is not connected"))?;
        let mut conn = s.conn.lock().await;
        if conn.generation != generation && conn.client.is_some() {
            return Ok(());
        }
        self.replace(server, s, &mut conn, cancel).await
    }

    async fn replace(
        &self,
        name: &str,
        server: &Server,
        conn: &mut Conn,
        cancel: &CancellationToken,
    ) -> Result<()> {
        if let Some(old) = conn.client.take() {
            close_shared(old).await;
        }
        conn.generation += 1;
        let (client, tools) = connect_server(name, &server.config, &self.base_dir, cancel).await?;
        let known: Vec<&str> = self
            .tools
            .iter()
            .filter(|t| t.server == name)
            .map(|t| t.name.as_str())
            .collect();
        if tools.iter().any(|t| !known.contains(&t.name.as_ref())) || tools.len() != known.len() {
            tracing::warn!(
                server = name,
                "the MCP server's tools changed when it was reconnected; the agent keeps the first list"
            );
        }
        conn.client = Some(Arc::new(client));
        Ok(())
    }

    /// Ends every session (stdio servers are stopped), each within a few seconds.
    pub async fn close(&mut self) {
        for (_, s) in self.servers.drain() {
            if let Some(c) = s.conn.into_inner().client {
                close_shared(c).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Instant;

    #[test]
    fn durations_read_well() {
        let texts: Vec<String> = [0.25, 1.0, 59.0, 60.0, 90.0, 3600.0, 7800.0, 86400.0]
            .into_iter()
            .map(|s| duration_text(Duration::from_secs_f64(s)))
            .collect();
        assert_eq!(
            texts,
            ["250ms", "1s", "59s", "1m", "1m 30s", "1h", "2h 10m", "24h"]
        );
    }

    #[test]
    fn broken_streams_are_retried_a_few_times_only() {
        let waits: Vec<Option<Duration>> = (0..7).map(|n| BoundedRetry.retry(n)).collect();
        let s = |n| Some(Duration::from_secs(n));
        assert_eq!(waits, [s(1), s(2), s(4), s(8), s(8), None, None]);
    }

    #[test]
    fn deadlines_come_from_the_run_the_tool_or_the_default() {
        let tool = |name: &str, timeout: Option<Duration>| ToolInfo {
            qualified: format!("nb__{name}"),
            server: "nb".into(),
            name: name.into(),
            description: String::new(),
            input_schema: json!({}),
            timeout,
        };
        let mut conns = McpConnections {
            servers: HashMap::new(),
            tools: vec![
                tool("execute_code", Some(Duration::from_secs(90))),
                tool("add_markdown", None),
            ],
            base_dir: PathBuf::new(),
            deadline: None,
        };
        let deadlines = |c: &McpConnections| {
            ["nb__execute_code", "nb__add_markdown", "nb__nope"].map(|t| c.deadline_for(t))
        };
        assert_eq!(
            deadlines(&conns),
            [
                Duration::from_secs(690),
                Duration::from_secs(86400),
                Duration::from_secs(86400)
            ]
        );
        conns.set_call_deadline(Some(Duration::from_secs(5)));
        assert_eq!(deadlines(&conns), [Duration::from_secs(5); 3]);
        conns.set_call_deadline(None);
        assert_eq!(deadlines(&conns)[0], Duration::from_secs(690));

        let meta = |v: Value| Some(rmcp::model::MetaObject(v.as_object().cloned().unwrap()));
        assert_eq!(
            meta_timeout(meta(json!({"seer/timeout_s": 1.5})).as_ref()),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            meta_timeout(meta(json!({"seer/timeout_s": 0})).as_ref()),
            None
        );
        assert_eq!(meta_timeout(meta(json!({"other": 3})).as_ref()), None);
        assert_eq!(meta_timeout(None), None);
    }

    /// A stdio server: a call past its deadline is an error (and the server goes on); a
    /// server killed in the middle of a call is an error, and the next call reaches a new
    /// server process.
    #[tokio::test]
    async fn a_call_past_its_deadline_or_to_a_killed_server_is_an_error_not_a_hang() {
        let python = crate::testenv::python();
        let script = crate::testenv::fixture("mcp_stdio_sleeper.py");
        let config = json!({"s": {"command": python, "args": [script]}});
        let cancel = CancellationToken::new();
        let dir = tempfile::tempdir().unwrap();
        let mut conns = McpConnections::connect(&config, dir.path(), &cancel)
            .await
            .unwrap();
        assert_eq!(conns.deadline_for("s__sleep"), DEFAULT_CALL_DEADLINE);

        let started = Instant::now();
        let late = conns
            .call_with_deadline(
                "s__sleep",
                json!({"seconds": 30}),
                &cancel,
                Duration::from_secs(1),
            )
            .await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            late,
            ToolOutput::error(
                "the call of `s__sleep` did not finish within 1s (its deadline) and was \
                 cancelled; the server was told to stop it."
            )
        );

        let pid = conns.call("s__pid", json!({}), &cancel).await;
        assert!(!pid.is_error, "{pid:?}");
        let pid: i32 = pid.text().parse().unwrap();
        let killer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            )
        });
        let started = Instant::now();
        let lost = conns
            .call("s__sleep", json!({"seconds": 60}), &cancel)
            .await;
        assert!(started.elapsed() < Duration::from_secs(30));
        killer.await.unwrap().unwrap();
        assert_eq!(
            lost,
            ToolOutput::error(
                "the connection to MCP server `s` was lost during this call (Transport \
                 closed): its result is lost, and it may or may not have finished. seer \
                 connected to the server again, so its tools work; check what the call did \
                 before repeating it (for a notebook cell: read_cell)."
            )
        );
        let again = conns.call("s__pid", json!({}), &cancel).await;
        assert!(!again.is_error, "{again:?}");
        assert_ne!(again.text(), pid.to_string(), "a new server process");
        conns.close().await;
    }

    /// An HTTP server that stops in the middle of a call: the call ends with an error
    /// within the stream retries, and so does the next one.
    #[tokio::test]
    async fn a_call_to_an_http_server_that_stopped_is_an_error_not_a_hang() {
        use crate::mcp_http::tests::Sleeper;

        let stop = CancellationToken::new();
        let http = crate::mcp_http::serve(Sleeper::new, stop.clone(), "sleeper")
            .await
            .unwrap();
        let url = http.url.clone();
        let cancel = CancellationToken::new();
        let dir = tempfile::tempdir().unwrap();
        let mut conns = McpConnections::connect(&http.mcp_config("h"), dir.path(), &cancel)
            .await
            .unwrap();
        let ok = conns
            .call("h__sleep", json!({"seconds": 0.1}), &cancel)
            .await;
        assert_eq!(
            ok,
            ToolOutput {
                parts: vec![ToolPart::Text("slept".into())],
                is_error: false
            }
        );

        let stopper = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            stop.cancel();
            http.join.await
        });
        let started = Instant::now();
        let lost = conns
            .call("h__sleep", json!({"seconds": 120}), &cancel)
            .await;
        let took = started.elapsed();
        stopper.await.unwrap().unwrap();
        assert!(took < Duration::from_secs(60), "{took:?}");
        assert!(lost.is_error, "{lost:?}");
        let text = lost.text();
        assert!(
            text.starts_with("the connection to MCP server `h` was lost during this call ("),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "(Transport closed): its result is lost, and it may or may not have finished. \
                 Connecting again failed (MCP server `h` ({url}) did not start a session: "
            )),
            "{text}"
        );
        let started = Instant::now();
        let next = conns
            .call("h__sleep", json!({"seconds": 0.1}), &cancel)
            .await;
        assert!(started.elapsed() < Duration::from_secs(30));
        assert!(next.is_error, "{next:?}");
        assert!(
            next.text().starts_with(&format!(
                "MCP server `h` is not reachable: MCP server `h` ({url}) did not start a session: "
            )),
            "{}",
            next.text()
        );
        conns.close().await;
    }

    #[test]
    fn tool_names_are_qualified_sanitized_short_and_unique() {
        let mut taken = vec![];
        assert_eq!(
            qualify("notebooks", "execute_code", &mut taken),
            "notebooks__execute_code"
        );
        assert_eq!(
            qualify("my server", "a.b/c", &mut taken),
            "my_server__a_b_c"
        );
        assert_eq!(
            qualify("my.server", "a.b/c", &mut taken),
            "my_server__a_b_c_2"
        );
        let long = qualify(&"s".repeat(40), &"t".repeat(40), &mut taken);
        assert_eq!(long.len(), 64);
        // Pinned: transcripts and replays name tools by these, so the hash must not drift.
        assert_eq!(
            long,
            "ssssssssssssssssssssssssssssssssssssssss__ttttttttttttt_13945ac9"
        );
        assert!(long.starts_with("ssss"));
        assert!(
            long.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        );
    }

    #[test]
    fn config_shapes() {
        let cfg = json!({"mcpServers": {"nb": {"type": "http", "url": "http://127.0.0.1:1/mcp", "headers": {"Authorization": "Bearer t"}},
            "ev": {"command": "npx", "args": ["-y", "x"]}}});
        let got = parse_config(&cfg).unwrap();
        assert_eq!(
            got,
            vec![
                (
                    "ev".to_string(),
                    ServerConfig::Stdio {
                        command: "npx".into(),
                        args: vec!["-y".into(), "x".into()],
                        env: Default::default()
                    }
                ),
                (
                    "nb".to_string(),
                    ServerConfig::Http {
                        url: "http://127.0.0.1:1/mcp".into(),
                        headers: [("Authorization".to_string(), "Bearer t".to_string())].into()
                    }
                ),
            ]
        );
        let err = parse_config(&json!({"x": {"type": "http", "uri": "u"}}))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mcp_config server `x`: unknown field `uri`; did you mean `url`?"),
            "{err}"
        );
        assert!(parse_config(&json!([1])).is_err());
    }
}
