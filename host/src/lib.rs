//! Agenthost: a server that hosts AI agents whose tools and workflow steps are
//! WebAssembly components. See DESIGN.md for the architecture.

pub mod agents;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod automation;
pub mod capabilities;
pub mod cli;
pub mod config;
pub mod data;
pub mod db;
pub mod embeddings;
pub mod error;
pub mod events;
pub mod http;
pub mod llm;
pub mod mcp;
pub mod net;
pub mod nul;
pub mod plugin_logs;
pub mod registry;
pub mod runtime;
pub mod server;
pub mod state;
pub mod support;
pub mod telemetry;
pub mod vector;
pub mod workflows;
pub mod workspaces;

pub use config::Config;
pub use server::Server;
