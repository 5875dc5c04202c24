//! Durable workflows: versioned DAGs whose nodes are node plugins, and executions that
//! live in PostgreSQL. Every node attempt is a row of `node_runs`; `ready` rows are the
//! queue that every host's workers claim from (`engine`), so a host killed at any
//! moment loses nothing: completed nodes keep their output, a node that was running is
//! put back by the others (same attempt, same idempotency key). docs/workflows.md.

pub mod approvals;
mod commit;
pub mod definition;
mod engine;
pub mod graph;
mod recovery;
mod runs;
mod shares;
mod start;
pub mod store;
pub mod template;
pub mod trigger;
pub mod waits;

use std::sync::Arc;
use std::time::Duration;

pub use engine::Engine;
pub use store::StartOptions;

/// The engine's limits and pace (from the config flags).
#[derive(Debug, Clone, Copy)]
pub struct WorkflowLimits {
    /// Node runs one host executes at once.
    pub workers: usize,
    /// Default time limit of one node attempt.
    pub node_timeout: Duration,
    /// Default time limit of a whole execution.
    pub execution_timeout: Duration,
    /// Largest node output, as JSON bytes.
    pub max_output_bytes: usize,
    /// Executions of one workspace running at once; more are refused (429).
    pub max_running_per_workspace: i64,
    /// How often a host proves it is alive; a host silent for 5 beats loses its runs.
    pub heartbeat: Duration,
}

impl Default for WorkflowLimits {
    fn default() -> Self {
        WorkflowLimits {
            workers: 16,
            node_timeout: Duration::from_secs(60),
            execution_timeout: Duration::from_secs(3600),
            max_output_bytes: 1 << 20,
            max_running_per_workspace: 1000,
            heartbeat: Duration::from_secs(1),
        }
    }
}

/// Shared by the HTTP handlers and the engine's workers.
pub type Workflows = Arc<Engine>;

/// The engine's settings from the command line (here, not in `config`, so the
/// configuration knows nothing of the layers above it).
impl crate::config::Config {
    pub fn workflow_limits(&self) -> WorkflowLimits {
        WorkflowLimits {
            workers: self.workflow_workers,
            node_timeout: self.workflow_node_timeout,
            execution_timeout: self.workflow_execution_timeout,
            max_output_bytes: self.workflow_max_output_bytes,
            max_running_per_workspace: self.workflow_max_running,
            heartbeat: self.workflow_heartbeat,
        }
    }
}
