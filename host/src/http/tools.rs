//! The tools API: list active tools, invoke one.
//!
//! Status codes of `POST /api/tools/{plugin}/{tool}`:
//! 200 the tool's output; 404 `not_found` unknown plugin or tool; 422 `invalid_input`
//! the body fails the tool's input schema; 400 `tool_error` the tool ran and returned
//! an error (its kind is in the message); 502 `plugin_fault` the plugin trapped, hit
//! its memory cap or returned non-JSON; 504 `plugin_timeout` it hit its deadline;
//! 503 `unavailable` no instance slot was free.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AlreadyLogged;
use super::extract::{Json, Path, RequestId};
use crate::auth::{Role, WorkspaceCaller};
use crate::error::{ApiError, ApiResult};
use crate::registry::{ToolCallError, ToolCallResult, ToolInfo};
use crate::runtime::InvokeError;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tools))
        .routes(routes!(invoke_tool))
}

/// Any role: the active tools of every enabled plugin, with their JSON Schemas.
#[utoipa::path(get, path = "/api/tools", tag = "tools",
    responses((status = 200, body = Vec<ToolInfo>)))]
async fn list_tools(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<ToolInfo>>> {
    caller.require(Role::Viewer)?;
    Ok(Json(state.registry.tools()))
}

/// Member: call a tool. The input must match the tool's input schema.
#[utoipa::path(post, path = "/api/tools/{plugin}/{tool}", tag = "tools",
    params(
        ("plugin" = String, Path, description = "Plugin name"),
        ("tool" = String, Path, description = "Tool name"),
    ),
    request_body(content = Object, description = "The tool's input, matching its input schema"),
    responses(
        (status = 200, body = ToolCallResult),
        (status = 400, description = "The tool answered with an error (`tool_error`)", body = super::openapi::ErrorBody),
        (status = 422, description = "The input does not match the tool's schema (`invalid_input`)", body = super::openapi::ErrorBody),
        (status = 502, description = "The plugin trapped, ran out of fuel or memory, or broke its output schema (`plugin_fault`)", body = super::openapi::ErrorBody),
        (status = 504, description = "The plugin ran out of time (`plugin_timeout`)", body = super::openapi::ErrorBody),
    ))]
async fn invoke_tool(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    request_id: RequestId,
    Path((plugin, tool)): Path<(String, String)>,
    Json(input): Json<Value>,
) -> Result<Json<ToolCallResult>, Response> {
    caller
        .require(Role::Member)
        .map_err(IntoResponse::into_response)?;
    let request_id = request_id.0.unwrap_or_default();
    let result = state
        .registry
        .invoke_tool_as(
            caller.0.workspace_id,
            &request_id,
            &plugin,
            None,
            &tool,
            &input,
            Some(crate::capabilities::automation::OnBehalf::key(&caller.0)),
        )
        .await
        .map_err(|err| {
            // The registry logged the fault (a rate-limited warning, not an error).
            let mut response = ApiError::from(err).into_response();
            response.extensions_mut().insert(AlreadyLogged);
            response
        })?;
    Ok(Json(result))
}

impl From<ToolCallError> for ApiError {
    fn from(err: ToolCallError) -> Self {
        let coded = |status, code, message| ApiError::Coded {
            status,
            code,
            message,
        };
        let message = err.to_string();
        match err {
            ToolCallError::NotFound(m) => ApiError::NotFound(m),
            ToolCallError::InvalidInput(_) => {
                coded(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", message)
            }
            ToolCallError::BadOutput(_) => coded(StatusCode::BAD_GATEWAY, "plugin_fault", message),
            ToolCallError::Invoke(invoke) => match invoke {
                InvokeError::Plugin(_) => coded(StatusCode::BAD_REQUEST, "tool_error", message),
                InvokeError::Timeout(_) => {
                    coded(StatusCode::GATEWAY_TIMEOUT, "plugin_timeout", message)
                }
                InvokeError::Capacity(_) => {
                    coded(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
                }
                InvokeError::MemoryCap(_) | InvokeError::FuelExhausted | InvokeError::Trap(_) => {
                    coded(StatusCode::BAD_GATEWAY, "plugin_fault", message)
                }
            },
        }
    }
}
