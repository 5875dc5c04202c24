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

/// The runtime's settings from the command line (here, not in `config`, so the
/// configuration knows nothing of the layers above it).
impl crate::config::Config {
    /// Per-call limits a plugin gets unless its manifest asks otherwise.
    pub fn plugin_limits(&self) -> Limits {
        Limits {
            memory_bytes: usize::try_from(self.plugin_memory_mb << 20).unwrap_or(usize::MAX),
            timeout_ms: u64::try_from(self.plugin_timeout.as_millis()).unwrap_or(u64::MAX),
            fuel: self.plugin_fuel,
        }
    }

    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            max_concurrent_instances: self.plugin_instances,
            max_memory_bytes: usize::try_from(self.plugin_max_memory_mb << 20)
                .unwrap_or(usize::MAX),
            fuel: self.plugin_fuel.is_some(),
            keep_resident_bytes: self.plugin_keep_resident_kb << 10,
        }
    }
}
