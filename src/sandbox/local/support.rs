//! The local backend's helpers that need none of a sandbox's state: planning the copies of
//! `local_files`/`local_dirs`, collecting and logging a process's output, the record's
//! masked config, and finding the `seer` binary for the watchdog.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::AsyncReadExt;

use super::super::config::{FileMapping, SandboxConfig};
use super::super::fsutil::{copy_dest, resolve_host};
use crate::secrets::Redactor;

/// Host sources of `local_files` / `local_dirs`, checked, with where each lands in
/// `workspace` (by [`copy_dest`], after Seer's `/root/...` and `/workspace/...` are made
/// the workspace's by [`crate::sandbox::seer_paths::from_seer`]; an entry without a destination
/// keeps its name at the workspace root).
pub(super) fn plan_copies(
    field: &str,
    items: &[FileMapping],
    base: &Path,
    workspace: &Path,
    want_dir: bool,
) -> Result<Vec<(PathBuf, PathBuf)>> {
    let mut out = vec![];
    for (i, m) in items.iter().enumerate() {
        let src = resolve_host(base, m.local());
        let kind = if want_dir { "directory" } else { "file" };
        let ok = if want_dir {
            src.is_dir()
        } else {
            src.is_file()
        };
        if !ok {
            bail!(
                "{field}[{i}]: {} is not an existing {kind} (relative paths start at the script's folder {})",
                src.display(),
                base.display()
            );
        }
        let dest = match m.sandbox() {
            Some(d) => d.to_string(),
            None => src
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .ok_or_else(|| anyhow!("{field}[{i}]: {} has no file name", src.display()))?,
        };
        let file = (!want_dir).then_some(src.as_path());
        // Seer's `/root/x` and `/workspace/x` are the workspace's `x`, as for `write_file`.
        let dest = crate::sandbox::seer_paths::from_seer(workspace, &dest);
        let to = copy_dest(workspace, &dest, file).with_context(|| format!("{field}[{i}]"))?;
        out.push((src, to));
    }
    Ok(out)
}

pub(super) fn collect<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    mut pipe: R,
    buf: Arc<Mutex<Vec<u8>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut chunk = [0u8; 8192];
        loop {
            match pipe.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Ok(mut b) = buf.lock() {
                        b.extend_from_slice(&chunk[..n]);
                    }
                }
            }
        }
    })
}

/// Copies `from` into `log` line by line with secret values replaced, until `from` ends.
pub(super) async fn redacted_log<R: tokio::io::AsyncRead + Unpin>(
    from: R,
    log: Arc<Mutex<std::fs::File>>,
    redactor: Redactor,
) {
    use tokio::io::AsyncBufReadExt;
    let mut reader = tokio::io::BufReader::new(from);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = redactor.redact(&String::from_utf8_lossy(&line));
                if let Ok(mut f) = log.lock() {
                    let _ = f.write_all(text.as_bytes());
                }
            }
        }
    }
}

pub(super) fn site_packages(venv: &Path) -> Result<PathBuf> {
    let lib = venv.join("lib");
    for e in std::fs::read_dir(&lib).with_context(|| format!("reading {}", lib.display()))? {
        let p = e?.path().join("site-packages");
        if p.is_dir() {
            return Ok(p);
        }
    }
    bail!("no site-packages in {}", venv.display())
}

/// The config as recorded on disk: hidden models' names are masked, since the record sits
/// beside the workspace and the sandbox's processes can read it.
pub(crate) fn masked_config(cfg: &SandboxConfig) -> Result<serde_json::Value> {
    let mut v = serde_json::to_value(cfg)?;
    if let Some(models) = v.get_mut("models").and_then(|m| m.as_array_mut()) {
        for (i, m) in models.iter_mut().enumerate() {
            if m.get("hidden").and_then(|h| h.as_bool()) == Some(true) {
                m["name"] = format!("hidden-model-{i}").into();
                if m.get("base_model").is_some_and(|b| !b.is_null()) {
                    m["base_model"] = format!("hidden-model-{i}-base").into();
                }
            }
        }
    }
    Ok(v)
}

/// The `seer` binary that runs `seer __watchdog`: `$SEER_BIN`, else this process when it is
/// `seer` itself. Never any other executable: a program that embeds the library (a test,
/// a bench) would otherwise start copies of itself.
pub(crate) fn seer_exe() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("SEER_BIN").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let me = std::env::current_exe().context("finding the seer binary for the watchdog")?;
    // `seer`, or the copy the ssh backend installs on a host (`seer-<version>-…`).
    let remote_copy = format!("seer-{}-", env!("CARGO_PKG_VERSION"));
    if me
        .file_name()
        .is_some_and(|n| n == "seer" || n.to_string_lossy().starts_with(&remote_copy))
    {
        return Ok(me);
    }
    bail!(
        "cannot find the seer binary to run the sandbox's timeout watchdog ({} is not seer): set SEER_BIN, or use `timeout: 0`",
        me.display()
    )
}
