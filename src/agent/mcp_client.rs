//! Connections to the MCP servers named in an agent's `mcp_config` (the `.mcp.json`
//! shape): `type: "stdio"` commands, spawned and ended by seer, and `type: "http"`
//! streamable-HTTP urls with headers. Tool names are qualified per server
//! (`server__tool`), sanitized to what LLM providers accept and at most 64 characters.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Stdio;

use anyhow::{Context, Result, anyhow, bail};
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use crate::cancel::cancellable;

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
    clients: HashMap<String, RunningService<RoleClient, ()>>,
    tools: Vec<ToolInfo>,
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
            clients: HashMap::new(),
            tools: vec![],
        };
        let mut taken = vec![];
        for (name, cfg) in servers {
            let client = cancellable(cancel, connect_one(&name, &cfg, base_dir))
                .await
                .and_then(|c| c);
            let client = match client {
                Ok(c) => c,
                Err(e) => {
                    me.close().await;
                    return Err(e);
                }
            };
            let tools = match client.list_all_tools().await {
                Ok(t) => t,
                Err(e) => {
                    me.close().await;
                    bail!("MCP server `{name}`: listing its tools failed: {e}");
                }
            };
            for t in tools {
                me.tools.push(ToolInfo {
                    qualified: qualify(&name, &t.name, &mut taken),
                    server: name.clone(),
                    name: t.name.to_string(),
                    description: t.description.map(|d| d.to_string()).unwrap_or_default(),
                    input_schema: Value::Object((*t.input_schema).clone()),
                });
            }
            me.clients.insert(name, client);
        }
        Ok(me)
    }

    pub fn tools(&self) -> &[ToolInfo] {
        &self.tools
    }

    /// Calls a tool by its qualified name. Failures of the call (unknown tool, protocol
    /// errors) come back as error outputs: the model is told, the run goes on.
    pub async fn call(
        &self,
        qualified: &str,
        args: Value,
        cancel: &CancellationToken,
    ) -> ToolOutput {
        let Some(tool) = self.tools.iter().find(|t| t.qualified == qualified) else {
            let names: Vec<&str> = self.tools.iter().map(|t| t.qualified.as_str()).collect();
            return ToolOutput::error(format!(
                "unknown tool `{qualified}`; the tools are: {}",
                names.join(", ")
            ));
        };
        let Some(client) = self.clients.get(&tool.server) else {
            return ToolOutput::error(format!("server `{}` is not connected", tool.server));
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
        let call =
            client.call_tool(CallToolRequestParams::new(tool.name.clone()).with_arguments(args));
        let result = tokio::select! {
            r = call => r,
            // Dropping the call makes rmcp send `notifications/cancelled`; a server
            // that can stop its work does (seer's notebook server interrupts the kernel).
            _ = cancel.cancelled() => return ToolOutput::error("cancelled"),
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
            Err(e) => ToolOutput::error(format!("the tool call failed: {e}")),
        }
    }

    /// Ends every session (stdio servers are stopped).
    pub async fn close(&mut self) {
        for (_, c) in self.clients.drain() {
            let _ = c.cancel().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
