//! Resolves the models a script lists under `models` into directories the sandbox loads from.
//!
//! A model is either a local directory or a Hugging Face Hub repo id. Hub models are looked
//! up in the standard Hugging Face cache (the layout Python's `huggingface_hub` uses, so
//! both share downloads) and downloaded into it when missing. PEFT adapters get their base
//! model resolved by the same rules. Hidden models are materialized under the sandbox's
//! models folder with hard links, so neither the handle's name nor its path reveals which
//! model it is.
//!
//! Layout: `config` (the typed entry and its checks), `local_dir` (local directories),
//! `hub_cache` (the Hugging Face cache layout), `download` (hf-hub), `hidden` (masking);
//! this file resolves each entry with them, and `tests/` follows the same split.

mod config;
mod download;
mod hidden;
mod hub_cache;
mod local_dir;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use tokio_util::sync::CancellationToken;

pub use config::{ModelConfig, ModelHandle};
pub use hub_cache::hf_hub_cache_dir;

use config::check_var_names;
use download::download;
use hub_cache::{cache_folder, cached_snapshot, check_hf_id, check_revision, snapshot_gap};
pub(crate) use local_dir::is_local_name;
use local_dir::local_model_dir;

/// Resolves every model in `cfgs`; see the module docs.
///
/// Relative paths are resolved against `base_dir` (the script's folder); hidden models are
/// materialized under `sandbox_models_dir`. The Hugging Face cache is `$HF_HUB_CACHE`, else
/// `$HF_HOME/hub`, else `~/.cache/huggingface/hub`; `HF_HUB_OFFLINE=1` forbids downloads,
/// `HF_TOKEN` and `HF_ENDPOINT` are used for downloads (these three from the sandbox's
/// `provision_env` first, see [`crate::sandbox::provision`]).
pub async fn resolve_models(
    cfgs: &[ModelConfig],
    base_dir: &Path,
    sandbox_models_dir: &Path,
    cancel: &CancellationToken,
) -> Result<Vec<ModelHandle>> {
    if cfgs.is_empty() {
        return Ok(vec![]);
    }
    let hub_cache = hf_hub_cache_dir()?;
    let offline = env_flag("HF_HUB_OFFLINE");
    resolve_models_in(
        cfgs,
        base_dir,
        sandbox_models_dir,
        &hub_cache,
        offline,
        cancel,
    )
    .await
}

/// [`resolve_models`] with the hub cache and offline mode given instead of read from the
/// environment (`HF_TOKEN` and `HF_ENDPOINT` are still read when downloading).
pub async fn resolve_models_in(
    cfgs: &[ModelConfig],
    base_dir: &Path,
    sandbox_models_dir: &Path,
    hub_cache: &Path,
    offline: bool,
    cancel: &CancellationToken,
) -> Result<Vec<ModelHandle>> {
    let hub = Hub {
        cache: hub_cache.to_path_buf(),
        offline,
        endpoint: crate::sandbox::provision::var("HF_ENDPOINT"),
        token: crate::sandbox::provision::var("HF_TOKEN"),
    };
    resolve_with(cfgs, base_dir, sandbox_models_dir, &hub, cancel).await
}

/// How to reach the Hugging Face Hub and its cache.
struct Hub {
    cache: PathBuf,
    offline: bool,
    /// `HF_ENDPOINT`; the public Hub when `None`.
    endpoint: Option<String>,
    /// `HF_TOKEN`; when `None`, hf-hub reads the token file next to the cache, if any.
    token: Option<String>,
}

async fn resolve_with(
    cfgs: &[ModelConfig],
    base_dir: &Path,
    sandbox_models_dir: &Path,
    hub: &Hub,
    cancel: &CancellationToken,
) -> Result<Vec<ModelHandle>> {
    check_var_names(cfgs)?;
    let resolver = Resolver {
        base_dir,
        hub,
        cancel,
    };
    let models_dir = std::path::absolute(sandbox_models_dir).with_context(|| {
        format!(
            "resolving the sandbox models folder {}",
            sandbox_models_dir.display()
        )
    })?;
    let mut handles = Vec::with_capacity(cfgs.len());
    for (i, cfg) in cfgs.iter().enumerate() {
        if cancel.is_cancelled() {
            bail!("cancelled");
        }
        handles.push(resolver.resolve_entry(i, cfg, &models_dir).await?);
    }
    Ok(handles)
}

/// A model directory found on disk.
#[derive(Debug)]
struct Located {
    path: PathBuf,
    /// Commit for Hub models, `local` for local directories.
    revision: String,
}

struct Resolver<'a> {
    base_dir: &'a Path,
    hub: &'a Hub,
    cancel: &'a CancellationToken,
}

impl Resolver<'_> {
    async fn resolve_entry(
        &self,
        i: usize,
        cfg: &ModelConfig,
        models_dir: &Path,
    ) -> Result<ModelHandle> {
        let what = format!("model `{}`", cfg.name);
        let model = self
            .locate(&cfg.name, cfg.revision.as_deref(), &what)
            .await?;
        let base = if cfg.is_peft {
            let (base_name, base_rev, from) = peft_base(&model.path, cfg, &what)?;
            let base_what = format!("base model `{base_name}` ({from}) of {what}");
            let located = self
                .locate(&base_name, base_rev.as_deref(), &base_what)
                .await?;
            Some((base_name, located))
        } else {
            if cfg.base_model.is_some() {
                tracing::warn!(
                    "models[{i}]: `base_model` is ignored because `is_peft` is false; \
                     set `is_peft: true` if this is an adapter"
                );
            }
            None
        };

        if !cfg.hidden {
            tracing::info!(
                model = %cfg.name,
                path = %model.path.display(),
                revision = %model.revision,
                "model ready"
            );
            return Ok(ModelHandle {
                name: cfg.name.clone(),
                path: model.path.display().to_string(),
                revision: model.revision,
                var_name: cfg.var_name.clone(),
                hidden: false,
                is_peft: cfg.is_peft,
                base_model: base.as_ref().map(|(n, _)| n.clone()),
                base_model_path: base.as_ref().map(|(_, b)| b.path.display().to_string()),
                base_model_revision: base.map(|(_, b)| b.revision),
                load_as_peft: cfg.load_as_peft,
            });
        }

        hidden::hide(
            i,
            cfg,
            model,
            base.map(|(_, b)| b),
            models_dir,
            &what,
            self.cancel,
        )
        .await
    }

    /// Finds (or downloads) the directory of a model; `what` names it in messages.
    async fn locate(&self, name: &str, revision: Option<&str>, what: &str) -> Result<Located> {
        if is_local_name(name, self.base_dir) {
            if revision.is_some() {
                tracing::warn!("{what}: `revision` is ignored for a local directory");
            }
            let path = local_model_dir(name, self.base_dir, what)?;
            return Ok(Located {
                path,
                revision: "local".into(),
            });
        }
        check_hf_id(name).map_err(|why| {
            anyhow!(
                "{what} is neither a local directory (there is no {}) nor a valid Hugging Face \
                 id ({why}); use `org/name`, or a path starting with `./` or `/`",
                self.base_dir.join(name).display()
            )
        })?;
        let rev = revision.unwrap_or("main");
        check_revision(rev).map_err(|why| {
            anyhow!("{what}: revision `{rev}` is not valid ({why}); give a branch, tag or commit")
        })?;
        let repo_dir = self.hub.cache.join(cache_folder(name));
        if let Some(found) = cached_snapshot(&repo_dir, rev)? {
            match snapshot_gap(&found.path) {
                None => {
                    tracing::debug!("{what}: found in the Hugging Face cache");
                    return Ok(found);
                }
                Some(gap) if self.hub.offline => {
                    tracing::warn!(
                        "{what}: the cached copy at {} looks incomplete ({gap}) but HF_HUB_OFFLINE \
                         is set, so it is used as is",
                        found.path.display()
                    );
                    return Ok(found);
                }
                Some(gap) => {
                    tracing::info!("{what}: the cached copy looks incomplete ({gap}); downloading")
                }
            }
        }
        if self.hub.offline {
            bail!(
                "{what} is not in the Hugging Face cache at {} and HF_HUB_OFFLINE is set; \
                 download it first or unset HF_HUB_OFFLINE",
                self.hub.cache.display()
            );
        }
        download(name, rev, self.hub, what, self.cancel).await?;
        cached_snapshot(&repo_dir, rev)?.ok_or_else(|| {
            anyhow!(
                "{what}: downloaded revision `{rev}`, but it has no config.json or \
                 adapter_config.json; check that `{name}` is a transformers model or a PEFT adapter"
            )
        })
    }
}

/// The base model of a PEFT adapter: `(name, revision, where the name came from)`.
fn peft_base(
    dir: &Path,
    cfg: &ModelConfig,
    what: &str,
) -> Result<(String, Option<String>, &'static str)> {
    let file = dir.join("adapter_config.json");
    if !file.is_file() {
        bail!(
            "{what}: `is_peft` is set but {} has no adapter_config.json; point `name` at a PEFT \
             adapter or set `is_peft: false`",
            dir.display()
        );
    }
    if let Some(base) = cfg.base_model.as_deref().filter(|b| !b.trim().is_empty()) {
        return Ok((base.trim().to_string(), None, "from `base_model`"));
    }
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("{what}: reading {}", file.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "{what}: {} is not valid JSON; fix it or set `base_model`",
            file.display()
        )
    })?;
    let field = |k: &str| {
        json.get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    match field("base_model_name_or_path") {
        Some(base) => Ok((base, field("revision"), "from adapter_config.json")),
        None => bail!(
            "{what}: {} has no base_model_name_or_path; set `base_model` to the adapter's base model",
            file.display()
        ),
    }
}

fn env_nonempty(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

/// A provisioning flag (the sandbox's `provision_env`, else the environment) set to `1`,
/// `true`, `yes` or `on` (any case).
fn env_flag(key: &str) -> bool {
    crate::sandbox::provision::var(key).is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}
