//! The ScopedSandbox family: `ScopedSandbox(cfg).start(workspace)`, `serve(path, opts)`,
//! `rpc` (call a served function from the script), `functions`, `terminate`.

use std::sync::{Arc, Mutex};

use rhai::{Array, Dynamic, Engine, Map, NativeCallContext};
use serde::Deserialize;

use super::api_sandbox::{SandboxHandle, config_from};
use super::api_util::{func, getter};
use super::api_workspace::WorkspaceHandle;
use super::{Host, RhaiResult, runtime_error};
use crate::cancel::cancellable;
use crate::config::from_dynamic;
use crate::sandbox::SandboxConfig;
use crate::sandbox::StartRequest;
use crate::scoped::{self, ExposeAs, ScopedSandbox};
use crate::workspace::{Library, Skill, WorkspaceConfig};

enum State {
    Pending(Box<SandboxConfig>),
    Live {
        scoped: Arc<ScopedSandbox>,
        sandbox: SandboxHandle,
    },
}

/// The script-side scoped sandbox.
#[derive(Clone)]
pub struct ScopedHandle(Arc<Mutex<State>>);

impl ScopedHandle {
    fn live(&self) -> RhaiResult<(Arc<ScopedSandbox>, SandboxHandle)> {
        let state = self
            .0
            .lock()
            .map_err(|_| runtime_error("scoped sandbox state poisoned"))?;
        match &*state {
            State::Live { scoped, sandbox } => Ok((scoped.clone(), sandbox.clone())),
            State::Pending(_) => Err(runtime_error(
                "this ScopedSandbox has not been started: call `.start()` first, e.g. \
                 `let scoped = ScopedSandbox(cfg).start();`",
            )),
        }
    }

    /// [`live`](Self::live), and not terminated: what serving and calling need.
    fn running(&self) -> RhaiResult<(Arc<ScopedSandbox>, SandboxHandle)> {
        let (scoped, sandbox) = self.live()?;
        if scoped.sandbox().is_terminated() {
            return Err(runtime_error(
                "this ScopedSandbox has been terminated (`scoped.terminate()`); start a new one to serve or call functions",
            ));
        }
        Ok((scoped, sandbox))
    }

    fn describe(&self) -> String {
        match self.0.lock().as_deref() {
            Ok(State::Live { scoped, .. }) => {
                let sb = scoped.sandbox();
                let state = if sb.is_terminated() {
                    "terminated"
                } else {
                    "running"
                };
                format!("ScopedSandbox({}, {state})", sb.info().id)
            }
            Ok(State::Pending(_)) => "ScopedSandbox(not started)".into(),
            Err(_) => "ScopedSandbox(?)".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeOpts {
    #[serde(default = "library")]
    expose_as: ExposeAs,
    /// Module, MCP server, or skill name; the interface file's stem by default.
    #[serde(default)]
    name: Option<String>,
}

fn library() -> ExposeAs {
    ExposeAs::Library
}

fn workspace_of(ws: &Dynamic) -> RhaiResult<Option<WorkspaceConfig>> {
    if ws.is_unit() {
        return Ok(None);
    }
    match ws.clone().try_cast::<WorkspaceHandle>() {
        Some(w) => Ok(Some((*w.0).clone())),
        None => Err(runtime_error(format!(
            "ScopedSandbox.start: the argument must be a Workspace(#{{...}}) or (), not {}",
            ws.type_name()
        ))),
    }
}

pub fn register(engine: &mut Engine, host: &Arc<Host>) {
    engine.register_type_with_name::<ScopedHandle>("ScopedSandbox");
    const SCOPED: &str = "A sandbox whose functions the agent reaches only through `serve()` (Seer's ScopedSandbox; same config as `Sandbox`). Call `.start()` or `.start(workspace)` on it.";
    func(
        engine,
        "ScopedSandbox",
        "",
        SCOPED,
        || -> RhaiResult<ScopedHandle> {
            Ok(ScopedHandle(Arc::new(Mutex::new(State::Pending(
                Box::new(config_from(Map::new())?),
            )))))
        },
    );
    func(
        engine,
        "ScopedSandbox",
        "cfg",
        SCOPED,
        |m: Map| -> RhaiResult<ScopedHandle> {
            Ok(ScopedHandle(Arc::new(Mutex::new(State::Pending(
                Box::new(config_from(m)?),
            )))))
        },
    );

    let hs = host.clone();
    let start = move |h: &mut ScopedHandle, ws: Dynamic| -> RhaiResult<ScopedHandle> {
        let config = {
            let state =
                h.0.lock()
                    .map_err(|_| runtime_error("scoped sandbox state poisoned"))?;
            match &*state {
                State::Live { .. } => return Ok(h.clone()),
                State::Pending(c) => c.clone(),
            }
        };
        let ws = workspace_of(&ws)?;
        let models = config.models.clone();
        let req = StartRequest {
            config: *config,
            base_dir: hs.script_dir.clone(),
            script: Some(hs.script_path.to_string_lossy().to_string()),
            ..Default::default()
        };
        let cancel = hs.cancel();
        let sb = hs.block_on(async move { crate::sandbox::start(req, &cancel).await })?;
        hs.own(sb.clone());
        let scoped = ScopedSandbox::new(sb.clone(), &models, ws.as_ref(), &hs.script_dir)
            .map_err(|e| runtime_error(format!("ScopedSandbox.start: {e:#}")))?;
        *h.0.lock()
            .map_err(|_| runtime_error("scoped sandbox state poisoned"))? = State::Live {
            scoped: Arc::new(scoped),
            sandbox: SandboxHandle::from_live(sb),
        };
        Ok(h.clone())
    };
    let s2 = start.clone();
    const START: &str = "Provisions the sandbox; a workspace's libraries become importable by interface files and its `custom_init_code` runs before each.";
    func(engine, "start", "", START, move |h: &mut ScopedHandle| {
        s2(h, Dynamic::UNIT)
    });
    func(engine, "start", "workspace: Workspace", START, start);

    let hs = host.clone();
    let serve = move |h: &mut ScopedHandle, path: &str, m: Option<Map>| -> RhaiResult<Dynamic> {
        let (scoped, _) = h.running()?;
        let o: ServeOpts = from_dynamic("serve options", &Dynamic::from_map(m.unwrap_or_default()))
            .map_err(|e| runtime_error(e.0))?;
        let file = crate::sandbox::fsutil::resolve_host(&hs.script_dir, path);
        let name = match o.name {
            Some(n) => n,
            None => file
                .file_stem()
                .and_then(|s| s.to_str())
                .map(str::to_string)
                .ok_or_else(|| {
                    runtime_error(format!("serve: `{path}` has no file name to name it by"))
                })?,
        };
        crate::paths::check_file_name("serve: `name`", &name)
            .map_err(|e| runtime_error(e.to_string()))?;
        let module = name.replace('-', "_");
        let cancel = hs.cancel();
        let sc = scoped.clone();
        let n2 = name.clone();
        let server = hs.block_on(async move { sc.serve(&file, &n2, &cancel).await })?;
        let err = |e: anyhow::Error| runtime_error(format!("serve `{path}`: {e:#}"));
        match o.expose_as {
            ExposeAs::Library => {
                let lib = Library::from_code(&module, scoped::client_module(&module, &server))
                    .map_err(err)?;
                rhai::serde::to_dynamic(lib)
            }
            ExposeAs::Mcp => {
                let cancel = scoped.cancel.child_token();
                let http =
                    hs.block_on(async move { scoped::mcp::serve_http(server, cancel).await })?;
                rhai::serde::to_dynamic(http.mcp_config(&name))
            }
            ExposeAs::Prompt => Ok(scoped::prompt_markdown(&name, &server, "").into()),
            ExposeAs::Skill => {
                // Skill folders are made on this machine (in the staging folder of a
                // sandbox on another one) and installed like any skill.
                let sb = scoped.sandbox();
                let parent = sb
                    .staging_dir()
                    .unwrap_or_else(|| sb.info().dir)
                    .join("scoped-skills");
                let dir = scoped::write_skill(&parent, &name, &module, &server).map_err(err)?;
                let skill = Skill::from_dir(&hs.script_dir, &dir).map_err(err)?;
                rhai::serde::to_dynamic(skill)
            }
        }
    };
    let s2 = serve.clone();
    const SERVE: &str = "Serves the `@expose` functions of an interface file from the sandbox (RPC on 127.0.0.1 with a token). `#{ expose_as: \"library\" | \"mcp\" | \"prompt\" | \"skill\", name }` returns a Library map (client module), an mcp_config map, Markdown, or a Skill map.";
    func(
        engine,
        "serve",
        "path",
        SERVE,
        move |h: &mut ScopedHandle, path: &str| s2(h, path, None),
    );
    func(
        engine,
        "serve",
        "path, opts",
        SERVE,
        move |h: &mut ScopedHandle, path: &str, m: Map| serve(h, path, Some(m)),
    );

    let hs = host.clone();
    let call = move |h: &mut ScopedHandle, function: &str, args: Map| -> RhaiResult<Dynamic> {
        let (scoped, _) = h.running()?;
        let args: serde_json::Value = rhai::serde::from_dynamic(&Dynamic::from_map(args))
            .map_err(|e| runtime_error(format!("call `{function}`: the arguments: {e}")))?;
        let f = function.to_string();
        let cancel = hs.cancel();
        let result = hs.block_on(async move {
            let (server, fname) = scoped.find(&f).await?;
            cancellable(&cancel, server.call(&fname, args))
                .await?
                .map_err(anyhow::Error::new)
        })?;
        rhai::serde::to_dynamic(result)
    };
    let c2 = call.clone();
    const RPC: &str = "Calls a served function from the script (`\"name\"` or `\"interface.name\"`) with named arguments; a remote exception is a catchable error with its type, message and traceback.";
    func(
        engine,
        "rpc",
        "function",
        RPC,
        move |h: &mut ScopedHandle, function: &str| c2(h, function, Map::new()),
    );
    func(engine, "rpc", "function, args", RPC, call);

    let hs = host.clone();
    getter(
        engine,
        "functions",
        "",
        "Every served function: `#{ interface, name, signature, summary, doc, parameters }`.",
        move |h: &mut ScopedHandle| -> RhaiResult<Array> {
            let (scoped, _) = h.live()?;
            let servers = hs.block_on(async move { Ok(scoped.servers().await) })?;
            let mut out = Array::new();
            for s in servers {
                for f in &s.functions {
                    let mut m = Map::new();
                    m.insert("interface".into(), s.interface.clone().into());
                    m.insert("name".into(), f.name.clone().into());
                    m.insert("signature".into(), f.signature.clone().into());
                    m.insert("summary".into(), f.summary.clone().into());
                    m.insert("doc".into(), f.doc.clone().into());
                    m.insert("parameters".into(), rhai::serde::to_dynamic(&f.parameters)?);
                    out.push(m.into());
                }
            }
            Ok(out)
        },
    );

    let hs = host.clone();
    func(
        engine,
        "terminate",
        "",
        "Ends the RPC and MCP servers and the sandbox.",
        move |h: &mut ScopedHandle| -> RhaiResult<()> {
            let (scoped, _) = h.live()?;
            let sc = scoped.clone();
            hs.block_on(async move {
                sc.stop_servers().await;
                Ok(())
            })?;
            scoped
                .sandbox()
                .terminate()
                .map_err(|e| runtime_error(format!("terminate: {e:#}")))
        },
    );
    getter(
        engine,
        "sandbox",
        "",
        "The started sandbox as a plain `Sandbox`, for the script's own `exec` and files (the agent reaches only what `serve()` exposes).",
        |h: &mut ScopedHandle| -> RhaiResult<SandboxHandle> { Ok(h.live()?.1) },
    );
    getter(
        engine,
        "id",
        "",
        "The sandbox id (as `seer ps` shows it).",
        |h: &mut ScopedHandle| -> RhaiResult<String> { Ok(h.live()?.0.sandbox().info().id) },
    );
    // Seer's ScopedSandbox has `exec` and `write_file` of its own: the same calls as on
    // `scoped.sandbox`, for the script (the agent still reaches only what is served).
    for (name, params, doc) in [
        (
            "exec",
            "cmd",
            "Seer's `ScopedSandbox.exec`: `scoped.sandbox.exec(cmd)` (stdout; a non-zero exit is an error).",
        ),
        (
            "exec_python",
            "code",
            "`scoped.sandbox.exec_python(code)`: stdout of the env's Python.",
        ),
        (
            "read_file",
            "path",
            "`scoped.sandbox.read_file(path)`, relative to the workspace (Seer's `/root/x` is the workspace's `x`).",
        ),
    ] {
        func(
            engine,
            name,
            params,
            doc,
            move |ctx: NativeCallContext, h: &mut ScopedHandle, a: &str| -> RhaiResult<Dynamic> {
                let sb = h.running()?.1;
                ctx.call_native_fn::<Dynamic>(name, (sb, a.to_string()))
            },
        );
    }
    func(
        engine,
        "exec",
        "cmd, opts",
        "`scoped.sandbox.exec(cmd, #{ timeout, cwd, env })`.",
        move |ctx: NativeCallContext,
              h: &mut ScopedHandle,
              a: &str,
              o: Map|
              -> RhaiResult<Dynamic> {
            let sb = h.running()?.1;
            ctx.call_native_fn::<Dynamic>("exec", (sb, a.to_string(), o))
        },
    );
    func(
        engine,
        "write_file",
        "path, text",
        "Seer's `ScopedSandbox.write_file`: `scoped.sandbox.write_file(path, text)`, relative to the workspace (Seer's `/root/x` is the workspace's `x`); interfaces run in the workspace and import its modules.",
        move |ctx: NativeCallContext,
              h: &mut ScopedHandle,
              p: &str,
              t: &str|
              -> RhaiResult<Dynamic> {
            let sb = h.running()?.1;
            ctx.call_native_fn::<Dynamic>("write_file", (sb, p.to_string(), t.to_string()))
        },
    );
    getter(
        engine,
        "is_running",
        "",
        "Whether the sandbox is started and not terminated.",
        |h: &mut ScopedHandle| -> bool {
            h.live()
                .map(|(s, _)| !s.sandbox().is_terminated())
                .unwrap_or(false)
        },
    );
    engine.register_fn("to_string", |h: &mut ScopedHandle| h.describe());
    engine.register_fn("to_debug", |h: &mut ScopedHandle| h.describe());
}
