//! The calling key's own workspace: who am I, and its audit log.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{Json, Query};
use crate::audit::{self, AuditEntry};
use crate::auth::{Role, WorkspaceCaller};
use crate::error::ApiResult;
use crate::state::AppState;
use crate::workspaces::{self, Workspace};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list_audit))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Me {
    key_id: Uuid,
    role: Role,
    workspace: Workspace,
}

/// Any role: which key this is and which workspace it belongs to.
#[utoipa::path(get, path = "/api/me", tag = "workspace",
    responses((status = 200, body = Me)))]
async fn me(caller: WorkspaceCaller, State(state): State<AppState>) -> ApiResult<Json<Me>> {
    let workspace = workspaces::get(&state.pool, caller.0.workspace_id).await?;
    Ok(Json(Me {
        key_id: caller.0.key_id,
        role: caller.0.role,
        workspace,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// How many entries, newest first (1-1000, default 100).
    limit: Option<i64>,
}

/// Admin: the workspace's audit log.
#[utoipa::path(get, path = "/api/audit", tag = "workspace", params(AuditQuery),
    responses((status = 200, body = Vec<AuditEntry>)))]
async fn list_audit(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    caller.require(Role::Admin)?;
    let limit = super::clamp_limit(query.limit, 100, 1000);
    let workspace = Some(caller.0.workspace_id);
    Ok(Json(audit::list(&state.pool, workspace, limit).await?))
}
