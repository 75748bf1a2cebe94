//! The results of a sweep (`sweep(#{...})` in a script, see `script::api_sweep`): one
//! [`Row`] per item, appended to `results.jsonl` in the run folder as each item finishes
//! (and synced, so a killed run keeps every row it wrote), with `results.csv` rewritten
//! from the rows so far (written aside and renamed, so it is always whole).
//!
//! `seer run --resume RUN_DIR` reads the rows back ([`Results::open`] with `resume`): an
//! item whose parameters ([`key`]) have an `ok` row is not run again and keeps its row; the
//! others run. A line cut by a kill is skipped, rows of failed items are replaced by the
//! new attempt, and rows of items the sweep no longer has are moved to
//! `<stem>.unmatched.jsonl`, so nothing is lost.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How an item ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The closure returned; its map is the row's `result`.
    Ok,
    /// Every attempt raised an error; the last one is the row's `error`.
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
        }
    }
}

/// One item of a sweep, as `results.jsonl` holds it and `sweep` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    /// The item's position in the sweep's items (grid: in grid order).
    pub index: usize,
    /// The item's parameters, as given (a grid's: a map of one value per key).
    pub item: Value,
    pub status: Status,
    /// What the closure returned (a map; another value is `{"value": ...}`); `None` when
    /// the item failed.
    pub result: Option<Map<String, Value>>,
    /// The last attempt's error (`file:line:col: message`); `None` when the item is ok.
    pub error: Option<String>,
    /// Attempts made: 1, or more with retries.
    pub attempts: u32,
    /// RFC 3339, UTC, of the first attempt's start and the last attempt's end.
    pub started_at: String,
    pub ended_at: String,
    /// Seconds from the first attempt's start to the last attempt's end.
    pub duration_s: f64,
}

/// What a run records of one sweep in `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The sweep's `name` (`None`: the default files `results.jsonl` and `results.csv`).
    pub name: Option<String>,
    /// The results' file names in the run folder.
    pub jsonl: String,
    pub csv: String,
    pub items: usize,
    pub ok: usize,
    pub failed: usize,
    /// Items whose `ok` row came from the run that was resumed (not run again).
    pub resumed: usize,
    /// Whether every item was run (false when the run was stopped during the sweep).
    pub complete: bool,
}

/// The identity of an item for `--resume`: its parameters as JSON, keys sorted.
pub fn key(item: &Value) -> String {
    // serde_json's maps are sorted by key (no `preserve_order`), so this is canonical.
    item.to_string()
}

/// The file names of the sweep called `name`: `results.jsonl` / `results.csv`, or
/// `results-<name>.*`.
pub fn file_stem(name: Option<&str>) -> String {
    match name {
        None => "results".to_string(),
        Some(n) => format!("results-{n}"),
    }
}

/// What resuming found in an earlier `results.jsonl`.
#[derive(Debug, Default)]
pub struct Resumed {
    /// The `ok` rows, by [`key`] (the last row of a key wins).
    pub done: HashMap<String, Row>,
    /// Lines that were not a row (a line cut by a kill).
    pub unreadable: usize,
    /// Rows of failed items (their items run again).
    pub failed: usize,
}

/// The results files of one sweep, open for appending.
pub struct Results {
    jsonl: PathBuf,
    csv: PathBuf,
    file: std::fs::File,
    /// Every row written, for the CSV.
    rows: Vec<Row>,
}

impl Results {
    /// Creates `<stem>.jsonl` and `<stem>.csv` in `dir`; with `resume`, first reads the
    /// rows an earlier run wrote there (see the module docs) and keeps those of `keys`
    /// (the current items, by key, with their index) that are ok. Returns the open files
    /// and what was found.
    pub fn open(
        dir: &Path,
        stem: &str,
        resume: bool,
        keys: &HashMap<String, usize>,
    ) -> Result<(Self, Resumed)> {
        crate::paths::create_private_dir(dir)
            .with_context(|| format!("creating the run folder {}", dir.display()))?;
        let jsonl = dir.join(format!("{stem}.jsonl"));
        let csv = dir.join(format!("{stem}.csv"));
        let mut resumed = Resumed::default();
        if resume && jsonl.exists() {
            let text = std::fs::read_to_string(&jsonl)
                .with_context(|| format!("reading {}", jsonl.display()))?;
            let mut unmatched = vec![];
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let Ok(mut row) = serde_json::from_str::<Row>(line) else {
                    resumed.unreadable += 1;
                    continue;
                };
                let k = key(&row.item);
                match keys.get(&k) {
                    None => unmatched.push(row),
                    Some(&index) if row.status == Status::Ok => {
                        row.index = index;
                        resumed.done.insert(k, row);
                    }
                    Some(_) => {
                        resumed.failed += 1;
                        resumed.done.remove(&k);
                    }
                }
            }
            if !unmatched.is_empty() {
                let aside = dir.join(format!("{stem}.unmatched.jsonl"));
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&aside)
                    .with_context(|| format!("opening {}", aside.display()))?;
                for row in &unmatched {
                    writeln!(f, "{}", serde_json::to_string(row)?)
                        .with_context(|| format!("writing {}", aside.display()))?;
                }
                f.sync_data()?;
            }
        }
        // The kept rows, in item order, become the new file (written aside, then renamed).
        let mut rows: Vec<Row> = resumed.done.values().cloned().collect();
        rows.sort_by_key(|r| r.index);
        let mut text = String::new();
        for row in &rows {
            text.push_str(&serde_json::to_string(row)?);
            text.push('\n');
        }
        write_whole(&jsonl, text.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&jsonl)
            .with_context(|| format!("opening {}", jsonl.display()))?;
        let results = Self {
            jsonl,
            csv,
            file,
            rows,
        };
        results.write_csv()?;
        Ok((results, resumed))
    }

    pub fn jsonl_path(&self) -> &Path {
        &self.jsonl
    }

    pub fn csv_path(&self) -> &Path {
        &self.csv
    }

    /// Appends `row` to `results.jsonl` (synced) and rewrites `results.csv`.
    pub fn record(&mut self, row: Row) -> Result<()> {
        let mut line = serde_json::to_string(&row)?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("writing {}", self.jsonl.display()))?;
        self.rows.push(row);
        self.write_csv()
    }

    fn write_csv(&self) -> Result<()> {
        let mut rows: Vec<&Row> = self.rows.iter().collect();
        rows.sort_by_key(|r| r.index);
        write_whole(&self.csv, csv(&rows).as_bytes())
    }
}

/// Writes `path` whole: to a temporary file beside it, then renamed over it.
fn write_whole(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    std::fs::write(&tmp, data).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// The fixed columns before the item's and after the result's.
const LEADING: [&str; 2] = ["index", "status"];
const TRAILING: [&str; 3] = ["error", "attempts", "duration_s"];

/// Where a column's value comes from.
enum Column {
    Index,
    Status,
    /// The whole item (an item that is not a map).
    Item,
    ItemField(String),
    ResultField(String),
    Error,
    Attempts,
    Duration,
}

/// `rows` as CSV (RFC 4180, `\n` line ends): `index`, `status`, the item's fields (one
/// `item` column for items that are not maps), the result's fields, `error`, `attempts`,
/// `duration_s`. Fields in order of first appearance; a name already taken by an earlier
/// column is prefixed with `item.` or `result.`. Strings are written as they are, `null`
/// as an empty cell, other values as JSON.
pub fn csv(rows: &[&Row]) -> String {
    let mut columns: Vec<(String, Column)> = vec![
        ("index".into(), Column::Index),
        ("status".into(), Column::Status),
    ];
    let mut taken: Vec<String> = LEADING.iter().map(|s| s.to_string()).collect();
    taken.extend(TRAILING.iter().map(|s| s.to_string()));
    let name = |group: &str, field: &str, taken: &mut Vec<String>| {
        let n = if taken.iter().any(|t| t == field) {
            format!("{group}.{field}")
        } else {
            field.to_string()
        };
        taken.push(n.clone());
        n
    };
    let mut item_fields: Vec<String> = vec![];
    let mut whole_item = false;
    for r in rows {
        match &r.item {
            Value::Object(m) => {
                for k in m.keys() {
                    if !item_fields.contains(k) {
                        item_fields.push(k.clone());
                    }
                }
            }
            _ => whole_item = true,
        }
    }
    if whole_item {
        let n = name("item", "item", &mut taken);
        columns.push((n, Column::Item));
    }
    for f in item_fields {
        let n = name("item", &f, &mut taken);
        columns.push((n, Column::ItemField(f)));
    }
    let mut result_fields: Vec<String> = vec![];
    for r in rows {
        for k in r.result.iter().flat_map(|m| m.keys()) {
            if !result_fields.contains(k) {
                result_fields.push(k.clone());
            }
        }
    }
    for f in result_fields {
        let n = name("result", &f, &mut taken);
        columns.push((n, Column::ResultField(f)));
    }
    columns.push(("error".into(), Column::Error));
    columns.push(("attempts".into(), Column::Attempts));
    columns.push(("duration_s".into(), Column::Duration));

    let mut out = String::new();
    let header: Vec<String> = columns.iter().map(|(n, _)| quote(n)).collect();
    out.push_str(&header.join(","));
    out.push('\n');
    for r in rows {
        let cells: Vec<String> = columns
            .iter()
            .map(|(_, c)| {
                let v = match c {
                    Column::Index => Value::from(r.index),
                    Column::Status => Value::from(r.status.as_str()),
                    Column::Item if !r.item.is_object() => r.item.clone(),
                    Column::Item => Value::Null,
                    Column::ItemField(f) => r.item.get(f).cloned().unwrap_or(Value::Null),
                    Column::ResultField(f) => r
                        .result
                        .as_ref()
                        .and_then(|m| m.get(f))
                        .cloned()
                        .unwrap_or(Value::Null),
                    Column::Error => r.error.clone().map(Value::from).unwrap_or(Value::Null),
                    Column::Attempts => Value::from(r.attempts),
                    Column::Duration => Value::from(r.duration_s),
                };
                quote(&cell(&v))
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A CSV field: quoted when it holds a comma, a quote or a line break (quotes doubled).
fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The items of a grid: every combination of the values of `grid` (keys in order, the
/// last varying fastest); a value that is not an array is fixed.
pub fn grid_items(grid: &BTreeMap<String, Vec<Value>>) -> Vec<Value> {
    let mut items: Vec<Map<String, Value>> = vec![Map::new()];
    for (k, values) in grid {
        let mut next = Vec::with_capacity(items.len() * values.len());
        for partial in &items {
            for v in values {
                let mut m = partial.clone();
                m.insert(k.clone(), v.clone());
                next.push(m);
            }
        }
        items = next;
    }
    items.into_iter().map(Value::Object).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(index: usize, item: Value, result: Option<Value>, error: Option<&str>) -> Row {
        Row {
            index,
            item,
            status: if error.is_some() {
                Status::Failed
            } else {
                Status::Ok
            },
            result: result.and_then(|v| v.as_object().cloned()),
            error: error.map(str::to_string),
            attempts: 1,
            started_at: "2026-01-01T00:00:00.000Z".into(),
            ended_at: "2026-01-01T00:00:01.500Z".into(),
            duration_s: 1.5,
        }
    }

    #[test]
    fn csv_has_the_fixed_columns_the_items_and_the_results() {
        let rows = [
            row(
                0,
                json!({"layer": 1, "alpha": 0.5}),
                Some(json!({"score": 0.25, "note": "a, \"b\"", "status": "x"})),
                None,
            ),
            row(
                1,
                json!({"layer": 2, "alpha": 0.5}),
                None,
                Some("main.rhai:3:9: bad\nline"),
            ),
        ];
        let refs: Vec<&Row> = rows.iter().collect();
        assert_eq!(
            csv(&refs),
            "index,status,alpha,layer,note,score,result.status,error,attempts,duration_s\n\
             0,ok,0.5,1,\"a, \"\"b\"\"\",0.25,x,,1,1.5\n\
             1,failed,0.5,2,,,,\"main.rhai:3:9: bad\nline\",1,1.5\n"
        );
        let plain = [row(0, json!("gpt2"), Some(json!({"n": [1, 2]})), None)];
        let refs: Vec<&Row> = plain.iter().collect();
        assert_eq!(
            csv(&refs),
            "index,status,item,n,error,attempts,duration_s\n0,ok,gpt2,\"[1,2]\",,1,1.5\n"
        );
    }

    #[test]
    fn a_grid_is_every_combination_with_the_last_key_fastest() {
        let mut g = BTreeMap::new();
        g.insert("alpha".to_string(), vec![json!(0.5), json!(1.0)]);
        g.insert("layer".to_string(), vec![json!(1), json!(2), json!(3)]);
        let items = grid_items(&g);
        let keys: Vec<String> = items.iter().map(key).collect();
        assert_eq!(
            keys,
            [
                r#"{"alpha":0.5,"layer":1}"#,
                r#"{"alpha":0.5,"layer":2}"#,
                r#"{"alpha":0.5,"layer":3}"#,
                r#"{"alpha":1.0,"layer":1}"#,
                r#"{"alpha":1.0,"layer":2}"#,
                r#"{"alpha":1.0,"layer":3}"#,
            ]
        );
        assert_eq!(grid_items(&BTreeMap::new()), vec![json!({})]);
    }

    #[test]
    fn resuming_keeps_ok_rows_skips_a_cut_line_and_sets_aside_unknown_items() {
        let dir = tempfile::tempdir().unwrap();
        let keep = row(3, json!({"i": 1}), Some(json!({"v": 1})), None);
        let failed = row(4, json!({"i": 2}), None, Some("boom"));
        let gone = row(5, json!({"i": 9}), Some(json!({"v": 9})), None);
        let mut text = String::new();
        for r in [&keep, &failed, &gone] {
            text.push_str(&serde_json::to_string(r).unwrap());
            text.push('\n');
        }
        text.push_str(r#"{"index": 6, "item": {"i": 3}, "sta"#);
        std::fs::write(dir.path().join("results.jsonl"), &text).unwrap();
        let keys: HashMap<String, usize> = [(json!({"i": 1}), 0), (json!({"i": 2}), 1)]
            .iter()
            .map(|(v, i)| (key(v), *i))
            .collect();
        let (mut results, resumed) = Results::open(dir.path(), "results", true, &keys).unwrap();
        assert_eq!((resumed.unreadable, resumed.failed), (1, 1));
        let mut kept = keep.clone();
        kept.index = 0;
        assert_eq!(
            resumed.done.values().cloned().collect::<Vec<_>>(),
            vec![kept.clone()]
        );
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert_eq!(
            read("results.jsonl"),
            format!("{}\n", serde_json::to_string(&kept).unwrap())
        );
        assert_eq!(
            read("results.unmatched.jsonl"),
            format!("{}\n", serde_json::to_string(&gone).unwrap())
        );
        let mut again = failed.clone();
        again.index = 1;
        results.record(again.clone()).unwrap();
        let rows: Vec<Row> = read("results.jsonl")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows, vec![kept, again]);
        assert_eq!(
            read("results.csv"),
            "index,status,i,v,error,attempts,duration_s\n0,ok,1,1,,1,1.5\n1,failed,2,,boom,1,1.5\n"
        );
        // Without `resume` the files start empty.
        let (_, resumed) = Results::open(dir.path(), "results", false, &keys).unwrap();
        assert!(resumed.done.is_empty());
        assert_eq!(read("results.jsonl"), "");
        assert_eq!(
            read("results.csv"),
            "index,status,error,attempts,duration_s\n"
        );
    }
}
