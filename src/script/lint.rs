//! Warnings about scripts that compile but likely do not mean what they say, most of them
//! Python habits that Rhai accepts silently:
//!
//! - a `\n` (or `\t`, `\r`) inside a backtick string. Rhai's backtick strings have no
//!   escapes, so it stays a backslash and a letter; a Seer user translating `f"...\n..."`
//!   into a template sends `\n` literally (to a model, a file, a cell). A small scanner over
//!   the source, not the AST: a string constant in the AST no longer says whether it was
//!   written with backticks.
//! - the value of a method that works in place and returns `()` (`let t = s.trim();`,
//!   `s.trim() == ""`, `lines.map(|l| l.trim())`): see [`IN_PLACE`].
//! - `s.split(sep, n)`, whose count is of pieces in Rhai and of splits in Python.
//!
//! The last two walk the AST (rhai's `internals`), with the source at hand for what the AST
//! does not keep: the text of a call, and whether a `;` ends it.

use std::collections::HashSet;

use rhai::{ASTNode, Expr, FnCallExpr, Position, Stmt};

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

/// The warnings for a script's source, in order (none from the AST when it does not compile:
/// the syntax errors come first).
pub fn warnings(src: &str) -> Vec<Warning> {
    let mut s = Scanner {
        chars: src.chars().collect(),
        i: 0,
        line: 1,
        col: 1,
        out: vec![],
    };
    s.code(false);
    let mut out = s.out;
    out.extend(ast_warnings(src));
    out.sort_by_key(|w| (w.line, w.col));
    out.dedup();
    out
}

/// An in-place method: its name, and how to get the new value instead (see [`IN_PLACE`]).
type InPlace = (&'static str, Option<fn(&str) -> String>);

/// Rhai's methods that change their receiver (a string, and for some an array or a char)
/// in place and return `()`, where Python's return a new value: (name, a Rhai method that
/// returns the new value instead, given the call's arguments). Left out: `remove` and
/// `retain`, which return the removed items for arrays and maps.
const IN_PLACE: &[InPlace] = &[
    ("trim", None),
    ("replace", None),
    ("make_upper", Some(|_| "to_upper()".to_string())),
    ("make_lower", Some(|_| "to_lower()".to_string())),
    ("pad", None),
    ("crop", Some(|args| format!("sub_string({args})"))),
    ("truncate", Some(|args| format!("sub_string(0, {args})"))),
    ("clear", None),
];

/// The source as characters, with where each line starts, to read calls back by position.
struct Source {
    chars: Vec<char>,
    line_starts: Vec<usize>,
}

/// The text of a call read back from the source.
struct Call {
    /// Between the parentheses, spaces collapsed.
    args: String,
    /// The first character after the closing parenthesis that is not space or a comment
    /// (`None` at the end of the script).
    next: Option<char>,
}

impl Source {
    fn new(src: &str) -> Self {
        let chars: Vec<char> = src.chars().collect();
        let mut line_starts = vec![0];
        line_starts.extend(
            chars
                .iter()
                .enumerate()
                .filter(|(_, c)| **c == '\n')
                .map(|(i, _)| i + 1),
        );
        Self { chars, line_starts }
    }

    /// The index of a position (rhai's lines and columns count from 1, in characters).
    fn index(&self, pos: Position) -> Option<usize> {
        let start = *self.line_starts.get(pos.line()?.checked_sub(1)?)?;
        let i = start + pos.position()?.checked_sub(1)?;
        (i < self.chars.len()).then_some(i)
    }

    fn peek(&self, i: usize) -> Option<char> {
        self.chars.get(i).copied()
    }

    /// How many `#` start at `i`.
    fn hashes(&self, i: usize) -> usize {
        self.chars
            .get(i..)
            .map_or(0, |rest| rest.iter().take_while(|c| **c == '#').count())
    }

    /// The index after whatever starts at `i` when it is a string, a character, a
    /// template or a comment (so brackets inside it do not count), else `i + 1`.
    fn skip(&self, i: usize) -> usize {
        match self.peek(i) {
            Some(q @ ('"' | '\'')) => {
                let mut j = i + 1;
                while let Some(c) = self.peek(j) {
                    j += 1;
                    if c == '\\' {
                        j += 1;
                    } else if c == q {
                        break;
                    }
                }
                j
            }
            Some('`') => {
                let mut j = i + 1;
                while let Some(c) = self.peek(j) {
                    if c == '`' {
                        return j + 1;
                    }
                    if c == '$' && self.peek(j + 1) == Some('{') {
                        j = self.closing(j + 2, '{', '}');
                    } else {
                        j += 1;
                    }
                }
                j
            }
            // A raw string: `#"..."#`, with as many `#` on each side.
            Some('#') if self.peek(i + self.hashes(i)) == Some('"') => {
                let n = self.hashes(i);
                let mut j = i + n + 1;
                while j < self.chars.len() {
                    if self.chars[j] == '"' && self.hashes(j + 1) >= n {
                        return j + 1 + n;
                    }
                    j += 1;
                }
                j
            }
            Some('/') if self.peek(i + 1) == Some('/') => {
                let mut j = i;
                while self.peek(j).is_some_and(|c| c != '\n') {
                    j += 1;
                }
                j
            }
            Some('/') if self.peek(i + 1) == Some('*') => {
                let mut depth = 0usize;
                let mut j = i;
                while j < self.chars.len() {
                    if self.peek(j) == Some('/') && self.peek(j + 1) == Some('*') {
                        depth += 1;
                        j += 2;
                    } else if self.peek(j) == Some('*') && self.peek(j + 1) == Some('/') {
                        depth -= 1;
                        j += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        j += 1;
                    }
                }
                j
            }
            _ => i + 1,
        }
    }

    /// The index after the `close` that matches an `open` just before `i`.
    fn closing(&self, mut i: usize, open: char, close: char) -> usize {
        let mut depth = 1usize;
        while let Some(c) = self.peek(i) {
            if c == open {
                depth += 1;
            } else if c == close {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            i = self.skip(i);
        }
        i
    }

    /// The call whose name starts at `pos`.
    fn call(&self, pos: Position) -> Option<Call> {
        let mut i = self.index(pos)?;
        while self
            .peek(i)
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
        {
            i += 1;
        }
        while self.peek(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        if self.peek(i) != Some('(') {
            return None;
        }
        let end = self.closing(i + 1, '(', ')');
        let inner: String = self.chars[i + 1..end.saturating_sub(1).max(i + 1)]
            .iter()
            .collect();
        let args = inner.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut j = end;
        loop {
            match self.peek(j) {
                Some(c) if c.is_whitespace() => j += 1,
                Some('/') if matches!(self.peek(j + 1), Some('/' | '*')) => j = self.skip(j),
                other => break Some(Call { args, next: other }),
            }
        }
    }

    /// The text from `from` up to (not including) `to`, spaces collapsed.
    fn between(&self, from: Position, to: Position) -> Option<String> {
        let (a, b) = (self.index(from)?, self.index(to)?);
        let text: String = self.chars.get(a..b)?.iter().collect();
        Some(text.split_whitespace().collect::<Vec<_>>().join(""))
    }
}

/// A receiver a statement can call an in-place method on: a variable, `this`, or a
/// property path (`m.name`).
fn is_place(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').all(|part| {
            part.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_alphanumeric() || c == '_')
        })
}

/// Whether the value of the expression at `path[at]` is used: assigned, compared, passed,
/// chained, returned. A statement on its own is not, except the last one of a function
/// or closure body without a `;` (the body's value: `|l| l.trim()`).
fn value_used(path: &[ASTNode], mut at: usize, src: &Source, call_pos: Position) -> bool {
    // Whether `e` is the node `n`.
    let is = |e: &Expr, n: &ASTNode| matches!(n, ASTNode::Expr(x) if std::ptr::eq(e, *x));
    // Not ended by a `;` (and not the end of the script).
    let unterminated = || {
        src.call(call_pos)
            .is_some_and(|c| c.next.is_some_and(|n| n != ';'))
    };
    loop {
        // Up the chain `a.b.f()`: the call is the chain's value when it is its last link.
        while at > 0 {
            match &path[at - 1] {
                ASTNode::Expr(Expr::Dot(b, ..) | Expr::Index(b, ..)) => {
                    if is(&b.lhs, &path[at]) {
                        // `s.trim().len()`, `s.trim()[0]`: called on the `()`.
                        return true;
                    }
                    at -= 1;
                }
                _ => break,
            }
        }
        if at == 0 {
            // A call statement `trim(s)` at the top of a function body or of the script.
            return unterminated();
        }
        match &path[at - 1] {
            // The statement's value: the body's when it is the last one of a function,
            // without a `;`. At the top of the walk (a function's or the script's own
            // statements), only a function body's last statement is followed by something
            // else than `;` (by `}`, or in a closure `|l| l.trim()` by `)` or `,`).
            ASTNode::Stmt(Stmt::Expr(_)) if at == 1 => return unterminated(),
            // The last statement of a block is the block's value (an interpolation
            // `${s.trim()}`, a `switch` arm): used when the block is.
            ASTNode::Stmt(stmt @ Stmt::Expr(_)) => match &path[at - 2] {
                ASTNode::Expr(Expr::Stmt(block))
                    if block
                        .statements()
                        .last()
                        .is_some_and(|last| std::ptr::eq(last, *stmt)) =>
                {
                    at -= 2;
                }
                _ => return false,
            },
            // A `switch` arm is used only when the switch is; its matched value always is.
            ASTNode::Stmt(Stmt::Switch(x, ..)) => return is(&x.0, &path[at]),
            _ => return true,
        }
    }
}

/// The in-place method `f` names, unless the script defines a function of that name.
fn in_place(f: &FnCallExpr, defined: &HashSet<String>) -> Option<&'static InPlace> {
    if f.is_operator_call() || !f.namespace.is_empty() || defined.contains(f.name.as_str()) {
        return None;
    }
    IN_PLACE.iter().find(|(n, _)| *n == f.name.as_str())
}

/// The warning for an in-place method whose value is used. `receiver` is its receiver's
/// source text when it is a place a statement can change.
fn in_place_warning(
    name: &str,
    alt: Option<fn(&str) -> String>,
    receiver: Option<&str>,
    args: &str,
) -> String {
    let call = format!("{name}({args})");
    match receiver {
        Some(r) => {
            let alt = alt
                .map(|a| format!(" (or `{r}.{}`, which returns a new value)", a(args)))
                .unwrap_or_default();
            format!(
                "`{r}.{call}` changes `{r}` in place and returns `()`, so its value here is \
                 `()`; call `{r}.{call};` on its own line, then use `{r}`{alt}"
            )
        }
        None => {
            let alt = alt
                .map(|a| format!(" (or `.{}`, which returns a new value)", a(args)))
                .unwrap_or_default();
            format!(
                "`{name}` changes its receiver in place and returns `()`, so its value here \
                 is `()`; put the value in a variable `s`, call `s.{call};` on its own line, \
                 then use `s`{alt}"
            )
        }
    }
}

/// [`in_place_warning`] for an in-place method called as a function, `trim(s)`.
fn fn_call_warning(name: &str, alt: Option<fn(&str) -> String>, call: Option<Call>) -> String {
    let receiver = call.as_ref().and_then(|c| {
        let (r, rest) = c.args.split_once(',').unwrap_or((&c.args, ""));
        is_place(r.trim()).then(|| (r.trim(), rest.trim()))
    });
    match receiver {
        Some((r, rest)) => in_place_warning(name, alt, Some(r), rest),
        None => in_place_warning(name, alt, None, "…"),
    }
}

/// The warning for `split(sep, count)`: Rhai counts pieces, Python splits.
fn split_warning(args: &str, count: &Expr) -> String {
    let sep = args
        .rsplit_once(',')
        .map(|(s, _)| s.trim().to_string())
        .unwrap_or_else(|| "sep".to_string());
    match count {
        Expr::IntegerConstant(n, _) => format!(
            "`split({sep}, {n})` gives at most {n} piece{}: Rhai's count is of pieces, not of \
             splits as in Python; Python's `split({sep}, {n})` is `split({sep}, {})` in Rhai",
            if *n == 1 { "" } else { "s" },
            n.saturating_add(1)
        ),
        _ => format!(
            "`split({args})` gives at most that many pieces: Rhai's count is of pieces, not of \
             splits as in Python; Python's `split(sep, n)` is `split(sep, n + 1)` in Rhai"
        ),
    }
}

/// The warnings read from the AST (nothing when the script does not compile).
fn ast_warnings(src: &str) -> Vec<Warning> {
    let mut engine = super::syntax_engine();
    // The AST as written: the optimizer would fold and drop statements.
    engine.set_optimization_level(rhai::OptimizationLevel::None);
    let Ok(ast) = engine.compile(src) else {
        return vec![];
    };
    let defined: HashSet<String> = ast.iter_functions().map(|f| f.name.to_string()).collect();
    let source = Source::new(src);
    let mut out = vec![];
    let mut warn = |pos: Position, message: String| {
        out.push(Warning {
            line: pos.line().unwrap_or(0),
            col: pos.position().unwrap_or(0),
            message,
        });
    };
    ast.walk(&mut |path: &[ASTNode]| {
        let Some(at) = path.len().checked_sub(1) else {
            return true;
        };
        match &path[at] {
            ASTNode::Expr(Expr::MethodCall(f, pos)) => {
                if let Some((name, alt)) = in_place(f, &defined)
                    && value_used(path, at, &source, *pos)
                {
                    // The receiver: from the start of the chain to the `.` before the name.
                    let start = path[..at]
                        .iter()
                        .rev()
                        .take_while(|n| matches!(n, ASTNode::Expr(Expr::Dot(..) | Expr::Index(..))))
                        .last()
                        .and_then(|n| match n {
                            ASTNode::Expr(e) => Some(e.start_position()),
                            _ => None,
                        });
                    let receiver = start
                        .and_then(|s| source.between(s, *pos))
                        .map(|r| r.trim_end_matches(['.', '?']).to_string())
                        .filter(|r| is_place(r));
                    let args = source.call(*pos).map(|c| c.args).unwrap_or_default();
                    warn(
                        *pos,
                        in_place_warning(name, *alt, receiver.as_deref(), &args),
                    );
                }
                if f.name == "split"
                    && f.args.len() == 2
                    && !defined.contains("split")
                    && let Some(c) = source.call(*pos)
                {
                    warn(*pos, split_warning(&c.args, &f.args[1]));
                }
            }
            ASTNode::Expr(Expr::FnCall(f, pos)) => {
                if let Some((name, alt)) = in_place(f, &defined)
                    && !f.args.is_empty()
                    && value_used(path, at, &source, *pos)
                {
                    warn(*pos, fn_call_warning(name, *alt, source.call(*pos)));
                }
                if f.name == "split"
                    && f.args.len() == 3
                    && f.namespace.is_empty()
                    && !defined.contains("split")
                    && let Some(c) = source.call(*pos)
                {
                    let args = c.args.split_once(',').map_or("", |(_, rest)| rest.trim());
                    warn(*pos, split_warning(args, &f.args[2]));
                }
            }
            // A call statement `trim(s)`: used when it is a function body's last one.
            ASTNode::Stmt(Stmt::FnCall(f, pos)) if at == 0 => {
                if let Some((name, alt)) = in_place(f, &defined)
                    && !f.args.is_empty()
                    && value_used(path, at, &source, *pos)
                {
                    warn(*pos, fn_call_warning(name, *alt, source.call(*pos)));
                }
            }
            _ => {}
        }
        true
    });
    out
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
    fn the_value_of_an_in_place_method_is_found() {
        for (src, want) in [
            ("let t = s.trim();", (1, 11)),
            ("if s.trim() == \"\" {}", (1, 6)),
            ("print(s.trim());", (1, 9)),
            ("let n = s.trim().len();", (1, 11)),
            ("let c = s.trim()[0];", (1, 11)),
            ("let a = [s.trim()];", (1, 12)),
            ("x = m.name.replace(\"a\", \"b\");", (1, 12)),
            ("out += s.make_lower();", (1, 10)),
            ("let t = trim(s);", (1, 9)),
            ("let xs = ys.map(|l| l.trim());", (1, 23)),
            ("let xs = ys.map(|l| trim(l));", (1, 21)),
            ("let xs = ys.map(|l| l.trim() /* c */, 1);", (1, 23)),
            ("fn f(t) {\n    t.pad(3, ' ')\n}", (2, 7)),
            ("fn f(t) { return t.crop(1); }", (1, 20)),
            ("switch s.trim() { _ => 1 }", (1, 10)),
            ("while s.clear() {}", (1, 9)),
            ("let t = `${s.truncate(2)}`;", (1, 14)),
        ] {
            assert_eq!(at(src), vec![want], "{src}");
        }
    }

    #[test]
    fn in_place_methods_as_statements_are_not_warned_about() {
        for src in [
            "s.trim();",
            "s.trim()",
            "s.trim() // the last one",
            "trim(s);",
            "if c { s.trim() }",
            "for l in ls { l.trim() }",
            "let xs = ys.map(|l| { l.trim(); l });",
            "fn f(t) { t.trim(); t }",
            "fn f(t) { t.trim(); }",
            "switch x { 1 => s.trim(), _ => () }",
            // Arrays and maps return what they removed.
            "let x = a.remove(0); let y = m.remove(\"k\"); let z = a.retain(|v| v > 1);",
            "let t = s.to_upper(); let u = s.sub_string(1, 2);",
            // A script's own function of that name.
            "fn trim(x) { x } let t = trim(\" a \"); let u = \"b\".trim();",
            "let p = s.split(\":\"); let q = s.split(3);",
            // Not compiling: the syntax error comes first.
            "let t = s.trim(;",
        ] {
            assert_eq!(at(src), vec![], "{src}");
        }
    }

    #[test]
    fn in_place_warnings_show_the_fix() {
        let msg = |src: &str| warnings(src).remove(0).message;
        assert_eq!(
            msg("let t = s.replace(\"-\",\n    \"+\");"),
            "`s.replace(\"-\", \"+\")` changes `s` in place and returns `()`, so its value \
             here is `()`; call `s.replace(\"-\", \"+\");` on its own line, then use `s`"
        );
        assert_eq!(
            msg("fn f() { let t = this.crop(1, 2); t }"),
            "`this.crop(1, 2)` changes `this` in place and returns `()`, so its value here is \
             `()`; call `this.crop(1, 2);` on its own line, then use `this` (or \
             `this.sub_string(1, 2)`, which returns a new value)"
        );
        assert_eq!(
            msg("let t = make_lower(m.k);"),
            "`m.k.make_lower()` changes `m.k` in place and returns `()`, so its value here is \
             `()`; call `m.k.make_lower();` on its own line, then use `m.k` (or \
             `m.k.to_lower()`, which returns a new value)"
        );
        assert_eq!(
            msg("let t = read_file(\"a.md\").replace(\"{{x}}\", \")\");"),
            "`replace` changes its receiver in place and returns `()`, so its value here is \
             `()`; put the value in a variable `s`, call `s.replace(\"{{x}}\", \")\");` on its \
             own line, then use `s`"
        );
        assert_eq!(
            msg("let p = split(s, ',', 2);"),
            "`split(',', 2)` gives at most 2 pieces: Rhai's count is of pieces, not of splits \
             as in Python; Python's `split(',', 2)` is `split(',', 3)` in Rhai"
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
