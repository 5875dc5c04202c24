//! The host's one `bindgen!`, from `wit/` (world `host`: the union of the plugin
//! worlds). Host functions are async so they can do I/O without blocking a thread.
//!
//! The worlds also import WASI and `wasi:http` (so authors in other languages see the
//! whole contract); those interfaces are implemented by wasmtime-wasi and
//! wasmtime-wasi-http, so their bindings are mapped onto those crates' own instead of
//! being generated a second time.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "host",
    imports: { default: async },
    exports: { default: async },
    with: {
        "wasi": wasmtime_wasi::p2::bindings,
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
    },
});

pub use agenthost::plugin::types::{
    CallContext, Error, NodeDescriptor, NodeOutput, ToolDescriptor,
};
pub use exports::agenthost::plugin::{nodes, tools};
