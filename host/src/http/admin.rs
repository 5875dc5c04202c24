//! Instance administration: workspaces, their keys, the instance audit log, metrics.
//! Every route here needs the instance admin token.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{Json, Path, Query, RequestId};
use crate::api_keys::{self, CreatedKey, NewKey};
use crate::audit::{self, AuditEntry, AuditEvent};
use crate::auth::{InstanceAdmin, Principal};
use crate::error::ApiResult;
use crate::state::AppState;
use crate::workspaces::{self, NewWorkspace, Workspace};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_workspaces, create_workspace))
        .routes(routes!(get_workspace))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(list_audit))
        .routes(routes!(metrics))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct CreatedWorkspace {
    #[serde(flatten)]
    workspace: Workspace,
    /// An owner key for the new workspace; its secret is shown only here.
    owner_key: CreatedKey,
}

/// Admin token: a new workspace with its first owner key.
#[utoipa::path(post, path = "/api/admin/workspaces", tag = "admin", request_body = NewWorkspace,
    responses((status = 201, body = CreatedWorkspace)))]
async fn create_workspace(
    _: InstanceAdmin,
    State(state): State<AppState>,
    request_id: RequestId,
    Json(new): Json<NewWorkspace>,
) -> ApiResult<(StatusCode, Json<CreatedWorkspace>)> {
    let mut tx = state.pool.begin().await?;
    let (workspace, owner_key) = workspaces::create_with_owner(&mut tx, &new, "admin").await?;
    let event = AuditEvent {
        principal: &Principal::InstanceAdmin,
        request_id: request_id.as_deref(),
        workspace_id: Some(workspace.id),
        action: "workspace.create",
        target: Some(workspace.id.to_string()),
        details: json!({ "slug": workspace.slug, "owner_key_id": owner_key.key.id }),
    };
    audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWorkspace {
            workspace,
            owner_key,
        }),
    ))
}

/// Admin token: every workspace.
#[utoipa::path(get, path = "/api/admin/workspaces", tag = "admin",
    responses((status = 200, body = Vec<Workspace>)))]
async fn list_workspaces(
    _: InstanceAdmin,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<Workspace>>> {
    Ok(Json(workspaces::list(&state.pool).await?))
}

/// Admin token: one workspace.
#[utoipa::path(get, path = "/api/admin/workspaces/{id}", tag = "admin", params(("id" = Uuid, Path, description = "The workspace id")),
    responses((status = 200, body = Workspace)))]
async fn get_workspace(
    _: InstanceAdmin,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Workspace>> {
    Ok(Json(workspaces::get(&state.pool, id).await?))
}

/// Admin token: a workspace's keys.
#[utoipa::path(get, path = "/api/admin/workspaces/{id}/keys", tag = "admin", operation_id = "admin_list_keys", params(("id" = Uuid, Path, description = "The workspace id")),
    responses((status = 200, body = Vec<api_keys::ApiKey>)))]
async fn list_keys(
    _: InstanceAdmin,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Vec<api_keys::ApiKey>>> {
    workspaces::get(&state.pool, id).await?;
    Ok(Json(api_keys::list(&state.pool, id).await?))
}

/// Admin token: a key of any role in a workspace.
#[utoipa::path(post, path = "/api/admin/workspaces/{id}/keys", tag = "admin", operation_id = "admin_create_key", params(("id" = Uuid, Path, description = "The workspace id")),
    request_body = NewKey, responses((status = 201, body = CreatedKey)))]
async fn create_key(
    _: InstanceAdmin,
    State(state): State<AppState>,
    request_id: RequestId,
    Path(id): Path<Uuid>,
    Json(new): Json<NewKey>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let mut tx = state.pool.begin().await?;
    workspaces::get(&mut *tx, id).await?;
    let created = api_keys::create(&mut *tx, id, &new, "admin").await?;
    let event = AuditEvent {
        principal: &Principal::InstanceAdmin,
        request_id: request_id.as_deref(),
        workspace_id: Some(id),
        action: "api_key.create",
        target: Some(created.key.id.to_string()),
        details: json!({ "name": created.key.name, "role": created.key.role }),
    };
    audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Only this workspace's entries.
    workspace_id: Option<Uuid>,
    /// How many entries, newest first (1-1000, default 100).
    limit: Option<i64>,
}

/// Admin token: the instance audit log.
#[utoipa::path(get, path = "/api/admin/audit", tag = "admin", operation_id = "admin_list_audit", params(AuditQuery),
    responses((status = 200, body = Vec<AuditEntry>)))]
async fn list_audit(
    _: InstanceAdmin,
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    let limit = super::clamp_limit(query.limit, 100, 1000);
    Ok(Json(
        audit::list(&state.pool, query.workspace_id, limit).await?,
    ))
}

/// Prometheus text format (the series are listed in docs/operations.md); also served
/// without credentials on `--metrics-listen`.
#[utoipa::path(get, path = "/metrics", tag = "admin", operation_id = "host_metrics",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String)))]
async fn metrics(_: InstanceAdmin, State(state): State<AppState>) -> axum::response::Response {
    crate::telemetry::metrics::response(&state.pool, state.config.plugin_instances).await
}
