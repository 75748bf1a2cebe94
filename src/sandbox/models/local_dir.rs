//! Models given as local directories: telling a path from a Hub id, and checking that a
//! directory holds a model.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Files that make a directory a model: a full model or a PEFT adapter.
const MARKERS: [&str; 2] = ["config.json", "adapter_config.json"];

/// A name that refers to a local directory rather than a Hub id.
pub(crate) fn is_local_name(name: &str, base_dir: &Path) -> bool {
    name == "."
        || name == ".."
        || ["/", "./", "../", "~/"].iter().any(|p| name.starts_with(p))
        || base_dir.join(name).is_dir()
}

/// Resolves and checks a local model directory.
pub(super) fn local_model_dir(name: &str, base_dir: &Path, what: &str) -> Result<PathBuf> {
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

pub(super) fn has_marker(dir: &Path) -> bool {
    MARKERS.iter().any(|m| dir.join(m).is_file())
}

/// `~/x` → `$HOME/x`; anything else unchanged.
pub(super) fn expand_home(p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/")
        && let Some(home) = dirs::home_dir()
    {
        return home.join(rest);
    }
    PathBuf::from(p)
}
