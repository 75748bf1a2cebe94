//! Serving an MCP server (any rmcp `ServerHandler`) over streamable HTTP on loopback,
//! behind a bearer token. The notebook, shell and scoped MCP servers are all served this
//! way.
//!
//! [`serve`] binds `http://127.0.0.1:<random port>/mcp`. Every request must carry
//! `Authorization: Bearer <token>` (the token is 32 random bytes, hex), or it gets 401.
//! rmcp also rejects `Host` headers other than localhost/127.0.0.1/::1 with 403
//! (DNS-rebinding protection). [`HttpServer::mcp_config`] gives the `.mcp.json` entry for
//! outside clients such as Claude Code.

use std::net::Ipv4Addr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::ServerHandler;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running streamable-HTTP MCP server.
pub struct HttpServer {
    /// `http://127.0.0.1:PORT/mcp`
    pub url: String,
    /// The bearer token every request must carry.
    pub token: String,
    /// Ends after the cancellation token passed to [`serve`] is cancelled.
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
    /// The `.mcp.json` entry for this server:
    /// `{"<name>": {"type": "http", "url": ..., "headers": {"Authorization": "Bearer <token>"}}}`.
    pub fn mcp_config(&self, server_name: &str) -> Value {
        let entry = serde_json::json!({
            "type": "http",
            "url": self.url,
            "headers": {"Authorization": format!("Bearer {}", self.token)},
        });
        let mut config = serde_json::Map::new();
        config.insert(server_name.to_string(), entry);
        Value::Object(config)
    }
}

/// What the token check knows: the token, and which server it guards (for the log).
#[derive(Clone)]
struct Guard {
    token: Arc<str>,
    what: &'static str,
}

/// Serves an MCP server (`make` builds one per client session) over streamable HTTP on a
/// random loopback port, behind a fresh bearer token, until `cancel` is cancelled. `what`
/// names the server in log lines and errors ("notebook", "shell", ...).
pub async fn serve<S, F>(
    make: F,
    cancel: CancellationToken,
    what: &'static str,
) -> anyhow::Result<HttpServer>
where
    S: ServerHandler,
    F: Fn() -> S + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .with_context(|| format!("binding 127.0.0.1:0 for the {what} MCP server"))?;
    let addr = listener
        .local_addr()
        .with_context(|| format!("reading the {what} MCP server's address"))?;
    let token = new_token();
    let config =
        StreamableHttpServerConfig::default().with_cancellation_token(cancel.child_token());
    let service = StreamableHttpService::new(
        move || Ok(make()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let guard = Guard {
        token: Arc::from(token.as_str()),
        what,
    };
    let app = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(guard, require_bearer));
    let url = format!("http://{addr}/mcp");
    tracing::info!(%url, "{what} MCP server listening");
    let join = tokio::spawn(async move {
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await;
        match served {
            Ok(()) => tracing::debug!(%addr, "{what} MCP HTTP server stopped"),
            Err(e) => tracing::error!(%addr, error = %e, "{what} MCP HTTP server failed"),
        }
    });
    Ok(HttpServer { url, token, join })
}

/// 32 random bytes as 64 hex characters. The bytes come from two v4 UUIDs (the OS random
/// generator), so 244 bits are random: the version and variant bits are fixed.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    hex::encode(bytes)
}

async fn require_bearer(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    let authorized = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .is_some_and(|(scheme, token)| {
            scheme.eq_ignore_ascii_case("bearer")
                && constant_time_eq(token.trim().as_bytes(), guard.token.as_bytes())
        });
    if authorized {
        return next.run(req).await;
    }
    crate::refusals::REFUSALS.note(guard.what, crate::refusals::peer(&req));
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "missing or invalid bearer token\n",
    )
        .into_response()
}

/// Compares in time that depends only on the lengths (the token's length is not secret).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
#[path = "mcp_http_tests.rs"]
mod tests;
