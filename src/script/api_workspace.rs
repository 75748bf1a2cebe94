//! Workspace, Library and Skill: what a notebook session mounts into its kernel.
//! `Library::*` and `Skill::*` return plain maps (printable, storable); `Workspace(#{...})`
//! checks the whole map strictly and returns a `Workspace` value for sessions.

use std::sync::Arc;

use rhai::{Dynamic, Engine, Module, NativeCallContext};

use super::api_util::{func, getter, module_fn};
use super::{Host, RhaiResult, at_call, runtime_error};
use crate::config::from_dynamic;
use crate::sandbox::fsutil::resolve_host;
use crate::workspace::{Library, Skill, WorkspaceConfig, library_docs};

/// The script-side workspace.
#[derive(Clone)]
pub struct WorkspaceHandle(pub Arc<WorkspaceConfig>);

fn to_map<T: serde::Serialize>(
    what: &str,
    r: anyhow::Result<T>,
    ctx: &NativeCallContext,
) -> RhaiResult<Dynamic> {
    let v = r.map_err(|e| at_call(runtime_error(format!("{what}: {e:#}")), ctx))?;
    rhai::serde::to_dynamic(v)
}

pub fn register(engine: &mut Engine, host: &Arc<Host>) {
    engine.register_type_with_name::<WorkspaceHandle>("Workspace");
    const WORKSPACE: &str = "A workspace: `#{ libraries, skills, skill_dirs, local_dirs, local_files, custom_init_code, preload_models, hidden_model_loading }`.";
    func(engine, "Workspace", "", WORKSPACE, || {
        WorkspaceHandle(Arc::new(WorkspaceConfig::default()))
    });
    func(
        engine,
        "Workspace",
        "cfg",
        WORKSPACE,
        |m: rhai::Map| -> RhaiResult<WorkspaceHandle> {
            let cfg: WorkspaceConfig =
                from_dynamic("Workspace", &Dynamic::from_map(m)).map_err(|e| runtime_error(e.0))?;
            Ok(WorkspaceHandle(Arc::new(cfg)))
        },
    );
    func(
        engine,
        "get_library_docs",
        "",
        "The docstrings of the workspace's libraries, as text for a prompt.",
        |w: &mut WorkspaceHandle| library_docs(&w.0),
    );
    getter(
        engine,
        "library_docs",
        "",
        "Same as `get_library_docs()`.",
        |w: &mut WorkspaceHandle| library_docs(&w.0),
    );
    getter(
        engine,
        "libraries",
        "-> array",
        "The workspace's libraries (maps).",
        |w: &mut WorkspaceHandle| -> RhaiResult<Dynamic> {
            rhai::serde::to_dynamic(&w.0.libraries)
        },
    );
    engine.register_fn("to_string", |w: &mut WorkspaceHandle| {
        let names: Vec<&str> = w.0.libraries.iter().map(|l| l.name.as_str()).collect();
        format!(
            "Workspace(libraries: [{}], skills: {})",
            names.join(", "),
            w.0.skills.len()
        )
    });

    let mut library = Module::new();
    // The constructors that read a host path: the path is watched under `--watch`.
    type FromPath = fn(&std::path::Path, &str) -> anyhow::Result<Library>;
    let from_paths: [(&str, &str, &str, FromPath); 3] = [
        (
            "from_file",
            "path -> map",
            "A Python file importable in the kernel (`import name`); its module docstring is its doc.",
            |b, p| Library::from_file(b, p),
        ),
        (
            "from_directory",
            "path -> map",
            "A Python package directory (with `__init__.py`).",
            |b, p| Library::from_directory(b, p),
        ),
        (
            "from_skill_dir",
            "dir -> map",
            "A library from a skill dir (`code.py` + `SKILL.md`).",
            |b, p| Library::from_skill_dir(b, p),
        ),
    ];
    for (name, params, doc, make) in from_paths {
        let h = host.clone();
        let what = format!("Library::{name}");
        module_fn(
            &mut library,
            engine,
            name,
            params,
            doc,
            move |ctx: NativeCallContext, path: &str| {
                h.track(&resolve_host(&h.script_dir, path));
                to_map(&what, make(&h.script_dir, path), &ctx)
            },
        );
    }
    module_fn(
        &mut library,
        engine,
        "from_code",
        "name, code -> map",
        "A library from source text.",
        |ctx: NativeCallContext, name: &str, code: &str| {
            to_map("Library::from_code", Library::from_code(name, code), &ctx)
        },
    );
    module_fn(
        &mut library,
        engine,
        "toolkit",
        "-> map",
        "The interpretability toolkit shipped with seer, importable as the package `toolkit` (`toolkit.extract_activations`, `steering_hook`, `batch_generate`, `logit_lens`, `activation_patching`, `contrastive_steering_vector`). `Library::from_file(\"toolkit/<module>.py\")` mounts one module.",
        || -> RhaiResult<Dynamic> { rhai::serde::to_dynamic(Library::toolkit()) },
    );
    engine.register_static_module("Library", library.into());

    let mut skill = Module::new();
    let h = host.clone();
    module_fn(
        &mut skill,
        engine,
        "from_dir",
        "dir -> map",
        "A skill folder with a `SKILL.md`.",
        move |ctx: NativeCallContext, path: &str| {
            h.track(&resolve_host(&h.script_dir, path));
            to_map(
                "Skill::from_dir",
                Skill::from_dir(&h.script_dir, path),
                &ctx,
            )
        },
    );
    #[derive(serde::Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct FromFunctionOpts {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        description: Option<String>,
    }
    let from_function = {
        let h = host.clone();
        move |ctx: &NativeCallContext, file: &str, function: &str, o: FromFunctionOpts| {
            h.track(&resolve_host(&h.script_dir, file));
            to_map(
                "Skill::from_function",
                Skill::from_function(
                    &h.script_dir,
                    file,
                    function,
                    o.name.as_deref(),
                    o.description.as_deref(),
                ),
                ctx,
            )
        }
    };
    const FROM_FUNCTION: &str = "A skill from one `@expose` function of an interface file (Seer's `Skill.from_function`): named after the function, described by its docstring's first paragraph, its body the signature and docstring. Options: `#{ name, description }`.";
    let f2 = from_function.clone();
    module_fn(
        &mut skill,
        engine,
        "from_function",
        "file, function -> map",
        FROM_FUNCTION,
        move |ctx: NativeCallContext, file: &str, function: &str| {
            f2(&ctx, file, function, FromFunctionOpts::default())
        },
    );
    module_fn(
        &mut skill,
        engine,
        "from_function",
        "file, function, opts -> map",
        FROM_FUNCTION,
        move |ctx: NativeCallContext, file: &str, function: &str, o: rhai::Map| {
            let o: FromFunctionOpts = from_dynamic("Skill::from_function", &Dynamic::from_map(o))
                .map_err(|e| at_call(runtime_error(e.0), &ctx))?;
            from_function(&ctx, file, function, o)
        },
    );
    // `Skill::new` cannot be called from Rhai (`new` is a reserved word): the inline form
    // is `Skill(#{ name, description, body })` or `Skill::from_text(name, description, body)`.
    const FROM_TEXT: &str = "A skill from text; lands in `<workspace>/.claude/skills/<name>/SKILL.md`. Same as `Skill(#{ name, description, body })`.";
    module_fn(
        &mut skill,
        engine,
        "from_text",
        "name, description, body -> map",
        FROM_TEXT,
        |ctx: NativeCallContext, name: &str, description: &str, body: &str| {
            to_map(
                "Skill::from_text",
                Skill::new(name, description, body),
                &ctx,
            )
        },
    );
    func(
        engine,
        "Skill",
        "cfg -> map",
        "A skill from text: `Skill(#{ name, description, body })` (`description` and `body` default to empty); lands in `<workspace>/.claude/skills/<name>/SKILL.md`. `Skill::from_dir(dir)` reads a skill folder.",
        |ctx: NativeCallContext, m: rhai::Map| -> RhaiResult<Dynamic> {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct SkillText {
                name: String,
                #[serde(default)]
                description: String,
                #[serde(default)]
                body: String,
            }
            let t: SkillText = from_dynamic("Skill", &Dynamic::from_map(m))
                .map_err(|e| at_call(runtime_error(e.0), &ctx))?;
            to_map("Skill", Skill::new(t.name, t.description, t.body), &ctx)
        },
    );
    engine.register_static_module("Skill", skill.into());
}
