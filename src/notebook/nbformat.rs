//! The Jupyter notebook format (nbformat v4.5) as serde types: what seer writes to
//! `<name>.ipynb` and reads back to resume a session.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A code cell's outputs and multi-line text are the kernel's types.
pub use crate::kernel::{MultiLine, Output, bundle_text};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cell_type", rename_all = "snake_case")]
pub enum Cell {
    Code {
        id: String,
        #[serde(default)]
        metadata: BTreeMap<String, Value>,
        source: MultiLine,
        execution_count: Option<i64>,
        #[serde(default)]
        outputs: Vec<Output>,
    },
    Markdown {
        id: String,
        #[serde(default)]
        metadata: BTreeMap<String, Value>,
        source: MultiLine,
    },
    Raw {
        id: String,
        #[serde(default)]
        metadata: BTreeMap<String, Value>,
        source: MultiLine,
    },
}

impl Cell {
    pub fn source(&self) -> String {
        match self {
            Cell::Code { source, .. }
            | Cell::Markdown { source, .. }
            | Cell::Raw { source, .. } => source.text(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notebook {
    pub cells: Vec<Cell>,
    #[serde(default)]
    pub metadata: BTreeMap<String, Value>,
    pub nbformat: u32,
    pub nbformat_minor: u32,
}

impl Notebook {
    /// An empty Python 3 notebook with kernelspec and language_info metadata.
    pub fn new_python(python_version: &str) -> Self {
        let mut metadata = BTreeMap::new();
        metadata.insert(
            "kernelspec".into(),
            serde_json::json!({"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}),
        );
        metadata.insert(
            "language_info".into(),
            serde_json::json!({"name": "python", "version": python_version, "mimetype": "text/x-python",
                "file_extension": ".py", "codemirror_mode": {"name": "ipython", "version": 3},
                "pygments_lexer": "ipython3", "nbconvert_exporter": "python"}),
        );
        Self {
            cells: vec![],
            metadata,
            nbformat: 4,
            nbformat_minor: 5,
        }
    }
}

/// A new cell id: 8 hex characters, unique enough within a notebook (nbformat 4.5).
pub fn new_cell_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_jupyter_json() {
        let text = r##"{"cells":[{"cell_type":"code","id":"a1","metadata":{},"source":["x = 1\n","x"],
          "execution_count":1,"outputs":[{"output_type":"execute_result","execution_count":1,
          "data":{"text/plain":["1"]},"metadata":{}},{"output_type":"stream","name":"stdout","text":"hi\n"},
          {"output_type":"error","ename":"E","evalue":"v","traceback":["t"]}]},
          {"cell_type":"markdown","id":"b2","metadata":{},"source":"# T"}],
          "metadata":{},"nbformat":4,"nbformat_minor":5}"##;
        let nb: Notebook = serde_json::from_str(text).unwrap();
        assert_eq!(nb.cells.len(), 2);
        assert_eq!(nb.cells[0].source(), "x = 1\nx");
        assert_eq!(nb.cells[1].source(), "# T");
        let again: Notebook = serde_json::from_str(&serde_json::to_string(&nb).unwrap()).unwrap();
        assert_eq!(again, nb);
        assert_eq!(
            MultiLine::from_text("a\nb"),
            MultiLine::Lines(vec!["a\n".into(), "b".into()])
        );
    }
}
