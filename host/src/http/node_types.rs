//! The node-type catalog: what a workflow's nodes may be, for anyone who builds one
//! (the console's graph editor adds nodes from it and draws their config forms from
//! the schemas). The admin API shows the same per plugin version; this is the active
//! set a definition is checked against.

use axum::extract::State;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::Json;
use crate::auth::{Role, WorkspaceCaller};
use crate::error::ApiResult;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_node_types))
}

/// A node type of an active node plugin.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct NodeType {
    /// `plugin/node_type`, as a definition's `nodes[].type` names it.
    #[serde(rename = "type")]
    name: String,
    plugin: String,
    /// The plugin version that runs it now.
    version: String,
    description: String,
    /// JSON Schema of `nodes[].config`.
    config_schema: Value,
    input_schema: Value,
    output_schema: Value,
    /// The outgoing branches an edge may name (`*`: any name); empty: one unnamed.
    branches: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct NodeTypes {
    /// Sorted by type.
    node_types: Vec<NodeType>,
}

fn schema(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(json!({}))
}

/// Any role: the node types of every active, enabled node plugin, with their schemas.
#[utoipa::path(get, path = "/api/node-types", tag = "workflows",
    responses((status = 200, body = NodeTypes)))]
async fn list_node_types(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
) -> ApiResult<Json<NodeTypes>> {
    caller.require(Role::Viewer)?;
    let mut node_types = Vec::new();
    for plugin in state.registry.plugins().await? {
        let Some(active) = state.registry.active(&plugin.name) else {
            continue;
        };
        for node in &active.plugin.nodes {
            node_types.push(NodeType {
                name: format!("{}/{}", plugin.name, node.node_type),
                plugin: plugin.name.clone(),
                version: active.plugin.version.clone(),
                description: node.description.clone(),
                config_schema: schema(&node.config_schema),
                input_schema: schema(&node.input_schema),
                output_schema: schema(&node.output_schema),
                branches: node.branches.clone(),
            });
        }
    }
    node_types.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(NodeTypes { node_types }))
}
