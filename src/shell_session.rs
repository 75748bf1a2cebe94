//! Shell sessions: an agent works with commands instead of a notebook.
//!
//! - `create_cli_session(sandbox, workspace)`: shell and Python run inside the sandbox, in
//!   its workspace folder, with the workspace's libraries importable.
//! - `create_local_session(workspace, #{ workspace_dir, name })`: the agent works in a
//!   local folder; Python comes from a local sandbox env (so packages and libraries are
//!   there), commands run in that folder.
//!
//! Either way the agent gets an MCP server (streamable HTTP on loopback, bearer token)
//! with `run_shell` and `run_python`; output is cut in the middle past a limit and each
//! call has a timeout.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::config::positive_seconds;
use crate::mcp_http::{self, HttpServer};
use crate::notebook::render::truncate_middle;
use crate::sandbox::{Command, ExecOptions, ExecOutput, Sandbox};

/// Where and how commands run.
pub struct ShellSession {
    pub name: String,
    pub sandbox: Arc<dyn Sandbox>,
    /// Working directory: the sandbox workspace, or a host folder (local sessions).
    pub host_cwd: Option<std::path::PathBuf>,
    /// Extra environment (e.g. `PYTHONPATH` with the libraries).
    pub env: BTreeMap<String, String>,
    /// Per-call timeout unless the call gives one.
    pub timeout: Duration,
    pub max_output_chars: usize,
    cancel: CancellationToken,
    http: tokio::sync::OnceCell<HttpServer>,
}

impl ShellSession {
    pub fn new(
        name: String,
        sandbox: Arc<dyn Sandbox>,
        host_cwd: Option<std::path::PathBuf>,
        env: BTreeMap<String, String>,
        timeout: Option<Duration>,
        cancel: &CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            name,
            sandbox,
            host_cwd,
            env,
            timeout: timeout.unwrap_or(Duration::from_secs(600)),
            max_output_chars: 20_000,
            cancel: cancel.child_token(),
            http: tokio::sync::OnceCell::new(),
        })
    }

    /// Runs a command the way the tools do; its output and errors come back with the
    /// sandbox's secret values redacted.
    pub async fn run(&self, cmd: Command, timeout: Option<Duration>) -> anyhow::Result<ExecOutput> {
        let opts = ExecOptions {
            timeout: Some(timeout.unwrap_or(self.timeout)),
            cwd: None,
            host_cwd: self.host_cwd.clone(),
            env: self.env.clone(),
        };
        let sb = &self.sandbox;
        match sb.exec(cmd, opts, &self.cancel).await {
            Ok(out) => Ok(ExecOutput {
                stdout: sb.redact(&out.stdout),
                stderr: sb.redact(&out.stderr),
                exit_code: out.exit_code,
            }),
            Err(e) => Err(anyhow::anyhow!(sb.redact(&format!("{e:#}")))),
        }
    }

    /// The `mcp_config` for agents: starts the HTTP server on first use.
    pub async fn mcp_config(self: &Arc<Self>) -> anyhow::Result<Value> {
        let me = self.clone();
        let http = self
            .http
            .get_or_try_init(|| async move {
                let m = me.clone();
                mcp_http::serve(
                    move || ShellServer::new(m.clone()),
                    me.cancel.clone(),
                    "shell",
                )
                .await
            })
            .await?;
        Ok(http.mcp_config("shell"))
    }

    /// Stops the MCP server.
    pub fn close(&self) {
        self.cancel.cancel();
    }
}

impl Drop for ShellSession {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

const INSTRUCTIONS: &str = "\
    Tools to work with commands: run_shell runs a bash command, run_python runs a Python \
    program (a fresh process each time: nothing persists between calls except files). Both run \
    in the session's working folder, where the workspace's libraries are importable. Output \
    past the server's limit is cut in the middle; each call has a timeout.";

const RUN_SHELL: &str = "\
    Run a bash command in the working folder and wait for it. Returns `[exit code N]`, then \
    stdout, then stderr after a `[stderr]` line. `timeout_s` (default: the session's) stops \
    the command and its children when it runs longer.";

const RUN_PYTHON: &str = "\
    Run Python code as a new process (`python -c`) in the working folder and wait for it. \
    Nothing persists between calls except files; print what you need to see. Returns the same \
    as run_shell.";

/// Arguments of `run_shell`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RunShellArgs {
    /// The bash command.
    pub command: String,
    /// Seconds before the command is stopped.
    #[serde(default)]
    pub timeout_s: Option<f64>,
}

/// Arguments of `run_python`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RunPythonArgs {
    /// The Python program.
    pub code: String,
    /// Seconds before the program is stopped.
    #[serde(default)]
    pub timeout_s: Option<f64>,
}

/// The MCP server of a shell session.
#[derive(Clone)]
pub struct ShellServer {
    session: Arc<ShellSession>,
    tool_router: ToolRouter<Self>,
}

impl ShellServer {
    pub fn new(session: Arc<ShellSession>) -> Self {
        Self {
            session,
            tool_router: Self::tool_router(),
        }
    }

    /// Runs `cmd` for the tool `tool` (named in messages).
    async fn run(&self, tool: &str, cmd: Command, timeout_s: Option<f64>) -> CallToolResult {
        let timeout = match timeout_s.map(|t| positive_seconds("timeout_s", t)) {
            Some(Err(e)) => {
                return CallToolResult::error(vec![ContentBlock::text(format!("{tool}: {e}"))]);
            }
            Some(Ok(t)) => Some(t),
            None => None,
        };
        match self.session.run(cmd, timeout).await {
            Ok(out) => {
                let mut text = format!("[exit code {}]\n{}", out.exit_code, out.stdout);
                if !out.stderr.trim().is_empty() {
                    text.push_str("\n[stderr]\n");
                    text.push_str(&out.stderr);
                }
                let text = truncate_middle(&text, self.session.max_output_chars);
                if out.exit_code == 0 {
                    CallToolResult::success(vec![ContentBlock::text(text)])
                } else {
                    CallToolResult::error(vec![ContentBlock::text(text)])
                }
            }
            Err(e) => CallToolResult::error(vec![ContentBlock::text(format!("{e:#}"))]),
        }
    }
}

#[tool_router]
impl ShellServer {
    #[tool(name = "run_shell", description = RUN_SHELL)]
    async fn run_shell(&self, Parameters(args): Parameters<RunShellArgs>) -> CallToolResult {
        self.run("run_shell", Command::Shell(args.command), args.timeout_s)
            .await
    }

    #[tool(name = "run_python", description = RUN_PYTHON)]
    async fn run_python(&self, Parameters(args): Parameters<RunPythonArgs>) -> CallToolResult {
        self.run("run_python", Command::Python(args.code), args.timeout_s)
            .await
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for ShellServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("seer-shell", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}
