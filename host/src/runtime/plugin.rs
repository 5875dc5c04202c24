//! A loaded plugin version: its pre-linked component and what it described. Every call
//! gets a fresh store and instance, so calls share nothing and a trap or a limit hit
//! ends only the call that caused it.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wasmtime::component::{Component, InstancePre};
use wasmtime::{PoolConcurrencyLimitError, Store, Trap, UpdateDeadline};

use super::bindings::{
    CallContext, Error, NodeDescriptor, NodeOutput, ToolDescriptor, nodes, tools,
};
use super::engine::WasmEngine;
use super::state::{MemoryCapExceeded, PluginState};
use crate::capabilities::CallGrants;

/// What a plugin offers: tools to agents or node types to workflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    Tool,
    Node,
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Tool => "tool",
            PluginKind::Node => "node",
        }
    }

    /// The WIT export a component of this kind must have.
    pub fn required_export(self) -> &'static str {
        match self {
            PluginKind::Tool => "agenthost:plugin/tools@0.1.0",
            PluginKind::Node => "agenthost:plugin/nodes@0.1.0",
        }
    }
}

/// Per-call limits of a plugin version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Linear memory cap in bytes.
    pub memory_bytes: usize,
    /// Wall-clock deadline of one call, in milliseconds.
    pub timeout_ms: u64,
    /// Fuel budget of one call (only enforced when the engine counts fuel).
    pub fuel: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            timeout_ms: 10_000,
            fuel: None,
        }
    }
}

impl Limits {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// Why a component could not be loaded as a plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("not a valid WebAssembly component: {0}")]
    Malformed(String),
    #[error("the component does not fit the {kind} world: {reason}")]
    WrongWorld { kind: &'static str, reason: String },
    #[error("the component's describe() failed: {0}")]
    Describe(String),
    #[error("invalid descriptor: {0}")]
    Descriptor(String),
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The plugin ran and returned an error variant.
    #[error("{}", describe_plugin_error(.0))]
    Plugin(Error),
    #[error("the plugin exceeded its {0:?} time limit and was stopped")]
    Timeout(Duration),
    #[error("{0}")]
    MemoryCap(String),
    #[error("the plugin used up its fuel budget and was stopped")]
    FuelExhausted,
    #[error("the plugin crashed: {0}")]
    Trap(String),
    #[error("no capacity to run the plugin now: {0}")]
    Capacity(String),
}

pub fn describe_plugin_error(error: &Error) -> String {
    match error {
        Error::Denied(m) => format!("denied: {m}"),
        Error::NotFound(m) => format!("not found: {m}"),
        Error::Invalid(m) => format!("invalid: {m}"),
        Error::Unavailable(m) => format!("unavailable: {m}"),
        Error::Internal(m) => format!("internal: {m}"),
    }
}

impl InvokeError {
    /// A short name for metrics, logs and the invocation record.
    pub fn outcome(&self) -> &'static str {
        match self {
            InvokeError::Plugin(_) => "tool_error",
            InvokeError::Timeout(_) => "timeout",
            InvokeError::MemoryCap(_) => "memory_limit",
            InvokeError::FuelExhausted => "fuel_exhausted",
            InvokeError::Trap(_) => "trap",
            InvokeError::Capacity(_) => "no_capacity",
        }
    }

    fn classify(error: wasmtime::Error, limits: &Limits) -> Self {
        for cause in error.chain() {
            if let Some(cap) = cause.downcast_ref::<MemoryCapExceeded>() {
                return InvokeError::MemoryCap(cap.to_string());
            }
            if let Some(pool) = cause.downcast_ref::<PoolConcurrencyLimitError>() {
                return InvokeError::Capacity(pool.to_string());
            }
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => InvokeError::Timeout(limits.timeout()),
            Some(Trap::OutOfFuel) => InvokeError::FuelExhausted,
            Some(trap) => InvokeError::Trap(trap.to_string()),
            None => InvokeError::Trap(format!("{error:#}")),
        }
    }
}

/// A plugin version ready to run.
pub struct LoadedPlugin {
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    pub limits: Limits,
    pub tools: Vec<ToolDescriptor>,
    pub nodes: Vec<NodeDescriptor>,
    pre: InstancePre<PluginState>,
    tools_export: Option<tools::GuestIndices>,
    nodes_export: Option<nodes::GuestIndices>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("kind", &self.kind)
            .finish()
    }
}

impl LoadedPlugin {
    /// Link the component, check it has its kind's export, and ask it to describe
    /// itself (in a store with the plugin's own limits).
    pub async fn load(
        engine: &WasmEngine,
        component: &Component,
        name: &str,
        version: &str,
        kind: PluginKind,
        limits: Limits,
    ) -> Result<Self, LoadError> {
        let wrong_world = |reason: String| LoadError::WrongWorld {
            kind: kind.as_str(),
            reason,
        };
        let pre = engine
            .linker
            .instantiate_pre(component)
            .map_err(|e| wrong_world(format!("{e:#}")))?;
        let mut plugin = LoadedPlugin {
            name: name.to_string(),
            version: version.to_string(),
            kind,
            limits,
            tools: Vec::new(),
            nodes: Vec::new(),
            tools_export: None,
            nodes_export: None,
            pre,
        };
        let missing = |e: wasmtime::Error| {
            wrong_world(format!("missing export `{}` ({e})", kind.required_export()))
        };
        let context = CallContext {
            workspace_id: String::new(),
            plugin: name.to_string(),
            version: version.to_string(),
            request_id: "describe".to_string(),
        };
        let mut store = plugin.new_store(engine, context, CallGrants::default());
        let instance = plugin
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| LoadError::Describe(format!("{e:#}")))?;
        match kind {
            PluginKind::Tool => {
                let indices = tools::GuestIndices::new(&plugin.pre).map_err(missing)?;
                let guest = indices
                    .load(&mut store, &instance)
                    .map_err(|e| wrong_world(format!("{e:#}")))?;
                plugin.tools = guest
                    .call_describe(&mut store)
                    .await
                    .map_err(|e| LoadError::Describe(format!("{e:#}")))?;
                plugin.tools_export = Some(indices);
                check_tools(&plugin.tools)?;
            }
            PluginKind::Node => {
                let indices = nodes::GuestIndices::new(&plugin.pre).map_err(missing)?;
                let guest = indices
                    .load(&mut store, &instance)
                    .map_err(|e| wrong_world(format!("{e:#}")))?;
                plugin.nodes = guest
                    .call_describe(&mut store)
                    .await
                    .map_err(|e| LoadError::Describe(format!("{e:#}")))?;
                plugin.nodes_export = Some(indices);
                check_nodes(&plugin.nodes)?;
            }
        }
        Ok(plugin)
    }

    /// A store with this plugin's limits (public for the benchmarks).
    pub fn new_store(
        &self,
        engine: &WasmEngine,
        context: CallContext,
        grants: CallGrants,
    ) -> Store<PluginState> {
        let deadline = Instant::now() + self.limits.timeout();
        let state = PluginState::new(context, grants, self.limits.memory_bytes, deadline);
        let mut store = Store::new(&engine.engine, state);
        store.limiter(|state| &mut state.limits);
        // On every epoch tick: past the deadline, trap; otherwise yield to the async
        // executor. A busy plugin thus never holds a tokio worker for more than a
        // tick, and the deadline still holds to within one tick. tokio's yield_now
        // (unlike a plain re-wake) lets the scheduler poll I/O before resuming us, so
        // spinning plugins can't starve the server's sockets.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            Ok(if Instant::now() >= ctx.data().deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))
            })
        });
        if engine.fuel {
            // Fuel is counted engine-wide; a plugin without a budget gets no limit.
            let _ = store.set_fuel(self.limits.fuel.unwrap_or(u64::MAX));
        }
        store
    }

    /// A fresh store and instance for one call (public for the benchmarks).
    pub async fn instantiate(
        &self,
        engine: &WasmEngine,
        context: CallContext,
        grants: CallGrants,
    ) -> Result<(Store<PluginState>, wasmtime::component::Instance), InvokeError> {
        let mut store = self.new_store(engine, context, grants);
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| InvokeError::classify(e, &self.limits))?;
        Ok((store, instance))
    }

    /// The export indices of the tools interface (public for the benchmarks).
    #[doc(hidden)]
    pub fn tools_export(&self) -> Option<&tools::GuestIndices> {
        self.tools_export.as_ref()
    }

    fn no_such_export(&self, what: &str) -> InvokeError {
        InvokeError::Plugin(Error::NotFound(format!(
            "{} is a {} plugin and has no {what}",
            self.name,
            self.kind.as_str()
        )))
    }

    /// Run one tool in a fresh instance. The store is dropped afterwards, whatever
    /// happened (an instance can't be re-entered after a trap anyway).
    pub async fn invoke_tool(
        &self,
        engine: &WasmEngine,
        context: CallContext,
        grants: CallGrants,
        tool: &str,
        input: &str,
    ) -> Result<String, InvokeError> {
        let indices = self
            .tools_export
            .as_ref()
            .ok_or_else(|| self.no_such_export("tools"))?;
        let (mut store, instance) = self.instantiate(engine, context.clone(), grants).await?;
        let classify = |e| InvokeError::classify(e, &self.limits);
        let guest = indices.load(&mut store, &instance).map_err(classify)?;
        let result = guest
            .call_invoke(&mut store, &context, tool, input)
            .await
            .map_err(classify)?;
        finish_transaction(&mut store, result).await
    }

    /// Execute one node in a fresh instance.
    pub async fn execute_node(
        &self,
        engine: &WasmEngine,
        context: CallContext,
        grants: CallGrants,
        node_type: &str,
        node_config: &str,
        input: &str,
    ) -> Result<NodeOutput, InvokeError> {
        let indices = self
            .nodes_export
            .as_ref()
            .ok_or_else(|| self.no_such_export("node types"))?;
        let (mut store, instance) = self.instantiate(engine, context.clone(), grants).await?;
        let classify = |e| InvokeError::classify(e, &self.limits);
        let guest = indices.load(&mut store, &instance).map_err(classify)?;
        let result = guest
            .call_execute(&mut store, &context, node_type, node_config, input)
            .await
            .map_err(classify)?;
        finish_transaction(&mut store, result).await
    }
}

/// Commit the call's database work when it succeeded, roll it back when it returned
/// an error. (After a trap the store is dropped, and with it, rolled back.)
async fn finish_transaction<T>(
    store: &mut Store<PluginState>,
    result: Result<T, Error>,
) -> Result<T, InvokeError> {
    let committed = store.data_mut().database.finish(result.is_ok()).await;
    match (result, committed) {
        (Ok(value), Ok(())) => Ok(value),
        (Ok(_), Err(error)) | (Err(error), _) => Err(InvokeError::Plugin(error)),
    }
}

fn check_name(name: &str, what: &str) -> Result<(), LoadError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(LoadError::Descriptor(format!(
            "{what} name {name:?} must be 1-64 lowercase letters, digits, '_' or '-'"
        )))
    }
}

fn check_schema(schema: &str, what: &str) -> Result<(), LoadError> {
    let value: serde_json::Value = serde_json::from_str(schema)
        .map_err(|e| LoadError::Descriptor(format!("{what} is not JSON: {e}")))?;
    if !value.is_object() && !value.is_boolean() {
        return Err(LoadError::Descriptor(format!(
            "{what} must be a JSON Schema (an object or a boolean)"
        )));
    }
    Ok(())
}

/// Names unique and well-formed, every schema a JSON Schema.
fn check_descriptors<'a>(
    what: &str,
    items: impl Iterator<Item = (&'a str, Vec<(&'static str, &'a str)>)>,
) -> Result<(), LoadError> {
    let mut seen = std::collections::HashSet::new();
    for (name, schemas) in items {
        check_name(name, what)?;
        if !seen.insert(name) {
            return Err(LoadError::Descriptor(format!(
                "{what} {name:?} is described twice"
            )));
        }
        for (label, schema) in schemas {
            check_schema(schema, &format!("{label} of {name}"))?;
        }
    }
    Ok(())
}

fn check_tools(tools: &[ToolDescriptor]) -> Result<(), LoadError> {
    let items = tools.iter().map(|tool| {
        let schemas = vec![
            ("input schema", tool.input_schema.as_str()),
            ("output schema", tool.output_schema.as_str()),
        ];
        (tool.name.as_str(), schemas)
    });
    check_descriptors("tool", items)
}

fn check_nodes(nodes: &[NodeDescriptor]) -> Result<(), LoadError> {
    let items = nodes.iter().map(|node| {
        let schemas = vec![
            ("config schema", node.config_schema.as_str()),
            ("input schema", node.input_schema.as_str()),
            ("output schema", node.output_schema.as_str()),
        ];
        (node.node_type.as_str(), schemas)
    });
    check_descriptors("node type", items)
}
