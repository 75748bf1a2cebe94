//! Python source text for the code seer generates: literals that embed any string or path
//! safely ([`py_str`], [`py_path`], [`py_bool`]) and the name checks ([`is_identifier`],
//! [`is_module_name`]). A leaf module: the workspace, the sandbox and scoped sessions all
//! use it.

use std::fmt::Write as _;
use std::path::Path;

/// Python's reserved keywords: identifiers that cannot be bound or imported.
pub const PY_KEYWORDS: [&str; 35] = [
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// An ASCII Python identifier: a letter or `_`, then letters, digits or `_` (keywords
/// included; see [`is_module_name`]).
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Something `import <s>` accepts: an ASCII identifier that is not a keyword.
pub fn is_module_name(s: &str) -> bool {
    is_identifier(s) && !PY_KEYWORDS.contains(&s)
}

/// `True` or `False`.
pub fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// A Python string literal for `s`, in pure ASCII: quotes, backslashes and control
/// characters are escaped, and non-ASCII characters become `\u`/`\U` escapes.
pub fn py_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_ascii() => out.push(c),
            c if (c as u32) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('\'');
    out
}

/// A Python expression for a path: a string literal, or `os.fsdecode(b'...')` for a path
/// that is not UTF-8.
pub fn py_path(p: &Path) -> String {
    if let Some(s) = p.to_str() {
        return py_str(s);
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let mut lit = String::from("__import__('os').fsdecode(b'");
        for &b in p.as_os_str().as_bytes() {
            match b {
                b'\\' => lit.push_str("\\\\"),
                b'\'' => lit.push_str("\\'"),
                0x20..=0x7e => lit.push(char::from(b)),
                _ => {
                    let _ = write!(lit, "\\x{b:02x}");
                }
            }
        }
        lit.push_str("')");
        lit
    }
    #[cfg(not(unix))]
    {
        py_str(&p.to_string_lossy())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["x", "_", "model", "m2", "_private", "Class"] {
            assert!(is_identifier(ok) && is_module_name(ok), "{ok}");
        }
        for bad in ["", "2x", "has space", "a-b", "a.b", "é", "x\n"] {
            assert!(!is_identifier(bad) && !is_module_name(bad), "{bad:?}");
        }
        // Keywords are identifiers, but `import class` cannot work.
        assert!(is_identifier("class") && !is_module_name("class"));
        assert!(PY_KEYWORDS.iter().all(|k| is_identifier(k)));
    }

    #[test]
    fn py_str_table() {
        let cases: &[(&str, &str)] = &[
            ("plain", "'plain'"),
            ("", "''"),
            ("it's", r"'it\'s'"),
            ("say \"hi\"", r#"'say "hi"'"#),
            ("a\\b", r"'a\\b'"),
            ("l1\nl2\r\n", r"'l1\nl2\r\n'"),
            ("tab\t", r"'tab\t'"),
            ("nul\0bell\x07del\x7f", r"'nul\x00bell\x07del\x7f'"),
            ("é", r"'\u00e9'"),
            ("日本", r"'\u65e5\u672c'"),
            ("🦀", r"'\U0001f980'"),
            ("\u{2028}", r"'\u2028'"),
        ];
        for (s, want) in cases {
            assert_eq!(py_str(s), *want, "for {s:?}");
            assert!(py_str(s).is_ascii());
        }
        assert_eq!(py_path(Path::new("/a/b c")), "'/a/b c'");
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let p = Path::new(std::ffi::OsStr::from_bytes(b"/x\xff'\\"));
            assert_eq!(py_path(p), r"__import__('os').fsdecode(b'/x\xff\'\\')");
        }
    }
}
