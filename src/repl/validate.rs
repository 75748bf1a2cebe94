//! Is the input a whole Rhai entry, or does Enter continue it on a new line? Open
//! brackets, braces and parens, unterminated strings, backtick templates (with their
//! `${…}` parts) and block comments continue the input; brackets inside strings, character
//! literals and comments do not count. A closing bracket that matches nothing makes the
//! input complete, so the compiler reports it with its position.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completeness {
    Complete,
    Incomplete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// An open `(`, `[` or `{`, by its closer.
    Bracket(char),
    /// Inside a backtick template's text.
    Template,
    /// Inside a template's `${ … }`: code until the matching `}`.
    Interp,
}

pub fn check(input: &str) -> Completeness {
    if input.trim_start().starts_with(':') {
        return Completeness::Complete;
    }
    let chars: Vec<char> = input.chars().collect();
    let mut stack: Vec<Frame> = vec![];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if stack.last() == Some(&Frame::Template) {
            match (c, next) {
                ('\\', _) => i += 1,
                ('`', _) => {
                    stack.pop();
                }
                ('$', Some('{')) => {
                    stack.push(Frame::Interp);
                    i += 1;
                }
                _ => {}
            }
            i += 1;
            continue;
        }
        match (c, next) {
            ('"', _) => match skip_quoted(&chars, i + 1, '"') {
                Some(end) => i = end,
                None => return Completeness::Incomplete,
            },
            ('\'', _) => match skip_quoted(&chars, i + 1, '\'') {
                Some(end) => i = end,
                // An unterminated character literal is an error, not a continuation.
                None => return Completeness::Complete,
            },
            ('/', Some('/')) => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            ('/', Some('*')) => match skip_block_comment(&chars, i + 2) {
                Some(end) => i = end,
                None => return Completeness::Incomplete,
            },
            ('`', _) => stack.push(Frame::Template),
            ('(', _) => stack.push(Frame::Bracket(')')),
            ('[', _) => stack.push(Frame::Bracket(']')),
            ('{', _) => stack.push(Frame::Bracket('}')),
            (')' | ']' | '}', _) => match stack.last() {
                Some(Frame::Bracket(close)) if *close == c => {
                    stack.pop();
                }
                Some(Frame::Interp) if c == '}' => {
                    stack.pop();
                }
                // Unmatched: let the compiler say where.
                _ => return Completeness::Complete,
            },
            _ => {}
        }
        i += 1;
    }
    if stack.is_empty() {
        Completeness::Complete
    } else {
        Completeness::Incomplete
    }
}

/// From just after an opening quote: the index of the closing quote, if any.
fn skip_quoted(chars: &[char], mut i: usize, quote: char) -> Option<usize> {
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            c if c == quote => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// From just after `/*`: the index of the closing `/`, with nesting (Rhai nests them).
fn skip_block_comment(chars: &[char], mut i: usize) -> Option<usize> {
    let mut depth = 1;
    while i < chars.len() {
        match (chars[i], chars.get(i + 1)) {
            ('/', Some('*')) => {
                depth += 1;
                i += 1;
            }
            ('*', Some('/')) => {
                depth -= 1;
                i += 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::Completeness::{Complete, Incomplete};
    use super::*;

    #[test]
    fn table() {
        let cases = [
            ("", Complete),
            ("1 + 1", Complete),
            ("let x = 1;", Complete),
            ("fn f(x) {", Incomplete),
            ("fn f(x) {\n  x + 1\n}", Complete),
            ("let m = #{", Incomplete),
            ("let m = #{ a: [1, 2", Incomplete),
            ("let m = #{ a: [1, 2] }", Complete),
            ("print(\"(\")", Complete),
            ("print(\"{ [ (\")", Complete),
            ("print(\"{ [ (\"", Incomplete),
            ("print(\"unterminated", Incomplete),
            ("print(\"esc \\\" (\")", Complete),
            ("let c = '(';", Complete),
            ("let c = '}';", Complete),
            ("// a comment with (", Complete),
            ("let x = 1; // {", Complete),
            ("/* block ( comment */ 1", Complete),
            ("/* open block", Incomplete),
            ("/* nested /* twice */ still open", Incomplete),
            ("/* nested /* twice */ closed */", Complete),
            ("`template", Incomplete),
            ("`multi\nline`", Complete),
            ("`x = ${ f(1) }`", Complete),
            ("`x = ${ #{a: 1}.a }`", Complete),
            ("`x = ${ f(", Incomplete),
            ("`brace } inside`", Complete),
            ("`a ${ \"}\" } b`", Complete),
            ("foo)", Complete),
            ("(]", Complete),
            (":help exec", Complete),
            (":load x(", Complete),
            ("if x {\n  print(1);\n} else {", Incomplete),
        ];
        for (input, want) in cases {
            assert_eq!(check(input), want, "input: {input:?}");
        }
    }
}
