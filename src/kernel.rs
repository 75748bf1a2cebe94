//! A Jupyter kernel (ipykernel) running in a sandbox, and the client side of the Jupyter
//! messaging protocol (ZeroMQ, HMAC-signed and verified by `jupyter-zmq-client`).
//!
//! Each socket's receiving half is owned by a task that forwards messages into a channel,
//! so waiting for a message can be raced against timeouts, kernel death and cancellation
//! without losing a message half-read.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use jupyter_protocol::{
    ConnectionInfo, ExecuteRequest, ExecutionState, InterruptRequest, JupyterMessage,
    JupyterMessageContent as C, KernelInfoRequest, ReplyStatus, ShutdownRequest,
};
use jupyter_zmq_client as jz;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::sandbox::{ExecOptions, Sandbox};

/// How long a kernel may take to answer its first kernel_info request.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);
/// What ipykernel logs when one of its ports is taken.
const PORT_CLASH: &str = "Address already in use";
/// After an interrupt, how long the kernel has to go idle before it is declared dead.
const INTERRUPT_GRACE: Duration = Duration::from_secs(5);

/// How an execution ended. Its serde names (`ok`, `error`, `aborted`, `timed_out`,
/// `kernel_died`) are the ones scripts see, and its `Display` writes them too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Ok,
    Error,
    Aborted,
    TimedOut,
    KernelDied,
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match serde_json::to_value(self) {
            Ok(Value::String(name)) => f.write_str(&name),
            _ => write!(f, "{self:?}"),
        }
    }
}

/// Multi-line strings are stored as a list of lines in .ipynb files; both forms are read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MultiLine {
    Lines(Vec<String>),
    Text(String),
}

impl MultiLine {
    pub fn text(&self) -> String {
        match self {
            MultiLine::Lines(l) => l.concat(),
            MultiLine::Text(t) => t.clone(),
        }
    }

    /// Splits after each newline, as Jupyter writes it.
    pub fn from_text(s: &str) -> Self {
        MultiLine::Lines(s.split_inclusive('\n').map(str::to_string).collect())
    }
}

impl Default for MultiLine {
    fn default() -> Self {
        MultiLine::Lines(vec![])
    }
}

/// One output of an execution, in the shape nbformat stores it in a code cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "output_type", rename_all = "snake_case")]
pub enum Output {
    Stream {
        name: String,
        text: MultiLine,
    },
    ExecuteResult {
        execution_count: Option<i64>,
        /// MIME type -> content (text is a MultiLine, images base64, JSON as JSON).
        data: BTreeMap<String, Value>,
        #[serde(default)]
        metadata: BTreeMap<String, Value>,
    },
    DisplayData {
        data: BTreeMap<String, Value>,
        #[serde(default)]
        metadata: BTreeMap<String, Value>,
    },
    Error {
        ename: String,
        evalue: String,
        traceback: Vec<String>,
    },
}

impl Output {
    /// The MIME bundle of a result or display output.
    pub fn data(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Output::ExecuteResult { data, .. } | Output::DisplayData { data, .. } => Some(data),
            _ => None,
        }
    }
}

/// Text of a MIME bundle entry (stored as a string or a list of lines).
pub fn bundle_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().filter_map(|x| x.as_str()).collect(),
        other => other.to_string(),
    }
}

/// Applies `redact` to the text of outputs: streams, every non-image entry of result and
/// display bundles (JSON included) and their metadata, error names, values and
/// tracebacks. Images hold no text we can scan and are left as they are.
///
/// The streams are redacted together by `joined` (in output order: stdout and stderr as
/// printed), so a secret split between them is masked too.
pub fn redact_outputs(
    outputs: &mut [Output],
    redact: &dyn Fn(&str) -> String,
    joined: &dyn Fn(&mut [String]),
) {
    use crate::secrets::redact_json_with;
    let mut streams: Vec<String> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Stream { text, .. } => Some(text.text()),
            _ => None,
        })
        .collect();
    joined(&mut streams);
    let mut redacted = streams.into_iter();
    for o in outputs {
        match o {
            Output::Stream { text, .. } => {
                if let Some(r) = redacted.next()
                    && r != text.text()
                {
                    *text = MultiLine::Text(r);
                }
            }
            Output::ExecuteResult { data, metadata, .. }
            | Output::DisplayData { data, metadata } => {
                for (mime, v) in data.iter_mut() {
                    if !mime.starts_with("image/") || mime == "image/svg+xml" {
                        redact_json_with(v, redact);
                    }
                }
                for v in metadata.values_mut() {
                    redact_json_with(v, redact);
                }
            }
            Output::Error {
                ename,
                evalue,
                traceback,
            } => {
                *ename = redact(ename);
                *evalue = redact(evalue);
                for line in traceback.iter_mut() {
                    *line = redact(line);
                }
            }
        }
    }
}

/// One execution's result.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecResult {
    pub outputs: Vec<Output>,
    pub execution_count: Option<i64>,
    pub status: RunStatus,
}

struct Sockets {
    iopub: jz::ClientIoPubConnection,
    shell: jz::ClientShellConnection,
    control: jz::ClientControlConnection,
}

/// Sends interrupt requests; usable while an execution holds the kernel.
#[derive(Clone)]
pub struct Interrupter(Arc<tokio::sync::Mutex<jz::DealerSendConnection>>);

impl Interrupter {
    pub async fn interrupt(&self) -> Result<()> {
        self.0
            .lock()
            .await
            .send(InterruptRequest {}.into())
            .await
            .context("sending interrupt_request")
    }

    async fn send(&self, m: JupyterMessage) -> Result<()> {
        self.0
            .lock()
            .await
            .send(m)
            .await
            .context("sending on the control channel")
    }
}

pub struct Kernel {
    sandbox: Arc<dyn Sandbox>,
    pgid: i32,
    shell_tx: jz::DealerSendConnection,
    control_tx: Interrupter,
    shell_rx: mpsc::UnboundedReceiver<JupyterMessage>,
    iopub_rx: mpsc::UnboundedReceiver<JupyterMessage>,
    died: watch::Receiver<Option<String>>,
    tasks: Vec<JoinHandle<()>>,
    conn_file: PathBuf,
    log_name: String,
}

impl Drop for Kernel {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn forward<S: zeromq::SocketRecv + Send + 'static>(
    mut conn: jz::Connection<S>,
    tx: mpsc::UnboundedSender<JupyterMessage>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match conn.read().await {
                Ok(m) => {
                    if tx.send(m).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    if tx.is_closed() {
                        return;
                    }
                    tracing::debug!("kernel socket read: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    })
}

fn is_reply_to(m: &JupyterMessage, id: &str) -> bool {
    m.parent_header.as_ref().is_some_and(|h| h.msg_id == id)
}

/// A MIME bundle as nbformat stores it (text split into lines is left to the writer).
fn bundle(media: &jupyter_protocol::Media) -> BTreeMap<String, Value> {
    match jupyter_protocol::media::serialize_media_for_notebook(
        media,
        serde_json::value::Serializer,
    ) {
        Ok(Value::Object(m)) => m.into_iter().collect(),
        _ => BTreeMap::new(),
    }
}

fn push_output(outputs: &mut Vec<Output>, content: &C) {
    match content {
        C::StreamContent(s) => {
            let name = match s.name {
                jupyter_protocol::Stdio::Stdout => "stdout",
                jupyter_protocol::Stdio::Stderr => "stderr",
            };
            // Consecutive chunks of one stream are one output, as Jupyter shows them.
            if let Some(Output::Stream { name: last, text }) = outputs.last_mut()
                && last == name
            {
                *text = MultiLine::Text(format!("{}{}", text.text(), s.text));
                return;
            }
            outputs.push(Output::Stream {
                name: name.into(),
                text: MultiLine::Text(s.text.clone()),
            });
        }
        C::ExecuteResult(r) => outputs.push(Output::ExecuteResult {
            execution_count: Some(r.execution_count.value() as i64),
            data: bundle(&r.data),
            metadata: r.metadata.clone().into_iter().collect(),
        }),
        C::DisplayData(d) => outputs.push(Output::DisplayData {
            data: bundle(&d.data),
            metadata: d.metadata.clone().into_iter().collect(),
        }),
        C::ErrorOutput(e) => outputs.push(Output::Error {
            ename: e.ename.clone(),
            evalue: e.evalue.clone(),
            traceback: e.traceback.clone(),
        }),
        C::ClearOutput(_) => outputs.clear(),
        _ => {}
    }
}

impl Kernel {
    /// Starts `python -m ipykernel_launcher` in the sandbox and waits until it answers.
    pub async fn start(
        sandbox: Arc<dyn Sandbox>,
        opts: ExecOptions,
        cancel: &CancellationToken,
    ) -> Result<Self> {
        // The ports are picked free, but another process can take one before the kernel
        // binds it (any outgoing connection may get it as its local port): then start
        // again with new ports.
        let mut tries = 0;
        loop {
            tries += 1;
            match Self::start_once(sandbox.clone(), opts.clone(), cancel).await {
                Err(e) if tries < 4 && format!("{e:#}").contains(PORT_CLASH) => {
                    tracing::debug!("kernel port taken meanwhile, starting again: {e:#}");
                }
                other => return other,
            }
        }
    }

    async fn start_once(
        sandbox: Arc<dyn Sandbox>,
        opts: ExecOptions,
        cancel: &CancellationToken,
    ) -> Result<Self> {
        let info = sandbox.info();
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let kid = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let tmp_dir = info.dir.join("tmp");
        // A sandbox without network cannot share loopback TCP with seer, and one on another
        // machine is reached through its connection: their kernels listen on Unix sockets
        // in the sandbox's tmp/ instead (`ipc://<ip>-<port>`), which also cannot clash.
        let staging = sandbox.staging_dir();
        let ipc = !info.network || staging.is_some();
        let (transport, host, ports, listeners) = if ipc {
            let base = tmp_dir.join(format!("k-{kid}"));
            (
                jupyter_protocol::connection_info::Transport::IPC,
                base.to_string_lossy().to_string(),
                vec![1, 2, 3, 4, 5],
                None,
            )
        } else {
            let (ports, listeners) = jz::peek_ports_with_listeners(ip, 5)
                .await
                .context("finding free ports for the kernel")?;
            (
                jupyter_protocol::connection_info::Transport::TCP,
                ip.to_string(),
                ports,
                Some(listeners),
            )
        };
        let key = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let conn = ConnectionInfo {
            transport,
            ip: host.clone(),
            stdin_port: ports[0],
            control_port: ports[1],
            hb_port: ports[2],
            shell_port: ports[3],
            iopub_port: ports[4],
            signature_scheme: "hmac-sha256".into(),
            key,
            kernel_name: Some("python3".into()),
        };
        let conn_rel = format!("tmp/kernel-{kid}.json");
        let conn_file = info.dir.join(&conn_rel);
        // It holds the kernel's HMAC key: 0600 from the start, as Jupyter writes it.
        sandbox
            .write_private(&conn_rel, &serde_json::to_vec(&conn)?)
            .context("writing the kernel connection file")?;
        let log_name = format!("kernel-{kid}");
        let log_rel = format!("logs/{log_name}.log");
        let python = sandbox.python();
        let args: Vec<String> = vec![
            "-m".into(),
            "ipykernel_launcher".into(),
            "-f".into(),
            conn_file.to_string_lossy().to_string(),
            "--HistoryManager.enabled=False".into(),
        ];
        let spawned = sandbox.spawn(&python, &args, &opts, &log_name)?;
        drop(listeners);
        let pgid = spawned.pgid;
        let died = spawned.exited;
        let read_log = || {
            String::from_utf8_lossy(&sandbox.read_private(&log_rel).unwrap_or_default()).to_string()
        };
        // Where seer connects: the kernel's own sockets, or their forwards to this machine.
        let mut local_conn = conn.clone();
        if ipc && let Some(staging) = &staging {
            local_conn.ip = staging
                .join("tmp")
                .join(format!("k-{kid}"))
                .to_string_lossy()
                .to_string();
        }
        // The kernel binds its ports a moment after it starts; until then a connection can
        // be refused or reset, so connecting is retried.
        let started = Instant::now();
        let mut died_watch = died.clone();
        let mut kernel = loop {
            let attempt = tokio::select! {
                r = async {
                    // zeromq's connect does not wait for a port that is not bound yet:
                    // wait until the kernel listens on each port we use.
                    let mut polls = 0u32;
                    for port in [conn.shell_port, conn.iopub_port, conn.control_port] {
                        let socket = PathBuf::from(format!("{host}-{port}"));
                        let listening = || async {
                            if ipc {
                                sandbox.socket_listening(&socket).await
                            } else {
                                tokio::net::TcpStream::connect((ip, port)).await.is_ok()
                            }
                        };
                        while !listening().await {
                            polls += 1;
                            if polls.is_multiple_of(10) && read_log().contains(PORT_CLASH) {
                                bail!("{PORT_CLASH}: a kernel port was taken before the kernel bound it");
                            }
                            if started.elapsed() > STARTUP_TIMEOUT {
                                bail!("the kernel did not listen on its ports within {}s", STARTUP_TIMEOUT.as_secs());
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        if ipc {
                            sandbox.reach_socket(&socket).await?;
                        }
                    }
                    // A port answered by another process can leave the handshake hanging.
                    match tokio::time::timeout(Duration::from_secs(10), Self::connect(&local_conn)).await {
                        Ok(r) => r,
                        Err(_) => {
                            if read_log().contains(PORT_CLASH) {
                                bail!("{PORT_CLASH}: a kernel port was taken before the kernel bound it");
                            }
                            Err(anyhow::anyhow!("connecting to the kernel's sockets timed out"))
                        }
                    }
                } => r,
                status = died_watch.wait_for(|d| d.is_some()) => {
                    let status = status.map(|s| s.clone().unwrap_or_default()).unwrap_or_default();
                    let log = read_log();
                    let tail: Vec<&str> = log.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect();
                    sandbox.kill_group(pgid);
                    bail!(
                        "the kernel exited while starting ({status}); is ipykernel installed in the sandbox env? (execution_mode: \"notebook\" adds it) Its log:\n{}",
                        tail.join("\n")
                    );
                }
                _ = cancel.cancelled() => {
                    sandbox.kill_group(pgid);
                    bail!("cancelled");
                }
            };
            match attempt {
                Ok(parts) => {
                    break Self::assemble(&sandbox, parts, pgid, died, conn_file, log_name);
                }
                Err(e)
                    if started.elapsed() < STARTUP_TIMEOUT
                        && !format!("{e:#}").contains(PORT_CLASH)
                        && died.borrow().is_none()
                        && !cancel.is_cancelled() =>
                {
                    tracing::debug!("connecting to the kernel: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => {
                    sandbox.kill_group(pgid);
                    return Err(e.context("connecting to the kernel"));
                }
            }
        };
        if let Err(e) = kernel.wait_ready(cancel).await {
            kernel.kill();
            return Err(e);
        }
        Ok(kernel)
    }

    async fn connect(conn: &ConnectionInfo) -> Result<Sockets> {
        let session = uuid::Uuid::new_v4().to_string();
        let iopub = jz::create_client_iopub_connection(conn, "", &session).await?;
        let shell = jz::create_client_shell_connection_with_identity(
            conn,
            &session,
            jz::peer_identity_for_session(&session)?,
        )
        .await?;
        let control = jz::create_client_control_connection(conn, &session).await?;
        Ok(Sockets {
            iopub,
            shell,
            control,
        })
    }

    fn assemble(
        sandbox: &Arc<dyn Sandbox>,
        parts: Sockets,
        pgid: i32,
        died: watch::Receiver<Option<String>>,
        conn_file: PathBuf,
        log_name: String,
    ) -> Self {
        let Sockets {
            iopub,
            shell,
            control,
        } = parts;
        let (shell_tx, shell_recv) = shell.split();
        let (control_tx, control_recv) = control.split();
        let (stx, shell_rx) = mpsc::unbounded_channel();
        let (itx, iopub_rx) = mpsc::unbounded_channel();
        let (ctx, mut control_rx) = mpsc::unbounded_channel::<JupyterMessage>();
        let drain = tokio::spawn(async move { while control_rx.recv().await.is_some() {} });
        let tasks = vec![
            forward(shell_recv, stx),
            forward(iopub, itx),
            forward(control_recv, ctx),
            drain,
        ];
        Self {
            sandbox: sandbox.clone(),
            pgid,
            shell_tx,
            control_tx: Interrupter(Arc::new(tokio::sync::Mutex::new(control_tx))),
            shell_rx,
            iopub_rx,
            died,
            tasks,
            conn_file,
            log_name,
        }
    }

    fn log_tail(&self) -> String {
        let bytes = self
            .sandbox
            .read_private(&format!("logs/{}.log", self.log_name))
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.contains("running over TCP without encryption"))
            .collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// kernel_info requests until one is answered, then one iopub message, so that the
    /// iopub subscription is known to be live before the first execution.
    async fn wait_ready(&mut self, cancel: &CancellationToken) -> Result<()> {
        let started = Instant::now();
        loop {
            if started.elapsed() > STARTUP_TIMEOUT {
                bail!(
                    "the kernel did not answer within {}s; its log:\n{}",
                    STARTUP_TIMEOUT.as_secs(),
                    self.log_tail()
                );
            }
            if self.log_tail().contains(PORT_CLASH) {
                bail!("{PORT_CLASH}: a kernel port was taken before the kernel bound it");
            }
            let req: JupyterMessage = KernelInfoRequest {}.into();
            let id = req.header.msg_id.clone();
            self.shell_tx.send(req).await?;
            let deadline = tokio::time::sleep(Duration::from_millis(500));
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    m = self.shell_rx.recv() => match m {
                        Some(m) if is_reply_to(&m, &id) => {
                            // Drain iopub until the status of our request arrives (or a moment passes).
                            let until = Instant::now() + Duration::from_millis(500);
                            while let Ok(Some(m)) = tokio::time::timeout_at(until.into(), self.iopub_rx.recv()).await {
                                if is_reply_to(&m, &id) { break; }
                            }
                            return Ok(());
                        }
                        Some(_) => continue,
                        None => bail!("the kernel's shell channel closed"),
                    },
                    _ = self.died.changed() => {
                        let status = self.died.borrow().clone().unwrap_or_default();
                        bail!("the kernel exited while starting ({status}); is ipykernel installed in the sandbox env? (execution_mode: \"notebook\" adds it) Its log:\n{}", self.log_tail());
                    }
                    _ = cancel.cancelled() => bail!("cancelled"),
                    _ = &mut deadline => break,
                }
            }
        }
    }

    /// The kernel's connection file (0600: it holds the HMAC key), for `seer attach`.
    pub fn connection_file(&self) -> &std::path::Path {
        &self.conn_file
    }

    pub fn is_dead(&self) -> bool {
        self.died.borrow().is_some()
    }

    pub fn interrupter(&self) -> Interrupter {
        self.control_tx.clone()
    }

    pub async fn interrupt(&self) -> Result<()> {
        self.control_tx.interrupt().await
    }

    /// Runs code to completion (or timeout, death, cancellation). The outputs come back
    /// with the sandbox's secret values redacted: this is where a kernel's output enters
    /// seer, so the notebook, the script and the MCP tools never see them.
    pub async fn execute(
        &mut self,
        code: &str,
        hidden: bool,
        timeout: Option<Duration>,
        cancel: &CancellationToken,
    ) -> Result<ExecResult> {
        let sandbox = self.sandbox.clone();
        let mut r = self.execute_raw(code, hidden, timeout, cancel).await?;
        redact_outputs(&mut r.outputs, &|t| sandbox.redact(t), &|parts| {
            sandbox.redact_joined(parts)
        });
        Ok(r)
    }

    async fn execute_raw(
        &mut self,
        code: &str,
        hidden: bool,
        timeout: Option<Duration>,
        cancel: &CancellationToken,
    ) -> Result<ExecResult> {
        if self.is_dead() {
            bail!("the kernel is not running");
        }
        // Forget anything left over from an earlier, abandoned request.
        while self.iopub_rx.try_recv().is_ok() {}
        while self.shell_rx.try_recv().is_ok() {}
        let req: JupyterMessage = ExecuteRequest {
            code: code.to_string(),
            silent: false,
            store_history: !hidden,
            user_expressions: None,
            allow_stdin: false,
            stop_on_error: true,
        }
        .into();
        let id = req.header.msg_id.clone();
        self.shell_tx
            .send(req)
            .await
            .context("sending execute_request")?;
        let mut outputs = vec![];
        let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        let mut wake = timeout.map(|t| Instant::now() + t).unwrap_or(far);
        let mut interrupted = false;
        let mut cancelled = false;
        loop {
            tokio::select! {
                m = self.iopub_rx.recv() => {
                    let Some(m) = m else { bail!("the kernel's iopub channel closed") };
                    if !is_reply_to(&m, &id) { continue; }
                    if let C::Status(s) = &m.content {
                        if s.execution_state == ExecutionState::Idle { break; }
                    } else {
                        push_output(&mut outputs, &m.content);
                    }
                }
                _ = self.died.changed() => {
                    return Ok(ExecResult { outputs, execution_count: None, status: RunStatus::KernelDied });
                }
                _ = tokio::time::sleep_until(wake.into()) => {
                    if interrupted {
                        // It did not stop: end it, the caller restarts.
                        self.kill();
                        return Ok(ExecResult { outputs, execution_count: None, status: RunStatus::KernelDied });
                    }
                    self.interrupt().await?;
                    interrupted = true;
                    wake = Instant::now() + INTERRUPT_GRACE;
                }
                _ = cancel.cancelled(), if !cancelled => {
                    cancelled = true;
                    if !interrupted {
                        self.interrupt().await?;
                        interrupted = true;
                        wake = Instant::now() + Duration::from_secs(2);
                    }
                }
            }
        }
        if cancelled {
            bail!("cancelled");
        }
        let reply = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match self.shell_rx.recv().await {
                    Some(m) if is_reply_to(&m, &id) => return Some(m),
                    Some(_) => continue,
                    None => return None,
                }
            }
        })
        .await
        .ok()
        .flatten()
        .ok_or_else(|| anyhow!("the kernel sent no execute_reply"))?;
        let (status, count) = match &reply.content {
            C::ExecuteReply(r) => {
                let count = (!hidden).then_some(r.execution_count.value() as i64);
                let status = match r.status {
                    ReplyStatus::Ok => RunStatus::Ok,
                    ReplyStatus::Error if interrupted => RunStatus::TimedOut,
                    ReplyStatus::Error => RunStatus::Error,
                    ReplyStatus::Aborted => RunStatus::Aborted,
                };
                (status, count)
            }
            other => bail!(
                "unexpected reply to execute_request: {}",
                other.message_type()
            ),
        };
        // A result's execution_count is the cell's.
        Ok(ExecResult {
            outputs,
            execution_count: count,
            status,
        })
    }

    /// Asks the kernel to exit, then ends its process group.
    pub async fn shutdown(mut self) {
        if !self.is_dead() {
            let _ = self
                .control_tx
                .send(ShutdownRequest { restart: false }.into())
                .await;
            let _ = tokio::time::timeout(Duration::from_millis(1000), self.died.changed()).await;
        }
        self.kill();
    }

    /// Ends the kernel's process group at once.
    pub fn kill(&mut self) {
        self.sandbox.kill_group(self.pgid);
        let _ = std::fs::remove_file(&self.conn_file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_status_names_are_the_serde_names() {
        let all = [
            RunStatus::Ok,
            RunStatus::Error,
            RunStatus::Aborted,
            RunStatus::TimedOut,
            RunStatus::KernelDied,
        ];
        let names = ["ok", "error", "aborted", "timed_out", "kernel_died"];
        assert_eq!(all.map(|s| s.to_string()), names);
        assert_eq!(serde_json::to_value(all).unwrap(), serde_json::json!(names));
    }

    #[test]
    fn outputs_are_redacted_except_images() {
        use serde_json::json;
        let r = crate::secrets::Redactor::new(["s3cret".to_string()]);
        let bundle = |v: Value| -> BTreeMap<String, Value> { serde_json::from_value(v).unwrap() };
        let mut outputs = vec![
            Output::Stream {
                name: "stdout".into(),
                text: MultiLine::from_text("a s3cret\nb\n"),
            },
            Output::ExecuteResult {
                execution_count: Some(1),
                data: bundle(
                    json!({"text/plain": ["'s3cret'"], "application/json": {"k": ["s3cret"]},
                                    "image/png": "s3cret"}),
                ),
                metadata: Default::default(),
            },
            Output::Error {
                ename: "KeyError".into(),
                evalue: "'s3cret'".into(),
                traceback: vec!["x = 's3cret'".into()],
            },
            // Half to stdout, half to stderr.
            Output::Stream {
                name: "stdout".into(),
                text: MultiLine::from_text("half s3"),
            },
            Output::Stream {
                name: "stderr".into(),
                text: MultiLine::from_text("cret y"),
            },
        ];
        redact_outputs(&mut outputs, &|t| r.redact(t), &|p| r.redact_joined(p));
        let text = serde_json::to_string(&outputs).unwrap();
        assert_eq!(text.matches("s3cret").count(), 1, "{text}");
        assert!(text.contains("\"image/png\":\"s3cret\""), "{text}");
        assert_eq!(text.matches("***").count(), 7, "{text}");
        assert_eq!(
            outputs[3..]
                .iter()
                .map(|o| match o {
                    Output::Stream { text, .. } => text.text(),
                    _ => String::new(),
                })
                .collect::<Vec<_>>(),
            ["half ***", "*** y"]
        );
    }
}
