//! Hidden models: a copy under the sandbox's models folder, made of hard links into the
//! cache or the model directory, whose name, path and config files do not reveal which model
//! it is.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use tokio_util::sync::CancellationToken;

use super::Located;
use super::config::{ModelConfig, ModelHandle};

/// Materializes a hidden model (and its PEFT base, if any) under `models_dir` and returns
/// its masked handle: `hidden-model-<i>` in `<models_dir>/<var_name>`, the base in
/// `<var_name>_base`, with config files no longer naming the real model.
pub(super) async fn hide(
    i: usize,
    cfg: &ModelConfig,
    model: Located,
    base: Option<Located>,
    models_dir: &Path,
    what: &str,
    cancel: &CancellationToken,
) -> Result<ModelHandle> {
    let masked = format!("hidden-model-{i}");
    let dest = models_dir.join(&cfg.var_name);
    let mut rewrites = name_rewrites(&dest);
    let mut base_fields = (None, None, None);
    if let Some(b) = base {
        let base_dest = models_dir.join(format!("{}_base", cfg.var_name));
        materialize(&b.path, &base_dest, name_rewrites(&base_dest), cancel)
            .await
            .map_err(|e| {
                unless_cancelled(cancel, e, || {
                    format!("{what}: preparing the hidden copy of its base model")
                })
            })?;
        rewrites.push(Rewrite {
            file: "adapter_config.json",
            key: "base_model_name_or_path",
            value: base_dest.display().to_string(),
        });
        base_fields = (
            Some(format!("{masked}-base")),
            Some(base_dest.display().to_string()),
            Some(b.revision),
        );
    }
    materialize(&model.path, &dest, rewrites, cancel)
        .await
        .map_err(|e| {
            unless_cancelled(cancel, e, || format!("{what}: preparing the hidden copy"))
        })?;
    tracing::info!(model = %masked, path = %dest.display(), "hidden model ready");
    Ok(ModelHandle {
        name: masked,
        path: dest.display().to_string(),
        revision: model.revision,
        var_name: cfg.var_name.clone(),
        hidden: true,
        is_peft: cfg.is_peft,
        base_model: base_fields.0,
        base_model_path: base_fields.1,
        base_model_revision: base_fields.2,
        load_as_peft: cfg.load_as_peft,
    })
}

/// Adds `context` to `e`, except that a cancellation stays a bare "cancelled".
fn unless_cancelled(
    cancel: &CancellationToken,
    e: anyhow::Error,
    context: impl FnOnce() -> String,
) -> anyhow::Error {
    if cancel.is_cancelled() {
        anyhow!("cancelled")
    } else {
        e.context(context())
    }
}

/// A JSON key replaced in a hidden model's copy of a file, so the file does not name the
/// real model.
struct Rewrite {
    file: &'static str,
    key: &'static str,
    value: String,
}

/// Rewrites that keep a hidden copy's config files from naming the real model.
fn name_rewrites(dest: &Path) -> Vec<Rewrite> {
    let value = dest.display().to_string();
    vec![
        Rewrite {
            file: "config.json",
            key: "_name_or_path",
            value: value.clone(),
        },
        Rewrite {
            file: "tokenizer_config.json",
            key: "name_or_path",
            value,
        },
    ]
}

/// Recreates `src` at `dest` with hard links (copies where linking fails), then applies
/// `rewrites`. Anything already at `dest` is replaced.
async fn materialize(
    src: &Path,
    dest: &Path,
    rewrites: Vec<Rewrite>,
    cancel: &CancellationToken,
) -> Result<()> {
    let (src, dest, cancel) = (src.to_path_buf(), dest.to_path_buf(), cancel.clone());
    tokio::task::spawn_blocking(move || materialize_blocking(&src, &dest, &rewrites, &cancel))
        .await
        .context("the task preparing the hidden model failed")?
}

fn materialize_blocking(
    src: &Path,
    dest: &Path,
    rewrites: &[Rewrite],
    cancel: &CancellationToken,
) -> Result<()> {
    if src.starts_with(dest) || dest.starts_with(src) {
        bail!(
            "the model directory {} and the sandbox models folder {} overlap; move one of them",
            src.display(),
            dest.display()
        );
    }
    if let Ok(meta) = dest.symlink_metadata() {
        let removed = if meta.is_dir() {
            std::fs::remove_dir_all(dest)
        } else {
            std::fs::remove_file(dest)
        };
        removed.with_context(|| format!("removing the old {}", dest.display()))?;
    }
    std::fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut copied = false;
    link_tree(src, dest, cancel, 0, &mut copied)?;
    if copied {
        tracing::warn!(
            path = %dest.display(),
            "could not hard-link the model files (different filesystem?); copied them instead, \
             which uses extra disk space"
        );
    }
    for rw in rewrites {
        rewrite_json_key(&dest.join(rw.file), rw.key, &rw.value)?;
    }
    Ok(())
}

/// Mirrors `src` into the existing `dest`, following symlinks; skips `.git`.
fn link_tree(
    src: &Path,
    dest: &Path,
    cancel: &CancellationToken,
    depth: usize,
    copied: &mut bool,
) -> Result<()> {
    if depth > 32 {
        bail!("{} is nested too deeply (a symlink loop?)", src.display());
    }
    let entries = std::fs::read_dir(src).with_context(|| format!("reading {}", src.display()))?;
    for entry in entries {
        if cancel.is_cancelled() {
            bail!("cancelled");
        }
        let entry = entry.with_context(|| format!("reading {}", src.display()))?;
        if entry.file_name() == ".git" {
            continue;
        }
        let from = entry.path();
        let to = dest.join(entry.file_name());
        let meta = std::fs::metadata(&from)
            .with_context(|| format!("reading {} (a broken symlink?)", from.display()))?;
        if meta.is_dir() {
            std::fs::create_dir(&to).with_context(|| format!("creating {}", to.display()))?;
            link_tree(&from, &to, cancel, depth + 1, copied)?;
            continue;
        }
        // Link the real file: hard-linking a symlink would link the symlink itself.
        let real = std::fs::canonicalize(&from)
            .with_context(|| format!("resolving {}", from.display()))?;
        if std::fs::hard_link(&real, &to).is_err() {
            std::fs::copy(&real, &to)
                .with_context(|| format!("copying {} to {}", real.display(), to.display()))?;
            *copied = true;
        }
    }
    Ok(())
}

/// Sets `key` in the JSON object in `path` when it is there. The file is replaced, never
/// written in place: it is a hard link into the cache or the user's model directory.
fn rewrite_json_key(path: &Path, key: &str, value: &str) -> Result<()> {
    if !path.is_file() {
        return Ok(());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let Ok(mut json) = serde_json::from_str::<serde_json::Value>(&text) else {
        tracing::warn!(path = %path.display(), "not valid JSON; left as is");
        return Ok(());
    };
    let Some(obj) = json.as_object_mut() else {
        return Ok(());
    };
    if !obj.contains_key(key) {
        return Ok(());
    }
    obj.insert(
        key.to_string(),
        serde_json::Value::String(value.to_string()),
    );
    let out = serde_json::to_string_pretty(&json)
        .with_context(|| format!("serializing {}", path.display()))?;
    std::fs::remove_file(path).with_context(|| format!("replacing {}", path.display()))?;
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
