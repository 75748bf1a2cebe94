//! How the REPL prints a value: strings as text, maps and arrays pretty-printed (one line
//! when they fit), notebook cell results as their outputs (images as
//! `[image/png 640x480]`), long strings inside containers shortened, and the whole output
//! cut at a limit with a note of how much was cut.

use base64::Engine as _;
use rhai::{Dynamic, Map};

use crate::notebook::render::strip_ansi;

/// Lines and characters shown before the rest is cut.
pub const MAX_LINES: usize = 200;
pub const MAX_CHARS: usize = 20_000;
/// A string inside a map or array is shortened past this many characters.
const MAX_INNER_STRING: usize = 300;
/// Containers wider than this are printed one item per line.
const WIDTH: usize = 100;

/// Turns custom values (sandboxes, sessions) into text, e.g. with their `to_string`.
pub type Describe<'a> = &'a dyn Fn(&Dynamic) -> String;

/// The text for a value, before cutting; `None` for `()` (nothing to print).
pub fn render(v: &Dynamic, describe: Describe) -> Option<String> {
    if v.is_unit() {
        return None;
    }
    if let Some(s) = v.read_lock::<rhai::ImmutableString>() {
        return Some(s.to_string());
    }
    if let Some(m) = v.read_lock::<Map>()
        && let Some(text) = cell_result(&m)
    {
        return Some(text);
    }
    Some(pretty(v, 0, describe))
}

/// `render` then `cut`.
pub fn show(v: &Dynamic, describe: Describe) -> Option<String> {
    render(v, describe).map(|s| cut(&s, MAX_LINES, MAX_CHARS))
}

/// Keeps the first `max_lines` lines and `max_chars` characters, with a note of the rest.
pub fn cut(text: &str, max_lines: usize, max_chars: usize) -> String {
    let total_lines = text.lines().count();
    let total_chars = text.chars().count();
    if total_lines <= max_lines && total_chars <= max_chars {
        return text.to_string();
    }
    let mut out = String::new();
    let mut lines = 0;
    let mut chars = 0;
    for line in text.lines() {
        if lines == max_lines {
            break;
        }
        let n = line.chars().count();
        if chars + n > max_chars {
            out.extend(line.chars().take(max_chars - chars));
            chars = max_chars;
            lines += 1;
            out.push('\n');
            break;
        }
        out.push_str(line);
        out.push('\n');
        lines += 1;
        chars += n + 1;
    }
    let cut_lines = total_lines.saturating_sub(lines);
    let cut_chars = total_chars.saturating_sub(chars);
    out.push_str(&format!(
        "… cut: {cut_lines} more line(s), {cut_chars} more character(s) (assign the value to a variable to look at parts of it)"
    ));
    out
}

fn quote(s: &str) -> String {
    let n = s.chars().count();
    if n > MAX_INNER_STRING {
        let head: String = s.chars().take(MAX_INNER_STRING).collect();
        format!("{head:?}… ({} more chars)", n - MAX_INNER_STRING)
    } else {
        format!("{s:?}")
    }
}

fn key(k: &str) -> String {
    let ident = k
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_alphanumeric() || c == '_');
    if ident {
        k.to_string()
    } else {
        format!("{k:?}")
    }
}

/// One-line form of a value inside a container.
fn flat(v: &Dynamic, describe: Describe) -> String {
    if v.is_unit() {
        return "()".into();
    }
    if let Some(s) = v.read_lock::<rhai::ImmutableString>() {
        return quote(&s);
    }
    if let Some(a) = v.read_lock::<rhai::Array>() {
        let items: Vec<String> = a.iter().map(|x| flat(x, describe)).collect();
        return format!("[{}]", items.join(", "));
    }
    if let Some(m) = v.read_lock::<Map>() {
        if m.is_empty() {
            return "#{}".into();
        }
        let items: Vec<String> = m
            .iter()
            .map(|(k, x)| format!("{}: {}", key(k), flat(x, describe)))
            .collect();
        return format!("#{{ {} }}", items.join(", "));
    }
    if let Some(b) = v.read_lock::<rhai::Blob>() {
        return format!("<blob: {} bytes>", b.len());
    }
    if v.is::<char>() {
        return format!("{:?}", v.clone_cast::<char>());
    }
    if v.is::<rhai::INT>() || v.is::<rhai::FLOAT>() || v.is::<bool>() || v.is::<rhai::FnPtr>() {
        return v.to_string();
    }
    describe(v)
}

/// Multi-line form: a container that does not fit on one line gets one item per line.
fn pretty(v: &Dynamic, indent: usize, describe: Describe) -> String {
    let one = flat(v, describe);
    if indent + one.chars().count() <= WIDTH && !one.contains('\n') {
        return one;
    }
    let pad = " ".repeat(indent + 2);
    let end = " ".repeat(indent);
    if let Some(a) = v.read_lock::<rhai::Array>() {
        let mut s = String::from("[\n");
        for x in a.iter() {
            s.push_str(&format!("{pad}{},\n", pretty(x, indent + 2, describe)));
        }
        s.push_str(&format!("{end}]"));
        return s;
    }
    if let Some(m) = v.read_lock::<Map>() {
        let mut s = String::from("#{\n");
        for (k, x) in m.iter() {
            s.push_str(&format!(
                "{pad}{}: {},\n",
                key(k),
                pretty(x, indent + 2, describe)
            ));
        }
        s.push_str(&format!("{end}}}"));
        return s;
    }
    one
}

fn get_str(m: &Map, k: &str) -> Option<String> {
    m.get(k).and_then(|v| {
        if let Some(s) = v.read_lock::<rhai::ImmutableString>() {
            Some(s.to_string())
        } else {
            // nbformat multi-line text: an array of strings.
            v.read_lock::<rhai::Array>()
                .map(|a| a.iter().map(|x| x.to_string()).collect::<Vec<_>>().concat())
        }
    })
}

/// A notebook cell result (`session.exec`): its outputs as text, or `None` for other maps.
fn cell_result(m: &Map) -> Option<String> {
    if !(m.contains_key("execution_count") && m.contains_key("status")) {
        return None;
    }
    let outputs = m.get("outputs")?.read_lock::<rhai::Array>()?.clone();
    let mut parts: Vec<String> = vec![];
    for o in outputs.iter() {
        let Some(o) = o.read_lock::<Map>() else {
            continue;
        };
        match get_str(&o, "output_type").as_deref() {
            Some("stream") => {
                if let Some(t) = get_str(&o, "text") {
                    parts.push(t.trim_end_matches('\n').to_string());
                }
            }
            Some("execute_result" | "display_data") => {
                if let Some(data) = o.get("data").and_then(|d| d.read_lock::<Map>()) {
                    parts.push(rich_data(&data));
                }
            }
            Some("error") => {
                let name = get_str(&o, "ename").unwrap_or_default();
                let value = get_str(&o, "evalue").unwrap_or_default();
                let tb = o
                    .get("traceback")
                    .and_then(|t| t.read_lock::<rhai::Array>().map(|a| a.clone()))
                    .map(|a| {
                        a.iter()
                            .map(|l| strip_ansi(&l.to_string()))
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .unwrap_or_default();
                if tb.trim().is_empty() {
                    parts.push(format!("{name}: {value}"));
                } else {
                    parts.push(tb);
                }
            }
            _ => {}
        }
    }
    let status = get_str(m, "status").unwrap_or_default();
    if status != "ok" {
        parts.push(format!("[cell status: {status}]"));
    }
    if let Some(note) = get_str(m, "note").filter(|n| !n.is_empty()) {
        parts.push(format!("[note: {note}]"));
    }
    if parts.is_empty() {
        parts.push("[ok, no output]".into());
    }
    Some(parts.join("\n"))
}

/// The best text for a rich output: images by type and size, else `text/plain`.
fn rich_data(data: &Map) -> String {
    let mut shown = vec![];
    for (mime, v) in data.iter() {
        if mime.starts_with("image/") {
            let b64 = get_str(data, mime).unwrap_or_default();
            let size = if mime.as_str() == "image/png" {
                png_size_b64(&b64).map(|(w, h)| format!(" {w}x{h}"))
            } else {
                None
            };
            let _ = v;
            shown.push(format!("[{mime}{}]", size.unwrap_or_default()));
        }
    }
    if let Some(t) = get_str(data, "text/plain") {
        // A figure's `text/plain` is just `<Figure size …>`: keep it, it is short.
        shown.insert(0, t);
    } else if shown.is_empty() {
        let kinds: Vec<String> = data.keys().map(|k| k.to_string()).collect();
        shown.push(format!("[{}]", kinds.join(", ")));
    }
    shown.join("\n")
}

/// Width and height from a base64 PNG's header.
pub fn png_size_b64(b64: &str) -> Option<(u32, u32)> {
    // 24 bytes of header are 32 base64 characters; whitespace may be interleaved.
    let head: String = b64
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(32)
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(head)
        .ok()?;
    png_size(&bytes)
}

/// Width and height from a PNG's signature and IHDR chunk.
pub fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIG: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    if bytes.len() < 24 || bytes[..8] != SIG || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let h = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
    Some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_custom(v: &Dynamic) -> String {
        v.type_name().to_string()
    }

    fn eval(src: &str) -> Dynamic {
        rhai::Engine::new()
            .eval::<Dynamic>(src)
            .unwrap_or(Dynamic::UNIT)
    }

    fn shown(src: &str) -> Option<String> {
        show(&eval(src), &no_custom)
    }

    /// A 640x480 PNG header (signature + IHDR), base64.
    fn png_b64() -> String {
        let mut b = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13];
        b.extend_from_slice(b"IHDR");
        b.extend_from_slice(&640u32.to_be_bytes());
        b.extend_from_slice(&480u32.to_be_bytes());
        b.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    #[test]
    fn scalars_and_strings() {
        assert_eq!(shown("()"), None);
        assert_eq!(shown("42").as_deref(), Some("42"));
        assert_eq!(shown("1.5").as_deref(), Some("1.5"));
        assert_eq!(shown("true").as_deref(), Some("true"));
        assert_eq!(shown(r#""two\nlines""#).as_deref(), Some("two\nlines"));
    }

    #[test]
    fn small_containers_fit_on_one_line() {
        assert_eq!(shown("[1, \"a\", ()]").as_deref(), Some(r#"[1, "a", ()]"#));
        assert_eq!(
            shown("#{ b: 2, a: [1], \"odd key\": #{} }").as_deref(),
            Some(r#"#{ a: [1], b: 2, "odd key": #{} }"#)
        );
    }

    #[test]
    fn wide_containers_get_one_item_per_line() {
        let src = format!(
            "#{{ name: \"{}\", items: [1, 2, 3], nested: #{{ deep: \"{}\" }} }}",
            "y".repeat(60),
            "z".repeat(70)
        );
        let s = shown(&src).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "#{");
        assert!(
            lines.iter().any(|l| l.starts_with("  items: [1, 2, 3],")),
            "{s}"
        );
        assert!(lines.iter().any(|l| l.starts_with("  nested: #{")), "{s}");
        assert_eq!(lines.last().copied(), Some("}"));
    }

    #[test]
    fn long_inner_strings_are_shortened() {
        let s = shown(&format!("[\"{}\"]", "a".repeat(1000))).unwrap_or_default();
        assert!(s.contains("… (700 more chars)"), "{s}");
    }

    #[test]
    fn long_output_is_cut_with_a_note() {
        let text: String = (0..500).map(|i| format!("line {i}\n")).collect();
        let c = cut(&text, 200, 20_000);
        assert_eq!(c.lines().count(), 201);
        assert!(c.ends_with("(assign the value to a variable to look at parts of it)"));
        assert!(
            c.contains("… cut: 300 more line(s)"),
            "{}",
            c.lines().last().unwrap_or("")
        );
        let c = cut(&"x".repeat(50_000), 200, 20_000);
        assert!(c.contains("30000 more character(s)"), "{c:.100}");
        assert_eq!(cut("short", 200, 20_000), "short");
    }

    #[test]
    fn png_header_gives_the_size() {
        assert_eq!(png_size_b64(&png_b64()), Some((640, 480)));
        assert_eq!(png_size_b64("bm90IGEgcG5n"), None);
    }

    #[test]
    fn notebook_results_show_as_text_and_images() {
        let mut engine = rhai::Engine::new();
        engine.set_max_expr_depths(0, 0);
        let src = format!(
            r#"#{{ cell_index: 0, execution_count: 3, status: "ok", ok: true, note: (),
                 text: "hello\n",
                 outputs: [
                   #{{ output_type: "stream", name: "stdout", text: "hello\n" }},
                   #{{ output_type: "display_data", data: #{{ "image/png": "{}", "text/plain": "<Figure size 640x480 with 1 Axes>" }}, metadata: #{{}} }},
                   #{{ output_type: "execute_result", data: #{{ "text/plain": ["4", "2"] }}, execution_count: 3, metadata: #{{}} }}
                 ] }}"#,
            png_b64()
        );
        let v = engine.eval::<Dynamic>(&src).unwrap_or(Dynamic::UNIT);
        assert_eq!(
            show(&v, &no_custom).as_deref(),
            Some("hello\n<Figure size 640x480 with 1 Axes>\n[image/png 640x480]\n42")
        );
        let err = engine
            .eval::<Dynamic>(
                r#"#{ execution_count: 4, status: "error", outputs: [
                     #{ output_type: "error", ename: "ZeroDivisionError", evalue: "division by zero",
                        traceback: ["\u001b[31mZeroDivisionError\u001b[0m: division by zero"] } ] }"#,
            )
            .unwrap_or(Dynamic::UNIT);
        assert_eq!(
            show(&err, &no_custom).as_deref(),
            Some("ZeroDivisionError: division by zero\n[cell status: error]")
        );
    }
}
