//! Where the pages' data comes from: the live hub of this process (`seer run`, `--watch`,
//! the REPL), or the run folders of an `outputs/` dir read from disk (`seer view`,
//! read-only). Both give the same shapes, so the pages are the same.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::live::{Hub, Kind};
use crate::notebook::nbformat::Notebook;

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
    let record: Option<Value> = std::fs::read(dir.join("run.json"))
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
                std::fs::read_to_string(&path)
                    .map(|t| DiskDoc {
                        items: t
                            .lines()
                            .filter(|l| !l.trim().is_empty())
                            .map(str::to_string)
                            .collect(),
                    })
                    .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))
            }
        })
    }
}

fn read_notebook(path: &Path) -> anyhow::Result<DiskDoc> {
    let nb = crate::notebook::session::load_notebook(path)?;
    let Notebook { cells, .. } = nb;
    let items = cells
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DiskDoc { items })
}
