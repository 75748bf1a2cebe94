//! The modal backend: a sandbox in a Modal container, reached like an ssh host.
//!
//! Modal has no Rust SDK, so seer runs a small Python helper (`modal_helper.py`, embedded
//! in the binary) in a private venv holding the official `modal` SDK ([`MODAL_SDK`]),
//! made once in seer's cache with seer's own uv. The helper reads a spec line on stdin
//! (image from `python_version`/`python_packages`/`system_packages`, `gpu`/`gpu_count`,
//! `timeout`, the secrets as a Modal secret, the `seer-hf-cache` volume as the Hugging
//! Face cache), creates the Modal sandbox, runs the same launcher as the ssh backend there
//! with `sh -c`, and relays its stdin/stdout to the launcher's: the agent's byte stream.
//! When the helper's stdin closes (seer ends or dies), it terminates the Modal sandbox.
//!
//! `SEER_MODAL_TEST_LOCAL_SH=<dir>` (for seer's tests only; not a config field) makes the
//! helper run the launcher with a local `sh` (HOME=`<dir>`) instead of in Modal, through
//! the same relay.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::sandbox::config::SandboxConfig;
use crate::sandbox::pyenv;

/// The pinned Modal SDK of the helper's venv.
pub const MODAL_SDK: &str = "modal==1.6.4";
/// The Python the helper's venv is made with (the SDK needs 3.10 or later).
const HELPER_PYTHON: &str = ">=3.10";
/// The Modal app sandboxes are created in.
const APP: &str = "seer";
/// The Modal volume holding the Hugging Face cache, shared by all seer sandboxes (as Seer).
const HF_VOLUME: &str = "seer-hf-cache";
/// Where the volume is mounted in the container; `HF_HOME` points there.
const HF_CACHE_PATH: &str = "/root/.cache/huggingface";
/// The test transport's switch (see the module doc).
pub const TEST_LOCAL_SH: &str = "SEER_MODAL_TEST_LOCAL_SH";

const HELPER: &str = include_str!("modal_helper.py");

/// How to run the helper for one sandbox.
#[derive(Clone)]
pub struct Modal {
    python: PathBuf,
    helper: PathBuf,
    cfg: SandboxConfig,
    /// The test transport's HOME, when [`TEST_LOCAL_SH`] is set.
    test_home: Option<PathBuf>,
}

impl std::fmt::Debug for Modal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Modal")
            .field("python", &self.python)
            .field("test_home", &self.test_home)
            .finish_non_exhaustive()
    }
}

/// `gpu`/`gpu_count` as Modal names them: `"A100"`, `"A100:2"`.
pub fn gpu_string(cfg: &SandboxConfig) -> Option<String> {
    cfg.gpu.as_ref().map(|g| match cfg.gpu_count {
        1 => g.clone(),
        n => format!("{g}:{n}"),
    })
}

/// Fails unless Modal credentials are set up (the SDK reads the same places).
fn check_credentials() -> Result<()> {
    let env = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    if env("MODAL_TOKEN_ID") && env("MODAL_TOKEN_SECRET") {
        return Ok(());
    }
    let toml = std::env::var_os("MODAL_CONFIG_PATH")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".modal.toml")));
    if toml.as_deref().is_some_and(Path::is_file) {
        return Ok(());
    }
    bail!(
        "backend \"modal\" needs Modal credentials, and none were found (neither MODAL_TOKEN_ID and MODAL_TOKEN_SECRET in the environment nor {}): log in with `pip install modal && modal token new` (it writes ~/.modal.toml), or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET",
        toml.map(|p| p.display().to_string())
            .unwrap_or_else(|| "~/.modal.toml".into())
    )
}

/// The helper's venv (made once) and the helper file in seer's cache.
pub async fn helper(cancel: &CancellationToken) -> Result<(PathBuf, PathBuf)> {
    let env = pyenv::ensure_env(HELPER_PYTHON, &[MODAL_SDK.to_string()], cancel)
        .await
        .context("making the venv of seer's Modal helper (with the `modal` SDK from PyPI)")?;
    let digest = hex::encode(Sha256::digest(HELPER.as_bytes()));
    let dir = crate::paths::cache_dir().join("modal");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("helper-{}.py", &digest[..16]));
    if !path.is_file() {
        let tmp = dir.join(format!("helper.tmp-{}", std::process::id()));
        std::fs::write(&tmp, HELPER).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok((env.python(), path))
}

impl Modal {
    /// Checks credentials (not for the test transport), then makes the helper ready.
    pub async fn prepare(cfg: &SandboxConfig, cancel: &CancellationToken) -> Result<Self> {
        let test_home = std::env::var_os(TEST_LOCAL_SH)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        if test_home.is_none() {
            check_credentials()?;
        }
        let (python, helper) = helper(cancel).await?;
        Ok(Self {
            python,
            helper,
            cfg: cfg.clone(),
            test_home,
        })
    }

    /// How the sandbox is named in messages.
    pub fn shown(&self) -> String {
        match &self.test_home {
            Some(_) => "modal (test transport: local sh)".into(),
            None => "modal".into(),
        }
    }

    /// The helper process.
    pub fn command(&self) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.python);
        c.arg(&self.helper);
        if let Some(home) = &self.test_home {
            c.arg("--test-local-sh").arg(home);
        }
        c
    }

    /// The spec line the helper reads first: secret values included (it is written to the
    /// helper's stdin only).
    pub fn spec_line(&self, launcher: &str) -> Result<Vec<u8>> {
        let mut line = serde_json::to_vec(&spec(&self.cfg, launcher, true))?;
        line.push(b'\n');
        Ok(line)
    }

    /// The error of a failed start.
    pub fn start_failed(&self, why: &str) -> String {
        format!(
            "could not start the sandbox on Modal: {why}\n(seer reaches Modal through the `modal` SDK of {}: `{}/modal token info` checks the login; check too that this machine reaches Modal's service)",
            self.python.display(),
            self.python.parent().unwrap_or(Path::new(".")).display()
        )
    }
}

/// What the helper is given; with `with_values` false, the secrets' values are empty.
fn spec(cfg: &SandboxConfig, launcher: &str, with_values: bool) -> serde_json::Value {
    let secrets: std::collections::BTreeMap<String, String> = if with_values {
        super::secret_values(cfg)
    } else {
        cfg.secrets
            .iter()
            .map(|n| (n.clone(), String::new()))
            .collect()
    };
    json!({
        "app": APP,
        "python_version": cfg.python_version,
        "python_packages": cfg.python_packages,
        "system_packages": cfg.system_packages,
        "gpu": gpu_string(cfg),
        "timeout": cfg.timeout,
        "secrets": secrets,
        "hf_volume": HF_VOLUME,
        "hf_cache_path": HF_CACHE_PATH,
        "launcher": launcher,
    })
}

/// `seer __modal-describe`: what the helper would ask Modal for, built with the real SDK
/// offline (the venv is made if needed). Secret values are not given to it.
pub async fn describe(cfg: &SandboxConfig, cancel: &CancellationToken) -> Result<String> {
    use tokio::io::AsyncWriteExt;
    cfg.validate().map_err(|e| anyhow!(e))?;
    if cfg.backend != crate::sandbox::config::BackendKind::Modal {
        bail!("Sandbox config: field `backend`: describing needs `backend: \"modal\"`");
    }
    let (python, helper) = helper(cancel).await?;
    let mut child = tokio::process::Command::new(&python)
        .arg(&helper)
        .arg("--describe")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", python.display()))?;
    let mut line = serde_json::to_vec(&spec(cfg, "", false))?;
    line.push(b'\n');
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(&line).await?;
    }
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        bail!(
            "seer's Modal helper failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_names_as_modal_spells_them() {
        let cfg = |v: serde_json::Value| -> SandboxConfig { serde_json::from_value(v).unwrap() };
        assert_eq!(gpu_string(&cfg(json!({"backend": "modal"}))), None);
        assert_eq!(
            gpu_string(&cfg(json!({"backend": "modal", "gpu": "H100"}))).as_deref(),
            Some("H100")
        );
        assert_eq!(
            gpu_string(&cfg(
                json!({"backend": "modal", "gpu": "A100", "gpu_count": 2})
            ))
            .as_deref(),
            Some("A100:2")
        );
    }
}
