//! Rhai's generic "Function not found" and "Unknown property" errors, explained for seer's
//! types: the closest method or property the type has, the signatures when only the
//! arguments were wrong, and the seer name of a Seer (Python) name that differs. A
//! translated Seer experiment hits these first.

use std::collections::BTreeMap;

use rhai::Engine;

use super::reference::{self, Kind};

/// Seer (Python) names that seer spells differently, per receiver type: (type, name, what
/// to write instead). Types are seer's script types (`map` for Library and Skill maps).
const SEER_NAMES: &[(&str, &str, &str)] = &[
    (
        "NotebookSession",
        "exec_file",
        "run a file's code with `s.exec(read_file(path))`",
    ),
    (
        "Sandbox",
        "code_server_url",
        "not supported yet: seer starts no VS Code server (`debug`)",
    ),
    (
        "map",
        "get_prompt_docs",
        "a Library is a map in seer; the docs of a workspace's libraries are `ws.get_library_docs()` or `session.library_docs`",
    ),
    (
        "map",
        "from_function",
        "Seer's `Skill.from_function(f)` is `Skill::from_function(file, name)` in seer: the interface file and the name of its `@expose` function",
    ),
];

/// Seer's class-level names written with a dot, which Rhai reads as a variable.
const STATIC_NAMES: &[(&str, &str)] = &[
    (
        "Library",
        "Seer's `Library.from_file(...)` is `Library::from_file(...)` in Rhai (also `from_code`, `from_directory`, `from_skill_dir`, `toolkit`)",
    ),
    (
        "Skill",
        "Seer's `Skill.from_dir(...)` is `Skill::from_dir(...)` in Rhai (also `Skill::from_function(file, name)`, or `Skill(#{ name, description, body })`)",
    ),
    (
        "Sandbox",
        "Seer's class methods are `Sandbox::from_id(id)` / `Sandbox::from_snapshot(id)` in Rhai; a sandbox is `Sandbox(#{ ... }).start()`",
    ),
    (
        "ExecutionMode",
        "Seer's `ExecutionMode.NOTEBOOK` / `.CLI` are the strings `execution_mode: \"notebook\"` / `\"cli\"` in seer",
    ),
];

/// The methods and properties of seer's types, from the engine's metadata.
pub struct Names {
    /// type → (name, kind, signature).
    members: BTreeMap<String, Vec<(String, Kind, String)>>,
}

impl Names {
    pub fn new(engine: &Engine) -> Self {
        let mut members: BTreeMap<String, Vec<(String, Kind, String)>> = BTreeMap::new();
        for f in reference::api(engine, false) {
            if let Some(t) = f.this_type()
                && t.starts_with(|c: char| c.is_ascii_uppercase())
            {
                members.entry(t.to_string()).or_default().push((
                    f.name.clone(),
                    f.kind,
                    f.signature(),
                ));
            }
        }
        Self { members }
    }

    /// A better message for `msg` (an error's text without its position), if it is one of
    /// Rhai's "not found" errors about seer's types or Seer's names.
    pub fn explain(&self, msg: &str) -> Option<String> {
        if let Some(sig) = msg.strip_prefix("Function not found: ") {
            let (name, args) = sig.split_once(" (")?;
            let args = args.strip_suffix(')')?;
            let this = args.split(", ").next()?.trim();
            return self.member(this, name.trim(), Kind::Method, args);
        }
        if let Some(rest) = msg.strip_prefix("Unknown property '") {
            let (prop, rest) = rest.split_once("' - a getter is not registered for type '")?;
            let this = rest.strip_suffix('\'')?;
            return self.member(this, prop, Kind::Property, "");
        }
        if let Some(var) = msg.strip_prefix("Variable not found: ") {
            let var = var.trim();
            return STATIC_NAMES
                .iter()
                .find(|(n, _)| *n == var)
                .map(|(_, hint)| format!("{msg}: {hint}"));
        }
        None
    }

    /// The message for `name`, a method or property `this` does not have.
    pub fn unknown_member(&self, this: &str, name: &str, kind: Kind) -> String {
        let what = if kind == Kind::Method {
            "method"
        } else {
            "property"
        };
        self.member(this, name, kind, "")
            .unwrap_or_else(|| format!("`{this}` has no {what} `{name}`"))
    }

    fn member(&self, this: &str, name: &str, kind: Kind, args: &str) -> Option<String> {
        let what = if kind == Kind::Method {
            "method"
        } else {
            "property"
        };
        let this_shown = match this {
            "Map" => "map",
            t => t,
        };
        if let Some((_, _, hint)) = SEER_NAMES
            .iter()
            .find(|(t, n, _)| *t == this_shown && *n == name)
        {
            return Some(format!("`{this_shown}` has no {what} `{name}`: {hint}"));
        }
        let members = self.members.get(this)?;
        // The name exists, with other arguments: show how it is called.
        let same: Vec<&str> = members
            .iter()
            .filter(|(n, k, _)| n == name && *k == kind)
            .map(|(_, _, s)| s.as_str())
            .collect();
        if !same.is_empty() {
            let given: Vec<&str> = args.split(", ").skip(1).map(script_type).collect();
            return Some(format!(
                "`{this}.{name}` does not take ({}); call it as {}",
                given.join(", "),
                same.join(" or ")
            ));
        }
        // A ScopedSandbox forwards nothing else: the sandbox's own calls are on `.sandbox`.
        if this == "ScopedSandbox"
            && let Some(sb) = self.members.get("Sandbox")
            && sb.iter().any(|(n, _, _)| n == name)
        {
            return Some(format!(
                "`ScopedSandbox` has no {what} `{name}`: the sandbox's own calls are on `scoped.sandbox` (`scoped.sandbox.{name}{}`)",
                if kind == Kind::Method { "(...)" } else { "" }
            ));
        }
        let mut names: Vec<&str> = members.iter().map(|(n, _, _)| n.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let close = crate::config::closest(name, names.iter().copied())
            .map(|c| format!("; did you mean `{c}`?"))
            .unwrap_or_default();
        Some(format!(
            "`{this}` has no {what} `{name}`{close} (its methods and properties: {}; see `seer docs`)",
            names.join(", ")
        ))
    }
}

/// A type as Rhai's error names it, as scripts and `seer docs` call it.
fn script_type(t: &str) -> &str {
    match t.trim() {
        "&str | ImmutableString | String" => "string",
        "i64" => "int",
        "f64" => "float",
        "Map" => "map",
        "Array" => "array",
        t => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct Thing;

    fn names() -> Names {
        let mut e = Engine::new_raw();
        e.register_type_with_name::<Thing>("NotebookSession");
        super::super::api_util::func(&mut e, "exec", "code", "Runs.", |_: &mut Thing, _: &str| {
            1_i64
        });
        super::super::api_util::getter(&mut e, "notebook_path", "", "Path.", |_: &mut Thing| 1_i64);
        Names::new(&e)
    }

    #[test]
    fn unknown_members_name_the_closest_and_seers_mapping() {
        let n = names();
        assert_eq!(
            n.explain(
                "Function not found: exce (NotebookSession, &str | ImmutableString | String)"
            )
            .unwrap(),
            "`NotebookSession` has no method `exce`; did you mean `exec`? (its methods and properties: exec, notebook_path; see `seer docs`)"
        );
        assert_eq!(
            n.explain("Function not found: exec (NotebookSession, i64, Map)")
                .unwrap(),
            "`NotebookSession.exec` does not take (int, map); call it as s.exec(code: string) -> int"
        );
        assert_eq!(
            n.explain(
                "Unknown property 'code_server_url' - a getter is not registered for type 'Sandbox'"
            )
            .unwrap(),
            "`Sandbox` has no property `code_server_url`: not supported yet: seer starts no VS Code server (`debug`)"
        );
        assert_eq!(
            n.explain("Variable not found: Library").unwrap(),
            "Variable not found: Library: Seer's `Library.from_file(...)` is `Library::from_file(...)` in Rhai (also `from_code`, `from_directory`, `from_skill_dir`, `toolkit`)"
        );
        assert_eq!(n.explain("Function not found: foo (i64)"), None);
        assert_eq!(n.explain("Division by zero"), None);
    }
}
