//! Script errors as users want them: `file:line:col: message` at the innermost position
//! (inside the function or imported module where it happened), then the call chain.

use std::path::Path;

use rhai::{EvalAltResult, ParseError, Position};

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

/// Locates a parse error.
pub fn locate_parse(err: &ParseError, file: &str) -> Located {
    Located {
        file: file.to_string(),
        line: err.1.line(),
        col: err.1.position(),
        message: err.0.to_string(),
        trace: vec![],
    }
}

/// Every syntax error of a script, not only the first: after each error the offending
/// line is blanked and the script parsed again (rhai's parser stops at the first one).
pub fn all_parse_errors(engine: &rhai::Engine, source: &str, file: &str) -> Vec<Located> {
    let mut lines: Vec<String> = source.lines().map(str::to_string).collect();
    let mut out: Vec<Located> = vec![];
    for _ in 0..50 {
        let text = lines.join("\n");
        let Err(err) = engine.compile(&text) else {
            break;
        };
        let loc = locate_parse(&err, file);
        let line = loc.line.unwrap_or(0);
        let repeat = out
            .iter()
            .any(|o| o.line == loc.line && o.message == loc.message);
        if repeat || line == 0 || line > lines.len() {
            if !repeat {
                out.push(loc);
            }
            break;
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
    fn all_syntax_errors_are_reported() {
        let engine = rhai::Engine::new();
        let errs = all_parse_errors(&engine, "let a = ;\nlet b = 2;\nlet c = 3 +;\n", "x.rhai");
        let lines: Vec<Option<usize>> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![Some(1), Some(3)]);
    }
}
