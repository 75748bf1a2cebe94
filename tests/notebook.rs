//! Notebook sessions on a real ipykernel: every output type, errors, hidden cells,
//! timeouts, interrupts, restarts, a kernel killed mid-run, resume/continue; every
//! notebook produced is validated with Python's nbformat.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use common::{Env, failed, lines, ok, read_json, shared_cache, validate_notebooks};
use serde_json::json;

const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

/// (code, what `print(to_json(...))` of its result shows: status, `text`, output types,
/// execution count and each output's data).
fn output_cases() -> Vec<(String, serde_json::Value)> {
    let ok = |count: u32, text: &str, types: &[&str], data: serde_json::Value| json!({"status": "ok", "count": count, "text": text, "types": types, "data": data});
    let error = |count: u32, text: &str| json!({"status": "error", "count": count, "text": text, "types": ["error"], "data": [null]});
    vec![
        (
            "1 + 1".into(),
            ok(
                1,
                "2\n",
                &["execute_result"],
                json!([{"text/plain": ["2"]}]),
            ),
        ),
        (
            "print('out')".into(),
            ok(2, "out\n", &["stream"], json!([null])),
        ),
        (
            "import sys; print('a'); sys.stdout.flush(); print('b', file=sys.stderr)".into(),
            ok(3, "a\nb\n", &["stream", "stream"], json!([null, null])),
        ),
        (
            "from IPython.display import HTML, display; display(HTML('<b>x</b>'))".into(),
            ok(
                4,
                "<IPython.core.display.HTML object>\n",
                &["display_data"],
                json!([{"text/html": ["<b>x</b>"], "text/plain": ["<IPython.core.display.HTML object>"]}]),
            ),
        ),
        (
            format!(
                "from IPython.display import Image, display; import base64; display(Image(data=base64.b64decode('{PNG_1X1}')))"
            ),
            ok(
                5,
                "<IPython.core.display.Image object>\n[image/png]\n",
                &["display_data"],
                json!([{"image/png": PNG_1X1, "text/plain": ["<IPython.core.display.Image object>"]}]),
            ),
        ),
        (
            "from IPython.display import JSON, display; display(JSON({'k': [1, 2]}))".into(),
            ok(
                6,
                "<IPython.core.display.JSON object>\n",
                &["display_data"],
                json!([{"application/json": {"k": [1, 2]}, "text/plain": ["<IPython.core.display.JSON object>"]}]),
            ),
        ),
        // The traceback text has no ANSI codes (the notebook keeps them).
        (
            "raise ValueError('bad value')".into(),
            error(
                7,
                "---------------------------------------------------------------------------\n\
                 ValueError                                Traceback (most recent call last)\n\
                 Cell In[7], line 1\n----> 1 raise ValueError('bad value')\n\nValueError: bad value\n",
            ),
        ),
        (
            "def f(:\n  pass".into(),
            error(
                8,
                "  Cell In[8], line 1\n    def f(:\n          ^\nSyntaxError: invalid syntax\n\n",
            ),
        ),
        ("x = 1".into(), ok(9, "", &[], json!([]))),
    ]
}

#[test]
fn outputs_errors_and_notebook_file() {
    let env = Env::new();
    let mut script = String::from(
        "let sb = Sandbox(#{ execution_mode: \"notebook\" }).start();\nlet s = create_notebook_session(sb, (), #{ name: \"probe\" });\n",
    );
    for (code, _) in output_cases() {
        script.push_str(&format!("let r = s.exec({code:?}, #{{ raise: false }});\nprint(to_json(#{{ status: r.status, text: r.text, types: r.outputs.map(|o| o.output_type), count: r.execution_count, data: r.outputs.map(|o| o.data) }}));\n"));
    }
    script.push_str("print(s.notebook_path);\n");
    let out = env.run(&script, &[]);
    let stdout = ok(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), output_cases().len() + 1, "{stdout}");
    for (i, (code, want)) in output_cases().into_iter().enumerate() {
        let got: serde_json::Value = serde_json::from_str(lines[i]).unwrap();
        assert_eq!(got, want, "{code}");
    }

    let nb_path = lines[output_cases().len()];
    assert_eq!(nb_path, format!("outputs/{}/probe.ipynb", env.the_run()));
    let nb = read_json(&env.path().join(nb_path));
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
let t = s.exec("import time\nfor i in range(100): time.sleep(0.1)", #{ timeout: 0.5, raise: false });
print(t.status);
print(to_json(t.text));
print(s.exec("secret").text);
let d = s.exec("import os; os._exit(3)", #{ raise: false });
print(d.status);
print(to_json(d.note));
print(s.exec("'secret' in dir()").text);
print(s.exec("after_restart = 1").status);
s.restart();
print(s.exec("'after_restart' in dir()").text);
print(s.add_markdown("## Notes"));
print(s.edit_cell("21 * 2", 1).text);
try { s.edit_cell("1", 100); } catch (e) { print(e); }
try { s.edit_cell("1", -1 - 0); } catch (e) { print(e); }
try { s.exec_or_throw("1/0"); } catch (e) { print(to_json(e)); }
print(s.exec_or_throw("'fine'").text);
print(s.cell_count);
"###,
        &[],
    );
    let stdout = ok(&out);
    let quoted = |s: &str| serde_json::to_string(s).unwrap();
    let interrupted = quoted(
        "---------------------------------------------------------------------------\n\
         KeyboardInterrupt                         Traceback (most recent call last)\n\
         Cell In[2], line 2\n      1 import time\n----> 2 for i in range(100): time.sleep(0.1)\n\n\
         KeyboardInterrupt: \n",
    );
    let died = quoted(
        "The kernel died while running this cell (it crashed, ran out of memory, or ignored an \
         interrupt after a timeout). It was restarted: all earlier variables, imports and loaded models \
         are gone (the workspace setup ran again).",
    );
    let failed = quoted(
        "cell failed (error)\n---------------------------------------------------------------------------\n\
         ZeroDivisionError                         Traceback (most recent call last)\n\
         Cell In[3], line 1\n----> 1 1/0\n\nZeroDivisionError: division by zero",
    );
    assert_eq!(
        lines(&stdout),
        vec![
            "[(), (), 0]",
            "42",
            "timed_out",
            &interrupted,
            "41",
            "kernel_died",
            &died,
            "False",
            "ok",
            "False",
            "7",
            "42",
            "cell_index 100 is out of range: the notebook has 8 cells",
            "cell 7 is a markdown cell; edit_cell only edits code cells",
            &failed,
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
            "main.rhai:2:1: <dir>/broken.ipynb is not a valid nbformat 4 notebook: key must be a \
             string at line 1 column 3",
        ),
        (
            "create_notebook_session(sb, (), #{ continue_from: \"old.ipynb\" });",
            "main.rhai:2:1: <dir>/old.ipynb is nbformat 3; only nbformat 4 notebooks can be resumed",
        ),
        (
            "create_notebook_session(sb, (), #{ resume: \"missing.ipynb\" });",
            "main.rhai:2:1: cannot read notebook <dir>/missing.ipynb: No such file or directory (os error 2)",
        ),
        (
            "create_notebook_session(sb, (), #{ nmae: \"x\" });",
            "main.rhai:2:1: notebook session options: unknown field `nmae`; did you mean `name`? \
             (valid fields: `name`, `resume`, `continue_from`, `timeout`, `python_packages`, `secrets`, `env`, `notebook_dir`, `output_dir`, `port`, `workspace_dir`)",
        ),
        (
            "let s = create_notebook_session(sb, ());\ns.exec(\"1\", #{ hiden: true });",
            "main.rhai:3:3: exec options: unknown field `hiden`; did you mean `hidden`? \
             (valid fields: `hidden`, `timeout`, `raise`)",
        ),
    ];
    for (code, want) in cases {
        let out = env.run(
            &format!("let sb = Sandbox(#{{ execution_mode: \"notebook\" }}).start();\n{code}"),
            &[],
        );
        assert_eq!(
            env.normalise(&failed(&out)),
            format!("error: {want}\n"),
            "{code}"
        );
    }
    // A sandbox without ipykernel: the kernel's own error is shown.
    let out = env.run(
        "let sb = Sandbox(#{}).start();\ncreate_notebook_session(sb, ());",
        &[],
    );
    let err = failed(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines[0],
        "error: main.rhai:2:1: the kernel exited while starting (exit status: 1); is ipykernel \
         installed in the sandbox env? (execution_mode: \"notebook\" adds it) Its log:",
        "{err}"
    );
    // The log: the env's Python (under the shared cache, its key varies; with
    // SEER_TEST_BACKEND=ssh or slurm under the test's remote folder, whose cache links to
    // the shared one) says why.
    assert_eq!(lines.len(), 2, "{err}");
    let envs = shared_cache().join("envs");
    let (python, why) = lines[1].split_once(": ").unwrap_or_default();
    assert!(
        (python.starts_with(&*envs.to_string_lossy())
            || python.starts_with(&*env.path().to_string_lossy()))
            && python.ends_with("/bin/python"),
        "{err}"
    );
    assert_eq!(why, "No module named ipykernel_launcher");
}

#[test]
fn local_notebook_session_needs_no_sandbox_config() {
    let env = Env::new();
    let out = env.run(
        "let s = create_local_notebook_session(());\nprint(s.exec(\"6 * 7\").text);",
        &[],
    );
    assert_eq!(ok(&out), "42\n\n");
}

// The same tests with every sandbox on ssh and on Slurm.
on_remote_backends!(
    outputs_errors_and_notebook_file,
    hidden_timeouts_death_restart_edit_and_markdown,
    resume_and_continue_from_a_notebook,
    bad_notebook_and_bad_options_are_clear_errors,
);
