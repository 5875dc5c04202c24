//! Workflow drafts (crate::automation::builder::drafts): what Aura (or anyone with the
//! automation interface) saved but nobody has published yet. Read them, or discard
//! one; publishing goes through the chat's approval (or `POST /api/workflows` with the
//! definition).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::Json;
use crate::auth::{Role, WorkspaceCaller};
use crate::automation::builder::drafts::{self, Draft};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

const SLUG: &str = "The draft's workflow slug";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_drafts))
        .routes(routes!(get_draft, delete_draft))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Drafts {
    /// Most recently changed first.
    drafts: Vec<Draft>,
}

/// Any role: the workspace's unpublished drafts.
#[utoipa::path(get, path = "/api/workflow-drafts", tag = "workflows",
    responses((status = 200, body = Drafts)))]
async fn list_drafts(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
) -> ApiResult<Json<Drafts>> {
    caller.require(Role::Viewer)?;
    let drafts = drafts::list(&state.pool, caller.0.workspace_id).await?;
    Ok(Json(Drafts { drafts }))
}

/// Any role: one draft.
#[utoipa::path(get, path = "/api/workflow-drafts/{slug}", tag = "workflows",
    params(("slug" = String, Path, description = SLUG)),
    responses((status = 200, body = Draft), (status = 404, description = "No such draft")))]
async fn get_draft(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> ApiResult<Json<Draft>> {
    caller.require(Role::Viewer)?;
    drafts::get(&state.pool, caller.0.workspace_id, &slug)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no draft {slug:?} in this workspace")))
}

/// Member: discard a draft (the published workflow, if any, is untouched).
#[utoipa::path(delete, path = "/api/workflow-drafts/{slug}", tag = "workflows",
    params(("slug" = String, Path, description = SLUG)),
    responses((status = 204, description = "Discarded"), (status = 404, description = "No such draft")))]
async fn delete_draft(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Member)?;
    if drafts::delete(&state.pool, caller.0.workspace_id, &slug).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "no draft {slug:?} in this workspace"
        )))
    }
}
