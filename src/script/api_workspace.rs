//! Workspace, Library and Skill: what a notebook session mounts into its kernel.
//! `Library::*` and `Skill::*` return plain maps (printable, storable); `Workspace(#{...})`
//! checks the whole map strictly and returns a `Workspace` value for sessions.

use std::sync::Arc;

use rhai::{Dynamic, Engine, Module, NativeCallContext};

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
    engine.register_fn("Workspace", || {
        WorkspaceHandle(Arc::new(WorkspaceConfig::default()))
    });
    engine.register_fn("Workspace", |m: rhai::Map| -> RhaiResult<WorkspaceHandle> {
        let cfg: WorkspaceConfig =
            from_dynamic("Workspace", &Dynamic::from_map(m)).map_err(|e| runtime_error(e.0))?;
        Ok(WorkspaceHandle(Arc::new(cfg)))
    });
    engine.register_fn("get_library_docs", |w: &mut WorkspaceHandle| {
        library_docs(&w.0)
    });
    engine.register_get("library_docs", |w: &mut WorkspaceHandle| library_docs(&w.0));
    engine.register_get(
        "libraries",
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
    let h = host.clone();
    library.set_native_fn("from_file", move |ctx: NativeCallContext, path: &str| {
        h.track(&resolve_host(&h.script_dir, path));
        to_map(
            "Library::from_file",
            Library::from_file(&h.script_dir, path),
            &ctx,
        )
    });
    let h = host.clone();
    library.set_native_fn(
        "from_directory",
        move |ctx: NativeCallContext, path: &str| {
            h.track(&resolve_host(&h.script_dir, path));
            to_map(
                "Library::from_directory",
                Library::from_directory(&h.script_dir, path),
                &ctx,
            )
        },
    );
    let h = host.clone();
    library.set_native_fn(
        "from_skill_dir",
        move |ctx: NativeCallContext, path: &str| {
            h.track(&resolve_host(&h.script_dir, path));
            to_map(
                "Library::from_skill_dir",
                Library::from_skill_dir(&h.script_dir, path),
                &ctx,
            )
        },
    );
    library.set_native_fn(
        "from_code",
        |ctx: NativeCallContext, name: &str, code: &str| {
            to_map("Library::from_code", Library::from_code(name, code), &ctx)
        },
    );
    library.set_native_fn("toolkit", || -> RhaiResult<Dynamic> {
        rhai::serde::to_dynamic(Library::toolkit())
    });
    engine.register_static_module("Library", library.into());

    let mut skill = Module::new();
    let h = host.clone();
    skill.set_native_fn("from_dir", move |ctx: NativeCallContext, path: &str| {
        h.track(&resolve_host(&h.script_dir, path));
        to_map(
            "Skill::from_dir",
            Skill::from_dir(&h.script_dir, path),
            &ctx,
        )
    });
    skill.set_native_fn(
        "new",
        |ctx: NativeCallContext, name: &str, description: &str, body: &str| {
            to_map("Skill::new", Skill::new(name, description, body), &ctx)
        },
    );
    engine.register_static_module("Skill", skill.into());
}
