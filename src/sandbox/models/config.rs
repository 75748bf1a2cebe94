//! The typed entry of a script's `models` list, the handle it resolves to, and the checks
//! on the list as a whole that serde cannot do (var_names).

use std::collections::HashMap;

use anyhow::{Result, bail};

use crate::python_syntax::is_identifier;

fn default_var_name() -> String {
    "model".into()
}

/// One entry of a script's `models` list.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// A Hugging Face id (`org/name` or `name`) or a local directory path.
    pub name: String,
    /// The variable the sandbox binds the model to.
    #[serde(default = "default_var_name")]
    pub var_name: String,
    /// Hide which model this is from the sandbox.
    #[serde(default)]
    pub hidden: bool,
    /// The model is a PEFT adapter (its directory has `adapter_config.json`).
    #[serde(default)]
    pub is_peft: bool,
    /// The adapter's base model; defaults to `base_model_name_or_path` in `adapter_config.json`.
    #[serde(default)]
    pub base_model: Option<String>,
    /// Hub branch, tag or commit; defaults to `main`.
    #[serde(default)]
    pub revision: Option<String>,
    /// Carried for the loader in the sandbox; not used when resolving.
    #[serde(default)]
    pub load_as_peft: bool,
}

/// A resolved model, ready for the sandbox to load.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, PartialEq)]
pub struct ModelHandle {
    /// The configured name, or `hidden-model-<i>` for a hidden model.
    pub name: String,
    /// The directory the sandbox loads from.
    pub path: String,
    /// The commit for Hub models, `local` for local directories.
    pub revision: String,
    pub var_name: String,
    pub hidden: bool,
    pub is_peft: bool,
    /// The base model's name (`hidden-model-<i>-base` when hidden).
    pub base_model: Option<String>,
    pub base_model_path: Option<String>,
    pub base_model_revision: Option<String>,
    /// Load a PEFT adapter as a `PeftModel` instead of merging it (from the config).
    #[serde(default)]
    pub load_as_peft: bool,
}

/// Rejects var_names that are not identifiers, duplicates, and clashing hidden folders.
pub(super) fn check_var_names(cfgs: &[ModelConfig]) -> Result<()> {
    let label = |i: usize| {
        let c = &cfgs[i];
        if c.hidden {
            format!("models[{i}] (hidden-model-{i})")
        } else {
            format!("models[{i}] (`{}`)", c.name)
        }
    };
    let mut by_var: HashMap<&str, usize> = HashMap::new();
    let mut by_dir: HashMap<String, usize> = HashMap::new();
    for (i, c) in cfgs.iter().enumerate() {
        if !is_identifier(&c.var_name) {
            bail!(
                "{}: var_name `{}` must be a Python identifier (letters, digits and `_`, \
                 not starting with a digit)",
                label(i),
                c.var_name
            );
        }
        if let Some(&j) = by_var.get(c.var_name.as_str()) {
            bail!(
                "{} and {} both use var_name `{}`; give each model its own var_name",
                label(j),
                label(i),
                c.var_name
            );
        }
        by_var.insert(&c.var_name, i);
        if c.hidden {
            let mut dirs = vec![c.var_name.clone()];
            if c.is_peft {
                dirs.push(format!("{}_base", c.var_name));
            }
            for d in dirs {
                if let Some(&j) = by_dir.get(&d) {
                    bail!(
                        "{} and {} would both be placed in the sandbox models folder as `{d}`; \
                         rename one var_name",
                        label(j),
                        label(i)
                    );
                }
                by_dir.insert(d, i);
            }
        }
    }
    Ok(())
}
