//! The environment of a local sandbox's processes: a few host variables, the env's PATH,
//! the config's `env` and `secrets`, nothing else; and the redactor for the secret values.

use std::collections::BTreeMap;

use crate::sandbox::config::SandboxConfig;
use crate::sandbox::pyenv::PythonEnv;
use crate::sandbox::registry::SandboxRecord;
use crate::secrets::Redactor;

/// Host variables a sandbox process inherits; everything else comes from the config.
const INHERITED_ENV: &[&str] = &[
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TERM",
    "TZ",
    "SHELL",
    "HF_HOME",
    "HF_HUB_CACHE",
    "HF_HUB_OFFLINE",
    "HF_ENDPOINT",
    "TRANSFORMERS_OFFLINE",
    "XDG_CACHE_HOME",
    "UV_CACHE_DIR",
    "UV_INDEX_URL",
    "UV_EXTRA_INDEX_URL",
    "PIP_INDEX_URL",
    "PIP_FIND_LINKS",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
];

/// The environment of sandbox processes, and the redactor for its secret values (which
/// are also protected process-wide: see [`crate::secrets`]).
pub(super) fn build_env(
    cfg: &SandboxConfig,
    record: &SandboxRecord,
    env: &PythonEnv,
    cuda: Option<&str>,
    home: Option<&std::path::Path>,
    given: Option<&BTreeMap<String, String>>,
    warn_missing: bool,
) -> (BTreeMap<String, String>, Redactor) {
    let mut vars = BTreeMap::new();
    for k in INHERITED_ENV {
        if let Ok(v) = std::env::var(k) {
            vars.insert(k.to_string(), v);
        }
    }
    let venv = record.dir.join("venv");
    let mut path = vec![];
    if venv.exists() {
        path.push(venv.join("bin").to_string_lossy().to_string());
    }
    path.push(env.bin_dir().to_string_lossy().to_string());
    path.push(std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()));
    vars.insert("PATH".into(), path.join(":"));
    let active = if venv.exists() {
        venv
    } else {
        env.path.clone()
    };
    vars.insert("VIRTUAL_ENV".into(), active.to_string_lossy().to_string());
    vars.insert(
        "TMPDIR".into(),
        record.dir.join("tmp").to_string_lossy().to_string(),
    );
    vars.insert("PYTHONUNBUFFERED".into(), "1".into());
    // An isolated sandbox has a home of its own (the host home is not visible in it).
    if let Some(h) = home {
        vars.insert("HOME".into(), h.to_string_lossy().to_string());
    }
    vars.insert("SEER_SANDBOX_ID".into(), record.id.clone());
    vars.insert(
        "SEER_WORKSPACE".into(),
        record.workspace.to_string_lossy().to_string(),
    );
    if let Some(c) = cuda {
        vars.insert("CUDA_VISIBLE_DEVICES".into(), c.to_string());
    }
    for (k, v) in &cfg.env {
        vars.insert(k.clone(), v.clone());
    }
    let mut secret_values = vec![];
    for name in &cfg.secrets {
        let value = match given {
            Some(values) => values.get(name).cloned().ok_or(()),
            None => std::env::var(name).map_err(|_| ()),
        };
        match value {
            Ok(v) => {
                crate::secrets::protect(&v);
                secret_values.push(v.clone());
                vars.insert(name.clone(), v);
            }
            Err(_) if warn_missing => tracing::warn!(
                "secret `{name}` is not set in the environment or in .env; the sandbox starts without it"
            ),
            Err(_) => {}
        }
    }
    (vars, Redactor::new(secret_values))
}

/// Host variables the watchdog (`seer __watchdog DIR`) keeps: it needs only its sandbox's
/// folder (its argument) and a sane process environment, so it starts from a cleared one
/// and never holds what seer loaded (API keys, `.env`, the sandbox's secrets).
const WATCHDOG_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TZ",
    "SEER_HOME",
    "SEER_CACHE_DIR",
    "RUST_LOG",
];

/// The environment of the sandbox's watchdog process.
pub(super) fn watchdog_env() -> BTreeMap<String, String> {
    WATCHDOG_ENV
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_env_holds_no_provider_key_or_secret() {
        let env = watchdog_env();
        for k in env.keys() {
            assert!(WATCHDOG_ENV.contains(&k.as_str()), "{k}");
        }
        for k in crate::secrets::PROVIDER_KEY_VARS {
            assert!(!WATCHDOG_ENV.contains(k));
        }
    }
}
