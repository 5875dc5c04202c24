//! The wasmtime engine shared by every plugin: pooling allocator, copy-on-write
//! memory images, and epoch interruption driven by a dedicated thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;
use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::state::PluginState;
use crate::capabilities;

/// How often the epoch advances: a running plugin checks its deadline and yields to
/// the executor once per tick, so a call stops at most one tick (plus the time the OS
/// takes to schedule its thread) after its deadline. A tick costs a running guest a
/// clock read and a fiber switch (well under a microsecond), so ticks are short.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Engine-wide settings. Per-plugin limits live in [`super::Limits`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Instances that may run at once (pool size); more concurrent calls get an error.
    pub max_concurrent_instances: u32,
    /// The largest memory any plugin may be granted.
    pub max_memory_bytes: usize,
    /// Count fuel (instructions) so per-plugin fuel budgets can be enforced.
    pub fuel: bool,
    /// Bytes at the start of each memory slot kept resident between instances.
    pub keep_resident_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_concurrent_instances: 256,
            max_memory_bytes: 512 << 20,
            fuel: false,
            keep_resident_bytes: 512 << 10,
        }
    }
}

/// The engine, the linker with every host interface, and the epoch ticker.
pub struct WasmEngine {
    pub engine: Engine,
    pub linker: Linker<PluginState>,
    pub fuel: bool,
    ticker_stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for WasmEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmEngine")
            .field("fuel", &self.fuel)
            .finish()
    }
}

impl WasmEngine {
    pub fn new(config: &EngineConfig) -> Result<Self> {
        let mut pool = PoolingAllocationConfig::default();
        let instances = config.max_concurrent_instances;
        pool.total_component_instances(instances)
            // A wasm32-wasip2 component has a handful of core instances (the module
            // plus adapter shims), one memory and a few tables.
            .total_core_instances(instances * 8)
            .total_memories(instances)
            .total_tables(instances * 4)
            .total_stacks(instances)
            .max_memory_size(config.max_memory_bytes)
            // Reset the first bytes of a reused memory slot with memset instead of
            // decommitting them, so a new instance doesn't page-fault on them.
            .linear_memory_keep_resident(config.keep_resident_bytes);
        let mut wasm = Config::new();
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .memory_init_cow(true)
            .epoch_interruption(true)
            .consume_fuel(config.fuel);
        let engine = Engine::new(&wasm)?;

        let mut linker = Linker::new(&engine);
        // Components built with std import wasi:io and wasi:cli even when they use no
        // WASI, so WASI p2 is always linked; PluginState gives it nothing ambient.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        capabilities::add_to_linker(&mut linker)?;

        // A std thread, not a tokio task: a task can starve when guests spin on every
        // worker thread, and then no deadline would ever fire.
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let stop = ticker_stop.clone();
        let ticking = engine.clone();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticking.increment_epoch();
                }
            })?;
        Ok(WasmEngine {
            engine,
            linker,
            fuel: config.fuel,
            ticker_stop,
        })
    }

    /// A key for precompiled artifacts: changes whenever wasmtime's version or the
    /// settings that affect compiled code change.
    pub fn compatibility_key(&self) -> String {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        format!("{:016x}", hasher.finish())
    }
}

impl Drop for WasmEngine {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}
