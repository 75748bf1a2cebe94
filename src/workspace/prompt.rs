//! The workspace's part of the agent's prompt, composed as Seer composes it: the models in
//! the kernel ([`model_info_text`], hidden ones as `<hidden>`) and, separately, the library
//! docs ([`library_docs`]); a prompt puts the two together (`model_info_text + library
//! docs`, as in Seer).

use std::fmt::Write as _;

use super::{ModelSpec, WorkspaceConfig, tokenizer_var};

/// What a hidden model is called in the agent's prompt (Seer's word).
const HIDDEN: &str = "<hidden>";

/// Markdown describing every library: `## name` and its docstring.
pub fn library_docs(ws: &WorkspaceConfig) -> String {
    let mut out = String::new();
    for lib in &ws.libraries {
        let docs = lib.docs.trim();
        let docs = if docs.is_empty() {
            "(no module docstring)"
        } else {
            docs
        };
        let _ = write!(out, "## {}\n\n{docs}\n\n", lib.name);
    }
    out
}

/// Markdown for the agent's prompt describing the models, as Seer's `model_info_text`:
/// `### Pre-loaded Models`, each variable with the model's name (`<hidden>` for a hidden
/// model: no name, path, revision or base model) and its tokenizer, then the warning not to
/// reload them. Empty without models. The library docs are not part of it
/// ([`library_docs`]).
///
/// seer adds two things Seer does not say: a visible PEFT adapter's base model and whether
/// it was merged (seer merges unless `load_as_peft`; Seer never does), and, with
/// `preload_models: false`, that the models are not loaded (Seer says they are).
pub fn model_info_text(models: &[ModelSpec], ws: &WorkspaceConfig) -> String {
    if models.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    if ws.preload_models {
        out.push_str(
            "### Pre-loaded Models\nThe following models are already loaded in the kernel:\n",
        );
    } else {
        out.push_str(
            "### Models\nThe following models are configured but not loaded; load them with \
             `transformers.AutoModelForCausalLM.from_pretrained(path)`:\n",
        );
    }
    for m in models {
        let h = &m.handle;
        let _ = writeln!(
            out,
            "- `{}`: {}",
            h.var_name,
            describe(m, ws.preload_models)
        );
        if ws.preload_models {
            let _ = writeln!(out, "- `{}`: Tokenizer", tokenizer_var(&h.var_name));
        }
    }
    if ws.preload_models {
        out.push_str("\n**Do NOT reload these models - they are already available.**\n");
    }
    out
}

/// A model as the prompt names it: `<hidden>`, or its name with what seer adds.
fn describe(m: &ModelSpec, preloaded: bool) -> String {
    let h = &m.handle;
    if h.hidden {
        return HIDDEN.to_string();
    }
    let mut text = h.name.clone();
    if !preloaded {
        let _ = write!(text, " at `{}`", h.path);
    }
    if h.is_peft {
        let base = h.base_model.as_deref().unwrap_or("its base model");
        let _ = write!(text, " (a PEFT adapter on {base}");
        if !preloaded {
            if let Some(p) = &h.base_model_path {
                let _ = write!(text, " at `{p}`");
            }
        } else if m.load_as_peft {
            text.push_str(", a `peft.PeftModel`");
        } else {
            text.push_str(", merged into its weights");
        }
        text.push(')');
    }
    text
}

#[cfg(test)]
#[path = "prompt_tests.rs"]
mod tests;
