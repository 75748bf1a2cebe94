use std::os::unix::fs::MetadataExt;
use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::super::Resolver;
use super::{SHA, cfg, hub_at, resolve, seed_cache, write_model};

#[tokio::test]
async fn hidden_models_are_materialized_and_masked() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let hub = base.join("hub");
    let secret_config = r#"{"_name_or_path": "org/secret", "model_type": "gpt2"}"#;
    let snapshot = seed_cache(
        &hub,
        "org/secret",
        SHA,
        &[("config.json", secret_config), ("model.safetensors", "w")],
    );
    let adapter = base.join("secret-adapter");
    std::fs::create_dir_all(adapter.join(".git")).unwrap();
    let adapter_config = r#"{"base_model_name_or_path": "org/secret"}"#;
    std::fs::write(adapter.join("adapter_config.json"), adapter_config).unwrap();
    std::fs::write(adapter.join("adapter_model.safetensors"), "a").unwrap();

    let mut plain = cfg("org/secret");
    plain.hidden = true;
    plain.var_name = "target".into();
    let mut peft = cfg("./secret-adapter");
    peft.hidden = true;
    peft.is_peft = true;
    peft.var_name = "tuned".into();
    let hs = resolve(&[plain, peft], base, &hub, true).await.unwrap();
    let models = base.join("sandbox-models");

    let h = &hs[0];
    assert_eq!(h.name, "hidden-model-0");
    assert_eq!(Path::new(&h.path), models.join("target"));
    assert_eq!(h.revision, SHA);
    assert!(h.hidden);
    assert!(!h.path.contains("secret"));
    let linked = models.join("target/model.safetensors");
    let blob = std::fs::canonicalize(snapshot.join("model.safetensors")).unwrap();
    assert!(!linked.symlink_metadata().unwrap().is_symlink());
    assert_eq!(
        linked.metadata().unwrap().ino(),
        blob.metadata().unwrap().ino()
    );
    let cfg_json = std::fs::read_to_string(models.join("target/config.json")).unwrap();
    assert!(!cfg_json.contains("org/secret"), "{cfg_json}");
    assert_eq!(
        std::fs::read_to_string(snapshot.join("config.json")).unwrap(),
        secret_config,
        "the cache blob must be untouched"
    );

    let h = &hs[1];
    assert_eq!(h.name, "hidden-model-1");
    assert_eq!(h.base_model.as_deref(), Some("hidden-model-1-base"));
    let base_dest = models.join("tuned_base");
    assert_eq!(h.base_model_path.as_deref(), base_dest.to_str());
    assert_eq!(h.base_model_revision.as_deref(), Some(SHA));
    assert!(base_dest.join("model.safetensors").is_file());
    assert!(!models.join("tuned/.git").exists());
    let written: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(models.join("tuned/adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        written["base_model_name_or_path"].as_str(),
        base_dest.to_str()
    );
    assert_eq!(
        std::fs::read_to_string(adapter.join("adapter_config.json")).unwrap(),
        adapter_config
    );
    let json = serde_json::to_string(&hs).unwrap();
    assert!(!json.contains("secret"), "{json}");

    // Resolving again replaces the old copies.
    let mut again = cfg("org/secret");
    again.hidden = true;
    again.var_name = "target".into();
    resolve(&[again], base, &hub, true).await.unwrap();
    assert!(models.join("target/model.safetensors").is_file());
}

#[tokio::test]
async fn cancelled_while_materializing_stays_cancelled() {
    let tmp = tempfile::tempdir().unwrap();
    write_model(&tmp.path().join("m"));
    let mut c = cfg("./m");
    c.hidden = true;
    let cancel = CancellationToken::new();
    let r = Resolver {
        base_dir: tmp.path(),
        hub: &hub_at(&tmp.path().join("hub"), None, true),
        cancel: &cancel,
    };
    cancel.cancel();
    let err = r
        .resolve_entry(0, &c, &tmp.path().join("out"))
        .await
        .unwrap_err();
    assert_eq!(format!("{err:#}"), "cancelled");
}
