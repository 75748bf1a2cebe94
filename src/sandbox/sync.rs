//! Host-to-sandbox file sync: make a folder hold what another holds, rewriting only files
//! whose content changed, each replaced atomically (write a temporary sibling, then rename)
//! so a running kernel never reads half a file. Also the plain recursive copies: of a host
//! folder ([`copy_tree`], `local_dirs`: links followed, the host's files being the user's
//! choice) and of a sandbox workspace ([`copy_workspace`], snapshots: links copied as links,
//! never what they point to, since code in the sandbox may have planted them).

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Deeper folder nesting is taken as a symlink loop.
const MAX_DEPTH: usize = 64;

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

/// Makes `dst` hold what `src` holds (symlinks in `src` are followed, broken ones skipped,
/// unless `copy_links`; only files, folders and links are copied); returns how many files
/// were written or removed.
pub fn sync_dir(src: &Path, dst: &Path, opts: &SyncOpts) -> Result<usize> {
    sync_level(src, dst, opts, 0)
}

/// [`sync_dir`] at `depth` folders below where it started.
fn sync_level(src: &Path, dst: &Path, opts: &SyncOpts, depth: usize) -> Result<usize> {
    if depth > MAX_DEPTH {
        bail!(
            "{} is nested more than {MAX_DEPTH} folders deep; is there a symlink loop?",
            src.display()
        );
    }
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
        if opts.copy_links
            && let Ok(target) = fs::read_link(&from)
        {
            seen.insert(name);
            n += usize::from(copy_link(&target, &to)?);
            continue;
        }
        let Ok(meta) = fs::metadata(&from) else {
            tracing::warn!("skipping {}: a broken symlink", from.display());
            continue;
        };
        if meta.is_dir() {
            if let Some(ex) = &opts.exclude
                && fs::canonicalize(&from).is_ok_and(|c| &c == ex)
            {
                continue;
            }
            seen.insert(name);
            n += sync_level(&from, &to, opts, depth + 1)?;
        } else if meta.is_file() {
            seen.insert(name);
            n += usize::from(copy_if_changed(&from, &to)?);
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

/// Replaces `to` atomically (so a running kernel never reads half a file).
fn replace_with(to: &Path, fill: impl FnOnce(&Path) -> std::io::Result<()>) -> Result<()> {
    if fs::symlink_metadata(to).is_ok_and(|m| m.is_dir()) {
        remove_any(to)?;
    }
    let tmp = temp_sibling(to);
    fill(&tmp).with_context(|| {
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
    if fs::symlink_metadata(to).is_ok_and(|m| m.is_file()) && fs::read(to).is_ok_and(|b| b == bytes)
    {
        return Ok(false);
    }
    replace_with(to, |tmp| fs::write(tmp, bytes))?;
    Ok(true)
}

/// [`write_if_changed`] for a file that may hold a secret (a generated client module holds
/// its RPC token): written 0600 from the start ([`crate::paths::write_private`]), and
/// rewritten when an existing copy is open to group or others.
pub fn write_private_if_changed(to: &Path, bytes: &[u8]) -> Result<bool> {
    use std::os::unix::fs::PermissionsExt;
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

/// Copies `from` to `to` (with its permissions) unless the contents already match.
pub fn copy_if_changed(from: &Path, to: &Path) -> Result<bool> {
    if fs::symlink_metadata(to).is_ok_and(|m| m.is_file()) && same_content(from, to)? {
        return Ok(false);
    }
    replace_with(to, |tmp| fs::copy(from, tmp).map(|_| ()))
        .with_context(|| format!("copying {}", from.display()))?;
    Ok(true)
}

/// Whether two files hold the same bytes (compared in blocks, not read whole).
fn same_content(a: &Path, b: &Path) -> Result<bool> {
    let open = |p: &Path| fs::File::open(p).with_context(|| format!("reading {}", p.display()));
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    let (la, lb) = (fa.metadata()?.len(), fb.metadata()?.len());
    if la != lb {
        return Ok(false);
    }
    let mut ba = vec![0u8; 64 * 1024];
    let mut bb = vec![0u8; 64 * 1024];
    loop {
        let n = read_full(&mut fa, &mut ba).with_context(|| format!("reading {}", a.display()))?;
        let m = read_full(&mut fb, &mut bb).with_context(|| format!("reading {}", b.display()))?;
        if ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// Reads until `buf` is full or the file ends; how many bytes were read.
fn read_full(f: &mut fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let k = f.read(&mut buf[filled..])?;
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
        // The kernel stops following the loop (ELOOP) before MAX_DEPTH; that entry is
        // then skipped like a broken symlink. Either way the copy ends.
        let _ = copy_tree(&src, &d.path().join("dst"));
        let depth = walkdir_depth(&d.path().join("dst"));
        assert!((1..=MAX_DEPTH + 1).contains(&depth), "{depth}");
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
