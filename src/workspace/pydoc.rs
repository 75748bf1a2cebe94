//! Module docstrings read from Python source without running Python: the first string
//! literal, unescaped and cleaned like `inspect.cleandoc`.

/// The module docstring of Python source: the first statement, if it is a string literal
/// (`"""`, `'''`, `"`, `'`, optionally with an `r`/`u` prefix), cleaned like
/// `inspect.cleandoc`. Empty when there is none.
pub fn extract_docstring(code: &str) -> String {
    let mut rest = code.strip_prefix('\u{feff}').unwrap_or(code);
    loop {
        rest = rest.trim_start_matches([' ', '\t', '\r', '\n', '\x0c']);
        if rest.starts_with('#') {
            rest = rest.find('\n').map_or("", |i| &rest[i + 1..]);
        } else {
            break;
        }
    }
    let prefix_len = rest
        .char_indices()
        .find(|&(_, c)| !c.is_ascii_alphabetic())
        .map_or(rest.len(), |(i, _)| i);
    let raw = match rest[..prefix_len].to_ascii_lowercase().as_str() {
        "" | "u" => false,
        "r" => true,
        _ => return String::new(),
    };
    let rest = &rest[prefix_len..];
    let quote = ["\"\"\"", "'''", "\"", "'"]
        .into_iter()
        .find(|q| rest.starts_with(q));
    let Some(quote) = quote else {
        return String::new();
    };
    let body = &rest[quote.len()..];
    let mut chars = body.char_indices();
    let mut end = None;
    while let Some((i, c)) = chars.next() {
        if c == '\\' {
            chars.next();
        } else if body[i..].starts_with(quote) {
            end = Some(i);
            break;
        } else if c == '\n' && quote.len() == 1 {
            return String::new();
        }
    }
    let Some(end) = end else {
        return String::new();
    };
    let content = &body[..end];
    let text = if raw {
        content.to_string()
    } else {
        unescape_py(content)
    };
    clean_doc(&text)
}

/// Python's escapes in a non-raw string literal (unknown escapes stay as written).
fn unescape_py(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            out.push('\\');
            break;
        };
        let hex = |chars: &mut std::iter::Peekable<std::str::Chars>, n: usize| {
            let digits: String = (0..n).filter_map(|_| chars.next()).collect();
            u32::from_str_radix(&digits, 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or(digits)
        };
        match e {
            '\n' => {}
            '\\' => out.push('\\'),
            '\'' => out.push('\''),
            '"' => out.push('"'),
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'v' => out.push('\x0b'),
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                match hex(&mut chars, n) {
                    Ok(ch) => out.push(ch),
                    Err(digits) => {
                        out.push('\\');
                        out.push(e);
                        out.push_str(&digits);
                    }
                }
            }
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    out
}

/// `inspect.cleandoc`: tabs expanded, the first line stripped, the common indentation of
/// the other lines removed, blank lines at both ends dropped.
fn clean_doc(doc: &str) -> String {
    let expanded: Vec<String> = doc.split('\n').map(expand_tabs).collect();
    let lines: Vec<&str> = expanded.iter().map(|l| l.trim_end_matches('\r')).collect();
    let margin = lines
        .iter()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        let line = if i == 0 {
            l.trim_start()
        } else if l.len() >= margin && l.is_char_boundary(margin) {
            &l[margin..]
        } else {
            l.trim_start()
        };
        out.push(line.trim_end().to_string());
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    let first = out.iter().position(|l| !l.is_empty()).unwrap_or(out.len());
    out[first..].join("\n")
}

/// Python's `str.expandtabs()`: tab stops every 8 columns.
fn expand_tabs(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut col = 0;
    for c in line.chars() {
        if c == '\t' {
            let n = 8 - col % 8;
            out.extend(std::iter::repeat_n(' ', n));
            col += n;
        } else {
            out.push(c);
            col += 1;
        }
    }
    out
}

#[cfg(test)]
#[path = "pydoc_tests.rs"]
mod tests;
