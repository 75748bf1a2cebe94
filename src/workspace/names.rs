//! The names a workspace accepts: library names are Python module names (`import name`),
//! skill names are folder names.

use anyhow::{Result, bail};

use crate::python_syntax::{PY_KEYWORDS, is_module_name};

/// Ok when `import <name>` works; else an error that says why not and suggests a name.
pub(super) fn check_module_name(name: &str, what: &str) -> Result<()> {
    if is_module_name(name) {
        return Ok(());
    }
    if PY_KEYWORDS.contains(&name) {
        bail!(
            "{what}: `{name}` is a Python keyword, so `import {name}` cannot work; rename it, \
             e.g. to `{name}_lib`"
        );
    }
    let mut suggestion: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if suggestion.trim_matches('_').is_empty() {
        suggestion = "my_library".into();
    } else if suggestion.starts_with(|c: char| c.is_ascii_digit()) {
        suggestion.insert_str(0, "lib_");
    }
    bail!(
        "{what}: `{name}` is not a valid Python module name (only letters, digits and `_`, not \
         starting with a digit); rename it, e.g. to `{suggestion}`"
    )
}

/// A skill name becomes a folder name: it must be one plain path component.
pub(super) fn check_skill_name(name: &str, what: &str) -> Result<()> {
    let bad = name.trim().is_empty()
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    if bad {
        bail!(
            "{what}: `{name}` cannot be a skill name (it names the skill's folder); use \
             letters, digits and `-`, e.g. `my-skill`"
        );
    }
    Ok(())
}
