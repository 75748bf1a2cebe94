//! A notebook session: one kernel in a sandbox and the .ipynb it fills. Every visible
//! execution becomes a code cell; the notebook is rewritten atomically after each cell
//! from per-cell JSON fragments kept in memory, so the cost of a cell does not grow with
//! the notebook. A kernel that dies is restarted (workspace init re-run) and the loss of
//! state is said plainly in the result.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio_util::sync::CancellationToken;

use super::mcp::{NotebookTools, ServerOptions, serve_http};
use super::nbformat::{Cell, MultiLine, Notebook, new_cell_id};
use super::render::outputs_text;
use super::{CellRun, RunStatus};
use crate::kernel::{Interrupter, Kernel};
use crate::sandbox::{ExecOptions, Sandbox};

/// A cell still running after this long is written to the notebook as running.
const SHOW_RUNNING_AFTER: Duration = Duration::from_millis(200);

/// How a session starts.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    pub name: String,
    /// Where `<name>.ipynb` is written.
    pub output_dir: PathBuf,
    /// Hidden code run in every new kernel (workspace setup, model loading).
    pub init_code: String,
    /// Environment and working directory of the kernel process.
    pub kernel: ExecOptions,
    /// Load this notebook's cells and re-execute its code cells.
    pub resume: Option<PathBuf>,
    /// Load this notebook's cells without executing them.
    pub continue_from: Option<PathBuf>,
    /// Default per-cell timeout.
    pub timeout: Option<Duration>,
}

struct Doc {
    meta: Notebook,
    cells: Vec<Cell>,
    fragments: Vec<String>,
    /// The notebook metadata as JSON, serialized once.
    meta_json: String,
    /// The live view's copy of the cells (when the view is on).
    live: Option<crate::live::Feed>,
}

impl Doc {
    fn set(&mut self, i: usize, cell: Cell) -> Result<()> {
        let frag = serde_json::to_string(&cell)?;
        if let Some(live) = &self.live {
            live.set(i, &frag);
        }
        if i == self.cells.len() {
            self.cells.push(cell);
            self.fragments.push(frag);
        } else {
            self.cells[i] = cell;
            self.fragments[i] = frag;
        }
        Ok(())
    }

    fn render(&self) -> Result<String> {
        let mut out =
            String::with_capacity(self.fragments.iter().map(|f| f.len() + 2).sum::<usize>() + 512);
        out.push_str("{\n \"cells\": [\n");
        for (i, f) in self.fragments.iter().enumerate() {
            if i > 0 {
                out.push_str(",\n");
            }
            out.push_str("  ");
            out.push_str(f);
        }
        out.push_str("\n ],\n \"metadata\": ");
        if self.meta_json.is_empty() {
            out.push_str(&serde_json::to_string(&self.meta.metadata)?);
        } else {
            out.push_str(&self.meta_json);
        }
        out.push_str(&format!(
            ",\n \"nbformat\": {},\n \"nbformat_minor\": {}\n}}\n",
            self.meta.nbformat, self.meta.nbformat_minor
        ));
        Ok(out)
    }
}

pub struct NotebookSession {
    pub id: String,
    pub name: String,
    pub notebook_path: PathBuf,
    sandbox: Arc<dyn Sandbox>,
    opts: SessionOptions,
    kernel: tokio::sync::Mutex<Option<Kernel>>,
    interrupter: std::sync::Mutex<Option<Interrupter>>,
    doc: std::sync::Mutex<Doc>,
    /// Cancels what agents run through the MCP server (a child of the run's token).
    cancel: CancellationToken,
    http: tokio::sync::OnceCell<crate::mcp_http::HttpServer>,
}

/// Where a session notes its kernel's connection file (`seer attach --session NAME`).
pub fn kernel_record(sandbox_dir: &Path, session: &str) -> PathBuf {
    sandbox_dir
        .join("tmp")
        .join(format!("session-{session}.kernel"))
}

/// Loads and checks a notebook to resume from.
pub fn load_notebook(path: &Path) -> Result<Notebook> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read notebook {}", path.display()))?;
    parse_notebook(path, &text)
}

/// The notebook `text` read from `path`, checked like [`load_notebook`].
pub fn parse_notebook(path: &Path, text: &str) -> Result<Notebook> {
    let nb: Notebook = serde_json::from_str(text)
        .map_err(|e| anyhow!("{} is not a valid nbformat 4 notebook: {e}", path.display()))?;
    if nb.nbformat != 4 {
        bail!(
            "{} is nbformat {}; only nbformat 4 notebooks can be resumed",
            path.display(),
            nb.nbformat
        );
    }
    Ok(nb)
}

impl NotebookSession {
    pub async fn start(
        sandbox: Arc<dyn Sandbox>,
        opts: SessionOptions,
        cancel: &CancellationToken,
    ) -> Result<Arc<Self>> {
        Self::start_inner(sandbox, opts, cancel, None).await
    }

    /// A session on a kernel that is already running (the warm pool of `seer run
    /// --watch`): its state stays; `reload` (library reload code) runs first, hidden. The
    /// notebook file is new.
    pub async fn adopt(
        sandbox: Arc<dyn Sandbox>,
        opts: SessionOptions,
        cancel: &CancellationToken,
        kernel: Kernel,
        reload: String,
    ) -> Result<Arc<Self>> {
        Self::start_inner(sandbox, opts, cancel, Some((kernel, reload))).await
    }

    /// Takes the kernel out of the session (which then has none), to keep it warm.
    pub async fn take_kernel(&self) -> Option<Kernel> {
        let k = self.kernel.lock().await.take();
        if let Ok(mut i) = self.interrupter.lock() {
            *i = None;
        }
        k
    }

    /// The workspace setup code run in each new kernel.
    pub fn init_code(&self) -> &str {
        &self.opts.init_code
    }

    async fn start_inner(
        sandbox: Arc<dyn Sandbox>,
        opts: SessionOptions,
        cancel: &CancellationToken,
        adopt: Option<(Kernel, String)>,
    ) -> Result<Arc<Self>> {
        let python_version = sandbox
            .info()
            .env
            .map(|e| e.python_version)
            .unwrap_or_else(|| "3".into());
        let (mut meta, loaded) = match (&opts.resume, &opts.continue_from) {
            (Some(_), Some(_)) => bail!("give either `resume` or `continue_from`, not both"),
            (Some(p), None) | (None, Some(p)) => {
                let nb = load_notebook(p)?;
                (
                    Notebook {
                        cells: vec![],
                        ..nb.clone()
                    },
                    nb.cells,
                )
            }
            (None, None) => (Notebook::new_python(&python_version), vec![]),
        };
        meta.nbformat = 4;
        meta.nbformat_minor = 5;
        crate::paths::check_file_name("notebook session `name`", &opts.name)?;
        crate::paths::create_private_dir(&opts.output_dir)
            .with_context(|| format!("creating {}", opts.output_dir.display()))?;
        let mut notebook_path = opts.output_dir.join(format!("{}.ipynb", opts.name));
        let mut n = 2;
        while notebook_path.exists() {
            notebook_path = opts.output_dir.join(format!("{}-{n}.ipynb", opts.name));
            n += 1;
        }
        let session = Arc::new(Self {
            id: format!("nb-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            name: opts.name.clone(),
            notebook_path: notebook_path.clone(),
            sandbox,
            opts,
            kernel: tokio::sync::Mutex::new(None),
            interrupter: std::sync::Mutex::new(None),
            doc: std::sync::Mutex::new(Doc {
                meta_json: serde_json::to_string(&meta.metadata)?,
                meta,
                cells: vec![],
                fragments: vec![],
                live: crate::live::Feed::open(crate::live::Kind::Notebook, &notebook_path),
            }),
            cancel: cancel.child_token(),
            http: tokio::sync::OnceCell::new(),
        });
        session.write()?;
        {
            let mut guard = session.kernel.lock().await;
            match adopt {
                Some((mut kernel, reload)) => {
                    if !reload.trim().is_empty() {
                        let r = kernel.execute(&reload, true, None, cancel).await?;
                        if r.status != RunStatus::Ok {
                            tracing::warn!(
                                "reloading changed libraries failed: {}",
                                outputs_text(&r.outputs)
                            );
                        }
                    }
                    if let Ok(mut i) = session.interrupter.lock() {
                        *i = Some(kernel.interrupter());
                    }
                    session.record_kernel(&kernel);
                    *guard = Some(kernel);
                }
                None => session.new_kernel(&mut guard, cancel).await?,
            }
        }
        let resume = session.opts.resume.is_some();
        for cell in loaded {
            let is_code = matches!(cell, Cell::Code { .. });
            let source = cell.source();
            let index = session.push_cell(cell)?;
            if resume && is_code {
                let run = session
                    .run_in_cell(index, &source, session.opts.timeout, cancel)
                    .await?;
                if run.status != RunStatus::Ok {
                    tracing::warn!(
                        cell = index,
                        "resumed cell did not run cleanly: {:?}",
                        run.status
                    );
                }
            }
        }
        Ok(session)
    }

    fn doc(&self) -> Result<std::sync::MutexGuard<'_, Doc>> {
        self.doc
            .lock()
            .map_err(|_| anyhow!("notebook state poisoned"))
    }

    /// Rewrites the notebook file atomically.
    fn write(&self) -> Result<()> {
        let text = self.doc()?.render()?;
        let tmp = self.notebook_path.with_extension("ipynb.tmp");
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.notebook_path)
            .with_context(|| format!("writing {}", self.notebook_path.display()))
    }

    /// Appends a cell and rewrites the notebook.
    fn push_cell(&self, cell: Cell) -> Result<usize> {
        let i = self.append_cell(cell)?;
        self.write()?;
        Ok(i)
    }

    /// Appends a cell without writing (the caller writes soon after).
    fn append_cell(&self, cell: Cell) -> Result<usize> {
        let mut doc = self.doc()?;
        let i = doc.cells.len();
        doc.set(i, cell)?;
        Ok(i)
    }

    /// Starts a kernel and runs the init code in it (hidden).
    async fn new_kernel(
        &self,
        slot: &mut Option<Kernel>,
        cancel: &CancellationToken,
    ) -> Result<()> {
        if let Some(old) = slot.take() {
            old.shutdown().await;
        }
        let mut kernel =
            Kernel::start(self.sandbox.clone(), self.opts.kernel.clone(), cancel).await?;
        if !self.opts.init_code.trim().is_empty() {
            let r = kernel
                .execute(&self.opts.init_code, true, None, cancel)
                .await?;
            if r.status != RunStatus::Ok {
                kernel.kill();
                bail!(
                    "the workspace setup code failed in the kernel:\n{}",
                    outputs_text(&r.outputs)
                );
            }
        }
        if let Ok(mut i) = self.interrupter.lock() {
            *i = Some(kernel.interrupter());
        }
        self.record_kernel(&kernel);
        *slot = Some(kernel);
        Ok(())
    }

    /// Notes which kernel serves this session, for `seer attach --session NAME`.
    fn record_kernel(&self, kernel: &Kernel) {
        // Through the sandbox: on an ssh backend the record lives on the host.
        let record = kernel_record(Path::new(""), &self.name);
        let file = kernel.connection_file().to_string_lossy().to_string();
        if let Err(e) = self
            .sandbox
            .write_private(&record.to_string_lossy(), file.as_bytes())
        {
            tracing::warn!("cannot record the kernel of session {}: {e:#}", self.name);
        }
    }

    /// Runs code in the kernel, restarting it first if it died since the last call, and
    /// after a death during this run.
    async fn run(
        &self,
        code: &str,
        hidden: bool,
        timeout: Option<Duration>,
        cancel: &CancellationToken,
    ) -> Result<(crate::kernel::ExecResult, Option<String>)> {
        let mut guard = self.kernel.lock().await;
        let mut note = None;
        if guard.as_ref().is_none_or(|k| k.is_dead()) {
            self.new_kernel(&mut guard, cancel).await?;
            note = Some("The kernel had died and was restarted before this cell: all earlier variables, imports and loaded models are gone (the workspace setup ran again).".to_string());
        }
        let ooms_before = self.sandbox.oom_kills().await;
        let kernel = guard.as_mut().ok_or_else(|| anyhow!("no kernel"))?;
        let result = kernel
            .execute(code, hidden, timeout.or(self.opts.timeout), cancel)
            .await?;
        if result.status == RunStatus::KernelDied {
            self.new_kernel(&mut guard, cancel).await?;
            if self.sandbox.oom_kills().await > ooms_before {
                note = Some("The kernel was killed while running this cell because the sandbox reached its memory bound (`memory` in the sandbox config). It was restarted: all earlier variables, imports and loaded models are gone (the workspace setup ran again). Use less memory, or raise the bound.".to_string());
            } else {
                note = Some("The kernel died while running this cell (it crashed, ran out of memory, or ignored an interrupt after a timeout). It was restarted: all earlier variables, imports and loaded models are gone (the workspace setup ran again).".to_string());
            }
        }
        Ok((result, note))
    }

    async fn run_in_cell(
        &self,
        index: usize,
        code: &str,
        timeout: Option<Duration>,
        cancel: &CancellationToken,
    ) -> Result<CellRun> {
        // A quick cell is written once, when it is done; a cell still running after
        // `SHOW_RUNNING_AFTER` is written as running first, so a reader sees it. The live
        // view shows it running at once.
        self.live_running(Some(index));
        let run = self.run(code, false, timeout, cancel);
        tokio::pin!(run);
        let ran = tokio::select! {
            r = &mut run => r,
            _ = tokio::time::sleep(SHOW_RUNNING_AFTER) => {
                self.write()?;
                run.await
            }
        };
        let (r, note) = match ran {
            Ok(x) => x,
            Err(e) => {
                self.live_running(None);
                return Err(e);
            }
        };
        let cell = Cell::Code {
            id: self.cell_id(index),
            metadata: Default::default(),
            source: MultiLine::from_text(&self.sandbox.redact(code)),
            execution_count: r.execution_count,
            outputs: r.outputs.clone(),
        };
        self.doc()?.set(index, cell)?;
        self.live_running(None);
        self.write()?;
        Ok(CellRun {
            cell_index: Some(index),
            execution_count: r.execution_count,
            outputs: r.outputs,
            status: r.status,
            note,
        })
    }

    /// Tells the live view which cell runs now.
    fn live_running(&self, index: Option<usize>) {
        if let Ok(doc) = self.doc()
            && let Some(live) = &doc.live
        {
            live.running(index);
        }
    }

    fn cell_id(&self, index: usize) -> String {
        let doc = self.doc.lock();
        match doc.as_ref().ok().and_then(|d| d.cells.get(index)) {
            Some(Cell::Code { id, .. } | Cell::Markdown { id, .. } | Cell::Raw { id, .. }) => {
                id.clone()
            }
            None => new_cell_id(),
        }
    }

    /// Runs code; a visible execution is appended to the notebook as a code cell.
    pub async fn execute(
        &self,
        code: &str,
        hidden: bool,
        timeout: Option<Duration>,
        cancel: &CancellationToken,
    ) -> Result<CellRun> {
        if hidden {
            let (r, note) = self.run(code, true, timeout, cancel).await?;
            return Ok(CellRun {
                cell_index: None,
                execution_count: None,
                outputs: r.outputs,
                status: r.status,
                note,
            });
        }
        let index = self.append_cell(Cell::Code {
            id: new_cell_id(),
            metadata: Default::default(),
            source: MultiLine::from_text(&self.sandbox.redact(code)),
            execution_count: None,
            outputs: vec![],
        })?;
        self.run_in_cell(index, code, timeout, cancel).await
    }

    pub fn add_markdown(&self, content: &str) -> Result<usize> {
        self.push_cell(Cell::Markdown {
            id: new_cell_id(),
            metadata: Default::default(),
            source: MultiLine::from_text(&self.sandbox.redact(content)),
        })
    }

    /// Replaces a code cell's source and runs it again; negative indices count from the end.
    pub async fn edit_cell(
        &self,
        code: &str,
        index: i64,
        cancel: &CancellationToken,
    ) -> Result<CellRun> {
        let i = {
            let doc = self.doc()?;
            let n = doc.cells.len() as i64;
            let i = if index < 0 { n + index } else { index };
            if i < 0 || i >= n {
                bail!("cell_index {index} is out of range: the notebook has {n} cells");
            }
            if !matches!(doc.cells[i as usize], Cell::Code { .. }) {
                bail!("cell {i} is a markdown cell; edit_cell only edits code cells");
            }
            i as usize
        };
        self.run_in_cell(i, code, None, cancel).await
    }

    /// The cell at `index` (negative counts from the end) and its index, as the notebook
    /// holds it (secrets redacted).
    pub fn cell(&self, index: i64) -> Result<(usize, Cell)> {
        let doc = self.doc()?;
        let n = doc.cells.len() as i64;
        let i = if index < 0 { n + index } else { index };
        if i < 0 || i >= n {
            bail!("cell_index {index} is out of range: the notebook has {n} cells");
        }
        Ok((i as usize, doc.cells[i as usize].clone()))
    }

    /// The default timeout of a cell, if any.
    pub fn cell_timeout(&self) -> Option<Duration> {
        self.opts.timeout
    }

    /// Interrupts the running cell, if any.
    pub async fn interrupt(&self) -> Result<()> {
        let i = self.interrupter.lock().ok().and_then(|g| g.clone());
        match i {
            Some(i) => i.interrupt().await,
            None => bail!("no kernel is running"),
        }
    }

    /// A fresh kernel (all state lost), with the workspace set up again.
    pub async fn restart(&self, cancel: &CancellationToken) -> Result<()> {
        let mut guard = self.kernel.lock().await;
        self.new_kernel(&mut guard, cancel).await
    }

    /// Ends the kernel; the notebook stays on disk.
    pub async fn shutdown(&self) -> Result<()> {
        let mut guard = self.kernel.lock().await;
        if let Some(k) = guard.take() {
            k.shutdown().await;
        }
        self.write()
    }

    /// The session's MCP server over streamable HTTP on 127.0.0.1 with a bearer token,
    /// started on first use; returns its `.mcp.json`-shaped config under `server_name`.
    pub async fn mcp_config(self: &Arc<Self>, server_name: &str) -> Result<serde_json::Value> {
        let me = self.clone();
        let server = self
            .http
            .get_or_try_init(|| async move {
                let tools: Arc<dyn NotebookTools> = Arc::new(SessionTools(me.clone()));
                serve_http(tools, ServerOptions::default(), me.cancel.clone()).await
            })
            .await?;
        Ok(server.mcp_config(server_name))
    }

    /// The session's tools as an MCP server object (for in-process and stdio serving).
    pub fn tools(self: &Arc<Self>) -> Arc<dyn NotebookTools> {
        Arc::new(SessionTools(self.clone()))
    }

    pub fn sandbox(&self) -> &Arc<dyn Sandbox> {
        &self.sandbox
    }

    pub fn cell_count(&self) -> usize {
        self.doc.lock().map(|d| d.cells.len()).unwrap_or(0)
    }
}

/// The notebook MCP server's view of a session.
struct SessionTools(Arc<NotebookSession>);

#[async_trait::async_trait]
impl NotebookTools for SessionTools {
    async fn execute_code(&self, code: String) -> Result<CellRun> {
        self.0.execute(&code, false, None, &self.0.cancel).await
    }
    async fn add_markdown(&self, content: String) -> Result<usize> {
        self.0.add_markdown(&content)
    }
    async fn edit_cell(&self, code: String, cell_index: i64) -> Result<CellRun> {
        self.0.edit_cell(&code, cell_index, &self.0.cancel).await
    }
    async fn interrupt(&self) -> Result<()> {
        self.0.interrupt().await
    }
    async fn restart(&self) -> Result<()> {
        self.0.restart(&self.0.cancel).await
    }
    async fn shutdown(&self) -> Result<()> {
        self.0.shutdown().await
    }
    fn read_cell(&self, cell_index: i64) -> Result<(usize, Cell)> {
        self.0.cell(cell_index)
    }
    fn cell_timeout(&self) -> Option<Duration> {
        self.0.cell_timeout()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_notebook_parses_back() {
        let mut doc = Doc {
            meta: Notebook::new_python("3.11"),
            cells: vec![],
            fragments: vec![],
            meta_json: String::new(),
            live: None,
        };
        doc.set(
            0,
            Cell::Markdown {
                id: "a".into(),
                metadata: Default::default(),
                source: MultiLine::from_text("# hi"),
            },
        )
        .unwrap();
        doc.set(
            1,
            Cell::Code {
                id: "b".into(),
                metadata: Default::default(),
                source: MultiLine::from_text("1+1"),
                execution_count: Some(1),
                outputs: vec![],
            },
        )
        .unwrap();
        let nb: Notebook = serde_json::from_str(&doc.render().unwrap()).unwrap();
        assert_eq!(nb.cells, doc.cells);
        assert_eq!(nb.nbformat, 4);
    }
}
