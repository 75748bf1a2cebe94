//! What the local seer and the sandbox agent on the remote host say to each other.
//!
//! The connection is one byte stream (the `ssh` client's stdin/stdout) multiplexed by
//! yamux. Each call opens a stream of its own and writes one JSON line, a [`Request`]; the
//! agent answers with one JSON line, a [`Reply`]. Some calls go on after the reply:
//! `spawn` later writes `{"exited": …}`, `connect` turns the stream into a raw pipe to a
//! Unix socket in the sandbox, and `upload` reads a tar archive up to the stream's end.
//! Closing a stream of a running `exec` cancels it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

use crate::sandbox::{Command, ExecOptions};

/// The first line the agent prints on stdout, before the multiplexed stream starts.
pub const READY: &str = "SEER-AGENT-READY";
/// Printed by the remote launcher when the seer binary must be sent.
pub const NEED_BINARY: &str = "SEER-NEED-BINARY";
/// Printed by the remote launcher when the host lacks something (the rest of the line says
/// what).
pub const MISSING: &str = "SEER-MISSING";

/// A call of the local seer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Provisions the sandbox (one per connection).
    Start {
        id: String,
        config: serde_json::Value,
        /// Where relative paths of the config resolve on the remote (its upload folder).
        base_dir: PathBuf,
        script: Option<String>,
        /// The values of the config's `secrets`, read on the user's machine.
        secrets: BTreeMap<String, String>,
        /// The config's `provision_env`, resolved on the user's machine.
        #[serde(default)]
        provision_env: BTreeMap<String, String>,
    },
    /// Takes over a live sandbox of an earlier connection (`Sandbox::from_id`).
    Attach {
        id: String,
        secrets: BTreeMap<String, String>,
    },
    Exec {
        cmd: Command,
        opts: ExecOptions,
    },
    Spawn {
        program: String,
        args: Vec<String>,
        opts: ExecOptions,
        log_name: String,
    },
    Kill {
        pgid: i32,
    },
    WriteFile {
        path: String,
        data: String,
    },
    ReadFile {
        path: String,
    },
    EnsureDir {
        path: String,
    },
    WritePrivate {
        rel: String,
        data: String,
    },
    ReadPrivate {
        rel: String,
    },
    /// A tar archive follows, to be unpacked into `dest` (in the sandbox's folder, or under
    /// the agent's upload folder before the sandbox exists).
    Upload {
        dest: PathBuf,
    },
    /// The agent's folder for the inputs of sandbox `id` (local files, dirs, models).
    UploadDir {
        id: String,
    },
    Connect {
        socket: PathBuf,
    },
    /// Like `Connect`, to a TCP port on the host's loopback.
    ConnectTcp {
        port: u16,
    },
    /// Listen on a free port of the host's loopback; each connection to it comes back as
    /// a stream opened by the agent, headed by a [`Back`] line, for this machine's loopback
    /// port `port` (e.g. an RPC server of a ScopedSandbox elsewhere).
    ListenBack {
        port: u16,
    },
    Listening {
        socket: PathBuf,
    },
    Snapshot {
        description: String,
    },
    /// How many processes the sandbox's memory bound has killed so far.
    OomKills,
    Terminate,
    Detach,
    IsDetached,
    IsTerminated,
}

/// The agent's answer to one [`Request`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Ok(serde_json::Value),
    Error(String),
}

/// What a started or attached sandbox reports back.
#[derive(Debug, Serialize, Deserialize)]
pub struct Started {
    pub info: crate::sandbox::SandboxInfo,
    pub python: String,
}

/// The first line of a stream the agent opens: a connection to a `ListenBack` port.
#[derive(Debug, Serialize, Deserialize)]
pub struct Back {
    pub back: u16,
}

/// Later news on a `spawn` stream.
#[derive(Debug, Serialize, Deserialize)]
pub struct Exited {
    pub exited: String,
}

/// Splits a yamux stream for a call. tokio-yamux applies the peer's window updates only
/// while the stream is being read, so a side that writes more than a window (256 KiB)
/// without reading would wait forever: a task keeps reading the stream into a pipe, and the
/// caller reads the pipe.
pub fn pumped(
    stream: tokio_yamux::StreamHandle,
) -> (
    tokio::io::BufReader<tokio::io::DuplexStream>,
    tokio::io::WriteHalf<tokio_yamux::StreamHandle>,
) {
    let (mut r, w) = tokio::io::split(stream);
    let (mut into, out) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut r, &mut into).await;
        let _ = into.shutdown().await;
    });
    (tokio::io::BufReader::new(out), w)
}

/// After a call's lines: pipes the rest of the stream (`r` may hold bytes already read)
/// and `io` both ways until either side closes.
pub async fn splice<S>(
    r: tokio::io::BufReader<tokio::io::DuplexStream>,
    w: tokio::io::WriteHalf<tokio_yamux::StreamHandle>,
    io: &mut S,
) -> Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    io.write_all(r.buffer()).await?;
    let mut stream = tokio::io::join(r.into_inner(), w);
    tokio::io::copy_bidirectional(&mut stream, io).await?;
    Ok(())
}

/// Writes `value` as one JSON line.
pub async fn send<W: AsyncWrite + Unpin, T: Serialize>(w: &mut W, value: &T) -> Result<()> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    w.write_all(&line).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one JSON line; `None` at the end of the stream.
pub async fn recv<R: AsyncBufRead + Unpin, T: for<'de> Deserialize<'de>>(
    r: &mut R,
) -> Result<Option<T>> {
    let mut line = String::new();
    if r.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    serde_json::from_str(&line)
        .map(Some)
        .with_context(|| format!("a malformed message from the other side: {}", line.trim()))
}

impl Reply {
    pub fn from_result<T: Serialize>(r: Result<T>) -> Self {
        match r.and_then(|v| Ok(serde_json::to_value(v)?)) {
            Ok(v) => Reply::Ok(v),
            Err(e) => Reply::Error(format!("{e:#}")),
        }
    }

    /// The value of an `ok` reply, or the agent's error.
    pub fn into_result<T: for<'de> Deserialize<'de>>(self) -> Result<T> {
        match self {
            Reply::Ok(v) => serde_json::from_value(v).context("an unexpected reply from the agent"),
            Reply::Error(e) => Err(anyhow!(e)),
        }
    }
}

/// Reads the reply line of a call.
pub async fn reply<R: AsyncBufRead + Unpin, T: for<'de> Deserialize<'de>>(r: &mut R) -> Result<T> {
    match recv::<_, Reply>(r).await? {
        Some(reply) => reply.into_result(),
        None => bail!("the connection to the sandbox's host closed during the call"),
    }
}

/// Bytes as they travel inside JSON.
pub fn encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn decode(text: &str) -> Result<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .context("malformed base64 from the other side")
}
