use std::path::Path;

use super::super::hub_cache::{check_hf_id, snapshot_gap};
use super::{SHA, SHA2, cfg, resolve, seed_cache};

#[tokio::test]
async fn hub_model_from_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let hub = base.join("hub");
    let snapshot = seed_cache(
        &hub,
        "org/name",
        SHA,
        &[("config.json", "{}"), ("model.safetensors", "w")],
    );
    // Complete in the cache, so no network even when online.
    let hs = resolve(&[cfg("org/name")], base, &hub, false)
        .await
        .unwrap();
    assert_eq!(Path::new(&hs[0].path), snapshot);
    assert_eq!(hs[0].revision, SHA);
    assert_eq!(hs[0].name, "org/name");

    let mut pinned = cfg("org/name");
    pinned.revision = Some(SHA.to_uppercase());
    let hs = resolve(&[pinned], base, &hub, true).await.unwrap();
    assert_eq!(Path::new(&hs[0].path), snapshot);
    assert_eq!(hs[0].revision, SHA);

    // A cached snapshot without weights is still used offline.
    seed_cache(&hub, "solo", SHA2, &[("config.json", "{}")]);
    let hs = resolve(&[cfg("solo")], base, &hub, true).await.unwrap();
    assert_eq!(hs[0].revision, SHA2);
}

#[tokio::test]
async fn offline_miss_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let hub = base.join("hub");
    seed_cache(&hub, "org/name", SHA, &[("config.json", "{}")]);
    let err = resolve(&[cfg("org/missing")], base, &hub, true)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "model `org/missing` is not in the Hugging Face cache at {} and HF_HUB_OFFLINE \
             is set; download it first or unset HF_HUB_OFFLINE",
            hub.display()
        )
    );
    let mut other_branch = cfg("org/name");
    other_branch.revision = Some("dev".into());
    let err = resolve(&[other_branch], base, &hub, true)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("HF_HUB_OFFLINE"), "{err}");
}

#[tokio::test]
async fn invalid_ids_and_revisions() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let hub = base.join("hub");
    for bad in ["bad--id", "a/b/c", ".x", "x-", "a b", "org/", "a..b"] {
        let err = resolve(&[cfg(bad)], base, &hub, false)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("nor a valid Hugging Face id"), "{bad}: {err}");
    }
    assert!(check_hf_id("gpt2").is_ok());
    assert!(check_hf_id("meta-llama/Llama-3.1-8B").is_ok());
    assert!(check_hf_id("org/na_me.v2").is_ok());

    let mut c = cfg("gpt2");
    c.revision = Some("../x".into());
    let err = resolve(&[c], base, &hub, false).await.unwrap_err();
    assert!(err.to_string().contains("is not valid"), "{err}");
}

#[test]
fn snapshot_gaps() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("config.json"), "{}").unwrap();
    assert_eq!(snapshot_gap(d).as_deref(), Some("no weight files"));
    std::fs::write(
        d.join("model.safetensors.index.json"),
        r#"{"weight_map": {"a": "model-1.safetensors", "b": "model-2.safetensors"}}"#,
    )
    .unwrap();
    std::fs::write(d.join("model-1.safetensors"), "1").unwrap();
    assert_eq!(
        snapshot_gap(d).as_deref(),
        Some("shard model-2.safetensors is missing")
    );
    std::fs::write(d.join("model-2.safetensors"), "2").unwrap();
    assert_eq!(snapshot_gap(d), None);
}
