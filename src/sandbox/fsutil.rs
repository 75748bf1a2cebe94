//! Where paths given by a script land: host paths, sandbox paths, and the destinations of
//! `local_files` / `local_dirs`. (Copying files is [`super::sync`].)
//!
//! Sandbox files are opened beneath the workspace without following links out of it:
//! code in the sandbox is untrusted and may plant `report.md -> /etc/hostname`, so
//! [`read_beneath`], [`write_beneath`] and [`mkdir_beneath`] resolve every component with
//! `openat2(RESOLVE_BENEATH)` (links that stay inside the workspace work; one that leads
//! out is an error naming it). On a kernel without `openat2` (before Linux 5.6, or a
//! seccomp filter that refuses it) they walk the path one component at a time with
//! `O_NOFOLLOW`, refusing every link.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{Mode, mkdirat};

/// Resolves a path given by a script for a sandbox: relative paths are inside `root`;
/// absolute ones must already be inside it; `..` may not climb out. Lexical only: use
/// [`read_beneath`] and friends to open what it names.
pub fn resolve_inside(root: &Path, p: &str) -> Result<PathBuf> {
    Ok(root.join(relative_inside(root, p)?))
}

/// [`resolve_inside`] as a path relative to `root` (empty for `root` itself).
fn relative_inside(root: &Path, p: &str) -> Result<PathBuf> {
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
    Ok(rel
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect())
}

/// Opens `rel` beneath the folder `dir` without leaving it through a link.
fn open_beneath(dir: &impl AsFd, rel: &Path, flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
    let flags = flags | OFlag::O_CLOEXEC;
    let rel: &Path = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let how = OpenHow::new()
        .flags(flags)
        .mode(mode)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(dir, rel, how) {
        Err(Errno::ENOSYS) | Err(Errno::EPERM) => open_nofollow(dir, rel, flags, mode),
        r => r,
    }
}

/// Without `openat2`: one component at a time, never following a link (`ELOOP` on one).
fn open_nofollow(dir: &impl AsFd, rel: &Path, flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
    let names: Vec<&std::ffi::OsStr> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let Some((last, parents)) = names.split_last() else {
        return openat(dir, ".", flags, mode);
    };
    let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut cur: Option<OwnedFd> = None;
    for name in parents {
        let next = match &cur {
            Some(fd) => openat(fd, *name, dir_flags, Mode::empty())?,
            None => openat(dir, *name, dir_flags, Mode::empty())?,
        };
        cur = Some(next);
    }
    let flags = flags | OFlag::O_NOFOLLOW;
    match &cur {
        Some(fd) => openat(fd, *last, flags, mode),
        None => openat(dir, *last, flags, mode),
    }
}

/// The workspace folder itself, opened without following a link.
fn open_root(root: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening the sandbox workspace {}", root.display()))
}

/// A clear error for a failed open of the sandbox path `p` (relative `rel` in `root`).
fn beneath_error(root: &Path, rel: &Path, p: &str, what: &str, e: Errno) -> anyhow::Error {
    if matches!(e, Errno::EXDEV | Errno::ELOOP | Errno::ENOTDIR) {
        // Name the link (for the message only; nothing is opened through it).
        let mut cur = root.to_path_buf();
        for c in rel.components() {
            cur.push(c);
            if let Ok(target) = std::fs::read_link(&cur) {
                let shown = cur.strip_prefix(root).unwrap_or(&cur);
                return anyhow::anyhow!(
                    "{what} `{p}` in the sandbox: `{}` is a symbolic link to `{}`, which leads \
                     out of the sandbox workspace; seer does not follow links out of the \
                     workspace",
                    shown.display(),
                    target.display()
                );
            }
        }
        if e != Errno::ENOTDIR {
            return anyhow::anyhow!(
                "{what} `{p}` in the sandbox: the path goes through a symbolic link out of \
                 the workspace ({e}); seer does not follow links out of the workspace"
            );
        }
    }
    anyhow::anyhow!("{what} `{p}` in the sandbox: {}", std::io::Error::from(e))
}

/// Reads the sandbox file `p` (see [`resolve_inside`]) without following links out of
/// `root`.
pub fn read_beneath(root: &Path, p: &str) -> Result<Vec<u8>> {
    let rel = relative_inside(root, p)?;
    let dir = open_root(root)?;
    let fd = open_beneath(&dir, &rel, OFlag::O_RDONLY, Mode::empty())
        .map_err(|e| beneath_error(root, &rel, p, "reading", e))?;
    let mut bytes = vec![];
    File::from(fd)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading `{p}` in the sandbox"))?;
    Ok(bytes)
}

/// The sandbox folder `p` (see [`resolve_inside`]) as a host path, checked to be a folder
/// reached without following a link out of `root` (a command's working directory).
pub fn dir_beneath(root: &Path, p: &str) -> Result<PathBuf> {
    let rel = relative_inside(root, p)?;
    let dir = open_root(root)?;
    open_beneath(
        &dir,
        &rel,
        OFlag::O_PATH | OFlag::O_DIRECTORY,
        Mode::empty(),
    )
    .map_err(|e| beneath_error(root, &rel, p, "working in", e))?;
    Ok(root.join(rel))
}

/// Creates the folder `rel` and its missing parents beneath `dir`, never through a link
/// out of it; returns the folder, opened.
fn mkdirs_beneath(root: &Path, dir: &OwnedFd, rel: &Path, p: &str) -> Result<OwnedFd> {
    let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    let mut cur = PathBuf::new();
    let mut fd = open_beneath(dir, &cur, dir_flags, Mode::empty())
        .map_err(|e| beneath_error(root, &cur, p, "creating", e))?;
    for c in rel.components() {
        cur.push(c);
        fd = match open_beneath(dir, &cur, dir_flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                match mkdirat(&fd, c.as_os_str(), Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(beneath_error(root, &cur, p, "creating", e)),
                }
                open_beneath(dir, &cur, dir_flags, Mode::empty())
                    .map_err(|e| beneath_error(root, &cur, p, "creating", e))?
            }
            Err(e) => return Err(beneath_error(root, &cur, p, "creating", e)),
        };
    }
    Ok(fd)
}

/// Writes the sandbox file `p` (creating its folders) without following links out of
/// `root`: a planted link is an error, and the file it points to is left alone.
pub fn write_beneath(root: &Path, p: &str, contents: &[u8]) -> Result<()> {
    let rel = relative_inside(root, p)?;
    let Some(name) = rel.file_name() else {
        bail!("writing `{p}` in the sandbox: that is the workspace folder, not a file");
    };
    let dir = open_root(root)?;
    if name.is_empty() {
        bail!("writing `{p}` in the sandbox: the path has no file name");
    }
    mkdirs_beneath(root, &dir, rel.parent().unwrap_or(Path::new("")), p)?;
    // From the workspace again, so a link that stays inside it still works.
    let fd = open_beneath(
        &dir,
        &rel,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(|e| beneath_error(root, &rel, p, "writing", e))?;
    File::from(fd)
        .write_all(contents)
        .with_context(|| format!("writing `{p}` in the sandbox"))
}

/// Creates the sandbox folder `p` and its parents without following links out of `root`.
pub fn mkdir_beneath(root: &Path, p: &str) -> Result<()> {
    let rel = relative_inside(root, p)?;
    let dir = open_root(root)?;
    mkdirs_beneath(root, &dir, &rel, p).map(|_| ())
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

    /// A workspace with a planted link out of it, one inside it, and a host file.
    fn planted() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let ws = d.path().join("ws");
        let host = d.path().join("host.txt");
        std::fs::create_dir_all(ws.join("sub")).unwrap();
        std::fs::write(&host, "host file").unwrap();
        std::fs::write(ws.join("sub/inner.txt"), "inner").unwrap();
        std::os::unix::fs::symlink(&host, ws.join("report.md")).unwrap();
        std::os::unix::fs::symlink(d.path(), ws.join("out")).unwrap();
        std::os::unix::fs::symlink("sub/inner.txt", ws.join("alias.txt")).unwrap();
        std::os::unix::fs::symlink("../alias.txt", ws.join("sub/up.txt")).unwrap();
        (d, ws, host)
    }

    #[test]
    fn files_are_not_opened_through_links_out_of_the_workspace() {
        let (_d, ws, host) = planted();
        for p in ["report.md", "out/host.txt", "out/new.txt", "out/x/y.txt"] {
            let e = write_beneath(&ws, p, b"agent").unwrap_err().to_string();
            assert!(
                e.contains("symbolic link") && e.contains("out of"),
                "{p}: {e}"
            );
            assert!(e.contains(&format!("`{p}`")), "{p}: {e}");
        }
        let e = write_beneath(&ws, "report.md", b"x")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&host.display().to_string()),
            "names the target: {e}"
        );
        assert_eq!(std::fs::read_to_string(&host).unwrap(), "host file");
        assert!(!_d.path().join("new.txt").exists() && !_d.path().join("x").exists());
        for p in ["report.md", "out/host.txt"] {
            let e = read_beneath(&ws, p).unwrap_err().to_string();
            assert!(e.contains("symbolic link"), "{p}: {e}");
        }
        assert!(mkdir_beneath(&ws, "out/newdir").is_err());
        // Links that stay inside the workspace work; plain paths too.
        assert_eq!(read_beneath(&ws, "alias.txt").unwrap(), b"inner");
        assert_eq!(read_beneath(&ws, "sub/up.txt").unwrap(), b"inner");
        write_beneath(&ws, "sub/up.txt", b"via link").unwrap();
        assert_eq!(read_beneath(&ws, "sub/inner.txt").unwrap(), b"via link");
        write_beneath(&ws, "a/b/c.txt", b"new").unwrap();
        assert_eq!(read_beneath(&ws, "a/b/c.txt").unwrap(), b"new");
        mkdir_beneath(&ws, "d/e").unwrap();
        assert!(ws.join("d/e").is_dir());
        assert!(write_beneath(&ws, ".", b"x").is_err());
        assert!(write_beneath(&ws, "../x", b"x").is_err());
    }

    #[test]
    fn without_openat2_every_link_is_refused() {
        let (_d, ws, _) = planted();
        let root = open_root(&ws).unwrap();
        let flags = OFlag::O_RDONLY;
        let open = |p: &str| open_nofollow(&root, Path::new(p), flags, Mode::empty());
        assert!(open("sub/inner.txt").is_ok());
        assert_eq!(open("report.md").unwrap_err(), Errno::ELOOP);
        assert_eq!(open("out/host.txt").unwrap_err(), Errno::ENOTDIR);
        assert_eq!(open("alias.txt").unwrap_err(), Errno::ELOOP);
    }

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
