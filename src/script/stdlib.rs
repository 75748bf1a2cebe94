//! seer's Rhai standard library: modules shipped inside the binary and imported as
//! `import "seer/<name>" as x;` (see `stdlib/*.rhai`). Every other import path goes to
//! the file resolver, relative to the script's folder.

use std::collections::HashMap;
use std::sync::Mutex;

use rhai::module_resolvers::FileModuleResolver;
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};

/// (import path, source).
pub const MODULES: &[(&str, &str)] = &[
    ("seer/judge", include_str!("../../stdlib/judge.rhai")),
    ("seer/prompts", include_str!("../../stdlib/prompts.rhai")),
    ("seer/outputs", include_str!("../../stdlib/outputs.rhai")),
    ("seer/petri", include_str!("../../stdlib/petri.rhai")),
];

/// Resolves `seer/...` from [`MODULES`], everything else from files.
pub struct Resolver {
    files: FileModuleResolver,
    cache: Mutex<HashMap<String, Shared<Module>>>,
}

impl Resolver {
    pub fn new(files: FileModuleResolver) -> Self {
        Self {
            files,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

impl ModuleResolver for Resolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        if !path.starts_with("seer/") {
            return self.files.resolve(engine, source, path, pos);
        }
        if let Some(m) = self.cache.lock().ok().and_then(|c| c.get(path).cloned()) {
            return Ok(m);
        }
        let Some((_, src)) = MODULES.iter().find(|(p, _)| *p == path) else {
            let names: Vec<&str> = MODULES.iter().map(|(p, _)| *p).collect();
            return Err(Box::new(EvalAltResult::ErrorRuntime(
                format!(
                    "no seer module `{path}`; seer's modules are: {}",
                    names.join(", ")
                )
                .into(),
                pos,
            )));
        };
        let mut ast = engine.compile(src).map_err(|e| {
            Box::new(EvalAltResult::ErrorInModule(
                path.to_string(),
                Box::new(EvalAltResult::ErrorParsing(*e.0, e.1)),
                pos,
            ))
        })?;
        ast.set_source(path);
        let module: Shared<Module> = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(|e| Box::new(EvalAltResult::ErrorInModule(path.to_string(), e, pos)))?
            .into();
        if let Ok(mut c) = self.cache.lock() {
            c.insert(path.to_string(), module.clone());
        }
        Ok(module)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_compiles() {
        let engine = crate::script::syntax_engine();
        for (path, src) in MODULES {
            // Imports of other seer modules need the resolver; compile checks syntax.
            assert!(engine.compile(src).is_ok(), "{path}");
        }
    }
}
