//! seer's own pages for watching runs in a browser (not a Jupyter server).
//!
//! The live view: the first session (or agent) of a run starts one HTTP server per process
//! on 127.0.0.1 with a random token, and prints its URL once on stderr. It serves the runs
//! of this process from the [`crate::live`] hub — a notebook page per session, a page per
//! agent transcript, a page per run and an index — and pushes each change to open pages as
//! server-sent events. `seer view [DIR]` serves past runs from their folders the same way,
//! read-only. `SEER_VIEW=off` turns the live view off.

pub mod attach;
pub mod html;
pub mod pages;
mod server;
pub mod source;
pub mod transcript;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;

use crate::live::Kind;
use server::App;
use source::Source;

/// A running view server.
pub struct Server {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub token: String,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("base", &self.base)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl Server {
    /// The index page's URL, with the token.
    pub fn url(&self) -> String {
        format!("{}/?token={}", self.base, self.token)
    }
}

/// Whether the live view is on (`SEER_VIEW=off`, `0` or `false` turns it off).
pub fn enabled() -> bool {
    !matches!(
        std::env::var("SEER_VIEW").ok().as_deref().map(str::trim),
        Some("off" | "0" | "false" | "no")
    )
}

static LIVE: OnceLock<Option<Server>> = OnceLock::new();

fn bind(port: u16) -> anyhow::Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .with_context(|| format!("binding 127.0.0.1:{port} for the view"))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Serves `source` on `listener` from `rt` until the process ends.
fn spawn(
    rt: &tokio::runtime::Handle,
    listener: std::net::TcpListener,
    source: Source,
) -> anyhow::Result<Server> {
    let addr = listener.local_addr()?;
    let token = crate::mcp_http::new_token();
    let app = Arc::new(App {
        source,
        token: token.clone(),
    });
    rt.spawn(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("the view server cannot listen: {e}");
                return;
            }
        };
        if let Err(e) = axum::serve(
            listener,
            server::router(app).into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        {
            tracing::error!("the view server failed: {e}");
        }
    });
    Ok(Server {
        base: format!("http://{addr}"),
        token,
    })
}

/// The live view of this process, started on first use (the first session or agent of
/// a run), its URL printed once on stderr. `None` when it is off or could not start (a
/// warning says why; the run goes on).
pub fn live(rt: &tokio::runtime::Handle) -> Option<&'static Server> {
    LIVE.get_or_init(|| {
        if !enabled() {
            return None;
        }
        let hub = crate::live::enable();
        match bind(0).and_then(|l| spawn(rt, l, Source::Live(hub))) {
            Ok(s) => {
                crate::output::err_line(&format!("live view: {}", s.url()));
                Some(s)
            }
            Err(e) => {
                crate::output::err_line(&format!("warning: no live view: {e:#}"));
                None
            }
        }
    })
    .as_ref()
}

/// The live page of the notebook or transcript written to `path` (when the view is on).
pub fn doc_url(kind: Kind, path: &Path) -> Option<String> {
    let server = LIVE.get()?.as_ref()?;
    let doc = crate::live::hub()?.open(kind, path);
    Some(format!(
        "{}/runs/{}/{}/{}?token={}",
        server.base,
        html::segment(&doc.run),
        kind.segment(),
        html::segment(&doc.name),
        server.token
    ))
}

/// The live page of the run writing into `dir` (when the view is on).
pub fn run_url(dir: &Path) -> Option<String> {
    let server = LIVE.get()?.as_ref()?;
    let hub = crate::live::hub()?;
    let slug = hub.list().into_iter().find(|r| r.dir == dir)?.slug;
    Some(format!(
        "{}/runs/{}?token={}",
        server.base,
        html::segment(&slug),
        server.token
    ))
}

/// `seer view [DIR]`: serves the past runs under `dir` read-only until Ctrl-C.
pub fn serve_dir(dir: PathBuf, port: u16) -> anyhow::Result<()> {
    if !dir.is_dir() {
        anyhow::bail!("{} is not a folder of runs", dir.display());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let listener = bind(port)?;
    let server = spawn(rt.handle(), listener, Source::Dir(dir.clone()))?;
    crate::output::err_line(&format!(
        "seer view: the runs in {} at {}",
        dir.display(),
        server.url()
    ));
    rt.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    Ok(())
}
