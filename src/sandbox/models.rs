//! Placeholder until the model resolver lands.
use std::path::Path;
use tokio_util::sync::CancellationToken;

fn default_var_name() -> String {
    "model".into()
}

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub name: String,
    #[serde(default = "default_var_name")]
    pub var_name: String,
    #[serde(default)]
    pub hidden: bool,
    #[serde(default)]
    pub is_peft: bool,
    #[serde(default)]
    pub base_model: Option<String>,
    #[serde(default)]
    pub revision: Option<String>,
    #[serde(default)]
    pub load_as_peft: bool,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ModelHandle {
    pub name: String,
    pub path: String,
    pub revision: String,
    pub var_name: String,
    pub hidden: bool,
    pub is_peft: bool,
    pub base_model: Option<String>,
    pub base_model_path: Option<String>,
    pub base_model_revision: Option<String>,
}

pub async fn resolve_models(
    cfgs: &[ModelConfig],
    _base_dir: &Path,
    _sandbox_models_dir: &Path,
    _cancel: &CancellationToken,
) -> anyhow::Result<Vec<ModelHandle>> {
    if cfgs.is_empty() {
        return Ok(vec![]);
    }
    anyhow::bail!("not supported yet: models")
}
