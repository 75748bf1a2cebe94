//! Notebook cells as HTML: markdown rendered (raw HTML in it shown as text), code
//! highlighted (syntect, CSS classes), outputs in order: streams and errors with their
//! ANSI colours, results and displays by their richest MIME type (kernel HTML in a frame
//! that runs no script, images as data URLs, JSON pretty-printed). Also the shared bits of
//! every page: escaping, URL segments, the highlighter's CSS.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use base64::Engine as _;
use pulldown_cmark::{Event, Options, Parser};
use serde_json::Value;
use syntect::html::{ClassStyle, ClassedHTMLGenerator, css_for_theme_with_class_style};
use syntect::parsing::SyntaxSet;
use syntect::util::LinesWithEndings;

use crate::kernel::{Output, bundle_text};
use crate::notebook::nbformat::Cell;

const CLASS_STYLE: ClassStyle = ClassStyle::SpacedPrefixed { prefix: "hl-" };

/// Text for an HTML text node or a quoted attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One URL path segment, percent-encoded.
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn syntaxes() -> &'static SyntaxSet {
    static SET: OnceLock<SyntaxSet> = OnceLock::new();
    SET.get_or_init(SyntaxSet::load_defaults_newlines)
}

/// The CSS of the highlighter's classes (a light theme), made once.
pub fn highlight_css() -> &'static str {
    static CSS: OnceLock<String> = OnceLock::new();
    CSS.get_or_init(|| {
        let themes = syntect::highlighting::ThemeSet::load_defaults();
        themes
            .themes
            .get("InspiredGitHub")
            .and_then(|t| css_for_theme_with_class_style(t, CLASS_STYLE).ok())
            .unwrap_or_default()
    })
}

/// `code` highlighted as `lang` (a file extension or name: `py`, `json`), as HTML.
pub fn highlight(code: &str, lang: &str) -> String {
    let set = syntaxes();
    let syntax = set
        .find_syntax_by_token(lang)
        .unwrap_or_else(|| set.find_syntax_plain_text());
    let mut generator = ClassedHTMLGenerator::new_with_class_style(syntax, set, CLASS_STYLE);
    for line in LinesWithEndings::from(code) {
        if generator
            .parse_html_for_line_which_includes_newline(line)
            .is_err()
        {
            return escape(code);
        }
    }
    generator.finalize()
}

/// Markdown as HTML. Raw HTML in it is shown as text: markdown comes from agents.
pub fn markdown(src: &str) -> String {
    let opts = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let events = Parser::new_ext(src, opts).map(|e| match e {
        Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
        e => e,
    });
    let mut out = String::with_capacity(src.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut out, events);
    out
}

/// Terminal text (ANSI colours) as HTML.
pub fn ansi(text: &str) -> String {
    ansi_to_html::convert(text)
        .unwrap_or_else(|_| escape(&crate::notebook::render::strip_ansi(text)))
}

/// A notebook cell (its nbformat JSON) as HTML, element id `i<index>`.
pub fn cell(index: usize, json: &str) -> String {
    let cell: Cell = match serde_json::from_str(json) {
        Ok(c) => c,
        Err(e) => {
            return format!(
                "<div class=\"cell\" id=\"i{index}\"><pre class=\"out error\">unreadable cell: {}</pre></div>",
                escape(&e.to_string())
            );
        }
    };
    match cell {
        Cell::Markdown { source, .. } => format!(
            "<div class=\"cell md\" id=\"i{index}\"><div class=\"prompt\"></div><div class=\"body\">{}</div></div>",
            markdown(&source.text())
        ),
        Cell::Raw { source, .. } => format!(
            "<div class=\"cell raw\" id=\"i{index}\"><div class=\"prompt\"></div><div class=\"body\"><pre>{}</pre></div></div>",
            escape(&source.text())
        ),
        Cell::Code {
            source,
            execution_count,
            outputs,
            ..
        } => {
            let count = execution_count
                .map(|n| n.to_string())
                .unwrap_or_else(|| "&nbsp;".into());
            let mut out = format!(
                "<div class=\"cell code\" id=\"i{index}\"><div class=\"prompt\">[{count}]:</div><div class=\"body\">\
                 <span class=\"state\">running <span class=\"elapsed\"></span></span>\
                 <pre class=\"src\"><code>{}</code></pre><div class=\"outputs\">",
                highlight(&source.text(), "py")
            );
            for o in &outputs {
                out.push_str(&output(o));
            }
            out.push_str("</div></div></div>");
            out
        }
    }
}

/// One output.
pub fn output(o: &Output) -> String {
    match o {
        Output::Stream { name, text } => format!(
            "<pre class=\"out stream {}\">{}</pre>",
            if name == "stderr" { "stderr" } else { "stdout" },
            ansi(&text.text())
        ),
        Output::Error {
            ename,
            evalue,
            traceback,
        } => {
            let text = if traceback.is_empty() {
                format!("{ename}: {evalue}")
            } else {
                traceback.join("\n")
            };
            format!("<pre class=\"out error\">{}</pre>", ansi(&text))
        }
        Output::ExecuteResult { data, .. } | Output::DisplayData { data, .. } => bundle(data),
    }
}

/// Base64 as stored in notebooks (Jupyter may wrap it in lines).
fn b64(v: &Value) -> String {
    bundle_text(v).split_whitespace().collect()
}

/// A MIME bundle by its richest type.
pub fn bundle(data: &BTreeMap<String, Value>) -> String {
    if let Some(html) = data.get("text/html") {
        // A frame that runs no script; same origin only so the page can size it.
        return format!(
            "<iframe class=\"out html\" sandbox=\"allow-same-origin\" srcdoc=\"{}\"></iframe>",
            escape(&bundle_text(html))
        );
    }
    if let Some(svg) = data.get("image/svg+xml") {
        let b = base64::engine::general_purpose::STANDARD.encode(bundle_text(svg));
        return format!(
            "<img class=\"out\" alt=\"svg output\" src=\"data:image/svg+xml;base64,{b}\">"
        );
    }
    for mime in ["image/png", "image/jpeg", "image/gif", "image/webp"] {
        if let Some(img) = data.get(mime) {
            return format!(
                "<img class=\"out\" alt=\"{mime} output\" src=\"data:{mime};base64,{}\">",
                escape(&b64(img))
            );
        }
    }
    if let Some(md) = data.get("text/markdown") {
        return format!("<div class=\"out md\">{}</div>", markdown(&bundle_text(md)));
    }
    if let Some(json) = data.get("application/json") {
        let text = serde_json::to_string_pretty(json).unwrap_or_default();
        return format!(
            "<pre class=\"out json\"><code>{}</code></pre>",
            highlight(&text, "json")
        );
    }
    for mime in ["text/latex", "text/plain"] {
        if let Some(t) = data.get(mime) {
            return format!("<pre class=\"out\">{}</pre>", ansi(&bundle_text(t)));
        }
    }
    let types: Vec<&str> = data.keys().map(String::as_str).collect();
    format!(
        "<pre class=\"out\">[an output of type {}]</pre>",
        escape(&types.join(", "))
    )
}

#[cfg(test)]
#[path = "html_tests.rs"]
mod tests;
