//! `agenthost-sdk`: write Agenthost plugins in Rust.
//!
//! A tool plugin is a type implementing [`ToolPlugin`], exported with
//! [`export_tool_plugin!`] from a crate built for `wasm32-wasip2`:
//!
//! ```
//! use agenthost_sdk::{CallContext, Error, ToolPlugin, ToolSpec, log};
//! use serde_json::{Value, json};
//!
//! struct Hello;
//!
//! impl ToolPlugin for Hello {
//!     fn tools() -> Vec<ToolSpec> {
//!         vec![ToolSpec::new(
//!             "greet",
//!             "Greets someone by name",
//!             json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}),
//!             json!({"type": "object", "properties": {"greeting": {"type": "string"}}}),
//!         )]
//!     }
//!
//!     fn invoke(ctx: &CallContext, tool: &str, input: Value) -> Result<Value, Error> {
//!         match tool {
//!             "greet" => {
//!                 let name = input["name"].as_str().ok_or(Error::invalid("name must be a string"))?;
//!                 log::info(&format!("greeting {name} for workspace {}", ctx.workspace_id));
//!                 Ok(json!({ "greeting": format!("Hello, {name}!") }))
//!             }
//!             other => Err(Error::NotFound(format!("no tool {other}"))),
//!         }
//!     }
//! }
//!
//! // In the plugin crate: agenthost_sdk::export_tool_plugin!(Hello);
//! # let ctx = CallContext::for_tests("ws");
//! # assert_eq!(Hello::invoke(&ctx, "greet", json!({"name": "Ada"})).unwrap()["greeting"], "Hello, Ada!");
//! ```
//!
//! Host functions ([`log`], [`config`], [`email`], [`database`], [`llm`]) talk to the host inside a component; in a
//! native build (your unit tests) they talk to an in-memory [`testing::TestHost`].
#![deny(missing_docs)]

pub mod agents;
pub mod config;
pub mod database;
pub mod email;
pub mod http;
pub mod llm;
pub mod log;
mod plugin;
pub mod testing;
pub mod vector;

pub use plugin::{
    CallContext, Error, NodeOutput, NodePlugin, NodeSpec, ToolPlugin, ToolSpec, typed,
};

/// Re-exported so a plugin needs no other dependency than this SDK.
pub use serde;
/// Re-exported so a plugin needs no other dependency than this SDK.
pub use serde_json;

/// The version of the `agenthost:plugin` WIT package this SDK targets.
pub const WIT_PACKAGE_VERSION: &str = "0.1.0";

/// Raw bindings and glue used by the export macros. Not a stable API.
#[doc(hidden)]
pub mod __private {
    /// The one `generate!` of the SDK, from the repository's `wit/`.
    #[allow(missing_docs, clippy::all, unsafe_code)]
    pub mod bindings {
        wit_bindgen::generate!({
            path: "../wit",
            world: "host",
            pub_export_macro: true,
            export_macro_name: "__export_host",
            default_bindings_module: "agenthost_sdk::__private::bindings",
        });
    }
    pub use crate::plugin::glue;
}
