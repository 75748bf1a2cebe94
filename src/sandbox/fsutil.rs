//! File helpers: recursive copy and safe resolution of sandbox-relative paths.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Copies a directory tree; symlinks are followed (their targets are copied).
pub fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    std::fs::create_dir_all(dst).with_context(|| format!("creating {}", dst.display()))?;
    for entry in std::fs::read_dir(src).with_context(|| format!("reading {}", src.display()))? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        if from.is_dir() {
            copy_tree(&from, &to)?;
        } else {
            std::fs::copy(&from, &to)
                .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        }
    }
    Ok(())
}

/// Resolves a path given by a script for a sandbox: relative paths are inside `root`;
/// absolute ones must already be inside it; `..` may not climb out.
pub fn resolve_inside(root: &Path, p: &str) -> Result<PathBuf> {
    let path = Path::new(p);
    if p.is_empty() {
        bail!("empty path");
    }
    let rel = if path.is_absolute() {
        match path.strip_prefix(root) {
            Ok(rel) => rel.to_path_buf(),
            Err(_) => bail!(
                "path `{p}` is outside the sandbox workspace {}; use a path relative to the workspace",
                root.display()
            ),
        }
    } else {
        path.to_path_buf()
    };
    if rel.components().any(|c| matches!(c, Component::ParentDir)) {
        bail!("path `{p}` uses `..`; sandbox paths must stay inside the workspace");
    }
    Ok(root.join(rel))
}

/// Resolves a host path given by a script: relative to the script's folder, `~/` expanded.
pub fn resolve_host(base: &Path, p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/")
        && let Some(home) = dirs::home_dir()
    {
        return home.join(rest);
    }
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_paths_stay_inside() {
        let root = Path::new("/s/ws");
        assert_eq!(
            resolve_inside(root, "a/b.txt").unwrap(),
            PathBuf::from("/s/ws/a/b.txt")
        );
        assert_eq!(
            resolve_inside(root, "/s/ws/x").unwrap(),
            PathBuf::from("/s/ws/x")
        );
        assert!(
            resolve_inside(root, "../x")
                .unwrap_err()
                .to_string()
                .contains("`..`")
        );
        assert!(
            resolve_inside(root, "/etc/passwd")
                .unwrap_err()
                .to_string()
                .contains("outside")
        );
        assert!(resolve_inside(root, "").is_err());
    }

    #[test]
    fn copy_tree_copies_nested_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("src/a")).unwrap();
        std::fs::write(d.path().join("src/a/f.txt"), "hi").unwrap();
        copy_tree(&d.path().join("src"), &d.path().join("dst")).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join("dst/a/f.txt")).unwrap(),
            "hi"
        );
    }
}
