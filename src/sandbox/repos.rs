//! Placeholder until the repo cloner lands.
use std::path::Path;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    pub url: String,
    #[serde(default)]
    pub dockerfile: Option<String>,
    #[serde(default)]
    pub install: Install,
    #[serde(default)]
    pub branch: Option<String>,
}

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(
    untagged,
    expecting = "`install` must be true, false or a shell command string"
)]
pub enum Install {
    Flag(bool),
    Command(String),
}

impl Default for Install {
    fn default() -> Self {
        Install::Flag(false)
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct RepoHandle {
    pub url: String,
    pub local_path: String,
    pub dockerfile: Option<String>,
    pub install: Install,
    pub commit: String,
}

pub async fn clone_repos(
    cfgs: &[RepoConfig],
    _base_dir: &Path,
    _dest_root: &Path,
    _cancel: &CancellationToken,
) -> anyhow::Result<Vec<RepoHandle>> {
    if cfgs.is_empty() {
        return Ok(vec![]);
    }
    anyhow::bail!("not supported yet: repos")
}
