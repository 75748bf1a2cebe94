//! `seer __sandbox-agent`: seer on the sandbox's host, hosting the local backend there for
//! a seer on another machine that talks to it over stdin/stdout (see [`super::protocol`]).
//!
//! One agent serves one sandbox for one connection. When the connection ends (the local
//! seer exited, was killed, or the network went away) the agent ends every process of its
//! sandbox, unless the sandbox was detached; the sandbox's own watchdog (a `timeout`) runs
//! on this host as for any local sandbox.

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use tokio_yamux::StreamHandle;

use super::protocol::{self, Exited, READY, Reply, Request, Started, decode, encode, recv, send};
use crate::sandbox::config::SandboxConfig;
use crate::sandbox::local::LocalSandbox;
use crate::sandbox::provision::{self, ProvisionEnv};
use crate::sandbox::{Sandbox, SecretValues, StartRequest};

#[derive(Default)]
struct State {
    sandbox: Mutex<Option<Arc<LocalSandbox>>>,
    /// Started on this connection (an attached sandbox belongs to no connection: it lives
    /// on when the connection ends, as locally).
    owned: std::sync::atomic::AtomicBool,
    /// Opens streams back to the local seer (`ListenBack`).
    control: Mutex<Option<tokio_yamux::Control>>,
    /// Cancels what runs when the connection ends.
    gone: CancellationToken,
}

impl State {
    fn sandbox(&self) -> Result<Arc<LocalSandbox>> {
        self.sandbox
            .lock()
            .map_err(|_| anyhow!("agent state poisoned"))?
            .clone()
            .ok_or_else(|| anyhow!("no sandbox started on this connection yet"))
    }

    fn set(&self, sb: Arc<LocalSandbox>) -> Result<()> {
        let mut slot = self
            .sandbox
            .lock()
            .map_err(|_| anyhow!("agent state poisoned"))?;
        if slot.is_some() {
            bail!("this connection already has a sandbox");
        }
        *slot = Some(sb);
        Ok(())
    }

    /// The connection is gone: end the sandbox unless it was detached.
    fn end(&self) {
        self.gone.cancel();
        let sb = self.sandbox.lock().ok().and_then(|s| s.clone());
        if let Some(sb) = sb
            && self.owned.load(std::sync::atomic::Ordering::SeqCst)
            && !sb.is_detached()
            && let Err(e) = sb.terminate()
        {
            tracing::warn!(
                "ending sandbox {} after the connection closed: {e:#}",
                sb.id()
            );
        }
    }
}

/// Runs the agent on this process's stdin/stdout until the connection ends; with
/// `acknowledged`, both are framed and acknowledged ([`super::link`]).
pub async fn run(acknowledged: bool) -> Result<()> {
    let mut out = tokio::io::stdout();
    out.write_all(format!("{READY} {}\n", env!("CARGO_PKG_VERSION")).as_bytes())
        .await?;
    out.flush().await?;
    type Read = Box<dyn tokio::io::AsyncRead + Send + Unpin>;
    type Write = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;
    let (input, output): (Read, Write) = if acknowledged {
        let (r, w) = super::link::acknowledged(tokio::io::stdin(), out);
        (Box::new(r), Box::new(w))
    } else {
        (Box::new(tokio::io::stdin()), Box::new(out))
    };
    let io = tokio::io::join(input, output);
    let mut session = tokio_yamux::Session::new_server(io, super::yamux_config());
    let state = Arc::new(State::default());
    if let Ok(mut c) = state.control.lock() {
        *c = Some(session.control());
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    loop {
        tokio::select! {
            next = session.next() => match next {
                Some(Ok(stream)) => {
                    let state = state.clone();
                    tokio::spawn(async move {
                        if let Err(e) = serve(stream, &state).await {
                            tracing::debug!("agent call: {e:#}");
                        }
                    });
                }
                Some(Err(e)) => {
                    tracing::info!("connection error: {e}");
                    break;
                }
                None => break,
            },
            _ = term.recv() => break,
            _ = hup.recv() => break,
        }
    }
    let st = state.clone();
    tokio::task::spawn_blocking(move || st.end()).await?;
    Ok(())
}

/// Whether `p` is an absolute path with no `..` inside `root`.
fn inside(p: &Path, root: &Path) -> bool {
    p.is_absolute()
        && !p.components().any(|c| matches!(c, Component::ParentDir))
        && p.starts_with(root)
}

fn uploads_root() -> PathBuf {
    crate::paths::state_dir().join("uploads")
}

async fn serve(stream: StreamHandle, state: &State) -> Result<()> {
    let (mut r, mut w) = protocol::pumped(stream);
    let Some(req) = recv::<_, Request>(&mut r).await? else {
        return Ok(());
    };
    // The sandbox of this connection, or an error reply.
    macro_rules! need {
        () => {
            match state.sandbox() {
                Ok(sb) => sb,
                Err(e) => {
                    send(&mut w, &Reply::Error(format!("{e:#}"))).await?;
                    let _ = w.shutdown().await;
                    return Ok(());
                }
            }
        };
    }
    let reply = match req {
        Request::Start {
            id,
            config,
            base_dir,
            script,
            secrets,
            provision_env,
        } => {
            let cancel = state.gone.child_token();
            let res = async {
                // On this host it is a local sandbox.
                let config = serde_json::from_value::<SandboxConfig>(config)?.into_local();
                let provision = ProvisionEnv::given(provision_env, &config.provision_env);
                let req = StartRequest {
                    config,
                    base_dir,
                    snapshot: None,
                    script,
                    id: Some(id),
                    secrets: Some(SecretValues(secrets)),
                };
                let sb = provision::scope(provision, LocalSandbox::start(req, &cancel)).await?;
                let python = sb.python();
                state.set(sb.clone())?;
                state.owned.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(Started {
                    info: sb.info(),
                    python,
                })
            }
            .await;
            Reply::from_result(res)
        }
        Request::Attach { id, secrets } => Reply::from_result((|| {
            crate::sandbox::check_id(&id)?;
            let sb = LocalSandbox::attach_with(&id, Some(&secrets))?;
            let python = sb.python();
            state.set(sb.clone())?;
            Ok(Started {
                info: sb.info(),
                python,
            })
        })()),
        Request::Exec { cmd, opts } => {
            let sb = need!();
            let cancel = state.gone.child_token();
            let run = sb.exec(cmd, opts, &cancel);
            // The caller closing the stream cancels the command.
            let closed = async {
                let mut rest = Vec::new();
                let _ = tokio::io::AsyncReadExt::read_to_end(&mut r, &mut rest).await;
            };
            tokio::select! {
                out = run => Reply::from_result(out),
                _ = closed => {
                    cancel.cancel();
                    return Ok(());
                }
            }
        }
        Request::Spawn {
            program,
            args,
            opts,
            log_name,
        } => {
            let sb = need!();
            match sb.spawn(&program, &args, &opts, &log_name) {
                Ok(sp) => {
                    send(&mut w, &Reply::Ok(sp.pgid.into())).await?;
                    let mut exited = sp.exited;
                    let status = tokio::select! {
                        s = exited.wait_for(|s| s.is_some()) => s.map(|s| s.clone().unwrap_or_default()).unwrap_or_else(|_| "ended".into()),
                        _ = state.gone.cancelled() => return Ok(()),
                    };
                    send(&mut w, &Exited { exited: status }).await?;
                    return Ok(());
                }
                Err(e) => Reply::Error(format!("{e:#}")),
            }
        }
        Request::Kill { pgid } => {
            let sb = need!();
            tokio::task::spawn_blocking(move || sb.kill_group(pgid)).await?;
            Reply::Ok(serde_json::Value::Null)
        }
        Request::WriteFile { path, data } => Reply::from_result(
            state
                .sandbox()
                .and_then(|sb| sb.write_file(&path, &decode(&data)?)),
        ),
        Request::ReadFile { path } => Reply::from_result(
            state
                .sandbox()
                .and_then(|sb| sb.read_file(&path))
                .map(|b| encode(&b)),
        ),
        Request::EnsureDir { path } => {
            Reply::from_result(state.sandbox().and_then(|sb| sb.ensure_dir(&path)))
        }
        Request::WritePrivate { rel, data } => Reply::from_result(
            state
                .sandbox()
                .and_then(|sb| sb.write_private(&rel, &decode(&data)?)),
        ),
        Request::ReadPrivate { rel } => Reply::from_result(
            state
                .sandbox()
                .and_then(|sb| sb.read_private(&rel))
                .map(|b| encode(&b)),
        ),
        Request::UploadDir { id } => Reply::from_result((|| {
            crate::sandbox::check_id(&id)?;
            let dir = uploads_root().join(id);
            crate::paths::create_private_dir(&uploads_root())?;
            crate::paths::create_private_dir(&dir)?;
            Ok(dir)
        })()),
        Request::Upload { dest } => {
            let allowed = match state.sandbox() {
                Ok(sb) => inside(&dest, &sb.info().dir),
                Err(_) => inside(&dest, &uploads_root()),
            };
            if !allowed {
                Reply::Error(format!(
                    "{} is outside the sandbox's folder: nothing was written",
                    dest.display()
                ))
            } else {
                let bridge = tokio_util::io::SyncIoBridge::new(r);
                let res = tokio::task::spawn_blocking(move || {
                    std::fs::create_dir_all(&dest)
                        .with_context(|| format!("creating {}", dest.display()))?;
                    let mut archive = tar::Archive::new(bridge);
                    archive.set_preserve_permissions(true);
                    archive
                        .unpack(&dest)
                        .with_context(|| format!("unpacking into {}", dest.display()))
                })
                .await?;
                let reply = Reply::from_result(res);
                send(&mut w, &reply).await?;
                return Ok(());
            }
        }
        Request::Connect { socket } => {
            let sb = need!();
            if !inside(&socket, &sb.info().dir) {
                Reply::Error(format!("{} is not in the sandbox", socket.display()))
            } else {
                match tokio::net::UnixStream::connect(&socket).await {
                    Ok(mut unix) => {
                        send(&mut w, &Reply::Ok(serde_json::Value::Null)).await?;
                        let _ = protocol::splice(r, w, &mut unix).await;
                        return Ok(());
                    }
                    Err(e) => Reply::Error(format!("connecting to {}: {e}", socket.display())),
                }
            }
        }
        Request::ConnectTcp { port } => {
            match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                Ok(mut tcp) => {
                    send(&mut w, &Reply::Ok(serde_json::Value::Null)).await?;
                    let _ = protocol::splice(r, w, &mut tcp).await;
                    return Ok(());
                }
                Err(e) => Reply::Error(format!("connecting to port {port} on the host: {e}")),
            }
        }
        Request::ListenBack { port } => {
            let control = state
                .control
                .lock()
                .ok()
                .and_then(|c| c.clone())
                .ok_or_else(|| anyhow!("no connection"))?;
            match tokio::net::TcpListener::bind(("127.0.0.1", 0)).await {
                Ok(listener) => {
                    let here = listener.local_addr()?.port();
                    let gone = state.gone.clone();
                    tokio::spawn(async move {
                        loop {
                            let accepted = tokio::select! {
                                a = listener.accept() => a,
                                _ = gone.cancelled() => return,
                            };
                            let Ok((mut tcp, _)) = accepted else { return };
                            let mut control = control.clone();
                            tokio::spawn(async move {
                                let Ok(stream) = control.open_stream().await else {
                                    return;
                                };
                                let (r, mut w) = protocol::pumped(stream);
                                if send(&mut w, &protocol::Back { back: port }).await.is_err() {
                                    return;
                                }
                                let mut stream = tokio::io::join(r.into_inner(), w);
                                let _ = tokio::io::copy_bidirectional(&mut stream, &mut tcp).await;
                            });
                        }
                    });
                    Reply::Ok(here.into())
                }
                Err(e) => Reply::Error(format!("listening on the host's loopback: {e}")),
            }
        }
        Request::Listening { socket } => {
            let sb = need!();
            let ok = inside(&socket, &sb.info().dir)
                && tokio::net::UnixStream::connect(&socket).await.is_ok();
            Reply::Ok(ok.into())
        }
        Request::Snapshot { description } => {
            Reply::from_result(state.sandbox().and_then(|sb| sb.snapshot(&description)))
        }
        Request::OomKills => match state.sandbox() {
            Ok(sb) => Reply::Ok(sb.oom_kills().await.into()),
            Err(e) => Reply::Error(format!("{e:#}")),
        },
        Request::Terminate => {
            let sb = need!();
            Reply::from_result(tokio::task::spawn_blocking(move || sb.terminate()).await?)
        }
        Request::Detach => Reply::from_result(state.sandbox().and_then(|sb| sb.detach())),
        Request::IsDetached => Reply::from_result(state.sandbox().map(|sb| sb.is_detached())),
        Request::IsTerminated => Reply::from_result(state.sandbox().map(|sb| sb.is_terminated())),
    };
    send(&mut w, &reply).await?;
    // A FIN after the reply (dropping an open stream would reset it).
    let _ = w.shutdown().await;
    Ok(())
}
