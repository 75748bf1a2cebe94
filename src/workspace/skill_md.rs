//! `SKILL.md` front matter: the `---`-delimited YAML header of a skill. Only the small part
//! of YAML that skills use is read (`name` and `description`, plain, quoted or `|`/`>`
//! blocks), and [`yaml_scalar`] writes a value back.

use std::collections::HashMap;
use std::fmt::Write as _;

use anyhow::{Result, bail};

/// The parts of a `SKILL.md` this module reads.
#[derive(Debug, PartialEq)]
pub(super) struct FrontMatter {
    pub(super) name: Option<String>,
    pub(super) description: Option<String>,
    pub(super) body: String,
}

/// Splits `---\n<front matter>\n---\n<body>`; `None` when the text does not start with a
/// `---` line. Only `name` and `description` are read; values may be plain, quoted or
/// `|`/`>` blocks.
pub(super) fn parse_front_matter(text: &str) -> Result<Option<FrontMatter>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    let Some(first) = lines.next() else {
        return Ok(None);
    };
    if first.trim_end() != "---" {
        return Ok(None);
    }
    let mut consumed = first.len();
    let mut header: Vec<&str> = vec![];
    let mut closed = false;
    for line in lines {
        consumed += line.len();
        let t = line.trim_end();
        if t == "---" || t == "..." {
            closed = true;
            break;
        }
        header.push(line.trim_end_matches(['\n', '\r']));
    }
    if !closed {
        bail!(
            "its front matter (opened by `---` on the first line) is never closed; end it with \
             a line `---`"
        );
    }
    let keys = parse_yamlish(&header);
    let get = |k: &str| keys.get(k).filter(|v| !v.trim().is_empty()).cloned();
    Ok(Some(FrontMatter {
        name: get("name").map(|n| n.trim().to_string()),
        description: get("description"),
        body: text[consumed..]
            .trim_start_matches(['\r', '\n'])
            .to_string(),
    }))
}

/// Top-level `key: value` pairs of a small YAML mapping.
fn parse_yamlish(lines: &[&str]) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        if line.trim().is_empty() || line.starts_with([' ', '\t', '#']) {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let start = i;
        while i < lines.len() && (lines[i].starts_with([' ', '\t']) || lines[i].trim().is_empty()) {
            i += 1;
        }
        let mut cont = &lines[start..i];
        while let Some((last, rest)) = cont.split_last() {
            if last.trim().is_empty() {
                cont = rest;
            } else {
                break;
            }
        }
        map.insert(key.trim().to_string(), yaml_value(value.trim(), cont));
    }
    map
}

fn yaml_value(first: &str, cont: &[&str]) -> String {
    if first.starts_with('|') || first.starts_with('>') {
        let indent = cont
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start().len())
            .min()
            .unwrap_or(0);
        let lines: Vec<&str> = cont
            .iter()
            .map(|l| l.get(indent..).unwrap_or("").trim_end())
            .collect();
        if first.starts_with('|') {
            return lines.join("\n");
        }
        let mut out = String::new();
        let mut after_break = true;
        for l in lines {
            if l.is_empty() {
                out.push('\n');
                after_break = true;
            } else {
                if !after_break {
                    out.push(' ');
                }
                out.push_str(l);
                after_break = false;
            }
        }
        return out;
    }
    let mut parts = vec![first.to_string()];
    parts.extend(cont.iter().map(|l| l.trim().to_string()));
    if first.starts_with('"') || first.starts_with('\'') {
        let joined = parts
            .iter()
            .filter(|p| !p.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join(" ");
        return unquote_yaml(&joined);
    }
    let first = match first.find(" #") {
        Some(i) => first[..i].trim_end(),
        None => first,
    };
    parts[0] = first.to_string();
    parts.retain(|p| !p.is_empty());
    parts.join(" ")
}

/// The value of a single- or double-quoted YAML scalar (text after the closing quote is
/// ignored; an unclosed quote takes the rest).
fn unquote_yaml(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    match chars.next() {
        Some('\'') => {
            let mut chars = chars.peekable();
            while let Some(c) = chars.next() {
                if c == '\'' {
                    if chars.peek() == Some(&'\'') {
                        chars.next();
                        out.push('\'');
                    } else {
                        break;
                    }
                } else {
                    out.push(c);
                }
            }
        }
        Some('"') => {
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => {
                        let Some(e) = chars.next() else { break };
                        let mut hex = |n: usize| {
                            let d: String = chars.by_ref().take(n).collect();
                            u32::from_str_radix(&d, 16).ok().and_then(char::from_u32)
                        };
                        let decoded = match e {
                            'n' => Some('\n'),
                            't' => Some('\t'),
                            'r' => Some('\r'),
                            '0' => Some('\0'),
                            '"' => Some('"'),
                            '\\' => Some('\\'),
                            '/' => Some('/'),
                            ' ' => Some(' '),
                            'x' => hex(2),
                            'u' => hex(4),
                            'U' => hex(8),
                            _ => None,
                        };
                        match decoded {
                            Some(ch) => out.push(ch),
                            None => {
                                out.push('\\');
                                out.push(e);
                            }
                        }
                    }
                    c => out.push(c),
                }
            }
        }
        _ => return s.to_string(),
    }
    out
}

/// `s` as a YAML scalar: plain when that reads back as the same string, else
/// double-quoted.
pub(super) fn yaml_scalar(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let plain = !s.is_empty()
        && s.trim() == s
        && !s.starts_with([
            '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%',
            '@', '`',
        ])
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.ends_with(':')
        && !s.chars().any(char::is_control)
        && !matches!(
            lower.as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~"
        )
        && s.parse::<f64>().is_err();
    if plain {
        return s.to_string();
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
#[path = "skill_md_tests.rs"]
mod tests;
