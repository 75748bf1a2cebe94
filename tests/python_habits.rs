//! Python habits that Rhai takes silently or answers cryptically (issue #21): per habit, a
//! script and what `seer check` and `seer run` say about it, whole, or the now-correct
//! result.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use common::{Env, text};

struct Case {
    name: &'static str,
    script: &'static str,
    /// `seer check`'s stderr (its stdout is `main.rhai: ok` when there is no syntax error).
    check: &'static str,
    /// `seer run`'s stdout, stderr and exit code.
    out: &'static str,
    err: &'static str,
    code: i32,
}

/// The hint under an error about a method called on `()`.
const UNIT_HINT: &str = "  hint: the value is `()`: did it come from an in-place method such \
     as `trim` or `replace`, which change the string and return `()`? Call it on its own line, \
     `s.replace(\"a\", \"b\");`, then use `s` (a missing map key also reads as `()`)\n";

const UNDERSCORE: &str = "`_` is not a parameter name in Rhai: name the parameter, e.g. `|x|` \
     instead of `|_|` (a name starting with `_`, such as `_x`, works too)";

fn warning(at: &str, call: &str, receiver: &str, alt: &str) -> String {
    format!(
        "warning: main.rhai:{at}: `{receiver}.{call}` changes `{receiver}` in place and returns \
         `()`, so its value here is `()`; call `{receiver}.{call};` on its own line, then use \
         `{receiver}`{alt}\n"
    )
}

fn cases() -> Vec<Case> {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let trim2 = leak(warning("2:11", "trim()", "s", ""));
    let replace2 = leak(warning("2:11", "replace(\"-\", \"+\")", "s", ""));
    let trim_if = leak(warning("2:6", "trim()", "s", ""));
    let trim_chain = leak(warning("2:9", "trim()", "s", ""));
    let upper = leak(warning(
        "2:11",
        "make_upper()",
        "s",
        " (or `s.to_upper()`, which returns a new value)",
    ));
    let truncate = leak(warning(
        "2:11",
        "truncate(3)",
        "s",
        " (or `s.sub_string(0, 3)`, which returns a new value)",
    ));
    let closure = leak(warning("1:33", "trim()", "x", ""));
    let body = leak(warning("1:17", "replace(\"a\", \"b\")", "t", ""));
    vec![
        Case {
            name: "an in-place method's value assigned",
            script: "let s = \"  a  \";\nlet t = s.trim();\nprint(t == ());\n",
            check: trim2,
            out: "true\n",
            err: trim2,
            code: 0,
        },
        Case {
            name: "an in-place method's value compared (silently false)",
            script: "let s = \"  \";\nif s.trim() == \"\" { print(\"empty\"); } else { print(\"not empty\"); }\n",
            check: trim_if,
            out: "not empty\n",
            err: trim_if,
            code: 0,
        },
        Case {
            name: "an in-place method's value used far away",
            script: "let s = \"a-b\";\nlet y = s.replace(\"-\", \"+\");\ny.replace(\"a\", \"A\");\n",
            check: replace2,
            out: "",
            err: leak(format!(
                "{replace2}error: main.rhai:3:3: Function not found: replace ((), &str | \
                 ImmutableString | String, &str | ImmutableString | String)\n{UNIT_HINT}"
            )),
            code: 1,
        },
        Case {
            name: "an in-place method chained",
            script: "let s = \" a \";\nprint(s.trim().len());\n",
            check: trim_chain,
            out: "",
            err: leak(format!(
                "{trim_chain}error: main.rhai:2:16: Function not found: len (())\n{UNIT_HINT}"
            )),
            code: 1,
        },
        Case {
            name: "a property of ()",
            script: "let m = #{};\nprint(m.name.len);\n",
            check: "",
            out: "",
            err: leak(format!(
                "error: main.rhai:2:14: Unknown property 'len' - a getter is not registered for \
                 type '()'\n{UNIT_HINT}"
            )),
            code: 1,
        },
        Case {
            name: "an in-place method with a value-returning twin",
            script: "let s = \"a\";\nlet u = s.make_upper();\n",
            check: upper,
            out: "",
            err: upper,
            code: 0,
        },
        Case {
            name: "truncate for a slice",
            script: "let s = \"abcdef\";\nlet t = s.truncate(3);\n",
            check: truncate,
            out: "",
            err: truncate,
            code: 0,
        },
        Case {
            name: "an in-place method as a closure's value",
            script: "let xs = [\" a\", \"b \"].map(|x| x.trim());\nprint(xs);\n",
            check: closure,
            out: "[(), ()]\n",
            err: closure,
            code: 0,
        },
        Case {
            name: "an in-place method as a function's value",
            script: "fn clean(t) { t.replace(\"a\", \"b\") }\nprint(clean(\"a\") == ());\n",
            check: body,
            out: "true\n",
            err: body,
            code: 0,
        },
        Case {
            name: "in-place methods as statements: no warning",
            script: "let s = \" a,b \";\ns.trim();\ns.make_upper();\nlet xs = [\" c\"].map(|x| { x.trim(); x });\nfn f(t) { t.replace(\",\", \";\"); t }\nprint(f(s) + xs[0]);\ns.clear()\n",
            check: "",
            out: "A;Bc\n",
            err: "",
            code: 0,
        },
        Case {
            name: "split with Python's count of splits",
            script: "let p = \"k:v:w\".split(\":\", 1);\nprint(p);\n",
            check: "warning: main.rhai:1:17: `split(\":\", 1)` gives at most 1 piece: Rhai's count \
                    is of pieces, not of splits as in Python; Python's `split(\":\", 1)` is \
                    `split(\":\", 2)` in Rhai\n",
            out: "[\"k:v:w\"]\n",
            err: "warning: main.rhai:1:17: `split(\":\", 1)` gives at most 1 piece: Rhai's count \
                  is of pieces, not of splits as in Python; Python's `split(\":\", 1)` is \
                  `split(\":\", 2)` in Rhai\n",
            code: 0,
        },
        Case {
            name: "split with a count that is not a literal",
            script: "let n = 1;\nlet p = \"k:v:w\".split(\":\", n + 1);\nprint(p);\n",
            check: "warning: main.rhai:2:17: `split(\":\", n + 1)` gives at most that many \
                    pieces: Rhai's count is of pieces, not of splits as in Python; Python's \
                    `split(sep, n)` is `split(sep, n + 1)` in Rhai\n",
            out: "[\"k\", \"v:w\"]\n",
            err: "warning: main.rhai:2:17: `split(\":\", n + 1)` gives at most that many \
                  pieces: Rhai's count is of pieces, not of splits as in Python; Python's \
                  `split(sep, n)` is `split(sep, n + 1)` in Rhai\n",
            code: 0,
        },
        Case {
            name: "a closure parameter `_`: one error, not a cascade",
            script: "let xs = [1, 2].map(|_| {\n    let y = 1;\n    y + 1\n});\nprint(xs);\n",
            check: leak(format!("main.rhai:1:22: {UNDERSCORE}\n1 syntax error(s)\n")),
            out: "",
            err: leak(format!("error: main.rhai:1:22: {UNDERSCORE}\n")),
            code: 1,
        },
        Case {
            name: "`_` among other parameters, and a real error after it",
            script: "let f = |a, _| a;\nlet g = ;\n",
            check: leak(format!(
                "main.rhai:1:13: {UNDERSCORE}\nmain.rhai:2:9: Unexpected ';'\n2 syntax error(s)\n"
            )),
            out: "",
            err: leak(format!("error: main.rhai:1:13: {UNDERSCORE}\n")),
            code: 1,
        },
        Case {
            name: "a parameter named `_x` is fine",
            script: "print([1, 2].map(|_x| 0));\n",
            check: "",
            out: "[0, 0]\n",
            err: "",
            code: 0,
        },
        Case {
            name: "string repetition",
            script: "print(\"=\" * 3);\nprint(2 * \"ab\");\nprint(`[${\"x\" * 0}][${\"x\" * -2}]`);\nlet s = \"-\";\ns *= 4;\nprint(s);\n",
            check: "",
            out: "===\nabab\n[][]\n----\n",
            err: "",
            code: 0,
        },
    ]
}

#[test]
fn python_habits_are_warned_about_or_work() {
    let cases = cases();
    let mut failures = vec![];
    for c in &cases {
        let env = Env::new();
        env.write("main.rhai", c.script);
        let check = env.cmd().args(["check", "main.rhai"]).output().unwrap();
        let (check_out, check_err) = text(&check);
        let parses = !c.check.ends_with("syntax error(s)\n");
        let want_check_out = if parses { "main.rhai: ok\n" } else { "" };
        if check_out != want_check_out || check_err != c.check {
            failures.push(format!(
                "[{}] seer check\n  want: {want_check_out:?} {:?}\n  got:  {check_out:?} {check_err:?}",
                c.name, c.check
            ));
        }
        let run = env.cmd().args(["run", "main.rhai"]).output().unwrap();
        let (out, err) = text(&run);
        if (out.as_str(), err.as_str(), run.status.code()) != (c.out, c.err, Some(c.code)) {
            failures.push(format!(
                "[{}] seer run\n  want: {:?} {:?} {}\n  got:  {out:?} {err:?} {:?}",
                c.name,
                c.out,
                c.err,
                c.code,
                run.status.code()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// A repetition over the string limit is the limit's error, before any allocation.
#[test]
fn string_repetition_respects_the_string_limit() {
    let env = Env::new();
    env.write(
        "main.rhai",
        "let line = \"=\" * 60;\nlet big = line * 1000000000000;\n",
    );
    let run = env
        .cmd()
        .args(["run", "main.rhai"])
        .env("SEER_MAX_STRING_SIZE", "1000")
        .output()
        .unwrap();
    assert_eq!(
        common::failed(&run),
        "error: main.rhai:2:16: Length of string exceeds the script limit; a runaway loop? (set \
         SEER_MAX_STRING_SIZE to raise it, 0 = unlimited)\n"
    );
}
