//! The sandbox configuration: every field of Seer's `SandboxConfig`, checked strictly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::models::ModelConfig;
use super::repos::RepoConfig;

/// Which machine runs the sandbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    #[default]
    Local,
    Ssh,
    Slurm,
    Modal,
}

/// How an agent will reach the sandbox (Seer's `ExecutionMode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionMode {
    #[default]
    Cli,
    Notebook,
}

/// How a local sandbox's processes are isolated (see `sandbox::local::isolate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// bubblewrap: read-only system, own workspace, no host home or state dir, own pid
    /// namespace.
    Bwrap,
    /// None: processes see what the user running seer sees.
    None,
}

/// A host file or directory copied into the sandbox: `"path"` (same name at the workspace
/// root) or `[local_path, sandbox_path]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(
    untagged,
    expecting = "a path string or a [local_path, sandbox_path] pair of strings"
)]
pub enum FileMapping {
    Pair(String, String),
    Same(String),
}

impl FileMapping {
    pub fn local(&self) -> &str {
        match self {
            FileMapping::Pair(l, _) | FileMapping::Same(l) => l,
        }
    }

    /// The destination inside the sandbox; `None` means "same file name at the root".
    pub fn sandbox(&self) -> Option<&str> {
        match self {
            FileMapping::Pair(_, s) => Some(s),
            FileMapping::Same(_) => None,
        }
    }
}

fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}
fn default_python() -> String {
    "3.11".into()
}
fn default_timeout() -> u64 {
    3600
}
fn jupyter_port() -> u16 {
    8888
}
fn rpc_port() -> u16 {
    8080
}
fn rpc_timeout() -> u64 {
    600
}
fn wait_timeout() -> u64 {
    300
}

/// Seer's `SandboxConfig`, plus `backend`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    #[serde(default)]
    pub backend: BackendKind,
    #[serde(default)]
    pub gpu: Option<String>,
    #[serde(default = "one")]
    pub gpu_count: u32,
    #[serde(default)]
    pub execution_mode: ExecutionMode,
    #[serde(default)]
    pub models: Vec<ModelConfig>,
    #[serde(default)]
    pub repos: Vec<RepoConfig>,
    #[serde(default)]
    pub python_packages: Vec<String>,
    #[serde(default)]
    pub system_packages: Vec<String>,
    #[serde(default = "default_python")]
    pub python_version: String,
    /// Names of environment variables (from the environment or `.env`) given to the sandbox.
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Seconds after which the sandbox ends itself.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    #[serde(default)]
    pub local_files: Vec<FileMapping>,
    #[serde(default)]
    pub local_dirs: Vec<FileMapping>,
    #[serde(default)]
    pub debug: bool,
    #[serde(default)]
    pub docker_in_docker: bool,
    #[serde(default)]
    pub encrypted_ports: Vec<u16>,
    #[serde(default = "jupyter_port")]
    pub jupyter_port: u16,
    #[serde(default = "rpc_port")]
    pub rpc_port: u16,
    #[serde(default = "rpc_port")]
    pub debug_port: u16,
    #[serde(default = "rpc_timeout")]
    pub rpc_timeout: u64,
    #[serde(default = "wait_timeout")]
    pub wait_timeout: u64,
    /// Process isolation on the local backend; default: `bwrap` where bubblewrap is
    /// installed, else none (with a warning).
    #[serde(default)]
    pub isolation: Option<Isolation>,
    /// `false` gives the sandbox's processes a network namespace of their own (loopback
    /// only). Needs isolation.
    #[serde(default = "yes")]
    pub network: bool,
    /// Extra packages for notebook mode; `ipykernel` is always added.
    #[serde(default)]
    pub notebook_packages: Vec<String>,
    /// `backend: "ssh"`: the ssh destination (an alias of `~/.ssh/config`, `host`,
    /// `user@host`, `host:port`).
    #[serde(default)]
    pub host: Option<String>,
    /// `backend: "ssh"`: extra arguments for the `ssh` client (e.g. `["-i", "~/.ssh/gpu"]`).
    #[serde(default)]
    pub ssh_options: Vec<String>,
    /// `backend: "ssh"`: seer's folder on the remote host (binary, state, env cache);
    /// default `~/.cache/seer-remote`.
    #[serde(default)]
    pub remote_dir: Option<String>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        // An empty map has every field defaulted; this cannot fail.
        serde_json::from_value(serde_json::json!({})).unwrap_or_else(|_| unreachable!())
    }
}

impl SandboxConfig {
    /// Checks what serde cannot: value formats and features that do not exist yet.
    pub fn validate(&self) -> Result<(), String> {
        match (self.backend, &self.host) {
            (BackendKind::Ssh, None) => {
                return Err("Sandbox config: field `host`: backend \"ssh\" needs the ssh destination to run on (e.g. `host: \"gpu-box\"`)".into());
            }
            (BackendKind::Ssh, Some(h))
                if h.trim().is_empty() || h.starts_with('-') || h.contains(char::is_whitespace) =>
            {
                return Err(format!(
                    "Sandbox config: field `host`: `{h}` is not an ssh destination"
                ));
            }
            (BackendKind::Local, Some(_)) => {
                return Err("Sandbox config: field `host` is for `backend: \"ssh\"`; add that, or remove `host` to run here".into());
            }
            _ => {}
        }
        if self.backend != BackendKind::Ssh
            && (!self.ssh_options.is_empty() || self.remote_dir.is_some())
        {
            return Err(
                "Sandbox config: fields `ssh_options` and `remote_dir` are for `backend: \"ssh\"`"
                    .into(),
            );
        }
        if let Some(d) = &self.remote_dir
            && (d.is_empty() || d.contains(['\'', '\n', '\0']))
        {
            return Err(format!(
                "Sandbox config: field `remote_dir`: `{}` is not a usable folder",
                d.escape_debug()
            ));
        }
        if !matches!(self.backend, BackendKind::Local | BackendKind::Ssh) {
            let name = serde_json::to_value(self.backend)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            return Err(format!(
                "not supported yet: backend `{name}` (`local` and `ssh` work today; see README)"
            ));
        }
        let v = &self.python_version;
        let parts: Vec<&str> = v.split('.').collect();
        if !(2..=3).contains(&parts.len())
            || parts
                .iter()
                .any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(format!(
                "Sandbox config: field `python_version`: `{v}` is not a version like \"3.11\""
            ));
        }
        if self.gpu_count == 0 {
            return Err("Sandbox config: field `gpu_count`: must be at least 1".into());
        }
        if self.docker_in_docker {
            return Err("not supported yet: `docker_in_docker` on the local backend".into());
        }
        if !self.encrypted_ports.is_empty() {
            return Err("not supported yet: `encrypted_ports` on the local backend (its ports are on 127.0.0.1)".into());
        }
        for (i, p) in self.python_packages.iter().enumerate() {
            if p.trim().is_empty() || p.starts_with('-') {
                return Err(format!(
                    "Sandbox config: field `python_packages[{i}]`: `{p}` is not a package requirement"
                ));
            }
        }
        for (i, s) in self.secrets.iter().enumerate() {
            if !is_env_name(s) {
                return Err(format!(
                    "Sandbox config: field `secrets[{i}]`: `{s}` is not an environment variable name"
                ));
            }
        }
        for (k, v) in &self.env {
            if !is_env_name(k) {
                return Err(format!(
                    "Sandbox config: field `env`: `{}` is not an environment variable name",
                    k.escape_debug()
                ));
            }
            // The OS cannot pass a NUL byte in the environment; it would fail at the first
            // command as "nul byte found".
            if v.contains('\0') {
                return Err(format!(
                    "Sandbox config: field `env.{k}`: the value contains a NUL byte, which an \
                     environment variable cannot hold"
                ));
            }
        }
        Ok(())
    }

    /// The packages of the Python env: configured ones, plus the kernel in notebook mode.
    pub fn env_packages(&self) -> Vec<String> {
        let mut pkgs = self.python_packages.clone();
        if self.execution_mode == ExecutionMode::Notebook {
            pkgs.push("ipykernel".into());
            pkgs.extend(self.notebook_packages.iter().cloned());
        }
        pkgs
    }
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_json;
    use serde_json::json;

    #[test]
    fn defaults_match_seer() {
        let c = SandboxConfig::default();
        assert_eq!(c.python_version, "3.11");
        assert_eq!(c.timeout, 3600);
        assert_eq!(c.gpu_count, 1);
        assert_eq!(c.execution_mode, ExecutionMode::Cli);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn file_mappings_accept_both_forms() {
        let c: SandboxConfig = from_json(
            "c",
            json!({"local_files": ["a.txt", ["b.txt", "data/b.txt"]]}),
        )
        .unwrap();
        assert_eq!(
            c.local_files,
            vec![
                FileMapping::Same("a.txt".into()),
                FileMapping::Pair("b.txt".into(), "data/b.txt".into())
            ]
        );
        let e = from_json::<SandboxConfig>("c", json!({"local_files": [5]})).unwrap_err();
        assert_eq!(
            e.0,
            "c: field `local_files[0]`: a path string or a [local_path, sandbox_path] pair of strings"
        );
    }

    #[test]
    fn validation_rejects_bad_values() {
        let bad = [
            (
                json!({"backend": "modal"}),
                "not supported yet: backend `modal`",
            ),
            (
                json!({"python_version": "three"}),
                "`three` is not a version",
            ),
            (json!({"secrets": ["MY KEY"]}), "`secrets[0]`"),
            (
                json!({"docker_in_docker": true}),
                "not supported yet: `docker_in_docker`",
            ),
            (json!({"gpu_count": 0}), "must be at least 1"),
        ];
        for (input, want) in bad {
            let c: SandboxConfig = from_json("c", input.clone()).unwrap();
            let e = c.validate().unwrap_err();
            assert!(e.contains(want), "{input}: {e}");
        }
    }
}
