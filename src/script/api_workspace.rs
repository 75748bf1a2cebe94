//! Workspace, Library and Skill: the files and code mounted into a session. They arrive
//! with notebook sessions; until then each entry point says so plainly.

use rhai::{Dynamic, Engine, Module};

use super::{RhaiResult, not_supported};

pub fn register(engine: &mut Engine) {
    engine.register_fn("Workspace", || -> RhaiResult<Dynamic> {
        Err(not_supported("Workspace"))
    });
    engine.register_fn("Workspace", |_: rhai::Map| -> RhaiResult<Dynamic> {
        Err(not_supported("Workspace"))
    });
    let mut library = Module::new();
    for name in ["from_file", "from_directory", "from_skill_dir"] {
        library.set_native_fn(name, move |_: &str| -> RhaiResult<Dynamic> {
            Err(not_supported("Library"))
        });
    }
    library.set_native_fn("from_code", |_: &str, _: &str| -> RhaiResult<Dynamic> {
        Err(not_supported("Library"))
    });
    engine.register_static_module("Library", library.into());
}
