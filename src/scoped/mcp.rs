//! The functions of a served interface as MCP tools (`expose_as: "mcp"`).
//!
//! One tool per exposed function, named like the function, with the function's argument
//! schema as `inputSchema` and its docstring as description. A call goes to the RPC server;
//! the result is the return value as JSON text. A remote exception, bad arguments or an
//! unserializable result is a tool error (`is_error`) whose text has the exception type,
//! message and the remote traceback.
//!
//! Served over streamable HTTP on `http://127.0.0.1:<random port>/mcp` behind a bearer
//! token (401 without a valid one) by [`crate::mcp_http`], like the notebook server, or
//! in-process ([`connect_in_process`]).

use std::sync::Arc;

use anyhow::Context as _;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData,
    Implementation, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
    Tool,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, ServiceExt};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::RpcServer;
use crate::mcp_http;

/// The MCP face of one RPC server.
#[derive(Clone)]
pub struct ScopedMcp {
    rpc: Arc<RpcServer>,
    tools: Arc<Vec<Tool>>,
}

impl ScopedMcp {
    pub fn new(rpc: Arc<RpcServer>) -> Self {
        let tools = rpc
            .functions
            .iter()
            .map(|f| {
                let schema = match &f.parameters {
                    Value::Object(m) => m.clone(),
                    _ => serde_json::Map::new(),
                };
                let mut description = if f.description.is_empty() {
                    format!("{}{}", f.name, f.signature)
                } else {
                    f.description.clone()
                };
                if !f.returns.is_empty() {
                    description.push_str(&format!("\n\nReturns: {}", f.returns));
                }
                Tool::new(f.name.clone(), description, schema)
            })
            .collect();
        Self {
            rpc,
            tools: Arc::new(tools),
        }
    }

    async fn call(&self, req: CallToolRequestParams) -> CallToolResult {
        let name = req.name.to_string();
        if self.rpc.function(&name).is_none() {
            return CallToolResult::error(vec![ContentBlock::text(format!(
                "no tool `{name}`; tools: {}",
                self.rpc
                    .functions
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))]);
        }
        let args = Value::Object(req.arguments.unwrap_or_default());
        match self.rpc.call(&name, args).await {
            Ok(v) => {
                let text = match &v {
                    Value::String(s) => s.clone(),
                    other => serde_json::to_string_pretty(other).unwrap_or_default(),
                };
                CallToolResult::success(vec![ContentBlock::text(text)])
            }
            Err(e) => CallToolResult::error(vec![ContentBlock::text(e.to_string())]),
        }
    }
}

impl ServerHandler for ScopedMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                format!("seer-scoped-{}", self.rpc.interface),
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(format!(
                "Functions of `{}` that run in a scoped sandbox. Arguments and results are JSON.",
                self.rpc.interface
            ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.to_vec()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        Ok(self.call(request).await.into())
    }
}

/// A client connected to a new server over an in-memory pipe (for seer's own use, e.g. the
/// benchmark). The server runs until the client is dropped.
pub async fn connect_in_process(
    rpc: Arc<RpcServer>,
) -> anyhow::Result<rmcp::service::RunningService<rmcp::RoleClient, ()>> {
    let (server_end, client_end) = tokio::io::duplex(1 << 20);
    let srv = ScopedMcp::new(rpc);
    tokio::spawn(async move {
        match srv.serve(server_end).await {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(e) => tracing::warn!(error = %e, "in-process scoped MCP server failed to start"),
        }
    });
    ().serve(client_end)
        .await
        .context("connecting the in-process scoped MCP client")
}

pub use crate::mcp_http::HttpServer;

/// Serves the tools over streamable HTTP on a random loopback port, behind a bearer token,
/// until `cancel`.
pub async fn serve_http(
    rpc: Arc<RpcServer>,
    cancel: CancellationToken,
) -> anyhow::Result<HttpServer> {
    let handler = ScopedMcp::new(rpc);
    mcp_http::serve(move || handler.clone(), cancel, "scoped").await
}
