//! Instance administration: workspaces, their keys, the instance audit log, metrics.
//! Every route here needs the instance admin token.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::extract::{Json, Path, Query, RequestId};
use crate::api_keys::{self, CreatedKey, NewKey};
use crate::audit::{self, AuditEntry, AuditEvent};
use crate::auth::{InstanceAdmin, Principal};
use crate::error::ApiResult;
use crate::state::AppState;
use crate::workspaces::{self, NewWorkspace, Workspace};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/admin/workspaces",
            get(list_workspaces).post(create_workspace),
        )
        .route("/api/admin/workspaces/{id}", get(get_workspace))
        .route(
            "/api/admin/workspaces/{id}/keys",
            get(list_keys).post(create_key),
        )
        .route("/api/admin/audit", get(list_audit))
        .route("/metrics", get(metrics))
}

#[derive(Debug, Serialize)]
struct CreatedWorkspace {
    #[serde(flatten)]
    workspace: Workspace,
    /// An owner key for the new workspace; its secret is shown only here.
    owner_key: CreatedKey,
}

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

async fn list_workspaces(
    _: InstanceAdmin,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<Workspace>>> {
    Ok(Json(workspaces::list(&state.pool).await?))
}

async fn get_workspace(
    _: InstanceAdmin,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Workspace>> {
    Ok(Json(workspaces::get(&state.pool, id).await?))
}

async fn list_keys(
    _: InstanceAdmin,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Vec<api_keys::ApiKey>>> {
    workspaces::get(&state.pool, id).await?;
    Ok(Json(api_keys::list(&state.pool, id).await?))
}

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    workspace_id: Option<Uuid>,
    limit: Option<i64>,
}

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

/// Prometheus text format (see `telemetry::metrics`); also served without credentials
/// on `--metrics-listen`.
async fn metrics(_: InstanceAdmin, State(state): State<AppState>) -> axum::response::Response {
    crate::telemetry::metrics::response(&state).await
}
