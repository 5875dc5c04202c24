//! The host's one `bindgen!`, from `wit/` (world `host`: the union of the plugin
//! worlds). Host functions are async so they can do I/O without blocking a thread.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "host",
    imports: { default: async },
    exports: { default: async },
});

pub use agenthost::plugin::types::{
    CallContext, Error, NodeDescriptor, NodeOutput, ToolDescriptor,
};
pub use exports::agenthost::plugin::{nodes, tools};
