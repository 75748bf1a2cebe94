//! The MCP server through which an agent drives a notebook session: the tools, their
//! descriptions, and the transports they are served on.
//!
//! The session itself (a live Jupyter kernel plus the `.ipynb` writer) lives elsewhere; this
//! module sees it only through the [`NotebookTools`] trait and turns it into MCP tools, with
//! the names of the Python Seer's notebook server:
//!
//! | tool | arguments | does |
//! |---|---|---|
//! | `execute_code` | `code: str` | runs code in a new code cell |
//! | `add_markdown` | `content: str` | appends a markdown cell |
//! | `edit_cell` | `code: str`, `cell_index: int = -1` | replaces a cell's source and re-runs it |
//! | `read_cell` | `cell_index: int`, `offset: int = 0`, `limit: int` | reads a cell back, paged |
//! | `interrupt_kernel` | | interrupts the running code (KeyboardInterrupt) |
//! | `restart_kernel` | | restarts the kernel; every variable is lost |
//! | `shutdown_session` | | ends the session |
//!
//! # Results of `execute_code` and `edit_cell`
//! One text block, then one image block per image output, as described in
//! [`super::render`].
//!
//! # `read_cell`
//! The cell as the notebook holds it (secrets already redacted), rendered by
//! [`super::render::render_cell_page`]: a header, `[source]` and the source, `[outputs]` and
//! the outputs as `execute_code` shows them but never cut, paged by `offset` and `limit`
//! (characters; `limit` defaults to [`ServerOptions::max_output_chars`]), and a last line
//! `[shown: characters A-B of T; ...]` that gives the next page's `offset`. It exists so that
//! a harness may replace old tool results in an agent's context with a stub ("output of
//! cell N: use read_cell") and the agent can still read them.
//!
//! # Deadlines
//! When the session has a cell timeout ([`NotebookTools::cell_timeout`]), `execute_code`
//! and `edit_cell` carry it in their `_meta` as [`TIMEOUT_META`] (seconds), so that a
//! client can bound its wait (seer's agent client adds a grace period for the interrupt
//! and a kernel restart: see [`crate::agent::mcp_client`]).
//!
//! # `is_error`
//! `is_error` is `Some(true)` only when a [`NotebookTools`] method returns `Err`: the
//! request could not be carried out (no such cell, a markdown cell, the session is gone).
//! The text is then the error with its context chain.
//!
//! A Python exception ([`RunStatus::Error`](super::RunStatus::Error)), a timeout, an abort
//! or a dead kernel are normal results with `is_error: Some(false)`. The cell exists in the notebook and has an
//! index for `edit_cell`, and the text says what happened. An exception is an ordinary
//! outcome of exploratory code, not a failure of the tool. Harnesses treat `is_error`
//! results as broken tool calls: Claude Code shows them as tool failures, and seer's own
//! loop reports repeated identical failing calls. So flagging exceptions would mislabel
//! normal work.
//!
//! # Transports
//! - [`server`] builds the [`NotebookServer`] (an rmcp `ServerHandler`), to serve on any
//!   rmcp transport.
//! - [`connect_in_process`] returns a client connected to a new server over an in-memory
//!   duplex pipe. This is for seer's own agent loop.
//! - [`serve_http`] serves streamable HTTP on `http://127.0.0.1:<random port>/mcp` behind a
//!   bearer token (see [`crate::mcp_http`]). [`HttpServer::mcp_config`] gives the
//!   `.mcp.json` entry for outside clients such as Claude Code.
//! - [`serve_stdio`] serves on stdin/stdout until the client closes. Stdout carries the
//!   protocol, so this module logs only through `tracing`, which must write to stderr.
//!
//! ```text
//! let tools: Arc<dyn NotebookTools> = Arc::new(session);
//! let client = connect_in_process(tools.clone(), ServerOptions::default()).await?;
//! let cancel = CancellationToken::new();
//! let http = serve_http(tools, ServerOptions::default(), cancel.clone()).await?;
//! std::fs::write(".mcp.json", serde_json::to_string_pretty(&http.mcp_config("notebook"))?)?;
//! // ... later
//! cancel.cancel();
//! http.join.await?;
//! ```
//!
//! `shutdown_session` only calls [`NotebookTools::shutdown`]. Whoever started a transport
//! stops it (cancel the token, drop the client).

use std::sync::Arc;

use anyhow::Context as _;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use super::nbformat::Cell;
use super::render::{render_cell_page, render_cell_run};
use crate::mcp_http::HttpServer;

use super::CellRun;

/// What the notebook session offers to the MCP server.
#[async_trait::async_trait]
pub trait NotebookTools: Send + Sync + 'static {
    async fn execute_code(&self, code: String) -> anyhow::Result<CellRun>;
    /// Returns the new cell's index.
    async fn add_markdown(&self, content: String) -> anyhow::Result<usize>;
    /// Negative indices count from the end, -1 is the last cell; the cell is re-executed.
    async fn edit_cell(&self, code: String, cell_index: i64) -> anyhow::Result<CellRun>;
    async fn interrupt(&self) -> anyhow::Result<()>;
    async fn restart(&self) -> anyhow::Result<()>;
    async fn shutdown(&self) -> anyhow::Result<()>;
    /// The cell at `cell_index` (negative counts from the end) and its index, as the
    /// notebook holds it.
    fn read_cell(&self, cell_index: i64) -> anyhow::Result<(usize, Cell)>;
    /// The timeout a cell run by `execute_code` or `edit_cell` gets, if any.
    fn cell_timeout(&self) -> Option<std::time::Duration> {
        None
    }
}

/// The `_meta` key of `execute_code` and `edit_cell` that carries the session's cell
/// timeout in seconds (absent when cells have none).
pub const TIMEOUT_META: &str = "seer/timeout_s";

/// The default for [`ServerOptions::max_output_chars`].
pub const DEFAULT_MAX_OUTPUT_CHARS: usize = 20_000;

/// Settings of the notebook MCP server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerOptions {
    /// Output text longer than this many characters is cut in the middle (0: never cut).
    pub max_output_chars: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            max_output_chars: DEFAULT_MAX_OUTPUT_CHARS,
        }
    }
}

const SERVER_NAME: &str = "seer-notebook";

const INSTRUCTIONS: &str = "\
    Tools to work in a Jupyter notebook backed by a live Python kernel. Run code with \
    execute_code: each call adds a cell, and variables, imports and loaded models persist between \
    cells. Write down findings with add_markdown. Fix a cell that failed with edit_cell instead of \
    adding a new one. Read an earlier cell's source and output again with read_cell. Images (e.g. \
    plots) come back as image content. Stop long-running code with interrupt_kernel. Call \
    shutdown_session once, when the work is finished.";

const EXECUTE_CODE: &str = "\
    Run Python code in a new code cell at the end of the notebook and wait for it to finish. The \
    kernel is persistent: variables, imports and loaded models from earlier cells are still there. \
    IPython syntax works (e.g. `!pip list`, `%timeit`). Returns text that starts with a header \
    `[cell N, execution_count M]` (N is the cell's index, to use with edit_cell), followed by the \
    outputs in order: printed text (stderr after a `[stderr]` line), the value of the last \
    expression, rich displays, and for an exception `Name: message` and the traceback. A status \
    line follows if the code raised an exception, timed out, was aborted, or the kernel died. \
    Images (matplotlib figures, PNG/JPEG displays) come back as image content after the text. \
    Output longer than the server's limit is cut in the middle, and a line says how many \
    characters were left out; print summaries rather than huge objects. Code that runs too long \
    can be stopped with interrupt_kernel.";

const ADD_MARKDOWN: &str = "\
    Append a markdown cell to the notebook (notes, explanations, findings, headings). It is not \
    executed. Returns the new cell's index.";

const EDIT_CELL: &str = "\
    Replace the source of an existing code cell and run it again: its old outputs are replaced by \
    the new ones. Use it to fix a cell that failed rather than adding a new cell. `cell_index` is \
    the N of a `[cell N, ...]` header from execute_code or edit_cell. Negative values count from \
    the end: -1 (the default) is the last cell. The code runs in the kernel's current state, not \
    from scratch: variables set by any earlier execution still exist. Returns the same as \
    execute_code. It is an error if the index does not exist or names a markdown cell.";

const READ_CELL: &str = "\
    Read back a cell of the notebook: its source and its outputs as the notebook holds them. \
    Nothing is run. Use it to see an earlier cell's output again, for example when an old tool \
    result was removed from the conversation to save space. `cell_index` is the N of a \
    `[cell N, ...]` header (negative values count from the end: -1 is the last cell). The \
    text has a header, a `[source]` line and the code, then an `[outputs]` line and the outputs \
    as execute_code shows them, never cut in the middle. Long cells come in pages of at most \
    `limit` characters (default: the server's output limit); the last line says which \
    characters were shown and, when there is more, the `offset` to pass for the next page. \
    Images are attached to the page that mentions them.";

const INTERRUPT_KERNEL: &str = "\
    Interrupt the code that is running now, like Ctrl-C in Jupyter: it stops with a \
    KeyboardInterrupt, and the pending execute_code or edit_cell call returns with that error. The \
    kernel and all its variables are kept. Harmless if nothing is running.";

const RESTART_KERNEL: &str = "\
    Restart the Python kernel. ALL kernel state is lost: every variable, import, loaded model and \
    dataset is gone, and setup code must be run again. The notebook's cells and outputs are kept. \
    Use it only when the kernel is stuck or broken; try interrupt_kernel first.";

const SHUTDOWN_SESSION: &str = "\
    End the notebook session: stop the kernel and save the notebook. Call it once, when the work \
    is finished. The notebook tools do not work after it.";

/// Arguments of `execute_code`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ExecuteCodeArgs {
    /// Python code to run in a new cell.
    pub code: String,
}

/// Arguments of `add_markdown`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct AddMarkdownArgs {
    /// Markdown text of the new cell.
    pub content: String,
}

/// Arguments of `edit_cell`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct EditCellArgs {
    /// The cell's new Python code.
    pub code: String,
    /// Index of the code cell to replace; negative counts from the end (-1 is the last cell).
    #[serde(default = "last_cell")]
    pub cell_index: i64,
}

fn last_cell() -> i64 {
    -1
}

/// Arguments of `read_cell`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ReadCellArgs {
    /// Index of the cell (the N of a `[cell N, ...]` header); negative counts from the end.
    pub cell_index: i64,
    /// Where the page starts, in characters of the cell's text (0: the beginning). The last
    /// line of a page gives the offset of the next one.
    #[serde(default)]
    pub offset: usize,
    /// The most characters to return (default: the server's output limit).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// The MCP server of a notebook session (an rmcp `ServerHandler`).
#[derive(Clone)]
pub struct NotebookServer {
    tools: Arc<dyn NotebookTools>,
    opts: ServerOptions,
    tool_router: ToolRouter<Self>,
}

impl std::fmt::Debug for NotebookServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotebookServer")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

/// Builds the MCP server for a notebook session.
pub fn server(tools: Arc<dyn NotebookTools>, opts: ServerOptions) -> NotebookServer {
    let mut tool_router = NotebookServer::tool_router();
    if let Some(timeout) = tools.cell_timeout() {
        for name in ["execute_code", "edit_cell"] {
            if let Some(route) = tool_router.map.get_mut(name) {
                let mut meta = route.attr.meta.take().unwrap_or_default();
                meta.0
                    .insert(TIMEOUT_META.into(), timeout.as_secs_f64().into());
                route.attr.meta = Some(meta);
            }
        }
    }
    NotebookServer {
        tools,
        opts,
        tool_router,
    }
}

/// The page size of `read_cell` when the call gives no `limit`.
fn default_page(opts: &ServerOptions) -> usize {
    match opts.max_output_chars {
        0 => DEFAULT_MAX_OUTPUT_CHARS,
        n => n,
    }
}

#[tool_router]
impl NotebookServer {
    #[tool(name = "execute_code", description = EXECUTE_CODE)]
    async fn execute_code(
        &self,
        Parameters(args): Parameters<ExecuteCodeArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        tracing::debug!(code_chars = args.code.len(), "notebook tool execute_code");
        let run = self
            .interrupt_if_cancelled(ctx.ct, self.tools.execute_code(args.code))
            .await;
        self.cell_result("execute_code", run)
    }

    #[tool(
        name = "add_markdown",
        description = ADD_MARKDOWN,
        annotations(destructive_hint = false)
    )]
    async fn add_markdown(&self, Parameters(args): Parameters<AddMarkdownArgs>) -> CallToolResult {
        tracing::debug!(
            content_chars = args.content.len(),
            "notebook tool add_markdown"
        );
        match self.tools.add_markdown(args.content).await {
            Ok(index) => text_result(format!("[markdown cell {index} added]")),
            Err(e) => tool_error("add_markdown", &e),
        }
    }

    #[tool(name = "edit_cell", description = EDIT_CELL)]
    async fn edit_cell(
        &self,
        Parameters(args): Parameters<EditCellArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        tracing::debug!(
            cell_index = args.cell_index,
            code_chars = args.code.len(),
            "notebook tool edit_cell"
        );
        let run = self
            .interrupt_if_cancelled(ctx.ct, self.tools.edit_cell(args.code, args.cell_index))
            .await;
        self.cell_result("edit_cell", run)
    }

    #[tool(
        name = "read_cell",
        description = READ_CELL,
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true)
    )]
    async fn read_cell(&self, Parameters(args): Parameters<ReadCellArgs>) -> CallToolResult {
        tracing::debug!(
            cell_index = args.cell_index,
            offset = args.offset,
            "notebook tool read_cell"
        );
        let (index, cell) = match self.tools.read_cell(args.cell_index) {
            Ok(c) => c,
            Err(e) => return tool_error("read_cell", &e),
        };
        let limit = args
            .limit
            .filter(|l| *l > 0)
            .unwrap_or_else(|| default_page(&self.opts));
        match render_cell_page(index, &cell, args.offset, limit) {
            Ok(r) => r,
            Err(e) => tool_error("read_cell", &anyhow::anyhow!(e)),
        }
    }

    #[tool(
        name = "interrupt_kernel",
        description = INTERRUPT_KERNEL,
        annotations(destructive_hint = false, idempotent_hint = true)
    )]
    async fn interrupt_kernel(&self) -> CallToolResult {
        tracing::debug!("notebook tool interrupt_kernel");
        match self.tools.interrupt().await {
            Ok(()) => text_result("Interrupt sent to the kernel; variables are kept."),
            Err(e) => tool_error("interrupt_kernel", &e),
        }
    }

    #[tool(
        name = "restart_kernel",
        description = RESTART_KERNEL,
        annotations(destructive_hint = true)
    )]
    async fn restart_kernel(&self) -> CallToolResult {
        tracing::debug!("notebook tool restart_kernel");
        match self.tools.restart().await {
            Ok(()) => text_result(
                "Kernel restarted. All variables, imports and loaded models are gone; \
                 run setup code again.",
            ),
            Err(e) => tool_error("restart_kernel", &e),
        }
    }

    #[tool(
        name = "shutdown_session",
        description = SHUTDOWN_SESSION,
        annotations(destructive_hint = true)
    )]
    async fn shutdown_session(&self) -> CallToolResult {
        tracing::debug!("notebook tool shutdown_session");
        match self.tools.shutdown().await {
            Ok(()) => text_result("Session shut down; the notebook is saved."),
            Err(e) => tool_error("shutdown_session", &e),
        }
    }
}

impl NotebookServer {
    /// Runs a cell; if the client cancels the call (MCP `notifications/cancelled`, e.g. a
    /// user interrupting an agent), the kernel is interrupted so the cell stops, and its
    /// (interrupted) result still lands in the notebook.
    async fn interrupt_if_cancelled(
        &self,
        ct: CancellationToken,
        run: impl std::future::Future<Output = anyhow::Result<CellRun>>,
    ) -> anyhow::Result<CellRun> {
        tokio::pin!(run);
        tokio::select! {
            r = &mut run => r,
            _ = ct.cancelled() => {
                tracing::debug!("the client cancelled a running cell: interrupting the kernel");
                if let Err(e) = self.tools.interrupt().await {
                    tracing::warn!("interrupting after a cancelled call failed: {e:#}");
                }
                run.await
            }
        }
    }

    fn cell_result(&self, tool: &str, run: anyhow::Result<CellRun>) -> CallToolResult {
        match run {
            Ok(run) => render_cell_run(&run, self.opts.max_output_chars),
            Err(e) => tool_error(tool, &e),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for NotebookServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}

fn text_result(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

fn tool_error(tool: &str, e: &anyhow::Error) -> CallToolResult {
    let message = format!("{e:#}");
    tracing::warn!(tool, error = %message, "notebook tool failed");
    CallToolResult::error(vec![ContentBlock::text(message)])
}

/// A client connected to a new notebook server over an in-memory pipe.
///
/// The server runs in a spawned task until the client is closed or dropped.
pub async fn connect_in_process(
    tools: Arc<dyn NotebookTools>,
    opts: ServerOptions,
) -> anyhow::Result<rmcp::service::RunningService<rmcp::RoleClient, ()>> {
    let (server_end, client_end) = tokio::io::duplex(1 << 20);
    let srv = server(tools, opts);
    tokio::spawn(async move {
        if let Err(e) = serve_until_closed(srv, server_end).await {
            let error = format!("{e:#}");
            tracing::warn!(%error, "in-process notebook MCP server ended with an error");
        }
    });
    ().serve(client_end)
        .await
        .context("connecting the in-process notebook MCP client")
}

/// Serves the notebook tools on stdin/stdout until the client closes the connection.
pub async fn serve_stdio(tools: Arc<dyn NotebookTools>, opts: ServerOptions) -> anyhow::Result<()> {
    let stdio = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
    serve_until_closed(server(tools, opts), stdio)
        .await
        .context("serving the notebook MCP server on stdio")
}

async fn serve_until_closed<T>(srv: NotebookServer, io: T) -> anyhow::Result<()>
where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let running = srv.serve(io).await.context("MCP initialization failed")?;
    let reason = running.waiting().await.context("MCP server task failed")?;
    tracing::debug!(?reason, "notebook MCP server stopped");
    Ok(())
}

/// Serves the notebook tools over streamable HTTP on a random loopback port, behind a
/// bearer token, until `cancel` is cancelled.
pub async fn serve_http(
    tools: Arc<dyn NotebookTools>,
    opts: ServerOptions,
    cancel: CancellationToken,
) -> anyhow::Result<HttpServer> {
    crate::mcp_http::serve(
        move || server(tools.clone(), opts.clone()),
        cancel,
        "notebook",
    )
    .await
}

#[cfg(test)]
#[path = "mcp_tests.rs"]
mod tests;
