//! Running workflow nodes, on the plugin version an execution pinned. The active
//! version serves most calls; an older pinned one is loaded on demand from the
//! database (and the compiled-artifact cache) and kept, so a later activation never
//! changes an execution that is under way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use serde_json::Value;
use uuid::Uuid;

use super::{ActivePlugin, Registry, RegistryError};
use crate::runtime::InvokeError;
use crate::runtime::bindings::{CallContext, Error};

/// Loaded non-active versions by (plugin, version).
#[derive(Default)]
pub(super) struct PinnedVersions(Mutex<HashMap<(String, String), Arc<ActivePlugin>>>);

impl PinnedVersions {
    fn get(&self, plugin: &str, version: &str) -> Option<Arc<ActivePlugin>> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(plugin.to_string(), version.to_string())).cloned()
    }

    fn insert(&self, plugin: &str, version: &str, active: Arc<ActivePlugin>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.insert((plugin.to_string(), version.to_string()), active);
    }
}

/// What a node produced.
#[derive(Debug)]
pub struct NodeResult {
    pub output: Value,
    pub branches: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum NodeCallError {
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Invoke(#[from] InvokeError),
    #[error("the node returned output that is not JSON: {0}")]
    BadOutput(String),
    #[error("loading the pinned plugin version failed: {0}")]
    Load(String),
}

impl NodeCallError {
    /// The error kind retry policies name (docs/workflows.md).
    pub fn kind(&self) -> &'static str {
        match self {
            NodeCallError::NotFound(_) => "not_found",
            NodeCallError::BadOutput(_) => "invalid",
            NodeCallError::Load(_) => "unavailable",
            NodeCallError::Invoke(InvokeError::Plugin(error)) => match error {
                Error::Denied(_) => "denied",
                Error::NotFound(_) => "not_found",
                Error::Invalid(_) => "invalid",
                Error::Unavailable(_) => "unavailable",
                Error::Internal(_) => "internal",
            },
            NodeCallError::Invoke(InvokeError::Timeout(_)) => "timeout",
            NodeCallError::Invoke(InvokeError::Capacity(_)) => "unavailable",
            NodeCallError::Invoke(_) => "fault",
        }
    }
}

impl Registry {
    /// `plugin@version`: the active one if it is that version, else the pinned copy.
    pub async fn plugin_version(
        &self,
        plugin: &str,
        version: &str,
    ) -> Result<Arc<ActivePlugin>, NodeCallError> {
        if let Some(active) = self.active(plugin).filter(|a| a.plugin.version == version) {
            return Ok(active);
        }
        if let Some(pinned) = self.pinned.get(plugin, version) {
            return Ok(pinned);
        }
        let loaded = self
            .load_pinned(plugin, version)
            .await
            .map_err(|e| NodeCallError::Load(e.to_string()))?;
        let loaded = Arc::new(loaded);
        self.pinned.insert(plugin, version, loaded.clone());
        Ok(loaded)
    }

    async fn load_pinned(
        &self,
        plugin: &str,
        version: &str,
    ) -> Result<ActivePlugin, RegistryError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            kind: String,
            settings: Value,
            sha256: String,
            limits: Value,
            grants: Value,
        }
        let row: Row = sqlx::query_as(
            "SELECT p.kind, p.settings, v.sha256, v.limits, v.grants FROM plugins p \
             JOIN plugin_versions v ON v.plugin = p.name WHERE p.name = $1 AND v.version = $2",
        )
        .bind(plugin)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?
        .with_context(|| format!("{plugin}@{version} is not installed"))?;
        self.build_active(
            plugin,
            &row.kind,
            row.settings,
            version,
            row.sha256,
            row.limits,
            row.grants,
            None,
        )
        .await
    }

    /// Execute one node on `plugin@version` in a fresh instance. `request_id` is the
    /// node run's idempotency key (the same on every attempt of the node).
    #[allow(clippy::too_many_arguments)]
    pub async fn execute_node(
        &self,
        workspace_id: Uuid,
        request_id: &str,
        plugin: &str,
        version: &str,
        node_type: &str,
        config: &Value,
        input: &Value,
    ) -> Result<NodeResult, NodeCallError> {
        let active = self.plugin_version(plugin, version).await?;
        if !active.plugin.nodes.iter().any(|n| n.node_type == node_type) {
            return Err(NodeCallError::NotFound(format!(
                "{plugin}@{version} has no node type {node_type}"
            )));
        }
        let context = CallContext {
            workspace_id: workspace_id.to_string(),
            plugin: plugin.to_string(),
            version: version.to_string(),
            request_id: request_id.to_string(),
        };
        let started = std::time::Instant::now();
        // On a thread of its own, like tool calls (see `runtime::isolated`).
        let outcome = active
            .plugin
            .clone()
            .call_node_isolated(
                self.engine.clone(),
                context,
                active.grants.clone(),
                node_type.to_string(),
                config.to_string(),
                input.to_string(),
            )
            .await;
        outcome.log_stderr(plugin, version, request_id);
        let output = outcome.result;
        let outcome = match &output {
            Ok(_) => "ok",
            Err(error) => error.outcome(),
        };
        self.metrics
            .record(plugin, outcome, started.elapsed().as_secs_f64());
        crate::telemetry::metrics::plugin_call(plugin, version, outcome, started.elapsed());
        let output = output?;
        let value = serde_json::from_str(&output.output)
            .map_err(|e| NodeCallError::BadOutput(e.to_string()))?;
        Ok(NodeResult {
            output: value,
            branches: output.branches,
        })
    }
}
