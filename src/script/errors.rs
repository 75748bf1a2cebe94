//! Script errors as users want them: `file:line:col: message` at the innermost position
//! (inside the function or imported module where it happened), then the call chain.

use std::path::Path;

use rhai::{EvalAltResult, ParseError, ParseErrorType, Position};

use crate::config::strip_position;

/// One located error, ready to print.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub file: String,
    pub line: Option<usize>,
    pub col: Option<usize>,
    pub message: String,
    /// Innermost call first: `in call to function 'f' at main.rhai:4:1`.
    pub trace: Vec<String>,
}

impl std::fmt::Display for Located {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.col) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {}", self.file, self.message)?,
            (Some(l), None) => write!(f, "{}:{l}: {}", self.file, self.message)?,
            _ => write!(f, "{}: {}", self.file, self.message)?,
        }
        for t in &self.trace {
            write!(f, "\n  {t}")?;
        }
        Ok(())
    }
}

fn at(file: &str, pos: Position) -> String {
    match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!("{file}:{l}:{c}"),
        (Some(l), None) => format!("{file}:{l}"),
        _ => file.to_string(),
    }
}

/// Locates a runtime error. `file` names the main script; `module_file` maps a module
/// source (as rhai records it) to the file name to show.
pub fn locate(err: &EvalAltResult, file: &str, module_file: &dyn Fn(&str) -> String) -> Located {
    let mut current = file.to_string();
    let mut trace = vec![];
    let mut e = err;
    loop {
        match e {
            EvalAltResult::ErrorInFunctionCall(name, source, inner, pos) => {
                trace.push(format!(
                    "in call to function '{name}' at {}",
                    at(&current, *pos)
                ));
                if !source.is_empty() {
                    current = module_file(source);
                }
                e = inner;
            }
            EvalAltResult::ErrorInModule(path, inner, pos) => {
                trace.push(format!(
                    "in module '{path}' imported at {}",
                    at(&current, *pos)
                ));
                current = module_file(path);
                e = inner;
            }
            _ => break,
        }
    }
    trace.reverse();
    let mut pos = e.position();
    let message = match e {
        // The value of `throw` or of a host error: show it as text, not as a debug string.
        EvalAltResult::ErrorRuntime(v, _) if v.is_string() => v.to_string(),
        // A caught Rhai error thrown again (`catch (e) { throw e; }`): Rhai made it a map
        // with the message and where it first happened.
        EvalAltResult::ErrorRuntime(v, _) if rethrown(v).is_some() => {
            let (msg, at) = rethrown(v).unwrap_or_default();
            if let Some(at) = at {
                pos = at;
            }
            msg
        }
        EvalAltResult::ErrorRuntime(v, _) => format!("uncaught exception: {v}"),
        // seer's limits (`SEER_MAX_*`, see `script::Limits`): say which one and how to raise it.
        EvalAltResult::ErrorDataTooLarge(what, _) => {
            let var = if what.starts_with("Length of string") {
                "SEER_MAX_STRING_SIZE"
            } else if what.contains("array") {
                "SEER_MAX_ARRAY_SIZE"
            } else {
                "SEER_MAX_MAP_SIZE"
            };
            format!(
                "{what} exceeds the script limit; a runaway loop? (set {var} to raise it, 0 = \
                 unlimited)"
            )
        }
        EvalAltResult::ErrorStackOverflow(_) => format!(
            "more than {} nested function calls; runaway recursion? (set \
             SEER_MAX_CALL_LEVELS to raise the limit)",
            super::Limits::from_env()
                .unwrap_or_default()
                .max_call_levels
        ),
        EvalAltResult::ErrorTooManyOperations(_) => "the script ran more operations than \
             SEER_MAX_OPERATIONS allows; a runaway loop? (raise it, or 0 = unlimited)"
            .to_string(),
        other => strip_position(&other.to_string()),
    };
    let message = match unit_receiver_hint(e) {
        Some(hint) => format!("{message}\n  hint: {hint}"),
        None => message,
    };
    // A runaway recursion has one frame per level: keep the two ends of the chain.
    let trace = if trace.len() > 12 {
        let skipped = trace.len() - 10;
        let mut short: Vec<String> = trace[..5].to_vec();
        short.push(format!("... {skipped} more calls ..."));
        short.extend_from_slice(&trace[trace.len() - 5..]);
        short
    } else {
        trace
    };
    Located {
        file: current,
        line: pos.line(),
        col: pos.position(),
        message,
        trace,
    }
}

/// For a method called on `()` (`Function not found: replace ((), …)`, or a property of
/// `()`): where a `()` most often comes from in a script written by a Python user.
fn unit_receiver_hint(e: &EvalAltResult) -> Option<&'static str> {
    let on_unit = match e {
        EvalAltResult::ErrorFunctionNotFound(sig, _) => sig
            .split_once(" (")
            .is_some_and(|(_, args)| args == "())" || args.starts_with("(), ")),
        EvalAltResult::ErrorDotExpr(msg, _) => msg.ends_with("for type '()'"),
        _ => false,
    };
    on_unit.then_some(UNIT_HINT)
}

/// The hint under an error about a method or property of `()`.
const UNIT_HINT: &str = "the value is `()`: did it come from an in-place method such as `trim` \
     or `replace`, which change the string and return `()`? Call it on its own line, \
     `s.replace(\"a\", \"b\");`, then use `s` (a missing map key also reads as `()`)";

/// The message and first position of a caught error map (`#{ message, line, position,
/// ... }`, as Rhai's `catch` makes it).
fn rethrown(v: &rhai::Dynamic) -> Option<(String, Option<Position>)> {
    let m = v.read_lock::<rhai::Map>()?;
    let msg = m.get("message")?.clone().into_string().ok()?;
    let line = m.get("line").and_then(|l| l.as_int().ok());
    let col = m.get("position").and_then(|c| c.as_int().ok());
    let at = match (line, col) {
        (Some(l), Some(c)) if l > 0 => Some(Position::new(l as u16, c as u16)),
        _ => None,
    };
    Some((msg, at))
}

/// Locates a parse error in `src`.
pub fn locate_parse(err: &ParseError, src: &str, file: &str) -> Located {
    let message = if underscore_param(err, src).is_some() {
        UNDERSCORE_PARAM.to_string()
    } else {
        err.0.to_string()
    };
    Located {
        file: file.to_string(),
        line: err.1.line(),
        col: err.1.position(),
        message,
        trace: vec![],
    }
}

/// The error for a closure parameter written `_` (Python's `lambda _: ...`).
const UNDERSCORE_PARAM: &str = "`_` is not a parameter name in Rhai: name the parameter, e.g. \
     `|x|` instead of `|_|` (a name starting with `_`, such as `_x`, works too)";

/// Where (line, column, from 1) a parse error is a closure parameter written `_`: rhai
/// stops there with "Expecting '|' to close the parameters list", and, the closure's body
/// being unreadable, the rest of the script fails to parse too.
fn underscore_param(err: &ParseError, src: &str) -> Option<(usize, usize)> {
    let ParseErrorType::MissingToken(token, what) = &*err.0 else {
        return None;
    };
    if token != "|" || !what.starts_with("to close the parameters list") {
        return None;
    }
    let (line, col) = (err.1.line()?, err.1.position()?);
    let text: Vec<char> = src.lines().nth(line.checked_sub(1)?)?.chars().collect();
    let alone = text.get(col.checked_sub(1)?) == Some(&'_')
        && !text
            .get(col)
            .is_some_and(|c| c.is_alphanumeric() || *c == '_');
    alone.then_some((line, col))
}

/// Every syntax error of a script, not only the first: after each error the offending
/// line is blanked and the script parsed again (rhai's parser stops at the first one). A
/// closure parameter `_` is renamed instead, so that the closure's body still parses.
pub fn all_parse_errors(engine: &rhai::Engine, source: &str, file: &str) -> Vec<Located> {
    let mut lines: Vec<String> = source.lines().map(str::to_string).collect();
    let mut out: Vec<Located> = vec![];
    for _ in 0..50 {
        let text = lines.join("\n");
        let Err(err) = engine.compile(&text) else {
            break;
        };
        let loc = locate_parse(&err, &text, file);
        let line = loc.line.unwrap_or(0);
        let repeat = out
            .iter()
            .any(|o| o.line == loc.line && o.message == loc.message && o.col == loc.col);
        if repeat || line == 0 || line > lines.len() {
            if !repeat {
                out.push(loc);
            }
            break;
        }
        if let Some((_, col)) = underscore_param(&err, &text) {
            out.push(loc);
            lines[line - 1] = rename_underscore(&lines[line - 1], col);
            continue;
        }
        let blank_again = lines[line - 1].trim().is_empty();
        out.push(loc);
        if blank_again {
            break;
        }
        lines[line - 1] = String::new();
    }
    out
}

/// `line` with the `_` at column `col` replaced by a one-letter name the line does not use
/// (the columns after it stay where they were).
fn rename_underscore(line: &str, col: usize) -> String {
    let used: std::collections::HashSet<&str> = line
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .collect();
    let name = ('a'..='z')
        .find(|c| !used.contains(c.to_string().as_str()))
        .unwrap_or('z');
    line.chars()
        .enumerate()
        .map(|(i, c)| if i + 1 == col { name } else { c })
        .collect()
}

/// The name to show for a script file: relative to the current dir when it is inside it.
pub fn display_path(p: &Path) -> String {
    if let Ok(cwd) = std::env::current_dir()
        && let Ok(rel) = p.strip_prefix(&cwd)
    {
        return rel.to_string_lossy().to_string();
    }
    p.to_string_lossy().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str) -> Located {
        let engine = rhai::Engine::new();
        let err = engine.run(src).unwrap_err();
        locate(&err, "main.rhai", &|s| format!("{s}.rhai"))
    }

    #[test]
    fn innermost_position_inside_nested_functions() {
        let got = run("fn inner() {\n    let x = 1 / 0;\n}\nfn outer() { inner() }\nouter();\n");
        assert_eq!(got.file, "main.rhai");
        assert_eq!((got.line, got.col), (Some(2), Some(15)));
        assert!(
            got.message.starts_with("Division by zero"),
            "{}",
            got.message
        );
        assert_eq!(
            got.trace,
            vec![
                "in call to function 'inner' at main.rhai:4:14".to_string(),
                "in call to function 'outer' at main.rhai:5:1".to_string()
            ]
        );
    }

    #[test]
    fn thrown_strings_are_shown_as_text() {
        let got = run("\nthrow \"boom\";");
        assert_eq!(got.to_string(), "main.rhai:2:1: boom");
    }

    #[test]
    fn rethrown_errors_keep_their_message_and_position() {
        let got = run("let m = #{};\ntry {\n  m.a.b();\n} catch (e) {\n  throw e;\n}");
        assert_eq!(got.to_string(), "main.rhai:3:7: Function not found: b (())");
    }

    #[test]
    fn a_method_on_unit_gets_a_hint() {
        let got = run("let s = \"a\";\nlet t = s.trim();\nt.len();");
        assert_eq!(
            got.to_string(),
            "main.rhai:3:3: Function not found: len (())\n  hint: the value is `()`: did it \
             come from an in-place method such as `trim` or `replace`, which change the string \
             and return `()`? Call it on its own line, `s.replace(\"a\", \"b\");`, then use \
             `s` (a missing map key also reads as `()`)"
        );
        assert!(
            run("let m = #{};\nm.k.x;")
                .message
                .contains("hint: the value is `()`")
        );
        assert_eq!(
            run("foo(());").message,
            format!("Function not found: foo (())\n  hint: {UNIT_HINT}")
        );
        for src in ["foo(1, ());", "let x = 1; x.foo();"] {
            assert!(!run(src).message.contains("hint"), "{src}");
        }
    }

    #[test]
    fn a_closure_parameter_underscore_is_one_clear_error() {
        let engine = rhai::Engine::new();
        let src =
            "let a = [1].map(|_| {\n  1\n});\nlet f = |x, _| x;\nlet g = |_a| 1;\nlet h = ;\n";
        let errs: Vec<String> = all_parse_errors(&engine, src, "x.rhai")
            .iter()
            .map(|e| e.to_string())
            .collect();
        let underscore = "`_` is not a parameter name in Rhai: name the parameter, e.g. `|x|` \
                          instead of `|_|` (a name starting with `_`, such as `_x`, works too)";
        assert_eq!(
            errs,
            vec![
                format!("x.rhai:1:18: {underscore}"),
                format!("x.rhai:4:13: {underscore}"),
                "x.rhai:6:9: Unexpected ';'".to_string(),
            ]
        );
        let Err(first) = engine.compile(src) else {
            panic!("compiled")
        };
        assert_eq!(
            locate_parse(&first, src, "x.rhai").to_string(),
            format!("x.rhai:1:18: {underscore}")
        );
        // Another parameter that is not a name keeps rhai's message.
        let Err(other) = engine.compile("let f = |1| 1;") else {
            panic!("compiled")
        };
        assert_eq!(
            locate_parse(&other, "let f = |1| 1;", "x.rhai").message,
            "Expecting '|' to close the parameters list of anonymous function or closure"
        );
    }

    #[test]
    fn all_syntax_errors_are_reported() {
        let engine = rhai::Engine::new();
        let errs = all_parse_errors(&engine, "let a = ;\nlet b = 2;\nlet c = 3 +;\n", "x.rhai");
        let lines: Vec<Option<usize>> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![Some(1), Some(3)]);
    }
}
