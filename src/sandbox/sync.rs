//! Host-to-sandbox file sync: make a folder hold what another holds, rewriting only files
//! whose content changed, each replaced atomically (write a temporary sibling, then rename)
//! so a running kernel never reads half a file. Also the plain recursive copies: of a host
//! folder ([`copy_tree`], `local_dirs`: links followed, the host's files being the user's
//! choice) and of a sandbox workspace ([`copy_workspace`], snapshots: links copied as links,
//! never what they point to, since code in the sandbox may have planted them).
//!
//! Only regular files, folders and links are copied. A FIFO, device or socket (which code
//! in a sandbox, running as root, may plant) is skipped without being opened, with one
//! warning per copy naming them; a source file is opened `O_NONBLOCK` and checked with
//! `fstat` before it is read, so one swapped in meanwhile is refused, never read. Files are
//! copied sparse (only their data, found with `SEEK_DATA`/`SEEK_HOLE`), so a 1 TB file of
//! holes stays a few blocks, and never more than the size they had when the copy began.
//! Following links, a folder already on the path being copied (a link back up, `a -> .`)
//! is an error naming the link, not an endless copy.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::unistd::{Whence, lseek};

use super::fsutil::{file_kind, is_special};

/// Deeper folder nesting is taken as a symlink loop.
const MAX_DEPTH: usize = 64;

/// How many skipped files a warning names.
const SKIPPED_SHOWN: usize = 5;

/// How [`sync_dir`] treats what differs between source and destination.
#[derive(Debug, Clone, Default)]
pub struct SyncOpts {
    /// Delete what is in the destination but not in the source.
    pub prune: bool,
    /// Skip `__pycache__` folders and `.pyc` files (in both source and destination).
    pub skip_bytecode: bool,
    /// A canonical folder never copied (the workspace itself, when it is inside the source).
    pub exclude: Option<PathBuf>,
    /// Recreate symbolic links as links (with the same target) instead of copying what they
    /// point to. For sources that untrusted code could write (a sandbox workspace).
    pub copy_links: bool,
}

/// A `__pycache__` folder or a `.pyc` file.
fn is_bytecode(name: &OsStr) -> bool {
    name == "__pycache__" || name.to_string_lossy().ends_with(".pyc")
}

/// A folder on the path from the source of a [`sync_dir`] down to where it is.
struct OnPath {
    dev: u64,
    ino: u64,
    /// As errors show it (see [`Walk::shown`]).
    shown: PathBuf,
    /// Reached through a symbolic link.
    link: bool,
}

/// One [`sync_dir`]: its options, the folders it is in, the special files it skipped.
struct Walk<'a> {
    opts: &'a SyncOpts,
    /// Paths in errors and warnings are shown from here, the source's parent (`data/a`).
    base: PathBuf,
    path: Vec<OnPath>,
    skipped: Vec<PathBuf>,
}

impl Walk<'_> {
    fn shown(&self, p: &Path) -> PathBuf {
        p.strip_prefix(&self.base).unwrap_or(p).to_path_buf()
    }

    /// An error when the folder `meta` (at `from`) is one the walk is already in.
    fn check_cycle(&self, from: &Path, meta: &fs::Metadata, link: bool) -> Result<()> {
        let Some(again) = self
            .path
            .iter()
            .find(|d| d.dev == meta.dev() && d.ino == meta.ino())
        else {
            return Ok(());
        };
        let (entry, dir) = (self.shown(from), again.shown.display());
        if link {
            bail!(
                "{} is a link back to {dir} (a cycle); seer follows links when it copies a \
                 host folder, so remove or replace that link",
                entry.display()
            );
        }
        match self.path.iter().rev().find(|d| d.link) {
            Some(l) => bail!(
                "{} is {dir} again, reached through the link {} (a cycle); seer follows links \
                 when it copies a host folder, so remove or replace that link",
                entry.display(),
                l.shown.display()
            ),
            None => bail!("{} is {dir} again (a cycle)", entry.display()),
        }
    }

    /// Makes `dst` hold what the folder `src` (`meta`) holds; `depth` folders below the
    /// start, `link` when reached through a symbolic link.
    fn level(
        &mut self,
        src: &Path,
        dst: &Path,
        meta: &fs::Metadata,
        link: bool,
        depth: usize,
    ) -> Result<usize> {
        if depth > MAX_DEPTH {
            bail!(
                "{} is nested more than {MAX_DEPTH} folders deep; is there a symlink loop?",
                src.display()
            );
        }
        self.path.push(OnPath {
            dev: meta.dev(),
            ino: meta.ino(),
            shown: self.shown(src),
            link,
        });
        let n = self.entries(src, dst, depth);
        self.path.pop();
        n
    }

    fn entries(&mut self, src: &Path, dst: &Path, depth: usize) -> Result<usize> {
        let opts = self.opts;
        let mut n = 0;
        if fs::symlink_metadata(dst).is_ok_and(|m| !m.is_dir()) {
            remove_any(dst)?;
            n += 1;
        }
        fs::create_dir_all(dst).with_context(|| format!("creating {}", dst.display()))?;
        let mut entries: Vec<fs::DirEntry> = fs::read_dir(src)
            .with_context(|| format!("reading {}", src.display()))?
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("reading {}", src.display()))?;
        entries.sort_by_key(|e| e.file_name());
        let mut seen: BTreeSet<OsString> = BTreeSet::new();
        for entry in entries {
            let name = entry.file_name();
            if opts.skip_bytecode && is_bytecode(&name) {
                continue;
            }
            let from = entry.path();
            let to = dst.join(&name);
            let link = entry
                .file_type()
                .with_context(|| format!("reading {}", from.display()))?
                .is_symlink();
            if opts.copy_links && link {
                let target = fs::read_link(&from)
                    .with_context(|| format!("reading the link {}", from.display()))?;
                seen.insert(name);
                n += usize::from(copy_link(&target, &to)?);
                continue;
            }
            // `stat`, not `open`: a FIFO or device is recognised without being opened.
            let meta = if link {
                fs::metadata(&from)
            } else {
                fs::symlink_metadata(&from)
            };
            let Ok(meta) = meta else {
                tracing::warn!("skipping {}: a broken symlink", from.display());
                continue;
            };
            if meta.is_dir() {
                if let Some(ex) = &opts.exclude
                    && fs::canonicalize(&from).is_ok_and(|c| &c == ex)
                {
                    continue;
                }
                self.check_cycle(&from, &meta, link)?;
                seen.insert(name);
                n += self.level(&from, &to, &meta, link, depth + 1)?;
            } else if meta.is_file() {
                seen.insert(name);
                n += usize::from(copy_regular_if_changed(&from, &to, !opts.copy_links)?);
            } else {
                self.skipped.push(from);
            }
        }
        if opts.prune {
            for entry in fs::read_dir(dst).with_context(|| format!("reading {}", dst.display()))? {
                let entry = entry?;
                let name = entry.file_name();
                if seen.contains(&name) || (opts.skip_bytecode && is_bytecode(&name)) {
                    continue;
                }
                if remove_any(&entry.path())? {
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}

/// The one warning for the special files a copy skipped (`None` when it skipped none).
fn skipped_warning(skipped: &[PathBuf]) -> Option<String> {
    let (first, rest) = skipped.split_first()?;
    let mut names = first.display().to_string();
    for p in rest.iter().take(SKIPPED_SHOWN - 1) {
        names.push_str(", ");
        names.push_str(&p.display().to_string());
    }
    if skipped.len() > SKIPPED_SHOWN {
        names.push_str(&format!(" and {} more", skipped.len() - SKIPPED_SHOWN));
    }
    let n = skipped.len();
    let (files, them) = if n == 1 {
        ("file that is", "it")
    } else {
        ("files that are", "them")
    };
    Some(format!(
        "skipped {n} {files} not a regular file, folder or link (FIFOs, devices, sockets; \
         seer does not copy {them}): {names}"
    ))
}

/// Makes `dst` hold what `src` holds (symlinks in `src` are followed, broken ones skipped,
/// unless `copy_links`; only files, folders and links are copied, FIFOs, devices and
/// sockets are skipped with one warning); returns how many files were written or removed.
/// Following links, one back to a folder the copy is in is an error naming it.
pub fn sync_dir(src: &Path, dst: &Path, opts: &SyncOpts) -> Result<usize> {
    let meta = fs::metadata(src).with_context(|| format!("reading {}", src.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a folder", src.display());
    }
    let mut walk = Walk {
        opts,
        base: src.parent().unwrap_or(src).to_path_buf(),
        path: vec![],
        skipped: vec![],
    };
    let n = walk.level(src, dst, &meta, false, 0);
    if let Some(w) = skipped_warning(&walk.skipped) {
        tracing::warn!("{w}");
    }
    n
}

/// Copies a folder tree into `dst`, merged with what is there: [`sync_dir`] without
/// pruning.
pub fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    sync_dir(src, dst, &SyncOpts::default()).map(|_| ())
}

/// Copies a sandbox workspace (a snapshot, or a snapshot into a new workspace): links are
/// copied as links and never followed, so a link planted in the sandbox cannot pull host
/// files into the copy.
pub fn copy_workspace(src: &Path, dst: &Path) -> Result<()> {
    let opts = SyncOpts {
        copy_links: true,
        ..SyncOpts::default()
    };
    sync_dir(src, dst, &opts).map(|_| ())
}

/// Makes `to` a symbolic link to `target` unless it already is one; true when written.
fn copy_link(target: &Path, to: &Path) -> Result<bool> {
    if fs::read_link(to).is_ok_and(|t| t == target) {
        return Ok(false);
    }
    remove_any(to)?;
    std::os::unix::fs::symlink(target, to)
        .with_context(|| format!("creating the link {} -> {}", to.display(), target.display()))?;
    Ok(true)
}

/// Removes a file, symlink or folder; false when nothing was there.
pub fn remove_any(path: &Path) -> Result<bool> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("checking {}", path.display())),
    };
    if meta.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
    .with_context(|| format!("removing {}; check its permissions", path.display()))?;
    Ok(true)
}

/// A temporary name next to `to`, for write-then-rename.
fn temp_sibling(to: &Path) -> PathBuf {
    let name = to.file_name().map(|n| n.to_string_lossy().into_owned());
    to.with_file_name(format!(
        ".{}.seer-tmp-{}",
        name.unwrap_or_default(),
        std::process::id()
    ))
}

/// A new file at `tmp` (whatever was there removed first; never opened through a link).
fn create_new(tmp: &Path) -> std::io::Result<File> {
    match fs::remove_file(tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(OFlag::O_CLOEXEC.bits())
        .open(tmp)
}

/// Replaces `to` atomically (so a running kernel never reads half a file): `fill` writes
/// the new file it is given.
fn replace_with(to: &Path, fill: impl FnOnce(File) -> std::io::Result<()>) -> Result<()> {
    if fs::symlink_metadata(to).is_ok_and(|m| m.is_dir()) {
        remove_any(to)?;
    }
    let tmp = temp_sibling(to);
    create_new(&tmp).and_then(fill).with_context(|| {
        let _ = fs::remove_file(&tmp);
        format!(
            "writing {}; check that its folder is writable",
            tmp.display()
        )
    })?;
    fs::rename(&tmp, to).with_context(|| {
        let _ = fs::remove_file(&tmp);
        format!("replacing {}", to.display())
    })
}

/// Writes `bytes` to `to` unless it already holds exactly them; true when written.
pub fn write_if_changed(to: &Path, bytes: &[u8]) -> Result<bool> {
    if let Some(f) = open_if_regular(to, false)
        && f.metadata().is_ok_and(|m| m.len() == bytes.len() as u64)
    {
        let mut old = Vec::with_capacity(bytes.len());
        let read = f.take(bytes.len() as u64 + 1).read_to_end(&mut old);
        if read.is_ok() && old == bytes {
            return Ok(false);
        }
    }
    replace_with(to, |mut f| std::io::Write::write_all(&mut f, bytes))?;
    Ok(true)
}

/// [`write_if_changed`] for a file that may hold a secret (a generated client module holds
/// its RPC token): written 0600 from the start ([`crate::paths::write_private`]), and
/// rewritten when an existing copy is open to group or others.
pub fn write_private_if_changed(to: &Path, bytes: &[u8]) -> Result<bool> {
    if fs::symlink_metadata(to).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o077 == 0)
        && fs::read(to).is_ok_and(|b| b == bytes)
    {
        return Ok(false);
    }
    if fs::symlink_metadata(to).is_ok_and(|m| m.is_dir()) {
        remove_any(to)?;
    }
    crate::paths::write_private(to, bytes).with_context(|| {
        format!(
            "writing {}; check that its folder is writable",
            to.display()
        )
    })?;
    Ok(true)
}

/// `path` opened for reading when it is a regular file (`O_NONBLOCK`, checked with
/// `fstat`; a link followed only when `follow`), else `None`.
fn open_if_regular(path: &Path, follow: bool) -> Option<File> {
    let f = open_nonblocking(path, follow).ok()?;
    f.metadata().ok()?.is_file().then_some(f)
}

/// `path` opened for reading with `O_NONBLOCK` (a FIFO's open never waits for a writer),
/// following a link only when `follow`.
fn open_nonblocking(path: &Path, follow: bool) -> std::io::Result<File> {
    let mut flags = OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    if !follow {
        flags |= OFlag::O_NOFOLLOW;
    }
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)
}

/// Opens the source of a copy: a regular file only (a FIFO, device or socket is refused
/// without being opened, and checked again with `fstat` after an `O_NONBLOCK` open); a
/// link is followed only when `follow`.
fn open_source(from: &Path, follow: bool) -> Result<(File, fs::Metadata)> {
    let refuse = |ft: fs::FileType| {
        anyhow!(
            "copying {}: it is {}, not a regular file; seer copies only regular files, \
             folders and links",
            from.display(),
            file_kind(ft)
        )
    };
    let meta = if follow {
        fs::metadata(from)
    } else {
        fs::symlink_metadata(from)
    };
    if let Ok(m) = meta
        && is_special(m.file_type())
    {
        return Err(refuse(m.file_type()));
    }
    let f =
        open_nonblocking(from, follow).with_context(|| format!("copying {}", from.display()))?;
    let meta = f
        .metadata()
        .with_context(|| format!("copying {}", from.display()))?;
    if !meta.is_file() {
        return Err(refuse(meta.file_type()));
    }
    Ok((f, meta))
}

/// Copies `from` to `to` (with its permissions, without set-id bits) unless the contents
/// already match; a regular file only (see [`open_source`]), copied sparse
/// ([`copy_sparse`]).
pub fn copy_if_changed(from: &Path, to: &Path) -> Result<bool> {
    copy_regular_if_changed(from, to, true)
}

/// [`copy_if_changed`], following a link at `from` only when `follow`.
fn copy_regular_if_changed(from: &Path, to: &Path, follow: bool) -> Result<bool> {
    let (src, meta) = open_source(from, follow)?;
    if let Some(old) = open_if_regular(to, false)
        && same_content(&src, &old).with_context(|| format!("comparing {}", from.display()))?
    {
        return Ok(false);
    }
    let mode = meta.permissions().mode() & 0o777;
    replace_with(to, |out| {
        copy_sparse(&src, meta.len(), &out)?;
        out.set_permissions(fs::Permissions::from_mode(mode))
    })
    .with_context(|| format!("copying {}", from.display()))?;
    Ok(true)
}

/// Copies the first `len` bytes of `src` into the empty `out`, only where `src` holds data
/// (`SEEK_DATA`/`SEEK_HOLE`): holes stay holes. Never more than `len` bytes, even if `src`
/// grows meanwhile.
fn copy_sparse(src: &File, len: u64, out: &File) -> std::io::Result<()> {
    let offset = |n: u64| i64::try_from(n).map_err(std::io::Error::other);
    let mut pos = 0;
    while pos < len {
        let data = match lseek(src, offset(pos)?, Whence::SeekData) {
            Ok(d) => d as u64,
            // No data after `pos`: the rest is a hole.
            Err(Errno::ENXIO) => break,
            // A file system without `SEEK_DATA`: copy it all.
            Err(Errno::EINVAL) => pos,
            Err(e) => return Err(e.into()),
        };
        if data >= len {
            break;
        }
        let hole = match lseek(src, offset(data)?, Whence::SeekHole) {
            Ok(h) => (h as u64).min(len),
            Err(Errno::EINVAL) => len,
            Err(e) => return Err(e.into()),
        };
        copy_range(src, out, data, hole.max(data))?;
        pos = hole.max(data + 1);
    }
    out.set_len(len)
}

/// Copies bytes `start..end` of `src` to the same place in `out`.
fn copy_range(src: &File, out: &File, start: u64, end: u64) -> std::io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    let mut at = start;
    while at < end {
        let want = usize::try_from(end - at)
            .unwrap_or(buf.len())
            .min(buf.len());
        let k = src.read_at(&mut buf[..want], at)?;
        if k == 0 {
            // The file shrank meanwhile; `set_len` gives the copy its size.
            break;
        }
        out.write_all_at(&buf[..k], at)?;
        at += k as u64;
    }
    Ok(())
}

/// Whether two open files hold the same bytes (compared in blocks, not read whole).
fn same_content(a: &File, b: &File) -> std::io::Result<bool> {
    if a.metadata()?.len() != b.metadata()?.len() {
        return Ok(false);
    }
    let mut ba = vec![0u8; 64 * 1024];
    let mut bb = vec![0u8; 64 * 1024];
    let mut at = 0;
    loop {
        let n = read_full_at(a, &mut ba, at)?;
        let m = read_full_at(b, &mut bb, at)?;
        if ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
        at += n as u64;
    }
}

/// Reads from `at` until `buf` is full or the file ends; how many bytes were read.
fn read_full_at(f: &File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let k = f.read_at(&mut buf[filled..], at + filled as u64)?;
        if k == 0 {
            break;
        }
        filled += k;
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn copy_tree_copies_nested_files() {
        let d = tempfile::tempdir().unwrap();
        write(&d.path().join("src/a/f.txt"), "hi");
        write(&d.path().join("dst/keep.txt"), "kept");
        copy_tree(&d.path().join("src"), &d.path().join("dst")).unwrap();
        assert_eq!(
            fs::read_to_string(d.path().join("dst/a/f.txt")).unwrap(),
            "hi"
        );
        assert!(d.path().join("dst/keep.txt").is_file());
    }

    #[test]
    fn sync_dir_counts_prunes_and_skips() {
        let d = tempfile::tempdir().unwrap();
        let (src, dst) = (d.path().join("src"), d.path().join("dst"));
        write(&src.join("a.py"), "a");
        write(&src.join("sub/b.txt"), "b");
        write(&src.join("__pycache__/a.cpython-311.pyc"), "x");
        write(&dst.join("stale.txt"), "old");
        write(&dst.join("__pycache__/kept.pyc"), "y");
        #[cfg(unix)]
        std::os::unix::fs::symlink(d.path().join("nowhere"), src.join("broken")).unwrap();
        let opts = SyncOpts {
            prune: true,
            skip_bytecode: true,
            exclude: None,
            copy_links: false,
        };
        // Two files written, one removed; bytecode neither copied nor pruned.
        assert_eq!(sync_dir(&src, &dst, &opts).unwrap(), 3);
        assert_eq!(fs::read_to_string(dst.join("sub/b.txt")).unwrap(), "b");
        assert!(!dst.join("stale.txt").exists());
        assert!(!dst.join("__pycache__/a.cpython-311.pyc").exists());
        assert!(dst.join("__pycache__/kept.pyc").exists());
        assert!(!dst.join("broken").exists());
        // Nothing changed: nothing written.
        assert_eq!(sync_dir(&src, &dst, &opts).unwrap(), 0);
        write(&src.join("a.py"), "A");
        assert_eq!(sync_dir(&src, &dst, &opts).unwrap(), 1);
        assert_eq!(fs::read_to_string(dst.join("a.py")).unwrap(), "A");
    }

    #[test]
    fn sync_dir_skips_the_excluded_folder() {
        let d = tempfile::tempdir().unwrap();
        write(&d.path().join("a.txt"), "a");
        write(&d.path().join("out/ws/x.txt"), "x");
        let ws = d.path().join("out/ws");
        let opts = SyncOpts {
            exclude: Some(fs::canonicalize(&ws).unwrap()),
            ..SyncOpts::default()
        };
        sync_dir(d.path(), &ws.join("copy"), &opts).unwrap();
        assert!(ws.join("copy/a.txt").is_file());
        assert!(!ws.join("copy/out/ws").exists());
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loops_end() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        write(&src.join("f.txt"), "f");
        std::os::unix::fs::symlink(&src, src.join("loop")).unwrap();
        // The link back up is found at once: an error naming it, not a deep copy.
        let e = copy_tree(&src, &d.path().join("dst")).unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            "src/loop is a link back to src (a cycle); seer follows links when it copies a \
             host folder, so remove or replace that link"
        );
        let depth = walkdir_depth(&d.path().join("dst"));
        assert!((1..=MAX_DEPTH + 1).contains(&depth), "{depth}");
    }

    #[test]
    fn link_cycles_are_errors_naming_the_link() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("data");
        write(&data.join("f.txt"), "f");
        write(&data.join("sub/g.txt"), "g");
        // Two links to `.`: before, 2^40 copies and thousands of "broken symlink" warnings.
        std::os::unix::fs::symlink(".", data.join("a")).unwrap();
        std::os::unix::fs::symlink(".", data.join("b")).unwrap();
        let e = copy_tree(&data, &d.path().join("dst")).unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            "data/a is a link back to data (a cycle); seer follows links when it copies a \
             host folder, so remove or replace that link"
        );
        for l in ["a", "b"] {
            fs::remove_file(data.join(l)).unwrap();
        }
        // Deeper, back to a folder above it.
        std::os::unix::fs::symlink("..", data.join("sub/up")).unwrap();
        let e = copy_tree(&data, &d.path().join("dst")).unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            "data/sub/up is a link back to data (a cycle); seer follows links when it copies \
             a host folder, so remove or replace that link"
        );
        fs::remove_file(data.join("sub/up")).unwrap();
        // Out of the copied folder and back into it: named by the link that left.
        std::os::unix::fs::symlink("..", data.join("out")).unwrap();
        let e = copy_tree(&data, &d.path().join("dst")).unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            "data/out/data is data again, reached through the link data/out (a cycle); seer \
             follows links when it copies a host folder, so remove or replace that link"
        );
        fs::remove_file(data.join("out")).unwrap();
        // A link to a folder that is not an ancestor is copied as before.
        std::os::unix::fs::symlink("sub", data.join("alias")).unwrap();
        copy_tree(&data, &d.path().join("dst")).unwrap();
        assert_eq!(
            fs::read_to_string(d.path().join("dst/alias/g.txt")).unwrap(),
            "g"
        );
        // A workspace copy keeps the links as links: no cycle to follow.
        std::os::unix::fs::symlink(".", data.join("a")).unwrap();
        copy_workspace(&data, &d.path().join("snap")).unwrap();
        assert_eq!(
            fs::read_link(d.path().join("snap/a")).unwrap(),
            PathBuf::from(".")
        );
    }

    /// A folder holding a FIFO, a character device (`/dev/null`'s numbers), a socket and a
    /// regular file.
    fn with_specials(dir: &Path) {
        use nix::sys::stat::{Mode, SFlag, makedev, mknod};
        write(&dir.join("keep.txt"), "kept");
        nix::unistd::mkfifo(&dir.join("fifo"), Mode::from_bits_truncate(0o644)).unwrap();
        mknod(
            &dir.join("null"),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(1, 3),
        )
        .unwrap();
        std::os::unix::net::UnixListener::bind(dir.join("sock")).unwrap();
    }

    #[test]
    fn special_files_are_skipped_never_opened() {
        let d = tempfile::tempdir().unwrap();
        let ws = d.path().join("ws");
        with_specials(&ws);
        with_specials(&ws.join("sub"));
        let started = std::time::Instant::now();
        // `yes > fifo`: a writer waiting for a reader. Nothing opens the FIFO, so it waits.
        let writer = {
            let fifo = ws.join("fifo");
            std::thread::spawn(move || {
                let mut f = fs::OpenOptions::new().write(true).open(fifo).unwrap();
                while std::io::Write::write_all(&mut f, b"y\n").is_ok() {}
            })
        };
        // Time for the writer to be waiting in `open` (the test holds either way).
        std::thread::sleep(std::time::Duration::from_millis(200));
        for (copy, follow) in [("snap", false), ("tree", true)] {
            let dst = d.path().join(copy);
            if follow {
                copy_tree(&ws, &dst).unwrap();
            } else {
                copy_workspace(&ws, &dst).unwrap();
            }
            let mut names: Vec<String> = walk_names(&dst);
            names.sort();
            assert_eq!(names, ["keep.txt", "sub", "sub/keep.txt"], "{copy}");
        }
        // Files given one by one (`local_files`) are refused, again without opening them.
        for (name, kind) in [
            ("fifo", "a FIFO (named pipe)"),
            ("null", "a character device"),
            ("sock", "a socket"),
        ] {
            let from = ws.join(name);
            let e = copy_if_changed(&from, &d.path().join("one")).unwrap_err();
            assert_eq!(
                format!("{e:#}"),
                format!(
                    "copying {}: it is {kind}, not a regular file; seer copies only regular \
                     files, folders and links",
                    from.display()
                )
            );
        }
        assert!(!d.path().join("one").exists());
        // A FIFO or device in the destination is replaced, not written through.
        assert!(write_if_changed(&ws.join("null"), b"x").unwrap());
        assert!(copy_if_changed(&ws.join("keep.txt"), &ws.join("sub/fifo")).unwrap());
        assert_eq!(fs::read(ws.join("sub/fifo")).unwrap(), b"kept");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        // Let the writer go: a blocking open meets its open, closing it ends it (EPIPE).
        drop(File::open(ws.join("fifo")).unwrap());
        writer.join().unwrap();
    }

    #[test]
    fn skipped_files_make_one_warning() {
        assert_eq!(skipped_warning(&[]), None);
        assert_eq!(
            skipped_warning(&[PathBuf::from("ws/fifo")]).unwrap(),
            "skipped 1 file that is not a regular file, folder or link (FIFOs, devices, \
             sockets; seer does not copy it): ws/fifo"
        );
        let many: Vec<PathBuf> = (0..8).map(|i| PathBuf::from(format!("ws/p{i}"))).collect();
        assert_eq!(
            skipped_warning(&many).unwrap(),
            "skipped 8 files that are not a regular file, folder or link (FIFOs, devices, \
             sockets; seer does not copy them): ws/p0, ws/p1, ws/p2, ws/p3, ws/p4 and 3 more"
        );
    }

    #[test]
    fn sparse_files_stay_sparse() {
        use std::os::unix::fs::{FileExt, MetadataExt};
        let d = tempfile::tempdir().unwrap();
        let ws = d.path().join("ws");
        fs::create_dir_all(&ws).unwrap();
        // 200 MB of which 8 KiB hold data: at the start, in the middle, and none at the end.
        let size = 200_000_000u64;
        let f = File::create(ws.join("sparse.bin")).unwrap();
        f.set_len(size).unwrap();
        f.write_all_at(&[1u8; 4096], 0).unwrap();
        f.write_all_at(&[2u8; 4096], 100 << 20).unwrap();
        drop(f);
        assert!(fs::metadata(ws.join("sparse.bin")).unwrap().blocks() < 1024);
        for copy in ["snap", "tree"] {
            let dst = d.path().join(copy);
            if copy == "snap" {
                copy_workspace(&ws, &dst).unwrap();
            } else {
                copy_tree(&ws, &dst).unwrap();
            }
            let out = dst.join("sparse.bin");
            let meta = fs::metadata(&out).unwrap();
            assert_eq!(meta.len(), size, "{copy}");
            // 512-byte blocks: well under 1 MiB allocated, not 200 MB.
            assert!(meta.blocks() < 2048, "{copy}: {} blocks", meta.blocks());
            let g = File::open(&out).unwrap();
            let mut buf = [0u8; 4097];
            g.read_exact_at(&mut buf, 0).unwrap();
            assert_eq!((buf[0], buf[4095], buf[4096]), (1, 1, 0), "{copy}");
            g.read_exact_at(&mut buf, (100 << 20) - 1).unwrap();
            assert_eq!((buf[0], buf[1], buf[4096]), (0, 2, 2), "{copy}");
            // Copying again finds it unchanged.
            assert!(!copy_if_changed(&ws.join("sparse.bin"), &out).unwrap());
        }
    }

    /// The paths under `dir`, relative to it.
    fn walk_names(dir: &Path) -> Vec<String> {
        let mut out = vec![];
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
                if p.is_dir() {
                    stack.push(p);
                }
            }
        }
        out
    }

    #[cfg(unix)]
    fn walkdir_depth(dir: &Path) -> usize {
        let mut deepest = 0;
        let mut stack = vec![(dir.to_path_buf(), 1)];
        while let Some((d, n)) = stack.pop() {
            deepest = deepest.max(n);
            for e in fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    stack.push((e.path(), n + 1));
                }
            }
        }
        deepest
    }

    #[test]
    fn writes_replace_only_changed_files() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f.txt");
        assert!(write_if_changed(&f, b"one").unwrap());
        assert!(!write_if_changed(&f, b"one").unwrap());
        assert!(write_if_changed(&f, b"two").unwrap());
        let g = d.path().join("g.txt");
        assert!(copy_if_changed(&f, &g).unwrap());
        assert!(!copy_if_changed(&f, &g).unwrap());
        assert_eq!(fs::read(&g).unwrap(), b"two");
        // A folder in the way is replaced; no temporary file is left behind.
        fs::create_dir_all(d.path().join("h.txt/inner")).unwrap();
        assert!(write_if_changed(&d.path().join("h.txt"), b"h").unwrap());
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.contains("seer-tmp")), "{names:?}");
        assert!(remove_any(&f).unwrap() && !remove_any(&f).unwrap());
    }

    #[test]
    fn a_workspace_copy_keeps_links_as_links() {
        let d = tempfile::tempdir().unwrap();
        let host = d.path().join("host");
        write(&host.join("secret.txt"), "host secret");
        let ws = d.path().join("ws");
        write(&ws.join("a.txt"), "a");
        std::os::unix::fs::symlink(&host, ws.join("etc")).unwrap();
        std::os::unix::fs::symlink(host.join("secret.txt"), ws.join("report.md")).unwrap();
        std::os::unix::fs::symlink("a.txt", ws.join("alias")).unwrap();
        let snap = d.path().join("snap");
        copy_workspace(&ws, &snap).unwrap();
        assert_eq!(fs::read_to_string(snap.join("a.txt")).unwrap(), "a");
        for (link, target) in [
            ("etc", host.clone()),
            ("report.md", host.join("secret.txt")),
            ("alias", PathBuf::from("a.txt")),
        ] {
            assert!(
                fs::symlink_metadata(snap.join(link)).unwrap().is_symlink(),
                "{link}"
            );
            assert_eq!(fs::read_link(snap.join(link)).unwrap(), target);
        }
        // Copying again over the copy changes nothing and follows nothing.
        copy_workspace(&ws, &snap).unwrap();
        assert_eq!(fs::read_dir(&snap).unwrap().count(), 4);
        // `local_dirs` (a host folder) still follows links, as documented.
        let copy = d.path().join("copy");
        copy_tree(&ws, &copy).unwrap();
        assert_eq!(
            fs::read_to_string(copy.join("etc/secret.txt")).unwrap(),
            "host secret"
        );
    }
}
