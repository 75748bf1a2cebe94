//! The sandbox family: `Sandbox(#{...}).start()`, `Sandbox::from_snapshot`,
//! `Sandbox::from_id`, `ModelConfig`, `RepoConfig`, and the methods of a sandbox.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rhai::{Array, Dynamic, Engine, Map, Module, NativeCallContext};
use serde::Deserialize;

use super::api_util::{func, getter, module_fn};
use super::{Host, RhaiResult, at_call, runtime_error};
use crate::config::{from_dynamic, positive_seconds};
use crate::sandbox::StartRequest;
use crate::sandbox::models::ModelConfig;
use crate::sandbox::repos::RepoConfig;
use crate::sandbox::seer_paths::script_path;
use crate::sandbox::{Command, ExecOptions, ExecOutput, Sandbox, SandboxConfig};

enum State {
    Pending {
        config: Box<SandboxConfig>,
        snapshot: Option<String>,
    },
    Live(Arc<dyn Sandbox>),
}

/// The script-side sandbox value: configured, then started by `.start()`.
#[derive(Clone)]
pub struct SandboxHandle(Arc<Mutex<State>>);

impl SandboxHandle {
    /// A handle on an already started sandbox.
    pub fn from_live(sb: Arc<dyn Sandbox>) -> Self {
        SandboxHandle(Arc::new(Mutex::new(State::Live(sb))))
    }

    /// The started sandbox, or an error telling the script to start it.
    pub fn live_sandbox(&self) -> RhaiResult<Arc<dyn Sandbox>> {
        self.live()
    }

    fn live(&self) -> RhaiResult<Arc<dyn Sandbox>> {
        let state = self
            .0
            .lock()
            .map_err(|_| runtime_error("sandbox state poisoned"))?;
        match &*state {
            State::Live(sb) => Ok(sb.clone()),
            State::Pending { .. } => Err(runtime_error(
                "this sandbox has not been started: call `.start()` first, e.g. `let sb = Sandbox(cfg).start();`",
            )),
        }
    }

    fn describe(&self) -> String {
        match self.0.lock().as_deref() {
            Ok(State::Live(sb)) => {
                let info = sb.info();
                let state = if sb.is_terminated() {
                    "terminated"
                } else {
                    "running"
                };
                format!("Sandbox({}, {}, {state})", info.id, info.backend)
            }
            Ok(State::Pending { .. }) => "Sandbox(not started)".into(),
            Err(_) => "Sandbox(?)".into(),
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ExecOpts {
    /// Seconds.
    #[serde(default)]
    timeout: Option<f64>,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

fn exec_opts(m: Option<Map>) -> RhaiResult<ExecOptions> {
    let o: ExecOpts = match m {
        Some(m) => {
            from_dynamic("exec options", &Dynamic::from_map(m)).map_err(|e| runtime_error(e.0))?
        }
        None => ExecOpts::default(),
    };
    let timeout = o
        .timeout
        .map(|t| positive_seconds("timeout", t))
        .transpose()
        .map_err(|e| runtime_error(format!("exec options: {e}")))?;
    for (k, v) in &o.env {
        if k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') {
            return Err(runtime_error(format!(
                "exec options: field `env.{}`: an environment variable's name must be non-empty \
                 without `=` or NUL, and its value without NUL",
                k.escape_debug()
            )));
        }
    }
    Ok(ExecOptions {
        host_cwd: None,
        timeout,
        cwd: o.cwd,
        env: o.env,
    })
}

fn to_dyn<T: serde::Serialize>(v: &T) -> RhaiResult<Dynamic> {
    rhai::serde::to_dynamic(v)
}

/// A script's sandbox config, over the defaults of `$SEER_SANDBOX_DEFAULTS` (a JSON map of
/// config fields, e.g. `{"backend": "ssh", "host": "gpu-box"}` to run every sandbox of a
/// script elsewhere; the script's own fields win).
pub(crate) fn config_from(mut m: Map) -> RhaiResult<SandboxConfig> {
    if let Some(raw) = std::env::var_os("SEER_SANDBOX_DEFAULTS").filter(|v| !v.is_empty()) {
        let defaults: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&raw.to_string_lossy()).map_err(|e| {
                runtime_error(format!(
                    "SEER_SANDBOX_DEFAULTS is not a JSON map of config fields: {e}"
                ))
            })?;
        for (k, v) in defaults {
            if !m.contains_key(k.as_str()) {
                let v = rhai::serde::to_dynamic(v)?;
                m.insert(k.into(), v);
            }
        }
    }
    let cfg: SandboxConfig =
        from_dynamic("Sandbox config", &Dynamic::from_map(m)).map_err(|e| runtime_error(e.0))?;
    cfg.validate().map_err(runtime_error)?;
    Ok(cfg)
}

fn pending(config: SandboxConfig, snapshot: Option<String>) -> SandboxHandle {
    SandboxHandle(Arc::new(Mutex::new(State::Pending {
        config: Box::new(config),
        snapshot,
    })))
}

fn run(
    host: &Host,
    h: &SandboxHandle,
    cmd: Command,
    opts: ExecOptions,
) -> RhaiResult<(ExecOutput, Arc<dyn Sandbox>)> {
    let sb = h.live()?;
    let cancel = host.cancel();
    let s2 = sb.clone();
    let out = host.block_on(async move { s2.exec(cmd, opts, &cancel).await })?;
    // What a command prints reaches the script (and from there logs and files) without
    // the sandbox's secret values.
    let out = ExecOutput {
        stdout: sb.redact(&out.stdout),
        stderr: sb.redact(&out.stderr),
        exit_code: out.exit_code,
    };
    Ok((out, sb))
}

fn checked(out: ExecOutput, sb: &dyn Sandbox, what: &str) -> RhaiResult<String> {
    if out.exit_code == 0 {
        return Ok(out.stdout);
    }
    // For Python, the last line of the traceback says what went wrong: lead with it.
    let last = out
        .stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let mut msg = if what == "python code" && !last.is_empty() {
        format!(
            "{what} failed: {} (exit code {})",
            last.trim(),
            out.exit_code
        )
    } else {
        format!("{what} failed with exit code {}", out.exit_code)
    };
    if !out.stderr.trim().is_empty() {
        msg.push_str(&format!("\n--- stderr ---\n{}", out.stderr.trim_end()));
    }
    if !out.stdout.trim().is_empty() {
        msg.push_str(&format!("\n--- stdout ---\n{}", out.stdout.trim_end()));
    }
    Err(runtime_error(sb.redact(&msg)))
}

fn short(cmd: &str) -> String {
    let first = cmd.lines().next().unwrap_or("");
    let s: String = first.chars().take(80).collect();
    if s.len() < cmd.len() {
        format!("`{s}…`")
    } else {
        format!("`{s}`")
    }
}

pub fn register(engine: &mut Engine, host: &Arc<Host>) {
    engine.register_type_with_name::<SandboxHandle>("Sandbox");
    const SANDBOX: &str = "A sandbox config (Seer's SandboxConfig; checked strictly: an unknown key names the closest valid one). Call `.start()` on it.";
    func(
        engine,
        "Sandbox",
        "",
        SANDBOX,
        || -> RhaiResult<SandboxHandle> { Ok(pending(config_from(Map::new())?, None)) },
    );
    func(
        engine,
        "Sandbox",
        "cfg",
        SANDBOX,
        |m: Map| -> RhaiResult<SandboxHandle> { Ok(pending(config_from(m)?, None)) },
    );
    func(
        engine,
        "SandboxConfig",
        "cfg -> map",
        "Validates a sandbox config map and returns it with defaults filled in.",
        |m: Map| -> RhaiResult<Dynamic> { to_dyn(&config_from(m)?) },
    );
    func(
        engine,
        "ModelConfig",
        "cfg -> map",
        "Validates a model map (`name, var_name, hidden, is_peft, base_model, revision, load_as_peft`) and returns it.",
        |m: Map| -> RhaiResult<Dynamic> {
            let c: ModelConfig = from_dynamic("ModelConfig", &Dynamic::from_map(m))
                .map_err(|e| runtime_error(e.0))?;
            to_dyn(&c)
        },
    );
    func(
        engine,
        "RepoConfig",
        "cfg -> map",
        "Validates a repo map (`url, install, branch, dockerfile`) and returns it.",
        |m: Map| -> RhaiResult<Dynamic> {
            let c: RepoConfig = from_dynamic("RepoConfig", &Dynamic::from_map(m))
                .map_err(|e| runtime_error(e.0))?;
            to_dyn(&c)
        },
    );

    let hs_attach = host.clone();
    let mut module = Module::new();
    // Namespaced calls do not get their position filled in by rhai: add it here.
    const FROM_SNAPSHOT: &str =
        "A new sandbox (call `.start()`) whose workspace starts from a snapshot.";
    module_fn(
        &mut module,
        engine,
        "from_snapshot",
        "id, cfg",
        FROM_SNAPSHOT,
        |ctx: NativeCallContext, id: &str, m: Map| -> RhaiResult<SandboxHandle> {
            Ok(pending(
                config_from(m).map_err(|e| at_call(e, &ctx))?,
                Some(id.to_string()),
            ))
        },
    );
    module_fn(
        &mut module,
        engine,
        "from_snapshot",
        "id",
        FROM_SNAPSHOT,
        |id: &str| -> RhaiResult<SandboxHandle> {
            Ok(pending(SandboxConfig::default(), Some(id.to_string())))
        },
    );
    module_fn(
        &mut module,
        engine,
        "from_id",
        "id",
        "A live sandbox by id (see `seer ps`), e.g. one a previous run detached.",
        move |ctx: NativeCallContext, id: &str| -> RhaiResult<SandboxHandle> {
            let id = id.to_string();
            let sb = hs_attach
                .block_on(async move {
                    crate::sandbox::attach(&id)
                        .await
                        .map_err(|e| anyhow::anyhow!("Sandbox::from_id: {e:#}"))
                })
                .map_err(|e| at_call(e, &ctx))?;
            Ok(SandboxHandle(Arc::new(Mutex::new(State::Live(sb)))))
        },
    );
    engine.register_static_module("Sandbox", module.into());

    let hs = host.clone();
    func(
        engine,
        "start",
        "",
        "Provisions the sandbox (Python env from the cache, models, repos, files) and returns it started.",
        move |h: &mut SandboxHandle| -> RhaiResult<SandboxHandle> {
            let (config, snapshot) = {
                let state =
                    h.0.lock()
                        .map_err(|_| runtime_error("sandbox state poisoned"))?;
                match &*state {
                    State::Live(_) => return Ok(h.clone()),
                    State::Pending { config, snapshot } => (config.clone(), snapshot.clone()),
                }
            };
            // `--watch`: the sandbox a previous run started with this config.
            let key = crate::warm::sandbox_key(&config, snapshot.as_deref());
            if let Some(sb) = hs.pool.as_ref().and_then(|p| p.claim(&key)) {
                tracing::info!(sandbox = %sb.info().id, "reusing the warm sandbox");
                hs.own(sb.clone());
                *h.0.lock()
                    .map_err(|_| runtime_error("sandbox state poisoned"))? = State::Live(sb);
                return Ok(h.clone());
            }
            let req = StartRequest {
                config: *config,
                base_dir: hs.script_dir.clone(),
                snapshot,
                script: Some(hs.script_path.to_string_lossy().to_string()),
                ..Default::default()
            };
            let cancel = hs.cancel();
            let sb = hs.block_on(async move { crate::sandbox::start(req, &cancel).await })?;
            if let Some(pool) = &hs.pool {
                pool.started(key, sb.clone());
            }
            hs.own(sb.clone());
            *h.0.lock()
                .map_err(|_| runtime_error("sandbox state poisoned"))? = State::Live(sb);
            Ok(h.clone())
        },
    );

    // exec / exec_python: stdout, or an error with the exit code and stderr.
    let hs = host.clone();
    let exec = move |h: &mut SandboxHandle, cmd: &str, opts: Option<Map>| -> RhaiResult<String> {
        let (out, sb) = run(&hs, h, Command::Shell(cmd.to_string()), exec_opts(opts)?)?;
        checked(out, sb.as_ref(), &format!("command {}", short(cmd)))
    };
    let e2 = exec.clone();
    const EXEC: &str = "Runs a shell command; returns stdout. A non-zero exit is a catchable error with the exit code, stderr and stdout. Options: `#{ timeout, cwd, env }`.";
    func(
        engine,
        "exec",
        "cmd",
        EXEC,
        move |h: &mut SandboxHandle, cmd: &str| e2(h, cmd, None),
    );
    func(
        engine,
        "exec",
        "cmd, opts",
        EXEC,
        move |h: &mut SandboxHandle, cmd: &str, o: Map| exec(h, cmd, Some(o)),
    );

    let hs = host.clone();
    let exec_py =
        move |h: &mut SandboxHandle, code: &str, opts: Option<Map>| -> RhaiResult<String> {
            let (out, sb) = run(&hs, h, Command::Python(code.to_string()), exec_opts(opts)?)?;
            checked(out, sb.as_ref(), "python code")
        };
    let p2 = exec_py.clone();
    const EXEC_PYTHON: &str = "Runs Python code with the sandbox's env; returns stdout. An exception is an error led by its last traceback line.";
    func(
        engine,
        "exec_python",
        "code",
        EXEC_PYTHON,
        move |h: &mut SandboxHandle, code: &str| p2(h, code, None),
    );
    func(
        engine,
        "exec_python",
        "code, opts",
        EXEC_PYTHON,
        move |h: &mut SandboxHandle, code: &str, o: Map| exec_py(h, code, Some(o)),
    );

    // exec_result: never throws on a non-zero exit; returns #{stdout, stderr, exit_code}.
    let hs = host.clone();
    let exec_res =
        move |h: &mut SandboxHandle, cmd: &str, opts: Option<Map>| -> RhaiResult<Dynamic> {
            let (out, _) = run(&hs, h, Command::Shell(cmd.to_string()), exec_opts(opts)?)?;
            to_dyn(&out)
        };
    let r2 = exec_res.clone();
    const EXEC_RESULT: &str = "Runs a shell command; returns `#{ stdout, stderr, exit_code }` and never throws on exit codes.";
    func(
        engine,
        "exec_result",
        "cmd",
        EXEC_RESULT,
        move |h: &mut SandboxHandle, cmd: &str| r2(h, cmd, None),
    );
    func(
        engine,
        "exec_result",
        "cmd, opts",
        EXEC_RESULT,
        move |h: &mut SandboxHandle, cmd: &str, o: Map| exec_res(h, cmd, Some(o)),
    );

    // Paths are the workspace's; Seer's `/root/...` and `/workspace/...` are the workspace
    // too (`seer_paths`), as in `local_files`.
    func(
        engine,
        "write_file",
        "path, text",
        "Writes a text file, path relative to the workspace (Seer's `/root/x` and `/workspace/x` are the workspace's `x`).",
        |h: &mut SandboxHandle, path: &str, content: &str| -> RhaiResult<()> {
            let sb = h.live()?;
            let fail = |e: anyhow::Error| runtime_error(format!("write_file: {e:#}"));
            let p = script_path(&sb.info().workspace, path).map_err(fail)?;
            sb.write_file(&p, content.as_bytes()).map_err(fail)
        },
    );
    func(
        engine,
        "read_file",
        "path",
        "Reads a text file, path relative to the workspace (Seer's `/root/x` and `/workspace/x` are the workspace's `x`).",
        |h: &mut SandboxHandle, path: &str| -> RhaiResult<String> {
            let sb = h.live()?;
            let fail = |e: anyhow::Error| runtime_error(format!("read_file: {e:#}"));
            let p = script_path(&sb.info().workspace, path).map_err(fail)?;
            let bytes = sb.read_file(&p).map_err(fail)?;
            String::from_utf8(bytes)
                .map_err(|_| runtime_error(format!("read_file: {path} is not UTF-8 text")))
        },
    );
    func(
        engine,
        "ensure_dir",
        "path",
        "Creates a directory (and its parents) in the workspace (Seer's `/root/x` and `/workspace/x` are the workspace's `x`).",
        |h: &mut SandboxHandle, path: &str| -> RhaiResult<()> {
            let sb = h.live()?;
            let fail = |e: anyhow::Error| runtime_error(format!("ensure_dir: {e:#}"));
            let p = script_path(&sb.info().workspace, path).map_err(fail)?;
            sb.ensure_dir(&p).map_err(fail)
        },
    );
    let snap = |h: &mut SandboxHandle, desc: &str| -> RhaiResult<String> {
        h.live()?
            .snapshot(desc)
            .map_err(|e| runtime_error(format!("snapshot: {e:#}")))
    };
    const SNAPSHOT: &str = "Saves the workspace; returns the snapshot id.";
    func(
        engine,
        "snapshot",
        "",
        SNAPSHOT,
        move |h: &mut SandboxHandle| snap(h, ""),
    );
    func(engine, "snapshot", "description", SNAPSHOT, snap);

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct TerminateOpts {
        #[serde(default)]
        save_snapshot: bool,
        #[serde(default)]
        snapshot_description: String,
    }
    let terminate = |h: &mut SandboxHandle, opts: TerminateOpts| -> RhaiResult<Dynamic> {
        let sb = h.live()?;
        let snap = if opts.save_snapshot {
            let id = sb
                .snapshot(&opts.snapshot_description)
                .map_err(|e| runtime_error(format!("terminate: saving the snapshot: {e:#}")))?;
            Dynamic::from(id)
        } else {
            Dynamic::UNIT
        };
        sb.terminate()
            .map_err(|e| runtime_error(format!("terminate: {e:#}")))?;
        Ok(snap)
    };
    const TERMINATE: &str = "Ends every process of the sandbox. With `#{ save_snapshot: true }` returns the snapshot id.";
    func(
        engine,
        "terminate",
        "",
        TERMINATE,
        move |h: &mut SandboxHandle| terminate(h, TerminateOpts::default()),
    );
    func(
        engine,
        "terminate",
        "opts",
        TERMINATE,
        move |h: &mut SandboxHandle, m: Map| -> RhaiResult<Dynamic> {
            let o: TerminateOpts = from_dynamic("terminate options", &Dynamic::from_map(m))
                .map_err(|e| runtime_error(e.0))?;
            terminate(h, o)
        },
    );
    func(
        engine,
        "detach",
        "",
        "Keeps the sandbox alive after seer exits (until its `timeout`); reconnect with `Sandbox::from_id`.",
        |h: &mut SandboxHandle| -> RhaiResult<()> {
            h.live()?
                .detach()
                .map_err(|e| runtime_error(format!("detach: {e:#}")))
        },
    );

    getter(
        engine,
        "id",
        "",
        "The sandbox id (as `seer ps` shows it).",
        |h: &mut SandboxHandle| -> RhaiResult<String> { Ok(h.live()?.info().id) },
    );
    getter(
        engine,
        "sandbox_id",
        "",
        "Same as `id`.",
        |h: &mut SandboxHandle| -> RhaiResult<String> { Ok(h.live()?.info().id) },
    );
    getter(
        engine,
        "backend",
        "",
        "The backend name (`local`).",
        |h: &mut SandboxHandle| -> RhaiResult<String> { Ok(h.live()?.info().backend) },
    );
    getter(
        engine,
        "workspace_path",
        "",
        "The workspace folder commands run in.",
        |h: &mut SandboxHandle| -> RhaiResult<String> {
            Ok(h.live()?.info().workspace.to_string_lossy().to_string())
        },
    );
    getter(
        engine,
        "state_dir",
        "",
        "The sandbox's folder in seer's state dir (logs, records).",
        |h: &mut SandboxHandle| -> RhaiResult<String> {
            Ok(h.live()?.info().dir.to_string_lossy().to_string())
        },
    );
    getter(
        engine,
        "model_handles",
        "",
        "The resolved models: `name, path, revision, var_name, hidden, is_peft, base_model, base_model_path`.",
        |h: &mut SandboxHandle| -> RhaiResult<Array> {
            h.live()?.info().models.iter().map(to_dyn).collect()
        },
    );
    getter(
        engine,
        "repo_handles",
        "",
        "The cloned repos: `url, local_path, install, commit`.",
        |h: &mut SandboxHandle| -> RhaiResult<Array> {
            h.live()?.info().repos.iter().map(to_dyn).collect()
        },
    );
    getter(
        engine,
        "env_info",
        "",
        "`#{ path, key, python_version, packages, installed, cache_hit }` of the Python env.",
        |h: &mut SandboxHandle| -> RhaiResult<Dynamic> {
            let info = h.live()?.info();
            let Some(env) = info.env else {
                return Ok(Dynamic::UNIT);
            };
            let mut m = Map::new();
            m.insert("path".into(), env.path.to_string_lossy().to_string().into());
            m.insert("key".into(), env.key.into());
            m.insert("python_version".into(), env.python_version.into());
            m.insert("packages".into(), to_dyn(&env.packages)?);
            m.insert("installed".into(), to_dyn(&env.installed)?);
            m.insert("cache_hit".into(), env.cache_hit.into());
            Ok(m.into())
        },
    );
    let host2 = host.clone();
    getter(
        engine,
        "jupyter_url",
        "",
        "The run's live page (seer's own page, not a Jupyter server: seer talks to kernels directly); `()` when the view is off.",
        move |h: &mut SandboxHandle| -> RhaiResult<Dynamic> {
            h.live()?;
            Ok(super::api_view::run_url(&host2))
        },
    );
    getter(
        engine,
        "is_running",
        "",
        "Whether the sandbox is started and not terminated.",
        |h: &mut SandboxHandle| -> bool { h.live().map(|sb| !sb.is_terminated()).unwrap_or(false) },
    );
    engine.register_fn("to_string", |h: &mut SandboxHandle| h.describe());
    engine.register_fn("to_debug", |h: &mut SandboxHandle| h.describe());
}
