//! The audit log: one row per administrative action, written in the same transaction
//! as the action where there is one, so an action is never recorded without happening
//! (or the reverse).

use serde::Serialize;
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::auth::Principal;

/// One audit entry, as returned by the audit endpoints.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor: String,
    pub workspace_id: Option<Uuid>,
    pub action: String,
    pub target: Option<String>,
    pub details: Value,
    pub request_id: Option<String>,
}

/// What was done, to what, by whom.
#[derive(Debug)]
pub struct AuditEvent<'a> {
    pub principal: &'a Principal,
    pub request_id: Option<&'a str>,
    pub workspace_id: Option<Uuid>,
    pub action: &'a str,
    pub target: Option<String>,
    pub details: Value,
}

pub async fn record<'e>(executor: impl PgExecutor<'e>, event: AuditEvent<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (actor, workspace_id, action, target, details, request_id) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(event.principal.actor())
    .bind(event.workspace_id)
    .bind(event.action)
    .bind(event.target)
    .bind(event.details)
    .bind(event.request_id)
    .execute(executor)
    .await?;
    Ok(())
}

/// Newest first; `workspace_id` None lists every workspace (instance admin only).
pub async fn list<'e>(
    executor: impl PgExecutor<'e>,
    workspace_id: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<AuditEntry>> {
    sqlx::query_as(
        "SELECT id, at, actor, workspace_id, action, target, details, request_id \
         FROM audit_log WHERE ($1::uuid IS NULL OR workspace_id = $1) \
         ORDER BY id DESC LIMIT $2",
    )
    .bind(workspace_id)
    .bind(limit)
    .fetch_all(executor)
    .await
}
