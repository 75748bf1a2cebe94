//! Notebook sessions: a kernel, the .ipynb document it fills, and the operations agents
//! and scripts use (execute, markdown, edit, interrupt, restart, resume).

pub mod mcp;
pub mod nbformat;
pub mod render;
pub mod session;

pub use crate::kernel::RunStatus;

use crate::kernel::Output;

/// The result of running code in a notebook session: what scripts get (as a map) and what
/// the MCP tools render for agents.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CellRun {
    /// Index of the cell in the notebook, the one `edit_cell` takes; `None` for hidden
    /// executions, which add no cell.
    pub cell_index: Option<usize>,
    pub execution_count: Option<i64>,
    pub outputs: Vec<Output>,
    pub status: RunStatus,
    /// e.g. "the kernel died; it was restarted and its state is lost"
    pub note: Option<String>,
}
