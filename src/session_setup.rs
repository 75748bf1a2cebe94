//! Opening a session on a started sandbox: the one path that notebook sessions, shell
//! sessions and `seer mcp notebook` take.
//!
//! It checks the workspace against the sandbox's models, installs it (libraries into the
//! sandbox, skills and files into the session's folder), builds the hidden init code that
//! imports the libraries and preloads the models, and starts the kernel — or, under
//! `seer run --watch`, adopts the kernel a previous run left with the same name and setup,
//! reloading the library modules whose files changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use crate::notebook::session::{NotebookSession, SessionOptions};
use crate::sandbox::{ExecOptions, Sandbox};
use crate::shell_session::ShellSession;
use crate::warm::{self, WarmPool};
use crate::workspace::{self, InitOptions, Installed, ModelSpec, WorkspaceConfig};

/// A workspace installed for one session, with the text the agent's prompt gets.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub installed: Installed,
    /// The sandbox's models, as the workspace code loads them.
    pub models: Vec<ModelSpec>,
    /// Markdown for the agent's prompt: the loaded models, as Seer describes them.
    pub model_info_text: String,
    /// Markdown for the agent's prompt: the libraries' docs.
    pub library_docs: String,
}

/// Checks `ws` against the sandbox's models and installs it: libraries into the sandbox's
/// `libraries/`, skills and local files into `workspace_dir`. Relative library and file
/// paths are taken from `base_dir` (the script's folder).
///
/// A sandbox on another machine gets the workspace installed into a local staging folder
/// first, then uploaded to the same places there.
pub fn prepare(
    sandbox: &dyn Sandbox,
    ws: &WorkspaceConfig,
    workspace_dir: &Path,
    base_dir: &Path,
) -> Result<Prepared> {
    let info = sandbox.info();
    let models: Vec<ModelSpec> = info.models.iter().cloned().map(ModelSpec::from).collect();
    workspace::check_conflicts(ws, &models)?;
    // A ScopedSandbox's client modules reach its RPC server from wherever this sandbox is.
    let ws = crate::scoped::rebase_clients(ws, sandbox)?;
    let installed = workspace::install_into(sandbox, &ws, workspace_dir, base_dir)?;
    Ok(Prepared {
        model_info_text: workspace::model_info_text(&models, &ws),
        library_docs: workspace::library_docs(&ws),
        installed,
        models,
    })
}

/// What a notebook session is asked to be.
#[derive(Debug, Clone, Default)]
pub struct NotebookRequest {
    pub name: String,
    /// Where `<name>.ipynb` is written.
    pub output_dir: PathBuf,
    /// Re-execute the code cells of this notebook.
    pub resume: Option<PathBuf>,
    /// Load this notebook's cells without executing them.
    pub continue_from: Option<PathBuf>,
    /// Default per-cell timeout.
    pub timeout: Option<Duration>,
}

/// A notebook session with its workspace in place and its models loaded.
pub struct OpenedNotebook {
    pub session: Arc<NotebookSession>,
    pub prepared: Prepared,
}

/// Opens a notebook session on `sandbox` with the workspace `ws`. With a warm pool, a
/// kernel left by a previous run with the same session name and init code is adopted.
pub async fn open_notebook(
    sandbox: Arc<dyn Sandbox>,
    ws: &WorkspaceConfig,
    base_dir: &Path,
    req: NotebookRequest,
    pool: Option<&WarmPool>,
    cancel: &CancellationToken,
) -> Result<OpenedNotebook> {
    let info = sandbox.info();
    let prepared = prepare(sandbox.as_ref(), ws, &info.workspace, base_dir)?;
    let init_code = workspace::init_code(
        ws,
        &prepared.installed,
        &prepared.models,
        InitOptions {
            cuda: info.gpu.is_some(),
        },
    );
    let opts = SessionOptions {
        name: req.name,
        output_dir: req.output_dir,
        init_code,
        kernel: ExecOptions::default(),
        resume: req.resume,
        continue_from: req.continue_from,
        timeout: req.timeout,
    };
    let key = warm::kernel_key(&opts.name, &opts.init_code);
    let session = match pool.and_then(|p| p.take_kernel(&info.id, &key)) {
        Some(kernel) => {
            tracing::info!(session = %opts.name, "reusing the warm kernel");
            let reload = workspace::reload_code(&prepared.installed.changed_modules);
            NotebookSession::adopt(sandbox, opts, cancel, kernel, reload).await?
        }
        None => NotebookSession::start(sandbox, opts, cancel).await?,
    };
    Ok(OpenedNotebook { session, prepared })
}

/// What a shell session is asked to be.
#[derive(Debug, Clone)]
pub struct ShellRequest {
    pub name: String,
    /// Where skills and local files go (the sandbox's workspace, or a local folder).
    pub workspace_dir: PathBuf,
    /// Local sessions: the host folder commands run in.
    pub host_cwd: Option<PathBuf>,
    /// Default per-command timeout (else the session's default).
    pub timeout: Option<Duration>,
}

/// Opens a shell session on `sandbox` with the workspace `ws`; its commands find the
/// workspace's libraries on `PYTHONPATH`.
pub fn open_shell(
    sandbox: Arc<dyn Sandbox>,
    ws: &WorkspaceConfig,
    base_dir: &Path,
    req: ShellRequest,
    cancel: &CancellationToken,
) -> Result<(Arc<ShellSession>, Prepared)> {
    let prepared = prepare(sandbox.as_ref(), ws, &req.workspace_dir, base_dir)?;
    let mut env = BTreeMap::new();
    env.insert(
        "PYTHONPATH".to_string(),
        prepared
            .installed
            .libraries_dir
            .to_string_lossy()
            .to_string(),
    );
    let session = ShellSession::new(req.name, sandbox, req.host_cwd, env, req.timeout, cancel);
    Ok((session, prepared))
}
