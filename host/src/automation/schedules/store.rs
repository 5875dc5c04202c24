//! Schedules as rows: a workflow's schedule triggers kept in step with its latest
//! version, scheduled tasks, and what people do to either (pause, resume, run now).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::spec::ScheduleSpec;
use super::ticker::{self, Fired, Kind};
use crate::error::{ApiError, ApiResult};
use crate::workflows::Workflows;
use crate::workflows::definition::Definition;
use crate::workflows::trigger::TriggerDef;

/// A schedule: a workflow's trigger or a scheduled task.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Schedule {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    /// `trigger` (declared in a workflow's definition; change it there) or `task`.
    pub kind: String,
    /// The workflow a tick starts (a task's action runs as a workflow of its own).
    pub workflow_id: Uuid,
    pub workflow: String,
    /// Which of the workflow's triggers, for a trigger.
    pub trigger_index: Option<i32>,
    #[schema(value_type = ScheduleSpec)]
    pub schedule: sqlx::types::Json<ScheduleSpec>,
    /// A task's action, as given.
    #[schema(value_type = Option<Object>)]
    pub action: Option<Value>,
    /// `active`, `paused`, or `completed` (a one-off that ran).
    pub status: String,
    pub next_run_at: Option<DateTime<Utc>>,
    pub last_run_at: Option<DateTime<Utc>>,
    /// The last run's execution status (`running`, `succeeded`, `failed`, `cancelled`).
    pub last_status: Option<String>,
    pub runs: i64,
    pub successes: i64,
    pub failures: i64,
    /// Ticks not run because the previous run was still going (`overlap`).
    pub skipped: i64,
    /// Ticks missed while no host was up and not caught up (`catch_up`).
    pub missed: i64,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SELECT: &str = "SELECT s.id, s.name, s.description, \
     CASE WHEN s.trigger_index IS NULL THEN 'task' ELSE 'trigger' END AS kind, \
     s.workflow_id, w.slug AS workflow, s.trigger_index, s.spec AS schedule, s.action, s.status, \
     s.next_run_at, s.last_run_at, s.last_status, s.runs, s.successes, s.failures, s.skipped, \
     s.missed, s.created_by, s.created_at, s.updated_at \
     FROM schedules s JOIN workflows w ON w.id = s.workflow_id";

/// One tick in a schedule's history.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = ScheduleRun)]
pub struct Run {
    /// The tick's time (UTC): with the schedule id, the tick's identity.
    pub at: DateTime<Utc>,
    /// `scheduled`, `catch_up` (missed while no host was up) or `manual` (run now).
    pub kind: String,
    /// `started`, `skipped` (overlap), `buffered` (waits for the run before) or
    /// `failed` (could not start: `note` says why).
    pub outcome: String,
    pub execution_id: Option<Uuid>,
    /// The execution's status now.
    pub status: Option<String>,
    pub note: Option<String>,
    pub recorded_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

fn first_tick(spec: &ScheduleSpec, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
    spec.check("schedule")
        .ok()
        .and_then(|timing| timing.next_after(anchor, anchor))
}

/// Keep the workflow's schedule rows in step with the version just saved: one per
/// schedule trigger; a trigger whose spec is unchanged keeps its next tick and counts,
/// a changed one starts afresh, a removed one is gone. Runs in the saving transaction.
pub async fn sync_triggers(
    tx: &mut PgConnection,
    workflow: Uuid,
    definition: &Definition,
    actor: &str,
) -> sqlx::Result<()> {
    let schedules: Vec<(i32, &ScheduleSpec)> = definition
        .triggers
        .iter()
        .enumerate()
        .filter_map(|(i, trigger)| match trigger {
            TriggerDef::Schedule(spec) => Some((i as i32, spec)),
            _ => None,
        })
        .collect();
    let kept: Vec<i32> = schedules.iter().map(|(i, _)| *i).collect();
    sqlx::query(
        "DELETE FROM schedules WHERE workflow_id = $1 AND trigger_index IS NOT NULL \
         AND NOT (trigger_index = ANY($2))",
    )
    .bind(workflow)
    .bind(&kept)
    .execute(&mut *tx)
    .await?;
    let now = super::spec::now();
    for (index, spec) in schedules {
        let input = spec.input.clone().unwrap_or_else(|| json!({}));
        sqlx::query(
            "INSERT INTO schedules (workspace_id, workflow_id, trigger_index, name, spec, input, \
                 anchor, next_run_at, created_by) \
             SELECT w.workspace_id, w.id, $2, w.name || ' (trigger ' || $2 || ')', $3, $4, $5, $6, $7 \
             FROM workflows w WHERE w.id = $1 \
             ON CONFLICT (workflow_id, trigger_index) DO UPDATE SET \
                 input = EXCLUDED.input, name = EXCLUDED.name, updated_at = now(), \
                 spec = EXCLUDED.spec, \
                 anchor = CASE WHEN schedules.spec = EXCLUDED.spec THEN schedules.anchor \
                     ELSE EXCLUDED.anchor END, \
                 next_run_at = CASE WHEN schedules.spec = EXCLUDED.spec THEN schedules.next_run_at \
                     ELSE EXCLUDED.next_run_at END, \
                 status = CASE WHEN schedules.spec = EXCLUDED.spec THEN schedules.status \
                     WHEN schedules.status = 'paused' THEN 'paused' ELSE 'active' END",
        )
        .bind(workflow)
        .bind(index)
        .bind(sqlx::types::Json(spec))
        .bind(input)
        .bind(now)
        .bind(first_tick(spec, now))
        .bind(actor)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// A new task's row; its workflow exists already (made in the same transaction).
#[allow(clippy::too_many_arguments)]
pub async fn insert_task(
    tx: &mut PgConnection,
    id: Uuid,
    workspace: Uuid,
    workflow: Uuid,
    name: &str,
    description: &str,
    spec: &ScheduleSpec,
    action: &Value,
    input: &Value,
    actor: &str,
) -> ApiResult<Uuid> {
    let now = super::spec::now();
    Ok(sqlx::query_scalar(
        "INSERT INTO schedules (id, workspace_id, workflow_id, name, description, spec, action, \
             input, anchor, next_run_at, status, created_by) \
         VALUES ($11, $1, $2, $3, $4, $5, $6, $7, $8, $9, \
             CASE WHEN $9::timestamptz IS NULL THEN 'completed' ELSE 'active' END, $10) \
         RETURNING id",
    )
    .bind(workspace)
    .bind(workflow)
    .bind(name)
    .bind(description)
    .bind(sqlx::types::Json(spec))
    .bind(action)
    .bind(input)
    .bind(now)
    .bind(first_tick(spec, now))
    .bind(actor)
    .bind(id)
    .fetch_one(&mut *tx)
    .await?)
}

/// A new spec for a task: ticks count afresh from now; a completed one-off given a
/// new time is active again.
pub async fn respec(tx: &mut PgConnection, id: Uuid, spec: &ScheduleSpec) -> sqlx::Result<()> {
    let now = super::spec::now();
    sqlx::query(
        "UPDATE schedules SET spec = $2, anchor = $3, next_run_at = $4, \
             status = CASE WHEN $4::timestamptz IS NULL THEN 'completed' \
                 WHEN status = 'paused' THEN 'paused' ELSE 'active' END \
         WHERE id = $1",
    )
    .bind(id)
    .bind(sqlx::types::Json(spec))
    .bind(now)
    .bind(first_tick(spec, now))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn list(
    pool: &PgPool,
    workspace: Uuid,
    workflow: Option<Uuid>,
) -> ApiResult<Vec<Schedule>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE s.workspace_id = $1 AND ($2::uuid IS NULL OR s.workflow_id = $2) \
         ORDER BY s.created_at, s.trigger_index"
    )))
    .bind(workspace)
    .bind(workflow)
    .fetch_all(pool)
    .await?)
}

pub async fn get(pool: &PgPool, workspace: Uuid, id: Uuid) -> ApiResult<Schedule> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE s.workspace_id = $1 AND s.id = $2"
    )))
    .bind(workspace)
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no schedule {id} in this workspace")))
}

/// Pause, or resume from now: ticks that passed while paused are not caught up.
pub async fn set_paused(
    pool: &PgPool,
    workspace: Uuid,
    id: Uuid,
    paused: bool,
) -> ApiResult<Schedule> {
    let schedule = get(pool, workspace, id).await?;
    if schedule.status == "completed" {
        return Err(ApiError::Conflict(
            "this schedule has completed (a one-off that ran); create another".into(),
        ));
    }
    let next = if paused {
        schedule.next_run_at
    } else {
        let anchor = schedule_anchor(pool, id).await;
        schedule
            .schedule
            .check("schedule")
            .ok()
            .and_then(|timing| timing.next_after(super::spec::now(), anchor))
    };
    sqlx::query(
        "UPDATE schedules SET status = $3, next_run_at = $4, updated_at = now() \
         WHERE workspace_id = $1 AND id = $2",
    )
    .bind(workspace)
    .bind(id)
    .bind(if paused { "paused" } else { "active" })
    .bind(next)
    .execute(pool)
    .await?;
    get(pool, workspace, id).await
}

async fn schedule_anchor(pool: &PgPool, id: Uuid) -> DateTime<Utc> {
    sqlx::query_scalar("SELECT anchor FROM schedules WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|_| super::spec::now())
}

/// Run now, outside the schedule (a `manual` tick; the overlap policy doesn't apply).
pub async fn run_now(
    engine: &Workflows,
    pool: &PgPool,
    workspace: Uuid,
    id: Uuid,
) -> ApiResult<Run> {
    let schedule = get(pool, workspace, id).await?;
    let input: Value = sqlx::query_scalar("SELECT input FROM schedules WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await?;
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT 1 FROM schedules WHERE id = $1 FOR NO KEY UPDATE")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let at = super::spec::now();
    let fired = ticker::start(
        engine,
        &mut tx,
        id,
        workspace,
        schedule.workflow_id,
        &schedule.name,
        &input,
        at,
        Kind::Manual,
    )
    .await
    .map_err(ApiError::Internal)?;
    if let Fired::NotNow = fired {
        return Err(ApiError::Coded {
            status: axum::http::StatusCode::TOO_MANY_REQUESTS,
            code: "execution_limit",
            message: "the workspace is at its limit of running executions; try again when some \
                      have finished"
                .into(),
        });
    }
    tx.commit().await?;
    let runs = runs(pool, workspace, id, 1).await?;
    runs.into_iter()
        .next()
        .ok_or_else(|| ApiError::Conflict("the run was not recorded".into()))
}

/// A schedule's ticks, newest first.
pub async fn runs(pool: &PgPool, workspace: Uuid, id: Uuid, limit: i64) -> ApiResult<Vec<Run>> {
    get(pool, workspace, id).await?;
    Ok(sqlx::query_as(
        "SELECT t.at, t.kind, t.outcome, t.execution_id, e.status, t.note, t.recorded_at, \
             coalesce(t.finished_at, e.finished_at) AS finished_at \
         FROM schedule_ticks t LEFT JOIN executions e ON e.id = t.execution_id \
         WHERE t.schedule_id = $1 ORDER BY t.at DESC LIMIT $2",
    )
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
