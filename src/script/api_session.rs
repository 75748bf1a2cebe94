//! Sessions (notebook, local, CLI). They arrive in a later issue; until then each entry
//! point raises a clear "not supported yet" error.

use rhai::{Dynamic, Engine};

use super::{RhaiResult, not_supported};

pub fn register(engine: &mut Engine) {
    for name in [
        "create_notebook_session",
        "create_local_notebook_session",
        "create_local_session",
        "create_cli_session",
    ] {
        engine.register_fn(name, move |_: Dynamic| -> RhaiResult<Dynamic> {
            Err(not_supported(name))
        });
        engine.register_fn(name, move |_: Dynamic, _: Dynamic| -> RhaiResult<Dynamic> {
            Err(not_supported(name))
        });
        engine.register_fn(
            name,
            move |_: Dynamic, _: Dynamic, _: Dynamic| -> RhaiResult<Dynamic> {
                Err(not_supported(name))
            },
        );
    }
}
