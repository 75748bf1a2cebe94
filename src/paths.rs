//! Where seer keeps its state (live sandboxes, snapshots) and its caches (uv, Python envs).

use std::path::PathBuf;

/// The state dir: `$SEER_HOME` if set, else the XDG state dir (`~/.local/state/seer`).
pub fn state_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("SEER_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home);
    }
    dirs::state_dir()
        .or_else(|| dirs::home_dir().map(|h| h.join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("seer")
}

/// The cache dir: `$SEER_CACHE_DIR` if set, else the XDG cache dir (`~/.cache/seer`).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SEER_CACHE_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::cache_dir()
        .or_else(|| dirs::home_dir().map(|h| h.join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("seer")
}

/// Live and past sandboxes, one directory each.
pub fn sandboxes_dir() -> PathBuf {
    state_dir().join("sandboxes")
}

/// Saved snapshots, one directory each.
pub fn snapshots_dir() -> PathBuf {
    state_dir().join("snapshots")
}
