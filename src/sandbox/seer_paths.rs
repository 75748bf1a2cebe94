//! Seer's container paths in seer. A Seer experiment writes `sandbox.write_file("/root/x.py",
//! ...)` and then imports `x`: in Seer's container `/root` is the working folder (on
//! `sys.path`) and `/workspace` holds the libraries. In seer both are the sandbox's
//! workspace, which is the working folder of its kernel, commands and interfaces.
//!
//! [`from_seer`] maps such a path to one relative to the workspace; `sb.write_file`,
//! `read_file`, `ensure_dir` and the `local_files` / `local_dirs` destinations (of a sandbox
//! and of a workspace) all go through it, so `/root/x.py` is the same file for each.

use std::borrow::Cow;
use std::path::Path;

use anyhow::{Result, bail};

/// Seer's folders that are the workspace in seer.
pub const SEER_ROOTS: [&str; 2] = ["/root", "/workspace"];

/// `p` with a Seer `/root/...` or `/workspace/...` prefix made relative to the workspace
/// (`/root/a/b` is `a/b`, `/root` is `.`, a trailing `/` is kept: `/root/` is `./`). A path
/// already inside `workspace`, a relative path and any other path are returned as given.
pub fn from_seer<'a>(workspace: &Path, p: &'a str) -> Cow<'a, str> {
    let path = Path::new(p);
    if !path.is_absolute() || path.starts_with(workspace) {
        return Cow::Borrowed(p);
    }
    for root in SEER_ROOTS {
        let Some(rest) = p.strip_prefix(root) else {
            continue;
        };
        if rest.is_empty() {
            return Cow::Borrowed(".");
        }
        if let Some(rest) = rest.strip_prefix('/') {
            let rest = rest.trim_start_matches('/');
            return if rest.is_empty() {
                Cow::Borrowed("./")
            } else {
                Cow::Owned(rest.to_string())
            };
        }
    }
    Cow::Borrowed(p)
}

/// [`from_seer`] for a file call of a script (`sb.write_file`, ...): an absolute path that
/// is neither in the workspace nor Seer's is an error that says which paths work.
pub fn script_path<'a>(workspace: &Path, p: &'a str) -> Result<Cow<'a, str>> {
    let mapped = from_seer(workspace, p);
    if Path::new(mapped.as_ref()).is_absolute() && !Path::new(p).starts_with(workspace) {
        bail!(
            "path `{p}` is outside the sandbox workspace {}; give a path relative to the \
             workspace (Seer's `/root/x` and `/workspace/x` are the workspace's `x`)",
            workspace.display()
        );
    }
    Ok(mapped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seer_paths_are_the_workspace() {
        let ws = Path::new("/s/ws");
        for (given, want) in [
            ("/root/x.py", "x.py"),
            ("/root/a/b.txt", "a/b.txt"),
            ("/workspace/data/", "data/"),
            ("/root", "."),
            ("/root/", "./"),
            ("/workspace", "."),
            ("//root/x", "//root/x"),
            ("/rootx/y", "/rootx/y"),
            ("/root/../x", "../x"),
            ("x.py", "x.py"),
            ("/s/ws/x.py", "/s/ws/x.py"),
            ("/tmp/x", "/tmp/x"),
        ] {
            assert_eq!(from_seer(ws, given), want, "{given}");
        }
        // A workspace under /root keeps its own absolute paths.
        let home = Path::new("/root/.local/seer/ws");
        assert_eq!(
            from_seer(home, "/root/.local/seer/ws/a"),
            "/root/.local/seer/ws/a"
        );
        assert_eq!(from_seer(home, "/root/a"), "a");
    }

    #[test]
    fn other_absolute_paths_are_refused() {
        let ws = Path::new("/s/ws");
        assert_eq!(script_path(ws, "/root/x").unwrap(), "x");
        assert_eq!(script_path(ws, "/s/ws/x").unwrap(), "/s/ws/x");
        assert_eq!(
            script_path(ws, "/tmp/x").unwrap_err().to_string(),
            "path `/tmp/x` is outside the sandbox workspace /s/ws; give a path relative to \
             the workspace (Seer's `/root/x` and `/workspace/x` are the workspace's `x`)"
        );
    }
}
