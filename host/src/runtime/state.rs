//! What a plugin's store holds during one call: one field per capability, plus the
//! WASI context (with nothing ambient) and the resource table.

use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::CallContext;
use super::stderr::StderrCapture;
use crate::capabilities::CallGrants;
use crate::capabilities::agents::AgentsCtx;
use crate::capabilities::automation::AutomationCtx;
use crate::capabilities::config::ConfigCtx;
use crate::capabilities::database::DatabaseCtx;
use crate::capabilities::email::EmailCtx;
use crate::capabilities::events::EventsCtx;
use crate::capabilities::http::HttpCtx;
use crate::capabilities::llm::LlmCtx;
use crate::capabilities::log::LogCtx;
use crate::capabilities::vector::VectorCtx;
use crate::capabilities::workflows::WorkflowsCtx;

pub struct PluginState {
    pub context: CallContext,
    /// When the call must stop; checked on every epoch tick.
    pub deadline: Instant,
    pub log: LogCtx,
    pub config: ConfigCtx,
    pub email: EmailCtx,
    pub database: DatabaseCtx,
    pub llm: LlmCtx,
    pub http: HttpCtx,
    pub vector: VectorCtx,
    pub agents: AgentsCtx,
    pub events: EventsCtx,
    pub workflows: WorkflowsCtx,
    pub automation: AutomationCtx,
    /// What the guest writes to stderr during this call (bounded).
    pub stderr: StderrCapture,
    http_wasi: wasmtime_wasi_http::WasiHttpCtx,
    pub limits: MemoryCap,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl PluginState {
    pub fn new(
        context: CallContext,
        grants: CallGrants,
        memory_bytes: usize,
        deadline: Instant,
    ) -> Self {
        let workspace = uuid::Uuid::parse_str(&context.workspace_id).ok();
        let stderr = StderrCapture::default();
        PluginState {
            deadline,
            log: LogCtx::new(&context, grants.log),
            config: grants.config,
            email: grants.email,
            database: grants.database.for_workspace(workspace),
            llm: LlmCtx {
                workspace,
                ..grants.llm
            },
            http: grants.http,
            vector: VectorCtx {
                workspace,
                ..grants.vector
            },
            agents: AgentsCtx {
                workspace,
                ..grants.agents
            },
            events: EventsCtx {
                workspace,
                // Node calls only: their request id is the node run's idempotency key.
                node_run: grants.events.node.then(|| context.request_id.clone()),
                ..grants.events
            },
            workflows: WorkflowsCtx {
                workspace,
                ..grants.workflows
            },
            automation: AutomationCtx {
                workspace,
                request_id: context.request_id.clone(),
                deadline: Some(deadline),
                ..grants.automation
            },
            http_wasi: wasmtime_wasi_http::WasiHttpCtx::new(),
            context,
            limits: MemoryCap::new(memory_bytes),
            wasi: no_ambient_authority(stderr.clone()),
            stderr,
            table: ResourceTable::new(),
        }
    }
}

/// No environment variables, arguments, preopened directories or network access;
/// stdin is empty, stdout goes nowhere, stderr is captured (bounded) for the log.
/// Plugins reach the world only through granted capabilities.
fn no_ambient_authority(stderr: StderrCapture) -> WasiCtx {
    let mut builder = WasiCtx::builder();
    builder
        .stderr(stderr)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
    builder.build()
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime_wasi_http::WasiHttpView for PluginState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.http_wasi,
            hooks: &mut self.http,
            table: &mut self.table,
        }
    }
}

/// The per-call memory cap. Growing past it traps with [`MemoryCapExceeded`], so
/// the host can tell a memory-cap hit from any other trap.
pub struct MemoryCap {
    limit: usize,
    inner: StoreLimits,
}

#[derive(Debug, thiserror::Error)]
#[error("the plugin tried to grow its memory to {desired} bytes, over its cap of {limit} bytes")]
pub struct MemoryCapExceeded {
    pub limit: usize,
    pub desired: usize,
}

impl MemoryCap {
    fn new(limit: usize) -> Self {
        MemoryCap {
            limit,
            inner: StoreLimitsBuilder::new().instances(64).build(),
        }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            return Err(wasmtime::Error::new(MemoryCapExceeded {
                limit: self.limit,
                desired,
            }));
        }
        self.inner.memory_growing(current, desired, maximum)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }
}
