//! Whole pages: the shell every page shares (its CSS and the small inline script that
//! applies pushed updates, ticks the running cell's clock and sizes HTML output frames),
//! the index of runs and a run's page. Notebook and transcript items come from `html` and
//! `transcript`.

use serde_json::Value;

use super::html::{escape, highlight_css, segment};
use super::source::RunView;

const CSS: &str = r#"
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #fff; --soft: #f6f8fa;
  --err: #cf222e; --run: #9a6700; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
body { margin: 0; color: var(--fg); background: var(--bg); font-size: 15px; line-height: 1.45; }
header { position: sticky; top: 0; background: var(--bg); border-bottom: 1px solid var(--line);
  padding: 8px 16px; z-index: 1; }
nav a { color: #0969da; text-decoration: none; } nav a:hover { text-decoration: underline; }
#head { color: var(--muted); font-size: 13px; margin-top: 2px; }
main { max-width: 1100px; margin: 0 auto; padding: 12px 16px 80px; }
pre, code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 13px; }
pre { margin: 0; white-space: pre-wrap; word-break: break-word; }
.cell { display: flex; gap: 8px; margin: 10px 0; }
.cell .prompt { flex: 0 0 52px; text-align: right; color: var(--muted); font-family: ui-monospace, monospace;
  font-size: 12px; padding-top: 6px; }
.cell .body { flex: 1; min-width: 0; }
.cell.code pre.src { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px; }
.cell.running pre.src { border-color: var(--run); box-shadow: 0 0 0 1px var(--run); }
.cell .state { display: none; color: var(--run); font-size: 12px; }
.cell.running .state { display: inline-block; margin-bottom: 2px; }
.out { margin: 4px 0; padding: 2px 8px; max-width: 100%; }
pre.stderr { background: #fff8f0; }
pre.error { background: #ffebe9; border-left: 3px solid var(--err); padding: 6px 8px; }
img.out { display: block; max-width: 100%; height: auto; }
iframe.html { display: block; width: 100%; border: 0; min-height: 24px; }
.md table, .text table { border-collapse: collapse; } .md td, .md th { border: 1px solid var(--line); padding: 2px 6px; }
.rec { margin: 10px 0; }
.rec .who, .rec .name { color: var(--muted); font-size: 12px; margin-bottom: 2px; }
.rec .user { background: #ddf4ff; border-radius: 6px; padding: 6px 10px; }
.rec .turn { border-left: 3px solid #8250df; padding-left: 10px; }
.rec .call { margin: 6px 0; } .rec .call .name { color: #8250df; font-weight: 600; }
.rec .call pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px; margin: 2px 0; }
.rec .result { border-left: 3px solid #1a7f37; padding-left: 10px; }
.rec .result pre { max-height: 480px; overflow: auto; }
.rec .result.error { border-left-color: var(--err); }
.thinking { color: var(--muted); font-style: italic; }
.meta { color: var(--muted); font-size: 13px; }
details > summary { cursor: pointer; color: var(--muted); font-size: 13px; }
table.list { border-collapse: collapse; width: 100%; font-size: 14px; }
table.list th, table.list td { text-align: left; border-bottom: 1px solid var(--line); padding: 4px 8px; vertical-align: top; }
.status-error, .status-interrupted { color: var(--err); } .status-running { color: var(--run); }
h2 { font-size: 16px; margin: 18px 0 6px; }
"#;

const SCRIPT: &str = r#"
(() => {
  const body = document.body, items = document.getElementById('items'), head = document.getElementById('head');
  const tick = () => {
    const now = Date.now() / 1000;
    for (const el of document.querySelectorAll('.running[data-since]')) {
      const e = el.querySelector('.elapsed');
      if (e) e.textContent = Math.max(0, now - Number(el.dataset.since)).toFixed(1) + ' s';
    }
  };
  setInterval(tick, 100); tick();
  const fit = f => { try { const d = f.contentDocument; if (d && d.body) f.style.height = (d.body.scrollHeight + 20) + 'px'; } catch (_) {} };
  const fitAll = root => root.querySelectorAll('iframe.html').forEach(f => { f.addEventListener('load', () => fit(f)); fit(f); });
  fitAll(document);
  const url = body.dataset.events;
  if (!url) return;
  const es = new EventSource(url);
  const setRunning = r => {
    for (const el of items.querySelectorAll('.running')) { el.classList.remove('running'); delete el.dataset.since; }
    if (r) { const el = document.getElementById('i' + r[0]); if (el) { el.classList.add('running'); el.dataset.since = r[1]; } }
    tick();
  };
  es.addEventListener('update', ev => {
    const m = JSON.parse(ev.data);
    const follow = innerHeight + scrollY >= document.documentElement.scrollHeight - 80;
    for (const [i, html] of m.items) {
      const t = document.createElement('template');
      t.innerHTML = html;
      const el = t.content.firstElementChild;
      if (!el) continue;
      const old = document.getElementById('i' + i);
      if (old) old.replaceWith(el); else items.appendChild(el);
      fitAll(el);
    }
    setRunning(m.running);
    if (m.head) head.innerHTML = m.head;
    if (m.next) { location.href = m.next; return; }
    if (follow && m.items.length) scrollTo(0, document.documentElement.scrollHeight);
    body.dataset.version = m.version;
  });
  es.addEventListener('refresh', async () => {
    const r = await fetch(location.href);
    if (!r.ok) return;
    const d = new DOMParser().parseFromString(await r.text(), 'text/html');
    const main = d.getElementById('items'), h = d.getElementById('head');
    if (main) items.innerHTML = main.innerHTML;
    if (h) head.innerHTML = h.innerHTML;
  });
  es.addEventListener('next', ev => { location.href = ev.data; });
})();
"#;

/// What a page holds.
pub struct Page<'a> {
    pub title: &'a str,
    /// Breadcrumbs (HTML).
    pub nav: String,
    /// The line under the breadcrumbs (HTML).
    pub head: String,
    /// The items (HTML).
    pub main: String,
    /// The stream of updates (a live page), with the token.
    pub events: Option<String>,
    /// The version the page shows.
    pub version: u64,
}

/// The whole page; `nonce` lets its one script run under the page's CSP.
pub fn shell(p: &Page, nonce: &str) -> String {
    let events = p
        .events
        .as_ref()
        .map(|e| format!(" data-events=\"{}\"", escape(e)))
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{CSS}{hl}</style></head>\
         <body{events} data-version=\"{version}\"><header><nav>{nav}</nav><div id=\"head\">{head}</div></header>\
         <main id=\"items\">{main}</main><script nonce=\"{nonce}\">{SCRIPT}</script></body></html>",
        title = escape(p.title),
        hl = highlight_css(),
        version = p.version,
        nav = p.nav,
        head = p.head,
        main = p.main,
    )
}

/// Links carry the token (`?token=…`).
pub struct Links<'a> {
    pub token: &'a str,
}

impl Links<'_> {
    pub fn q(&self) -> String {
        format!("?token={}", self.token)
    }
    pub fn index(&self) -> String {
        format!("/{}", self.q())
    }
    pub fn run(&self, slug: &str) -> String {
        format!("/runs/{}{}", segment(slug), self.q())
    }
    pub fn doc(&self, slug: &str, kind: crate::live::Kind, name: &str) -> String {
        format!(
            "/runs/{}/{}/{}{}",
            segment(slug),
            kind.segment(),
            segment(name),
            self.q()
        )
    }
    pub fn a(&self, href: &str, text: &str) -> String {
        format!("<a href=\"{}\">{}</a>", escape(href), escape(text))
    }
}

pub fn date(unix: f64) -> String {
    chrono::DateTime::from_timestamp(unix as i64, 0)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
}

pub fn duration(secs: Option<f64>) -> String {
    match secs {
        None => "–".into(),
        Some(s) if s < 60.0 => format!("{s:.1} s"),
        Some(s) if s < 3600.0 => format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64),
        Some(s) => format!(
            "{}h{:02}m",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        ),
    }
}

fn cost(c: Option<f64>) -> String {
    c.map(|c| format!("${c:.4}")).unwrap_or_else(|| "–".into())
}

fn status(run: &RunView) -> String {
    let mut s = format!(
        "<span class=\"status-{}\">{}</span>",
        escape(run.status.split_whitespace().next().unwrap_or("")),
        escape(&run.status)
    );
    if let Some(e) = &run.error {
        s.push_str(&format!(": {}", escape(e)));
    }
    s
}

/// The index: one row per run.
pub fn index(runs: &[RunView], l: &Links, live: bool) -> String {
    if runs.is_empty() {
        return "<p class=\"meta\">no runs yet</p>".into();
    }
    let mut out = String::from(
        "<table class=\"list\" id=\"runs\"><tr><th>run</th><th>script</th><th>date</th><th>duration</th>\
         <th>agents</th><th>tokens in / out</th><th>cost</th><th>status</th></tr>",
    );
    for r in runs {
        let (i, o) = r.tokens();
        out.push_str(&format!(
            "<tr class=\"run\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{i} / {o}</td><td>{}</td><td>{}</td></tr>",
            l.a(&l.run(&r.slug), &r.slug),
            escape(&r.script),
            date(r.started),
            if live && r.duration.is_none() { "running".into() } else { duration(r.duration) },
            r.agents.len().max(r.transcripts.len()),
            cost(r.cost()),
            status(r),
        ));
    }
    out.push_str("</table>");
    out
}

fn names(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "–".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A run's page: its state, sandboxes, notebooks, transcripts and finished agents.
pub fn run(r: &RunView, l: &Links) -> String {
    use crate::live::Kind;
    let mut out = format!(
        "<p>script <code>{}</code> · started {} · {} · {}</p>",
        escape(&r.script),
        date(r.started),
        duration(r.duration),
        status(r)
    );
    out.push_str("<h2>Sandboxes</h2>");
    if r.sandboxes.is_empty() {
        out.push_str("<p class=\"meta\">none</p>");
    } else {
        out.push_str("<table class=\"list\" id=\"sandboxes\"><tr><th>id</th><th>backend</th><th>status</th><th>models</th><th>gpu</th></tr>");
        for sb in &r.sandboxes {
            out.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&text(&sb["id"])),
                escape(&text(&sb["backend"])),
                escape(&text(&sb["status"])),
                escape(&names(&sb["models"])),
                escape(&text(&sb["gpu"]))
            ));
        }
        out.push_str("</table>");
    }
    let list = |title: &str, kind: Kind, names: &[String]| {
        let mut s = format!("<h2>{title}</h2>");
        if names.is_empty() {
            s.push_str("<p class=\"meta\">none</p>");
        } else {
            s.push_str(&format!("<ul id=\"{}\">", kind.segment()));
            for n in names {
                s.push_str(&format!("<li>{}</li>", l.a(&l.doc(&r.slug, kind, n), n)));
            }
            s.push_str("</ul>");
        }
        s
    };
    out.push_str(&list("Notebooks", Kind::Notebook, &r.notebooks));
    out.push_str(&list("Agent transcripts", Kind::Transcript, &r.transcripts));
    if !r.agents.is_empty() {
        out.push_str("<h2>Finished agents</h2><table class=\"list\" id=\"agents\"><tr><th>name</th><th>provider</th><th>model</th><th>turns</th><th>tokens in / out</th><th>cost</th><th>stop reason</th></tr>");
        for a in &r.agents {
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{}</td><td>{}</td></tr>",
                escape(&text(&a["name"])),
                escape(&text(&a["provider"])),
                escape(&text(&a["model"])),
                text(&a["turns"]),
                text(&a["input_tokens"]),
                text(&a["output_tokens"]),
                cost(a["cost_usd"].as_f64()),
                escape(&text(&a["stop_reason"]))
            ));
        }
        out.push_str("</table>");
    }
    out
}
