//! Notebook sessions on a real ipykernel: every output type, errors, hidden cells,
//! timeouts, interrupts, restarts, a kernel killed mid-run, resume/continue; every
//! notebook produced is validated with Python's nbformat.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use common::{Env, ok, text, validate_notebooks};

const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

/// (code, expected status, expected `text` of the result, output types in order)
fn output_cases() -> Vec<(String, &'static str, String, Vec<&'static str>)> {
    vec![
        ("1 + 1".into(), "ok", "2\n".into(), vec!["execute_result"]),
        ("print('out')".into(), "ok", "out\n".into(), vec!["stream"]),
        (
            "import sys; print('a'); sys.stdout.flush(); print('b', file=sys.stderr)".into(),
            "ok",
            "a\nb\n".into(),
            vec!["stream", "stream"],
        ),
        (
            "from IPython.display import HTML, display; display(HTML('<b>x</b>'))".into(),
            "ok",
            "<IPython.core.display.HTML object>\n".into(),
            vec!["display_data"],
        ),
        (
            format!(
                "from IPython.display import Image, display; import base64; display(Image(data=base64.b64decode('{PNG_1X1}')))"
            ),
            "ok",
            "<IPython.core.display.Image object>\n[image/png]\n".into(),
            vec!["display_data"],
        ),
        (
            "from IPython.display import JSON, display; display(JSON({'k': [1, 2]}))".into(),
            "ok",
            "<IPython.core.display.JSON object>\n".into(),
            vec!["display_data"],
        ),
        (
            "raise ValueError('bad value')".into(),
            "error",
            "".into(),
            vec!["error"],
        ),
        ("def f(:\n  pass".into(), "error", "".into(), vec!["error"]),
        ("x = 1".into(), "ok", "".into(), vec![]),
    ]
}

#[test]
fn outputs_errors_and_notebook_file() {
    let env = Env::new();
    let mut script = String::from(
        "let sb = Sandbox(#{ execution_mode: \"notebook\" }).start();\nlet s = create_notebook_session(sb, (), #{ name: \"probe\" });\n",
    );
    for (code, _, _, _) in output_cases() {
        script.push_str(&format!("let r = s.exec({code:?});\nprint(to_json(#{{ status: r.status, text: r.text, types: r.outputs.map(|o| o.output_type), count: r.execution_count, data: r.outputs.map(|o| o.data) }}));\n"));
    }
    script.push_str("print(s.notebook_path);\n");
    let out = env.run(&script, &[]);
    let stdout = ok(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    for (i, (code, status, txt, types)) in output_cases().into_iter().enumerate() {
        let got: serde_json::Value = serde_json::from_str(lines[i]).unwrap();
        assert_eq!(got["status"], status, "{code}");
        assert_eq!(got["count"], (i + 1) as i64, "{code}");
        let got_types: Vec<&str> = got["types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert_eq!(got_types, types, "{code}");
        if status == "ok" {
            assert_eq!(got["text"], txt.as_str(), "{code}");
        }
    }
    // The traceback text has no ANSI codes; the notebook keeps them.
    let err: serde_json::Value = serde_json::from_str(lines[6]).unwrap();
    assert!(
        err["text"]
            .as_str()
            .unwrap()
            .contains("ValueError: bad value"),
        "{err}"
    );
    assert!(!err["text"].as_str().unwrap().contains('\u{1b}'));
    let syntax: serde_json::Value = serde_json::from_str(lines[7]).unwrap();
    assert!(
        syntax["text"].as_str().unwrap().contains("SyntaxError"),
        "{syntax}"
    );
    let png: serde_json::Value = serde_json::from_str(lines[4]).unwrap();
    assert_eq!(
        png["data"][0]["image/png"].as_str().unwrap().trim(),
        PNG_1X1
    );
    let json: serde_json::Value = serde_json::from_str(lines[5]).unwrap();
    assert_eq!(
        json["data"][0]["application/json"],
        serde_json::json!({"k": [1, 2]})
    );

    let nb_path = env.path().join(lines[output_cases().len()]);
    let nb: serde_json::Value = serde_json::from_slice(&std::fs::read(&nb_path).unwrap()).unwrap();
    let cells = nb["cells"].as_array().unwrap();
    assert_eq!(cells.len(), output_cases().len());
    assert_eq!(nb["metadata"]["kernelspec"]["name"], "python3");
    assert!(
        cells[6]["outputs"][0]["traceback"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains('\u{1b}'))
    );
    assert_eq!(validate_notebooks(&env.path().join("outputs")), 1);
}

#[test]
fn hidden_timeouts_death_restart_edit_and_markdown() {
    let env = Env::new();
    let out = env.run(
        r###"
let sb = Sandbox(#{ execution_mode: "notebook" }).start();
let s = create_notebook_session(sb, ());
let h = s.exec("secret = 41", #{ hidden: true });
print([h.cell_index, h.execution_count, s.cell_count]);
print(s.exec("secret + 1").text);
let t = s.exec("import time\nfor i in range(100): time.sleep(0.1)", #{ timeout: 0.5 });
print(t.status + " " + t.text.contains("KeyboardInterrupt"));
print(s.exec("secret").text);
let d = s.exec("import os; os._exit(3)");
print(d.status + " | " + d.note.contains("all earlier variables"));
print(s.exec("'secret' in dir()").text);
print(s.exec("after_restart = 1").status);
s.restart();
print(s.exec("'after_restart' in dir()").text);
print(s.add_markdown("## Notes"));
print(s.edit_cell("21 * 2", 1).text);
try { s.edit_cell("1", 100); } catch (e) { print(e); }
try { s.edit_cell("1", -1 - 0); } catch (e) { print(e); }
try { s.exec_or_throw("1/0"); } catch (e) { print(e.split("\n")[0]); }
print(s.exec_or_throw("'fine'").text);
print(s.cell_count);
"###,
        &[],
    );
    let stdout = ok(&out);
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines,
        vec![
            "[(), (), 0]",
            "42",
            "timed_out true",
            "41",
            "kernel_died | true",
            "False",
            "ok",
            "False",
            "7",
            "42",
            "cell_index 100 is out of range: the notebook has 8 cells",
            "cell 7 is a markdown cell; edit_cell only edits code cells",
            "cell failed (error)",
            "'fine'",
            "10",
        ],
        "{stdout}"
    );
    assert_eq!(validate_notebooks(&env.path().join("outputs")), 1);
}

#[test]
fn resume_and_continue_from_a_notebook() {
    let env = Env::new();
    let out = env.run(
        r###"
let sb = Sandbox(#{ execution_mode: "notebook" }).start();
let s = create_notebook_session(sb, (), #{ name: "first" });
s.exec("base = 10");
s.add_markdown("a note");
s.exec("base * 2");
print(s.notebook_path);
"###,
        &[],
    );
    let first = ok(&out).trim().to_string();
    let script = format!(
        r###"
let sb = Sandbox(#{{ execution_mode: "notebook" }}).start();
let r = create_notebook_session(sb, (), #{{ name: "resumed", resume: "{first}" }});
print(r.exec("base + 1").text);
print(r.cell_count);
let c = create_notebook_session(sb, (), #{{ name: "continued", continue_from: "{first}" }});
print(c.exec("'base' in dir()").text);
print(c.cell_count);
"###
    );
    let stdout = ok(&env.run(&script, &[]));
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines, vec!["11", "4", "False", "4"]);
    assert_eq!(validate_notebooks(&env.path().join("outputs")), 3);
}

#[test]
fn bad_notebook_and_bad_options_are_clear_errors() {
    let env = Env::new();
    env.write("broken.ipynb", "{ not json");
    env.write(
        "old.ipynb",
        r#"{"cells": [], "metadata": {}, "nbformat": 3, "nbformat_minor": 0}"#,
    );
    let cases = [
        (
            "create_notebook_session(sb, (), #{ resume: \"broken.ipynb\" });",
            "broken.ipynb is not a valid nbformat 4 notebook",
        ),
        (
            "create_notebook_session(sb, (), #{ continue_from: \"old.ipynb\" });",
            "old.ipynb is nbformat 3",
        ),
        (
            "create_notebook_session(sb, (), #{ resume: \"missing.ipynb\" });",
            "cannot read notebook",
        ),
        (
            "create_notebook_session(sb, (), #{ nmae: \"x\" });",
            "unknown field `nmae`; did you mean `name`?",
        ),
        (
            "let s = create_notebook_session(sb, ());\ns.exec(\"1\", #{ hiden: true });",
            "unknown field `hiden`; did you mean `hidden`?",
        ),
    ];
    for (code, want) in cases {
        let out = env.run(
            &format!("let sb = Sandbox(#{{ execution_mode: \"notebook\" }}).start();\n{code}"),
            &[],
        );
        let (_, err) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{code}: {err}");
        assert!(
            err.contains("error: main.rhai:") && err.contains(want),
            "{code}: {err}"
        );
    }
    // A sandbox without ipykernel: the kernel's own error is shown.
    let out = env.run(
        "let sb = Sandbox(#{}).start();\ncreate_notebook_session(sb, ());",
        &[],
    );
    let (_, err) = text(&out);
    assert!(
        err.contains("No module named ipykernel_launcher")
            && err.contains("execution_mode: \"notebook\""),
        "{err}"
    );
}

#[test]
fn local_notebook_session_needs_no_sandbox_config() {
    let env = Env::new();
    let out = env.run(
        "let s = create_local_notebook_session(());\nprint(s.exec(\"6 * 7\").text);",
        &[],
    );
    assert_eq!(ok(&out).trim(), "42");
}
