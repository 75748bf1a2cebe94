//! The registered API as data: every function the engine knows (from rhai's `metadata`
//! feature), with readable types and its doc comment. Used by `seer docs` (Markdown),
//! `seer definitions` (`.d.rhai` files for the Rhai language server), and the REPL's
//! `:help` and completion.
//!
//! Docs and parameter names live at the registrations: each API family registers its
//! functions through `api_util::func`/`getter`/`module_fn`, which store them in rhai's
//! function metadata, and this module reads them back. What is here is presentation:
//! sections and their order, receiver names in signatures, Rust type paths read as script
//! types, which functions are not API (operators, `to_string`, `__`-prefixed internals).
//!
//! The one exception is custom syntax (`spawn`): rhai's metadata lists functions only, so
//! `SYNTAX` lists it, with its doc kept next to its registration
//! ([`api_agent::SPAWN`](super::api_agent::SPAWN)). It is not written to the `.d.rhai` files: a definition
//! `fn spawn(..)` would declare a keyword as a function.

use std::collections::BTreeMap;
use std::path::Path;

use rhai::Engine;
use serde::Deserialize;

/// What kind of thing a registered function is, seen from a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `name(args)`.
    Function,
    /// `value.name(args)`: the first parameter is a seer type.
    Method,
    /// `value.name` (a registered getter).
    Property,
    /// `name(args)` that is custom syntax rather than a function (`spawn`).
    Syntax,
}

/// Custom syntax documented like a function: `keyword(params) -> ret`.
pub struct Syntax {
    pub keyword: &'static str,
    /// (name, script type).
    pub params: &'static [(&'static str, &'static str)],
    pub ret: &'static str,
    pub doc: &'static str,
}

/// The custom syntax seer registers (see the module doc).
const SYNTAX: &[Syntax] = &[super::api_agent::SPAWN];

impl Syntax {
    fn api_fn(&self) -> ApiFn {
        ApiFn {
            module: None,
            name: self.keyword.to_string(),
            kind: Kind::Syntax,
            params: self
                .params
                .iter()
                .map(|(n, t)| (n.to_string(), t.to_string()))
                .collect(),
            ret: self.ret.to_string(),
            doc: Some(self.doc.to_string()),
        }
    }
}

/// One registered overload.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiFn {
    /// The static module (`Sandbox` for `Sandbox::from_id`), if any.
    pub module: Option<String>,
    pub name: String,
    pub kind: Kind,
    /// Parameter names (may be `_`) and script-level types (`string`, `map`, `Sandbox`, `?`).
    pub params: Vec<(String, String)>,
    pub ret: String,
    /// The doc comment: Markdown, possibly several lines (rhai's standard library).
    pub doc: Option<String>,
}

impl ApiFn {
    /// The receiver type of a method or property.
    pub fn this_type(&self) -> Option<&str> {
        match self.kind {
            Kind::Function | Kind::Syntax => None,
            Kind::Method | Kind::Property => self.params.first().map(|(_, t)| t.as_str()),
        }
    }

    /// How a script calls it: `Sandbox(cfg: map) -> Sandbox`, `sb.exec(cmd: string) -> string`,
    /// `sb.id -> string`, `Sandbox::from_id(id: string) -> Sandbox`.
    pub fn signature(&self) -> String {
        let shown = |ps: &[(String, String)]| {
            ps.iter()
                .map(|(n, t)| match (n.as_str(), t.as_str()) {
                    ("_" | "", t) => t.to_string(),
                    (n, "?" | "") => n.to_string(),
                    (n, t) => format!("{n}: {t}"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        // `?` (any value) reads as nothing, as in the definitions: the doc says what it is.
        let ret = match self.ret.as_str() {
            "" | "()" | "?" => String::new(),
            r => format!(" -> {r}"),
        };
        match self.kind {
            Kind::Property => format!("{}.{}{ret}", receiver(self.this_type()), self.name),
            Kind::Method => format!(
                "{}.{}({}){ret}",
                receiver(self.this_type()),
                self.name,
                shown(&self.params[1..])
            ),
            Kind::Function | Kind::Syntax => match &self.module {
                Some(m) => format!("{m}::{}({}){ret}", self.name, shown(&self.params)),
                None => format!("{}({}){ret}", self.name, shown(&self.params)),
            },
        }
    }

    /// The name `:help` and the `seer docs` headings use: `run_agent`, `Sandbox.exec`,
    /// `Sandbox::from_id`.
    pub fn key(&self) -> String {
        match (&self.module, self.this_type()) {
            (Some(m), _) => format!("{m}::{}", self.name),
            (None, Some(t)) => format!("{t}.{}", self.name),
            (None, None) => self.name.clone(),
        }
    }

    pub fn section(&self) -> &'static str {
        // A session is made by a method of its sandbox: with the sessions.
        let owner = match self.name.as_str() {
            n @ ("create_notebook_session" | "create_cli_session") => n,
            n => self.module.as_deref().or(self.this_type()).unwrap_or(n),
        };
        match owner {
            "Sandbox" | "SandboxConfig" | "ModelConfig" | "RepoConfig" | "ScopedSandbox" => {
                "Sandboxes"
            }
            "Workspace" | "Library" | "Skill" => "Workspaces, libraries and skills",
            "NotebookSession"
            | "ShellSession"
            | "create_notebook_session"
            | "create_local_notebook_session"
            | "create_local_session"
            | "create_cli_session" => "Sessions",
            "run_agent" | "run_agent_interactive" | "parallel" | "sweep" | "spawn" | "Task" => {
                "Agents and concurrency"
            }
            _ => "Helpers",
        }
    }
}

/// A variable name for a receiver in signatures: `sb`, `s`, `ws`.
fn receiver(t: Option<&str>) -> &'static str {
    match t {
        Some("Sandbox") => "sb",
        Some("ScopedSandbox") => "scoped",
        Some("NotebookSession") => "s",
        Some("ShellSession") => "sh",
        Some("Workspace") => "ws",
        Some("Task") => "t",
        _ => "x",
    }
}

/// The order sections appear in `seer docs`.
pub const SECTIONS: &[&str] = &[
    "Sandboxes",
    "Workspaces, libraries and skills",
    "Sessions",
    "Agents and concurrency",
    "Helpers",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetaModule {
    #[serde(default)]
    modules: BTreeMap<String, MetaModule>,
    #[serde(default)]
    functions: Vec<MetaFn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetaFn {
    name: String,
    num_params: usize,
    #[serde(default)]
    params: Vec<MetaParam>,
    #[serde(default)]
    return_type: String,
    #[serde(default)]
    doc_comments: Vec<String>,
}

#[derive(Deserialize)]
struct MetaParam {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "type")]
    typ: Option<String>,
}

/// A Rust type path as rhai records it, as a script sees it: `string`, `map`, `Sandbox`, `?`.
pub fn script_type(engine: &Engine, raw: &str) -> String {
    let mut t = raw.trim();
    // `Result<T, Box<EvalAltResult>>` (rhai's display form, the standard library's) or the
    // full Rust path: a script sees `T`.
    if let Some(inner) = t
        .strip_prefix("core::result::Result<")
        .or_else(|| t.strip_prefix("Result<"))
        && let Some((ok, err)) = inner.rsplit_once(',')
        && matches!(
            err.trim_start().split('<').next(),
            Some("alloc::boxed::Box" | "Box")
        )
    {
        t = ok;
    }
    let t = t.strip_prefix("&mut ").unwrap_or(t).trim();
    let t = t.strip_prefix('&').unwrap_or(t);
    let last = |s: &str| s.rsplit("::").next().unwrap_or(s).to_string();
    match t {
        "" => String::new(),
        "()" => "()".into(),
        "Dynamic" | "types::dynamic::Dynamic" | "rhai::types::dynamic::Dynamic" => "?".into(),
        "i64" | "int" => "int".into(),
        "f64" | "float" => "float".into(),
        "bool" => "bool".into(),
        "char" => "char".into(),
        "Fn" | "FnPtr" => "Fn".into(),
        "Blob" | "blob" => "blob".into(),
        "Instant" | "timestamp" => "timestamp".into(),
        _ if t.ends_with("String") || t == "str" || t == "string" => "string".into(),
        _ if t.contains("BTreeMap<") || t == "map" || t == "Map" || t.ends_with("::Map") => {
            "map".into()
        }
        _ if t.starts_with("alloc::vec::Vec<")
            || t == "array"
            || t == "Array"
            || t.ends_with("::Array") =>
        {
            "array".into()
        }
        _ if t.contains("::") => {
            let mapped = engine.map_type_name(t);
            if mapped != t {
                mapped.to_string()
            } else {
                last(t)
            }
        }
        _ => t.to_string(),
    }
}

fn convert(engine: &Engine, module: Option<&str>, f: MetaFn) -> Option<ApiFn> {
    // Operators and anonymous functions are not part of the API a person calls by name.
    let first = f.name.chars().next()?;
    if !(first.is_alphabetic() || first == '_') || f.name.starts_with("anon$") {
        return None;
    }
    if f.name.starts_with("set$") || f.name.starts_with("index$") {
        return None;
    }
    // Internals (`__seer_spawn`, what `spawn` calls) are not for scripts.
    if f.name.starts_with("__") {
        return None;
    }
    let mut params: Vec<(String, String)> = f
        .params
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap_or_else(|| "_".into()),
                p.typ
                    .as_deref()
                    .map(|t| script_type(engine, t))
                    .unwrap_or_else(|| "?".into()),
            )
        })
        .collect();
    while params.len() < f.num_params {
        params.push(("_".into(), "?".into()));
    }
    let ret = script_type(engine, &f.return_type);
    let (name, kind) = match f.name.strip_prefix("get$") {
        Some(p) => (p.to_string(), Kind::Property),
        None => {
            let seer_receiver = module.is_none()
                && f.params
                    .first()
                    .and_then(|p| p.typ.as_deref())
                    .is_some_and(|t| {
                        t.starts_with("&mut ") && !is_std_type(&script_type(engine, t))
                    });
            (
                f.name.clone(),
                if seer_receiver {
                    Kind::Method
                } else {
                    Kind::Function
                },
            )
        }
    };
    Some(ApiFn {
        module: module.map(str::to_string),
        name,
        kind,
        params,
        ret,
        doc: doc_text(&f.doc_comments),
    })
}

/// Doc comments as rhai keeps them (`/// line` blocks, `/** block */`s) as text: the
/// comment markers gone, one line per source line, blocks a blank line apart.
fn doc_text(comments: &[String]) -> Option<String> {
    let blocks: Vec<String> = comments
        .iter()
        .map(|c| {
            let c = c.trim();
            let lines: Vec<&str> = match c.strip_prefix("/**") {
                Some(b) => b
                    .strip_suffix("*/")
                    .unwrap_or(b)
                    .lines()
                    .map(|l| {
                        let l = l.trim();
                        l.strip_prefix("* ")
                            .unwrap_or(l.strip_prefix('*').unwrap_or(l))
                    })
                    .collect(),
                None => c
                    .lines()
                    .map(|l| {
                        let l = l.trim().trim_start_matches('/');
                        l.strip_prefix(' ').unwrap_or(l).trim_end()
                    })
                    .collect(),
            };
            let start = lines.iter().position(|l| !l.trim().is_empty()).unwrap_or(0);
            let end = lines
                .iter()
                .rposition(|l| !l.trim().is_empty())
                .map_or(0, |i| i + 1);
            lines.get(start..end).unwrap_or_default().join("\n")
        })
        .filter(|b| !b.is_empty())
        .collect();
    (!blocks.is_empty()).then(|| blocks.join("\n\n"))
}

/// Rhai's own types read in lower case (`string`, `map`, `i32`); seer's are capitalized.
fn is_std_type(t: &str) -> bool {
    matches!(t, "?" | "()" | "Fn")
        || t.contains("Range")
        || t.starts_with(|c: char| !c.is_uppercase())
}

/// Every registered function (the standard library too with `std`), sorted by section,
/// owner and name.
pub fn api(engine: &Engine, std: bool) -> Vec<ApiFn> {
    let json = match engine.gen_fn_metadata_to_json(std) {
        Ok(j) => j,
        Err(e) => {
            tracing::warn!("cannot read the engine's metadata: {e}");
            return vec![];
        }
    };
    let meta: MetaModule = match serde_json::from_str(&json) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!("cannot parse the engine's metadata: {e}");
            return vec![];
        }
    };
    let mut out: Vec<ApiFn> = meta
        .functions
        .into_iter()
        .filter_map(|f| convert(engine, None, f))
        .collect();
    for (name, m) in meta.modules {
        out.extend(
            m.functions
                .into_iter()
                .filter_map(|f| convert(engine, Some(&name), f)),
        );
    }
    out.extend(SYNTAX.iter().map(Syntax::api_fn));
    // Display helpers are how values print, not API.
    out.retain(|f| !(f.kind == Kind::Method && (f.name == "to_string" || f.name == "to_debug")));
    // Functions and methods first, then each static module's; ties by signature, so the
    // order does not depend on how rhai happens to store overloads.
    out.sort_by_cached_key(|f| {
        let sec = SECTIONS
            .iter()
            .position(|s| *s == f.section())
            .unwrap_or(SECTIONS.len());
        (
            sec,
            f.module.clone(),
            f.this_type().map(str::to_string),
            f.kind,
            f.name.clone(),
            f.params.len(),
            f.signature(),
        )
    });
    out.dedup_by(|a, b| a.signature() == b.signature());
    out
}

/// `seer docs`: a Markdown reference of seer's registered API.
pub fn markdown(engine: &Engine) -> String {
    let fns = api(engine, false);
    let mut s = String::from(
        "# seer API reference\n\nGenerated from the functions registered in the Rhai engine \
         (`seer docs`). Rhai's standard library (strings, arrays, maps, `print`, …) comes on top: \
         see <https://rhai.rs/book/>.\n",
    );
    for section in SECTIONS {
        let in_sec: Vec<&ApiFn> = fns.iter().filter(|f| f.section() == *section).collect();
        if in_sec.is_empty() {
            continue;
        }
        s.push_str(&format!("\n## {section}\n"));
        let mut last_key = String::new();
        for f in in_sec {
            let key = f.key();
            if key != last_key {
                s.push_str(&format!("\n### `{key}`\n\n"));
                if let Some(d) = &f.doc {
                    s.push_str(&format!("{d}\n\n"));
                }
                last_key = key;
            }
            s.push_str(&format!("- `{}`\n", f.signature()));
        }
    }
    s
}

fn def_line(f: &ApiFn) -> String {
    let params = f
        .params
        .iter()
        .enumerate()
        .map(|(i, (n, t))| {
            let n = if n == "_" || n.is_empty() {
                if i == 0 && matches!(f.kind, Kind::Method | Kind::Property) {
                    "this".to_string()
                } else {
                    format!("arg{i}")
                }
            } else {
                n.clone()
            };
            if t.is_empty() || t == "?" {
                n
            } else {
                format!("{n}: {t}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let ret = match f.ret.as_str() {
        "" | "?" => String::new(),
        r => format!(" -> {r}"),
    };
    let doc: String = f
        .doc
        .iter()
        .flat_map(|d| d.lines())
        .map(|l| format!("/// {l}").trim_end().to_string() + "\n")
        .collect();
    match f.kind {
        Kind::Property => format!("{doc}fn get {}({params}){ret};\n", f.name),
        _ => format!("{doc}fn {}({params}){ret};\n", f.name),
    }
}

/// The `.d.rhai` files for seer's API: `seer.d.rhai` (global functions, methods and
/// properties) and one per static module (`Sandbox.d.rhai`, …), as (file name, text).
pub fn definition_files(engine: &Engine) -> Vec<(String, String)> {
    let fns = api(engine, false);
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for f in fns.iter().filter(|f| f.kind != Kind::Syntax) {
        let (file, header) = match &f.module {
            Some(m) => (format!("{m}.d.rhai"), format!("module {m};\n")),
            None => ("seer.d.rhai".to_string(), "module static;\n".to_string()),
        };
        let text = files.entry(file).or_insert(header);
        text.push('\n');
        text.push_str(&def_line(f));
    }
    files.into_iter().collect()
}

/// `seer definitions DIR`: seer's API plus rhai's own standard library and operators,
/// so the language server knows every function a script can call. Returns the files
/// written.
pub fn write_definitions(engine: &Engine, dir: &Path) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut written = vec![];
    // Rhai's standard library, from an engine that has nothing else registered: its
    // metadata is complete (seer's own functions are written by `definition_files`).
    let mut std_engine = Engine::new_raw();
    std_engine.register_global_module(rhai::packages::Package::as_shared_module(
        &rhai::packages::StandardPackage::new(),
    ));
    for (name, text) in std_engine.definitions().iter_files() {
        std::fs::write(dir.join(&name), text)?;
        written.push(name);
    }
    for (name, text) in definition_files(engine) {
        std::fs::write(dir.join(&name), text)?;
        written.push(name);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rhai::{Dynamic, Map};

    use super::*;
    use crate::script::api_util::{func, getter, module_fn};

    fn seer_engine() -> (tokio::runtime::Runtime, Engine) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let dir = std::env::temp_dir();
        let host = Arc::new(crate::script::Host::new(
            rt.handle().clone(),
            tokio_util::sync::CancellationToken::new(),
            dir.join("reference-test.rhai"),
            dir.clone(),
            dir.join("outputs"),
            vec![],
        ));
        let engine = crate::script::build_engine(&host);
        (rt, engine)
    }

    #[test]
    fn every_function_has_a_doc_and_named_parameters() {
        let (_rt, engine) = seer_engine();
        let api = api(&engine, false);
        assert!(api.len() > 100, "{} functions", api.len());
        for f in &api {
            assert!(f.doc.is_some(), "no doc: {}", f.signature());
            let receiver = usize::from(matches!(f.kind, Kind::Method | Kind::Property));
            assert!(
                f.params[receiver..].iter().all(|(n, _)| n != "_"),
                "unnamed parameter: {}",
                f.signature()
            );
            assert!(!f.name.starts_with("__"), "internal: {}", f.signature());
        }
    }

    #[test]
    fn spawn_is_listed_as_syntax_but_not_defined() {
        let (_rt, engine) = seer_engine();
        let api = api(&engine, false);
        let spawn = api.iter().find(|f| f.name == "spawn").unwrap();
        assert_eq!(spawn.signature(), "spawn(f: Fn) -> Task");
        assert_eq!(spawn.section(), "Agents and concurrency");
        let files = definition_files(&engine);
        assert!(files.iter().all(|(_, t)| !t.contains("spawn(")));
    }

    #[test]
    fn registrations_carry_names_types_and_docs() {
        #[derive(Clone)]
        struct Thing;
        let mut e = Engine::new_raw();
        e.register_type_with_name::<Thing>("Thing");
        func(
            &mut e,
            "make",
            "n, ws: Workspace -> map",
            "Makes a map.",
            |_: i64, _: Dynamic| -> Dynamic { Dynamic::from_map(Map::new()) },
        );
        func(
            &mut e,
            "poke",
            "text",
            "Pokes it.",
            |_: &mut Thing, _: &str| true,
        );
        getter(&mut e, "size", "", "Its size.", |_: &mut Thing| 3_i64);
        // Names that do not line up with the Rust parameters are dropped (and logged).
        func(&mut e, "bad", "a, b", "Bad.", |_: i64| 1_i64);
        let mut m = rhai::Module::new();
        module_fn(&mut m, &e, "new", "name", "A new one.", |_: &str| Thing);
        e.register_static_module("Thing", m.into());

        let sigs: Vec<(String, Option<String>)> = api(&e, false)
            .iter()
            .map(|f| (f.signature(), f.doc.clone()))
            .collect();
        let want = |sig: &str, doc: &str| {
            assert!(
                sigs.contains(&(sig.to_string(), Some(doc.to_string()))),
                "missing {sig:?} in {sigs:#?}"
            );
        };
        want("make(n: int, ws: Workspace) -> map", "Makes a map.");
        want("x.poke(text: string) -> bool", "Pokes it.");
        want("x.size -> int", "Its size.");
        want("Thing::new(name: string) -> Thing", "A new one.");
        want("bad(int) -> int", "Bad.");
    }

    #[test]
    fn doc_comments_lose_their_markers_and_keep_their_lines() {
        let line = vec!["/// One.\n///\n/// ```rhai\n///     let x = 1;\n/// ```".to_string()];
        assert_eq!(
            doc_text(&line).as_deref(),
            Some("One.\n\n```rhai\n    let x = 1;\n```")
        );
        let block = vec!["/** A block.\n * Second line.\n */".to_string()];
        assert_eq!(doc_text(&block).as_deref(), Some("A block.\nSecond line."));
        assert_eq!(doc_text(&[]), None);
    }

    #[test]
    fn rust_types_read_as_script_types() {
        let e = Engine::new_raw();
        let r = "core::result::Result<alloc::string::String,alloc::boxed::Box<rhai::types::error::EvalAltResult>>";
        assert_eq!(script_type(&e, r), "string");
        assert_eq!(script_type(&e, "types::dynamic::Dynamic"), "?");
        assert_eq!(script_type(&e, "&mut Sandbox"), "Sandbox");
        assert_eq!(
            script_type(
                &e,
                "core::result::Result<alloc::collections::btree::map::BTreeMap<smartstring::SmartString<smartstring::config::LazyCompact>,rhai::types::dynamic::Dynamic>,alloc::boxed::Box<rhai::types::error::EvalAltResult>>"
            ),
            "map"
        );
        assert_eq!(
            script_type(
                &e,
                "core::result::Result<(),alloc::boxed::Box<rhai::types::error::EvalAltResult>>"
            ),
            "()"
        );
        assert_eq!(script_type(&e, "i64"), "int");
        assert_eq!(script_type(&e, "Result<bool, Box<EvalAltResult>>"), "bool");
        assert_eq!(
            script_type(&e, "Result<Array, Box<EvalAltResult>>"),
            "array"
        );
        assert_eq!(script_type(&e, "Result<(), Box<EvalAltResult>>"), "()");
    }
}
