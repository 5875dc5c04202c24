//! Rules as rows: create (with the workflow its actions run as), change, list, delete,
//! and each rule's history of matched events.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::def::{self, Conditions, RuleInput};
use crate::error::{ApiError, ApiResult};
use crate::registry::Registry;
use crate::workflows::definition::Problem;
use crate::workflows::store as workflows;

/// A rule with its statistics.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Rule {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub active: bool,
    pub priority: i32,
    #[schema(value_type = def::Trigger)]
    pub trigger: sqlx::types::Json<def::Trigger>,
    #[schema(value_type = Conditions)]
    pub conditions: sqlx::types::Json<Conditions>,
    #[schema(value_type = Vec<Object>)]
    pub actions: Value,
    /// The workflow the actions run as (its executions are the rule's runs).
    pub workflow_id: Uuid,
    /// Milliseconds.
    pub cooldown_ms: Option<i64>,
    pub max_per_hour: Option<i32>,
    /// Events that passed the trigger, filter and conditions.
    pub matched: i64,
    /// Matched events that started the actions.
    pub ran: i64,
    pub skipped_cooldown: i64,
    pub skipped_limit: i64,
    pub succeeded: i64,
    /// Runs whose actions failed (or that could not start).
    pub failed: i64,
    pub last_matched_at: Option<DateTime<Utc>>,
    pub last_ran_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SELECT: &str = "SELECT id, name, description, active, priority, \
     jsonb_strip_nulls(jsonb_build_object('event', event, 'filter', filter)) AS trigger, \
     conditions, actions, workflow_id, cooldown_ms, max_per_hour, matched, ran, \
     skipped_cooldown, skipped_limit, succeeded, failed, last_matched_at, last_ran_at, \
     created_by, created_at, updated_at FROM rules";

/// One matched event in a rule's history.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = RuleRun)]
pub struct Run {
    pub event_id: Uuid,
    pub event_type: String,
    /// `started`, `skipped_cooldown`, `skipped_limit`, or `failed` (could not start:
    /// `note` says why).
    pub outcome: String,
    pub execution_id: Option<Uuid>,
    /// The execution's status now.
    pub status: Option<String>,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

fn required<T>(value: &Option<T>, field: &str, problems: &mut Vec<Problem>) {
    if value.is_none() {
        problems.push(Problem::at(field, "is required"));
    }
}

/// A new rule; `Err` carries every problem at once.
pub async fn create(
    pool: &PgPool,
    registry: &Registry,
    workspace: Uuid,
    actor: &str,
    input: &RuleInput,
) -> Result<ApiResult<Rule>, Vec<Problem>> {
    let lookup = workflows::node_type_lookup(registry);
    let mut problems = Vec::new();
    required(&input.name, "name", &mut problems);
    required(&input.trigger, "trigger", &mut problems);
    required(&input.actions, "actions", &mut problems);
    let definition = match def::check(input, &lookup) {
        Ok(definition) => definition,
        Err(found) => {
            problems.extend(found);
            None
        }
    };
    let (Some(name), Some(trigger), Some(definition), true) =
        (&input.name, &input.trigger, definition, problems.is_empty())
    else {
        return Err(problems);
    };
    Ok(async {
        let id = Uuid::new_v4();
        let mut tx = pool.begin().await?;
        let workflow =
            workflows::save_owned(&mut tx, workspace, &format!("rule:{id}"), name, &definition)
                .await?;
        sqlx::query(
            "INSERT INTO rules (id, workspace_id, name, description, active, priority, event, \
                 filter, conditions, actions, workflow_id, cooldown_ms, max_per_hour, since_tx, \
                 since_seq, created_by) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
                 coalesce(head.tx, '0'::xid8), coalesce(head.seq, 0), $14 \
             FROM (SELECT 1) one LEFT JOIN LATERAL ( \
                 SELECT tx, seq FROM events WHERE workspace_id = $2 \
                 ORDER BY tx DESC, seq DESC LIMIT 1) head ON true",
        )
        .bind(id)
        .bind(workspace)
        .bind(name.trim())
        .bind(input.description.clone().unwrap_or_default())
        .bind(input.active.unwrap_or(true))
        .bind(input.priority.unwrap_or(0))
        .bind(&trigger.event)
        .bind(&trigger.filter)
        .bind(sqlx::types::Json(
            input.conditions.clone().unwrap_or_default(),
        ))
        .bind(Value::from(input.actions.clone().unwrap_or_default()))
        .bind(workflow)
        .bind(def::cooldown_ms(input))
        .bind(input.max_per_hour)
        .bind(actor)
        .execute(&mut *tx)
        .await?;
        // The workspace's walker starts at the feed's head with its first rule.
        sqlx::query(
            "INSERT INTO rule_cursors (workspace_id, tx, seq) \
             SELECT $1, since_tx, since_seq FROM rules WHERE id = $2 \
             ON CONFLICT (workspace_id) DO NOTHING",
        )
        .bind(workspace)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        get(pool, workspace, id).await
    }
    .await)
}

/// Change what is given; new actions are a new version of the rule's workflow.
pub async fn update(
    pool: &PgPool,
    registry: &Registry,
    workspace: Uuid,
    id: Uuid,
    input: &RuleInput,
) -> ApiResult<Result<Rule, Vec<Problem>>> {
    let current = get(pool, workspace, id).await?;
    let lookup = workflows::node_type_lookup(registry);
    let definition = match def::check(input, &lookup) {
        Ok(definition) => definition,
        Err(problems) => return Ok(Err(problems)),
    };
    let mut tx = pool.begin().await?;
    if let Some(definition) = &definition {
        let name = input.name.as_deref().unwrap_or(&current.name);
        workflows::save_owned_version(&mut tx, current.workflow_id, name, definition).await?;
    }
    let trigger = input.trigger.as_ref();
    sqlx::query(
        "UPDATE rules SET name = coalesce($3, name), description = coalesce($4, description), \
             active = coalesce($5, active), priority = coalesce($6, priority), \
             event = coalesce($7, event), \
             filter = CASE WHEN $7 IS NULL THEN filter ELSE $8 END, \
             conditions = coalesce($9, conditions), actions = coalesce($10, actions), \
             cooldown_ms = CASE WHEN $11 THEN $12 ELSE cooldown_ms END, \
             max_per_hour = coalesce($13, max_per_hour), updated_at = now() \
         WHERE workspace_id = $1 AND id = $2",
    )
    .bind(workspace)
    .bind(id)
    .bind(input.name.as_deref().map(str::trim))
    .bind(&input.description)
    .bind(input.active)
    .bind(input.priority)
    .bind(trigger.map(|t| &t.event))
    .bind(trigger.and_then(|t| t.filter.as_ref()))
    .bind(input.conditions.clone().map(sqlx::types::Json))
    .bind(input.actions.clone().map(Value::from))
    .bind(input.cooldown.is_some())
    .bind(def::cooldown_ms(input))
    .bind(input.max_per_hour)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Ok(get(pool, workspace, id).await?))
}

pub async fn set_active(pool: &PgPool, workspace: Uuid, id: Uuid, active: bool) -> ApiResult<Rule> {
    let done = sqlx::query(
        "UPDATE rules SET active = $3, updated_at = now() WHERE workspace_id = $1 AND id = $2",
    )
    .bind(workspace)
    .bind(id)
    .bind(active)
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(not_found(id));
    }
    get(pool, workspace, id).await
}

fn not_found(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no rule {id} in this workspace"))
}

pub async fn get(pool: &PgPool, workspace: Uuid, id: Uuid) -> ApiResult<Rule> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE workspace_id = $1 AND id = $2"
    )))
    .bind(workspace)
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| not_found(id))
}

/// Highest priority first, as they run.
pub async fn list(pool: &PgPool, workspace: Uuid) -> ApiResult<Vec<Rule>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE workspace_id = $1 ORDER BY priority DESC, created_at"
    )))
    .bind(workspace)
    .fetch_all(pool)
    .await?)
}

/// Delete a rule and the workflow its actions ran as (and so its executions).
pub async fn delete(pool: &PgPool, workspace: Uuid, id: Uuid) -> ApiResult<()> {
    let rule = get(pool, workspace, id).await?;
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM rules WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM workflows WHERE id = $1 AND owner = $2")
        .bind(rule.workflow_id)
        .bind(format!("rule:{id}"))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// A rule's matched events, newest first.
pub async fn runs(pool: &PgPool, workspace: Uuid, id: Uuid, limit: i64) -> ApiResult<Vec<Run>> {
    get(pool, workspace, id).await?;
    Ok(sqlx::query_as(
        "SELECT r.event_id, r.event_type, r.outcome, r.execution_id, e.status, r.note, r.at, \
             coalesce(r.finished_at, e.finished_at) AS finished_at \
         FROM rule_runs r LEFT JOIN executions e ON e.id = r.execution_id \
         WHERE r.rule_id = $1 ORDER BY r.at DESC LIMIT $2",
    )
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
