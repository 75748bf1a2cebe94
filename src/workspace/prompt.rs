//! The workspace's part of the agent's prompt: the models in the kernel (hidden ones only
//! by their masked names) and the library docs.

use std::fmt::Write as _;

use super::{ModelSpec, WorkspaceConfig, tokenizer_var};

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

/// Markdown for the agent's prompt: which variables hold which model and how to use them,
/// then the library docs. Hidden models appear only under their masked names: no path,
/// revision or real name.
pub fn model_info_text(models: &[ModelSpec], ws: &WorkspaceConfig) -> String {
    let mut out = String::new();
    if !models.is_empty() {
        out.push_str("# Models\n\n");
        if ws.preload_models {
            out.push_str(
                "These models are already loaded in the kernel with Hugging Face `transformers` \
                 (`AutoModelForCausalLM`, in eval mode), each with its tokenizer:\n\n",
            );
        } else {
            out.push_str(
                "These models are configured but not loaded; load them yourself with \
                 `transformers.AutoModelForCausalLM.from_pretrained(path)`:\n\n",
            );
        }
        for m in models {
            out.push_str(&model_line(m, ws.preload_models));
        }
        if ws.preload_models {
            let first = &models[0].handle.var_name;
            let tok = tokenizer_var(first);
            let _ = write!(
                out,
                "\nHow to use them:\n\
                 - A model lives on the CPU, or on the GPU(s) when the kernel has CUDA; `{first}.device` \
                 tells which. Move inputs there: `inputs = {tok}(\"Hello\", return_tensors=\"pt\").to({first}.device)`.\n\
                 - Run it under `torch.no_grad()`: `{first}(**inputs).logits`, or \
                 `{first}.generate(**inputs, max_new_tokens=20)`.\n\
                 - For activations, register forward hooks on its modules (for most decoder \
                 models the blocks are `{first}.model.layers`); remove the hooks when done.\n\
                 - A tokenizer variable is `None` if its tokenizer could not be loaded.\n"
            );
        }
        out.push('\n');
    }
    let docs = library_docs(ws);
    if !docs.is_empty() {
        out.push_str(
            "# Libraries\n\nThese Python modules are installed and already imported (reuse them \
             with `import <name>`):\n\n",
        );
        out.push_str(&docs);
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

fn model_line(m: &ModelSpec, preloaded: bool) -> String {
    let h = &m.handle;
    let var = &h.var_name;
    let mut line = format!("- `{var}`: ");
    if h.hidden {
        let _ = write!(
            line,
            "**{}**, a hidden model: which model it is is deliberately not disclosed",
            h.name
        );
    } else {
        let _ = write!(line, "**{}**", h.name);
        if h.revision != "local" {
            let _ = write!(line, " (revision `{}`)", h.revision);
        }
        if !preloaded {
            let _ = write!(line, ", at `{}`", h.path);
        }
    }
    if h.is_peft {
        let base = h.base_model.as_deref().unwrap_or("its base model");
        let _ = write!(line, "; a PEFT adapter on **{base}**");
        if !h.hidden
            && !preloaded
            && let Some(p) = &h.base_model_path
        {
            let _ = write!(line, " (at `{p}`)");
        }
        if preloaded {
            if m.load_as_peft {
                let _ = write!(
                    line,
                    ", kept as a `peft.PeftModel`: the adapter is active, and \
                     `with {var}.disable_adapter():` runs the base model alone"
                );
            } else {
                line.push_str(
                    ", merged into the base model's weights (a plain transformers model)",
                );
            }
        }
    }
    if preloaded {
        let _ = write!(line, ". Tokenizer: `{}`", tokenizer_var(var));
    }
    line.push_str(".\n");
    line
}

#[cfg(test)]
#[path = "prompt_tests.rs"]
mod tests;
