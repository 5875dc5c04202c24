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
pub mod automation;
pub mod config;
pub mod database;
pub mod email;
pub mod events;
pub mod http;
pub mod llm;
pub mod log;
mod plugin;
pub mod testing;
pub mod vector;
pub mod workflows;

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
            // The worlds import WASI 0.2 and wasi:http for other languages' sake; Rust
            // guests use the wasip2 crate's bindings of them (the `http` module does),
            // so they are not generated twice. Unused imports are dropped from the
            // component by wit-component.
            with: {
                "wasi:cli/environment@0.2.12": wasip2::cli::environment,
                "wasi:cli/exit@0.2.12": wasip2::cli::exit,
                "wasi:cli/stdin@0.2.12": wasip2::cli::stdin,
                "wasi:cli/stdout@0.2.12": wasip2::cli::stdout,
                "wasi:cli/stderr@0.2.12": wasip2::cli::stderr,
                "wasi:cli/terminal-input@0.2.12": wasip2::cli::terminal_input,
                "wasi:cli/terminal-output@0.2.12": wasip2::cli::terminal_output,
                "wasi:cli/terminal-stdin@0.2.12": wasip2::cli::terminal_stdin,
                "wasi:cli/terminal-stdout@0.2.12": wasip2::cli::terminal_stdout,
                "wasi:cli/terminal-stderr@0.2.12": wasip2::cli::terminal_stderr,
                "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
                "wasi:clocks/wall-clock@0.2.12": wasip2::clocks::wall_clock,
                "wasi:filesystem/types@0.2.12": wasip2::filesystem::types,
                "wasi:filesystem/preopens@0.2.12": wasip2::filesystem::preopens,
                "wasi:io/error@0.2.12": wasip2::io::error,
                "wasi:io/poll@0.2.12": wasip2::io::poll,
                "wasi:io/streams@0.2.12": wasip2::io::streams,
                "wasi:random/random@0.2.12": wasip2::random::random,
                "wasi:random/insecure@0.2.12": wasip2::random::insecure,
                "wasi:random/insecure-seed@0.2.12": wasip2::random::insecure_seed,
                "wasi:sockets/network@0.2.12": wasip2::sockets::network,
                "wasi:sockets/instance-network@0.2.12": wasip2::sockets::instance_network,
                "wasi:sockets/udp@0.2.12": wasip2::sockets::udp,
                "wasi:sockets/udp-create-socket@0.2.12": wasip2::sockets::udp_create_socket,
                "wasi:sockets/tcp@0.2.12": wasip2::sockets::tcp,
                "wasi:sockets/tcp-create-socket@0.2.12": wasip2::sockets::tcp_create_socket,
                "wasi:sockets/ip-name-lookup@0.2.12": wasip2::sockets::ip_name_lookup,
                "wasi:http/types@0.2.12": wasip2::http::types,
                "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
            },
        });
    }
    pub use crate::plugin::glue;
}
