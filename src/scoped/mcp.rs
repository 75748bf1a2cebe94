//! The functions of a served interface as MCP tools (`expose_as: "mcp"`).
//!
//! One tool per exposed function, named like the function, with the function's argument
//! schema as `inputSchema` and its docstring as description. A call goes to the RPC server;
//! the result is the return value as JSON text. A remote exception, bad arguments or an
//! unserializable result is a tool error (`is_error`) whose text has the exception type,
//! message and the remote traceback.
//!
//! Served over streamable HTTP on `http://127.0.0.1:<random port>/mcp` behind a bearer
//! token (401 without a valid one), like the notebook server, or in-process
//! ([`connect_in_process`]).

use std::net::Ipv4Addr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData,
    Implementation, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
    Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{RoleServer, ServerHandler, ServiceExt};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{RpcServer, new_token};

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

/// A running streamable-HTTP server.
pub struct HttpServer {
    /// `http://127.0.0.1:PORT/mcp`
    pub url: String,
    pub token: String,
    pub join: JoinHandle<()>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl HttpServer {
    /// `{"<name>": {"type": "http", "url": ..., "headers": {"Authorization": "Bearer ..."}}}`
    pub fn mcp_config(&self, server_name: &str) -> Value {
        let mut config = serde_json::Map::new();
        config.insert(
            server_name.to_string(),
            serde_json::json!({
                "type": "http",
                "url": self.url,
                "headers": {"Authorization": format!("Bearer {}", self.token)},
            }),
        );
        Value::Object(config)
    }
}

/// Serves the tools over streamable HTTP on a random loopback port until `cancel`.
pub async fn serve_http(
    rpc: Arc<RpcServer>,
    cancel: CancellationToken,
) -> anyhow::Result<HttpServer> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .context("binding 127.0.0.1:0 for the scoped MCP server")?;
    let addr = listener
        .local_addr()
        .context("reading the scoped MCP server's address")?;
    let token = new_token();
    let handler = ScopedMcp::new(rpc);
    let config =
        StreamableHttpServerConfig::default().with_cancellation_token(cancel.child_token());
    let service = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let app = axum::Router::new().nest_service("/mcp", service).layer(
        axum::middleware::from_fn_with_state(Arc::<str>::from(token.as_str()), require_bearer),
    );
    let url = format!("http://{addr}/mcp");
    tracing::info!(%url, "scoped MCP server listening");
    let join = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(%addr, error = %e, "scoped MCP HTTP server failed");
        }
    });
    Ok(HttpServer { url, token, join })
}

async fn require_bearer(State(expected): State<Arc<str>>, req: Request, next: Next) -> Response {
    let authorized = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .is_some_and(|(scheme, token)| {
            scheme.eq_ignore_ascii_case("bearer")
                && constant_time_eq(token.trim().as_bytes(), expected.as_bytes())
        });
    if authorized {
        return next.run(req).await;
    }
    tracing::warn!(method = %req.method(), uri = %req.uri(),
        "scoped MCP request without a valid bearer token");
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "missing or invalid bearer token\n",
    )
        .into_response()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}
