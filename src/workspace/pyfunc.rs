//! The `@expose` functions of an interface file, read from its source without running
//! Python (running it would run its module-level code, which loads models): each top-level
//! `def` (or `async def`) decorated with `@expose` or `@expose(name="...")`, with its
//! signature as written and its docstring cleaned like `inspect.getdoc`.
//! [`Skill::from_function`](super::Skill::from_function) makes a skill of one.

use super::pydoc::extract_docstring;

/// One top-level function of a Python file.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PyFunction {
    /// The name it is served under (`@expose(name="x")`, else the `def` name).
    pub(super) name: String,
    /// The name after `def`.
    pub(super) def_name: String,
    /// `(a: int, b: str = "x") -> dict`: the parameters and return annotation as written,
    /// comments dropped and white space outside strings collapsed.
    pub(super) signature: String,
    /// The docstring, cleaned; empty when there is none.
    pub(super) doc: String,
    /// Marked `@expose`.
    pub(super) exposed: bool,
}

/// Every top-level function of `code`, in file order.
pub(super) fn functions(code: &str) -> Vec<PyFunction> {
    let mut out = vec![];
    let mut exposed_as: Option<Option<String>> = None;
    for (start, end) in logical_lines(code) {
        let line = &code[start..end];
        let stripped = line.trim_start();
        if stripped.is_empty() || stripped.starts_with('#') {
            continue;
        }
        if stripped.len() != line.len() {
            // An indented line: inside a block, never a top-level decorator or def.
            exposed_as = None;
            continue;
        }
        if let Some(decorator) = stripped.strip_prefix('@') {
            if let Some(alias) = expose_alias(decorator) {
                exposed_as = Some(alias);
            }
            continue;
        }
        let def = stripped
            .strip_prefix("async ")
            .map(str::trim_start)
            .unwrap_or(stripped)
            .strip_prefix("def ");
        if let Some(rest) = def
            && let Some(f) = function(code, start + (line.len() - rest.len()), &exposed_as)
        {
            out.push(f);
        }
        exposed_as = None;
    }
    out
}

/// `Some(alias)` when the decorator (after `@`) is `expose` or `expose(...)`; the alias is
/// its `name="..."` argument.
fn expose_alias(decorator: &str) -> Option<Option<String>> {
    let rest = decorator.trim().strip_prefix("expose")?.trim_start();
    if rest.is_empty() || rest.starts_with('#') {
        return Some(None);
    }
    let args = rest.strip_prefix('(')?;
    let alias = args.match_indices("name").find_map(|(i, _)| {
        let before = args[..i].trim_end();
        if !(before.is_empty() || before.ends_with(',')) {
            return None;
        }
        let value = args[i + 4..].trim_start().strip_prefix('=')?.trim_start();
        let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let body = &value[1..];
        body.find(quote).map(|end| body[..end].to_string())
    });
    Some(alias)
}

/// The function whose name starts at byte `at` of `code` (just after `def `).
fn function(code: &str, at: usize, exposed_as: &Option<Option<String>>) -> Option<PyFunction> {
    let b = code.as_bytes();
    let rest = &code[at..];
    let name_len = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let def_name = rest[..name_len].to_string();
    let mut i = at + name_len;
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    if b.get(i) != Some(&b'(') {
        return None;
    }
    let close = matching_close(b, i)?;
    let params = split_params(&code[i + 1..close]);
    // The return annotation runs to the `:` that opens the body.
    let mut j = close + 1;
    let mut depth = 0i32;
    while j < b.len() {
        match b[j] {
            b'"' | b'\'' => j = string_end(b, j),
            b'(' | b'[' | b'{' => {
                depth += 1;
                j += 1;
            }
            b')' | b']' | b'}' => {
                depth -= 1;
                j += 1;
            }
            b':' if depth == 0 => break,
            _ => j += 1,
        }
    }
    let returns = collapse(&code[close + 1..j.min(b.len())]);
    let mut signature = format!("({})", params.join(", "));
    if !returns.is_empty() {
        signature.push(' ');
        signature.push_str(&returns);
    }
    let doc = code.get(j + 1..).map(extract_docstring).unwrap_or_default();
    Some(PyFunction {
        name: exposed_as
            .clone()
            .flatten()
            .unwrap_or_else(|| def_name.clone()),
        def_name,
        signature,
        doc,
        exposed: exposed_as.is_some(),
    })
}

/// The parameters between a `def`'s parentheses, one per entry, tidied by [`collapse`].
fn split_params(inner: &str) -> Vec<String> {
    let mut parts = vec![];
    let (mut depth, mut start) = (0i32, 0);
    code_bytes(inner.as_bytes(), 0, |i, c| {
        match c {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            b',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        false
    });
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .map(collapse)
        .filter(|p| !p.is_empty())
        .collect()
}

/// `text` without comments, each run of white space outside strings made one space, and
/// trimmed.
fn collapse(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    let mut space = false;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' => {
                let end = string_end(b, i);
                if space && !out.is_empty() {
                    out.push(' ');
                }
                space = false;
                out.push_str(&text[i..end]);
                i = end;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'\\' if b.get(i + 1) == Some(&b'\n') => {
                space = true;
                i += 2;
            }
            c if c.is_ascii_whitespace() => {
                space = true;
                i += 1;
            }
            _ => {
                let ch_len = text[i..].chars().next().map_or(1, char::len_utf8);
                if space && !out.is_empty() {
                    out.push(' ');
                }
                space = false;
                out.push_str(&text[i..i + ch_len]);
                i += ch_len;
            }
        }
    }
    out
}

/// The byte range of each logical line of `code` (a statement's lines joined by open
/// brackets or a trailing `\`), line ends included.
fn logical_lines(code: &str) -> Vec<(usize, usize)> {
    let b = code.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let mut depth = 0i32;
        while i < b.len() {
            match b[i] {
                b'#' => {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                }
                b'"' | b'\'' => i = string_end(b, i),
                b'(' | b'[' | b'{' => {
                    depth += 1;
                    i += 1;
                }
                b')' | b']' | b'}' => {
                    depth -= 1;
                    i += 1;
                }
                b'\\' if b.get(i + 1) == Some(&b'\n') => i += 2,
                b'\n' if depth <= 0 => {
                    i += 1;
                    break;
                }
                _ => i += 1,
            }
        }
        out.push((start, i));
    }
    out
}

/// The index of the `)` that closes the `(` at `open`.
fn matching_close(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0i32;
    code_bytes(b, open, |_, c| {
        match c {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            _ => {}
        }
        depth == 0
    })
}

/// Calls `f` with each byte of `b` from `from` on that is code (string literals and
/// comments skipped), until it returns true; returns that byte's index.
fn code_bytes(b: &[u8], from: usize, mut f: impl FnMut(usize, u8) -> bool) -> Option<usize> {
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' => {
                i = string_end(b, i);
                continue;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            c if f(i, c) => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The end (exclusive) of the string literal whose opening quote is at `i` (a prefix such
/// as `r` or `f` before it changes nothing here); the end of the line or of `b` for one
/// that is not closed.
fn string_end(b: &[u8], i: usize) -> usize {
    let q = b[i];
    let triple = b.get(i..i + 3) == Some(&[q, q, q][..]);
    let mut j = i + if triple { 3 } else { 1 };
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            c if c == q && !triple => return j + 1,
            c if c == q && b.get(j..j + 3) == Some(&[q, q, q][..]) => return j + 3,
            b'\n' if !triple => return j,
            _ => j += 1,
        }
    }
    b.len()
}

#[cfg(test)]
#[path = "pyfunc_tests.rs"]
mod tests;
