//! Notebook sessions: a kernel, the .ipynb document it fills, and the operations agents
//! and scripts use (execute, markdown, edit, interrupt, restart, resume).

pub mod nbformat;
pub mod notebook_server;
pub mod session;

pub use crate::kernel::RunStatus;
