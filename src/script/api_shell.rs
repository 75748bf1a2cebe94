//! The shell-session family: `create_cli_session(sandbox, workspace[, opts])` and
//! `create_local_session(workspace[, opts])` (see `shell_session`), and their methods.

use std::collections::BTreeMap;
use std::sync::Arc;

use rhai::{Dynamic, Engine, Map, NativeCallContext};
use serde::Deserialize;

use super::api_sandbox::SandboxHandle;
use super::api_session::workspace_config;
use super::{Host, RhaiResult, runtime_error};
use crate::config::{from_dynamic, positive_seconds};
use crate::sandbox::config::SandboxConfig;
use crate::sandbox::{Command, ExecOutput, Sandbox};
use crate::session_setup::{self, ShellRequest};
use crate::shell_session::ShellSession;
use crate::workspace::WorkspaceConfig;

/// The script-side shell session.
#[derive(Clone)]
pub struct ShellHandle {
    session: Arc<ShellSession>,
    workspace_path: String,
    model_info_text: String,
    library_docs: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ShellOpts {
    #[serde(default)]
    name: Option<String>,
    /// Default per-command timeout, seconds.
    #[serde(default)]
    timeout: Option<f64>,
    /// Local sessions: the folder the agent works in (default: `workspace` in the run's
    /// output folder).
    #[serde(default)]
    workspace_dir: Option<String>,
    /// Local sessions: packages of the Python env.
    #[serde(default)]
    python_packages: Vec<String>,
    /// Local sessions: names of environment variables (or `.env` entries) the commands get.
    #[serde(default)]
    secrets: Vec<String>,
    /// Local sessions: extra environment variables.
    #[serde(default)]
    env: BTreeMap<String, String>,
}

fn opts_of(m: Option<Map>) -> RhaiResult<ShellOpts> {
    match m {
        Some(m) => from_dynamic("shell session options", &Dynamic::from_map(m))
            .map_err(|e| runtime_error(e.0)),
        None => Ok(ShellOpts::default()),
    }
}

/// Opens the session through the library's one setup path.
fn open(
    host: &Host,
    sandbox: Arc<dyn Sandbox>,
    ws: &WorkspaceConfig,
    o: &ShellOpts,
    default_name: &str,
    workspace_dir: std::path::PathBuf,
    host_cwd: Option<std::path::PathBuf>,
) -> RhaiResult<ShellHandle> {
    let timeout = o
        .timeout
        .map(|t| positive_seconds("timeout", t))
        .transpose()
        .map_err(|e| runtime_error(format!("shell session options: {e}")))?;
    let req = ShellRequest {
        name: o.name.clone().unwrap_or_else(|| default_name.into()),
        workspace_dir: workspace_dir.clone(),
        host_cwd,
        timeout,
    };
    let (session, prepared) =
        session_setup::open_shell(sandbox, ws, &host.script_dir, req, &host.cancel())
            .map_err(|e| runtime_error(format!("{e:#}")))?;
    Ok(ShellHandle {
        session,
        workspace_path: workspace_dir.to_string_lossy().to_string(),
        model_info_text: prepared.model_info_text,
        library_docs: prepared.library_docs,
    })
}

fn checked(out: ExecOutput, what: &str) -> RhaiResult<String> {
    if out.exit_code == 0 {
        Ok(out.stdout)
    } else {
        Err(runtime_error(format!(
            "{what} failed with exit code {}: {}",
            out.exit_code,
            out.stderr.trim()
        )))
    }
}

pub fn register(engine: &mut Engine, host: &Arc<Host>) {
    use super::api_util::{func, getter};

    engine.register_type_with_name::<ShellHandle>("ShellSession");

    let h = host.clone();
    let cli = move |sb: &mut SandboxHandle,
                    ws: Dynamic,
                    m: Option<Map>|
          -> RhaiResult<ShellHandle> {
        let o = opts_of(m)?;
        if o.workspace_dir.is_some()
            || !o.python_packages.is_empty()
            || !o.secrets.is_empty()
            || !o.env.is_empty()
        {
            return Err(runtime_error(
                "create_cli_session options: `workspace_dir`, `python_packages`, `secrets` and `env` are for create_local_session (a CLI session works in its sandbox: set them in the Sandbox config)",
            ));
        }
        let sandbox = sb.live_sandbox()?;
        let dir = sandbox.info().workspace;
        open(&h, sandbox, &workspace_config(&ws)?, &o, "cli", dir, None)
    };
    let c2 = cli.clone();
    const CLI: &str = "A shell session inside the sandbox (`#{ name, timeout }`): `run_shell`/`run_python` MCP tools in its workspace, libraries importable.";
    func(
        engine,
        "create_cli_session",
        "workspace: Workspace",
        CLI,
        move |sb: &mut SandboxHandle, ws: Dynamic| c2(sb, ws, None),
    );
    func(
        engine,
        "create_cli_session",
        "workspace: Workspace, opts",
        CLI,
        move |sb: &mut SandboxHandle, ws: Dynamic, m: Map| cli(sb, ws, Some(m)),
    );

    // Anything else as the first argument: say what is expected.
    func(
        engine,
        "create_cli_session",
        "sandbox: Sandbox, workspace: Workspace",
        CLI,
        |sb: Dynamic, _: Dynamic| -> RhaiResult<ShellHandle> {
            Err(runtime_error(format!(
                "create_cli_session: the first argument must be a Sandbox (Sandbox(#{{...}}).start()), not {}",
                sb.type_name()
            )))
        },
    );

    let h = host.clone();
    let local = move |ws: Dynamic, m: Option<Map>| -> RhaiResult<ShellHandle> {
        let o = opts_of(m)?;
        let ws = workspace_config(&ws)?;
        let dir = match &o.workspace_dir {
            Some(d) => crate::sandbox::fsutil::resolve_host(&h.script_dir, d),
            None => {
                crate::paths::create_private_dir(&h.run_dir).map_err(|e| {
                    runtime_error(format!(
                        "create_local_session: cannot create {}: {e}",
                        h.run_dir.display()
                    ))
                })?;
                h.run_dir.join("workspace")
            }
        };
        std::fs::create_dir_all(&dir).map_err(|e| {
            runtime_error(format!(
                "create_local_session: cannot create {}: {e}",
                dir.display()
            ))
        })?;
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        let config = SandboxConfig {
            python_packages: o.python_packages.clone(),
            secrets: o.secrets.clone(),
            env: o.env.clone(),
            ..SandboxConfig::default()
        };
        let sb = h.start_session_sandbox(config)?;
        open(&h, sb, &ws, &o, "local", dir.clone(), Some(dir))
    };
    let l2 = local.clone();
    const LOCAL: &str = "A shell session in a local folder (`#{ workspace_dir, name, python_packages, secrets, env, timeout }`; `secrets` are names of variables read from the environment or .env): the agent gets `run_shell`/`run_python` MCP tools there, with the workspace's libraries importable.";
    func(
        engine,
        "create_local_session",
        "workspace: Workspace",
        LOCAL,
        move |ws: Dynamic| l2(ws, None),
    );
    func(
        engine,
        "create_local_session",
        "workspace: Workspace, opts",
        LOCAL,
        move |ws: Dynamic, m: Map| local(ws, Some(m)),
    );

    let h = host.clone();
    getter(
        engine,
        "mcp_config",
        "-> map",
        "`#{ shell: #{ type: \"http\", url, headers } }` for run_agent.",
        move |s: &mut ShellHandle| -> RhaiResult<Dynamic> {
            let session = s.session.clone();
            let cfg = h.block_on(async move { session.mcp_config().await })?;
            rhai::serde::to_dynamic(&cfg)
        },
    );
    getter(
        engine,
        "name",
        "",
        "The session name.",
        |s: &mut ShellHandle| s.session.name.clone(),
    );
    getter(
        engine,
        "workspace_path",
        "",
        "The folder the session's commands run in.",
        |s: &mut ShellHandle| s.workspace_path.clone(),
    );
    getter(
        engine,
        "workspace_dir",
        "",
        "Seer's name for `workspace_path`: the folder the session's commands run in.",
        |s: &mut ShellHandle| s.workspace_path.clone(),
    );
    getter(
        engine,
        "session_id",
        "",
        "Seer's `session_id`: the session name.",
        |s: &mut ShellHandle| s.session.name.clone(),
    );
    func(
        engine,
        "exec_shell",
        "cmd",
        "Seer's `CLISession.exec_shell`: the same as `exec(cmd)` (seer's `exec` runs shell commands; Seer's ran Python, which is `exec_python`).",
        move |ctx: NativeCallContext, s: &mut ShellHandle, cmd: &str| -> RhaiResult<Dynamic> {
            ctx.call_native_fn::<Dynamic>("exec", (s.clone(), cmd.to_string()))
        },
    );
    getter(
        engine,
        "model_info_text",
        "",
        "A description of the sandbox's models for an agent's prompt.",
        |s: &mut ShellHandle| s.model_info_text.clone(),
    );
    getter(
        engine,
        "library_docs",
        "",
        "The workspace's library docs.",
        |s: &mut ShellHandle| s.library_docs.clone(),
    );
    let h = host.clone();
    func(
        engine,
        "exec",
        "cmd",
        "Runs a shell command in the session's folder; returns stdout (error on a non-zero exit).",
        move |s: &mut ShellHandle, cmd: &str| -> RhaiResult<String> {
            let session = s.session.clone();
            let c = Command::Shell(cmd.to_string());
            let out = h.block_on(async move { session.run(c, None).await })?;
            checked(out, "command")
        },
    );
    let h = host.clone();
    func(
        engine,
        "exec_python",
        "code",
        "Runs Python in the session's env and folder; returns stdout.",
        move |s: &mut ShellHandle, code: &str| -> RhaiResult<String> {
            let session = s.session.clone();
            let c = Command::Python(code.to_string());
            let out = h.block_on(async move { session.run(c, None).await })?;
            checked(out, "python")
        },
    );
    func(
        engine,
        "close",
        "",
        "Stops the session's MCP server.",
        |s: &mut ShellHandle| s.session.close(),
    );
}
