//! The view's HTTP server (axum): every request needs the token (`?token=…`, else 401);
//! pages are rendered here from a [`Source`]; a live page gets its updates as server-sent
//! events (`update` with the items changed since its version, `refresh` for the index and
//! run pages, `next` when a rerun supersedes what it shows).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::html;
use super::pages::{self, Links, Page};
use super::source::Source;
use super::transcript;
use crate::live::{Doc, Item, Kind};

pub struct App {
    pub source: Source,
    pub token: String,
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/events", get(index_events))
        .route("/runs/{run}", get(run_page))
        .route("/runs/{run}/events", get(run_events))
        .route("/runs/{run}/{kind}/{name}", get(doc_page))
        .route("/runs/{run}/{kind}/{name}/events", get(doc_events))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            require_token,
        ))
        .with_state(app)
}

fn token_of(req: &Request) -> Option<&str> {
    req.uri()
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
}

async fn require_token(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let ok = token_of(&req)
        .is_some_and(|t| crate::mcp_http::constant_time_eq(t.as_bytes(), app.token.as_bytes()));
    if ok {
        return next.run(req).await;
    }
    crate::refusals::REFUSALS.note("seer view", crate::refusals::peer(&req));
    (
        StatusCode::UNAUTHORIZED,
        "seer view: this page needs the token printed with its URL\n",
    )
        .into_response()
}

fn not_found(what: &str) -> Response {
    (StatusCode::NOT_FOUND, format!("seer view: no {what}\n")).into_response()
}

/// An HTML response under a CSP that runs only the page's own script and loads nothing
/// from elsewhere.
fn html_page(page: &Page) -> Response {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; img-src data:; \
         connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'none'"
    );
    let mut r = pages::shell(page, &nonce).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn kind_of(segment: &str) -> Option<Kind> {
    match segment {
        "notebooks" => Some(Kind::Notebook),
        "transcripts" => Some(Kind::Transcript),
        _ => None,
    }
}

fn render(kind: Kind, i: usize, json: &str) -> String {
    match kind {
        Kind::Notebook => html::cell(i, json),
        Kind::Transcript => transcript::record(i, json),
    }
}

/// An item's HTML, rendered once per version.
fn item_html(kind: Kind, i: usize, item: &Item) -> String {
    item.html
        .get_or_init(|| render(kind, i, &item.json))
        .clone()
}

fn nav(l: &Links, run: Option<&str>, doc: Option<(Kind, &str)>) -> String {
    let mut s = l.a(&l.index(), "seer");
    if let Some(run) = run {
        s.push_str(" / ");
        s.push_str(&l.a(&l.run(run), run));
        if let Some((kind, name)) = doc {
            s.push_str(&format!(
                " / {} {}",
                match kind {
                    Kind::Notebook => "notebook",
                    Kind::Transcript => "agent",
                },
                l.a(&l.doc(run, kind, name), name)
            ));
        }
    }
    s
}

async fn index(State(app): State<Arc<App>>) -> Response {
    let l = Links { token: &app.token };
    let runs = app.source.runs();
    let live = app.source.is_live();
    html_page(&Page {
        title: "seer runs",
        nav: nav(&l, None, None),
        head: format!(
            "{} run(s){}",
            runs.len(),
            if live {
                " of this seer process"
            } else {
                " (read-only)"
            }
        ),
        main: pages::index(&runs, &l, live),
        events: live.then(|| format!("/events{}", l.q())),
        version: 0,
    })
}

async fn run_page(State(app): State<Arc<App>>, Path(run): Path<String>) -> Response {
    let l = Links { token: &app.token };
    let Some(r) = app.source.run(&run) else {
        return not_found("such run");
    };
    html_page(&Page {
        title: &r.slug,
        nav: nav(&l, Some(&r.slug), None),
        head: format!("run {}", html::escape(&r.status)),
        main: pages::run(&r, &l),
        events: app
            .source
            .is_live()
            .then(|| format!("/runs/{}/events{}", html::segment(&r.slug), l.q())),
        version: 0,
    })
}

fn doc_head(kind: Kind, items: &[&str], version: u64) -> String {
    match kind {
        Kind::Notebook => format!("{} cells · version {version}", items.len()),
        Kind::Transcript => {
            let mut s = transcript::Summary::default();
            for i in items {
                s.add(i);
            }
            s.html()
        }
    }
}

async fn doc_page(
    State(app): State<Arc<App>>,
    Path((run, kind, name)): Path<(String, String, String)>,
) -> Response {
    let l = Links { token: &app.token };
    let Some(kind) = kind_of(&kind) else {
        return not_found("such page");
    };
    let (main, head, events, version) = match &app.source {
        Source::Live(hub) => {
            let Some(doc) = hub.doc(&run, kind, &name) else {
                return not_found("such document");
            };
            let st = doc.snapshot();
            let mut main = String::new();
            for (i, item) in st.items.iter().enumerate() {
                main.push_str(&item_html(kind, i, item));
            }
            let jsons: Vec<&str> = st.items.iter().map(|i| &*i.json).collect();
            let events = format!(
                "/runs/{}/{}/{}/events{}&since={}",
                html::segment(&run),
                kind.segment(),
                html::segment(&name),
                l.q(),
                st.version
            );
            (
                main,
                doc_head(kind, &jsons, st.version),
                Some(events),
                st.version,
            )
        }
        Source::Dir(_) => match app.source.disk_doc(&run, kind, &name) {
            None => return not_found("such document"),
            Some(Err(e)) => {
                return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}\n")).into_response();
            }
            Some(Ok(d)) => {
                let mut main = String::new();
                for (i, item) in d.items.iter().enumerate() {
                    main.push_str(&render(kind, i, item));
                }
                let jsons: Vec<&str> = d.items.iter().map(String::as_str).collect();
                (main, doc_head(kind, &jsons, 0), None, 0)
            }
        },
    };
    html_page(&Page {
        title: &name,
        nav: nav(&l, Some(&run), Some((kind, &name))),
        head,
        main,
        events,
        version,
    })
}

#[derive(serde::Deserialize)]
struct Since {
    since: Option<u64>,
}

/// An SSE response that keeps the connection alive with comments.
fn sse<S>(stream: S) -> Response
where
    S: futures::Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    let mut r = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

struct DocStream {
    doc: Arc<Doc>,
    rx: tokio::sync::watch::Receiver<u64>,
    since: u64,
    first: bool,
    summary: transcript::Summary,
    counted: usize,
    token: String,
}

async fn doc_events(
    State(app): State<Arc<App>>,
    Path((run, kind, name)): Path<(String, String, String)>,
    Query(q): Query<Since>,
    headers: HeaderMap,
) -> Response {
    let Source::Live(hub) = &app.source else {
        return not_found("updates: the runs shown are past runs");
    };
    let Some(kind) = kind_of(&kind) else {
        return not_found("such page");
    };
    let Some(doc) = hub.doc(&run, kind, &name) else {
        return not_found("such document");
    };
    // A reconnecting EventSource says which version it had.
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let since = q.since.unwrap_or(0).max(last.unwrap_or(0));
    let rx = doc.subscribe();
    let start = DocStream {
        doc,
        rx,
        since,
        first: true,
        summary: transcript::Summary::default(),
        counted: 0,
        token: app.token.clone(),
    };
    sse(futures::stream::unfold(start, |mut st| async move {
        if !st.first && st.rx.changed().await.is_err() {
            return None;
        }
        st.first = false;
        st.rx.borrow_and_update();
        let snap = st.doc.snapshot();
        let kind = st.doc.kind;
        let items: Vec<(usize, String)> = snap
            .items
            .iter()
            .enumerate()
            .filter(|(_, it)| it.version > st.since)
            .map(|(i, it)| (i, item_html(kind, i, it)))
            .collect();
        let head = match kind {
            Kind::Notebook => format!("{} cells · version {}", snap.items.len(), snap.version),
            Kind::Transcript => {
                for it in &snap.items[st.counted.min(snap.items.len())..] {
                    st.summary.add(&it.json);
                }
                st.counted = snap.items.len();
                st.summary.html()
            }
        };
        let next = snap.next.as_ref().map(|n| {
            let mut parts = n.splitn(3, '/');
            let (r, k, d) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            format!(
                "/runs/{}/{k}/{}?token={}",
                html::segment(r),
                html::segment(d),
                st.token
            )
        });
        st.since = snap.version;
        let data = json!({
            "items": items, "running": snap.running, "head": head, "next": next,
            "version": snap.version,
        });
        let ev = Event::default()
            .event("update")
            .id(snap.version.to_string())
            .data(data.to_string());
        Some((Ok(ev), st))
    }))
}

/// `refresh` when the hub changes (a run or document appears, a run ends) and every 2 s
/// (sandbox states); `next` once the run has a successor (`--watch`).
fn hub_events(app: Arc<App>, run: Option<String>) -> Response {
    let Source::Live(hub) = &app.source else {
        return not_found("updates: the runs shown are past runs");
    };
    let rx = hub.subscribe();
    let hub: &'static crate::live::Hub = hub;
    sse(futures::stream::unfold(
        (rx, run, app.token.clone(), false),
        move |(mut rx, run, token, done)| async move {
            if done {
                return None;
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return None; },
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
            rx.borrow_and_update();
            let next = run
                .as_deref()
                .and_then(|r| hub.run(r))
                .and_then(|(s, _)| s.next);
            let ev = match next {
                Some(n) => Event::default()
                    .event("next")
                    .data(format!("/runs/{}?token={token}", html::segment(&n))),
                None => Event::default().event("refresh").data(""),
            };
            let last = ev_is_next(&run, hub);
            Some((Ok(ev), (rx, run, token, last)))
        },
    ))
}

fn ev_is_next(run: &Option<String>, hub: &crate::live::Hub) -> bool {
    run.as_deref()
        .and_then(|r| hub.run(r))
        .is_some_and(|(s, _)| s.next.is_some())
}

async fn index_events(State(app): State<Arc<App>>) -> Response {
    hub_events(app, None)
}

async fn run_events(State(app): State<Arc<App>>, Path(run): Path<String>) -> Response {
    hub_events(app, Some(run))
}
