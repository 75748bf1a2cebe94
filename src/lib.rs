//! seer: a Rust host for interpretability experiments written in Rhai.
//!
//! The binary (`src/main.rs`) is a thin shell over this library: `cli` parses the command
//! line, `script` runs Rhai scripts against the API, `sandbox` provisions the environments
//! those scripts ask for.

pub mod agent;
pub mod cancel;
pub mod cli;
pub mod config;
pub mod kernel;
pub mod live;
pub mod mcp_http;
pub mod notebook;
pub mod output;
pub mod paths;
pub mod process;
pub mod progress;
pub mod python_syntax;
pub mod refusals;
pub mod repl;
pub mod sandbox;
pub mod scoped;
pub mod script;
pub mod secrets;
pub mod session_setup;
pub mod shell_session;
pub mod sweep;
#[doc(hidden)]
pub mod testenv;
pub mod toolkit;
pub mod view;
pub mod warm;
pub mod workspace;
