//! ScopedSandbox: functions of an interface file served from a sandbox over RPC.
//!
//! The interface is ordinary Python; the functions marked with `@expose` are served by
//! [`RPC_SERVER`] (Python, standard library only, shipped in the binary), which runs in the
//! sandbox as a sandbox process (its own process group, ended with the sandbox). It listens
//! on 127.0.0.1 only, and every request must carry a per-server random token
//! (`Authorization: Bearer <token>`): 401 without one, 403 with a wrong one. The token is
//! passed in the server's environment and never logged.
//!
//! What a script does with a served interface ([`ExposeAs`]):
//! - `library`: a generated Python client module ([`client_module`]) the agent imports;
//! - `mcp`: the functions as MCP tools served by seer ([`mcp::serve_http`]);
//! - `prompt`: Markdown describing the functions ([`prompt_markdown`]);
//! - `skill`: a `SKILL.md` folder with the client module next to it ([`write_skill`]).

pub mod mcp;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Digest;
use tokio_util::sync::CancellationToken;

use crate::python_syntax::py_str;
use crate::sandbox::models::ModelConfig;
use crate::sandbox::{ExecOptions, Sandbox, Spawned};
use crate::workspace::{self, WorkspaceConfig};

/// The RPC server that runs in the sandbox.
pub const RPC_SERVER: &str = include_str!("rpc_server.py");
/// The fixed part of a generated client module.
const CLIENT_HEADER: &str = include_str!("client_header.py");

/// How long an interface may take to load (its module-level code loads the models).
const LOAD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How a served interface is handed to the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExposeAs {
    Library,
    Mcp,
    Prompt,
    Skill,
}

/// One exposed function as the RPC server describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionSpec {
    pub name: String,
    /// `(a: int, b: int = 2) -> int`
    pub signature: String,
    /// The first paragraph of the docstring.
    pub summary: String,
    /// The docstring without its parameter and return sections.
    pub description: String,
    /// The whole docstring.
    pub doc: String,
    /// The docstring's description of the return value.
    pub returns: String,
    pub returns_schema: Value,
    /// JSON schema of the arguments (an object; from type hints, defaults and docstrings).
    pub parameters: Value,
    /// The client's Python `def` for this function.
    pub stub: String,
    /// Parameter names in signature order (the schema's properties are sorted).
    #[serde(default)]
    pub param_names: Vec<String>,
}

/// An error a call came back with.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteError {
    pub function: String,
    /// `exception` (the function raised), `not_json` (its return value),
    /// `bad_arguments`, `no_such_function`, `unauthorized`, `forbidden`, `transport`.
    pub kind: String,
    /// The exception type, e.g. `ValueError`.
    pub type_name: String,
    pub message: String,
    pub traceback: String,
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "scoped function `{}` failed: {}: {}",
            self.function, self.type_name, self.message
        )?;
        if !self.traceback.trim().is_empty() {
            write!(
                f,
                "\nRemote traceback (in the scoped sandbox):\n{}",
                self.traceback.trim_end()
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for RemoteError {}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorFields,
}

#[derive(Deserialize)]
struct ErrorFields {
    #[serde(default)]
    kind: String,
    #[serde(default, rename = "type")]
    type_name: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    traceback: String,
}

/// A running RPC server for one interface file.
pub struct RpcServer {
    /// The interface's name (the file stem unless `serve` was given one).
    pub interface: String,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    token: String,
    pub functions: Vec<FunctionSpec>,
    /// Hash of the interface source and path: a second `serve` of the same file reuses it.
    key: String,
    pgid: i32,
    http: reqwest::Client,
}

impl fmt::Debug for RpcServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcServer")
            .field("interface", &self.interface)
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl RpcServer {
    /// The token clients send; callers must not log it.
    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn function(&self, name: &str) -> Option<&FunctionSpec> {
        self.functions.iter().find(|f| f.name == name)
    }

    /// Calls a function with named arguments; the result is its JSON return value. Secret
    /// values (the sandbox's and the process-wide ones, see [`crate::secrets`]) are
    /// redacted from the result and from errors.
    pub async fn call(&self, function: &str, args: Value) -> Result<Value, RemoteError> {
        let redact = |t: &str| crate::secrets::redact(t);
        match self.call_raw(function, args).await {
            Ok(mut v) => {
                crate::secrets::redact_json_with(&mut v, &redact);
                Ok(v)
            }
            Err(mut e) => {
                e.type_name = redact(&e.type_name);
                e.message = redact(&e.message);
                e.traceback = redact(&e.traceback);
                Err(e)
            }
        }
    }

    async fn call_raw(&self, function: &str, args: Value) -> Result<Value, RemoteError> {
        let transport = |msg: String| RemoteError {
            function: function.to_string(),
            kind: "transport".into(),
            type_name: "ConnectionError".into(),
            message: msg,
            traceback: String::new(),
        };
        let resp = self
            .http
            .post(format!("{}/call", self.url))
            .bearer_auth(&self.token)
            .json(&json!({"function": function, "args": args}))
            .send()
            .await
            .map_err(|e| {
                transport(format!(
                    "cannot reach the RPC server of `{}` at {} ({e}); the scoped sandbox may \
                     have been terminated",
                    self.interface, self.url
                ))
            })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| transport(format!("reading the RPC response: {e}")))?;
        if status.is_success() {
            #[derive(Deserialize)]
            struct Ok {
                result: Value,
            }
            return serde_json::from_slice::<Ok>(&bytes)
                .map(|o| o.result)
                .map_err(|e| transport(format!("the RPC response is not a result: {e}")));
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) => Err(RemoteError {
                function: function.to_string(),
                kind: b.error.kind,
                type_name: b.error.type_name,
                message: b.error.message,
                traceback: b.error.traceback,
            }),
            Err(_) => Err(transport(format!(
                "HTTP {status} from the RPC server: {}",
                String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(300)
                    .collect::<String>()
            ))),
        }
    }
}

/// A started sandbox plus the RPC servers of the interfaces served from it.
pub struct ScopedSandbox {
    sandbox: Arc<dyn Sandbox>,
    /// `[{name, var_name, path, ...}]` with the configured (unmasked) names.
    models_json: String,
    /// Host folder with the workspace's libraries, put on the server's `PYTHONPATH`.
    libraries_dir: Option<PathBuf>,
    custom_init_code: Option<String>,
    servers: tokio::sync::Mutex<Vec<Arc<RpcServer>>>,
    /// Stops the MCP servers of [`ExposeAs::Mcp`].
    pub cancel: CancellationToken,
}

impl ScopedSandbox {
    /// Wraps a started sandbox. `models` are the configs the sandbox was started with (same
    /// order as its handles); the workspace's libraries become importable by interfaces and
    /// its `custom_init_code` runs before each interface.
    pub fn new(
        sandbox: Arc<dyn Sandbox>,
        models: &[ModelConfig],
        ws: Option<&WorkspaceConfig>,
        script_dir: &Path,
    ) -> Result<Self> {
        let info = sandbox.info();
        if info.models.len() != models.len() {
            bail!(
                "internal error: {} resolved models for {} configured ones",
                info.models.len(),
                models.len()
            );
        }
        let list: Vec<Value> = info
            .models
            .iter()
            .zip(models)
            .map(|(h, c)| {
                json!({
                    "name": c.name, "var_name": h.var_name, "path": h.path,
                    "revision": h.revision, "hidden": h.hidden, "is_peft": h.is_peft,
                    "base_model": c.base_model, "base_model_path": h.base_model_path,
                })
            })
            .collect();
        let mut libraries_dir = None;
        let mut custom_init_code = None;
        if let Some(ws) = ws {
            let installed =
                workspace::install_into(sandbox.as_ref(), ws, &info.workspace, script_dir)
                    .context("installing the ScopedSandbox's workspace")?;
            if !installed.modules.is_empty() {
                libraries_dir = Some(installed.libraries_dir);
            }
            custom_init_code = ws.custom_init_code.clone().filter(|c| !c.trim().is_empty());
        }
        Ok(Self {
            sandbox,
            models_json: serde_json::to_string(&list)?,
            libraries_dir,
            custom_init_code,
            servers: tokio::sync::Mutex::new(vec![]),
            cancel: CancellationToken::new(),
        })
    }

    pub fn sandbox(&self) -> &Arc<dyn Sandbox> {
        &self.sandbox
    }

    /// Every RPC server started so far.
    pub async fn servers(&self) -> Vec<Arc<RpcServer>> {
        self.servers.lock().await.clone()
    }

    /// Starts the RPC server for an interface file on the host (or returns the running one
    /// if the same file with the same content is served already) and waits until its
    /// module-level code has run and it listens.
    pub async fn serve(
        &self,
        interface_path: &Path,
        name: &str,
        cancel: &CancellationToken,
    ) -> Result<Arc<RpcServer>> {
        let source = std::fs::read_to_string(interface_path).with_context(|| {
            format!(
                "reading the interface file {} (a relative path is taken from the script's folder)",
                interface_path.display()
            )
        })?;
        let mut hasher = sha2::Sha256::new();
        hasher.update(interface_path.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(source.as_bytes());
        let key = hex::encode(hasher.finalize());
        if !self.sandbox.info().network {
            bail!(
                "not supported yet: serving functions from a sandbox with `network: false` (seer reaches the RPC server over loopback TCP, which such a sandbox does not share)"
            );
        }
        let mut servers = self.servers.lock().await;
        if let Some(s) = servers.iter().find(|s| s.key == key) {
            return Ok(s.clone());
        }
        let server = self
            .start_server(interface_path, &source, name, key, servers.len(), cancel)
            .await?;
        let server = Arc::new(server);
        servers.push(server.clone());
        Ok(server)
    }

    async fn start_server(
        &self,
        interface_path: &Path,
        source: &str,
        name: &str,
        key: String,
        index: usize,
        cancel: &CancellationToken,
    ) -> Result<RpcServer> {
        let sb = &self.sandbox;
        let file_name = interface_path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("interface.py")
            .to_string();
        let dir = format!(".seer/scoped/{index}-{name}");
        sb.write_file(".seer/scoped/rpc_server.py", RPC_SERVER.as_bytes())?;
        sb.write_file(&format!("{dir}/{file_name}"), source.as_bytes())?;
        let ready = format!("{dir}/ready.json");
        // An empty file is not ready (and works on any backend, unlike removing it).
        let _ = sb.write_file(&ready, b"");
        let mut args = vec![
            "-u".to_string(),
            ".seer/scoped/rpc_server.py".to_string(),
            "--interface".into(),
            format!("{dir}/{file_name}"),
            "--ready-file".into(),
            ready.clone(),
        ];
        if let Some(code) = &self.custom_init_code {
            sb.write_file(&format!("{dir}/custom_init_code.py"), code.as_bytes())?;
            args.push("--init-file".into());
            args.push(format!("{dir}/custom_init_code.py"));
        }
        let token = new_token();
        let mut env = BTreeMap::new();
        env.insert("SEER_RPC_TOKEN".to_string(), token.clone());
        env.insert("SEER_MODELS".to_string(), self.models_json.clone());
        if let Some(lib) = &self.libraries_dir {
            env.insert("PYTHONPATH".to_string(), lib.to_string_lossy().to_string());
        }
        let opts = ExecOptions {
            env,
            ..ExecOptions::default()
        };
        let python = sb.python();
        let log_name = format!("scoped-{index}-{name}");
        let Spawned { exited, pgid } = sb
            .spawn(&python, &args, &opts, &log_name)
            .with_context(|| format!("starting the RPC server for {}", interface_path.display()))?;
        let log_path = sb.info().dir.join("logs").join(format!("{log_name}.log"));
        let started = Instant::now();
        let port = loop {
            // Whether it had exited, taken before reading the ready file: a server that
            // wrote its load error and exited is seen with its error, whatever the timing.
            let ended = exited.borrow().clone();
            if let Ok(bytes) = sb.read_file(&ready)
                && let Ok(v) = serde_json::from_slice::<Value>(&bytes)
            {
                if let Some(e) = v.get("error") {
                    sb.kill_group(pgid);
                    bail!(
                        "the interface {} failed to load: {}: {}\n{}",
                        interface_path.display(),
                        e["type"].as_str().unwrap_or("Error"),
                        e["message"].as_str().unwrap_or(""),
                        e["traceback"].as_str().unwrap_or("").trim_end()
                    );
                }
                if let Some(p) = v.get("port").and_then(Value::as_u64) {
                    break p;
                }
            }
            if let Some(status) = ended {
                sb.kill_group(pgid);
                let log = String::from_utf8_lossy(
                    &sb.read_private(&format!("logs/{log_name}.log"))
                        .unwrap_or_default(),
                )
                .to_string();
                bail!(
                    "the RPC server for {} exited ({status}) before it was ready; its log \
                     ({}):\n{}",
                    interface_path.display(),
                    log_path.display(),
                    sb.redact(log.trim_end())
                );
            }
            if started.elapsed() > LOAD_TIMEOUT {
                sb.kill_group(pgid);
                bail!(
                    "the RPC server for {} was not ready after {} s (its module-level code \
                     still running?); see {}",
                    interface_path.display(),
                    LOAD_TIMEOUT.as_secs(),
                    log_path.display()
                );
            }
            tokio::select! {
                _ = cancel.cancelled() => {
                    sb.kill_group(pgid);
                    bail!("cancelled while the RPC server for {} was starting", interface_path.display());
                }
                _ = tokio::time::sleep(Duration::from_millis(25)) => {}
            }
        };
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .context("building the RPC HTTP client")?;
        // A sandbox on another machine: its loopback port forwarded to this machine's.
        let port = u16::try_from(port)
            .map_err(|_| anyhow::anyhow!("the RPC server reported port {port}"))?;
        let url = format!("http://127.0.0.1:{}", sb.reach_port(port)?);
        let resp = http
            .get(format!("{url}/functions"))
            .bearer_auth(&token)
            .send()
            .await
            .with_context(|| format!("asking the RPC server at {url} for its functions"))?;
        let status = resp.status();
        if !status.is_success() {
            sb.kill_group(pgid);
            bail!("the RPC server at {url} answered {status} to GET /functions");
        }
        #[derive(Deserialize)]
        struct Functions {
            functions: Vec<FunctionSpec>,
        }
        let functions = resp
            .json::<Functions>()
            .await
            .context("reading the RPC server's function list")?
            .functions;
        tracing::info!(
            interface = %interface_path.display(),
            %url,
            functions = functions.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "scoped RPC server ready"
        );
        Ok(RpcServer {
            interface: name.to_string(),
            url,
            token,
            functions,
            key,
            pgid,
            http,
        })
    }

    /// Finds the function among the served interfaces (`interface.function` picks one).
    pub async fn find(&self, function: &str) -> Result<(Arc<RpcServer>, String)> {
        let servers = self.servers.lock().await;
        let (iface, fname) = match function.split_once('.') {
            Some((i, f)) => (Some(i), f),
            None => (None, function),
        };
        let hits: Vec<&Arc<RpcServer>> = servers
            .iter()
            .filter(|s| iface.is_none_or(|i| s.interface == i) && s.function(fname).is_some())
            .collect();
        match hits.as_slice() {
            [one] => Ok(((*one).clone(), fname.to_string())),
            [] => {
                let known: Vec<String> = servers
                    .iter()
                    .flat_map(|s| {
                        s.functions
                            .iter()
                            .map(move |f| format!("{}.{}", s.interface, f.name))
                    })
                    .collect();
                Err(anyhow!(
                    "no served function `{function}`; served: {}",
                    if known.is_empty() {
                        "none (call `serve` first)".to_string()
                    } else {
                        known.join(", ")
                    }
                ))
            }
            _ => Err(anyhow!(
                "`{function}` is served by several interfaces; name one: `interface.{fname}`"
            )),
        }
    }

    /// Ends the RPC servers and the MCP servers; the sandbox is terminated by its owner.
    pub async fn stop_servers(&self) {
        self.cancel.cancel();
        for s in self.servers.lock().await.drain(..) {
            self.sandbox.kill_group(s.pgid);
        }
    }
}

pub use crate::mcp_http::new_token;

fn docstring_literal(text: &str) -> String {
    let clean = text.replace('\\', "\\\\").replace("\"\"\"", "\\\"\\\"\\\"");
    format!("\"\"\"{}\n\"\"\"", clean.trim_end())
}

/// One line per function: `- name(signature): summary`.
fn function_lines(server: &RpcServer) -> String {
    server
        .functions
        .iter()
        .map(|f| {
            if f.summary.is_empty() {
                format!("- {}{}", f.name, f.signature)
            } else {
                format!("- {}{}: {}", f.name, f.signature, f.summary)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The Python client module for `library` (and `skill`): `import <module>` then call the
/// functions as if they were local. Standard library only.
pub fn client_module(module: &str, server: &RpcServer) -> String {
    let doc = format!(
        "{module}: functions that run in a scoped sandbox (seer ScopedSandbox).\n\n\
         Call them like local functions; arguments and results travel as JSON. An exception \
         in the sandbox is raised here as {module}.RemoteError with the remote traceback.\n\n\
         {}",
        function_lines(server)
    );
    let mut out = CLIENT_HEADER
        .replace("__SEER_DOC__", &docstring_literal(&doc))
        .replace("__SEER_URL__", &py_str(&server.url))
        .replace("__SEER_TOKEN__", &py_str(&server.token));
    for f in &server.functions {
        out.push('\n');
        out.push_str(&f.stub);
        out.push('\n');
    }
    let names: Vec<String> = server.functions.iter().map(|f| py_str(&f.name)).collect();
    out.push_str(&format!(
        "\n__all__ = [{}, 'RemoteError']\n",
        names.join(", ")
    ));
    out
}

/// Markdown describing an interface: each function's signature, description, parameters
/// and return value.
pub fn prompt_markdown(name: &str, server: &RpcServer, how: &str) -> String {
    let mut md = format!("## `{name}`: functions served from a scoped sandbox\n\n");
    if !how.is_empty() {
        md.push_str(how);
        md.push_str("\n\n");
    }
    for f in &server.functions {
        md.push_str(&format!("### `{}{}`\n\n", f.name, f.signature));
        if !f.description.is_empty() {
            md.push_str(&f.description);
            md.push_str("\n\n");
        }
        let props = f.parameters["properties"].as_object();
        let required: Vec<&str> = f.parameters["required"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(props) = props.filter(|p| !p.is_empty()) {
            md.push_str("Parameters:\n");
            let mut ordered: Vec<(&String, &Value)> = props.iter().collect();
            ordered.sort_by_key(|(p, _)| {
                f.param_names
                    .iter()
                    .position(|n| n == *p)
                    .unwrap_or(usize::MAX)
            });
            for (p, schema) in ordered {
                let mut line = format!("- `{p}`");
                if let Some(t) = schema_type(schema) {
                    line.push_str(&format!(" ({t})"));
                }
                if let Some(d) = schema["description"].as_str() {
                    line.push_str(&format!(": {d}"));
                }
                if !required.contains(&p.as_str()) {
                    match schema.get("default") {
                        Some(d) => line.push_str(&format!(" (default: `{d}`)")),
                        None => line.push_str(" (optional)"),
                    }
                }
                md.push_str(&line);
                md.push('\n');
            }
            md.push('\n');
        }
        if !f.returns.is_empty() {
            md.push_str(&format!("Returns: {}\n\n", f.returns));
        }
    }
    md
}

/// A short type name for a schema: `integer`, `array of number`, `string or null`.
fn schema_type(s: &Value) -> Option<String> {
    if let Some(t) = s["type"].as_str() {
        return Some(match (t, s.get("items")) {
            ("array", Some(items)) => match schema_type(items) {
                Some(i) => format!("array of {i}"),
                None => "array".into(),
            },
            _ => t.to_string(),
        });
    }
    if let Some(any) = s["anyOf"].as_array() {
        let parts: Vec<String> = any.iter().filter_map(schema_type).collect();
        return (!parts.is_empty()).then(|| parts.join(" or "));
    }
    if let Some(e) = s["enum"].as_array() {
        let parts: Vec<String> = e.iter().map(Value::to_string).collect();
        return Some(format!("one of {}", parts.join(", ")));
    }
    None
}

/// Writes a skill folder `<parent>/<name>/` with `SKILL.md` and the client module
/// `<module>.py`; returns the folder.
pub fn write_skill(parent: &Path, name: &str, module: &str, server: &RpcServer) -> Result<PathBuf> {
    let dir = parent.join(name);
    crate::paths::create_private_dir(parent)
        .with_context(|| format!("creating {}", parent.display()))?;
    crate::paths::create_private_dir(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let how = format!(
        "The client module `{module}.py` is in this skill's folder. From Python:\n\n\
         ```python\nimport sys; sys.path.insert(0, \"<this skill's folder>\")\nimport {module}\n\
         {module}.{}(...)\n```",
        server
            .functions
            .first()
            .map(|f| f.name.as_str())
            .unwrap_or("function")
    );
    let summary: Vec<&str> = server.functions.iter().map(|f| f.name.as_str()).collect();
    let skill_md = format!(
        "---\nname: {name}\ndescription: {}\n---\n\n{}",
        yaml_line(&format!(
            "Call functions that run in a scoped sandbox: {}",
            summary.join(", ")
        )),
        prompt_markdown(module, server, &how)
    );
    std::fs::write(dir.join("SKILL.md"), skill_md)
        .with_context(|| format!("writing {}", dir.join("SKILL.md").display()))?;
    // The client module holds the server's token: 0600 from the start.
    crate::paths::write_private(
        &dir.join(format!("{module}.py")),
        client_module(module, server).as_bytes(),
    )
    .with_context(|| format!("writing the client module in {}", dir.display()))?;
    Ok(dir)
}

/// A YAML scalar on one line (double-quoted).
fn yaml_line(s: &str) -> String {
    serde_json::to_string(&s.replace('\n', " ")).unwrap_or_else(|_| "\"\"".into())
}

/// The first line of the generated client's header after its docstring: marks a client.
const CLIENT_MARK: &str =
    "# Generated by seer. Each function below calls the one of the same name in the scoped";

/// `ws` with each ScopedSandbox client module's server address made reachable from
/// `sandbox`: a sandbox on another machine gets a port on its own loopback that leads back
/// to the server through seer (for a sandbox here the address stays as it is).
pub fn rebase_clients(
    ws: &crate::workspace::WorkspaceConfig,
    sandbox: &dyn Sandbox,
) -> Result<crate::workspace::WorkspaceConfig> {
    use crate::workspace::LibrarySource;
    let mut ws = ws.clone();
    if sandbox.staging_dir().is_none() {
        return Ok(ws);
    }
    for lib in &mut ws.libraries {
        let code = match &mut lib.source {
            LibrarySource::Code { code }
            | LibrarySource::File { code, .. }
            | LibrarySource::SkillDir { code, .. } => code,
            _ => continue,
        };
        if !code.contains(CLIENT_MARK) {
            continue;
        }
        let mut out = String::with_capacity(code.len());
        for line in code.split_inclusive('\n') {
            let port = line
                .strip_prefix("_URL = ")
                .and_then(|rest| {
                    rest.trim()
                        .trim_matches(['\'', '"'])
                        .strip_prefix("http://127.0.0.1:")
                })
                .and_then(|p| p.parse::<u16>().ok());
            match port {
                Some(p) => {
                    let there = sandbox.expose_port(p).with_context(|| {
                        format!(
                            "making the ScopedSandbox server of library `{}` reachable",
                            lib.name
                        )
                    })?;
                    out.push_str(&format!(
                        "_URL = {}\n",
                        py_str(&format!("http://127.0.0.1:{there}"))
                    ));
                }
                None => out.push_str(line),
            }
        }
        *code = out;
    }
    Ok(ws)
}
