//! Where the pages' data comes from: the live hub of this process (`seer run`, `--watch`,
//! the REPL), or the run folders of an `outputs/` dir read from disk (`seer view`,
//! read-only). Both give the same shapes, so the pages are the same.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::live::{Hub, Kind};
use crate::notebook::nbformat::Notebook;
use crate::sandbox::fsutil::read_file_limited;

/// The biggest file (`run.json`, a notebook, a transcript) the view reads from disk.
const VIEW_LIMIT: u64 = 256 << 20;

/// What to do with a file over [`VIEW_LIMIT`].
const VIEW_HINT: &str = "open it with another tool";

/// A file of a run folder, read for a page: a regular file (a FIFO or device planted there
/// is refused without being opened) of at most [`VIEW_LIMIT`] bytes.
fn read_for_view(path: &Path) -> anyhow::Result<Vec<u8>> {
    read_file_limited(path, VIEW_LIMIT, VIEW_HINT)
}

/// A run as the index and the run page show it.
#[derive(Debug, Clone, Default)]
pub struct RunView {
    pub slug: String,
    pub script: String,
    /// Unix seconds.
    pub started: f64,
    pub duration: Option<f64>,
    pub status: String,
    pub error: Option<String>,
    /// `id, backend, status, models, gpu` per sandbox.
    pub sandboxes: Vec<Value>,
    /// The summaries of finished agents (as in `run.json`).
    pub agents: Vec<Value>,
    pub notebooks: Vec<String>,
    pub transcripts: Vec<String>,
    /// The run that followed it (`--watch`).
    pub next: Option<String>,
}

impl RunView {
    pub fn tokens(&self) -> (u64, u64) {
        let sum = |k: &str| self.agents.iter().filter_map(|a| a[k].as_u64()).sum();
        (sum("input_tokens"), sum("output_tokens"))
    }

    /// The summed cost, when every agent's is known.
    pub fn cost(&self) -> Option<f64> {
        let costs: Vec<f64> = self
            .agents
            .iter()
            .filter_map(|a| a["cost_usd"].as_f64())
            .collect();
        (!self.agents.is_empty() && costs.len() == self.agents.len()).then(|| costs.iter().sum())
    }
}

/// A document's items (nbformat cell JSON, or transcript lines) from disk.
pub struct DiskDoc {
    pub items: Vec<String>,
}

pub enum Source {
    Live(&'static Hub),
    Dir(PathBuf),
}

/// A name from a URL that must be one plain file name.
fn plain(name: &str) -> Option<&str> {
    crate::paths::check_file_name("name", name)
        .is_ok()
        .then_some(name)
}

fn names_with(dir: &Path, ext: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            (p.extension().and_then(|x| x.to_str()) == Some(ext))
                .then(|| p.file_stem().map(|s| s.to_string_lossy().to_string()))
                .flatten()
        })
        .collect();
    out.sort();
    out
}

/// A sandbox of `run.json` as the pages show it.
fn recorded_sandbox(sb: &Value) -> Value {
    let models: Vec<Value> = sb["models"]
        .as_array()
        .map(|m| m.iter().map(|m| m["name"].clone()).collect())
        .unwrap_or_default();
    serde_json::json!({
        "id": sb["id"], "backend": sb["backend"],
        "status": if sb["detached"].as_bool() == Some(true) { "detached" } else { "ended" },
        "models": models, "gpu": sb["config"]["gpu"],
    })
}

/// A run folder read from disk; `None` when it holds no run (no `run.json`, notebook or
/// transcript).
fn read_run(dir: &Path) -> Option<RunView> {
    let slug = dir.file_name()?.to_string_lossy().to_string();
    let notebooks = names_with(dir, "ipynb");
    let transcripts = names_with(&dir.join("transcripts"), "jsonl");
    let record: Option<Value> = read_for_view(&dir.join("run.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if record.is_none() && notebooks.is_empty() && transcripts.is_empty() {
        return None;
    }
    let mut run = RunView {
        slug,
        notebooks,
        transcripts,
        status: "unknown (no run.json)".into(),
        ..Default::default()
    };
    if let Some(r) = record {
        run.script = r["script"].as_str().unwrap_or("").to_string();
        run.started = r["started_at"].as_f64().unwrap_or(0.0);
        run.duration = r["duration_s"].as_f64();
        run.status = r["status"].as_str().unwrap_or("unknown").to_string();
        run.error = r["error"].as_str().map(str::to_string);
        run.sandboxes = r["sandboxes"]
            .as_array()
            .map(|s| s.iter().map(recorded_sandbox).collect())
            .unwrap_or_default();
        run.agents = r["agents"].as_array().cloned().unwrap_or_default();
    } else if let Ok(m) = std::fs::metadata(dir).and_then(|m| m.modified()) {
        run.started = m
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
    }
    Some(run)
}

fn live_run(state: crate::live::RunState, info: Value) -> RunView {
    let names = |k: Kind| {
        state
            .docs
            .iter()
            .filter(|d| d.kind == k)
            .map(|d| d.name.clone())
            .collect()
    };
    RunView {
        slug: state.slug.clone(),
        script: state.script.clone().unwrap_or_default(),
        started: state.started,
        duration: state.ended.map(|e| e - state.started),
        status: state.status.clone(),
        error: state.error.clone(),
        sandboxes: info["sandboxes"].as_array().cloned().unwrap_or_default(),
        agents: info["agents"].as_array().cloned().unwrap_or_default(),
        notebooks: names(Kind::Notebook),
        transcripts: names(Kind::Transcript),
        next: state.next.clone(),
    }
}

impl Source {
    pub fn is_live(&self) -> bool {
        matches!(self, Source::Live(_))
    }

    /// Every run, newest first.
    pub fn runs(&self) -> Vec<RunView> {
        let mut runs: Vec<RunView> = match self {
            Source::Live(hub) => hub
                .list()
                .into_iter()
                .filter_map(|r| hub.run(&r.slug))
                .map(|(s, i)| live_run(s, i))
                .collect(),
            Source::Dir(dir) => std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.path().is_dir())
                .filter_map(|e| read_run(&e.path()))
                .collect(),
        };
        runs.sort_by(|a, b| {
            b.started
                .total_cmp(&a.started)
                .then_with(|| b.slug.cmp(&a.slug))
        });
        runs
    }

    pub fn run(&self, slug: &str) -> Option<RunView> {
        match self {
            Source::Live(hub) => hub.run(slug).map(|(s, i)| live_run(s, i)),
            Source::Dir(dir) => read_run(&dir.join(plain(slug)?)),
        }
    }

    /// A past document's items, read from its file.
    pub fn disk_doc(&self, slug: &str, kind: Kind, name: &str) -> Option<anyhow::Result<DiskDoc>> {
        let Source::Dir(dir) = self else {
            return None;
        };
        let run = dir.join(plain(slug)?);
        let name = plain(name)?;
        Some(match kind {
            Kind::Notebook => {
                let path = run.join(format!("{name}.ipynb"));
                if !path.is_file() {
                    return None;
                }
                read_notebook(&path)
            }
            Kind::Transcript => {
                let path = run.join("transcripts").join(format!("{name}.jsonl"));
                if !path.is_file() {
                    return None;
                }
                read_for_view(&path).and_then(|bytes| {
                    let text = String::from_utf8(bytes).map_err(|e| {
                        anyhow::anyhow!("reading {}: {}", path.display(), e.utf8_error())
                    })?;
                    Ok(DiskDoc {
                        items: text
                            .lines()
                            .filter(|l| !l.trim().is_empty())
                            .map(str::to_string)
                            .collect(),
                    })
                })
            }
        })
    }
}

fn read_notebook(path: &Path) -> anyhow::Result<DiskDoc> {
    let bytes = read_for_view(path)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let nb = crate::notebook::session::parse_notebook(path, text)?;
    let Notebook { cells, .. } = nb;
    let items = cells
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DiskDoc { items })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_files_must_be_regular_and_not_too_big() {
        use nix::sys::stat::{Mode, SFlag, makedev, mknod};
        let d = tempfile::tempdir().unwrap();
        let run = d.path().join("r1");
        std::fs::create_dir_all(run.join("transcripts")).unwrap();
        // A FIFO as `run.json` (no writer: reading it would block), a device as a notebook,
        // a sparse transcript just over the limit.
        nix::unistd::mkfifo(&run.join("run.json"), Mode::from_bits_truncate(0o644)).unwrap();
        let nb = run.join("a.ipynb");
        mknod(
            &nb,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(1, 3),
        )
        .unwrap();
        let big = run.join("transcripts/t.jsonl");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(VIEW_LIMIT + 1)
            .unwrap();
        let e = read_for_view(&run.join("run.json")).unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            format!(
                "reading {}: it is a FIFO (named pipe), not a regular file; seer reads and \
                 writes only regular files",
                run.join("run.json").display()
            )
        );
        let e = read_for_view(&nb).unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            format!(
                "reading {}: it is a character device, not a regular file; seer reads and \
                 writes only regular files",
                nb.display()
            )
        );
        let source = Source::Dir(d.path().to_path_buf());
        let view = source.run("r1").unwrap();
        assert_eq!(view.status, "unknown (no run.json)");
        assert!(source.disk_doc("r1", Kind::Notebook, "a").is_none());
        let e = match source.disk_doc("r1", Kind::Transcript, "t") {
            Some(Err(e)) => e,
            _ => panic!("the big transcript is refused"),
        };
        assert_eq!(
            format!("{e:#}"),
            format!(
                "reading {}: the file is 256 MiB (268435457 bytes), over the 256 MiB limit on \
                 what seer reads into memory; open it with another tool",
                big.display()
            )
        );
    }
}
