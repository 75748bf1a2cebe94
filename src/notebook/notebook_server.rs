//! The MCP server through which an agent drives a notebook session.
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
//! | `interrupt_kernel` | | interrupts the running code (KeyboardInterrupt) |
//! | `restart_kernel` | | restarts the kernel; every variable is lost |
//! | `shutdown_session` | | ends the session |
//!
//! # Results of `execute_code` and `edit_cell`
//! One text block, then one image block per image output. The text block is:
//! - a header `[cell N, execution_count M]` (`[cell N, no execution_count]` when the kernel
//!   gave none). `N` is the index the session reported, the one `edit_cell` takes;
//! - the outputs in order, separated by newlines:
//!   - stream text: consecutive chunks of one stream are merged, and carriage-return
//!     progress bars keep only their final state. Stderr is preceded by a `[stderr]` line;
//!   - results and displays: `text/markdown`, else `application/json` (pretty-printed), else
//!     `text/plain`, else `[html output, N chars]` for HTML, else `text/latex`, else a
//!     `[<mime> output, N chars]` line per MIME type;
//!   - every `image/png`, `image/jpeg`, `image/gif` or `image/webp` entry adds a line
//!     `[image K: <mime>, attached]` and becomes the K-th image content block (the base64
//!     data as stored in the bundle, whitespace removed). Data that is not valid base64 or
//!     whose bytes are not that image format is not attached: a broken image block would
//!     make an LLM provider reject the whole conversation. Instead, the text says why;
//!   - errors: `ename: evalue`, then the traceback;
//!
//!   ANSI escape codes are stripped from all of this text. If it is longer than
//!   [`ServerOptions::max_output_chars`] characters, the middle is cut out and replaced
//!   with a `[... N characters omitted ...]` line. The header and the status lines below are
//!   never cut;
//! - a status line when the status is not [`RunStatus::Ok`]: `[error: the code raised an
//!   exception]`, `[aborted: the kernel did not run this code]`, `[interrupted: timed out]`,
//!   `[kernel died while running this code]`; then `[note: ...]` if the run has a note.
//!
//! # `is_error`
//! `is_error` is `Some(true)` only when a [`NotebookTools`] method returns `Err`: the
//! request could not be carried out (no such cell, a markdown cell, the session is gone).
//! The text is then the error with its context chain.
//!
//! A Python exception ([`RunStatus::Error`]), a timeout, an abort or a dead kernel are
//! normal results with `is_error: Some(false)`. The cell exists in the notebook and has an
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
//! ```ignore
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

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use base64::Engine as _;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use crate::mcp_http::HttpServer;
use crate::notebook::nbformat::{Output, bundle_text};

pub use crate::notebook::RunStatus;

/// The outcome of running one code cell.
#[derive(Debug, Clone, PartialEq)]
pub struct CellRun {
    pub cell_index: usize,
    pub execution_count: Option<i64>,
    pub outputs: Vec<Output>,
    pub status: RunStatus,
    /// e.g. "the kernel died; it was restarted and its state is lost"
    pub note: Option<String>,
}

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
}

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
    adding a new one. Images (e.g. plots) come back as image content. Stop long-running code with \
    interrupt_kernel. Call shutdown_session once, when the work is finished.";

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
    NotebookServer {
        tools,
        opts,
        tool_router: NotebookServer::tool_router(),
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

// ---------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------

/// MIME types sent as MCP image content, with their magic bytes.
const IMAGE_TYPES: [(&str, &[u8]); 4] = [
    ("image/png", b"\x89PNG\r\n\x1a\n"),
    ("image/jpeg", b"\xff\xd8\xff"),
    ("image/gif", b"GIF8"),
    ("image/webp", b"RIFF"),
];

/// Renders a cell run as a tool result: one text block, then one image block per image.
fn render_cell_run(run: &CellRun, max_output_chars: usize) -> CallToolResult {
    let mut parts: Vec<String> = Vec::new();
    let mut images: Vec<ContentBlock> = Vec::new();
    // Consecutive chunks of one stream are merged before rendering.
    let mut stream: Option<(String, String)> = None;
    for output in &run.outputs {
        if let Output::Stream { name, text } = output {
            match stream.as_mut() {
                Some((current, buf)) if current == name => buf.push_str(&text.text()),
                _ => {
                    flush_stream(stream.take(), &mut parts);
                    stream = Some((name.clone(), text.text()));
                }
            }
            continue;
        }
        flush_stream(stream.take(), &mut parts);
        match output {
            Output::ExecuteResult { data, .. } | Output::DisplayData { data, .. } => {
                render_bundle(data, &mut parts, &mut images);
            }
            Output::Error {
                ename,
                evalue,
                traceback,
            } => {
                let mut text = format!("{ename}: {evalue}");
                for line in traceback {
                    text.push('\n');
                    text.push_str(line);
                }
                parts.push(strip_ansi(&text).trim_end().to_string());
            }
            Output::Stream { .. } => {}
        }
    }
    flush_stream(stream.take(), &mut parts);

    let mut text = match run.execution_count {
        Some(n) => format!("[cell {}, execution_count {n}]", run.cell_index),
        None => format!("[cell {}, no execution_count]", run.cell_index),
    };
    let body = truncate_middle(&parts.join("\n"), max_output_chars);
    if !body.is_empty() {
        text.push('\n');
        text.push_str(&body);
    }
    let status = match run.status {
        RunStatus::Ok => None,
        RunStatus::Error => Some("[error: the code raised an exception]"),
        RunStatus::Aborted => Some("[aborted: the kernel did not run this code]"),
        RunStatus::TimedOut => Some("[interrupted: timed out]"),
        RunStatus::KernelDied => Some("[kernel died while running this code]"),
    };
    if let Some(status) = status {
        text.push('\n');
        text.push_str(status);
    }
    if let Some(note) = &run.note {
        text.push_str(&format!("\n[note: {note}]"));
    }
    let mut content = Vec::with_capacity(1 + images.len());
    content.push(ContentBlock::text(text));
    content.extend(images);
    CallToolResult::success(content)
}

fn flush_stream(stream: Option<(String, String)>, parts: &mut Vec<String>) {
    let Some((name, text)) = stream else { return };
    let text = collapse_carriage_returns(&strip_ansi(&text));
    let text = text.trim_end_matches('\n');
    if text.is_empty() {
        return;
    }
    if name == "stdout" {
        parts.push(text.to_string());
    } else {
        parts.push(format!("[{name}]\n{text}"));
    }
}

fn render_bundle(
    data: &BTreeMap<String, Value>,
    parts: &mut Vec<String>,
    images: &mut Vec<ContentBlock>,
) {
    let text_of = |mime: &str| {
        data.get(mime)
            .map(|v| strip_ansi(&bundle_text(v)).trim_end().to_string())
    };
    let chars_of = |v: &Value| bundle_text(v).chars().count();
    if let Some(md) = text_of("text/markdown") {
        parts.push(md);
    } else if let Some(json) = data.get("application/json") {
        parts.push(serde_json::to_string_pretty(json).unwrap_or_else(|_| json.to_string()));
    } else if let Some(plain) = text_of("text/plain") {
        parts.push(plain);
    } else if let Some(html) = data.get("text/html") {
        parts.push(format!("[html output, {} chars]", chars_of(html)));
    } else if let Some(latex) = text_of("text/latex") {
        parts.push(latex);
    } else {
        for (mime, v) in data {
            if !IMAGE_TYPES.iter().any(|(m, _)| m == mime) {
                parts.push(format!("[{mime} output, {} chars]", chars_of(v)));
            }
        }
    }
    for (mime, magic) in IMAGE_TYPES {
        let Some(v) = data.get(mime) else { continue };
        let b64: String = bundle_text(v)
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        match check_image(&b64, magic) {
            Ok(()) => {
                images.push(ContentBlock::image(b64, mime));
                parts.push(format!("[image {}: {mime}, attached]", images.len()));
            }
            Err(why) => {
                tracing::warn!(mime, why, "image output not attached");
                parts.push(format!("[{mime} output not attached: {why}]"));
            }
        }
    }
}

fn check_image(b64: &str, magic: &[u8]) -> Result<(), &'static str> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "its data is not valid base64")?;
    if bytes.starts_with(magic) {
        Ok(())
    } else {
        Err("its data is not an image of that type")
    }
}

/// Removes ANSI escape sequences: CSI (colours, cursor moves), OSC (titles, hyperlinks),
/// nF (charset selection such as `ESC ( B`) and two-character escapes.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                // Parameters and intermediates, up to a final byte in 0x40..=0x7e.
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                // Up to BEL or ST (ESC \).
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' {
                        if chars.peek() == Some(&'\\') {
                            chars.next();
                        }
                        break;
                    }
                }
            }
            Some(c) if (' '..='/').contains(&c) => {
                // nF escapes such as ESC ( B: intermediates, then one final character.
                for c in chars.by_ref() {
                    if !(' '..='/').contains(&c) {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Keeps, on each line, only the text after its last carriage return (the final state of a
/// progress bar). Text that ends in a carriage return keeps the last non-empty part.
fn collapse_carriage_returns(s: &str) -> String {
    if !s.contains('\r') {
        return s.to_string();
    }
    s.replace("\r\n", "\n")
        .split('\n')
        .map(|line| {
            line.rsplit('\r')
                .find(|part| !part.is_empty())
                .unwrap_or("")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Cuts the middle out of text longer than `max` characters (0: no limit), keeping
/// `max / 2` characters of the head and the rest of the tail.
pub(crate) fn truncate_middle(s: &str, max: usize) -> String {
    let total = s.chars().count();
    if max == 0 || total <= max {
        return s.to_string();
    }
    let head = max / 2;
    let tail = max - head;
    let byte_at = |n: usize| s.char_indices().nth(n).map_or(s.len(), |(i, _)| i);
    let head_end = byte_at(head);
    let tail_start = byte_at(total - tail);
    format!(
        "{}\n[... {} characters omitted ...]\n{}",
        &s[..head_end],
        total - head - tail,
        &s[tail_start..]
    )
}

// ---------------------------------------------------------------------------------------
// Transports
// ---------------------------------------------------------------------------------------

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
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    use std::time::Duration;

    use rmcp::model::CallToolRequestParams;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    use serde_json::json;
    use tokio::sync::Notify;

    use super::*;

    /// A real 1x1 PNG.
    const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9\
                       awAAAABJRU5ErkJggg==";

    // ---- a test double of the notebook session ----------------------------------------

    enum FakeCell {
        Code,
        Markdown,
    }

    /// An in-memory notebook. Each line of "code" is a command: `print:X` (stdout),
    /// `eprint:X` (stderr), `result:X` (execute_result), `png` (a figure display), `raise` (an
    /// exception), `sleep` (waits for interrupt()), `timeout`, `die`, `big:N` (N chars of
    /// stdout), `fail` (the trait returns Err).
    #[derive(Default)]
    struct FakeNotebook {
        cells: Mutex<Vec<FakeCell>>,
        execution_count: AtomicI64,
        interrupt: Notify,
        running: AtomicBool,
        calls: Mutex<Vec<&'static str>>,
    }

    impl FakeNotebook {
        fn new() -> Arc<Self> {
            Arc::new(Self::default())
        }

        async fn run(&self, cell_index: usize, code: &str) -> anyhow::Result<CellRun> {
            let mut outputs = Vec::new();
            let mut status = RunStatus::Ok;
            let mut note = None;
            for line in code.lines() {
                let (cmd, arg) = line.split_once(':').unwrap_or((line, ""));
                match cmd {
                    "print" => outputs.push(stream("stdout", &format!("{arg}\n"))),
                    "eprint" => outputs.push(stream("stderr", &format!("{arg}\n"))),
                    "result" => outputs.push(bundle(true, &[("text/plain", json!(arg))])),
                    "png" => outputs.push(bundle(
                        false,
                        &[
                            ("image/png", json!([&PNG[..40], "\n", &PNG[40..]])),
                            ("text/plain", json!("<Figure size 1x1 with 1 Axes>")),
                        ],
                    )),
                    "raise" => {
                        outputs.push(error("ZeroDivisionError", "division by zero"));
                        status = RunStatus::Error;
                    }
                    "sleep" => {
                        let interrupted = self.interrupt.notified();
                        tokio::pin!(interrupted);
                        interrupted.as_mut().enable();
                        self.running.store(true, Ordering::SeqCst);
                        interrupted.await;
                        self.running.store(false, Ordering::SeqCst);
                        outputs.push(error("KeyboardInterrupt", ""));
                        status = RunStatus::Error;
                    }
                    "timeout" => status = RunStatus::TimedOut,
                    "die" => {
                        status = RunStatus::KernelDied;
                        note = Some(
                            "the kernel died; it was restarted and its state is lost".to_string(),
                        );
                    }
                    "big" => {
                        let n: usize = arg.parse()?;
                        let text: String = "0123456789".chars().cycle().take(n).collect();
                        outputs.push(stream("stdout", &text));
                    }
                    "fail" => anyhow::bail!("the kernel is gone"),
                    other => anyhow::bail!("unknown fake command {other:?}"),
                }
                if status != RunStatus::Ok {
                    break;
                }
            }
            let execution_count = match status {
                RunStatus::KernelDied => None,
                _ => Some(self.execution_count.fetch_add(1, Ordering::SeqCst) + 1),
            };
            Ok(CellRun {
                cell_index,
                execution_count,
                outputs,
                status,
                note,
            })
        }
    }

    #[async_trait::async_trait]
    impl NotebookTools for FakeNotebook {
        async fn execute_code(&self, code: String) -> anyhow::Result<CellRun> {
            let index = {
                let mut cells = self.cells.lock().unwrap();
                cells.push(FakeCell::Code);
                cells.len() - 1
            };
            self.run(index, &code).await
        }

        async fn add_markdown(&self, _content: String) -> anyhow::Result<usize> {
            let mut cells = self.cells.lock().unwrap();
            cells.push(FakeCell::Markdown);
            Ok(cells.len() - 1)
        }

        async fn edit_cell(&self, code: String, cell_index: i64) -> anyhow::Result<CellRun> {
            let index = {
                let cells = self.cells.lock().unwrap();
                let len = cells.len() as i64;
                let index = if cell_index < 0 {
                    len + cell_index
                } else {
                    cell_index
                };
                if index < 0 || index >= len {
                    return Err(anyhow::anyhow!(
                        "cell index {cell_index} is out of range: the notebook has {len} cells"
                    ))
                    .context("cannot edit the cell");
                }
                if let FakeCell::Markdown = cells[index as usize] {
                    anyhow::bail!("cell {index} is a markdown cell; edit_cell edits code cells");
                }
                index as usize
            };
            self.run(index, &code).await
        }

        async fn interrupt(&self) -> anyhow::Result<()> {
            self.calls.lock().unwrap().push("interrupt");
            self.interrupt.notify_waiters();
            Ok(())
        }

        async fn restart(&self) -> anyhow::Result<()> {
            self.calls.lock().unwrap().push("restart");
            self.execution_count.store(0, Ordering::SeqCst);
            Ok(())
        }

        async fn shutdown(&self) -> anyhow::Result<()> {
            self.calls.lock().unwrap().push("shutdown");
            anyhow::bail!("the kernel was already shut down")
        }
    }

    // ---- helpers ------------------------------------------------------------------------

    /// A stream output stored as a list of lines, as Jupyter writes it. (Built through serde
    /// so that the tests need no import from nbformat besides the one `use` line above.)
    fn stream(name: &str, text: &str) -> Output {
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        serde_json::from_value(json!({"output_type": "stream", "name": name, "text": lines}))
            .unwrap()
    }

    fn bundle(result: bool, entries: &[(&str, Value)]) -> Output {
        let data: BTreeMap<String, Value> = entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        if result {
            Output::ExecuteResult {
                execution_count: Some(1),
                data,
                metadata: BTreeMap::new(),
            }
        } else {
            Output::DisplayData {
                data,
                metadata: BTreeMap::new(),
            }
        }
    }

    /// An error as IPython sends it: the traceback has ANSI colours.
    fn error(ename: &str, evalue: &str) -> Output {
        Output::Error {
            ename: ename.to_string(),
            evalue: evalue.to_string(),
            traceback: vec![
                "\u{1b}[0;31m-----------------------------------\u{1b}[0m".to_string(),
                format!(
                    "\u{1b}[0;31m{ename}\u{1b}[0m Traceback (most recent call last)\nCell \u{1b}[0;32mIn[1], line 1\u{1b}[0m"
                ),
                format!("\u{1b}[0;31m{ename}\u{1b}[0m: {evalue}"),
            ],
        }
    }

    fn run_of(outputs: Vec<Output>, status: RunStatus, note: Option<&str>) -> CellRun {
        CellRun {
            cell_index: 2,
            execution_count: Some(5),
            outputs,
            status,
            note: note.map(str::to_string),
        }
    }

    fn text_of(result: &CallToolResult) -> &str {
        result.content[0]
            .as_text()
            .map(|t| t.text.as_str())
            .unwrap_or("<not text>")
    }

    fn args(v: Value) -> CallToolRequestParams {
        CallToolRequestParams::new("").with_arguments(v.as_object().cloned().unwrap_or_default())
    }

    async fn call(
        client: &rmcp::service::RunningService<rmcp::RoleClient, ()>,
        tool: &'static str,
        a: Value,
    ) -> CallToolResult {
        let mut params = args(a);
        params.name = tool.into();
        client.call_tool(params).await.unwrap()
    }

    // ---- rendering ----------------------------------------------------------------------

    #[test]
    fn renders_each_output_kind() {
        const H: &str = "[cell 2, execution_count 5]";
        let ok = |outputs: Vec<Output>| run_of(outputs, RunStatus::Ok, None);
        let figure = "<Figure size 640x480 with 1 Axes>";
        let traceback = "ZeroDivisionError: division by zero\n\
            -----------------------------------\n\
            ZeroDivisionError Traceback (most recent call last)\n\
            Cell In[1], line 1\n\
            ZeroDivisionError: division by zero";
        let progress = "\r 50%|#####     |\r100%|##########|\r\ndone\n";
        let link = "\u{1b}[1;32mgreen\u{1b}[0m \u{1b}]8;;http://x\u{7}link\u{1b}]8;;\u{7}\n";
        let died = "the kernel died; it was restarted and its state is lost";
        let cases: Vec<(&str, CellRun, String)> = vec![
            ("no outputs", ok(vec![]), H.into()),
            (
                "stdout",
                ok(vec![stream("stdout", "hello\nworld\n")]),
                format!("{H}\nhello\nworld"),
            ),
            (
                "stdout chunks are merged",
                ok(vec![stream("stdout", "a"), stream("stdout", "b\n")]),
                format!("{H}\nab"),
            ),
            (
                "stderr is labelled",
                ok(vec![
                    stream("stdout", "out\n"),
                    stream("stderr", "warn\n"),
                    stream("stdout", "more\n"),
                ]),
                format!("{H}\nout\n[stderr]\nwarn\nmore"),
            ),
            (
                "empty streams are skipped",
                ok(vec![stream("stdout", ""), stream("stderr", "\n")]),
                H.into(),
            ),
            (
                "a progress bar keeps its final state",
                ok(vec![
                    stream("stderr", "\r  0%|          |"),
                    stream("stderr", progress),
                ]),
                format!("{H}\n[stderr]\n100%|##########|\ndone"),
            ),
            (
                "ansi in streams",
                ok(vec![stream("stdout", link)]),
                format!("{H}\ngreen link"),
            ),
            (
                "text/plain stored as lines",
                ok(vec![bundle(true, &[("text/plain", json!(["1\n", "2"]))])]),
                format!("{H}\n1\n2"),
            ),
            (
                "markdown is preferred",
                ok(vec![bundle(
                    false,
                    &[
                        ("text/markdown", json!("**bold**\n")),
                        (
                            "text/plain",
                            json!("<IPython.core.display.Markdown object>"),
                        ),
                    ],
                )]),
                format!("{H}\n**bold**"),
            ),
            (
                "plain beats html",
                ok(vec![bundle(
                    true,
                    &[
                        ("text/html", json!("<table></table>")),
                        ("text/plain", json!("   a\n0  1")),
                    ],
                )]),
                format!("{H}\n   a\n0  1"),
            ),
            (
                "html only",
                ok(vec![bundle(
                    false,
                    &[("text/html", json!(["<b>", "hi</b>"]))],
                )]),
                format!("{H}\n[html output, 9 chars]"),
            ),
            (
                "json is pretty-printed",
                ok(vec![bundle(
                    false,
                    &[
                        ("application/json", json!({"a": 1, "b": [true]})),
                        ("text/plain", json!("<IPython.core.display.JSON object>")),
                    ],
                )]),
                format!("{H}\n{{\n  \"a\": 1,\n  \"b\": [\n    true\n  ]\n}}"),
            ),
            (
                "latex",
                ok(vec![bundle(false, &[("text/latex", json!("$x^2$"))])]),
                format!("{H}\n$x^2$"),
            ),
            (
                "unknown mime type",
                ok(vec![bundle(
                    false,
                    &[("application/vnd.custom", json!({"x": 1}))],
                )]),
                format!("{H}\n[application/vnd.custom output, 7 chars]"),
            ),
            (
                "error with an ansi traceback",
                run_of(
                    vec![
                        stream("stdout", "before\n"),
                        error("ZeroDivisionError", "division by zero"),
                    ],
                    RunStatus::Error,
                    None,
                ),
                format!("{H}\nbefore\n{traceback}\n[error: the code raised an exception]"),
            ),
            (
                "error without traceback",
                run_of(
                    vec![Output::Error {
                        ename: "E".into(),
                        evalue: "v".into(),
                        traceback: vec![],
                    }],
                    RunStatus::Error,
                    None,
                ),
                format!("{H}\nE: v\n[error: the code raised an exception]"),
            ),
            (
                "image",
                ok(vec![bundle(
                    false,
                    &[
                        ("image/png", json!([&PNG[..30], "\n", &PNG[30..]])),
                        ("text/plain", json!(figure)),
                    ],
                )]),
                format!("{H}\n{figure}\n[image 1: image/png, attached]"),
            ),
            (
                "bad base64 is not attached",
                ok(vec![bundle(false, &[("image/png", json!("not base64!"))])]),
                format!("{H}\n[image/png output not attached: its data is not valid base64]"),
            ),
            (
                "the wrong image type is not attached",
                ok(vec![bundle(false, &[("image/jpeg", json!(PNG))])]),
                format!(
                    "{H}\n[image/jpeg output not attached: its data is not an image of that type]"
                ),
            ),
            (
                "timed out",
                run_of(
                    vec![stream("stdout", "step 1\n")],
                    RunStatus::TimedOut,
                    None,
                ),
                format!("{H}\nstep 1\n[interrupted: timed out]"),
            ),
            (
                "aborted",
                run_of(vec![], RunStatus::Aborted, None),
                format!("{H}\n[aborted: the kernel did not run this code]"),
            ),
            (
                "kernel died, with a note",
                run_of(vec![], RunStatus::KernelDied, Some(died)),
                format!("{H}\n[kernel died while running this code]\n[note: {died}]"),
            ),
        ];
        for (name, run, expected) in cases {
            let result = render_cell_run(&run, DEFAULT_MAX_OUTPUT_CHARS);
            assert_eq!(text_of(&result), expected, "case {name:?}");
            assert_eq!(
                result.content.len(),
                1 + usize::from(name == "image"),
                "case {name:?}"
            );
            assert_eq!(result.is_error, Some(false), "case {name:?}");
        }
    }

    #[test]
    fn header_without_execution_count() {
        let run = CellRun {
            cell_index: 0,
            execution_count: None,
            outputs: vec![],
            status: RunStatus::Aborted,
            note: None,
        };
        assert_eq!(
            text_of(&render_cell_run(&run, 100)),
            "[cell 0, no execution_count]\n[aborted: the kernel did not run this code]"
        );
    }

    #[test]
    fn images_become_image_content_in_order() {
        let jpeg = "/9j/4AAQSkZJRgABAQ=="; // a JPEG header: FF D8 FF E0 ...
        let outputs = vec![
            bundle(
                false,
                &[(
                    "image/png",
                    json!(format!("{}\n{}\n", &PNG[..10], &PNG[10..])),
                )],
            ),
            stream("stdout", "between\n"),
            bundle(
                true,
                &[
                    ("image/jpeg", json!(jpeg)),
                    ("image/png", json!(PNG)),
                    ("text/plain", json!("<Image>")),
                ],
            ),
        ];
        let result = render_cell_run(&run_of(outputs, RunStatus::Ok, None), 1000);
        assert_eq!(
            text_of(&result),
            "[cell 2, execution_count 5]\n[image 1: image/png, attached]\nbetween\n<Image>\n\
             [image 2: image/png, attached]\n[image 3: image/jpeg, attached]"
        );
        let images: Vec<(&str, &str)> = result.content[1..]
            .iter()
            .map(|c| {
                c.as_image()
                    .map(|i| (i.mime_type.as_str(), i.data.as_str()))
                    .unwrap()
            })
            .collect();
        assert_eq!(
            images,
            vec![("image/png", PNG), ("image/png", PNG), ("image/jpeg", jpeg)]
        );
    }

    #[test]
    fn long_output_is_cut_in_the_middle() {
        let digits: String = "0123456789".repeat(10);
        let run = run_of(
            vec![stream("stdout", &digits)],
            RunStatus::TimedOut,
            Some("n"),
        );
        assert_eq!(
            text_of(&render_cell_run(&run, 20)),
            "[cell 2, execution_count 5]\n0123456789\n[... 80 characters omitted ...]\n0123456789\n\
             [interrupted: timed out]\n[note: n]"
        );
        // An odd limit keeps one more character of the tail; characters, not bytes, count.
        let run = run_of(vec![stream("stdout", "ééééé-üüüüü")], RunStatus::Ok, None);
        assert_eq!(
            text_of(&render_cell_run(&run, 5)),
            "[cell 2, execution_count 5]\néé\n[... 6 characters omitted ...]\nüüü"
        );
        // 0 means no limit; text at the limit is kept whole.
        assert_eq!(
            text_of(&render_cell_run(&run, 0)),
            "[cell 2, execution_count 5]\nééééé-üüüüü"
        );
        assert_eq!(
            text_of(&render_cell_run(&run, 11)),
            "[cell 2, execution_count 5]\nééééé-üüüüü"
        );
    }

    #[test]
    fn strips_ansi_sequences() {
        assert_eq!(
            strip_ansi("\u{1b}[38;5;12mblue\u{1b}[0m\u{1b}(B!\u{1b}]0;title\u{1b}\\."),
            "blue!."
        );
        assert_eq!(strip_ansi("plain ✓"), "plain ✓");
        assert_eq!(strip_ansi("cut\u{1b}[1"), "cut");
    }

    // ---- over MCP (in process) ----------------------------------------------------------

    #[tokio::test]
    async fn lists_tools_with_their_schemas() {
        let client = connect_in_process(FakeNotebook::new(), ServerOptions::default())
            .await
            .unwrap();
        let info = client.peer_info().unwrap();
        let implementation = info.server_info.as_ref().unwrap();
        assert_eq!(implementation.name, "seer-notebook");
        assert_eq!(implementation.version, env!("CARGO_PKG_VERSION"));
        assert!(
            info.instructions
                .as_deref()
                .unwrap()
                .contains("execute_code")
        );

        let tools = client.list_all_tools().await.unwrap();
        let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "add_markdown",
                "edit_cell",
                "execute_code",
                "interrupt_kernel",
                "restart_kernel",
                "shutdown_session"
            ]
        );
        let schema = |name: &str| {
            let tool = tools.iter().find(|t| t.name == name).unwrap();
            Value::Object((*tool.input_schema).clone())
        };
        let description = |name: &str| {
            tools
                .iter()
                .find(|t| t.name == name)
                .unwrap()
                .description
                .clone()
                .unwrap()
        };

        let execute = schema("execute_code");
        assert_eq!(execute["type"], "object");
        assert_eq!(execute["required"], json!(["code"]));
        assert_eq!(execute["properties"]["code"]["type"], "string");
        assert!(
            execute["properties"]["code"]["description"]
                .as_str()
                .unwrap()
                .contains("Python")
        );

        let markdown = schema("add_markdown");
        assert_eq!(markdown["required"], json!(["content"]));
        assert_eq!(markdown["properties"]["content"]["type"], "string");

        let edit = schema("edit_cell");
        assert_eq!(edit["required"], json!(["code"]));
        assert_eq!(edit["properties"]["cell_index"]["type"], "integer");
        assert_eq!(edit["properties"]["cell_index"]["default"], json!(-1));

        for name in ["interrupt_kernel", "restart_kernel", "shutdown_session"] {
            let s = schema(name);
            assert_eq!(s["type"], "object", "{name}");
            assert!(
                s.get("required").is_none_or(|r| r == &json!([])),
                "{name}: {s}"
            );
        }
        assert!(description("restart_kernel").contains("ALL kernel state is lost"));
        assert!(description("execute_code").contains("[cell N, execution_count M]"));
        assert!(description("edit_cell").contains("-1 (the default) is the last cell"));
        client.cancel().await.unwrap();
    }

    #[tokio::test]
    async fn round_trip_of_every_tool() {
        let fake = FakeNotebook::new();
        let client = connect_in_process(fake.clone(), ServerOptions::default())
            .await
            .unwrap();

        let r = call(
            &client,
            "execute_code",
            json!({"code": "print:hello\nresult:42"}),
        )
        .await;
        assert_eq!(text_of(&r), "[cell 0, execution_count 1]\nhello\n42");
        assert_eq!(r.is_error, Some(false));

        let r = call(&client, "add_markdown", json!({"content": "# Notes"})).await;
        assert_eq!(text_of(&r), "[markdown cell 1 added]");

        let r = call(&client, "execute_code", json!({"code": "raise"})).await;
        assert!(
            text_of(&r)
                .starts_with("[cell 2, execution_count 2]\nZeroDivisionError: division by zero\n"),
            "{}",
            text_of(&r)
        );
        assert!(text_of(&r).ends_with("\n[error: the code raised an exception]"));
        assert!(!text_of(&r).contains('\u{1b}'));
        assert_eq!(
            r.is_error,
            Some(false),
            "a Python exception is a normal result"
        );

        let r = call(&client, "execute_code", json!({"code": "die"})).await;
        assert_eq!(
            text_of(&r),
            "[cell 3, no execution_count]\n[kernel died while running this code]\n\
             [note: the kernel died; it was restarted and its state is lost]"
        );

        let r = call(&client, "interrupt_kernel", json!({})).await;
        assert_eq!(
            text_of(&r),
            "Interrupt sent to the kernel; variables are kept."
        );
        let r = call(&client, "restart_kernel", json!({})).await;
        assert!(text_of(&r).contains("All variables"));
        let r = call(&client, "shutdown_session", json!({})).await;
        assert_eq!(r.is_error, Some(true));
        assert_eq!(text_of(&r), "the kernel was already shut down");
        assert_eq!(
            *fake.calls.lock().unwrap(),
            ["interrupt", "restart", "shutdown"]
        );
        client.cancel().await.unwrap();
    }

    #[tokio::test]
    async fn images_come_back_as_image_content() {
        let client = connect_in_process(FakeNotebook::new(), ServerOptions::default())
            .await
            .unwrap();
        let r = call(
            &client,
            "execute_code",
            json!({"code": "print:plotting\npng"}),
        )
        .await;
        assert_eq!(
            text_of(&r),
            "[cell 0, execution_count 1]\nplotting\n<Figure size 1x1 with 1 Axes>\n[image 1: image/png, attached]"
        );
        assert_eq!(r.content.len(), 2);
        let image = r.content[1].as_image().unwrap();
        assert_eq!(
            (image.mime_type.as_str(), image.data.as_str()),
            ("image/png", PNG)
        );
        client.cancel().await.unwrap();
    }

    #[tokio::test]
    async fn edit_cell_takes_negative_and_default_indices() {
        let client = connect_in_process(FakeNotebook::new(), ServerOptions::default())
            .await
            .unwrap();
        call(&client, "execute_code", json!({"code": "print:a"})).await;
        call(&client, "execute_code", json!({"code": "print:b"})).await;
        let r = call(
            &client,
            "edit_cell",
            json!({"code": "print:c", "cell_index": -2}),
        )
        .await;
        assert_eq!(text_of(&r), "[cell 0, execution_count 3]\nc");
        let r = call(&client, "edit_cell", json!({"code": "print:d"})).await;
        assert_eq!(text_of(&r), "[cell 1, execution_count 4]\nd");
        let r = call(
            &client,
            "edit_cell",
            json!({"code": "print:e", "cell_index": 0}),
        )
        .await;
        assert_eq!(text_of(&r), "[cell 0, execution_count 5]\ne");
        client.cancel().await.unwrap();
    }

    #[tokio::test]
    async fn trait_errors_are_tool_errors() {
        let client = connect_in_process(FakeNotebook::new(), ServerOptions::default())
            .await
            .unwrap();
        call(&client, "execute_code", json!({"code": "print:a"})).await;
        call(&client, "add_markdown", json!({"content": "text"})).await;

        let r = call(
            &client,
            "edit_cell",
            json!({"code": "print:x", "cell_index": 7}),
        )
        .await;
        assert_eq!(r.is_error, Some(true));
        assert_eq!(r.content.len(), 1);
        assert_eq!(
            text_of(&r),
            "cannot edit the cell: cell index 7 is out of range: the notebook has 2 cells"
        );

        let r = call(&client, "edit_cell", json!({"code": "print:x"})).await;
        assert_eq!(r.is_error, Some(true));
        assert_eq!(
            text_of(&r),
            "cell 1 is a markdown cell; edit_cell edits code cells"
        );

        let r = call(&client, "execute_code", json!({"code": "fail"})).await;
        assert_eq!(
            (r.is_error, text_of(&r)),
            (Some(true), "the kernel is gone")
        );

        // A missing argument is also a tool error (rmcp's behaviour), not a protocol error.
        let r = call(&client, "execute_code", json!({})).await;
        assert_eq!(r.is_error, Some(true));
        assert!(text_of(&r).contains("code"), "{}", text_of(&r));
        client.cancel().await.unwrap();
    }

    #[tokio::test]
    async fn interrupt_reaches_running_code() {
        let fake = FakeNotebook::new();
        let client = connect_in_process(fake.clone(), ServerOptions::default())
            .await
            .unwrap();
        let running = call(
            &client,
            "execute_code",
            json!({"code": "print:start\nsleep"}),
        );
        let interrupt = async {
            while !fake.running.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            call(&client, "interrupt_kernel", json!({})).await
        };
        let (r, i) = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(running, interrupt)
        })
        .await
        .expect("the interrupted cell did not return");
        assert_eq!(i.is_error, Some(false));
        assert!(
            text_of(&r).starts_with("[cell 0, execution_count 1]\nstart\nKeyboardInterrupt: \n"),
            "{}",
            text_of(&r)
        );
        client.cancel().await.unwrap();
    }

    #[tokio::test]
    async fn truncation_limit_comes_from_the_options() {
        let client = connect_in_process(
            FakeNotebook::new(),
            ServerOptions {
                max_output_chars: 10,
            },
        )
        .await
        .unwrap();
        let r = call(&client, "execute_code", json!({"code": "big:25"})).await;
        assert_eq!(
            text_of(&r),
            "[cell 0, execution_count 1]\n01234\n[... 15 characters omitted ...]\n01234"
        );
        client.cancel().await.unwrap();

        let client = connect_in_process(FakeNotebook::new(), ServerOptions::default())
            .await
            .unwrap();
        let r = call(&client, "execute_code", json!({"code": "big:50000"})).await;
        let text = text_of(&r);
        assert!(text.contains("\n[... 30000 characters omitted ...]\n"));
        assert_eq!(
            text.chars().count(),
            "[cell 0, execution_count 1]\n".len()
                + 20_000
                + "\n[... 30000 characters omitted ...]\n".len()
        );
        client.cancel().await.unwrap();
    }

    // ---- stdio --------------------------------------------------------------------------

    /// serve_stdio is `serve_until_closed` on joined stdin/stdout; this drives the same
    /// function over a duplex pipe and checks that it returns when the client closes.
    #[tokio::test]
    async fn stdio_server_runs_until_the_client_closes() {
        let (server_end, client_end) = tokio::io::duplex(64 * 1024);
        let (server_read, server_write) = tokio::io::split(server_end);
        let task = tokio::spawn(serve_until_closed(
            server(FakeNotebook::new(), ServerOptions::default()),
            tokio::io::join(server_read, server_write),
        ));
        let client = ().serve(client_end).await.unwrap();
        assert_eq!(client.list_all_tools().await.unwrap().len(), 6);
        let r = call(&client, "execute_code", json!({"code": "print:over stdio"})).await;
        assert_eq!(text_of(&r), "[cell 0, execution_count 1]\nover stdio");
        client.cancel().await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    // ---- HTTP ---------------------------------------------------------------------------

    #[tokio::test]
    async fn http_client_lists_and_calls_with_the_token() {
        let cancel = CancellationToken::new();
        let http = serve_http(
            FakeNotebook::new(),
            ServerOptions::default(),
            cancel.clone(),
        )
        .await
        .unwrap();
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(http.url.clone())
                .auth_header(http.token.clone()),
        );
        let client = ().serve(transport).await.unwrap();
        assert_eq!(client.list_all_tools().await.unwrap().len(), 6);
        let r = call(
            &client,
            "execute_code",
            json!({"code": "print:over http\npng"}),
        )
        .await;
        assert_eq!(
            text_of(&r),
            "[cell 0, execution_count 1]\nover http\n<Figure size 1x1 with 1 Axes>\n[image 1: image/png, attached]"
        );
        assert_eq!(r.content[1].as_image().unwrap().data, PNG);

        // Without the token the client cannot even connect.
        let anonymous = ().serve(StreamableHttpClientTransport::from_uri(http.url.clone())).await;
        assert!(anonymous.is_err());

        client.cancel().await.unwrap();
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(10), http.join)
            .await
            .unwrap()
            .unwrap();
    }

    // ---- interop with the official Python SDK -------------------------------------------

    fn target_tmpdir() -> PathBuf {
        if let Some(dir) = option_env!("CARGO_TARGET_TMPDIR") {
            return PathBuf::from(dir);
        }
        // Unit tests do not get CARGO_TARGET_TMPDIR; it is <target>/tmp, and this test
        // binary is <target>/<profile>/deps/<name>.
        let exe = std::env::current_exe().unwrap();
        exe.ancestors().nth(3).unwrap().join("tmp")
    }

    fn find_uv() -> PathBuf {
        if let Ok(uv) = std::env::var("UV") {
            return PathBuf::from(uv);
        }
        let on_path = std::process::Command::new("uv").arg("--version").output();
        if on_path.is_ok_and(|o| o.status.success()) {
            return PathBuf::from("uv");
        }
        let home = std::env::var("HOME").unwrap_or_default();
        let pyenv = Path::new(&home).join(".pyenv/versions/3.11.7/bin/uv");
        assert!(
            pyenv.exists(),
            "uv is needed for the interop test: not on PATH, not at {}, and UV is not set",
            pyenv.display()
        );
        pyenv
    }

    /// A venv with the official `mcp` package, made once and kept under the target dir.
    async fn python_with_mcp() -> PathBuf {
        let venv = target_tmpdir().join("notebook-mcp-interop-venv");
        let python = venv.join("bin/python");
        let ready = tokio::process::Command::new(&python)
            .args(["-c", "import mcp"])
            .output()
            .await;
        if ready.is_ok_and(|o| o.status.success()) {
            return python;
        }
        let uv = find_uv();
        let staging =
            target_tmpdir().join(format!("notebook-mcp-interop-venv.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(target_tmpdir()).unwrap();
        let out = tokio::process::Command::new(&uv)
            .arg("venv")
            .arg(&staging)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "`uv venv` failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = tokio::process::Command::new(&uv)
            .args(["pip", "install", "--python"])
            .arg(staging.join("bin/python"))
            .arg("mcp")
            .output()
            .await
            .unwrap();
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        assert!(
            out.status.success(),
            "could not install the `mcp` package from PyPI (is PyPI reachable from here?). \
             The interop test needs it and does not skip.\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_dir_all(&venv);
        std::fs::rename(&staging, &venv).unwrap();
        python
    }

    #[tokio::test]
    async fn official_python_sdk_can_use_the_http_server() {
        let python = python_with_mcp().await;
        let cancel = CancellationToken::new();
        let http = serve_http(
            FakeNotebook::new(),
            ServerOptions::default(),
            cancel.clone(),
        )
        .await
        .unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mcp_interop.py");
        let run = tokio::process::Command::new(&python)
            .arg(script)
            .env("MCP_URL", &http.url)
            .env("MCP_TOKEN", &http.token)
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(120), run)
            .await
            .expect("the interop script hung")
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "interop script failed:\n{stderr}");
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "bad JSON from the script ({e}):\n{}\n{stderr}",
                String::from_utf8_lossy(&out.stdout)
            )
        });

        assert_eq!(report["initialize"]["serverInfo"]["name"], "seer-notebook");
        assert_eq!(
            report["initialize"]["serverInfo"]["version"],
            env!("CARGO_PKG_VERSION")
        );
        let mut names: Vec<&str> = report["tools"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "add_markdown",
                "edit_cell",
                "execute_code",
                "interrupt_kernel",
                "restart_kernel",
                "shutdown_session"
            ]
        );
        let edit = report["tools"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "edit_cell")
            .unwrap();
        assert_eq!(edit["inputSchema"]["required"], json!(["code"]));
        assert_eq!(
            edit["inputSchema"]["properties"]["cell_index"]["default"],
            json!(-1)
        );

        assert_eq!(
            report["hello"]["content"],
            json!([{"type": "text", "text": "[cell 0, execution_count 1]\nhello"}])
        );
        assert_ne!(report["hello"]["isError"], json!(true));
        let png = &report["png"]["content"];
        assert_eq!(
            png[0]["text"],
            "[cell 1, execution_count 2]\n<Figure size 1x1 with 1 Axes>\n[image 1: image/png, attached]"
        );
        assert_eq!(
            (
                png[1]["type"].as_str(),
                png[1]["mimeType"].as_str(),
                png[1]["data"].as_str()
            ),
            (Some("image"), Some("image/png"), Some(PNG))
        );
        assert_eq!(report["bad_index"]["isError"], json!(true));

        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(10), http.join)
            .await
            .unwrap()
            .unwrap();
    }
}
