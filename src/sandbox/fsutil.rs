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
//!
//! They also handle only regular files: code in the sandbox runs as root and may plant a
//! FIFO (opening one for reading blocks until a writer comes; `yes > fifo` then never
//! ends), a device node (`mknod` of `/dev/zero`, or of a host disk) or a socket. Such a
//! file is recognised from an `O_PATH` descriptor (which opens nothing) and refused; the
//! real open is `O_NONBLOCK` and checked again with `fstat`, so one swapped in meanwhile is
//! refused too, never read or written. [`read_beneath`] reads at most [`READ_LIMIT`] bytes
//! ([`read_regular`]), even from a file that grows while it is read.

use std::fs::{File, FileType};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
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

/// The most [`read_beneath`] (`sb.read_file`) reads into memory.
pub const READ_LIMIT: u64 = 1 << 30;

/// What to do with a sandbox file over [`READ_LIMIT`].
const READ_HINT: &str = "read what you need with a command (`sb.exec`), or save the workspace \
                         with `sb.snapshot()`";

/// What a file of type `ft` is, for an error about one that is not a regular file.
pub fn file_kind(ft: FileType) -> &'static str {
    if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_dir() {
        "a folder"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_file() {
        "a regular file"
    } else {
        "a file of an unknown type"
    }
}

/// A FIFO, device or socket: a file seer never opens to read or write.
pub fn is_special(ft: FileType) -> bool {
    ft.is_fifo() || ft.is_char_device() || ft.is_block_device() || ft.is_socket()
}

/// `what` (an action on a file, like ``reading `x` in the sandbox``) refused because the
/// file is of type `ft`.
fn not_regular(what: &str, ft: FileType) -> anyhow::Error {
    anyhow!(
        "{what}: it is {}, not a regular file; seer reads and writes only regular files",
        file_kind(ft)
    )
}

/// A byte count for people: `200 bytes`, `1.5 MiB`, `1 GiB`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    let shown = format!("{v:.1}");
    format!("{} {unit}", shown.strip_suffix(".0").unwrap_or(&shown))
}

/// Reads the open `file` (opened `O_NONBLOCK`) into memory: a regular file only, of at
/// most `limit` bytes, even if it grows while it is read. `what` (``reading `x` ``) names
/// it in errors; `hint` says what to do with a bigger file.
pub fn read_regular(file: File, what: &str, limit: u64, hint: &str) -> Result<Vec<u8>> {
    let meta = file.metadata().with_context(|| what.to_string())?;
    if !meta.file_type().is_file() {
        return Err(not_regular(what, meta.file_type()));
    }
    let len = meta.len();
    if len > limit {
        let size = match human_size(len) {
            h if len < 1024 => h,
            h => format!("{h} ({len} bytes)"),
        };
        bail!(
            "{what}: the file is {size}, over the {} limit on what seer reads into memory; \
             {hint}",
            human_size(limit)
        );
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .with_context(|| what.to_string())?;
    if bytes.len() as u64 > limit {
        bail!(
            "{what}: the file grew past the {} limit on what seer reads into memory while it \
             was read; {hint}",
            human_size(limit)
        );
    }
    Ok(bytes)
}

/// Reads the host file `path` (links followed) with [`read_regular`]'s checks; a FIFO,
/// device or socket is refused without being opened.
pub fn read_file_limited(path: &Path, limit: u64, hint: &str) -> Result<Vec<u8>> {
    let what = format!("reading {}", path.display());
    if let Ok(meta) = std::fs::metadata(path)
        && is_special(meta.file_type())
    {
        return Err(not_regular(&what, meta.file_type()));
    }
    let fd = nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| anyhow!("{what}: {}", std::io::Error::from(e)))?;
    read_regular(File::from(fd), &what, limit, hint)
}

/// The type of `rel` beneath `dir` when it is a FIFO, device or socket, found from an
/// `O_PATH` descriptor (which neither blocks on a FIFO nor runs a device's driver). `None`
/// for anything else, and when it cannot be opened (the real open then says why).
fn special_beneath(dir: &impl AsFd, rel: &Path) -> Option<FileType> {
    let fd = open_beneath(dir, rel, OFlag::O_PATH, Mode::empty()).ok()?;
    let ft = File::from(fd).metadata().ok()?.file_type();
    is_special(ft).then_some(ft)
}

/// Reads the sandbox file `p` (see [`resolve_inside`]) without following links out of
/// `root`: a regular file of at most [`READ_LIMIT`] bytes.
pub fn read_beneath(root: &Path, p: &str) -> Result<Vec<u8>> {
    read_beneath_limited(root, p, READ_LIMIT)
}

/// [`read_beneath`] with the size limit given.
fn read_beneath_limited(root: &Path, p: &str, limit: u64) -> Result<Vec<u8>> {
    let rel = relative_inside(root, p)?;
    let dir = open_root(root)?;
    let what = format!("reading `{p}` in the sandbox");
    if let Some(ft) = special_beneath(&dir, &rel) {
        return Err(not_regular(&what, ft));
    }
    let fd = open_beneath(
        &dir,
        &rel,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK,
        Mode::empty(),
    )
    .map_err(|e| beneath_error(root, &rel, p, "reading", e))?;
    read_regular(File::from(fd), &what, limit, READ_HINT)
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
    let what = format!("writing `{p}` in the sandbox");
    if let Some(ft) = special_beneath(&dir, &rel) {
        return Err(not_regular(&what, ft));
    }
    // From the workspace again, so a link that stays inside it still works. Not truncated
    // before `fstat` says it is a regular file; `O_NONBLOCK` so a FIFO swapped in
    // meanwhile does not block (without a reader its open fails with `ENXIO`).
    let fd = open_beneath(
        &dir,
        &rel,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_NONBLOCK,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(|e| match special_beneath(&dir, &rel) {
        Some(ft) if e == Errno::ENXIO => not_regular(&what, ft),
        _ => beneath_error(root, &rel, p, "writing", e),
    })?;
    let mut file = File::from(fd);
    let meta = file.metadata().with_context(|| what.clone())?;
    if !meta.file_type().is_file() {
        return Err(not_regular(&what, meta.file_type()));
    }
    file.set_len(0).with_context(|| what.clone())?;
    file.write_all(contents).with_context(|| what.clone())
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
/// - any other absolute path lands under the workspace without its leading `/`
///   (`/data/a.txt` is `<workspace>/data/a.txt`); Seer's `/root/...` and `/workspace/...`
///   are made workspace-relative before this, by [`super::seer_paths::from_seer`], so
///   `/root/a.txt` is `<workspace>/a.txt`;
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

    /// A workspace holding a FIFO, a character device (`/dev/null`'s numbers, 1:3) and a
    /// small file.
    fn specials() -> (tempfile::TempDir, PathBuf) {
        use nix::sys::stat::{SFlag, makedev, mknod};
        let d = tempfile::tempdir().unwrap();
        let ws = d.path().join("ws");
        std::fs::create_dir_all(&ws).unwrap();
        nix::unistd::mkfifo(&ws.join("fifo"), Mode::from_bits_truncate(0o644)).unwrap();
        mknod(
            &ws.join("null"),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(1, 3),
        )
        .unwrap();
        std::fs::write(ws.join("small.txt"), "0123456789").unwrap();
        (d, ws)
    }

    fn refused(action: &str, p: &str, kind: &str) -> String {
        format!(
            "{action} `{p}` in the sandbox: it is {kind}, not a regular file; seer reads and \
             writes only regular files"
        )
    }

    #[test]
    fn fifos_and_devices_are_refused_at_once() {
        let (_d, ws) = specials();
        let started = std::time::Instant::now();
        // A FIFO without a writer (opening it to read would block) or reader.
        let e = read_beneath(&ws, "fifo").unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            refused("reading", "fifo", "a FIFO (named pipe)")
        );
        let e = write_beneath(&ws, "fifo", b"x").unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            refused("writing", "fifo", "a FIFO (named pipe)")
        );
        // A device node, never opened.
        let e = read_beneath(&ws, "null").unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            refused("reading", "null", "a character device")
        );
        let e = write_beneath(&ws, "null", b"x").unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            refused("writing", "null", "a character device")
        );
        // A folder is not read as a file either.
        let e = read_beneath(&ws, ".").unwrap_err();
        assert_eq!(format!("{e:#}"), refused("reading", ".", "a folder"));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // Regular files still work, and a write truncates what was there.
        assert_eq!(read_beneath(&ws, "small.txt").unwrap(), b"0123456789");
        write_beneath(&ws, "small.txt", b"ab").unwrap();
        assert_eq!(read_beneath(&ws, "small.txt").unwrap(), b"ab");
    }

    #[test]
    fn a_fifo_with_a_writer_is_refused() {
        let (_d, ws) = specials();
        let fifo = ws.join("fifo");
        // `yes > fifo`: blocks until a reader opens it, then writes without end.
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
                while f.write_all(b"y\n").is_ok() {}
            })
        };
        // Time for the writer to be waiting in `open` (the test holds either way).
        std::thread::sleep(std::time::Duration::from_millis(200));
        let e = read_beneath(&ws, "fifo").unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            refused("reading", "fifo", "a FIFO (named pipe)")
        );
        // One swapped in after the `O_PATH` check is refused by `fstat` after the
        // `O_NONBLOCK` open, before anything is read.
        let open = || {
            File::from(
                nix::fcntl::open(&fifo, OFlag::O_RDONLY | OFlag::O_NONBLOCK, Mode::empty())
                    .unwrap(),
            )
        };
        let e = read_regular(open(), "reading `fifo`", 1 << 20, "hint").unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            "reading `fifo`: it is a FIFO (named pipe), not a regular file; seer reads and \
             writes only regular files"
        );
        // Let the writer go: a blocking open meets its open, closing it ends it (EPIPE).
        drop(File::open(&fifo).unwrap());
        writer.join().unwrap();
    }

    #[test]
    fn reads_are_capped() {
        let (_d, ws) = specials();
        assert_eq!(
            read_beneath_limited(&ws, "small.txt", 10).unwrap(),
            b"0123456789"
        );
        let e = read_beneath_limited(&ws, "small.txt", 9).unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            "reading `small.txt` in the sandbox: the file is 10 bytes, over the 9 bytes \
             limit on what seer reads into memory; read what you need with a command \
             (`sb.exec`), or save the workspace with `sb.snapshot()`"
        );
        // A file bigger than its `fstat` size (like one growing while read) stops at the
        // limit: /proc files say they are empty.
        let status = File::open("/proc/self/status").unwrap();
        let e = read_regular(status, "reading status", 16, "hint").unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            "reading status: the file grew past the 16 bytes limit on what seer reads into \
             memory while it was read; hint"
        );
        // The real limit, with a sparse file just over it (no disk used).
        let big = File::create(ws.join("big")).unwrap();
        big.set_len(READ_LIMIT + 1).unwrap();
        let e = read_beneath(&ws, "big").unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            "reading `big` in the sandbox: the file is 1 GiB (1073741825 bytes), over the 1 \
             GiB limit on what seer reads into memory; read what you need with a command \
             (`sb.exec`), or save the workspace with `sb.snapshot()`"
        );
    }

    #[test]
    fn host_reads_refuse_special_files() {
        let (_d, ws) = specials();
        let fifo = ws.join("fifo");
        let e = read_file_limited(&fifo, 100, "hint").unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            format!(
                "reading {}: it is a FIFO (named pipe), not a regular file; seer reads and \
                 writes only regular files",
                fifo.display()
            )
        );
        let null = ws.join("null");
        let e = read_file_limited(&null, 100, "hint").unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            format!(
                "reading {}: it is a character device, not a regular file; seer reads and \
                 writes only regular files",
                null.display()
            )
        );
        let small = ws.join("small.txt");
        assert_eq!(
            read_file_limited(&small, 10, "hint").unwrap(),
            b"0123456789"
        );
        let e = read_file_limited(&small, 4, "open it elsewhere").unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            format!(
                "reading {}: the file is 10 bytes, over the 4 bytes limit on what seer reads \
                 into memory; open it elsewhere",
                small.display()
            )
        );
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(human_size(0), "0 bytes");
        assert_eq!(human_size(1023), "1023 bytes");
        assert_eq!(human_size(1024), "1 KiB");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(200 << 20), "200 MiB");
        assert_eq!(human_size(READ_LIMIT), "1 GiB");
        assert_eq!(human_size(3 << 40), "3 TiB");
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
