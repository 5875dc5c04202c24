//! Workflows, their versions and executions in PostgreSQL, as the REST API sees them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::definition::{self, Definition, NodeTypeInfo};
use crate::error::{ApiError, ApiResult};
use crate::registry::Registry;

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Workflow {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub description: String,
    /// A disabled workflow starts no executions.
    pub enabled: bool,
    /// The version new executions run.
    pub latest_version: i32,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// `POST /api/workflows` and `POST /api/workflows/{id}/versions`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowInput {
    /// Set once, when the workflow is created; when absent it is made from the name
    /// (`Weekly report!` -> `weekly-report`), as n8n and Windmill users expect.
    #[serde(default)]
    pub slug: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Present: a new version with this definition. Required to create a workflow.
    #[serde(default)]
    #[schema(value_type = Option<Definition>)]
    pub definition: Option<Value>,
}

/// The 422 of a definition with problems.
pub fn invalid_definition(problems: Vec<definition::Problem>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let message = format!(
        "the workflow definition has {} problem{}: {}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        problems
            .iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let body = json!({ "error": {
        "code": "invalid_definition", "message": message, "problems": problems
    }});
    (
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        axum::Json(body),
    )
        .into_response()
}

/// The node types of the active node plugins, for validation.
pub fn node_type_lookup(registry: &Registry) -> impl Fn(&str) -> Option<NodeTypeInfo> + '_ {
    move |name: &str| {
        let (plugin, node_type) = name.split_once('/')?;
        let active = registry.active(plugin)?;
        let descriptor = active
            .plugin
            .nodes
            .iter()
            .find(|n| n.node_type == node_type)?;
        Some(NodeTypeInfo {
            config_schema: serde_json::from_str(&descriptor.config_schema).unwrap_or(json!({})),
            branches: descriptor.branches.clone(),
        })
    }
}

pub async fn get_workflow(pool: &PgPool, workspace: Uuid, id_or_slug: &str) -> ApiResult<Workflow> {
    let id = Uuid::parse_str(id_or_slug).ok();
    sqlx::query_as(
        "SELECT id, slug, name, description, enabled, latest_version, created_at, updated_at \
         FROM workflows WHERE workspace_id = $1 AND (id = $2 OR slug = $3)",
    )
    .bind(workspace)
    .bind(id)
    .bind(id_or_slug)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no workflow {id_or_slug:?} in this workspace")))
}

pub async fn list_workflows(pool: &PgPool, workspace: Uuid) -> ApiResult<Vec<Workflow>> {
    Ok(sqlx::query_as(
        "SELECT id, slug, name, description, enabled, latest_version, created_at, updated_at \
         FROM workflows WHERE workspace_id = $1 AND owner IS NULL ORDER BY slug",
    )
    .bind(workspace)
    .fetch_all(pool)
    .await?)
}

/// `weekly-report` from `Weekly report!`: lower-case ASCII letters and digits, words
/// joined by `-`, at most 63 (the table's rule). `None` when nothing is left.
fn slug_from_name(name: &str) -> Option<String> {
    let slug: String = crate::support::kb::slugify(name).chars().take(63).collect();
    let slug = slug.trim_end_matches('-');
    (!slug.is_empty()).then(|| slug.to_string())
}

/// A new workflow with version 1.
pub async fn create_workflow(
    pool: &PgPool,
    workspace: Uuid,
    key: Option<Uuid>,
    input: &WorkflowInput,
    definition: &Definition,
) -> ApiResult<Workflow> {
    let Some(name) = &input.name else {
        return Err(ApiError::Invalid("name is required".into()));
    };
    let slug = match &input.slug {
        Some(slug) => slug.clone(),
        None => slug_from_name(name).ok_or_else(|| {
            ApiError::Invalid(format!(
                "the name {name:?} has no letters or digits to make a slug from: give a slug"
            ))
        })?,
    };
    let mut tx = pool.begin().await?;
    let created: Result<Workflow, sqlx::Error> = sqlx::query_as(
        "INSERT INTO workflows (workspace_id, slug, name, description, enabled, latest_version) \
         VALUES ($1, $2, $3, $4, $5, 1) \
         RETURNING id, slug, name, description, enabled, latest_version, created_at, updated_at",
    )
    .bind(workspace)
    .bind(&slug)
    .bind(name)
    .bind(input.description.clone().unwrap_or_default())
    .bind(input.enabled.unwrap_or(true))
    .fetch_one(&mut *tx)
    .await;
    let workflow = match created {
        Ok(workflow) => workflow,
        Err(sqlx::Error::Database(err)) if err.is_unique_violation() => {
            return Err(ApiError::Conflict(format!(
                "a workflow with slug {slug:?} exists already"
            )));
        }
        Err(sqlx::Error::Database(err)) if err.is_check_violation() => {
            return Err(ApiError::Invalid(
                "slug must be lowercase letters, digits and `-` (at most 63), name 1-200 characters"
                    .into(),
            ));
        }
        Err(err) => return Err(err.into()),
    };
    insert_version(&mut tx, workflow.id, 1, definition, key).await?;
    tx.commit().await?;
    Ok(workflow)
}

async fn insert_version(
    tx: &mut sqlx::PgConnection,
    workflow: Uuid,
    version: i32,
    definition: &Definition,
    key: Option<Uuid>,
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO workflow_versions (workflow_id, version, definition, created_by) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(workflow)
    .bind(version)
    .bind(sqlx::types::Json(definition))
    .bind(key)
    .execute(&mut *tx)
    .await?;
    let actor = key.map_or("admin".to_string(), |key| format!("key:{key}"));
    crate::automation::schedules::store::sync_triggers(tx, workflow, definition, &actor).await?;
    crate::automation::hooks::store::on_version_saved(tx, workflow, definition).await?;
    // A version's event triggers fire for events after it was saved: its cursor starts
    // at the feed's head (crate::automation::event_triggers).
    if definition.triggers.is_empty() {
        sqlx::query("DELETE FROM event_trigger_cursors WHERE workflow_id = $1")
            .bind(workflow)
            .execute(&mut *tx)
            .await?;
    } else {
        sqlx::query(
            "INSERT INTO event_trigger_cursors (workflow_id, tx, seq) \
             SELECT $1, coalesce(head.tx, '0'::xid8), coalesce(head.seq, 0) \
             FROM (SELECT 1) one LEFT JOIN LATERAL ( \
                 SELECT tx, seq FROM events \
                 WHERE workspace_id = (SELECT workspace_id FROM workflows WHERE id = $1) \
                 ORDER BY tx DESC, seq DESC LIMIT 1) head ON true \
             ON CONFLICT (workflow_id) DO UPDATE SET tx = EXCLUDED.tx, seq = EXCLUDED.seq, \
                 updated_at = now()",
        )
        .bind(workflow)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Change the name, description or enabled flag, and add version n+1 when a
/// definition is given. Versions are never changed.
pub async fn update_workflow(
    pool: &PgPool,
    workspace: Uuid,
    id_or_slug: &str,
    key: Option<Uuid>,
    input: &WorkflowInput,
    definition: Option<&Definition>,
) -> ApiResult<Workflow> {
    let current = get_workflow(pool, workspace, id_or_slug).await?;
    refuse_owned(pool, current.id).await?;
    let mut tx = pool.begin().await?;
    // Locks the row, so two saves get n+1 and n+2.
    let workflow: Workflow = sqlx::query_as(
        "UPDATE workflows SET name = COALESCE($2, name), description = COALESCE($3, description), \
         enabled = COALESCE($4, enabled), latest_version = latest_version + $5::int, \
         updated_at = now() WHERE id = $1 \
         RETURNING id, slug, name, description, enabled, latest_version, created_at, updated_at",
    )
    .bind(current.id)
    .bind(&input.name)
    .bind(&input.description)
    .bind(input.enabled)
    .bind(i32::from(definition.is_some()))
    .fetch_one(&mut *tx)
    .await
    .map_err(|err| match err {
        sqlx::Error::Database(db) if db.is_check_violation() => {
            ApiError::Invalid("name must be 1-200 characters".into())
        }
        other => other.into(),
    })?;
    if let Some(definition) = definition {
        insert_version(
            &mut tx,
            workflow.id,
            workflow.latest_version,
            definition,
            key,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(workflow)
}

pub async fn delete_workflow(pool: &PgPool, workspace: Uuid, id_or_slug: &str) -> ApiResult<()> {
    let workflow = get_workflow(pool, workspace, id_or_slug).await?;
    refuse_owned(pool, workflow.id).await?;
    sqlx::query("DELETE FROM workflows WHERE id = $1")
        .bind(workflow.id)
        .execute(pool)
        .await?;
    Ok(())
}

/// A workflow a schedule or rule made for its actions is changed through its owner.
async fn refuse_owned(pool: &PgPool, workflow: Uuid) -> ApiResult<()> {
    let owner: Option<String> = sqlx::query_scalar("SELECT owner FROM workflows WHERE id = $1")
        .bind(workflow)
        .fetch_optional(pool)
        .await?
        .flatten();
    match owner {
        Some(owner) => {
            let (kind, id) = owner.split_once(':').unwrap_or(("owner", &owner));
            Err(ApiError::Conflict(format!(
                "this workflow runs the actions of {kind} {id}; change or delete the {kind} instead"
            )))
        }
        None => Ok(()),
    }
}

/// A new workflow owned by a schedule or rule (`schedule:<id>`), left out of the list,
/// at version 1. In the owner's transaction.
pub async fn save_owned(
    tx: &mut sqlx::PgConnection,
    workspace: Uuid,
    owner: &str,
    name: &str,
    definition: &Definition,
) -> ApiResult<Uuid> {
    let slug = format!(
        "{}-{}",
        owner.split(':').next().unwrap_or("owned"),
        Uuid::new_v4().simple()
    );
    let (id, version): (Uuid, i32) = sqlx::query_as(
        "INSERT INTO workflows (workspace_id, slug, name, owner, latest_version) \
         VALUES ($1, $2, $3, $4, 1) RETURNING id, latest_version",
    )
    .bind(workspace)
    .bind(&slug)
    .bind(name)
    .bind(owner)
    .fetch_one(&mut *tx)
    .await?;
    insert_version(tx, id, version, definition, None).await?;
    Ok(id)
}

/// Version n+1 of an owned workflow.
pub async fn save_owned_version(
    tx: &mut sqlx::PgConnection,
    workflow: Uuid,
    name: &str,
    definition: &Definition,
) -> ApiResult<()> {
    let version: i32 = sqlx::query_scalar(
        "UPDATE workflows SET latest_version = latest_version + 1, name = $2, updated_at = now() \
         WHERE id = $1 RETURNING latest_version",
    )
    .bind(workflow)
    .bind(name)
    .fetch_one(&mut *tx)
    .await?;
    insert_version(tx, workflow, version, definition, None).await
}

/// A saved version of a workflow (never changed).
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = WorkflowVersion)]
pub struct VersionRow {
    pub version: i32,
    #[schema(value_type = Definition)]
    pub definition: Value,
    /// The key that saved it.
    pub created_by: Option<Uuid>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

pub async fn list_versions(pool: &PgPool, workflow: Uuid) -> ApiResult<Vec<VersionRow>> {
    Ok(sqlx::query_as(
        "SELECT version, definition, created_by, created_at FROM workflow_versions \
         WHERE workflow_id = $1 ORDER BY version DESC",
    )
    .bind(workflow)
    .fetch_all(pool)
    .await?)
}

pub async fn get_version(pool: &PgPool, workflow: Uuid, version: i32) -> ApiResult<VersionRow> {
    sqlx::query_as(
        "SELECT version, definition, created_by, created_at FROM workflow_versions \
         WHERE workflow_id = $1 AND version = $2",
    )
    .bind(workflow)
    .bind(version)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("the workflow has no version {version}")))
}

/// How an execution is started.
#[derive(Debug, Default)]
pub struct StartOptions {
    pub idempotency_key: Option<String>,
    /// Who starts it, as events name callers (`key:<id>`); `system:engine` when unset.
    pub actor: Option<String>,
}

impl StartOptions {
    pub fn actor(&self) -> &str {
        self.actor.as_deref().unwrap_or(super::engine::ENGINE)
    }
}

/// One run of a workflow version.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = Execution)]
pub struct ExecutionRow {
    pub id: Uuid,
    pub workflow_id: Uuid,
    /// The workflow version it runs.
    pub version: i32,
    /// `running`, `waiting`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub idempotency_key: Option<String>,
    /// The plugin version each node's plugin ran at (`{"plugin": "1.2.0"}`).
    #[schema(value_type = Object)]
    pub node_plugins: Value,
    /// The failed or cancelled execution this one retries.
    pub retry_of: Option<Uuid>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

const EXECUTION_COLUMNS: &str = "id, workflow_id, version, status, input, output, error, \
     idempotency_key, node_plugins, retry_of, created_at, finished_at";

pub async fn get_execution(pool: &PgPool, workspace: Uuid, id: Uuid) -> ApiResult<ExecutionRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {EXECUTION_COLUMNS} FROM executions WHERE workspace_id = $1 AND id = $2"
    )))
    .bind(workspace)
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no execution {id} in this workspace")))
}

pub async fn list_executions(
    pool: &PgPool,
    workspace: Uuid,
    workflow: Option<Uuid>,
    status: Option<&str>,
    limit: i64,
) -> ApiResult<Vec<ExecutionRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {EXECUTION_COLUMNS} FROM executions WHERE workspace_id = $1 \
         AND ($2::uuid IS NULL OR workflow_id = $2) AND ($3::text IS NULL OR status = $3) \
         ORDER BY created_at DESC LIMIT $4"
    )))
    .bind(workspace)
    .bind(workflow)
    .bind(status)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// One attempt of one node of an execution.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = NodeRun)]
pub struct NodeRunRow {
    pub node_id: String,
    pub attempt: i32,
    /// The run's state (`ready`, `running`, `waiting`, `succeeded`, `failed`, ...).
    pub status: String,
    pub input: Option<Value>,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub error_kind: Option<String>,
    pub branches: Option<Vec<String>>,
    pub plugin: Option<String>,
    pub version: Option<String>,
    /// What a waiting node waits for (a timer or an approval).
    pub wait: Option<Value>,
    /// The execution whose output this node reuses (a retry).
    pub reused_from: Option<Uuid>,
    /// When a ready or waiting run is due; none for a wait without an end.
    pub run_at: Option<chrono::DateTime<chrono::Utc>>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn node_runs(pool: &PgPool, execution: Uuid) -> ApiResult<Vec<NodeRunRow>> {
    Ok(sqlx::query_as(
        "SELECT node_id, attempt, status, input, output, error, error_kind, branches, plugin, \
         version, wait, reused_from, \
         CASE WHEN run_at < '9999-01-01 00:00:00+00' THEN run_at END AS run_at, \
         started_at, finished_at FROM node_runs \
         WHERE execution_id = $1 ORDER BY id",
    )
    .bind(execution)
    .fetch_all(pool)
    .await?)
}

/// The plugin version of every node plugin a definition uses, as active now.
pub fn pin_node_plugins(
    registry: &Registry,
    definition: &Definition,
) -> ApiResult<BTreeMap<String, String>> {
    let mut pins = BTreeMap::new();
    for node in &definition.nodes {
        let (plugin, _) = node.plugin_and_type();
        if pins.contains_key(plugin) {
            continue;
        }
        let active = registry.active(plugin).ok_or_else(|| {
            ApiError::Conflict(format!(
                "node {:?} needs the node plugin {plugin:?}, which has no active version",
                node.id
            ))
        })?;
        pins.insert(plugin.to_string(), active.plugin.version.clone());
    }
    Ok(pins)
}
