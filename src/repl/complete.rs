//! The rustyline helper: Rhai-aware multi-line validation, completion of API functions,
//! methods and properties after `.` (narrowed to the receiver's type when it is a known
//! variable), script variables, imported module members after `alias::`, and REPL
//! commands; hints from history; matching-bracket highlighting.

use std::borrow::Cow;
use std::collections::BTreeMap;

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::{CmdKind, Highlighter, MatchingBracketHighlighter};
use rustyline::hint::{Hinter, HistoryHinter};
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

use super::validate::{self, Completeness};

pub const COMMANDS: &[&str] = &[":help", ":load", ":reload", ":reset", ":sandboxes", ":quit"];

const KEYWORDS: &[&str] = &[
    "let",
    "const",
    "fn",
    "private",
    "import",
    "export",
    "as",
    "if",
    "else",
    "switch",
    "while",
    "loop",
    "for",
    "in",
    "do",
    "until",
    "break",
    "continue",
    "return",
    "throw",
    "try",
    "catch",
    "true",
    "false",
    "this",
    "global",
    "Fn",
    "call",
    "curry",
    "print",
    "debug",
    "type_of",
    "is_def_var",
    "is_def_fn",
];

/// What completion knows: refreshed after every line.
#[derive(Default, Clone)]
pub struct Words {
    /// Global function names (API and standard library).
    pub functions: Vec<String>,
    /// Methods and properties: (name, receiver type; `?` when any type takes it).
    pub methods: Vec<(String, String)>,
    /// Static and imported modules: name → members.
    pub modules: BTreeMap<String, Vec<String>>,
    /// Script variables: (name, type).
    pub vars: Vec<(String, String)>,
}

#[derive(Default)]
pub struct ReplHelper {
    pub words: Words,
    hinter: HistoryHinter,
    brackets: MatchingBracketHighlighter,
}

impl ReplHelper {
    pub fn new(words: Words) -> Self {
        Self {
            words,
            hinter: HistoryHinter::new(),
            brackets: MatchingBracketHighlighter::new(),
        }
    }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Candidates for the word ending at `pos`: (start of the word, sorted unique candidates).
pub fn candidates(words: &Words, line: &str, pos: usize) -> (usize, Vec<String>) {
    let before = &line[..pos];
    let start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_ident(*c) || *c == ':' && before.trim_start().starts_with(':'))
        .last()
        .map(|(i, _)| i)
        .unwrap_or(pos);
    let prefix = &before[start..];
    let head = &before[..start];
    let mut out: Vec<String> = vec![];
    let trimmed = before.trim_start();
    if trimmed.starts_with(':') {
        if !trimmed.contains(' ') {
            out.extend(COMMANDS.iter().map(|c| c.to_string()));
        } else if trimmed.starts_with(":help ") {
            out.extend(words.functions.iter().cloned());
            out.extend(words.methods.iter().map(|(n, _)| n.clone()));
        }
    } else if let Some(h) = head.strip_suffix("::") {
        let module: String = h
            .chars()
            .rev()
            .take_while(|c| is_ident(*c))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if let Some(members) = words.modules.get(&module) {
            out.extend(members.iter().cloned());
        }
    } else if let Some(h) = head.strip_suffix('.') {
        let receiver: String = h
            .chars()
            .rev()
            .take_while(|c| is_ident(*c))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let known = words
            .vars
            .iter()
            .find(|(n, _)| *n == receiver)
            .map(|(_, t)| t.clone());
        let typed: Vec<String> = match &known {
            Some(t) => words
                .methods
                .iter()
                .filter(|(_, rt)| rt == t || rt == "?")
                .map(|(n, _)| n.clone())
                .collect(),
            None => vec![],
        };
        if typed.is_empty() {
            out.extend(words.methods.iter().map(|(n, _)| n.clone()));
        } else {
            out.extend(typed);
        }
    } else {
        out.extend(words.vars.iter().map(|(n, _)| n.clone()));
        out.extend(words.functions.iter().cloned());
        out.extend(words.modules.keys().cloned());
        out.extend(KEYWORDS.iter().map(|k| k.to_string()));
    }
    out.retain(|c| c.starts_with(prefix));
    out.sort();
    out.dedup();
    (start, out)
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, found) = candidates(&self.words, line, pos);
        Ok((
            start,
            found
                .into_iter()
                .map(|c| Pair {
                    display: c.clone(),
                    replacement: c,
                })
                .collect(),
        ))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;

    fn hint(&self, line: &str, pos: usize, ctx: &Context<'_>) -> Option<String> {
        self.hinter.hint(line, pos, ctx)
    }
}

impl Highlighter for ReplHelper {
    fn highlight<'l>(&self, line: &'l str, pos: usize) -> Cow<'l, str> {
        self.brackets.highlight(line, pos)
    }

    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        // Dimmed, like a shell's autosuggestion.
        Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
    }

    fn highlight_char(&self, line: &str, pos: usize, kind: CmdKind) -> bool {
        self.brackets.highlight_char(line, pos, kind)
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(match validate::check(ctx.input()) {
            Completeness::Complete => ValidationResult::Valid(None),
            Completeness::Incomplete => ValidationResult::Incomplete,
        })
    }
}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn words() -> Words {
        Words {
            functions: vec!["run_agent".into(), "Sandbox".into(), "read_file".into()],
            methods: vec![
                ("exec".into(), "Sandbox".into()),
                ("exec".into(), "NotebookSession".into()),
                ("exec_python".into(), "Sandbox".into()),
                ("add_markdown".into(), "NotebookSession".into()),
                ("len".into(), "?".into()),
            ],
            modules: BTreeMap::from([("u".to_string(), vec!["double".to_string()])]),
            vars: vec![
                ("sb".into(), "Sandbox".into()),
                ("sess".into(), "NotebookSession".into()),
            ],
        }
    }

    #[test]
    fn completes_by_context() {
        let w = words();
        assert_eq!(
            candidates(&w, "run_a", 5),
            (0, vec!["run_agent".to_string()])
        );
        assert_eq!(
            candidates(&w, "let x = s", 9).1,
            vec!["sb", "sess", "switch"]
        );
        assert_eq!(
            candidates(&w, "sb.ex", 5),
            (3, vec!["exec".to_string(), "exec_python".to_string()])
        );
        assert_eq!(
            candidates(&w, "sess.", 5).1,
            vec!["add_markdown", "exec", "len"]
        );
        assert_eq!(candidates(&w, "u::d", 4), (3, vec!["double".to_string()]));
        assert_eq!(candidates(&w, ":re", 3).1, vec![":reload", ":reset"]);
        assert_eq!(candidates(&w, ":help run", 9).1, vec!["run_agent"]);
    }
}
