//! Workspaces: the tenants. Every business row carries a `workspace_id`.

use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Workspace {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorkspace {
    /// URL-safe identifier: lowercase letters, digits and `-`, 1-63 characters.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,62}$")]
    pub slug: String,
    /// 1-200 characters, not only spaces.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
}

/// The slug rule shared by workspaces and agents (and their tables' CHECKs):
/// 1-63 lowercase letters, digits or `-`, not starting with `-`.
pub fn is_valid_slug(slug: &str) -> bool {
    (1..=63).contains(&slug.len())
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-')
}

impl NewWorkspace {
    pub fn validate(&self) -> ApiResult<()> {
        if !is_valid_slug(&self.slug) {
            return Err(ApiError::Invalid(format!(
                "slug {:?} must be 1-63 lowercase letters, digits or '-', not starting with '-'",
                self.slug
            )));
        }
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            return Err(ApiError::Invalid("name must be 1-200 characters".into()));
        }
        Ok(())
    }
}

pub async fn create<'e>(db: impl PgExecutor<'e>, new: &NewWorkspace) -> ApiResult<Workspace> {
    let result = sqlx::query_as(
        "INSERT INTO workspaces (id, slug, name) VALUES ($1, $2, $3) \
         RETURNING id, slug, name, created_at",
    )
    .bind(Uuid::new_v4())
    .bind(&new.slug)
    .bind(new.name.trim())
    .fetch_one(db)
    .await;
    match result {
        Err(sqlx::Error::Database(err)) if err.is_unique_violation() => Err(ApiError::Conflict(
            format!("a workspace with slug {:?} already exists", new.slug),
        )),
        other => Ok(other?),
    }
}

/// A new workspace and its owner key (the secret is in the result, shown once), in the
/// caller's transaction. Used by the admin API and by `agenthost demo seed`.
pub async fn create_with_owner(
    tx: &mut sqlx::PgConnection,
    new: &NewWorkspace,
    created_by: &str,
) -> ApiResult<(Workspace, crate::api_keys::CreatedKey)> {
    new.validate()?;
    let workspace = create(&mut *tx, new).await?;
    let owner = crate::api_keys::NewKey {
        name: "owner".into(),
        role: crate::auth::Role::Owner,
    };
    let key = crate::api_keys::create(&mut *tx, workspace.id, &owner, created_by).await?;
    Ok((workspace, key))
}

pub async fn list<'e>(db: impl PgExecutor<'e>) -> sqlx::Result<Vec<Workspace>> {
    sqlx::query_as("SELECT id, slug, name, created_at FROM workspaces ORDER BY created_at, slug")
        .fetch_all(db)
        .await
}

pub async fn get<'e>(db: impl PgExecutor<'e>, id: Uuid) -> ApiResult<Workspace> {
    sqlx::query_as("SELECT id, slug, name, created_at FROM workspaces WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("workspace {id} not found")))
}
