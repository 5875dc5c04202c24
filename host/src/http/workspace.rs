//! The calling key's own workspace: who am I, and its audit log.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::extract::{Json, Query};
use crate::audit::{self, AuditEntry};
use crate::auth::{Role, WorkspaceCaller};
use crate::error::ApiResult;
use crate::state::AppState;
use crate::workspaces::{self, Workspace};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/me", get(me))
        .route("/api/audit", get(list_audit))
}

#[derive(Debug, Serialize)]
struct Me {
    key_id: Uuid,
    role: Role,
    workspace: Workspace,
}

/// Any role: which key this is and which workspace it belongs to.
async fn me(caller: WorkspaceCaller, State(state): State<AppState>) -> ApiResult<Json<Me>> {
    let workspace = workspaces::get(&state.pool, caller.0.workspace_id).await?;
    Ok(Json(Me {
        key_id: caller.0.key_id,
        role: caller.0.role,
        workspace,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    limit: Option<i64>,
}

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
