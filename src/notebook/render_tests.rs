//! Tests of the rendering; the output builders here are also used by the MCP tests.

use rmcp::model::CallToolResult;
use serde_json::json;

use super::*;
use crate::notebook::mcp::DEFAULT_MAX_OUTPUT_CHARS;

/// A real 1x1 PNG.
pub(crate) const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9\
                   awAAAABJRU5ErkJggg==";

/// A stream output stored as a list of lines, as Jupyter writes it. (Built through
/// serde, the way a notebook file is read.)
pub(crate) fn stream(name: &str, text: &str) -> Output {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    serde_json::from_value(json!({"output_type": "stream", "name": name, "text": lines})).unwrap()
}

pub(crate) fn bundle(result: bool, entries: &[(&str, Value)]) -> Output {
    let data: BTreeMap<String, Value> = entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    if result {
        Output::ExecuteResult {
            execution_count: Some(1),
            data,
            metadata: BTreeMap::new(),
        }
    } else {
        Output::DisplayData {
            data,
            metadata: BTreeMap::new(),
        }
    }
}

/// An error as IPython sends it: the traceback has ANSI colours.
pub(crate) fn error(ename: &str, evalue: &str) -> Output {
    Output::Error {
        ename: ename.to_string(),
        evalue: evalue.to_string(),
        traceback: vec![
            "\u{1b}[0;31m-----------------------------------\u{1b}[0m".to_string(),
            format!(
                "\u{1b}[0;31m{ename}\u{1b}[0m Traceback (most recent call last)\nCell \u{1b}[0;32mIn[1], line 1\u{1b}[0m"
            ),
            format!("\u{1b}[0;31m{ename}\u{1b}[0m: {evalue}"),
        ],
    }
}

fn run_of(outputs: Vec<Output>, status: RunStatus, note: Option<&str>) -> CellRun {
    CellRun {
        cell_index: Some(2),
        execution_count: Some(5),
        outputs,
        status,
        note: note.map(str::to_string),
    }
}

pub(crate) fn text_of(result: &CallToolResult) -> &str {
    result.content[0]
        .as_text()
        .map(|t| t.text.as_str())
        .unwrap_or("<not text>")
}

#[test]
fn renders_each_output_kind() {
    const H: &str = "[cell 2, execution_count 5]";
    let ok = |outputs: Vec<Output>| run_of(outputs, RunStatus::Ok, None);
    let figure = "<Figure size 640x480 with 1 Axes>";
    let traceback = "ZeroDivisionError: division by zero\n\
        -----------------------------------\n\
        ZeroDivisionError Traceback (most recent call last)\n\
        Cell In[1], line 1\n\
        ZeroDivisionError: division by zero";
    let progress = "\r 50%|#####     |\r100%|##########|\r\ndone\n";
    let link = "\u{1b}[1;32mgreen\u{1b}[0m \u{1b}]8;;http://x\u{7}link\u{1b}]8;;\u{7}\n";
    let died = "the kernel died; it was restarted and its state is lost";
    let cases: Vec<(&str, CellRun, String)> = vec![
        ("no outputs", ok(vec![]), H.into()),
        (
            "stdout",
            ok(vec![stream("stdout", "hello\nworld\n")]),
            format!("{H}\nhello\nworld"),
        ),
        (
            "stdout chunks are merged",
            ok(vec![stream("stdout", "a"), stream("stdout", "b\n")]),
            format!("{H}\nab"),
        ),
        (
            "stderr is labelled",
            ok(vec![
                stream("stdout", "out\n"),
                stream("stderr", "warn\n"),
                stream("stdout", "more\n"),
            ]),
            format!("{H}\nout\n[stderr]\nwarn\nmore"),
        ),
        (
            "empty streams are skipped",
            ok(vec![stream("stdout", ""), stream("stderr", "\n")]),
            H.into(),
        ),
        (
            "a progress bar keeps its final state",
            ok(vec![
                stream("stderr", "\r  0%|          |"),
                stream("stderr", progress),
            ]),
            format!("{H}\n[stderr]\n100%|##########|\ndone"),
        ),
        (
            "ansi in streams",
            ok(vec![stream("stdout", link)]),
            format!("{H}\ngreen link"),
        ),
        (
            "text/plain stored as lines",
            ok(vec![bundle(true, &[("text/plain", json!(["1\n", "2"]))])]),
            format!("{H}\n1\n2"),
        ),
        (
            "markdown is preferred",
            ok(vec![bundle(
                false,
                &[
                    ("text/markdown", json!("**bold**\n")),
                    (
                        "text/plain",
                        json!("<IPython.core.display.Markdown object>"),
                    ),
                ],
            )]),
            format!("{H}\n**bold**"),
        ),
        (
            "plain beats html",
            ok(vec![bundle(
                true,
                &[
                    ("text/html", json!("<table></table>")),
                    ("text/plain", json!("   a\n0  1")),
                ],
            )]),
            format!("{H}\n   a\n0  1"),
        ),
        (
            "html only",
            ok(vec![bundle(
                false,
                &[("text/html", json!(["<b>", "hi</b>"]))],
            )]),
            format!("{H}\n[html output, 9 chars]"),
        ),
        (
            "json is pretty-printed",
            ok(vec![bundle(
                false,
                &[
                    ("application/json", json!({"a": 1, "b": [true]})),
                    ("text/plain", json!("<IPython.core.display.JSON object>")),
                ],
            )]),
            format!("{H}\n{{\n  \"a\": 1,\n  \"b\": [\n    true\n  ]\n}}"),
        ),
        (
            "latex",
            ok(vec![bundle(false, &[("text/latex", json!("$x^2$"))])]),
            format!("{H}\n$x^2$"),
        ),
        (
            "unknown mime type",
            ok(vec![bundle(
                false,
                &[("application/vnd.custom", json!({"x": 1}))],
            )]),
            format!("{H}\n[application/vnd.custom output, 7 chars]"),
        ),
        (
            "error with an ansi traceback",
            run_of(
                vec![
                    stream("stdout", "before\n"),
                    error("ZeroDivisionError", "division by zero"),
                ],
                RunStatus::Error,
                None,
            ),
            format!("{H}\nbefore\n{traceback}\n[error: the code raised an exception]"),
        ),
        (
            "error without traceback",
            run_of(
                vec![Output::Error {
                    ename: "E".into(),
                    evalue: "v".into(),
                    traceback: vec![],
                }],
                RunStatus::Error,
                None,
            ),
            format!("{H}\nE: v\n[error: the code raised an exception]"),
        ),
        (
            "image",
            ok(vec![bundle(
                false,
                &[
                    ("image/png", json!([&PNG[..30], "\n", &PNG[30..]])),
                    ("text/plain", json!(figure)),
                ],
            )]),
            format!("{H}\n{figure}\n[image 1: image/png, attached]"),
        ),
        (
            "bad base64 is not attached",
            ok(vec![bundle(false, &[("image/png", json!("not base64!"))])]),
            format!("{H}\n[image/png output not attached: its data is not valid base64]"),
        ),
        (
            "the wrong image type is not attached",
            ok(vec![bundle(false, &[("image/jpeg", json!(PNG))])]),
            format!("{H}\n[image/jpeg output not attached: its data is not an image of that type]"),
        ),
        (
            "timed out",
            run_of(
                vec![stream("stdout", "step 1\n")],
                RunStatus::TimedOut,
                None,
            ),
            format!("{H}\nstep 1\n[interrupted: timed out]"),
        ),
        (
            "aborted",
            run_of(vec![], RunStatus::Aborted, None),
            format!("{H}\n[aborted: the kernel did not run this code]"),
        ),
        (
            "kernel died, with a note",
            run_of(vec![], RunStatus::KernelDied, Some(died)),
            format!("{H}\n[kernel died while running this code]\n[note: {died}]"),
        ),
    ];
    for (name, run, expected) in cases {
        let result = render_cell_run(&run, DEFAULT_MAX_OUTPUT_CHARS);
        assert_eq!(text_of(&result), expected, "case {name:?}");
        assert_eq!(
            result.content.len(),
            1 + usize::from(name == "image"),
            "case {name:?}"
        );
        assert_eq!(result.is_error, Some(false), "case {name:?}");
    }
}

#[test]
fn header_without_execution_count() {
    let run = CellRun {
        cell_index: Some(0),
        execution_count: None,
        outputs: vec![],
        status: RunStatus::Aborted,
        note: None,
    };
    assert_eq!(
        text_of(&render_cell_run(&run, 100)),
        "[cell 0, no execution_count]\n[aborted: the kernel did not run this code]"
    );
    let hidden = CellRun {
        cell_index: None,
        outputs: vec![stream("stdout", "set up\n")],
        status: RunStatus::Ok,
        ..run
    };
    assert_eq!(
        text_of(&render_cell_run(&hidden, 100)),
        "[hidden execution, no execution_count]\nset up"
    );
}

#[test]
fn images_become_image_content_in_order() {
    let jpeg = "/9j/4AAQSkZJRgABAQ=="; // a JPEG header: FF D8 FF E0 ...
    let outputs = vec![
        bundle(
            false,
            &[(
                "image/png",
                json!(format!("{}\n{}\n", &PNG[..10], &PNG[10..])),
            )],
        ),
        stream("stdout", "between\n"),
        bundle(
            true,
            &[
                ("image/jpeg", json!(jpeg)),
                ("image/png", json!(PNG)),
                ("text/plain", json!("<Image>")),
            ],
        ),
    ];
    let result = render_cell_run(&run_of(outputs, RunStatus::Ok, None), 1000);
    assert_eq!(
        text_of(&result),
        "[cell 2, execution_count 5]\n[image 1: image/png, attached]\nbetween\n<Image>\n\
         [image 2: image/png, attached]\n[image 3: image/jpeg, attached]"
    );
    let images: Vec<(&str, &str)> = result.content[1..]
        .iter()
        .map(|c| {
            c.as_image()
                .map(|i| (i.mime_type.as_str(), i.data.as_str()))
                .unwrap()
        })
        .collect();
    assert_eq!(
        images,
        vec![("image/png", PNG), ("image/png", PNG), ("image/jpeg", jpeg)]
    );
}

#[test]
fn long_output_is_cut_in_the_middle() {
    let digits: String = "0123456789".repeat(10);
    let run = run_of(
        vec![stream("stdout", &digits)],
        RunStatus::TimedOut,
        Some("n"),
    );
    assert_eq!(
        text_of(&render_cell_run(&run, 20)),
        "[cell 2, execution_count 5]\n0123456789\n[... 80 characters omitted ...]\n0123456789\n\
         [interrupted: timed out]\n[note: n]"
    );
    // An odd limit keeps one more character of the tail; characters, not bytes, count.
    let run = run_of(vec![stream("stdout", "ééééé-üüüüü")], RunStatus::Ok, None);
    assert_eq!(
        text_of(&render_cell_run(&run, 5)),
        "[cell 2, execution_count 5]\néé\n[... 6 characters omitted ...]\nüüü"
    );
    // 0 means no limit; text at the limit is kept whole.
    assert_eq!(
        text_of(&render_cell_run(&run, 0)),
        "[cell 2, execution_count 5]\nééééé-üüüüü"
    );
    assert_eq!(
        text_of(&render_cell_run(&run, 11)),
        "[cell 2, execution_count 5]\nééééé-üüüüü"
    );
}

#[test]
fn strips_ansi_sequences() {
    assert_eq!(
        strip_ansi("\u{1b}[38;5;12mblue\u{1b}[0m\u{1b}(B!\u{1b}]0;title\u{1b}\\."),
        "blue!."
    );
    assert_eq!(strip_ansi("plain ✓"), "plain ✓");
    assert_eq!(strip_ansi("cut\u{1b}[1"), "cut");
    assert_eq!(
        strip_ansi("\u{1b}[0;31mZeroDivisionError\u{1b}[0m: x"),
        "ZeroDivisionError: x"
    );
    // A CSI sequence ends at any final byte, not only at a letter.
    assert_eq!(strip_ansi("a\u{1b}[2~b"), "ab");
    // A hyperlink (OSC 8, ended by BEL) keeps only its text.
    assert_eq!(
        strip_ansi("\u{1b}]8;;http://x\u{7}link\u{1b}]8;;\u{7}!"),
        "link!"
    );
    // Two-character escapes such as ESC = (keypad mode).
    assert_eq!(strip_ansi("a\u{1b}=b"), "ab");
}

#[test]
fn outputs_text_is_the_plain_text_of_each_output() {
    let outputs = vec![
        stream("stdout", "a\n"),
        stream("stderr", "b\n"),
        bundle(
            false,
            &[
                ("image/png", json!(PNG)),
                ("text/plain", json!(["<Figure ", "size 1x1>"])),
            ],
        ),
        bundle(true, &[("text/html", json!("<b>x</b>"))]),
        error("ZeroDivisionError", "division by zero"),
        Output::Error {
            ename: "E".into(),
            evalue: "v".into(),
            traceback: vec![],
        },
        Output::Error {
            ename: "L".into(),
            evalue: "".into(),
            traceback: vec!["see \u{1b}]8;;http://x\u{7}docs\u{1b}]8;;\u{7}".into()],
        },
    ];
    assert_eq!(
        outputs_text(&outputs),
        "a\nb\n<Figure size 1x1>\n[image/png]\n\
         -----------------------------------\n\
         ZeroDivisionError Traceback (most recent call last)\n\
         Cell In[1], line 1\n\
         ZeroDivisionError: division by zero\n\
         E: v\n\
         see docs\n"
    );
}
