//! The environment of provisioning: what seer runs on the sandbox's machine to make the
//! sandbox (uv making the env, pip installing uv, git cloning repos, Hugging Face
//! downloads), never what the sandbox's own processes get.
//!
//! - Certificates: uv trusts only the roots built into it unless told otherwise, so on a
//!   host whose network goes through a TLS-inspecting proxy (its CA in the system store)
//!   every download fails with `invalid peer certificate: UnknownIssuer`, and an ssh
//!   session carries none of the `SSL_CERT_FILE`-style settings a desktop may have. uv is
//!   therefore run with the system's certificates (`UV_SYSTEM_CERTS`; `UV_NATIVE_TLS` for
//!   older uv) wherever the machine has a certificate store, and pip (which installs uv
//!   when it is missing) is pointed at the system bundle (`PIP_CERT`). git uses the
//!   system's store already; Hugging Face downloads trust the system roots as well as the
//!   built-in ones (reqwest's `rustls-tls-native-roots`, see `Cargo.toml`).
//! - A config's `provision_env` (`["HTTPS_PROXY", "UV_INDEX_URL=https://…"]`): each entry
//!   is `NAME=value` (as written) or `NAME` (taken from seer's environment or `.env` on the
//!   machine seer runs on, like `secrets`, and redacted like them). Those variables are set
//!   for uv, pip and git, and `HF_TOKEN`, `HF_ENDPOINT` and `HF_HUB_OFFLINE` among them are
//!   used for model downloads; the sandbox's processes never get them.
//!
//! The variables travel with the provisioning future ([`scope`]): the local backend's start
//! runs in the scope of its config's variables, and on a remote host the agent runs the
//! start in the scope of the values the user's seer resolved and sent.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};

/// Resolved `provision_env` variables; `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct ProvisionEnv(BTreeMap<String, String>);

impl std::fmt::Debug for ProvisionEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// An entry of `provision_env`: its name, and its value when written in the config.
fn split(entry: &str) -> (&str, Option<&str>) {
    match entry.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (entry, None),
    }
}

impl ProvisionEnv {
    /// Resolves a config's entries here (on the machine seer runs on): a `NAME=value` as
    /// written, a `NAME` from the environment (or `.env`), its value protected as a secret
    /// (see [`crate::secrets`]); an unset name is left out with a warning.
    pub fn resolve(entries: &[String]) -> Self {
        Self::resolve_with(entries, |name| std::env::var(name).ok())
    }

    /// [`ProvisionEnv::resolve`] with the environment read through `lookup`.
    fn resolve_with(entries: &[String], lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut vars = BTreeMap::new();
        for entry in entries {
            match split(entry) {
                (name, Some(value)) => {
                    vars.insert(name.to_string(), value.to_string());
                }
                (name, None) => match lookup(name) {
                    Some(v) => {
                        crate::secrets::protect(&v);
                        vars.insert(name.to_string(), v);
                    }
                    None => tracing::warn!(
                        "provision_env: `{name}` is not set in the environment or in .env; provisioning runs without it"
                    ),
                },
            }
        }
        Self(vars)
    }

    /// The values a seer elsewhere resolved for `entries` (on the sandbox's host): those
    /// that came from that seer's environment are protected as secrets here too.
    pub fn given(values: BTreeMap<String, String>, entries: &[String]) -> Self {
        for entry in entries {
            if let (name, None) = split(entry)
                && let Some(v) = values.get(name)
            {
                crate::secrets::protect(v);
            }
        }
        Self(values)
    }

    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    pub fn into_vars(self) -> BTreeMap<String, String> {
        self.0
    }
}

tokio::task_local! {
    static CURRENT: ProvisionEnv;
}

/// Runs `fut` (a sandbox's start) with `env` as its provisioning variables.
pub async fn scope<F: Future>(env: ProvisionEnv, fut: F) -> F::Output {
    CURRENT.scope(env, fut).await
}

/// The provisioning variables of the start this runs in (none outside one).
pub fn current() -> ProvisionEnv {
    CURRENT.try_with(|e| e.clone()).unwrap_or_default()
}

/// A variable for provisioning: the `provision_env` value, else this process's, if not
/// empty.
pub fn var(name: &str) -> Option<String> {
    current()
        .0
        .get(name)
        .cloned()
        .or_else(|| std::env::var(name).ok())
        .filter(|v| !v.trim().is_empty())
}

/// Certificate bundles of the usual system stores (the list of `openssl-probe`, which
/// rustls' native roots use too).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/ssl/cert.pem",
];

/// The system's certificate bundle, if this machine has one.
pub fn system_bundle() -> Option<PathBuf> {
    SYSTEM_BUNDLES
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .map(Path::to_path_buf)
}

/// The variables of a provisioning command (uv, pip, git): the system's certificates for uv
/// and pip (unless the environment or `provision_env` already chose), then the
/// `provision_env` variables of the current start.
pub fn command_env() -> Vec<(String, String)> {
    let given = current();
    let chosen = |names: &[&str]| {
        names
            .iter()
            .any(|n| given.0.contains_key(*n) || std::env::var_os(n).is_some())
    };
    let mut out = vec![];
    if let Some(bundle) = system_bundle() {
        if !chosen(&["UV_SYSTEM_CERTS", "UV_NATIVE_TLS"]) {
            out.push(("UV_SYSTEM_CERTS".into(), "1".into()));
            out.push(("UV_NATIVE_TLS".into(), "1".into()));
        }
        if !chosen(&["PIP_CERT"]) {
            out.push(("PIP_CERT".into(), bundle.to_string_lossy().to_string()));
        }
    }
    out.extend(given.0);
    out
}

/// Checks a config's `provision_env` entries (`NAME` or `NAME=value`).
pub fn check_entries(entries: &[String]) -> Result<(), String> {
    for (i, entry) in entries.iter().enumerate() {
        let (name, value) = split(entry);
        let is_name = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !is_name {
            return Err(format!(
                "Sandbox config: field `provision_env[{i}]`: `{}` is not `NAME` or `NAME=value` (NAME an environment variable name)",
                entry.escape_debug()
            ));
        }
        if value.is_some_and(|v| v.contains('\0')) {
            return Err(format!(
                "Sandbox config: field `provision_env[{i}]`: the value of `{name}` contains a NUL byte, which an environment variable cannot hold"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_names_or_assignments() {
        let ok: Vec<String> = vec![
            "HTTPS_PROXY".into(),
            "UV_INDEX_URL=https://x/simple?a=b".into(),
        ];
        assert_eq!(check_entries(&ok), Ok(()));
        for (bad, want) in [
            (
                "=x",
                "`provision_env[0]`: `=x` is not `NAME` or `NAME=value`",
            ),
            ("MY VAR=1", "`provision_env[0]`: `MY VAR=1` is not"),
            ("", "`provision_env[0]`: `` is not"),
            ("A=x\0y", "the value of `A` contains a NUL byte"),
        ] {
            let e = check_entries(&[bad.to_string()]).unwrap_err();
            assert!(e.contains(want), "{bad:?}: {e}");
        }
    }

    #[tokio::test]
    async fn values_are_resolved_here_and_apply_within_the_scope_only() {
        let (name, literal) = ("SEER_PROVISION_TEST_TOKEN", "SEER_PROVISION_TEST_URL");
        let env = ProvisionEnv::resolve_with(
            &[
                name.to_string(),
                format!("{literal}=https://pypi.example/simple"),
                "SEER_PROVISION_TEST_UNSET".into(),
            ],
            |n| (n == name).then(|| "provision-secret-5e0b".to_string()),
        );
        assert_eq!(format!("{env:?}"), format!("[\"{name}\", \"{literal}\"]"));
        assert_eq!(
            crate::secrets::redact("t=provision-secret-5e0b"),
            "t=***",
            "a value from the environment is a secret"
        );
        assert_eq!(var(literal), None);
        let (inside, vars) = scope(env, async {
            let vars: Vec<(String, String)> = command_env()
                .into_iter()
                .filter(|(k, _)| k.starts_with("SEER_"))
                .collect();
            (var(literal), vars)
        })
        .await;
        assert_eq!(inside.as_deref(), Some("https://pypi.example/simple"));
        assert_eq!(
            vars,
            [
                (name.to_string(), "provision-secret-5e0b".to_string()),
                (
                    literal.to_string(),
                    "https://pypi.example/simple".to_string()
                )
            ]
        );
        assert_eq!(var(literal), None, "outside the scope");
    }

    #[test]
    fn uv_and_pip_get_the_system_certificates_unless_told_otherwise() {
        let Some(bundle) = system_bundle() else {
            panic!("this machine has no system certificate bundle (install ca-certificates)");
        };
        let vars: BTreeMap<String, String> = command_env().into_iter().collect();
        if std::env::var_os("UV_SYSTEM_CERTS").is_none()
            && std::env::var_os("UV_NATIVE_TLS").is_none()
        {
            assert_eq!(vars.get("UV_SYSTEM_CERTS").map(String::as_str), Some("1"));
            assert_eq!(vars.get("UV_NATIVE_TLS").map(String::as_str), Some("1"));
        }
        if std::env::var_os("PIP_CERT").is_none() {
            assert_eq!(
                vars.get("PIP_CERT"),
                Some(&bundle.to_string_lossy().to_string())
            );
        }
        let chosen = ProvisionEnv(BTreeMap::from([
            ("UV_SYSTEM_CERTS".to_string(), "0".to_string()),
            ("PIP_CERT".to_string(), "/site/bundle.pem".to_string()),
        ]));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let vars: Vec<(String, String)> = rt.block_on(scope(chosen, async { command_env() }));
        assert_eq!(
            vars,
            [
                ("PIP_CERT".to_string(), "/site/bundle.pem".to_string()),
                ("UV_SYSTEM_CERTS".to_string(), "0".to_string()),
            ],
            "the config's choice wins"
        );
    }

    #[test]
    fn given_values_from_the_environment_are_protected_on_the_host() {
        let values = BTreeMap::from([
            ("HF_TOKEN".to_string(), "hf-given-secret-31ab".to_string()),
            (
                "UV_INDEX_URL".to_string(),
                "https://given.example/x".to_string(),
            ),
        ]);
        let env = ProvisionEnv::given(
            values.clone(),
            &[
                "HF_TOKEN".into(),
                "UV_INDEX_URL=https://given.example/x".into(),
            ],
        );
        assert_eq!(env.vars(), &values);
        assert_eq!(
            crate::secrets::redact("hf-given-secret-31ab https://given.example/x"),
            "*** https://given.example/x"
        );
    }
}
