//! The agent harness (`run_agent`, `run_agent_interactive`, `parallel`, `spawn`). It
//! arrives in a later issue; until then each entry point raises "not supported yet".

use rhai::{Dynamic, Engine};

use super::{RhaiResult, not_supported};

pub fn register(engine: &mut Engine) {
    for name in ["run_agent", "run_agent_interactive", "parallel", "spawn"] {
        engine.register_fn(name, move |_: Dynamic| -> RhaiResult<Dynamic> {
            Err(not_supported(name))
        });
        engine.register_fn(name, move |_: Dynamic, _: Dynamic| -> RhaiResult<Dynamic> {
            Err(not_supported(name))
        });
    }
}
