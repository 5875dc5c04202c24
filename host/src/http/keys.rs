//! A workspace's own API keys, managed by its admins and owners.

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{Json, Path, RequestId};
use crate::api_keys::{self, ApiKey, CreatedKey, NewKey};
use crate::audit::{self, AuditEvent};
use crate::auth::{Principal, Role, WorkspaceCaller};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
}

/// Admin: the workspace's keys (never their secrets).
#[utoipa::path(get, path = "/api/keys", tag = "keys",
    responses((status = 200, body = Vec<ApiKey>)))]
async fn list_keys(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<ApiKey>>> {
    caller.require(Role::Admin)?;
    Ok(Json(
        api_keys::list(&state.pool, caller.0.workspace_id).await?,
    ))
}

/// Admins create keys up to admin; only owners create owner keys.
#[utoipa::path(post, path = "/api/keys", tag = "keys", request_body = NewKey,
    responses((status = 201, description = "The key; its secret is shown only here", body = CreatedKey)))]
async fn create_key(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    request_id: RequestId,
    Json(new): Json<NewKey>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    caller.require(Role::Admin)?;
    if new.role > caller.0.role {
        return Err(ApiError::Forbidden(format!(
            "{} key cannot create {} key",
            caller.0.role.with_article(),
            new.role.with_article()
        )));
    }
    let principal = Principal::Key(caller.0.clone());
    let mut tx = state.pool.begin().await?;
    let created =
        api_keys::create(&mut *tx, caller.0.workspace_id, &new, &principal.actor()).await?;
    let event = AuditEvent {
        principal: &principal,
        request_id: request_id.as_deref(),
        workspace_id: Some(caller.0.workspace_id),
        action: "api_key.create",
        target: Some(created.key.id.to_string()),
        details: json!({ "name": created.key.name, "role": created.key.role }),
    };
    audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Admins revoke keys up to admin; only owners revoke owner keys.
#[utoipa::path(delete, path = "/api/keys/{id}", tag = "keys",
    params(("id" = Uuid, Path, description = "The key's id")),
    responses((status = 204, description = "Revoked")))]
async fn revoke_key(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    request_id: RequestId,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    let mut tx = state.pool.begin().await?;
    let key = api_keys::get(&mut *tx, caller.0.workspace_id, id).await?;
    let target_role = Role::parse(&key.role).unwrap_or(Role::Owner);
    if target_role > caller.0.role {
        return Err(ApiError::Forbidden(format!(
            "{} key cannot revoke {} key",
            caller.0.role.with_article(),
            target_role.with_article()
        )));
    }
    api_keys::revoke(&mut *tx, id).await?;
    let principal = Principal::Key(caller.0.clone());
    let event = AuditEvent {
        principal: &principal,
        request_id: request_id.as_deref(),
        workspace_id: Some(caller.0.workspace_id),
        action: "api_key.revoke",
        target: Some(id.to_string()),
        details: json!({ "name": key.name, "role": key.role }),
    };
    audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    state.key_cache.forget(id);
    Ok(StatusCode::NO_CONTENT)
}
