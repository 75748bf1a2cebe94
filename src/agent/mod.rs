//! The agent harness: connections to MCP servers (this module), providers and the loop
//! (arriving with the agent issue).

pub mod claude_code;
pub mod mcp_client;
pub mod providers;
pub mod run;
