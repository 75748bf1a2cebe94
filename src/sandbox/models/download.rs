//! Downloading a Hub model into the hub cache with hf-hub, cancellable between and during
//! requests.

use std::path::{Component, Path};

use anyhow::{Context, Result, anyhow, bail};
use hf_hub::api::tokio::{ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};
use tokio_util::sync::CancellationToken;

use super::Hub;
use super::hub_cache::{cache_folder, is_commit};
use crate::cancel::cancellable;

/// Downloads every file of `id` at `rev` into the hub cache and points `refs/<rev>` at it.
pub(super) async fn download(
    id: &str,
    rev: &str,
    hub: &Hub,
    what: &str,
    cancel: &CancellationToken,
) -> Result<()> {
    let hub_cache = hub.cache.as_path();
    let mut builder = ApiBuilder::from_cache(Cache::new(hub_cache.to_path_buf()))
        .with_progress(true)
        .with_user_agent("seer", env!("CARGO_PKG_VERSION"));
    if let Some(token) = &hub.token {
        builder = builder.with_token(Some(token.trim().to_string()));
    }
    if let Some(endpoint) = &hub.endpoint {
        builder = builder.with_endpoint(endpoint.trim().trim_end_matches('/').to_string());
    }
    let api = builder.build().map_err(|e| {
        anyhow!(
            "{what}: could not set up the Hugging Face client ({e}); check HF_TOKEN and HF_ENDPOINT"
        )
    })?;
    let repo = api.repo(Repo::with_revision(
        id.to_string(),
        RepoType::Model,
        rev.to_string(),
    ));
    tracing::info!(
        "{what}: not in the Hugging Face cache; downloading revision `{rev}` into {}",
        hub_cache.display()
    );
    let info = cancellable(cancel, repo.info())
        .await?
        .map_err(|e| download_error(what, id, &e))?;
    let snapshot = hub_cache
        .join(cache_folder(id))
        .join("snapshots")
        .join(&info.sha);
    for sibling in &info.siblings {
        let file = &sibling.rfilename;
        if !is_safe_relative(file) {
            tracing::warn!("{what}: skipping the repo file `{file}` (unsafe path)");
            continue;
        }
        if snapshot.join(file).is_file() {
            continue;
        }
        let got = cancellable(cancel, repo.download(file))
            .await?
            .map_err(|e| download_error(what, id, &e))?;
        if !got.starts_with(&snapshot) {
            bail!(
                "{what}: revision `{rev}` changed on the Hub during the download; run again \
                 (or pin a commit with `revision`)"
            );
        }
    }
    if !is_commit(rev) {
        let ref_path = hub_cache.join(cache_folder(id)).join("refs").join(rev);
        if let Some(parent) = ref_path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&ref_path, &info.sha)
            .with_context(|| format!("writing the cache ref {}", ref_path.display()))?;
    }
    tracing::info!("{what}: downloaded commit {}", info.sha);
    Ok(())
}

pub(super) fn download_error(what: &str, id: &str, e: &ApiError) -> anyhow::Error {
    anyhow!(
        "{what}: download from the Hugging Face Hub failed: {e}\nhint: check that `{id}` is the \
         right model id, that this machine can reach the Hub (or HF_ENDPOINT), and for gated or \
         private models that HF_TOKEN holds a token with access (accept the license on the model \
         page first)"
    )
}

/// A repo file path that stays inside the snapshot.
fn is_safe_relative(p: &str) -> bool {
    !p.is_empty()
        && Path::new(p)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}
