//! Listing and invoking tools of the active plugins.

use std::time::Instant;

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::fault_log::Fault;
use super::{Registry, invocations};
use crate::runtime::bindings::CallContext;
use crate::runtime::{InvokeError, LoadedPlugin};

/// An active tool, as listed to API users.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ToolInfo {
    pub plugin: String,
    pub version: String,
    pub name: String,
    pub description: String,
    pub input_schema: Value,
    pub output_schema: Value,
}

/// Why a tool call failed, before or inside the plugin.
#[derive(Debug, thiserror::Error)]
pub enum ToolCallError {
    #[error("{0}")]
    NotFound(String),
    #[error("the input does not match the tool's input schema: {}", .0.join("; "))]
    InvalidInput(Vec<String>),
    #[error(transparent)]
    Invoke(#[from] InvokeError),
    #[error("the plugin returned output that is not JSON: {0}")]
    BadOutput(String),
}

/// A finished tool call.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ToolCallResult {
    pub plugin: String,
    pub version: String,
    pub tool: String,
    pub output: Value,
    pub duration_ms: f64,
}

/// The listing entries of a loaded plugin's tools.
pub(super) fn tool_infos(plugin: &LoadedPlugin) -> Vec<ToolInfo> {
    let parse = |schema: &str| serde_json::from_str(schema).unwrap_or(Value::Null);
    plugin
        .tools
        .iter()
        .map(|tool| ToolInfo {
            plugin: plugin.name.clone(),
            version: plugin.version.clone(),
            name: tool.name.clone(),
            description: tool.description.clone(),
            input_schema: parse(&tool.input_schema),
            output_schema: parse(&tool.output_schema),
        })
        .collect()
}

impl Registry {
    /// Every tool of every active, enabled tool plugin.
    pub fn tools(&self) -> Vec<ToolInfo> {
        let map = self.active.read().unwrap_or_else(|e| e.into_inner());
        let mut tools: Vec<ToolInfo> = map
            .values()
            .flat_map(|active| active.tool_infos.iter().cloned())
            .collect();
        tools.sort_by(|a, b| (&a.plugin, &a.name).cmp(&(&b.plugin, &b.name)));
        tools
    }

    /// One active tool's listing entry (an agent's tool, looked up per turn).
    pub fn tool_info(&self, plugin: &str, tool: &str) -> Option<ToolInfo> {
        let active = self.active(plugin)?;
        active.tool_infos.iter().find(|t| t.name == tool).cloned()
    }

    /// A tool's listing entry on `version` (none: the active one). A version that is
    /// installed but not active is loaded on demand (an agent pinned to it).
    pub async fn tool_info_at(
        &self,
        plugin: &str,
        tool: &str,
        version: Option<&str>,
    ) -> Result<ToolInfo, String> {
        let active = match version {
            None => self
                .active(plugin)
                .ok_or_else(|| format!("no active plugin {plugin} with a tool {tool}"))?,
            Some(_) => self.plugin_at(plugin, version).await?,
        };
        active
            .tool_infos
            .iter()
            .find(|t| t.name == tool)
            .cloned()
            .ok_or_else(|| format!("{plugin} {} has no tool {tool}", active.plugin.version))
    }

    /// `plugin` on `version`, or its active version.
    async fn plugin_at(
        &self,
        plugin: &str,
        version: Option<&str>,
    ) -> Result<std::sync::Arc<super::ActivePlugin>, String> {
        match version {
            None => self
                .active(plugin)
                .ok_or_else(|| format!("no active plugin named {plugin}")),
            Some(version) => self
                .plugin_version(plugin, version)
                .await
                .map_err(|e| match e {
                    super::NodeCallError::Load(_) => {
                        format!("{plugin} {version} is not installed")
                    }
                    other => other.to_string(),
                }),
        }
    }

    /// Validate the input, run the tool in a fresh instance, record the invocation.
    pub async fn invoke_tool(
        &self,
        workspace_id: Uuid,
        request_id: &str,
        plugin: &str,
        tool: &str,
        input: &Value,
    ) -> Result<ToolCallResult, ToolCallError> {
        self.invoke_tool_at(workspace_id, request_id, plugin, None, tool, input)
            .await
    }

    /// `invoke_tool` on a given version of the plugin (none: the active one).
    pub async fn invoke_tool_at(
        &self,
        workspace_id: Uuid,
        request_id: &str,
        plugin: &str,
        version: Option<&str>,
        tool: &str,
        input: &Value,
    ) -> Result<ToolCallResult, ToolCallError> {
        self.invoke_tool_as(workspace_id, request_id, plugin, version, tool, input, None)
            .await
    }

    /// `invoke_tool_at` for a person: the capabilities that act for someone (the
    /// automation interface) check and record `on_behalf`.
    #[allow(clippy::too_many_arguments)]
    pub async fn invoke_tool_as(
        &self,
        workspace_id: Uuid,
        request_id: &str,
        plugin: &str,
        version: Option<&str>,
        tool: &str,
        input: &Value,
        on_behalf: Option<crate::capabilities::automation::OnBehalf>,
    ) -> Result<ToolCallResult, ToolCallError> {
        let active = self
            .plugin_at(plugin, version)
            .await
            .map_err(ToolCallError::NotFound)?;
        let validator = active.input_validators.get(tool).ok_or_else(|| {
            ToolCallError::NotFound(format!("plugin {plugin} has no tool {tool}"))
        })?;
        let errors: Vec<String> = validator
            .iter_errors(input)
            .map(|e| format!("{} (at {})", e, e.instance_path()))
            .collect();
        if !errors.is_empty() {
            return Err(ToolCallError::InvalidInput(errors));
        }
        let context = CallContext {
            workspace_id: workspace_id.to_string(),
            plugin: active.plugin.name.clone(),
            version: active.plugin.version.clone(),
            request_id: request_id.to_string(),
        };
        let started = Instant::now();
        // On a thread of its own, so a busy guest never holds an async worker (see
        // `runtime::isolated`).
        let outcome = active
            .plugin
            .clone()
            .call_tool_isolated(
                self.engine.clone(),
                context,
                {
                    let mut grants = active.grants.clone();
                    grants.automation.on_behalf = on_behalf;
                    grants
                },
                tool.to_string(),
                input.to_string(),
            )
            .await;
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let stderr = outcome.stderr;
        let result = match outcome.result {
            Ok(text) => {
                serde_json::from_str(&text).map_err(|e| ToolCallError::BadOutput(e.to_string()))
            }
            Err(err) => Err(ToolCallError::Invoke(err)),
        };
        let (outcome, error) = match &result {
            Ok(_) => ("ok", None),
            Err(ToolCallError::Invoke(err)) => (err.outcome(), Some(err.to_string())),
            Err(err) => ("bad_output", Some(err.to_string())),
        };
        // Every call is counted; the log gets a rate-limited sample of the faults.
        self.metrics
            .record(&active.plugin.name, outcome, duration_ms / 1000.0);
        let version = active.plugin.version.as_str();
        crate::telemetry::metrics::plugin_call(plugin, version, outcome, started.elapsed());
        match &error {
            Some(error) if outcome != "tool_error" => {
                self.faults.log(&Fault {
                    plugin,
                    version,
                    tool,
                    outcome,
                    error,
                    request_id,
                    stderr: stderr.as_ref().map(|s| s.text.as_str()),
                });
            }
            _ => {
                if let Some(stderr) = &stderr {
                    tracing::info!(
                        target: "plugin",
                        plugin,
                        version,
                        tool,
                        request_id,
                        stderr_bytes = stderr.total_bytes,
                        stderr = %stderr.text,
                        "plugin wrote to stderr"
                    );
                }
            }
        }
        self.invocations.record(invocations::Invocation {
            workspace_id,
            plugin: active.plugin.name.clone(),
            version: active.plugin.version.clone(),
            tool: tool.to_string(),
            duration_ms,
            outcome,
            error,
            request_id: request_id.to_string(),
        });
        Ok(ToolCallResult {
            plugin: active.plugin.name.clone(),
            version: active.plugin.version.clone(),
            tool: tool.to_string(),
            output: result?,
            duration_ms,
        })
    }
}
