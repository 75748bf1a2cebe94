//! What the live view shows, as it changes: the runs of this process with their notebooks
//! and agent transcripts, kept as the JSON their writers already make (a cell's nbformat
//! fragment, a transcript line), each item stamped with the version that last changed it.
//!
//! Writers publish through a [`Feed`] (`notebook::session` per cell, the transcript writers
//! of `agent/` per line); the view server (`view/`) reads snapshots and waits on a `watch`
//! channel per document, so a page asks for what changed since the version it has and
//! never misses an update (a `watch` coalesces bursts, it cannot lag). Nothing is kept
//! until the view server turns the hub on ([`enable`]): library users, `seer mcp notebook`
//! and runs with the view off pay one atomic load per write.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use serde_json::Value;
use tokio::sync::watch;

/// What a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Notebook,
    Transcript,
}

impl Kind {
    /// Its segment in URLs and its folder in a run (`notebooks` are at the run's top).
    pub fn segment(self) -> &'static str {
        match self {
            Kind::Notebook => "notebooks",
            Kind::Transcript => "transcripts",
        }
    }
}

/// One item of a document and the version that last changed it.
#[derive(Debug, Clone)]
pub struct Item {
    pub json: Arc<str>,
    pub version: u64,
    /// The view's rendering of this version, made once on first use.
    pub html: Arc<OnceLock<String>>,
}

impl Item {
    fn new(json: &str, version: u64) -> Self {
        Item {
            json: Arc::from(json),
            version,
            html: Arc::default(),
        }
    }
}

/// A document's state, as a page reads it.
#[derive(Debug, Clone, Default)]
pub struct DocState {
    pub items: Vec<Item>,
    pub version: u64,
    /// The cell running now and when it started (Unix seconds).
    pub running: Option<(usize, f64)>,
    /// `run/kind/name` of the same document in a later run (`--watch`): pages follow it.
    pub next: Option<String>,
}

/// A notebook or transcript of a run.
#[derive(Debug)]
pub struct Doc {
    pub kind: Kind,
    /// The run's slug (its folder name).
    pub run: String,
    /// The file stem (`probe`, `probe-2`, `agent`).
    pub name: String,
    pub path: PathBuf,
    state: Mutex<DocState>,
    tx: watch::Sender<u64>,
}

impl Doc {
    fn state(&self) -> MutexGuard<'_, DocState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of the state.
    pub fn snapshot(&self) -> DocState {
        self.state().clone()
    }

    /// Items changed after `since`, with their indices, and the rest of the state.
    pub fn changes(&self, since: u64) -> (Vec<(usize, Item)>, DocState) {
        let s = self.state();
        let items = s
            .items
            .iter()
            .enumerate()
            .filter(|(_, it)| it.version > since)
            .map(|(i, it)| (i, it.clone()))
            .collect();
        let rest = DocState {
            items: vec![],
            version: s.version,
            running: s.running,
            next: s.next.clone(),
        };
        (items, rest)
    }

    /// Wakes when the document changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }

    fn change(&self, f: impl FnOnce(&mut DocState, u64)) {
        let v = {
            let mut s = self.state();
            s.version += 1;
            let v = s.version;
            f(&mut s, v);
            v
        };
        self.tx.send_replace(v);
    }
}

/// How a run is going.
#[derive(Debug, Clone)]
pub struct RunState {
    pub slug: String,
    pub dir: PathBuf,
    pub script: Option<String>,
    /// Unix seconds.
    pub started: f64,
    pub ended: Option<f64>,
    /// `running`, `ok`, `error`, `interrupted`.
    pub status: String,
    pub error: Option<String>,
    /// The slug of the run that followed it in this process (`--watch`).
    pub next: Option<String>,
    pub docs: Vec<Arc<Doc>>,
}

type InfoFn = Arc<dyn Fn() -> Value + Send + Sync>;

struct Run {
    state: RunState,
    /// The run's sandboxes and agents as JSON, read when a page asks.
    info: Option<InfoFn>,
}

/// Every run of this process and its documents.
pub struct Hub {
    runs: Mutex<Vec<Run>>,
    /// Bumped when a run or a document appears or a run ends.
    tx: watch::Sender<u64>,
}

static HUB: OnceLock<Hub> = OnceLock::new();

/// Turns the hub on (the view server does, before the first session of a run opens).
pub fn enable() -> &'static Hub {
    HUB.get_or_init(|| Hub {
        runs: Mutex::new(vec![]),
        tx: watch::channel(0).0,
    })
}

/// The hub, when the live view is on.
pub fn hub() -> Option<&'static Hub> {
    HUB.get()
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "run".into())
}

impl Hub {
    fn runs(&self) -> MutexGuard<'_, Vec<Run>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bump(&self) {
        self.tx.send_modify(|v| *v += 1);
    }

    /// Wakes when a run or a document appears or a run ends.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }

    /// The run whose folder is `dir`, made when new; returns its index.
    fn run_index(runs: &mut Vec<Run>, dir: &Path) -> usize {
        if let Some(i) = runs.iter().position(|r| r.state.dir == dir) {
            return i;
        }
        let base = file_name(dir);
        let mut slug = base.clone();
        let mut n = 2;
        while runs.iter().any(|r| r.state.slug == slug) {
            slug = format!("{base}-{n}");
            n += 1;
        }
        if let Some(prev) = runs.last_mut()
            && prev.state.next.is_none()
        {
            prev.state.next = Some(slug.clone());
        }
        runs.push(Run {
            state: RunState {
                slug,
                dir: dir.to_path_buf(),
                script: None,
                started: now(),
                ended: None,
                status: "running".into(),
                error: None,
                next: None,
                docs: vec![],
            },
            info: None,
        });
        runs.len() - 1
    }

    /// A run starts writing into `dir`; `info` gives its sandboxes and agents as JSON.
    /// Only the first call for a run counts.
    pub fn run_started(&self, dir: &Path, script: &str, info: InfoFn) {
        {
            let mut runs = self.runs();
            let i = Self::run_index(&mut runs, dir);
            if runs[i].info.is_some() {
                return;
            }
            runs[i].state.script = Some(script.to_string());
            runs[i].info = Some(info);
        }
        self.bump();
    }

    /// A run ended (`ok`, `error`, `interrupted`).
    pub fn run_ended(&self, dir: &Path, status: &str, error: Option<String>) {
        {
            let mut runs = self.runs();
            if let Some(r) = runs.iter_mut().find(|r| r.state.dir == dir) {
                r.state.status = status.to_string();
                r.state.error = error;
                r.state.ended = Some(now());
            }
        }
        self.bump();
    }

    /// The document written to `path`, made when new. A notebook's run is its folder, a
    /// transcript's the folder above `transcripts/`.
    pub fn open(&self, kind: Kind, path: &Path) -> Arc<Doc> {
        let dir = match kind {
            Kind::Notebook => path.parent(),
            Kind::Transcript => path.parent().and_then(Path::parent),
        }
        .unwrap_or(Path::new("."));
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let doc = {
            let mut runs = self.runs();
            let i = Self::run_index(&mut runs, dir);
            if let Some(d) = runs[i].state.docs.iter().find(|d| d.path == path) {
                return d.clone();
            }
            let doc = Arc::new(Doc {
                kind,
                run: runs[i].state.slug.clone(),
                name: name.clone(),
                path: path.to_path_buf(),
                state: Mutex::new(DocState::default()),
                tx: watch::channel(0).0,
            });
            // The same document in an earlier run now points here (`--watch`).
            let key = format!("{}/{}/{name}", doc.run, kind.segment());
            for earlier in runs[..i].iter().rev() {
                if let Some(d) = earlier
                    .state
                    .docs
                    .iter()
                    .find(|d| d.kind == kind && d.name == name)
                {
                    let k = key.clone();
                    d.change(|s, _| s.next = Some(k));
                }
            }
            runs[i].state.docs.push(doc.clone());
            doc
        };
        self.bump();
        doc
    }

    /// The runs, oldest first.
    pub fn list(&self) -> Vec<RunState> {
        self.runs().iter().map(|r| r.state.clone()).collect()
    }

    /// One run and its sandboxes and agents (`info`).
    pub fn run(&self, slug: &str) -> Option<(RunState, Value)> {
        let (state, info) = {
            let runs = self.runs();
            let r = runs.iter().find(|r| r.state.slug == slug)?;
            (r.state.clone(), r.info.clone())
        };
        let info = info.map(|f| f()).unwrap_or(Value::Null);
        Some((state, info))
    }

    /// A document by run slug, kind and name.
    pub fn doc(&self, run: &str, kind: Kind, name: &str) -> Option<Arc<Doc>> {
        let runs = self.runs();
        let r = runs.iter().find(|r| r.state.slug == run)?;
        r.state
            .docs
            .iter()
            .find(|d| d.kind == kind && d.name == name)
            .cloned()
    }

    /// The document written to `path`, if the hub has it.
    pub fn doc_at(&self, path: &Path) -> Option<Arc<Doc>> {
        let runs = self.runs();
        runs.iter()
            .flat_map(|r| r.state.docs.iter())
            .find(|d| d.path == path)
            .cloned()
    }
}

/// Where a writer publishes one document's changes (nothing when the view is off).
#[derive(Debug, Clone)]
pub struct Feed(Arc<Doc>);

impl Feed {
    /// A feed for the document at `path` when the live view is on.
    pub fn open(kind: Kind, path: &Path) -> Option<Feed> {
        hub().map(|h| Feed(h.open(kind, path)))
    }

    /// Sets item `i` (appends when `i` is the length).
    pub fn set(&self, i: usize, json: &str) {
        self.0.change(|s, v| {
            let item = Item::new(json, v);
            if i < s.items.len() {
                s.items[i] = item;
            } else {
                s.items.push(item);
            }
        });
    }

    /// Appends an item (a transcript line, without its newline).
    pub fn push(&self, json: &str) {
        let json = json.trim_end_matches('\n');
        self.0.change(|s, v| s.items.push(Item::new(json, v)));
    }

    /// Marks cell `i` as running from now, or no cell.
    pub fn running(&self, i: Option<usize>) {
        self.0.change(|s, _| s.running = i.map(|i| (i, now())));
    }

    pub fn doc(&self) -> &Arc<Doc> {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_get_what_changed_since_their_version() {
        let hub = Hub {
            runs: Mutex::new(vec![]),
            tx: watch::channel(0).0,
        };
        let d = hub.open(Kind::Notebook, Path::new("/o/exp-1/probe.ipynb"));
        let feed = Feed(d.clone());
        let rx = d.subscribe();
        feed.set(0, "{\"a\":1}");
        feed.set(1, "{\"b\":1}");
        assert!(rx.has_changed().unwrap());
        let (items, st) = d.changes(0);
        assert_eq!(items.len(), 2);
        assert_eq!(st.version, 2);
        feed.set(0, "{\"a\":2}");
        feed.running(Some(1));
        let (items, st) = d.changes(2);
        assert_eq!(
            items
                .iter()
                .map(|(i, it)| (*i, it.json.to_string()))
                .collect::<Vec<_>>(),
            vec![(0, "{\"a\":2}".to_string())]
        );
        assert_eq!(st.running.map(|r| r.0), Some(1));
        // A transcript belongs to the run above its folder; a rerun's notebook of the same
        // name is where the earlier one's page goes next.
        let t = hub.open(
            Kind::Transcript,
            Path::new("/o/exp-1/transcripts/agent.jsonl"),
        );
        assert_eq!((t.run.as_str(), t.name.as_str()), ("exp-1", "agent"));
        let again = hub.open(Kind::Notebook, Path::new("/o/exp-2/probe.ipynb"));
        assert_eq!(again.run, "exp-2");
        assert_eq!(d.snapshot().next.as_deref(), Some("exp-2/notebooks/probe"));
        assert_eq!(hub.list()[0].next.as_deref(), Some("exp-2"));
        assert!(Arc::ptr_eq(
            &hub.doc("exp-1", Kind::Transcript, "agent").unwrap(),
            &t
        ));
    }
}
