//! Python environments made with `uv`, cached by a hash of python version + package set:
//! a second sandbox with the same packages reuses the env and installs nothing.
//!
//! Layout: `<cache>/envs/<key>/` is a venv; `<key>/.seer-env.json` marks it complete;
//! `<key>.lock` serializes concurrent builders (other threads or other seer processes).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::cancel::cancellable;
use crate::paths;

const MARKER: &str = ".seer-env.json";
/// Bumped when the layout of a cached env changes, so old entries are not reused.
/// 2: bytecode is compiled at install. Under isolation a sandbox sees its env read-only,
/// so Python could never write its `.pyc` files and compiled every module it imported at
/// each kernel start (about 0.7 s of a 1 s start).
const FORMAT: u32 = 2;

/// A ready Python environment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PythonEnv {
    pub path: PathBuf,
    pub key: String,
    pub python_version: String,
    pub packages: Vec<String>,
    /// `pip freeze` of the env when it was made: what a run really used.
    pub installed: Vec<String>,
    /// Whether this start found the env made (not stored in the env's marker; carried by a
    /// remote agent's reply, where skipping it read every remote start as a miss).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cache_hit: bool,
}

impl PythonEnv {
    pub fn bin_dir(&self) -> PathBuf {
        self.path.join("bin")
    }
    pub fn python(&self) -> PathBuf {
        self.bin_dir().join("python")
    }
}

/// The normalized package set (trimmed, sorted, deduplicated) and the cache key for it.
pub fn env_key(python_version: &str, packages: &[String]) -> (String, Vec<String>) {
    let mut pkgs: Vec<String> = packages.iter().map(|p| p.trim().to_string()).collect();
    pkgs.sort();
    pkgs.dedup();
    let mut h = Sha256::new();
    h.update(format!("seer-env-v{FORMAT}\npython={python_version}\n"));
    for p in &pkgs {
        h.update(p.as_bytes());
        h.update(b"\n");
    }
    let digest = hex::encode(h.finalize());
    (format!("py{python_version}-{}", &digest[..16]), pkgs)
}

/// Returns the cached env for this python version + package set, making it if needed.
pub async fn ensure_env(
    python_version: &str,
    packages: &[String],
    cancel: &CancellationToken,
) -> Result<PythonEnv> {
    let (key, pkgs) = env_key(python_version, packages);
    let envs = paths::cache_dir().join("envs");
    let dir = envs.join(&key);
    // Fast path: a finished env needs no lock, it is never modified again.
    if let Some(env) = read_marker(&dir) {
        tracing::info!(key, "python env: cache hit");
        return Ok(env);
    }
    std::fs::create_dir_all(&envs).with_context(|| format!("creating {}", envs.display()))?;
    let _lock = lock_file(&envs.join(format!("{key}.lock")), cancel).await?;
    if let Some(env) = read_marker(&dir) {
        tracing::info!(key, "python env: made by another process while we waited");
        return Ok(env);
    }
    let uv = find_uv(cancel).await?;
    let bar = crate::progress::spinner(format!(
        "creating Python {python_version} env with {} package(s)",
        pkgs.len()
    ));
    if dir.exists() {
        // A build that died half-way: start again.
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let dir_s = dir.to_string_lossy().to_string();
    run(
        &uv,
        &["venv", "--quiet", "--python", python_version, &dir_s],
        "uv venv",
        cancel,
    )
    .await
    .with_context(|| format!("creating a Python {python_version} venv (is that Python version installed? uv looks for it on PATH)"))?;
    let python = dir.join("bin/python").to_string_lossy().to_string();
    if !pkgs.is_empty() {
        let mut args = vec![
            "pip",
            "install",
            "--quiet",
            "--compile-bytecode",
            "--python",
            &python,
        ];
        args.extend(pkgs.iter().map(String::as_str));
        let mut offline = args.clone();
        offline.insert(2, "--offline");
        // Everything already in uv's cache installs without touching the network.
        if run(&uv, &offline, "uv pip install --offline", cancel)
            .await
            .is_err()
        {
            bar.set_message(format!("downloading {} package(s)", pkgs.len()));
            run(&uv, &args, "uv pip install", cancel)
                .await
                .with_context(|| format!("installing python_packages {pkgs:?}"))?;
        }
    }
    let freeze = run(
        &uv,
        &["pip", "freeze", "--python", &python],
        "uv pip freeze",
        cancel,
    )
    .await?;
    let env = PythonEnv {
        path: dir.clone(),
        key: key.clone(),
        python_version: python_version.to_string(),
        packages: pkgs,
        installed: freeze.lines().map(str::to_string).collect(),
        cache_hit: false,
    };
    let tmp = dir.join(format!("{MARKER}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(&env)?)?;
    std::fs::rename(&tmp, dir.join(MARKER))?;
    bar.finish_and_clear();
    tracing::info!(key, "python env: created");
    Ok(env)
}

fn read_marker(dir: &Path) -> Option<PythonEnv> {
    let bytes = std::fs::read(dir.join(MARKER)).ok()?;
    let mut env: PythonEnv = serde_json::from_slice(&bytes).ok()?;
    if !dir.join("bin/python").exists() {
        return None;
    }
    env.path = dir.to_path_buf();
    env.cache_hit = true;
    Some(env)
}

/// An exclusive lock held until dropped; waiting for it can be cancelled.
async fn lock_file(path: &Path, cancel: &CancellationToken) -> Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening lock {}", path.display()))?;
    let mut announced = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {
                if !announced {
                    tracing::info!(lock = %path.display(), "waiting for another seer to finish this env");
                    announced = true;
                }
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
        cancellable(cancel, tokio::time::sleep(Duration::from_millis(50))).await?;
    }
}

/// Runs a provisioning command (uv, pip) to completion, with the provisioning environment
/// (the system's certificates, the sandbox's `provision_env`: see
/// [`super::provision`]); its stdout on success, an error with its stderr otherwise.
pub async fn run(
    program: &Path,
    args: &[&str],
    what: &str,
    cancel: &CancellationToken,
) -> Result<String> {
    let child = tokio::process::Command::new(program)
        .args(args)
        .envs(super::provision::command_env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let out = cancellable(cancel, child.wait_with_output())
        .await?
        .with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!("{what} failed ({}):\n{}", out.status, stderr.trim_end());
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// The `uv` binary: seer's own copy in its cache, else one on PATH, else installed from
/// PyPI into seer's cache with `python3 -m pip`.
pub async fn find_uv(cancel: &CancellationToken) -> Result<PathBuf> {
    find_uv_in(&paths::cache_dir(), cancel).await
}

/// [`find_uv`] with an explicit cache dir (`<cache>/uv/bin/uv` is seer's own copy): the
/// test suite bootstraps uv into its shared cache through this, exactly as seer does.
pub async fn find_uv_in(cache: &Path, cancel: &CancellationToken) -> Result<PathBuf> {
    let cache = cache.to_path_buf();
    let own = cache.join("uv/bin/uv");
    if own.exists() {
        return Ok(own);
    }
    if let Some(p) = which("uv") {
        return Ok(p);
    }
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let _lock = lock_file(&cache.join("uv.lock"), cancel).await?;
    if own.exists() {
        return Ok(own);
    }
    let bar = crate::progress::spinner("installing uv from PyPI into seer's cache".into());
    let tmp = cache.join(format!("uv.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let tmp_s = tmp.to_string_lossy().to_string();
    let python = which("python3")
        .context("uv is not installed and there is no python3 to install it with: install uv (https://docs.astral.sh/uv/) or python3")?;
    run(
        &python,
        &[
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            &tmp_s,
            "uv",
        ],
        "pip install uv",
        cancel,
    )
    .await
    .context("installing uv from PyPI (install it yourself with `pip install uv` and retry)")?;
    if !tmp.join("bin/uv").exists() {
        bail!(
            "pip installed uv but {} is missing",
            tmp.join("bin/uv").display()
        );
    }
    let dest = cache.join("uv");
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::rename(&tmp, &dest).with_context(|| format!("moving uv into {}", dest.display()))?;
    bar.finish_and_clear();
    Ok(own)
}

/// Looks a program up on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ignores_order_duplicates_and_whitespace() {
        let a = env_key("3.11", &["numpy".into(), " six".into(), "numpy".into()]);
        let b = env_key("3.11", &["six".into(), "numpy".into()]);
        assert_eq!(a, b);
        assert_eq!(a.1, vec!["numpy".to_string(), "six".to_string()]);
        assert_ne!(a.0, env_key("3.12", &["six".into(), "numpy".into()]).0);
        assert_ne!(a.0, env_key("3.11", &["six".into()]).0);
        assert!(a.0.starts_with("py3.11-"));
    }
}
