//! Helpers and shared cases for the workspace tests.

use std::fs;
use std::path::Path;

use anyhow::Result;

use crate::sandbox::models::ModelHandle;

/// Writes `text` to `path`, creating its folders.
pub(super) fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// The error of a failed result, with its causes.
pub(super) fn err_of<T: std::fmt::Debug>(r: Result<T>) -> String {
    format!("{:#}", r.unwrap_err())
}

/// A visible, non-PEFT local model.
pub(super) fn handle(name: &str, path: &str, var: &str) -> ModelHandle {
    ModelHandle {
        name: name.into(),
        path: path.into(),
        revision: "local".into(),
        var_name: var.into(),
        hidden: false,
        is_peft: false,
        base_model: None,
        base_model_path: None,
        base_model_revision: None,
        load_as_peft: false,
    }
}

/// `(source, docstring)`; the Python tests check these against `ast.get_docstring`.
pub(super) const DOCSTRING_CASES: &[(&str, &str)] = &[
    ("\"\"\"Doc.\"\"\"", "Doc."),
    ("'''Single quotes.'''\nx = 1", "Single quotes."),
    ("# comment\n\n\"\"\"After comment.\"\"\"", "After comment."),
    (
        "#!/usr/bin/env python\n# -*- coding: utf-8 -*-\n\n\"\"\"X\"\"\"",
        "X",
    ),
    ("r\"\"\"Raw \\n stays\"\"\"", "Raw \\n stays"),
    ("R'''Raw \\''' too'''", "Raw \\''' too"),
    ("u'''Unicode prefix'''", "Unicode prefix"),
    (
        "\"\"\"Line one.\n\n    Indented more.\n      Deeper.\n    \"\"\"",
        "Line one.\n\nIndented more.\n  Deeper.",
    ),
    (
        "\"\"\"\n    Starts on line two.\n    \"\"\"",
        "Starts on line two.",
    ),
    ("\"One-liner.\"", "One-liner."),
    ("'single' ", "single"),
    (
        "\"\"\"Escaped \\\"quote\\\" and \\\\ backslash\"\"\"",
        "Escaped \"quote\" and \\ backslash",
    ),
    (
        "\"\"\"Tab\\tand \\u00e9 and \\x41 and \\q\"\"\"",
        "Tab     and é and A and \\q",
    ),
    ("\"\"\"A\n\tTabbed\n\t  more\"\"\"", "A\nTabbed\n  more"),
    ("\"\"\"Has ''' inside\"\"\"", "Has ''' inside"),
    ("\u{feff}\"\"\"BOM\"\"\"", "BOM"),
    ("\n\n\"\"\"After blank lines\"\"\"\n\n", "After blank lines"),
    ("import os\n\"\"\"Not a docstring\"\"\"", ""),
    ("f\"\"\"nope\"\"\"", ""),
    ("b\"\"\"nope\"\"\"", ""),
    ("rb\"\"\"nope\"\"\"", ""),
    ("\"\"\"unterminated", ""),
    ("\"broken\nstring\"", ""),
    ("", ""),
    ("# only a comment", ""),
    ("x = 1", ""),
];
