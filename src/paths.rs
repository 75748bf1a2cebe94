//! Where seer keeps its state (live sandboxes, snapshots) and its caches (uv, Python envs),
//! and how it creates what must stay private: the state dir and run folders are 0700;
//! files holding a secret (kernel connection files, generated RPC clients) are created 0600,
//! as Jupyter does. Modes are set when the folder or file is created, never by a `chmod`
//! afterwards, so there is no moment when another user could open them.

use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

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

/// Creates the folder `dir` with mode 0700 (missing parents get the default mode). An
/// existing folder is left as it is.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        r => r,
    }
}

/// The state dir, created 0700 when missing. An existing one that group or others may open
/// (made by an older seer) is tightened to 0700 (a warning when that is not allowed): it
/// holds every sandbox's records, logs and kernel keys.
pub fn ensure_state_dir() -> Result<PathBuf> {
    let dir = state_dir();
    create_private_dir(&dir)
        .with_context(|| format!("creating the seer state dir {}", dir.display()))?;
    let meta = std::fs::metadata(&dir)
        .with_context(|| format!("reading the seer state dir {}", dir.display()))?;
    if meta.mode() & 0o077 != 0
        && let Err(e) = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
    {
        tracing::warn!(
            "the seer state dir {} is open to other users and cannot be made private: {e}",
            dir.display()
        );
    }
    Ok(dir)
}

/// Creates a folder under the state dir (`sandboxes/<id>`, `snapshots/<id>`) with mode
/// 0700, after making sure the state dir itself is private.
pub fn create_state_subdir(dir: &Path) -> Result<()> {
    ensure_state_dir()?;
    create_private_dir(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Writes `bytes` to `path` as a file only its owner can read (0600): a new temporary
/// sibling is created 0600, filled and renamed over `path`, so the content is never in a
/// file with a wider mode, even when `path` existed with one.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(
        ".{name}.seer-tmp-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Checks a name that becomes a file name in a run or sandbox folder (a session's notebook,
/// an agent's transcript, a served interface): not empty, not `.` or `..`, no `/` (so not
/// absolute either), no NUL byte. `field` names it in the error (`create_notebook_session:
/// \`name\``).
pub fn check_file_name(field: &str, name: &str) -> Result<()> {
    let why = if name.is_empty() {
        Some("is empty")
    } else if name == "." || name == ".." {
        Some("is `.` or `..`")
    } else if name.contains('/') {
        Some("contains `/` (a name, not a path)")
    } else if name.contains('\0') {
        Some("contains a NUL byte")
    } else if name.len() > 200 {
        Some("is longer than 200 bytes")
    } else {
        None
    };
    match why {
        Some(why) => anyhow::bail!(
            "{field} {why}: got {name:?}; it names a file or folder seer writes, so give a \
             plain name such as \"probe\""
        ),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn file_names_are_plain() {
        for ok in ["probe", "agent-1", "a.b", "..x", "名前"] {
            check_file_name("`name`", ok).unwrap();
        }
        for (bad, why) in [
            ("", "is empty"),
            ("..", "`.` or `..`"),
            (".", "`.` or `..`"),
            ("../../x", "contains `/`"),
            ("/tmp/x", "contains `/`"),
            ("a/b", "contains `/`"),
            ("a\0b", "NUL"),
        ] {
            let e = check_file_name("run_agent: `name`", bad)
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("run_agent: `name` ") && e.contains(why),
                "{bad:?}: {e}"
            );
        }
        assert!(check_file_name("n", &"x".repeat(201)).is_err());
    }

    #[test]
    fn private_dirs_and_files_are_created_with_their_mode() {
        let d = tempfile::tempdir().unwrap();
        let run = d.path().join("outputs/run-1");
        create_private_dir(&run).unwrap();
        assert_eq!(mode(&run), 0o700);
        create_private_dir(&run).unwrap(); // existing: fine
        let f = run.join("kernel.json");
        std::fs::write(&f, "old").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&f, b"{\"key\": \"k\"}").unwrap();
        assert_eq!(mode(&f), 0o600);
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "{\"key\": \"k\"}");
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(&run).unwrap().count(), 1);
        assert!(write_private(&d.path().join("missing/x"), b"x").is_err());
    }
}
