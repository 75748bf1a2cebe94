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
    /// Variables for provisioning on the sandbox's machine only (uv, pip, git, model
    /// downloads), never for the sandbox's processes: `"NAME=value"`, or `"NAME"` taken
    /// from seer's environment (or `.env`) and redacted like `secrets`. See
    /// `sandbox::provision`.
    #[serde(default)]
    pub provision_env: Vec<String>,
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
    /// `backend: "slurm"`: the partition (`--partition`).
    #[serde(default)]
    pub partition: Option<String>,
    /// `backend: "slurm"`: the account charged (`--account`).
    #[serde(default)]
    pub account: Option<String>,
    /// `backend: "slurm"`: the quality of service (`--qos`).
    #[serde(default)]
    pub qos: Option<String>,
    /// `backend: "slurm"`: the GRES type of each `gpu` name, for sites that name GPUs
    /// differently (`#{ A100: "a100_80g" }`); unmapped names are lowercased.
    #[serde(default)]
    pub gpu_type_map: BTreeMap<String, String>,
    /// `backend: "slurm"`: a raw `--gres` request, used instead of `gpu`/`gpu_count`.
    #[serde(default)]
    pub gres: Option<String>,
    /// `backend: "slurm"`: CPUs of the job (`--cpus-per-task`).
    #[serde(default)]
    pub cpus: Option<u32>,
    /// Memory of the whole sandbox (e.g. `"32G"`; a bare number is megabytes): its cgroup's
    /// bound (default 80% of the host's memory), and on `backend: "slurm"` also the job's
    /// `--mem`.
    #[serde(default)]
    pub memory: Option<String>,
    /// Processes and threads the sandbox may have at once (default 4096).
    #[serde(default)]
    pub pids: Option<u64>,
    /// The size one file of the sandbox may grow to (e.g. `"10G"`; default: no bound); a
    /// write past it fails with "File too large".
    #[serde(default)]
    pub max_file_size: Option<String>,
    /// `backend: "slurm"`: extra `sbatch` flags (`["--constraint=a100", "--exclusive"]`).
    #[serde(default)]
    pub slurm_options: Vec<String>,
    /// `backend: "slurm"`: the ssh destination of the cluster's login node when seer runs
    /// off the cluster (absent: seer runs where `sbatch` and `srun` work).
    #[serde(default)]
    pub login: Option<String>,
    /// `backend: "slurm"`: seer's folder on the cluster's shared filesystem (binary, job
    /// state, env cache); default `~/.cache/seer-remote`.
    #[serde(default)]
    pub shared_dir: Option<String>,
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
        self.validate_backend()?;
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
        for (field, v) in [
            ("memory", &self.memory),
            ("max_file_size", &self.max_file_size),
        ] {
            if let Some(m) = v
                && crate::sandbox::bounds::parse_amount(m).is_none()
            {
                return Err(format!(
                    "Sandbox config: field `{field}`: `{}` is not an amount like \"32G\" or \"4000M\"",
                    m.escape_debug()
                ));
            }
        }
        if self.pids == Some(0) {
            return Err("Sandbox config: field `pids`: must be at least 1".into());
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
        super::provision::check_entries(&self.provision_env)?;
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

    /// The same sandbox as a local one (what seer on the remote machine starts): the
    /// fields of the remote backends cleared.
    pub fn into_local(self) -> Self {
        Self {
            backend: BackendKind::Local,
            host: None,
            ssh_options: vec![],
            remote_dir: None,
            partition: None,
            account: None,
            qos: None,
            gpu_type_map: BTreeMap::new(),
            gres: None,
            cpus: None,
            slurm_options: vec![],
            login: None,
            shared_dir: None,
            ..self
        }
    }

    /// The backend and its fields: each remote field only with its backend.
    fn validate_backend(&self) -> Result<(), String> {
        let is = |b: BackendKind| self.backend == b;
        match (self.backend, &self.host) {
            (BackendKind::Ssh, None) => {
                return Err("Sandbox config: field `host`: backend \"ssh\" needs the ssh destination to run on (e.g. `host: \"gpu-box\"`)".into());
            }
            (BackendKind::Ssh, Some(h)) if !is_ssh_destination(h) => {
                return Err(format!(
                    "Sandbox config: field `host`: `{h}` is not an ssh destination"
                ));
            }
            (BackendKind::Ssh, _) => {}
            (_, Some(_)) => {
                return Err("Sandbox config: field `host` is for `backend: \"ssh\"` (a Slurm login node is `login`); add that, or remove `host` to run here".into());
            }
            _ => {}
        }
        if !is(BackendKind::Ssh) && self.remote_dir.is_some() {
            return Err("Sandbox config: field `remote_dir` is for `backend: \"ssh\"` (on Slurm: `shared_dir`)".into());
        }
        if !is(BackendKind::Ssh) && !is(BackendKind::Slurm) && !self.ssh_options.is_empty() {
            return Err("Sandbox config: field `ssh_options` is for `backend: \"ssh\"` (or \"slurm\" with `login`)".into());
        }
        if is(BackendKind::Slurm) && self.login.is_none() && !self.ssh_options.is_empty() {
            return Err("Sandbox config: field `ssh_options`: on `backend: \"slurm\"` it is for reaching `login`, which is not set".into());
        }
        for (field, dir) in [
            ("remote_dir", &self.remote_dir),
            ("shared_dir", &self.shared_dir),
        ] {
            if let Some(d) = dir
                && (d.is_empty() || d.contains(['\'', '\n', '\0']))
            {
                return Err(format!(
                    "Sandbox config: field `{field}`: `{}` is not a usable folder",
                    d.escape_debug()
                ));
            }
        }
        if !is(BackendKind::Slurm) {
            let set: Vec<&str> = [
                ("partition", self.partition.is_some()),
                ("account", self.account.is_some()),
                ("qos", self.qos.is_some()),
                ("gpu_type_map", !self.gpu_type_map.is_empty()),
                ("gres", self.gres.is_some()),
                ("cpus", self.cpus.is_some()),
                ("slurm_options", !self.slurm_options.is_empty()),
                ("login", self.login.is_some()),
                ("shared_dir", self.shared_dir.is_some()),
            ]
            .into_iter()
            .filter_map(|(f, on)| on.then_some(f))
            .collect();
            if let Some(f) = set.first() {
                return Err(format!(
                    "Sandbox config: field `{f}` is for `backend: \"slurm\"`"
                ));
            }
        } else {
            self.validate_slurm()?;
        }
        if is(BackendKind::Modal) && !(1..=86_400).contains(&self.timeout) {
            return Err(format!(
                "Sandbox config: field `timeout`: {} s is not a Modal sandbox lifetime (1 to 86400 s: Modal ends sandboxes after 24 h at most)",
                self.timeout
            ));
        }
        if is(BackendKind::Modal)
            && let Some(g) = &self.gpu
            && (g.is_empty() || !g.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err(format!(
                "Sandbox config: field `gpu`: `{}` is not a Modal GPU type (like \"A100\" or \"H100\"; the count is `gpu_count`)",
                g.escape_debug()
            ));
        }
        Ok(())
    }

    fn validate_slurm(&self) -> Result<(), String> {
        let word = |field: &str, v: &str, extra: &[char]| {
            let ok = !v.is_empty()
                && !v.starts_with('-')
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c) || extra.contains(&c));
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "Sandbox config: field `{field}`: `{}` is not a Slurm name",
                    v.escape_debug()
                ))
            }
        };
        for (field, v) in [
            ("partition", &self.partition),
            ("account", &self.account),
            ("qos", &self.qos),
        ] {
            if let Some(v) = v {
                word(field, v, &[','])?;
            }
        }
        if let Some(g) = &self.gres {
            word("gres", g, &[':', ','])?;
        }
        for (k, v) in &self.gpu_type_map {
            word(&format!("gpu_type_map.{k}"), v, &[])?;
        }
        if self.cpus == Some(0) {
            return Err("Sandbox config: field `cpus`: must be at least 1".into());
        }
        if let Some(l) = &self.login
            && !is_ssh_destination(l)
        {
            return Err(format!(
                "Sandbox config: field `login`: `{l}` is not an ssh destination"
            ));
        }
        for (i, o) in self.slurm_options.iter().enumerate() {
            if !o.starts_with('-') || o.contains(['\n', '\0']) {
                return Err(format!(
                    "Sandbox config: field `slurm_options[{i}]`: `{}` is not an sbatch flag (like \"--constraint=a100\")",
                    o.escape_debug()
                ));
            }
            let name = o.split('=').next().unwrap_or(o);
            if let Some((_, instead)) = SEER_SETS.iter().find(|(flags, _)| flags.contains(&name)) {
                return Err(format!(
                    "Sandbox config: field `slurm_options[{i}]`: seer sets `{name}` itself; {instead}"
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

/// sbatch flags seer sets from other fields (or for itself), and what to use instead.
const SEER_SETS: &[(&[&str], &str)] = &[
    (&["--time", "-t"], "use `timeout`"),
    (&["--partition", "-p"], "use `partition`"),
    (&["--account", "-A"], "use `account`"),
    (&["--qos", "-q"], "use `qos`"),
    (
        &[
            "--gres",
            "--gpus",
            "-G",
            "--gpus-per-node",
            "--gpus-per-task",
        ],
        "use `gpu`/`gpu_count` or `gres`",
    ),
    (&["--cpus-per-task", "-c"], "use `cpus`"),
    (&["--mem"], "use `memory`"),
    (
        &[
            "--job-name",
            "-J",
            "--output",
            "-o",
            "--error",
            "-e",
            "--input",
            "-i",
            "--parsable",
            "--wrap",
            "--chdir",
            "-D",
            "--nodes",
            "-N",
            "--ntasks",
            "-n",
            "--export",
        ],
        "seer needs its own value",
    ),
];

fn is_ssh_destination(h: &str) -> bool {
    !(h.trim().is_empty() || h.starts_with('-') || h.contains(char::is_whitespace))
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
                json!({"backend": "modal", "gpu": "A100:2"}),
                "Sandbox config: field `gpu`: `A100:2` is not a Modal GPU type (like \"A100\" or \"H100\"; the count is `gpu_count`)",
            ),
            (
                json!({"backend": "modal", "timeout": 0}),
                "Sandbox config: field `timeout`: 0 s is not a Modal sandbox lifetime (1 to 86400 s: Modal ends sandboxes after 24 h at most)",
            ),
            (
                json!({"backend": "modal", "partition": "gpu"}),
                "Sandbox config: field `partition` is for `backend: \"slurm\"`",
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

    #[test]
    fn slurm_fields_are_checked_with_their_names() {
        let good: SandboxConfig = from_json(
            "c",
            json!({"backend": "slurm", "partition": "gpu", "account": "lab", "qos": "normal",
                   "gpu": "A100", "gpu_count": 2, "gpu_type_map": {"A100": "a100_80g"},
                   "cpus": 8, "memory": "64G", "slurm_options": ["--constraint=a100"],
                   "login": "me@cluster", "ssh_options": ["-J", "bastion"],
                   "shared_dir": "/scratch/me/seer"}),
        )
        .unwrap();
        assert_eq!(good.validate(), Ok(()));
        let bad = [
            (
                json!({"partition": "gpu"}),
                "Sandbox config: field `partition` is for `backend: \"slurm\"`",
            ),
            (
                json!({"backend": "ssh", "host": "h", "shared_dir": "/x"}),
                "Sandbox config: field `shared_dir` is for `backend: \"slurm\"`",
            ),
            (
                json!({"backend": "slurm", "host": "h"}),
                "Sandbox config: field `host` is for `backend: \"ssh\"` (a Slurm login node is `login`); add that, or remove `host` to run here",
            ),
            (
                json!({"backend": "slurm", "remote_dir": "/x"}),
                "Sandbox config: field `remote_dir` is for `backend: \"ssh\"` (on Slurm: `shared_dir`)",
            ),
            (
                json!({"backend": "slurm", "ssh_options": ["-v"]}),
                "Sandbox config: field `ssh_options`: on `backend: \"slurm\"` it is for reaching `login`, which is not set",
            ),
            (
                json!({"backend": "slurm", "partition": "gpu queue"}),
                "Sandbox config: field `partition`: `gpu queue` is not a Slurm name",
            ),
            (
                json!({"backend": "slurm", "gres": "--gpu"}),
                "Sandbox config: field `gres`: `--gpu` is not a Slurm name",
            ),
            (
                json!({"backend": "slurm", "gpu_type_map": {"A100": "a:1"}}),
                "Sandbox config: field `gpu_type_map.A100`: `a:1` is not a Slurm name",
            ),
            (
                json!({"backend": "slurm", "cpus": 0}),
                "Sandbox config: field `cpus`: must be at least 1",
            ),
            (
                json!({"backend": "slurm", "memory": "lots"}),
                "Sandbox config: field `memory`: `lots` is not an amount like \"32G\" or \"4000M\"",
            ),
            (
                json!({"backend": "slurm", "login": "-oProxyCommand=x"}),
                "Sandbox config: field `login`: `-oProxyCommand=x` is not an ssh destination",
            ),
            (
                json!({"backend": "slurm", "slurm_options": ["--exclusive", "constraint=a"]}),
                "Sandbox config: field `slurm_options[1]`: `constraint=a` is not an sbatch flag (like \"--constraint=a100\")",
            ),
            (
                json!({"backend": "slurm", "slurm_options": ["--time=10"]}),
                "Sandbox config: field `slurm_options[0]`: seer sets `--time` itself; use `timeout`",
            ),
            (
                json!({"backend": "slurm", "shared_dir": "it's"}),
                "Sandbox config: field `shared_dir`: `it\\'s` is not a usable folder",
            ),
        ];
        for (input, want) in bad {
            let c: SandboxConfig = from_json("c", input.clone()).unwrap();
            assert_eq!(c.validate(), Err(want.to_string()), "{input}");
        }
    }
}
