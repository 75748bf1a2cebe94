//! Tests of model resolution, by concern like the code; this file holds the shared fixtures
//! and the tests of the resolver itself (PEFT bases, cancellation).

mod config;
mod download;
mod hidden;
mod hub_cache;
mod local_dir;

use std::path::{Path, PathBuf};

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use super::hub_cache::cache_folder;
use super::*;

pub(super) const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
pub(super) const SHA2: &str = "89abcdef0123456789abcdef0123456789abcdef";

pub(super) fn cfg(name: &str) -> ModelConfig {
    serde_json::from_value(serde_json::json!({ "name": name })).unwrap()
}

pub(super) fn write_model(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.json"), r#"{"model_type": "gpt2"}"#).unwrap();
    std::fs::write(dir.join("model.safetensors"), "weights").unwrap();
}

/// Seeds `hub` like huggingface_hub does: blobs, snapshot symlinks into them, refs/main.
pub(super) fn seed_cache(hub: &Path, id: &str, sha: &str, files: &[(&str, &str)]) -> PathBuf {
    let repo = hub.join(cache_folder(id));
    let snapshot = repo.join("snapshots").join(sha);
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::create_dir_all(&snapshot).unwrap();
    for (k, (name, content)) in files.iter().enumerate() {
        let blob = format!("{sha}{k:04}");
        std::fs::write(repo.join("blobs").join(&blob), content).unwrap();
        std::os::unix::fs::symlink(format!("../../blobs/{blob}"), snapshot.join(name)).unwrap();
    }
    std::fs::write(repo.join("refs/main"), sha).unwrap();
    snapshot
}

pub(super) async fn resolve(
    cfgs: &[ModelConfig],
    base: &Path,
    hub: &Path,
    offline: bool,
) -> Result<Vec<ModelHandle>> {
    let models = base.join("sandbox-models");
    resolve_models_in(cfgs, base, &models, hub, offline, &CancellationToken::new()).await
}

pub(super) fn hub_at(cache: &Path, endpoint: Option<String>, offline: bool) -> Hub {
    Hub {
        cache: cache.to_path_buf(),
        offline,
        endpoint,
        token: None,
    }
}

#[tokio::test]
async fn peft_base_from_adapter_config() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let hub = base.join("hub");
    let base_snapshot = seed_cache(
        &hub,
        "org/base",
        SHA,
        &[("config.json", "{}"), ("model.safetensors", "w")],
    );
    let adapter = base.join("adapter");
    std::fs::create_dir_all(&adapter).unwrap();
    std::fs::write(
        adapter.join("adapter_config.json"),
        r#"{"base_model_name_or_path": "org/base", "peft_type": "LORA"}"#,
    )
    .unwrap();
    std::fs::write(adapter.join("adapter_model.safetensors"), "a").unwrap();
    let mut c = cfg("./adapter");
    c.is_peft = true;
    let hs = resolve(std::slice::from_ref(&c), base, &hub, true)
        .await
        .unwrap();
    let h = &hs[0];
    assert!(h.is_peft);
    assert_eq!(h.revision, "local");
    assert_eq!(h.base_model.as_deref(), Some("org/base"));
    assert_eq!(
        h.base_model_path.as_deref(),
        Some(base_snapshot.to_str().unwrap())
    );
    assert_eq!(h.base_model_revision.as_deref(), Some(SHA));

    // An explicit base_model wins; one that is not available is reported as the base.
    c.base_model = Some("org/other".into());
    let err = resolve(std::slice::from_ref(&c), base, &hub, true)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("base model `org/other`"), "{err}");

    // No base anywhere.
    std::fs::write(
        adapter.join("adapter_config.json"),
        r#"{"peft_type": "LORA"}"#,
    )
    .unwrap();
    c.base_model = None;
    let err = resolve(&[c], base, &hub, true)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("set `base_model`"), "{err}");

    // is_peft on a full model.
    write_model(&base.join("full"));
    let mut c = cfg("./full");
    c.is_peft = true;
    let err = resolve(&[c], base, &hub, true)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("has no adapter_config.json"), "{err}");
}

#[tokio::test]
async fn cancelled() {
    let tmp = tempfile::tempdir().unwrap();
    write_model(&tmp.path().join("m"));
    let cancel = CancellationToken::new();
    cancel.cancel();
    let err = resolve_models_in(
        &[cfg("./m")],
        tmp.path(),
        &tmp.path().join("out"),
        &tmp.path().join("hub"),
        false,
        &cancel,
    )
    .await
    .unwrap_err();
    assert_eq!(err.to_string(), "cancelled");
}
