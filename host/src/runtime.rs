//! The WebAssembly runtime: one engine for every plugin, a fresh store per call.

pub mod bindings;
pub mod engine;
pub mod plugin;
pub mod state;
pub mod stderr;

pub use engine::{EngineConfig, WasmEngine};
pub use plugin::{CallOutcome, InvokeError, Limits, LoadError, LoadedPlugin, PluginKind, isolated};

use wasmtime::component::Component;

/// Parse, validate and compile a component (the whole binary is checked here).
pub fn compile(engine: &WasmEngine, bytes: &[u8]) -> Result<Component, LoadError> {
    if !bytes.starts_with(b"\0asm") {
        return Err(LoadError::Malformed(
            "the file does not start with the WebAssembly magic bytes `\\0asm`".into(),
        ));
    }
    Component::new(&engine.engine, bytes).map_err(|e| LoadError::Malformed(format!("{e:#}")))
}
