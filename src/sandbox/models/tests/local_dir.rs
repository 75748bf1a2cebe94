use std::path::Path;

use super::{cfg, resolve, write_model};

#[tokio::test]
async fn local_model_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    write_model(&base.join("m"));
    let canon = base.join("m").canonicalize().unwrap();
    let hub = base.join("hub");
    for name in ["./m", "m", canon.to_str().unwrap()] {
        let hs = resolve(&[cfg(name)], base, &hub, true).await.unwrap();
        assert_eq!(hs.len(), 1);
        let h = &hs[0];
        assert_eq!(h.name, name);
        assert_eq!(Path::new(&h.path), canon);
        assert_eq!(h.revision, "local");
        assert_eq!(h.var_name, "model");
        assert!(!h.hidden && !h.is_peft && h.base_model.is_none());
    }
}

#[tokio::test]
async fn missing_and_non_model_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let hub = base.join("hub");
    let err = resolve(&[cfg("./nope")], base, &hub, true)
        .await
        .unwrap_err()
        .to_string();
    let looked_at = format!("{} does not exist", base.join("nope").display());
    assert!(err.contains(&looked_at), "{err}");

    std::fs::create_dir_all(base.join("empty")).unwrap();
    let err = resolve(&[cfg("./empty")], base, &hub, true)
        .await
        .unwrap_err()
        .to_string();
    let canon = base.join("empty").canonicalize().unwrap();
    assert_eq!(
        err,
        format!(
            "model `./empty`: {} is not a model directory (no config.json or adapter_config.json)",
            canon.display()
        )
    );
}
