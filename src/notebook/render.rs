//! How cell outputs are rendered as text: the plain `text` of a cell result that scripts
//! get ([`outputs_text`]), the MCP result of `execute_code` and `edit_cell` for agents
//! ([`render_cell_run`]), the pages of `read_cell` ([`render_cell_page`]), and the text
//! helpers they are made of (ANSI stripping, carriage-return collapsing, cutting the middle
//! out of long text).
//!
//! # Results of `execute_code` and `edit_cell`
//! One text block, then one image block per image output. The text block is:
//! - a header `[cell N, execution_count M]` (`[cell N, no execution_count]` when the kernel
//!   gave none). `N` is the index the session reported, the one `edit_cell` takes (a hidden
//!   execution, which has no cell, says `hidden execution` instead of `cell N`);
//! - the outputs in order, separated by newlines:
//!   - stream text: consecutive chunks of one stream are merged, and carriage-return
//!     progress bars keep only their final state. Stderr is preceded by a `[stderr]` line;
//!   - results and displays: `text/markdown`, else `application/json` (pretty-printed), else
//!     `text/plain`, else `[html output, N chars]` for HTML, else `text/latex`, else a
//!     `[<mime> output, N chars]` line per MIME type;
//!   - every `image/png`, `image/jpeg`, `image/gif` or `image/webp` entry adds a line
//!     `[image K: <mime>, attached]` and becomes the K-th image content block (the base64
//!     data as stored in the bundle, whitespace removed). Data that is not valid base64 or
//!     whose bytes are not that image format is not attached: a broken image block would
//!     make an LLM provider reject the whole conversation. Instead, the text says why;
//!   - errors: `ename: evalue`, then the traceback;
//!
//!   ANSI escape codes are stripped from all of this text. If it is longer than
//!   `max_output_chars` characters ([`super::mcp::ServerOptions::max_output_chars`]), the
//!   middle is cut out and replaced with a `[... N characters omitted ...]` line. The header
//!   and the status lines below are never cut;
//! - a status line when the status is not [`RunStatus::Ok`]: `[error: the code raised an
//!   exception]`, `[aborted: the kernel did not run this code]`, `[interrupted: timed out]`,
//!   `[kernel died while running this code]`; then `[note: ...]` if the run has a note.

use std::collections::BTreeMap;

use base64::Engine as _;
use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::Value;

use super::nbformat::{Cell, Output, bundle_text};
use super::{CellRun, RunStatus};

/// Text of outputs for people and agents: streams, plain text of results, errors with
/// ANSI codes removed, images as `[image/png]`-style placeholders.
pub fn outputs_text(outputs: &[Output]) -> String {
    let mut out = String::new();
    for o in outputs {
        match o {
            Output::Stream { text, .. } => out.push_str(&text.text()),
            Output::ExecuteResult { data, .. } | Output::DisplayData { data, .. } => {
                if let Some(t) = data.get("text/plain") {
                    out.push_str(&bundle_text(t));
                    out.push('\n');
                }
                for mime in data.keys().filter(|k| k.starts_with("image/")) {
                    out.push_str(&format!("[{mime}]\n"));
                }
            }
            Output::Error {
                ename,
                evalue,
                traceback,
            } => {
                if traceback.is_empty() {
                    out.push_str(&format!("{ename}: {evalue}\n"));
                } else {
                    out.push_str(&strip_ansi(&traceback.join("\n")));
                    out.push('\n');
                }
            }
        }
    }
    out
}

/// MIME types sent as MCP image content, with their magic bytes.
const IMAGE_TYPES: [(&str, &[u8]); 4] = [
    ("image/png", b"\x89PNG\r\n\x1a\n"),
    ("image/jpeg", b"\xff\xd8\xff"),
    ("image/gif", b"GIF8"),
    ("image/webp", b"RIFF"),
];

/// Renders a cell run as a tool result: one text block, then one image block per image.
pub fn render_cell_run(run: &CellRun, max_output_chars: usize) -> CallToolResult {
    let (body, images) = render_outputs(&run.outputs);
    let mut text = match run.cell_index {
        Some(i) => format!("[cell {i}, "),
        None => "[hidden execution, ".to_string(),
    };
    match run.execution_count {
        Some(n) => text.push_str(&format!("execution_count {n}]")),
        None => text.push_str("no execution_count]"),
    }
    let body = truncate_middle(&body, max_output_chars);
    if !body.is_empty() {
        text.push('\n');
        text.push_str(&body);
    }
    let status = match run.status {
        RunStatus::Ok => None,
        RunStatus::Error => Some("[error: the code raised an exception]"),
        RunStatus::Aborted => Some("[aborted: the kernel did not run this code]"),
        RunStatus::TimedOut => Some("[interrupted: timed out]"),
        RunStatus::KernelDied => Some("[kernel died while running this code]"),
    };
    if let Some(status) = status {
        text.push('\n');
        text.push_str(status);
    }
    if let Some(note) = &run.note {
        text.push_str(&format!("\n[note: {note}]"));
    }
    let mut content = Vec::with_capacity(1 + images.len());
    content.push(ContentBlock::text(text));
    content.extend(images);
    CallToolResult::success(content)
}

/// The outputs as the text of a tool result (uncut), and the images it mentions as
/// `[image K: <mime>, attached]`, K counting from 1.
fn render_outputs(outputs: &[Output]) -> (String, Vec<ContentBlock>) {
    let mut parts: Vec<String> = Vec::new();
    let mut images: Vec<ContentBlock> = Vec::new();
    // Consecutive chunks of one stream are merged before rendering.
    let mut stream: Option<(String, String)> = None;
    for output in outputs {
        if let Output::Stream { name, text } = output {
            match stream.as_mut() {
                Some((current, buf)) if current == name => buf.push_str(&text.text()),
                _ => {
                    flush_stream(stream.take(), &mut parts);
                    stream = Some((name.clone(), text.text()));
                }
            }
            continue;
        }
        flush_stream(stream.take(), &mut parts);
        match output {
            Output::ExecuteResult { data, .. } | Output::DisplayData { data, .. } => {
                render_bundle(data, &mut parts, &mut images);
            }
            Output::Error {
                ename,
                evalue,
                traceback,
            } => {
                let mut text = format!("{ename}: {evalue}");
                for line in traceback {
                    text.push('\n');
                    text.push_str(line);
                }
                parts.push(strip_ansi(&text).trim_end().to_string());
            }
            Output::Stream { .. } => {}
        }
    }
    flush_stream(stream.take(), &mut parts);
    (parts.join("\n"), images)
}

/// One page of a notebook cell for `read_cell`: a header, part of the cell's text (its
/// source, then its outputs rendered as by [`render_cell_run`], never cut), and a line
/// saying which characters were shown and where the next page starts. Images come with the
/// page that mentions them. `offset` and `limit` count characters of the cell's text; a
/// page that would end inside a line ends after the line before, if that keeps at least
/// half the page.
pub fn render_cell_page(
    index: usize,
    cell: &Cell,
    offset: usize,
    limit: usize,
) -> Result<CallToolResult, String> {
    let (header, body, images) = match cell {
        Cell::Code {
            source,
            execution_count,
            outputs,
            ..
        } => {
            let header = match execution_count {
                Some(n) => format!("[cell {index}, execution_count {n}]"),
                None => format!("[cell {index}, no execution_count]"),
            };
            let (out, images) = render_outputs(outputs);
            let out = if out.is_empty() {
                "[no outputs]".to_string()
            } else {
                format!("[outputs]\n{out}")
            };
            let body = format!("[source]\n{}\n{out}", source.text().trim_end_matches('\n'));
            (header, body, images)
        }
        Cell::Markdown { source, .. } => (
            format!("[markdown cell {index}]"),
            source.text(),
            Vec::new(),
        ),
        Cell::Raw { source, .. } => (format!("[raw cell {index}]"), source.text(), Vec::new()),
    };
    let chars: Vec<char> = body.chars().collect();
    let total = chars.len();
    if offset > total || (offset == total && total > 0) {
        return Err(format!(
            "offset {offset} is past the end of cell {index}, which has {total} characters"
        ));
    }
    let limit = limit.max(1);
    let mut end = offset.saturating_add(limit).min(total);
    if end < total
        && let Some(nl) = chars[offset..end].iter().rposition(|c| *c == '\n')
        && nl + 1 >= limit / 2
    {
        end = offset + nl + 1;
    }
    let page: String = chars[offset..end].iter().collect();
    // Which images the page mentions: their markers in order through the whole text.
    let byte_at = |n: usize| body.char_indices().nth(n).map_or(body.len(), |(i, _)| i);
    let (start_byte, end_byte) = (byte_at(offset), byte_at(end));
    let mut attached = Vec::new();
    let mut from = 0;
    for (k, image) in images.into_iter().enumerate() {
        let marker = format!("[image {}: ", k + 1);
        let Some(at) = body[from..].find(&marker).map(|i| from + i) else {
            break;
        };
        from = at + marker.len();
        if (start_byte..end_byte).contains(&at) {
            attached.push(image);
        }
    }
    let mut text = format!("{header}\n{page}");
    if !text.ends_with('\n') {
        text.push('\n');
    }
    if end < total {
        text.push_str(&format!(
            "[shown: characters {offset}-{end} of {total}; {} more: read_cell with cell_index={index}, offset={end}]",
            total - end
        ));
    } else {
        text.push_str(&format!(
            "[shown: characters {offset}-{end} of {total}; the end of cell {index}]"
        ));
    }
    let mut content = Vec::with_capacity(1 + attached.len());
    content.push(ContentBlock::text(text));
    content.extend(attached);
    Ok(CallToolResult::success(content))
}

fn flush_stream(stream: Option<(String, String)>, parts: &mut Vec<String>) {
    let Some((name, text)) = stream else { return };
    let text = collapse_carriage_returns(&strip_ansi(&text));
    let text = text.trim_end_matches('\n');
    if text.is_empty() {
        return;
    }
    if name == "stdout" {
        parts.push(text.to_string());
    } else {
        parts.push(format!("[{name}]\n{text}"));
    }
}

fn render_bundle(
    data: &BTreeMap<String, Value>,
    parts: &mut Vec<String>,
    images: &mut Vec<ContentBlock>,
) {
    let text_of = |mime: &str| {
        data.get(mime)
            .map(|v| strip_ansi(&bundle_text(v)).trim_end().to_string())
    };
    let chars_of = |v: &Value| bundle_text(v).chars().count();
    if let Some(md) = text_of("text/markdown") {
        parts.push(md);
    } else if let Some(json) = data.get("application/json") {
        parts.push(serde_json::to_string_pretty(json).unwrap_or_else(|_| json.to_string()));
    } else if let Some(plain) = text_of("text/plain") {
        parts.push(plain);
    } else if let Some(html) = data.get("text/html") {
        parts.push(format!("[html output, {} chars]", chars_of(html)));
    } else if let Some(latex) = text_of("text/latex") {
        parts.push(latex);
    } else {
        for (mime, v) in data {
            if !IMAGE_TYPES.iter().any(|(m, _)| m == mime) {
                parts.push(format!("[{mime} output, {} chars]", chars_of(v)));
            }
        }
    }
    for (mime, magic) in IMAGE_TYPES {
        let Some(v) = data.get(mime) else { continue };
        let b64: String = bundle_text(v)
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        match check_image(&b64, magic) {
            Ok(()) => {
                images.push(ContentBlock::image(b64, mime));
                parts.push(format!("[image {}: {mime}, attached]", images.len()));
            }
            Err(why) => {
                tracing::warn!(mime, why, "image output not attached");
                parts.push(format!("[{mime} output not attached: {why}]"));
            }
        }
    }
}

fn check_image(b64: &str, magic: &[u8]) -> Result<(), &'static str> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "its data is not valid base64")?;
    if bytes.starts_with(magic) {
        Ok(())
    } else {
        Err("its data is not an image of that type")
    }
}

/// Removes ANSI escape sequences: CSI (colours, cursor moves), OSC (titles, hyperlinks),
/// nF (charset selection such as `ESC ( B`) and two-character escapes.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                // Parameters and intermediates, up to a final byte in 0x40..=0x7e.
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                // Up to BEL or ST (ESC \).
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' {
                        if chars.peek() == Some(&'\\') {
                            chars.next();
                        }
                        break;
                    }
                }
            }
            Some(c) if (' '..='/').contains(&c) => {
                // nF escapes such as ESC ( B: intermediates, then one final character.
                for c in chars.by_ref() {
                    if !(' '..='/').contains(&c) {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Keeps, on each line, only the text after its last carriage return (the final state of a
/// progress bar). Text that ends in a carriage return keeps the last non-empty part.
fn collapse_carriage_returns(s: &str) -> String {
    if !s.contains('\r') {
        return s.to_string();
    }
    s.replace("\r\n", "\n")
        .split('\n')
        .map(|line| {
            line.rsplit('\r')
                .find(|part| !part.is_empty())
                .unwrap_or("")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Cuts the middle out of text longer than `max` characters (0: no limit), keeping
/// `max / 2` characters of the head and the rest of the tail.
pub(crate) fn truncate_middle(s: &str, max: usize) -> String {
    let total = s.chars().count();
    if max == 0 || total <= max {
        return s.to_string();
    }
    let head = max / 2;
    let tail = max - head;
    let byte_at = |n: usize| s.char_indices().nth(n).map_or(s.len(), |(i, _)| i);
    let head_end = byte_at(head);
    let tail_start = byte_at(total - tail);
    format!(
        "{}\n[... {} characters omitted ...]\n{}",
        &s[..head_end],
        total - head - tail,
        &s[tail_start..]
    )
}

#[cfg(test)]
#[path = "render_tests.rs"]
pub(super) mod tests;
