//! Warnings about scripts that compile but likely do not mean what they say. Today one:
//! a `\n` (or `\t`, `\r`) inside a backtick string. Rhai's backtick strings have no escapes,
//! so it stays a backslash and a letter; a Seer user translating `f"...\n..."` into a
//! template sends `\n` literally (to a model, a file, a cell).
//!
//! A small scanner over the source, not the AST: a string constant in the AST no longer
//! says whether it was written with backticks.

/// One warning, ready to print after `warning: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl Warning {
    /// `file:line:col: message`.
    pub fn located(&self, file: &str) -> String {
        format!("{file}:{}:{}: {}", self.line, self.col, self.message)
    }
}

struct Scanner {
    chars: Vec<char>,
    i: usize,
    line: usize,
    col: usize,
    out: Vec<Warning>,
}

impl Scanner {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.i).copied()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    /// Code until the end, or until the `}` closing an interpolation (when `in_interp`).
    fn code(&mut self, in_interp: bool) {
        let mut depth = 0usize;
        while let Some(c) = self.peek(0) {
            match c {
                '/' if self.peek(1) == Some('/') => {
                    while let Some(c) = self.peek(0) {
                        if c == '\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                '/' if self.peek(1) == Some('*') => self.block_comment(),
                '"' => {
                    self.bump();
                    self.quoted('"');
                }
                '\'' => {
                    self.bump();
                    self.quoted('\'');
                }
                '`' => {
                    self.bump();
                    self.backtick();
                }
                '{' => {
                    depth += 1;
                    self.bump();
                }
                '}' => {
                    self.bump();
                    if depth == 0 {
                        if in_interp {
                            return;
                        }
                    } else {
                        depth -= 1;
                    }
                }
                _ => {
                    self.bump();
                }
            }
        }
    }

    /// A block comment (Rhai's nest).
    fn block_comment(&mut self) {
        let mut depth = 0usize;
        while let Some(c) = self.peek(0) {
            if c == '/' && self.peek(1) == Some('*') {
                depth += 1;
                self.bump();
                self.bump();
            } else if c == '*' && self.peek(1) == Some('/') {
                self.bump();
                self.bump();
                depth -= 1;
                if depth == 0 {
                    return;
                }
            } else {
                self.bump();
            }
        }
    }

    /// A `"..."` string or `'.'` character, after its opening quote.
    fn quoted(&mut self, end: char) {
        while let Some(c) = self.bump() {
            if c == '\\' {
                self.bump();
            } else if c == end {
                return;
            }
        }
    }

    /// A backtick string after its opening backtick, with its `${...}` interpolations.
    fn backtick(&mut self) {
        while let Some(c) = self.peek(0) {
            match c {
                '`' => {
                    self.bump();
                    return;
                }
                '$' if self.peek(1) == Some('{') => {
                    self.bump();
                    self.bump();
                    self.code(true);
                }
                '\\' if matches!(self.peek(1), Some('n' | 't' | 'r')) => {
                    let escape = format!("\\{}", self.peek(1).unwrap_or('n'));
                    self.out.push(Warning {
                        line: self.line,
                        col: self.col,
                        message: format!(
                            "`{escape}` in a backtick string stays a backslash and a letter: Rhai's \
                             backtick strings have no escapes (unlike Python's f-strings); for a \
                             line break write a real one inside the backticks, or use a \"...\" \
                             string, where `{escape}` is an escape"
                        ),
                    });
                    self.bump();
                    self.bump();
                }
                _ => {
                    self.bump();
                }
            }
        }
    }
}

/// The warnings for a script's source, in order.
pub fn warnings(src: &str) -> Vec<Warning> {
    let mut s = Scanner {
        chars: src.chars().collect(),
        i: 0,
        line: 1,
        col: 1,
        out: vec![],
    };
    s.code(false);
    s.out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(src: &str) -> Vec<(usize, usize)> {
        warnings(src).iter().map(|w| (w.line, w.col)).collect()
    }

    #[test]
    fn a_backslash_n_in_a_backtick_string_is_found() {
        assert_eq!(at("let p = `a\\n\\nb`;"), vec![(1, 11), (1, 13)]);
        assert_eq!(at("print(`x`);\nlet t = `tab\\there`;"), vec![(2, 13)]);
        // Also after an interpolation, in a string spanning lines.
        assert_eq!(at("let t = `${a}\nand ${b}\\n`;"), vec![(2, 9)]);
        let w = &warnings("`\\n`")[0];
        assert_eq!(
            w.located("main.rhai"),
            "main.rhai:1:2: `\\n` in a backtick string stays a backslash and a letter: Rhai's \
             backtick strings have no escapes (unlike Python's f-strings); for a line break write \
             a real one inside the backticks, or use a \"...\" string, where `\\n` is an escape"
        );
    }

    #[test]
    fn escapes_elsewhere_are_not_warned_about() {
        for src in [
            "let a = \"x\\ny\";",
            "let c = '\\n';",
            "// `a\\nb` in a comment\nlet x = 1;",
            "/* `a\\nb` /* nested */ `c\\n` */ let x = 1;",
            // A "..." string inside an interpolation is code, not the template.
            "print(`lines: ${text.split(\"\\n\").len()}`);",
            "print(`${ #{ a: \"\\n\" }.a }`);",
            "let q = \"a `quoted\\n` word\";",
            "let s = `a \\\\ b`;",
        ] {
            assert_eq!(at(src), vec![], "{src}");
        }
    }
}
