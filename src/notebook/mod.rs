//! Notebook sessions: a kernel, the .ipynb document it fills, and the operations agents
//! and scripts use (execute, markdown, edit, interrupt, restart, resume).

pub mod nbformat;
pub mod notebook_server;
pub mod session;

/// How an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Ok,
    Error,
    Aborted,
    TimedOut,
    KernelDied,
}
