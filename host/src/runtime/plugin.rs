//! A loaded plugin version: its pre-linked component and what it described. Every call
//! gets a fresh store and instance, so calls share nothing and a trap or a limit hit
//! ends only the call that caused it.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wasmtime::component::{Component, InstancePre};
use wasmtime::{PoolConcurrencyLimitError, Store, Trap, UpdateDeadline};

use super::bindings::{
    CallContext, Error, NodeDescriptor, NodeOutput, ToolDescriptor, nodes, tools,
};
use super::engine::WasmEngine;
use super::state::{MemoryCapExceeded, PluginState};
use super::stderr::Captured;
use crate::capabilities::CallGrants;

/// What a plugin offers: tools to agents or node types to workflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// The component describes nothing for its declared kind (an SDK component
    /// exports both interfaces, so linking alone can't tell).
    #[error("{0}")]
    WrongKind(String),
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
            .map_err(|e| describe_failed(e, &store))?;
        match kind {
            PluginKind::Tool => {
                let indices = tools::GuestIndices::new(&plugin.pre).map_err(missing)?;
                let guest = indices
                    .load(&mut store, &instance)
                    .map_err(|e| wrong_world(format!("{e:#}")))?;
                plugin.tools = guest
                    .call_describe(&mut store)
                    .await
                    .map_err(|e| describe_failed(e, &store))?;
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
                    .map_err(|e| describe_failed(e, &store))?;
                plugin.nodes_export = Some(indices);
                check_nodes(&plugin.nodes)?;
            }
        }
        let described = match kind {
            PluginKind::Tool => plugin.tools.len(),
            PluginKind::Node => plugin.nodes.len(),
        };
        if described == 0 {
            let other = plugin.describe_other_kind(&mut store, &instance).await;
            return Err(LoadError::WrongKind(nothing_for_kind(kind, &other)));
        }
        Ok(plugin)
    }

    /// The names the component describes through the interface of the *other* kind
    /// (empty when it has no such export or its describe() fails).
    async fn describe_other_kind(
        &self,
        store: &mut Store<PluginState>,
        instance: &wasmtime::component::Instance,
    ) -> Vec<String> {
        match self.kind {
            PluginKind::Tool => {
                let Ok(indices) = nodes::GuestIndices::new(&self.pre) else {
                    return Vec::new();
                };
                let Ok(guest) = indices.load(&mut *store, instance) else {
                    return Vec::new();
                };
                match guest.call_describe(&mut *store).await {
                    Ok(nodes) => nodes.into_iter().map(|n| n.node_type).collect(),
                    Err(_) => Vec::new(),
                }
            }
            PluginKind::Node => {
                let Ok(indices) = tools::GuestIndices::new(&self.pre) else {
                    return Vec::new();
                };
                let Ok(guest) = indices.load(&mut *store, instance) else {
                    return Vec::new();
                };
                match guest.call_describe(&mut *store).await {
                    Ok(tools) => tools.into_iter().map(|t| t.name).collect(),
                    Err(_) => Vec::new(),
                }
            }
        }
    }

    /// A store with this plugin's limits (public for the benchmarks).
    pub fn new_store(
        &self,
        engine: &WasmEngine,
        context: CallContext,
        grants: CallGrants,
    ) -> Store<PluginState> {
        let deadline = Instant::now() + self.limits.timeout();
        self.store_until(engine, context, grants, deadline)
    }

    /// A store whose call must end by `deadline`.
    fn store_until(
        &self,
        engine: &WasmEngine,
        context: CallContext,
        grants: CallGrants,
        deadline: Instant,
    ) -> Store<PluginState> {
        let state = PluginState::new(context, grants, self.limits.memory_bytes, deadline);
        let mut store = Store::new(&engine.engine, state);
        store.limiter(|state| &mut state.limits);
        // On every epoch tick: past the (wall-clock) deadline, trap; otherwise yield
        // to the executor. Registry calls run on threads of their own (`isolated`),
        // where the yield lets a cancelled call notice; a call polled on a tokio
        // worker (direct use, benchmarks) never holds it for more than a tick, and
        // tokio's yield_now (unlike a plain re-wake) lets the scheduler poll I/O
        // before resuming it.
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
    /// happened (an instance can't be re-entered after a trap anyway). What the guest
    /// wrote to stderr is logged (use [`Self::call_tool`] to handle it yourself).
    pub async fn invoke_tool(
        &self,
        engine: &WasmEngine,
        context: CallContext,
        grants: CallGrants,
        tool: &str,
        input: &str,
    ) -> Result<String, InvokeError> {
        let request_id = context.request_id.clone();
        let outcome = self.call_tool(engine, context, grants, tool, input).await;
        outcome.log_stderr(&self.name, &self.version, &request_id);
        outcome.result
    }

    /// Run one tool in a fresh instance; returns the result and the guest's stderr.
    pub async fn call_tool(
        &self,
        engine: &WasmEngine,
        context: CallContext,
        grants: CallGrants,
        tool: &str,
        input: &str,
    ) -> CallOutcome<String> {
        let deadline = Instant::now() + self.limits.timeout();
        self.call_tool_until(deadline, engine, context, grants, tool, input)
            .await
    }

    async fn call_tool_until(
        &self,
        deadline: Instant,
        engine: &WasmEngine,
        context: CallContext,
        grants: CallGrants,
        tool: &str,
        input: &str,
    ) -> CallOutcome<String> {
        let Some(indices) = self.tools_export.as_ref() else {
            return CallOutcome::failed(self.no_such_export("tools"));
        };
        let mut store = self.store_until(engine, context.clone(), grants, deadline);
        let result = async {
            let instance = self
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(|e| InvokeError::classify(e, &self.limits))?;
            let classify = |e| InvokeError::classify(e, &self.limits);
            let guest = indices.load(&mut store, &instance).map_err(classify)?;
            let result = guest
                .call_invoke(&mut store, &context, tool, input)
                .await
                .map_err(classify)?;
            finish_transaction(&mut store, result).await
        }
        .await;
        CallOutcome::new(result, &store)
    }

    /// [`Self::call_tool`] on a thread of its own (see [`isolated`]).
    pub async fn call_tool_isolated(
        self: Arc<Self>,
        engine: Arc<WasmEngine>,
        context: CallContext,
        grants: CallGrants,
        tool: String,
        input: String,
    ) -> CallOutcome<String> {
        // The deadline runs from now: the hand-off to the thread counts.
        let deadline = Instant::now() + self.limits.timeout();
        isolated(async move {
            self.call_tool_until(deadline, &engine, context, grants, &tool, &input)
                .await
        })
        .await
    }

    /// Execute one node in a fresh instance (stderr is logged).
    pub async fn execute_node(
        &self,
        engine: &WasmEngine,
        context: CallContext,
        grants: CallGrants,
        node_type: &str,
        node_config: &str,
        input: &str,
    ) -> Result<NodeOutput, InvokeError> {
        let request_id = context.request_id.clone();
        let outcome = self
            .call_node(engine, context, grants, node_type, node_config, input)
            .await;
        outcome.log_stderr(&self.name, &self.version, &request_id);
        outcome.result
    }

    /// Execute one node in a fresh instance; returns the result and the guest's stderr.
    pub async fn call_node(
        &self,
        engine: &WasmEngine,
        context: CallContext,
        grants: CallGrants,
        node_type: &str,
        node_config: &str,
        input: &str,
    ) -> CallOutcome<NodeOutput> {
        let deadline = Instant::now() + self.limits.timeout();
        self.call_node_until(
            deadline,
            engine,
            context,
            grants,
            node_type,
            node_config,
            input,
        )
        .await
    }

    /// [`Self::call_node`] on a thread of its own (see [`isolated`]).
    pub async fn call_node_isolated(
        self: Arc<Self>,
        engine: Arc<WasmEngine>,
        context: CallContext,
        grants: CallGrants,
        node_type: String,
        node_config: String,
        input: String,
    ) -> CallOutcome<NodeOutput> {
        let deadline = Instant::now() + self.limits.timeout();
        isolated(async move {
            self.call_node_until(
                deadline,
                &engine,
                context,
                grants,
                &node_type,
                &node_config,
                &input,
            )
            .await
        })
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn call_node_until(
        &self,
        deadline: Instant,
        engine: &WasmEngine,
        context: CallContext,
        grants: CallGrants,
        node_type: &str,
        node_config: &str,
        input: &str,
    ) -> CallOutcome<NodeOutput> {
        let Some(indices) = self.nodes_export.as_ref() else {
            return CallOutcome::failed(self.no_such_export("node types"));
        };
        let mut store = self.store_until(engine, context.clone(), grants, deadline);
        let result = async {
            let instance = self
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(|e| InvokeError::classify(e, &self.limits))?;
            let classify = |e| InvokeError::classify(e, &self.limits);
            let guest = indices.load(&mut store, &instance).map_err(classify)?;
            let result = guest
                .call_execute(&mut store, &context, node_type, node_config, input)
                .await
                .map_err(classify)?;
            finish_transaction(&mut store, result).await
        }
        .await;
        CallOutcome::new(result, &store)
    }
}

/// A call's result and what the guest wrote to stderr during it.
#[derive(Debug)]
pub struct CallOutcome<T> {
    /// A trap's message starts with the guest's panic message when it panicked.
    pub result: Result<T, InvokeError>,
    /// Bounded (see [`super::stderr`]); `None` when the guest wrote nothing.
    pub stderr: Option<Captured>,
}

impl<T> CallOutcome<T> {
    fn failed(error: InvokeError) -> Self {
        CallOutcome {
            result: Err(error),
            stderr: None,
        }
    }

    fn new(result: Result<T, InvokeError>, store: &Store<PluginState>) -> Self {
        let stderr = store.data().stderr.captured();
        let result = match (result, stderr.as_ref().and_then(Captured::panic_message)) {
            (Err(InvokeError::Trap(trap)), Some(panic)) => {
                Err(InvokeError::Trap(format!("{panic} ({trap})")))
            }
            (result, _) => result,
        };
        CallOutcome { result, stderr }
    }

    /// Log the captured stderr, if any, with the plugin and version.
    pub fn log_stderr(&self, plugin: &str, version: &str, request_id: &str) {
        if let Some(stderr) = &self.stderr {
            tracing::info!(
                target: "plugin",
                plugin,
                version,
                request_id,
                stderr_bytes = stderr.total_bytes,
                stderr = %stderr.text,
                "plugin wrote to stderr"
            );
        }
    }
}

/// Run `work` (a whole plugin call: instantiate, call, drop the store) on a thread of
/// tokio's blocking pool, driven by `Handle::block_on`, instead of on an async worker.
///
/// A guest that computes holds whatever thread polls it until the next epoch tick.
/// On the async workers that meant every other task (the request's own auth query,
/// other requests, the response of a call that just timed out) waited up to a tick
/// behind *each* busy guest at every await, so under contention deadlines overshot
/// by hundreds of milliseconds as seen by clients. On their own threads busy guests
/// are preempted by the OS like any thread, and the async workers only do I/O.
/// Host functions still run their async I/O on the same runtime (its reactor and
/// timers serve any thread). Dropping the returned future ends the call at its next
/// tick (the store is dropped on its thread).
pub async fn isolated<T: Send + 'static>(
    work: impl Future<Output = CallOutcome<T>> + Send + 'static,
) -> CallOutcome<T> {
    let handle = tokio::runtime::Handle::current();
    let (mut done, outcome) = tokio::sync::oneshot::channel();
    // Detached: the channel carries the outcome, and `done.closed()` the caller's
    // cancellation.
    drop(tokio::task::spawn_blocking(move || {
        let _slot = crate::telemetry::metrics::instance_slot();
        handle.block_on(async move {
            let finished = tokio::select! {
                biased;
                () = done.closed() => None,
                outcome = work => Some(outcome),
            };
            if let Some(finished) = finished {
                let _ = done.send(finished);
            }
        })
    }));
    outcome.await.unwrap_or_else(|_| {
        CallOutcome::failed(InvokeError::Capacity(
            "the host is shutting down".to_string(),
        ))
    })
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

/// A failed instantiation or describe(), with the guest's panic message if it panicked.
fn describe_failed(error: wasmtime::Error, store: &Store<PluginState>) -> LoadError {
    let panic = store
        .data()
        .stderr
        .captured()
        .and_then(|captured| captured.panic_message());
    match panic {
        Some(panic) => LoadError::Describe(format!("{panic} ({error:#})")),
        None => LoadError::Describe(format!("{error:#}")),
    }
}

/// Why a component that describes nothing for `kind` is refused, naming what it
/// describes instead (`other`: names through the other kind's interface).
fn nothing_for_kind(kind: PluginKind, other: &[String]) -> String {
    let (what, other_kind, other_what) = match kind {
        PluginKind::Tool => ("tools", PluginKind::Node, "node types"),
        PluginKind::Node => ("node types", PluginKind::Tool, "tools"),
    };
    if other.is_empty() {
        format!(
            "the manifest declares kind \"{}\" but the component describes no {what} \
             (nor any {other_what}): a plugin must offer at least one",
            kind.as_str()
        )
    } else {
        format!(
            "the manifest declares kind \"{}\" but the component describes no {what}; \
             it describes {other_what} ({}), so it is a \"{}\" plugin: set \"kind\": \"{}\"",
            kind.as_str(),
            other.join(", "),
            other_kind.as_str(),
            other_kind.as_str()
        )
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
