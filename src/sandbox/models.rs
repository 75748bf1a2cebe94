//! Resolves the models a script lists under `models` into directories the sandbox loads from.
//!
//! A model is either a local directory or a Hugging Face Hub repo id. Hub models are looked
//! up in the standard Hugging Face cache (the layout Python's `huggingface_hub` uses, so
//! both share downloads) and downloaded into it when missing. PEFT adapters get their base
//! model resolved by the same rules. Hidden models are materialized under the sandbox's
//! models folder with hard links, so neither the handle's name nor its path reveals which
//! model it is.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use hf_hub::api::tokio::{ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};
use tokio_util::sync::CancellationToken;

use crate::python_syntax::is_identifier;

fn default_var_name() -> String {
    "model".into()
}

/// One entry of a script's `models` list.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// A Hugging Face id (`org/name` or `name`) or a local directory path.
    pub name: String,
    /// The variable the sandbox binds the model to.
    #[serde(default = "default_var_name")]
    pub var_name: String,
    /// Hide which model this is from the sandbox.
    #[serde(default)]
    pub hidden: bool,
    /// The model is a PEFT adapter (its directory has `adapter_config.json`).
    #[serde(default)]
    pub is_peft: bool,
    /// The adapter's base model; defaults to `base_model_name_or_path` in `adapter_config.json`.
    #[serde(default)]
    pub base_model: Option<String>,
    /// Hub branch, tag or commit; defaults to `main`.
    #[serde(default)]
    pub revision: Option<String>,
    /// Carried for the loader in the sandbox; not used when resolving.
    #[serde(default)]
    pub load_as_peft: bool,
}

/// A resolved model, ready for the sandbox to load.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, PartialEq)]
pub struct ModelHandle {
    /// The configured name, or `hidden-model-<i>` for a hidden model.
    pub name: String,
    /// The directory the sandbox loads from.
    pub path: String,
    /// The commit for Hub models, `local` for local directories.
    pub revision: String,
    pub var_name: String,
    pub hidden: bool,
    pub is_peft: bool,
    /// The base model's name (`hidden-model-<i>-base` when hidden).
    pub base_model: Option<String>,
    pub base_model_path: Option<String>,
    pub base_model_revision: Option<String>,
}

/// Files that make a directory a model: a full model or a PEFT adapter.
const MARKERS: [&str; 2] = ["config.json", "adapter_config.json"];

/// File extensions of weights; a cached snapshot without any is treated as incomplete.
const WEIGHT_EXTS: [&str; 11] = [
    "safetensors",
    "bin",
    "pt",
    "pth",
    "gguf",
    "h5",
    "msgpack",
    "ckpt",
    "onnx",
    "npz",
    "nemo",
];

/// Resolves every model in `cfgs`; see the module docs.
///
/// Relative paths are resolved against `base_dir` (the script's folder); hidden models are
/// materialized under `sandbox_models_dir`. The Hugging Face cache is `$HF_HUB_CACHE`, else
/// `$HF_HOME/hub`, else `~/.cache/huggingface/hub`; `HF_HUB_OFFLINE=1` forbids downloads,
/// `HF_TOKEN` and `HF_ENDPOINT` are used for downloads.
pub async fn resolve_models(
    cfgs: &[ModelConfig],
    base_dir: &Path,
    sandbox_models_dir: &Path,
    cancel: &CancellationToken,
) -> Result<Vec<ModelHandle>> {
    if cfgs.is_empty() {
        return Ok(vec![]);
    }
    let hub_cache = hf_hub_cache_dir()?;
    let offline = env_flag("HF_HUB_OFFLINE");
    resolve_models_in(
        cfgs,
        base_dir,
        sandbox_models_dir,
        &hub_cache,
        offline,
        cancel,
    )
    .await
}

/// The Hugging Face hub cache: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
/// `~/.cache/huggingface/hub`.
pub fn hf_hub_cache_dir() -> Result<PathBuf> {
    if let Some(dir) = env_nonempty("HF_HUB_CACHE") {
        return Ok(expand_home(&dir));
    }
    if let Some(home) = env_nonempty("HF_HOME") {
        return Ok(expand_home(&home).join("hub"));
    }
    let home = dirs::home_dir().context(
        "cannot find the home directory to locate the Hugging Face cache; set HF_HUB_CACHE or HF_HOME",
    )?;
    Ok(home.join(".cache").join("huggingface").join("hub"))
}

/// [`resolve_models`] with the hub cache and offline mode given instead of read from the
/// environment (`HF_TOKEN` and `HF_ENDPOINT` are still read when downloading).
pub async fn resolve_models_in(
    cfgs: &[ModelConfig],
    base_dir: &Path,
    sandbox_models_dir: &Path,
    hub_cache: &Path,
    offline: bool,
    cancel: &CancellationToken,
) -> Result<Vec<ModelHandle>> {
    let hub = Hub {
        cache: hub_cache.to_path_buf(),
        offline,
        endpoint: env_nonempty("HF_ENDPOINT"),
        token: env_nonempty("HF_TOKEN"),
    };
    resolve_with(cfgs, base_dir, sandbox_models_dir, &hub, cancel).await
}

/// How to reach the Hugging Face Hub and its cache.
struct Hub {
    cache: PathBuf,
    offline: bool,
    /// `HF_ENDPOINT`; the public Hub when `None`.
    endpoint: Option<String>,
    /// `HF_TOKEN`; when `None`, hf-hub reads the token file next to the cache, if any.
    token: Option<String>,
}

async fn resolve_with(
    cfgs: &[ModelConfig],
    base_dir: &Path,
    sandbox_models_dir: &Path,
    hub: &Hub,
    cancel: &CancellationToken,
) -> Result<Vec<ModelHandle>> {
    check_var_names(cfgs)?;
    let resolver = Resolver {
        base_dir,
        hub,
        cancel,
    };
    let models_dir = std::path::absolute(sandbox_models_dir).with_context(|| {
        format!(
            "resolving the sandbox models folder {}",
            sandbox_models_dir.display()
        )
    })?;
    let mut handles = Vec::with_capacity(cfgs.len());
    for (i, cfg) in cfgs.iter().enumerate() {
        if cancel.is_cancelled() {
            bail!("cancelled");
        }
        handles.push(resolver.resolve_entry(i, cfg, &models_dir).await?);
    }
    Ok(handles)
}

/// Rejects var_names that are not identifiers, duplicates, and clashing hidden folders.
fn check_var_names(cfgs: &[ModelConfig]) -> Result<()> {
    let label = |i: usize| {
        let c = &cfgs[i];
        if c.hidden {
            format!("models[{i}] (hidden-model-{i})")
        } else {
            format!("models[{i}] (`{}`)", c.name)
        }
    };
    let mut by_var: HashMap<&str, usize> = HashMap::new();
    let mut by_dir: HashMap<String, usize> = HashMap::new();
    for (i, c) in cfgs.iter().enumerate() {
        if !is_identifier(&c.var_name) {
            bail!(
                "{}: var_name `{}` must be a Python identifier (letters, digits and `_`, \
                 not starting with a digit)",
                label(i),
                c.var_name
            );
        }
        if let Some(&j) = by_var.get(c.var_name.as_str()) {
            bail!(
                "{} and {} both use var_name `{}`; give each model its own var_name",
                label(j),
                label(i),
                c.var_name
            );
        }
        by_var.insert(&c.var_name, i);
        if c.hidden {
            let mut dirs = vec![c.var_name.clone()];
            if c.is_peft {
                dirs.push(format!("{}_base", c.var_name));
            }
            for d in dirs {
                if let Some(&j) = by_dir.get(&d) {
                    bail!(
                        "{} and {} would both be placed in the sandbox models folder as `{d}`; \
                         rename one var_name",
                        label(j),
                        label(i)
                    );
                }
                by_dir.insert(d, i);
            }
        }
    }
    Ok(())
}

/// A model directory found on disk.
#[derive(Debug)]
struct Located {
    path: PathBuf,
    /// Commit for Hub models, `local` for local directories.
    revision: String,
}

/// A JSON key replaced in a hidden model's copy of a file, so the file does not name the
/// real model.
struct Rewrite {
    file: &'static str,
    key: &'static str,
    value: String,
}

struct Resolver<'a> {
    base_dir: &'a Path,
    hub: &'a Hub,
    cancel: &'a CancellationToken,
}

impl Resolver<'_> {
    async fn resolve_entry(
        &self,
        i: usize,
        cfg: &ModelConfig,
        models_dir: &Path,
    ) -> Result<ModelHandle> {
        let what = format!("model `{}`", cfg.name);
        let model = self
            .locate(&cfg.name, cfg.revision.as_deref(), &what)
            .await?;
        let base = if cfg.is_peft {
            let (base_name, base_rev, from) = peft_base(&model.path, cfg, &what)?;
            let base_what = format!("base model `{base_name}` ({from}) of {what}");
            let located = self
                .locate(&base_name, base_rev.as_deref(), &base_what)
                .await?;
            Some((base_name, located))
        } else {
            if cfg.base_model.is_some() {
                tracing::warn!(
                    "models[{i}]: `base_model` is ignored because `is_peft` is false; \
                     set `is_peft: true` if this is an adapter"
                );
            }
            None
        };

        if !cfg.hidden {
            tracing::info!(
                model = %cfg.name,
                path = %model.path.display(),
                revision = %model.revision,
                "model ready"
            );
            return Ok(ModelHandle {
                name: cfg.name.clone(),
                path: model.path.display().to_string(),
                revision: model.revision,
                var_name: cfg.var_name.clone(),
                hidden: false,
                is_peft: cfg.is_peft,
                base_model: base.as_ref().map(|(n, _)| n.clone()),
                base_model_path: base.as_ref().map(|(_, b)| b.path.display().to_string()),
                base_model_revision: base.map(|(_, b)| b.revision),
            });
        }

        let masked = format!("hidden-model-{i}");
        let dest = models_dir.join(&cfg.var_name);
        let mut rewrites = name_rewrites(&dest);
        let mut base_fields = (None, None, None);
        if let Some((_, b)) = base {
            let base_dest = models_dir.join(format!("{}_base", cfg.var_name));
            materialize(&b.path, &base_dest, name_rewrites(&base_dest), self.cancel)
                .await
                .map_err(|e| {
                    self.unless_cancelled(e, || {
                        format!("{what}: preparing the hidden copy of its base model")
                    })
                })?;
            rewrites.push(Rewrite {
                file: "adapter_config.json",
                key: "base_model_name_or_path",
                value: base_dest.display().to_string(),
            });
            base_fields = (
                Some(format!("{masked}-base")),
                Some(base_dest.display().to_string()),
                Some(b.revision),
            );
        }
        materialize(&model.path, &dest, rewrites, self.cancel)
            .await
            .map_err(|e| {
                self.unless_cancelled(e, || format!("{what}: preparing the hidden copy"))
            })?;
        tracing::info!(model = %masked, path = %dest.display(), "hidden model ready");
        Ok(ModelHandle {
            name: masked,
            path: dest.display().to_string(),
            revision: model.revision,
            var_name: cfg.var_name.clone(),
            hidden: true,
            is_peft: cfg.is_peft,
            base_model: base_fields.0,
            base_model_path: base_fields.1,
            base_model_revision: base_fields.2,
        })
    }

    /// Adds `context` to `e`, except that a cancellation stays a bare "cancelled".
    fn unless_cancelled(
        &self,
        e: anyhow::Error,
        context: impl FnOnce() -> String,
    ) -> anyhow::Error {
        if self.cancel.is_cancelled() {
            anyhow!("cancelled")
        } else {
            e.context(context())
        }
    }

    /// Finds (or downloads) the directory of a model; `what` names it in messages.
    async fn locate(&self, name: &str, revision: Option<&str>, what: &str) -> Result<Located> {
        if is_local_name(name, self.base_dir) {
            if revision.is_some() {
                tracing::warn!("{what}: `revision` is ignored for a local directory");
            }
            let path = local_model_dir(name, self.base_dir, what)?;
            return Ok(Located {
                path,
                revision: "local".into(),
            });
        }
        check_hf_id(name).map_err(|why| {
            anyhow!(
                "{what} is neither a local directory (there is no {}) nor a valid Hugging Face \
                 id ({why}); use `org/name`, or a path starting with `./` or `/`",
                self.base_dir.join(name).display()
            )
        })?;
        let rev = revision.unwrap_or("main");
        check_revision(rev).map_err(|why| {
            anyhow!("{what}: revision `{rev}` is not valid ({why}); give a branch, tag or commit")
        })?;
        let repo_dir = self.hub.cache.join(cache_folder(name));
        if let Some(found) = cached_snapshot(&repo_dir, rev)? {
            match snapshot_gap(&found.path) {
                None => {
                    tracing::debug!("{what}: found in the Hugging Face cache");
                    return Ok(found);
                }
                Some(gap) if self.hub.offline => {
                    tracing::warn!(
                        "{what}: the cached copy at {} looks incomplete ({gap}) but HF_HUB_OFFLINE \
                         is set, so it is used as is",
                        found.path.display()
                    );
                    return Ok(found);
                }
                Some(gap) => {
                    tracing::info!("{what}: the cached copy looks incomplete ({gap}); downloading")
                }
            }
        }
        if self.hub.offline {
            bail!(
                "{what} is not in the Hugging Face cache at {} and HF_HUB_OFFLINE is set; \
                 download it first or unset HF_HUB_OFFLINE",
                self.hub.cache.display()
            );
        }
        download(name, rev, self.hub, what, self.cancel).await?;
        cached_snapshot(&repo_dir, rev)?.ok_or_else(|| {
            anyhow!(
                "{what}: downloaded revision `{rev}`, but it has no config.json or \
                 adapter_config.json; check that `{name}` is a transformers model or a PEFT adapter"
            )
        })
    }
}

/// The base model of a PEFT adapter: `(name, revision, where the name came from)`.
fn peft_base(
    dir: &Path,
    cfg: &ModelConfig,
    what: &str,
) -> Result<(String, Option<String>, &'static str)> {
    let file = dir.join("adapter_config.json");
    if !file.is_file() {
        bail!(
            "{what}: `is_peft` is set but {} has no adapter_config.json; point `name` at a PEFT \
             adapter or set `is_peft: false`",
            dir.display()
        );
    }
    if let Some(base) = cfg.base_model.as_deref().filter(|b| !b.trim().is_empty()) {
        return Ok((base.trim().to_string(), None, "from `base_model`"));
    }
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("{what}: reading {}", file.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "{what}: {} is not valid JSON; fix it or set `base_model`",
            file.display()
        )
    })?;
    let field = |k: &str| {
        json.get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    match field("base_model_name_or_path") {
        Some(base) => Ok((base, field("revision"), "from adapter_config.json")),
        None => bail!(
            "{what}: {} has no base_model_name_or_path; set `base_model` to the adapter's base model",
            file.display()
        ),
    }
}

/// Rewrites that keep a hidden copy's config files from naming the real model.
fn name_rewrites(dest: &Path) -> Vec<Rewrite> {
    let value = dest.display().to_string();
    vec![
        Rewrite {
            file: "config.json",
            key: "_name_or_path",
            value: value.clone(),
        },
        Rewrite {
            file: "tokenizer_config.json",
            key: "name_or_path",
            value,
        },
    ]
}

/// A name that refers to a local directory rather than a Hub id.
fn is_local_name(name: &str, base_dir: &Path) -> bool {
    name == "."
        || name == ".."
        || ["/", "./", "../", "~/"].iter().any(|p| name.starts_with(p))
        || base_dir.join(name).is_dir()
}

/// Resolves and checks a local model directory.
fn local_model_dir(name: &str, base_dir: &Path, what: &str) -> Result<PathBuf> {
    // Collecting the components drops `.` segments (`base/./m` → `base/m`).
    let path: PathBuf = if name.starts_with("~/") {
        expand_home(name)
    } else {
        base_dir.join(name).components().collect()
    };
    if !path.exists() {
        bail!(
            "{what}: {} does not exist; give an existing model directory (relative paths are \
             resolved against the script's folder) or a Hugging Face id like `org/name`",
            path.display()
        );
    }
    if !path.is_dir() {
        bail!(
            "{what}: {} is not a directory; give the folder that holds config.json",
            path.display()
        );
    }
    let path = path
        .canonicalize()
        .with_context(|| format!("{what}: resolving {}", path.display()))?;
    if !has_marker(&path) {
        bail!(
            "{what}: {} is not a model directory (no config.json or adapter_config.json)",
            path.display()
        );
    }
    Ok(path)
}

fn has_marker(dir: &Path) -> bool {
    MARKERS.iter().any(|m| dir.join(m).is_file())
}

/// Checks a Hub repo id; the error says what is wrong with it.
fn check_hf_id(id: &str) -> std::result::Result<(), String> {
    if id.is_empty() {
        return Err("it is empty".into());
    }
    let parts: Vec<&str> = id.split('/').collect();
    if parts.len() > 2 {
        return Err("it has more than one `/`".into());
    }
    for part in parts {
        if part.is_empty() {
            return Err("it has an empty part around `/`".into());
        }
        if part.len() > 96 {
            return Err("a part is longer than 96 characters".into());
        }
        if let Some(c) = part
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(format!(
                "`{c}` is not allowed; use letters, digits, `.`, `_` and `-`"
            ));
        }
        if part.starts_with(['.', '-']) || part.ends_with(['.', '-']) {
            return Err("parts may not start or end with `.` or `-`".into());
        }
    }
    if id.contains("--") || id.contains("..") {
        return Err("`--` and `..` are not allowed".into());
    }
    Ok(())
}

/// Checks a revision is safe to use as a path under `refs/`.
fn check_revision(rev: &str) -> std::result::Result<(), String> {
    if rev.trim().is_empty() {
        return Err("it is empty".into());
    }
    if rev.chars().any(|c| c.is_control() || c == '\\') {
        return Err("it has control characters or `\\`".into());
    }
    if !Path::new(rev)
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err("it may not start with `/` or contain `.` or `..` segments".into());
    }
    Ok(())
}

fn is_commit(rev: &str) -> bool {
    rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit())
}

/// `org/name` → `models--org--name`, the cache folder Python's `huggingface_hub` uses.
fn cache_folder(id: &str) -> String {
    format!("models--{}", id.replace('/', "--"))
}

/// The snapshot of `rev` in a repo's cache folder, if it is there and is a model.
fn cached_snapshot(repo_dir: &Path, rev: &str) -> Result<Option<Located>> {
    let commit = if is_commit(rev) {
        rev.to_ascii_lowercase()
    } else {
        let ref_path = repo_dir.join("refs").join(rev);
        match std::fs::read_to_string(&ref_path) {
            Ok(s) if is_commit(s.trim()) => s.trim().to_ascii_lowercase(),
            Ok(_) => {
                tracing::warn!(path = %ref_path.display(), "ignoring a cache ref that is not a commit");
                return Ok(None);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("reading the Hugging Face cache ref {}", ref_path.display())
                });
            }
        }
    };
    let snapshot = repo_dir.join("snapshots").join(&commit);
    if !has_marker(&snapshot) {
        return Ok(None);
    }
    Ok(Some(Located {
        path: snapshot,
        revision: commit,
    }))
}

/// Why a cached snapshot looks incomplete (an interrupted download), or `None` if it looks
/// whole: every shard an `*.index.json` names must be there, and some weights must be.
fn snapshot_gap(snapshot: &Path) -> Option<String> {
    let mut files = vec![];
    collect_files(snapshot, Path::new(""), 0, &mut files);
    for rel in files
        .iter()
        .filter(|f| f.to_string_lossy().ends_with(".index.json"))
    {
        let Ok(text) = std::fs::read_to_string(snapshot.join(rel)) else {
            return Some(format!("{} is unreadable", rel.display()));
        };
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
            return Some(format!("{} is not valid JSON", rel.display()));
        };
        let dir = rel.parent().unwrap_or(Path::new(""));
        if let Some(map) = json
            .get("weight_map")
            .and_then(serde_json::Value::as_object)
        {
            for shard in map.values().filter_map(serde_json::Value::as_str) {
                if !snapshot.join(dir).join(shard).is_file() {
                    return Some(format!("shard {shard} is missing"));
                }
            }
        }
    }
    let has_weights = files.iter().any(|f| {
        f.file_name().is_some_and(|n| n != "training_args.bin")
            && f.extension()
                .is_some_and(|e| WEIGHT_EXTS.iter().any(|w| e == *w))
    });
    (!has_weights).then(|| "no weight files".to_string())
}

/// Relative paths of the files under `dir` (symlinks followed, shallow recursion).
fn collect_files(dir: &Path, rel: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let rel = rel.join(entry.file_name());
        if path.is_dir() {
            if depth < 4 {
                collect_files(&path, &rel, depth + 1, out);
            }
        } else if path.is_file() {
            out.push(rel);
        }
    }
}

/// Downloads every file of `id` at `rev` into the hub cache and points `refs/<rev>` at it.
async fn download(
    id: &str,
    rev: &str,
    hub: &Hub,
    what: &str,
    cancel: &CancellationToken,
) -> Result<()> {
    let hub_cache = hub.cache.as_path();
    let mut builder = ApiBuilder::from_cache(Cache::new(hub_cache.to_path_buf()))
        .with_progress(true)
        .with_user_agent("seer", env!("CARGO_PKG_VERSION"));
    if let Some(token) = &hub.token {
        builder = builder.with_token(Some(token.trim().to_string()));
    }
    if let Some(endpoint) = &hub.endpoint {
        builder = builder.with_endpoint(endpoint.trim().trim_end_matches('/').to_string());
    }
    let api = builder.build().map_err(|e| {
        anyhow!(
            "{what}: could not set up the Hugging Face client ({e}); check HF_TOKEN and HF_ENDPOINT"
        )
    })?;
    let repo = api.repo(Repo::with_revision(
        id.to_string(),
        RepoType::Model,
        rev.to_string(),
    ));
    tracing::info!(
        "{what}: not in the Hugging Face cache; downloading revision `{rev}` into {}",
        hub_cache.display()
    );
    let info = cancellable(cancel, repo.info())
        .await?
        .map_err(|e| download_error(what, id, &e))?;
    let snapshot = hub_cache
        .join(cache_folder(id))
        .join("snapshots")
        .join(&info.sha);
    for sibling in &info.siblings {
        let file = &sibling.rfilename;
        if !is_safe_relative(file) {
            tracing::warn!("{what}: skipping the repo file `{file}` (unsafe path)");
            continue;
        }
        if snapshot.join(file).is_file() {
            continue;
        }
        let got = cancellable(cancel, repo.download(file))
            .await?
            .map_err(|e| download_error(what, id, &e))?;
        if !got.starts_with(&snapshot) {
            bail!(
                "{what}: revision `{rev}` changed on the Hub during the download; run again \
                 (or pin a commit with `revision`)"
            );
        }
    }
    if !is_commit(rev) {
        let ref_path = hub_cache.join(cache_folder(id)).join("refs").join(rev);
        if let Some(parent) = ref_path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&ref_path, &info.sha)
            .with_context(|| format!("writing the cache ref {}", ref_path.display()))?;
    }
    tracing::info!("{what}: downloaded commit {}", info.sha);
    Ok(())
}

fn download_error(what: &str, id: &str, e: &ApiError) -> anyhow::Error {
    anyhow!(
        "{what}: download from the Hugging Face Hub failed: {e}\nhint: check that `{id}` is the \
         right model id, that this machine can reach the Hub (or HF_ENDPOINT), and for gated or \
         private models that HF_TOKEN holds a token with access (accept the license on the model \
         page first)"
    )
}

/// A repo file path that stays inside the snapshot.
fn is_safe_relative(p: &str) -> bool {
    !p.is_empty()
        && Path::new(p)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// Awaits `fut` unless `cancel` fires first, in which case `fut` is dropped.
async fn cancellable<F: Future>(cancel: &CancellationToken, fut: F) -> Result<F::Output> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => bail!("cancelled"),
        out = fut => Ok(out),
    }
}

/// Recreates `src` at `dest` with hard links (copies where linking fails), then applies
/// `rewrites`. Anything already at `dest` is replaced.
async fn materialize(
    src: &Path,
    dest: &Path,
    rewrites: Vec<Rewrite>,
    cancel: &CancellationToken,
) -> Result<()> {
    let (src, dest, cancel) = (src.to_path_buf(), dest.to_path_buf(), cancel.clone());
    tokio::task::spawn_blocking(move || materialize_blocking(&src, &dest, &rewrites, &cancel))
        .await
        .context("the task preparing the hidden model failed")?
}

fn materialize_blocking(
    src: &Path,
    dest: &Path,
    rewrites: &[Rewrite],
    cancel: &CancellationToken,
) -> Result<()> {
    if src.starts_with(dest) || dest.starts_with(src) {
        bail!(
            "the model directory {} and the sandbox models folder {} overlap; move one of them",
            src.display(),
            dest.display()
        );
    }
    if let Ok(meta) = dest.symlink_metadata() {
        let removed = if meta.is_dir() {
            std::fs::remove_dir_all(dest)
        } else {
            std::fs::remove_file(dest)
        };
        removed.with_context(|| format!("removing the old {}", dest.display()))?;
    }
    std::fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut copied = false;
    link_tree(src, dest, cancel, 0, &mut copied)?;
    if copied {
        tracing::warn!(
            path = %dest.display(),
            "could not hard-link the model files (different filesystem?); copied them instead, \
             which uses extra disk space"
        );
    }
    for rw in rewrites {
        rewrite_json_key(&dest.join(rw.file), rw.key, &rw.value)?;
    }
    Ok(())
}

/// Mirrors `src` into the existing `dest`, following symlinks; skips `.git`.
fn link_tree(
    src: &Path,
    dest: &Path,
    cancel: &CancellationToken,
    depth: usize,
    copied: &mut bool,
) -> Result<()> {
    if depth > 32 {
        bail!("{} is nested too deeply (a symlink loop?)", src.display());
    }
    let entries = std::fs::read_dir(src).with_context(|| format!("reading {}", src.display()))?;
    for entry in entries {
        if cancel.is_cancelled() {
            bail!("cancelled");
        }
        let entry = entry.with_context(|| format!("reading {}", src.display()))?;
        if entry.file_name() == ".git" {
            continue;
        }
        let from = entry.path();
        let to = dest.join(entry.file_name());
        let meta = std::fs::metadata(&from)
            .with_context(|| format!("reading {} (a broken symlink?)", from.display()))?;
        if meta.is_dir() {
            std::fs::create_dir(&to).with_context(|| format!("creating {}", to.display()))?;
            link_tree(&from, &to, cancel, depth + 1, copied)?;
            continue;
        }
        // Link the real file: hard-linking a symlink would link the symlink itself.
        let real = std::fs::canonicalize(&from)
            .with_context(|| format!("resolving {}", from.display()))?;
        if std::fs::hard_link(&real, &to).is_err() {
            std::fs::copy(&real, &to)
                .with_context(|| format!("copying {} to {}", real.display(), to.display()))?;
            *copied = true;
        }
    }
    Ok(())
}

/// Sets `key` in the JSON object in `path` when it is there. The file is replaced, never
/// written in place: it is a hard link into the cache or the user's model directory.
fn rewrite_json_key(path: &Path, key: &str, value: &str) -> Result<()> {
    if !path.is_file() {
        return Ok(());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let Ok(mut json) = serde_json::from_str::<serde_json::Value>(&text) else {
        tracing::warn!(path = %path.display(), "not valid JSON; left as is");
        return Ok(());
    };
    let Some(obj) = json.as_object_mut() else {
        return Ok(());
    };
    if !obj.contains_key(key) {
        return Ok(());
    }
    obj.insert(
        key.to_string(),
        serde_json::Value::String(value.to_string()),
    );
    let out = serde_json::to_string_pretty(&json)
        .with_context(|| format!("serializing {}", path.display()))?;
    std::fs::remove_file(path).with_context(|| format!("replacing {}", path.display()))?;
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn env_nonempty(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

/// An environment flag set to `1`, `true`, `yes` or `on` (any case).
fn env_flag(key: &str) -> bool {
    env_nonempty(key).is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

/// `~/x` → `$HOME/x`; anything else unchanged.
fn expand_home(p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/")
        && let Some(home) = dirs::home_dir()
    {
        return home.join(rest);
    }
    PathBuf::from(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
    const SHA2: &str = "89abcdef0123456789abcdef0123456789abcdef";

    fn cfg(name: &str) -> ModelConfig {
        serde_json::from_value(serde_json::json!({ "name": name })).unwrap()
    }

    fn write_model(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("config.json"), r#"{"model_type": "gpt2"}"#).unwrap();
        std::fs::write(dir.join("model.safetensors"), "weights").unwrap();
    }

    /// Seeds `hub` like huggingface_hub does: blobs, snapshot symlinks into them, refs/main.
    fn seed_cache(hub: &Path, id: &str, sha: &str, files: &[(&str, &str)]) -> PathBuf {
        let repo = hub.join(cache_folder(id));
        let snapshot = repo.join("snapshots").join(sha);
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::create_dir_all(&snapshot).unwrap();
        for (k, (name, content)) in files.iter().enumerate() {
            let blob = format!("{sha}{k:04}");
            std::fs::write(repo.join("blobs").join(&blob), content).unwrap();
            std::os::unix::fs::symlink(format!("../../blobs/{blob}"), snapshot.join(name)).unwrap();
        }
        std::fs::write(repo.join("refs/main"), sha).unwrap();
        snapshot
    }

    async fn resolve(
        cfgs: &[ModelConfig],
        base: &Path,
        hub: &Path,
        offline: bool,
    ) -> Result<Vec<ModelHandle>> {
        let models = base.join("sandbox-models");
        resolve_models_in(cfgs, base, &models, hub, offline, &CancellationToken::new()).await
    }

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

    #[tokio::test]
    async fn hub_model_from_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let hub = base.join("hub");
        let snapshot = seed_cache(
            &hub,
            "org/name",
            SHA,
            &[("config.json", "{}"), ("model.safetensors", "w")],
        );
        // Complete in the cache, so no network even when online.
        let hs = resolve(&[cfg("org/name")], base, &hub, false)
            .await
            .unwrap();
        assert_eq!(Path::new(&hs[0].path), snapshot);
        assert_eq!(hs[0].revision, SHA);
        assert_eq!(hs[0].name, "org/name");

        let mut pinned = cfg("org/name");
        pinned.revision = Some(SHA.to_uppercase());
        let hs = resolve(&[pinned], base, &hub, true).await.unwrap();
        assert_eq!(Path::new(&hs[0].path), snapshot);
        assert_eq!(hs[0].revision, SHA);

        // A cached snapshot without weights is still used offline.
        seed_cache(&hub, "solo", SHA2, &[("config.json", "{}")]);
        let hs = resolve(&[cfg("solo")], base, &hub, true).await.unwrap();
        assert_eq!(hs[0].revision, SHA2);
    }

    #[tokio::test]
    async fn offline_miss_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let hub = base.join("hub");
        seed_cache(&hub, "org/name", SHA, &[("config.json", "{}")]);
        let err = resolve(&[cfg("org/missing")], base, &hub, true)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "model `org/missing` is not in the Hugging Face cache at {} and HF_HUB_OFFLINE \
                 is set; download it first or unset HF_HUB_OFFLINE",
                hub.display()
            )
        );
        let mut other_branch = cfg("org/name");
        other_branch.revision = Some("dev".into());
        let err = resolve(&[other_branch], base, &hub, true)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("HF_HUB_OFFLINE"), "{err}");
    }

    #[tokio::test]
    async fn peft_base_from_adapter_config() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let hub = base.join("hub");
        let base_snapshot = seed_cache(
            &hub,
            "org/base",
            SHA,
            &[("config.json", "{}"), ("model.safetensors", "w")],
        );
        let adapter = base.join("adapter");
        std::fs::create_dir_all(&adapter).unwrap();
        std::fs::write(
            adapter.join("adapter_config.json"),
            r#"{"base_model_name_or_path": "org/base", "peft_type": "LORA"}"#,
        )
        .unwrap();
        std::fs::write(adapter.join("adapter_model.safetensors"), "a").unwrap();
        let mut c = cfg("./adapter");
        c.is_peft = true;
        let hs = resolve(std::slice::from_ref(&c), base, &hub, true)
            .await
            .unwrap();
        let h = &hs[0];
        assert!(h.is_peft);
        assert_eq!(h.revision, "local");
        assert_eq!(h.base_model.as_deref(), Some("org/base"));
        assert_eq!(
            h.base_model_path.as_deref(),
            Some(base_snapshot.to_str().unwrap())
        );
        assert_eq!(h.base_model_revision.as_deref(), Some(SHA));

        // An explicit base_model wins; one that is not available is reported as the base.
        c.base_model = Some("org/other".into());
        let err = resolve(std::slice::from_ref(&c), base, &hub, true)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("base model `org/other`"), "{err}");

        // No base anywhere.
        std::fs::write(
            adapter.join("adapter_config.json"),
            r#"{"peft_type": "LORA"}"#,
        )
        .unwrap();
        c.base_model = None;
        let err = resolve(&[c], base, &hub, true)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("set `base_model`"), "{err}");

        // is_peft on a full model.
        write_model(&base.join("full"));
        let mut c = cfg("./full");
        c.is_peft = true;
        let err = resolve(&[c], base, &hub, true)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("has no adapter_config.json"), "{err}");
    }

    #[tokio::test]
    async fn hidden_models_are_materialized_and_masked() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let hub = base.join("hub");
        let secret_config = r#"{"_name_or_path": "org/secret", "model_type": "gpt2"}"#;
        let snapshot = seed_cache(
            &hub,
            "org/secret",
            SHA,
            &[("config.json", secret_config), ("model.safetensors", "w")],
        );
        let adapter = base.join("secret-adapter");
        std::fs::create_dir_all(adapter.join(".git")).unwrap();
        let adapter_config = r#"{"base_model_name_or_path": "org/secret"}"#;
        std::fs::write(adapter.join("adapter_config.json"), adapter_config).unwrap();
        std::fs::write(adapter.join("adapter_model.safetensors"), "a").unwrap();

        let mut plain = cfg("org/secret");
        plain.hidden = true;
        plain.var_name = "target".into();
        let mut peft = cfg("./secret-adapter");
        peft.hidden = true;
        peft.is_peft = true;
        peft.var_name = "tuned".into();
        let hs = resolve(&[plain, peft], base, &hub, true).await.unwrap();
        let models = base.join("sandbox-models");

        let h = &hs[0];
        assert_eq!(h.name, "hidden-model-0");
        assert_eq!(Path::new(&h.path), models.join("target"));
        assert_eq!(h.revision, SHA);
        assert!(h.hidden);
        assert!(!h.path.contains("secret"));
        let linked = models.join("target/model.safetensors");
        let blob = std::fs::canonicalize(snapshot.join("model.safetensors")).unwrap();
        assert!(!linked.symlink_metadata().unwrap().is_symlink());
        assert_eq!(
            linked.metadata().unwrap().ino(),
            blob.metadata().unwrap().ino()
        );
        let cfg_json = std::fs::read_to_string(models.join("target/config.json")).unwrap();
        assert!(!cfg_json.contains("org/secret"), "{cfg_json}");
        assert_eq!(
            std::fs::read_to_string(snapshot.join("config.json")).unwrap(),
            secret_config,
            "the cache blob must be untouched"
        );

        let h = &hs[1];
        assert_eq!(h.name, "hidden-model-1");
        assert_eq!(h.base_model.as_deref(), Some("hidden-model-1-base"));
        let base_dest = models.join("tuned_base");
        assert_eq!(h.base_model_path.as_deref(), base_dest.to_str());
        assert_eq!(h.base_model_revision.as_deref(), Some(SHA));
        assert!(base_dest.join("model.safetensors").is_file());
        assert!(!models.join("tuned/.git").exists());
        let written: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(models.join("tuned/adapter_config.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            written["base_model_name_or_path"].as_str(),
            base_dest.to_str()
        );
        assert_eq!(
            std::fs::read_to_string(adapter.join("adapter_config.json")).unwrap(),
            adapter_config
        );
        let json = serde_json::to_string(&hs).unwrap();
        assert!(!json.contains("secret"), "{json}");

        // Resolving again replaces the old copies.
        let mut again = cfg("org/secret");
        again.hidden = true;
        again.var_name = "target".into();
        resolve(&[again], base, &hub, true).await.unwrap();
        assert!(models.join("target/model.safetensors").is_file());
    }

    #[tokio::test]
    async fn invalid_ids_and_var_names() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let hub = base.join("hub");
        for bad in ["bad--id", "a/b/c", ".x", "x-", "a b", "org/", "a..b"] {
            let err = resolve(&[cfg(bad)], base, &hub, false)
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains("nor a valid Hugging Face id"), "{bad}: {err}");
        }
        assert!(check_hf_id("gpt2").is_ok());
        assert!(check_hf_id("meta-llama/Llama-3.1-8B").is_ok());
        assert!(check_hf_id("org/na_me.v2").is_ok());

        let mut c = cfg("gpt2");
        c.revision = Some("../x".into());
        let err = resolve(&[c], base, &hub, false).await.unwrap_err();
        assert!(err.to_string().contains("is not valid"), "{err}");

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

    #[tokio::test]
    async fn cancelled() {
        let tmp = tempfile::tempdir().unwrap();
        write_model(&tmp.path().join("m"));
        let cancel = CancellationToken::new();
        cancel.cancel();
        let err = resolve_models_in(
            &[cfg("./m")],
            tmp.path(),
            &tmp.path().join("out"),
            &tmp.path().join("hub"),
            false,
            &cancel,
        )
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "cancelled");
    }

    /// A stand-in for the Hub on loopback serving `org/name` at `main` (commit `SHA`);
    /// with `hang`, it accepts connections but never answers.
    async fn mock_hub(files: Vec<(&'static str, &'static [u8])>, hang: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve_mock(sock, files.clone(), hang));
            }
        });
        format!("http://{addr}")
    }

    async fn serve_mock(
        mut sock: tokio::net::TcpStream,
        files: Vec<(&'static str, &'static [u8])>,
        hang: bool,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = sock.read(&mut chunk).await.unwrap();
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        if hang {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
        let req = String::from_utf8_lossy(&buf).to_string();
        let path = req
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let range = req.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("range: bytes=")
                .map(str::to_string)
        });
        let file = files
            .iter()
            .enumerate()
            .find(|(_, (n, _))| path == format!("/org/name/resolve/main/{n}"));
        let (status, headers, body) = if path == "/api/models/org/name/revision/main" {
            let siblings: Vec<_> = files
                .iter()
                .map(|(n, _)| serde_json::json!({ "rfilename": n }))
                .collect();
            let body = serde_json::json!({ "sha": SHA, "siblings": siblings });
            ("200 OK", String::new(), body.to_string().into_bytes())
        } else if let Some((k, (_, content))) = file {
            let (a, b) = range
                .as_deref()
                .and_then(|r| r.split_once('-'))
                .map(|(a, b)| (a.parse::<usize>().unwrap(), b.parse::<usize>().unwrap()))
                .unwrap_or((0, content.len() - 1));
            let b = b.min(content.len() - 1);
            let headers = format!(
                "etag: \"blob{k}\"\r\nx-repo-commit: {SHA}\r\ncontent-range: bytes {a}-{b}/{}\r\n",
                content.len()
            );
            ("206 Partial Content", headers, content[a..=b].to_vec())
        } else {
            (
                "404 Not Found",
                String::new(),
                b"Repository not found".to_vec(),
            )
        };
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n",
            body.len()
        );
        sock.write_all(head.as_bytes()).await.unwrap();
        sock.write_all(&body).await.unwrap();
        sock.shutdown().await.ok();
    }

    fn hub_at(cache: &Path, endpoint: Option<String>, offline: bool) -> Hub {
        Hub {
            cache: cache.to_path_buf(),
            offline,
            endpoint,
            token: None,
        }
    }

    #[tokio::test]
    async fn downloads_into_the_cache_from_a_mock_hub() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let cache = base.join("hub");
        let models = base.join("sandbox-models");
        let cancel = CancellationToken::new();
        let endpoint = mock_hub(
            vec![
                ("config.json", br#"{"model_type": "gpt2"}"#),
                ("model.safetensors", b"some weights"),
            ],
            false,
        )
        .await;

        let hub = hub_at(&cache, Some(endpoint.clone()), false);
        let hs = resolve_with(&[cfg("org/name")], base, &models, &hub, &cancel)
            .await
            .unwrap();
        let snapshot = cache.join("models--org--name/snapshots").join(SHA);
        assert_eq!(Path::new(&hs[0].path), snapshot);
        assert_eq!(hs[0].revision, SHA);
        assert_eq!(
            std::fs::read(snapshot.join("model.safetensors")).unwrap(),
            b"some weights"
        );
        assert_eq!(
            std::fs::read_to_string(cache.join("models--org--name/refs/main")).unwrap(),
            SHA
        );

        // Now it is cached: no Hub needed.
        let offline = hub_at(&cache, None, true);
        let again = resolve_with(&[cfg("org/name")], base, &models, &offline, &cancel)
            .await
            .unwrap();
        assert_eq!(again, hs);

        // An unknown repo: the error names it and says what to check.
        let err = resolve_with(&[cfg("org/unknown")], base, &models, &hub, &cancel)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("model `org/unknown`: download from the Hugging Face Hub failed"),
            "{err}"
        );
        assert!(err.contains("404"), "{err}");
        assert!(err.contains("HF_TOKEN"), "{err}");
    }

    #[tokio::test]
    async fn download_can_be_cancelled() {
        let tmp = tempfile::tempdir().unwrap();
        let endpoint = mock_hub(vec![], true).await;
        let hub = hub_at(&tmp.path().join("hub"), Some(endpoint), false);
        let cancel = CancellationToken::new();
        let trigger = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            trigger.cancel();
        });
        let err = resolve_with(
            &[cfg("org/name")],
            tmp.path(),
            &tmp.path().join("out"),
            &hub,
            &cancel,
        )
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "cancelled");
    }

    #[tokio::test]
    async fn cancelled_while_materializing_stays_cancelled() {
        let tmp = tempfile::tempdir().unwrap();
        write_model(&tmp.path().join("m"));
        let mut c = cfg("./m");
        c.hidden = true;
        let cancel = CancellationToken::new();
        let r = Resolver {
            base_dir: tmp.path(),
            hub: &hub_at(&tmp.path().join("hub"), None, true),
            cancel: &cancel,
        };
        cancel.cancel();
        let err = r
            .resolve_entry(0, &c, &tmp.path().join("out"))
            .await
            .unwrap_err();
        assert_eq!(format!("{err:#}"), "cancelled");
    }

    #[test]
    fn snapshot_gaps() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join("config.json"), "{}").unwrap();
        assert_eq!(snapshot_gap(d).as_deref(), Some("no weight files"));
        std::fs::write(
            d.join("model.safetensors.index.json"),
            r#"{"weight_map": {"a": "model-1.safetensors", "b": "model-2.safetensors"}}"#,
        )
        .unwrap();
        std::fs::write(d.join("model-1.safetensors"), "1").unwrap();
        assert_eq!(
            snapshot_gap(d).as_deref(),
            Some("shard model-2.safetensors is missing")
        );
        std::fs::write(d.join("model-2.safetensors"), "2").unwrap();
        assert_eq!(snapshot_gap(d), None);
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
}
