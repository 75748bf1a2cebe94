//! Sessions: `create_notebook_session(sandbox, workspace[, opts])`,
//! `create_local_notebook_session(workspace[, opts])` and the methods of a notebook
//! session. Shell sessions (local and CLI) are in `api_shell`.

use std::sync::Arc;
use std::time::Duration;

use rhai::{Dynamic, Engine, Map};
use serde::Deserialize;

use super::api_sandbox::SandboxHandle;
use super::api_workspace::WorkspaceHandle;
use super::{Host, RhaiResult, runtime_error};
use crate::config::{from_dynamic, positive_seconds};
use crate::notebook::render::outputs_text;
use crate::notebook::session::NotebookSession;
use crate::notebook::{CellRun, RunStatus};
use crate::sandbox::Sandbox;
use crate::sandbox::config::{ExecutionMode, SandboxConfig};
use crate::session_setup::{self, NotebookRequest};
use crate::workspace::WorkspaceConfig;

/// The script-side notebook session.
#[derive(Clone)]
pub struct SessionHandle {
    pub session: Arc<NotebookSession>,
    /// Markdown for the agent's prompt: loaded models and library docs.
    pub model_info_text: String,
    pub library_docs: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SessionOpts {
    #[serde(default)]
    name: Option<String>,
    /// Re-execute the code cells of this notebook.
    #[serde(default)]
    resume: Option<String>,
    /// Load this notebook's cells without executing them.
    #[serde(default)]
    continue_from: Option<String>,
    /// Default per-cell timeout, seconds.
    #[serde(default)]
    timeout: Option<f64>,
    /// Only for `create_local_notebook_session`: packages of its env.
    #[serde(default)]
    python_packages: Vec<String>,
    /// Only for `create_local_notebook_session`: secrets (variable names) and variables for
    /// the kernel, as in a Sandbox config.
    #[serde(default)]
    secrets: Vec<String>,
    #[serde(default)]
    env: std::collections::BTreeMap<String, String>,
    /// Where the .ipynb goes (relative to the script's folder); the run folder by default.
    /// `notebook_dir` is Seer's name for it.
    #[serde(default, alias = "notebook_dir")]
    output_dir: Option<String>,
    /// Seer's Jupyter server port: seer runs none.
    #[serde(default)]
    port: Option<i64>,
    /// Seer's local workspace folder: a local notebook's kernel works in its sandbox.
    #[serde(default)]
    workspace_dir: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CellOpts {
    #[serde(default)]
    hidden: bool,
    #[serde(default)]
    timeout: Option<f64>,
    /// Whether a failed cell is a script error (Seer's `exec` raises); default true.
    #[serde(default, rename = "raise")]
    raise_on_error: Option<bool>,
}

/// An optional `timeout` option of `what`, checked.
fn timeout(what: &str, v: Option<f64>) -> RhaiResult<Option<Duration>> {
    v.map(|t| positive_seconds("timeout", t))
        .transpose()
        .map_err(|e| runtime_error(format!("{what}: {e}")))
}

/// A cell result as scripts get it: the fields of [`CellRun`] as serde names them
/// (`status` is `"ok"`, `"timed_out"`, ...), plus `ok` and the outputs' plain `text`.
fn run_to_map(r: &CellRun) -> RhaiResult<Dynamic> {
    let mut m = rhai::serde::to_dynamic(r)?
        .try_cast::<Map>()
        .ok_or_else(|| runtime_error("a cell result did not become a map"))?;
    m.insert("ok".into(), (r.status == RunStatus::Ok).into());
    m.insert("text".into(), outputs_text(&r.outputs).into());
    Ok(m.into())
}

/// The error of a failed cell: its status, the note, then the outputs' text (the
/// traceback ends with Seer's `ename: evalue`).
fn cell_failure(r: &CellRun) -> String {
    let mut msg = format!("cell failed ({})", r.status);
    if let Some(note) = &r.note {
        msg.push_str(&format!(": {note}"));
    }
    msg.push_str(&format!("\n{}", outputs_text(&r.outputs).trim_end()));
    msg
}

/// The session's `name` becomes the notebook's file name.
fn check_name(o: &SessionOpts) -> RhaiResult<()> {
    match &o.name {
        Some(n) => crate::paths::check_file_name("notebook session options: `name`", n)
            .map_err(|e| runtime_error(e.to_string())),
        None => Ok(()),
    }
}

fn parse_opts<T: for<'de> Deserialize<'de> + Default>(what: &str, m: Option<Map>) -> RhaiResult<T> {
    match m {
        Some(m) => from_dynamic(what, &Dynamic::from_map(m)).map_err(|e| runtime_error(e.0)),
        None => Ok(T::default()),
    }
}

/// A script's workspace argument: a `Workspace(#{...})` or `()` (none).
pub(super) fn workspace_config(ws: &Dynamic) -> RhaiResult<WorkspaceConfig> {
    if ws.is_unit() {
        Ok(WorkspaceConfig::default())
    } else if let Some(w) = ws.clone().try_cast::<WorkspaceHandle>() {
        Ok((*w.0).clone())
    } else {
        Err(runtime_error(format!(
            "the workspace argument must be a Workspace(#{{...}}) or (), not {}",
            ws.type_name()
        )))
    }
}

fn start_session(
    host: &Arc<Host>,
    sandbox: Arc<dyn Sandbox>,
    workspace: &Dynamic,
    o: SessionOpts,
) -> RhaiResult<SessionHandle> {
    let ws = workspace_config(workspace)?;
    check_name(&o)?;
    let resolve = |p: &Option<String>| {
        p.as_ref()
            .map(|p| crate::sandbox::fsutil::resolve_host(&host.script_dir, p))
    };
    if o.port.is_some() {
        return Err(super::not_supported(
            "`port` in notebook session options: seer runs no Jupyter server (it talks to the kernel directly); drop it",
        ));
    }
    if o.workspace_dir.is_some() {
        return Err(super::not_supported(
            "`workspace_dir` for a notebook session: its kernel works in the sandbox's workspace (`s.workspace_path`); put files there with the Workspace's `local_files`/`local_dirs`",
        ));
    }
    let output_dir = match &o.output_dir {
        Some(d) => crate::sandbox::fsutil::resolve_host(&host.script_dir, d),
        None => host.run_dir.clone(),
    };
    let req = NotebookRequest {
        name: o.name.clone().unwrap_or_else(|| "notebook".into()),
        output_dir,
        resume: resolve(&o.resume),
        continue_from: resolve(&o.continue_from),
        timeout: timeout("notebook session options", o.timeout)?,
    };
    super::api_view::start(host);
    let cancel = host.cancel();
    let base_dir = host.script_dir.clone();
    let pool = host.pool.clone();
    let opened = host.block_on(async move {
        session_setup::open_notebook(sandbox, &ws, &base_dir, req, pool.as_deref(), &cancel).await
    })?;
    if let Ok(mut v) = host.sessions.lock() {
        v.push(opened.session.clone());
    }
    Ok(SessionHandle {
        session: opened.session,
        model_info_text: opened.prepared.model_info_text,
        library_docs: opened.prepared.library_docs,
    })
}

pub fn register(engine: &mut Engine, host: &Arc<Host>) {
    use super::api_util::{func, getter};

    engine.register_type_with_name::<SessionHandle>("NotebookSession");

    let h = host.clone();
    let create = move |sb: &mut SandboxHandle,
                       ws: Dynamic,
                       m: Option<Map>|
          -> RhaiResult<SessionHandle> {
        let o: SessionOpts = parse_opts("notebook session options", m)?;
        if !o.python_packages.is_empty() || !o.secrets.is_empty() || !o.env.is_empty() {
            return Err(runtime_error(
                "notebook session options: `python_packages`, `secrets` and `env` belong in the Sandbox config for create_notebook_session",
            ));
        }
        start_session(&h, sb.live_sandbox()?, &ws, o)
    };
    let c2 = create.clone();
    const CREATE: &str = "A Jupyter kernel in the sandbox driven as a notebook; options `#{ name, timeout, resume, continue_from, output_dir (or Seer's notebook_dir: where the .ipynb goes; the run folder by default) }`. The .ipynb is rewritten after every cell.";
    func(
        engine,
        "create_notebook_session",
        "workspace",
        CREATE,
        move |sb: &mut SandboxHandle, ws: Dynamic| c2(sb, ws, None),
    );
    func(
        engine,
        "create_notebook_session",
        "workspace, opts",
        CREATE,
        move |sb: &mut SandboxHandle, ws: Dynamic, m: Map| create(sb, ws, Some(m)),
    );

    let h = host.clone();
    let create_local = move |ws: Dynamic, m: Option<Map>| -> RhaiResult<SessionHandle> {
        let o: SessionOpts = parse_opts("notebook session options", m)?;
        check_name(&o)?;
        let config = SandboxConfig {
            execution_mode: ExecutionMode::Notebook,
            python_packages: o.python_packages.clone(),
            secrets: o.secrets.clone(),
            env: o.env.clone(),
            ..SandboxConfig::default()
        };
        let sb = h.start_session_sandbox(config)?;
        start_session(&h, sb, &ws, o)
    };
    let l2 = create_local.clone();
    const CREATE_LOCAL: &str = "A notebook session on a sandbox made for it; options as `create_notebook_session` plus the sandbox's `python_packages`, `secrets` (names of variables read from the environment or .env, given to the kernel) and `env` (variables).";
    func(
        engine,
        "create_local_notebook_session",
        "workspace",
        CREATE_LOCAL,
        move |ws: Dynamic| l2(ws, None),
    );
    func(
        engine,
        "create_local_notebook_session",
        "workspace, opts",
        CREATE_LOCAL,
        move |ws: Dynamic, m: Map| create_local(ws, Some(m)),
    );

    let h = host.clone();
    // A cell's result; a failed cell is a script error unless `raise: false` (as in Seer,
    // whose `exec` raises on a Python error).
    let exec = move |s: &mut SessionHandle, code: &str, m: Option<Map>| -> RhaiResult<Dynamic> {
        let o: CellOpts = parse_opts("exec options", m)?;
        let timeout = timeout("exec options", o.timeout)?;
        let session = s.session.clone();
        let code = code.to_string();
        let cancel = h.cancel();
        let r =
            h.block_on(async move { session.execute(&code, o.hidden, timeout, &cancel).await })?;
        if o.raise_on_error.unwrap_or(true) && r.status != RunStatus::Ok {
            return Err(runtime_error(cell_failure(&r)));
        }
        run_to_map(&r)
    };
    const EXEC: &str = "Runs a cell; returns `#{ cell_index, execution_count, status, ok, outputs, text, note }`. A failed cell (Python error, timeout, dead kernel) is a script error led by `cell failed (<status>)` and its traceback, as Seer's `exec` raises; with `raise: false` it returns the map instead. Options `#{ hidden, timeout, raise }`.";
    let e = exec.clone();
    func(
        engine,
        "exec",
        "code",
        EXEC,
        move |s: &mut SessionHandle, code: &str| e(s, code, None),
    );
    let e = exec.clone();
    func(
        engine,
        "exec",
        "code, opts",
        EXEC,
        move |s: &mut SessionHandle, code: &str, m: Map| e(s, code, Some(m)),
    );
    const EXEC_OR_THROW: &str =
        "`exec` (which raises on a failed cell unless `raise: false`); kept for older scripts.";
    let e = exec.clone();
    func(
        engine,
        "exec_or_throw",
        "code",
        EXEC_OR_THROW,
        move |s: &mut SessionHandle, code: &str| e(s, code, None),
    );
    func(
        engine,
        "exec_or_throw",
        "code, opts",
        EXEC_OR_THROW,
        move |s: &mut SessionHandle, code: &str, m: Map| exec(s, code, Some(m)),
    );

    func(
        engine,
        "add_markdown",
        "text",
        "Appends a markdown cell; returns its index.",
        |s: &mut SessionHandle, text: &str| -> RhaiResult<i64> {
            s.session
                .add_markdown(text)
                .map(|i| i as i64)
                .map_err(|e| runtime_error(format!("add_markdown: {e:#}")))
        },
    );
    let h = host.clone();
    func(
        engine,
        "edit_cell",
        "code, index",
        "Replaces a cell's code and re-runs it (negative index counts from the end).",
        move |s: &mut SessionHandle, code: &str, index: i64| -> RhaiResult<Dynamic> {
            let session = s.session.clone();
            let code = code.to_string();
            let cancel = h.cancel();
            let r = h.block_on(async move { session.edit_cell(&code, index, &cancel).await })?;
            run_to_map(&r)
        },
    );
    let h = host.clone();
    func(
        engine,
        "interrupt",
        "",
        "Interrupts the running cell.",
        move |s: &mut SessionHandle| -> RhaiResult<()> {
            let session = s.session.clone();
            h.block_on(async move { session.interrupt().await })
        },
    );
    let h = host.clone();
    func(
        engine,
        "restart",
        "",
        "Restarts the kernel and sets the workspace up again.",
        move |s: &mut SessionHandle| -> RhaiResult<()> {
            let session = s.session.clone();
            let cancel = h.cancel();
            h.block_on(async move { session.restart(&cancel).await })
        },
    );
    let h = host.clone();
    func(
        engine,
        "shutdown",
        "",
        "Ends the kernel and the session's MCP server.",
        move |s: &mut SessionHandle| -> RhaiResult<()> {
            let session = s.session.clone();
            h.block_on(async move { session.shutdown().await })
        },
    );
    // Seer's name for `shutdown`.
    let h = host.clone();
    func(
        engine,
        "terminate",
        "",
        "Seer's name for `shutdown`: ends the kernel and the session's MCP server.",
        move |s: &mut SessionHandle| -> RhaiResult<()> {
            let session = s.session.clone();
            h.block_on(async move { session.shutdown().await })
        },
    );
    getter(
        engine,
        "notebook_path",
        "",
        "The .ipynb file, rewritten after every cell.",
        |s: &mut SessionHandle| s.session.notebook_path.to_string_lossy().to_string(),
    );
    getter(
        engine,
        "session_id",
        "",
        "The session id.",
        |s: &mut SessionHandle| s.session.id.clone(),
    );
    getter(
        engine,
        "name",
        "",
        "The notebook name.",
        |s: &mut SessionHandle| s.session.name.clone(),
    );
    getter(
        engine,
        "workspace_path",
        "",
        "The sandbox workspace the kernel runs in.",
        |s: &mut SessionHandle| {
            s.session
                .sandbox()
                .info()
                .workspace
                .to_string_lossy()
                .to_string()
        },
    );
    let h = host.clone();
    getter(
        engine,
        "mcp_config",
        "-> map",
        "`#{ notebooks: #{ type: \"http\", url, headers } }` for `run_agent` or any MCP client.",
        move |s: &mut SessionHandle| -> RhaiResult<Dynamic> {
            let session = s.session.clone();
            let cfg = h.block_on(async move { session.mcp_config("notebooks").await })?;
            rhai::serde::to_dynamic(cfg)
        },
    );
    getter(
        engine,
        "model_info_text",
        "",
        "A description of the loaded models for an agent's prompt.",
        |s: &mut SessionHandle| s.model_info_text.clone(),
    );
    getter(
        engine,
        "library_docs",
        "",
        "The workspace's library docs.",
        |s: &mut SessionHandle| s.library_docs.clone(),
    );
    getter(
        engine,
        "cell_count",
        "",
        "How many cells the notebook has.",
        |s: &mut SessionHandle| s.session.cell_count() as i64,
    );
    engine.register_fn("to_string", |s: &mut SessionHandle| {
        format!(
            "NotebookSession({}, {})",
            s.session.name,
            s.session.notebook_path.display()
        )
    });
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::notebook::nbformat::{MultiLine, Output};

    fn as_json(r: &CellRun) -> serde_json::Value {
        serde_json::to_value(run_to_map(r).unwrap()).unwrap()
    }

    #[test]
    fn a_cell_result_becomes_the_map_scripts_see() {
        let run = CellRun {
            cell_index: Some(3),
            execution_count: Some(7),
            outputs: vec![Output::Stream {
                name: "stdout".into(),
                text: MultiLine::Text("hi\n".into()),
            }],
            status: RunStatus::TimedOut,
            note: Some("slow".into()),
        };
        assert_eq!(
            as_json(&run),
            json!({
                "cell_index": 3, "execution_count": 7, "status": "timed_out", "ok": false,
                "outputs": [{"output_type": "stream", "name": "stdout", "text": "hi\n"}],
                "text": "hi\n", "note": "slow",
            })
        );
        let hidden = CellRun {
            cell_index: None,
            execution_count: None,
            outputs: vec![],
            status: RunStatus::Ok,
            note: None,
        };
        assert_eq!(
            as_json(&hidden),
            json!({
                "cell_index": null, "execution_count": null, "status": "ok", "ok": true,
                "outputs": [], "text": "", "note": null,
            })
        );
    }

    #[test]
    fn map_values_have_the_script_types() {
        let run = CellRun {
            cell_index: Some(0),
            execution_count: None,
            outputs: vec![],
            status: RunStatus::KernelDied,
            note: None,
        };
        let m = run_to_map(&run).unwrap().cast::<Map>();
        assert_eq!(m["cell_index"].as_int(), Ok(0));
        assert!(m["execution_count"].is_unit());
        assert!(m["note"].is_unit());
        assert_eq!(
            m["status"].clone().into_string().as_deref(),
            Ok("kernel_died")
        );
        assert!(m["outputs"].is_array());
    }
}
