use super::super::ModelConfig;
use super::{cfg, resolve};

#[tokio::test]
async fn var_names_must_be_identifiers() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let hub = base.join("hub");
    let mut c = cfg("gpt2");
    c.var_name = "2x".into();
    let err = resolve(&[c], base, &hub, true).await.unwrap_err();
    assert!(err.to_string().contains("Python identifier"), "{err}");
}

#[tokio::test]
async fn duplicate_var_names() {
    let tmp = tempfile::tempdir().unwrap();
    let mut hidden = cfg("org/b");
    hidden.hidden = true;
    let err = resolve(
        &[cfg("org/a"), hidden],
        tmp.path(),
        &tmp.path().join("hub"),
        true,
    )
    .await
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "models[0] (`org/a`) and models[1] (hidden-model-1) both use var_name `model`; \
         give each model its own var_name"
    );

    let mut a = cfg("org/a");
    a.hidden = true;
    a.is_peft = true;
    a.var_name = "m".into();
    let mut b = cfg("org/b");
    b.hidden = true;
    b.var_name = "m_base".into();
    let err = resolve(&[a, b], tmp.path(), &tmp.path().join("hub"), true)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`m_base`"), "{err}");
}

#[test]
fn config_defaults_and_unknown_fields() {
    let c = cfg("org/x");
    assert_eq!(c.var_name, "model");
    assert!(!c.hidden && !c.is_peft && !c.load_as_peft);
    assert!(c.revision.is_none() && c.base_model.is_none());
    let bad = serde_json::from_str::<ModelConfig>(r#"{"name": "x", "hiden": true}"#);
    assert!(bad.is_err());
}
