//! Where paths given by a script land: host paths, sandbox paths, and the destinations of
//! `local_files` / `local_dirs`. (Copying files is [`super::sync`].)

use std::path::{Component, Path, PathBuf};

use anyhow::{Result, bail};

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

/// Where a `local_files` / `local_dirs` destination lands in `workspace` (an absolute
/// folder). One rule for the copies of a sandbox and of a workspace:
/// - a relative path is taken from the workspace: `data/a.txt` is `<workspace>/data/a.txt`;
/// - an absolute path inside the workspace stays as it is;
/// - any other absolute path is Seer-style (`/root/a.txt`, written for a sandbox whose home
///   is `/root`) and lands under the workspace without its leading `/`:
///   `<workspace>/root/a.txt`;
/// - a path with `..` is refused, so nothing lands outside the workspace; so is an empty
///   one.
///
/// When copying a file (`file` is its host path), a destination that names a folder (it
/// ends in `/`, or is the workspace itself, like `.`) receives the file under its own name.
pub fn copy_dest(workspace: &Path, dst: &str, file: Option<&Path>) -> Result<PathBuf> {
    if dst.is_empty() {
        bail!("the destination is empty; give a path relative to the workspace, or `.`");
    }
    let path = Path::new(dst);
    let rel = match path.strip_prefix(workspace) {
        Ok(inside) if path.is_absolute() => inside,
        _ => path,
    };
    let mut to = workspace.to_path_buf();
    for comp in rel.components() {
        match comp {
            Component::Normal(c) => to.push(c),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                bail!("destination `{dst}` uses `..`; copies must stay inside the workspace")
            }
            Component::Prefix(_) => {
                bail!(
                    "destination `{dst}` has a drive prefix; give a path relative to the workspace"
                )
            }
        }
    }
    if let Some(file) = file
        && (dst.ends_with('/') || to == workspace)
    {
        let Some(name) = file.file_name() else {
            bail!(
                "{} has no file name; name the destination file",
                file.display()
            );
        };
        to.push(name);
    }
    Ok(to)
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
    fn copy_destinations() {
        let ws = Path::new("/s/ws");
        let dest = |d: &str| copy_dest(ws, d, None);
        let file = |d: &str| copy_dest(ws, d, Some(Path::new("/host/data.csv")));
        // Relative: from the workspace.
        assert_eq!(dest("a/b").unwrap(), PathBuf::from("/s/ws/a/b"));
        assert_eq!(dest("./a").unwrap(), PathBuf::from("/s/ws/a"));
        assert_eq!(dest(".").unwrap(), PathBuf::from("/s/ws"));
        // Absolute: kept inside the workspace, else Seer-style under it.
        assert_eq!(dest("/s/ws/x/y").unwrap(), PathBuf::from("/s/ws/x/y"));
        assert_eq!(dest("/root/x").unwrap(), PathBuf::from("/s/ws/root/x"));
        assert_eq!(dest("/s/wsx").unwrap(), PathBuf::from("/s/ws/s/wsx"));
        // `..` never escapes, not even from an absolute path.
        for bad in ["../x", "a/../../x", "a/..", "/s/ws/../x", "/root/../x"] {
            let e = dest(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("`{bad}` uses `..`")), "{bad}: {e}");
        }
        assert!(dest("").unwrap_err().to_string().contains("empty"));
        // A file into a folder keeps its name; otherwise the destination names it.
        assert_eq!(file("in/").unwrap(), PathBuf::from("/s/ws/in/data.csv"));
        assert_eq!(file(".").unwrap(), PathBuf::from("/s/ws/data.csv"));
        assert_eq!(file("/s/ws").unwrap(), PathBuf::from("/s/ws/data.csv"));
        assert_eq!(
            file("/root/").unwrap(),
            PathBuf::from("/s/ws/root/data.csv")
        );
        assert_eq!(file("in/b.csv").unwrap(), PathBuf::from("/s/ws/in/b.csv"));
        assert!(copy_dest(ws, ".", Some(Path::new("/"))).is_err());
    }
}
