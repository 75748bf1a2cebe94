//! Notebook sessions: a kernel, the .ipynb document it fills, and the operations agents
//! and scripts use (execute, markdown, edit, interrupt, restart, resume).

pub mod mcp;
pub mod nbformat;
pub mod render;
pub mod session;

pub use crate::kernel::RunStatus;
