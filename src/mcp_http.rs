//! Serving an MCP server (any rmcp `ServerHandler`) over streamable HTTP on loopback,
//! behind a bearer token. The notebook, shell and scoped MCP servers are all served this
//! way.
//!
//! [`serve`] binds `http://127.0.0.1:<random port>/mcp`. Every request must carry
//! `Authorization: Bearer <token>` (the token is 32 random bytes, hex), or it gets 401.
//! rmcp also rejects `Host` headers other than localhost/127.0.0.1/::1 with 403
//! (DNS-rebinding protection). [`HttpServer::mcp_config`] gives the `.mcp.json` entry for
//! outside clients such as Claude Code.
//!
//! # Session keep-alive
//! A client's MCP session ends when the client closes it (HTTP `DELETE`), when the server
//! stops, or after it has been idle for the keep-alive ([`HttpOptions::keep_alive`],
//! [`DEFAULT_KEEP_ALIVE`] unless `SEER_MCP_KEEPALIVE_S` says otherwise). Idle means that
//! no request is running and no stream is open: a tool call that runs for hours (a long
//! notebook cell) keeps its session, and so does a client that keeps its standalone
//! `GET` stream open (rmcp's and the official SDKs' clients do). rmcp's own keep-alive
//! would count the time since the last message instead, and end a session in the middle of
//! a quiet call (its default, 300 s, cancelled long cells), so it is turned off and
//! [`IdleSessions`] does the counting. A request for a session that has ended gets 404, on
//! which clients start a new session (rmcp's does so by itself).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt as _};
use rmcp::ServerHandler;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::ServerSseMessage;
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError, SessionError,
};
use rmcp::transport::streamable_http_server::{
    SessionId, SessionManager, StreamableHttpServerConfig, StreamableHttpService,
};
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

/// The default [`HttpOptions::keep_alive`]: an MCP session idle (no request running, no
/// stream open) for an hour ends.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(3600);

/// The variable that sets the keep-alive in seconds (`0`: sessions never expire).
pub const KEEP_ALIVE_ENV: &str = "SEER_MCP_KEEPALIVE_S";

/// Settings of an HTTP MCP server.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpOptions {
    /// How long a session may be idle (no request running, no stream open) before it is
    /// ended; `None`: never.
    pub keep_alive: Option<Duration>,
}

impl Default for HttpOptions {
    /// The keep-alive from `SEER_MCP_KEEPALIVE_S` if set, else [`DEFAULT_KEEP_ALIVE`].
    fn default() -> Self {
        Self {
            keep_alive: keep_alive_setting(std::env::var(KEEP_ALIVE_ENV).ok().as_deref()),
        }
    }
}

/// The keep-alive a `SEER_MCP_KEEPALIVE_S` value asks for: seconds (fractions allowed), `0`
/// for never; unset or unreadable (with a warning) is [`DEFAULT_KEEP_ALIVE`].
fn keep_alive_setting(value: Option<&str>) -> Option<Duration> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Some(DEFAULT_KEEP_ALIVE);
    };
    match value.parse::<f64>() {
        Ok(0.0) => None,
        Ok(s) if s > 0.0 && s.is_finite() => Some(Duration::from_secs_f64(s)),
        _ => {
            tracing::warn!(
                "{KEEP_ALIVE_ENV}={value:?} is not a number of seconds; using {}s",
                DEFAULT_KEEP_ALIVE.as_secs()
            );
            Some(DEFAULT_KEEP_ALIVE)
        }
    }
}

/// Serves an MCP server (`make` builds one per client session) over streamable HTTP on a
/// random loopback port, behind a fresh bearer token, until `cancel` is cancelled. `what`
/// names the server in log lines and errors ("notebook", "shell", ...). The options are
/// [`HttpOptions::default`].
pub async fn serve<S, F>(
    make: F,
    cancel: CancellationToken,
    what: &'static str,
) -> anyhow::Result<HttpServer>
where
    S: ServerHandler,
    F: Fn() -> S + Send + Sync + 'static,
{
    serve_with(make, cancel, what, HttpOptions::default()).await
}

/// [`serve`] with explicit options.
pub async fn serve_with<S, F>(
    make: F,
    cancel: CancellationToken,
    what: &'static str,
    opts: HttpOptions,
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
    let sessions = Arc::new(IdleSessions::new(what));
    if let Some(keep_alive) = opts.keep_alive {
        tokio::spawn(sessions.clone().end_idle(keep_alive, cancel.child_token()));
    }
    let service = StreamableHttpService::new(move || Ok(make()), sessions, config);
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

/// rmcp's in-memory session manager, with a keep-alive that counts idle time only (see the
/// module docs). Every stream it hands out (a request's response stream, a standalone or
/// resumed stream) counts as activity until the HTTP server drops it, which it does when the
/// stream ends or the client disconnects.
pub struct IdleSessions {
    inner: LocalSessionManager,
    activity: Arc<Mutex<HashMap<SessionId, Activity>>>,
    what: &'static str,
}

/// What [`IdleSessions`] knows of one session.
#[derive(Debug)]
struct Activity {
    /// Streams open now.
    open: usize,
    /// When the last stream closed or the last message came in.
    since: Instant,
}

/// Counts one open stream of a session, until dropped.
struct OpenStream {
    activity: Arc<Mutex<HashMap<SessionId, Activity>>>,
    id: SessionId,
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        if let Ok(mut map) = self.activity.lock()
            && let Some(a) = map.get_mut(&self.id)
        {
            a.open = a.open.saturating_sub(1);
            a.since = Instant::now();
        }
    }
}

impl IdleSessions {
    fn new(what: &'static str) -> Self {
        let mut inner = LocalSessionManager::default();
        // rmcp's keep-alive counts the time since the last message, so it would end a
        // session during a long, quiet tool call; `end_idle` does this instead.
        inner.session_config.keep_alive = None;
        Self {
            inner,
            activity: Arc::default(),
            what,
        }
    }

    /// Notes a message or a new stream of a session.
    fn touch(&self, id: &SessionId, opened: bool) -> Option<OpenStream> {
        let mut map = self.activity.lock().ok()?;
        let a = map.entry(id.clone()).or_insert(Activity {
            open: 0,
            since: Instant::now(),
        });
        a.since = Instant::now();
        if !opened {
            return None;
        }
        a.open += 1;
        Some(OpenStream {
            activity: self.activity.clone(),
            id: id.clone(),
        })
    }

    /// A stream that counts as activity while it is open.
    fn counted<T: Send + Sync + 'static>(
        &self,
        id: &SessionId,
        stream: impl Stream<Item = T> + Send + Sync + 'static,
    ) -> impl Stream<Item = T> + Send + Sync + 'static {
        let open = self.touch(id, true);
        stream.map(move |item| {
            let _open = &open;
            item
        })
    }

    /// After an error of rmcp's session: a session whose worker is gone is removed, so
    /// that its client gets 404 (and starts a new session) instead of errors or empty
    /// streams.
    async fn check<T>(
        &self,
        id: &SessionId,
        r: Result<T, LocalSessionManagerError>,
    ) -> Result<T, LocalSessionManagerError> {
        if let Err(LocalSessionManagerError::SessionError(SessionError::SessionServiceTerminated)) =
            &r
        {
            tracing::debug!(session = %id, "{} MCP session ended by itself; removing it", self.what);
            self.forget(id).await;
        }
        r
    }

    async fn forget(&self, id: &SessionId) {
        if let Ok(mut map) = self.activity.lock() {
            map.remove(id);
        }
        if let Err(e) = self.inner.close_session(id).await {
            tracing::debug!(session = %id, "closing {} MCP session: {e}", self.what);
        }
    }

    /// Every so often, ends the sessions idle for longer than `keep_alive`, until `cancel`.
    async fn end_idle(self: Arc<Self>, keep_alive: Duration, cancel: CancellationToken) {
        let tick = (keep_alive / 4).clamp(Duration::from_millis(50), Duration::from_secs(30));
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(tick) => {}
            }
            // Taken out of the map under one lock, so no stream opens in between.
            let idle: Vec<SessionId> = match self.activity.lock() {
                Ok(mut map) => {
                    let idle: Vec<SessionId> = map
                        .iter()
                        .filter(|(_, a)| a.open == 0 && a.since.elapsed() >= keep_alive)
                        .map(|(id, _)| id.clone())
                        .collect();
                    for id in &idle {
                        map.remove(id);
                    }
                    idle
                }
                Err(_) => return,
            };
            for id in idle {
                tracing::info!(
                    session = %id,
                    "ending a {} MCP session idle for {}s (keep-alive)",
                    self.what,
                    keep_alive.as_secs_f64()
                );
                self.forget(&id).await;
            }
        }
    }
}

impl SessionManager for IdleSessions {
    type Error = LocalSessionManagerError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let (id, transport) = self.inner.create_session().await?;
        self.touch(&id, false);
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.touch(id, false);
        let r = self.inner.initialize_session(id, message).await;
        self.check(id, r).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        if let Ok(mut map) = self.activity.lock() {
            map.remove(id);
        }
        self.inner.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id, false);
        let r = self.inner.create_stream(id, message).await;
        let stream = self.check(id, r).await?;
        Ok(self.counted(id, stream))
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.touch(id, false);
        let r = self.inner.accept_message(id, message).await;
        self.check(id, r).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id, false);
        let r = self.inner.create_standalone_stream(id).await;
        let stream = self.check(id, r).await?;
        Ok(self.counted(id, stream))
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id, false);
        let r = self.inner.resume(id, last_event_id).await;
        let stream = self.check(id, r).await?;
        Ok(self.counted(id, stream))
    }
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
pub(crate) mod tests;
