//! The agent harness: connections to MCP servers (this module), providers and the loop
//! and the loop.

pub mod chat_terminal;
pub mod claude_code;
pub mod config;
pub mod context;
pub mod live_log;
pub mod mcp_client;
pub mod pricing;
pub mod providers;
pub mod run;
pub mod transcript;
