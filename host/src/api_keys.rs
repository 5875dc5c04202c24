//! Workspace API keys. The secret exists in clear only in the response that creates
//! the key; the database keeps its SHA-256 and a short visible prefix.

use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::auth::{self, Role, VISIBLE_PREFIX_LEN};
use crate::error::{ApiError, ApiResult};

/// A key as listed: never the secret.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub role: String,
    pub prefix: String,
    pub created_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The response to creating a key: the key plus its secret, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub key: ApiKey,
    pub secret: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// 1-200 characters, not only spaces.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
    pub role: Role,
}

/// The listed columns, spliced into queries at compile time (literal SQL only).
macro_rules! key_columns {
    () => {
        "id, workspace_id, name, role, prefix, created_by, created_at, last_used_at, revoked_at"
    };
}

pub async fn create<'e>(
    db: impl PgExecutor<'e>,
    workspace_id: Uuid,
    new: &NewKey,
    created_by: &str,
) -> ApiResult<CreatedKey> {
    if new.name.trim().is_empty() || new.name.chars().count() > 200 {
        return Err(ApiError::Invalid(
            "key name must be 1-200 characters".into(),
        ));
    }
    let secret = auth::new_api_key();
    let key: ApiKey = sqlx::query_as(concat!(
        "INSERT INTO api_keys (id, workspace_id, name, role, prefix, secret_sha256, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
        key_columns!()
    ))
    .bind(Uuid::new_v4())
    .bind(workspace_id)
    .bind(new.name.trim())
    .bind(new.role.as_str())
    .bind(&secret[..VISIBLE_PREFIX_LEN])
    .bind(auth::sha256(&secret))
    .bind(created_by)
    .fetch_one(db)
    .await?;
    Ok(CreatedKey { key, secret })
}

pub async fn list<'e>(db: impl PgExecutor<'e>, workspace_id: Uuid) -> sqlx::Result<Vec<ApiKey>> {
    sqlx::query_as(concat!(
        "SELECT ",
        key_columns!(),
        " FROM api_keys WHERE workspace_id = $1 ORDER BY created_at, id"
    ))
    .bind(workspace_id)
    .fetch_all(db)
    .await
}

pub async fn get<'e>(db: impl PgExecutor<'e>, workspace_id: Uuid, id: Uuid) -> ApiResult<ApiKey> {
    sqlx::query_as(concat!(
        "SELECT ",
        key_columns!(),
        " FROM api_keys WHERE workspace_id = $1 AND id = $2"
    ))
    .bind(workspace_id)
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("API key {id} not found in this workspace")))
}

/// Revoke a key; revoking twice is harmless and keeps the first revocation time.
pub async fn revoke<'e>(db: impl PgExecutor<'e>, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}
