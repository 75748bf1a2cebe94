//! The Hugging Face hub cache, laid out as Python's `huggingface_hub` does
//! (`models--org--name/{blobs,snapshots/<commit>,refs/<revision>}`): where it is, the ids and
//! revisions that may name a folder in it, finding a snapshot, and telling a complete
//! snapshot from an interrupted download.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};

use super::Located;
use super::env_nonempty;
use super::local_dir::{expand_home, has_marker};

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

/// Checks a Hub repo id; the error says what is wrong with it.
pub(super) fn check_hf_id(id: &str) -> std::result::Result<(), String> {
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
pub(super) fn check_revision(rev: &str) -> std::result::Result<(), String> {
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

pub(super) fn is_commit(rev: &str) -> bool {
    rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit())
}

/// `org/name` → `models--org--name`, the cache folder Python's `huggingface_hub` uses.
pub(super) fn cache_folder(id: &str) -> String {
    format!("models--{}", id.replace('/', "--"))
}

/// The snapshot of `rev` in a repo's cache folder, if it is there and is a model.
pub(super) fn cached_snapshot(repo_dir: &Path, rev: &str) -> Result<Option<Located>> {
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
pub(super) fn snapshot_gap(snapshot: &Path) -> Option<String> {
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
