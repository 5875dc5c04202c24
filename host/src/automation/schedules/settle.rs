//! After the runs: copy each finished execution's status onto its tick, count it on the
//! schedule, emit `schedule.run.failed` for a failure, and start a buffered tick once
//! the run it waited for is over. Every step is a conditional update in one
//! transaction, so two hosts settling at once count each run once.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::ticker::{self, Fired, Kind};
use crate::workflows::Workflows;

#[derive(sqlx::FromRow)]
struct Finished {
    schedule_id: Uuid,
    workspace_id: Uuid,
    name: String,
    at: DateTime<Utc>,
    execution_id: Uuid,
    status: String,
    error: Option<String>,
}

/// Settle what finished; returns buffered executions started.
pub async fn pass(engine: &Workflows, pool: &PgPool) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await?;
    let finished: Vec<Finished> = sqlx::query_as(
        "WITH done AS ( \
             UPDATE schedule_ticks t SET result = e.status, finished_at = e.finished_at \
             FROM executions e \
             WHERE e.id = t.execution_id AND t.outcome = 'started' AND t.result IS NULL \
               AND e.status IN ('succeeded', 'failed', 'cancelled') \
             RETURNING t.schedule_id, t.at, t.execution_id, e.status, e.error) \
         SELECT d.schedule_id, s.workspace_id, s.name, d.at, d.execution_id, d.status, d.error \
         FROM done d JOIN schedules s ON s.id = d.schedule_id ORDER BY d.at",
    )
    .fetch_all(&mut *tx)
    .await?;
    for run in &finished {
        let succeeded = run.status == "succeeded";
        sqlx::query(
            "UPDATE schedules SET successes = successes + $2::int, failures = failures + $3::int, \
                 last_status = CASE WHEN last_run_at <= $4 THEN $5 ELSE last_status END \
             WHERE id = $1",
        )
        .bind(run.schedule_id)
        .bind(succeeded as i32)
        .bind(!succeeded as i32)
        .bind(run.at)
        .bind(&run.status)
        .execute(&mut *tx)
        .await?;
        if run.status == "failed" {
            let error = run.error.as_deref().unwrap_or("the execution failed");
            ticker::run_failed(
                &mut tx,
                run.workspace_id,
                run.schedule_id,
                &run.name,
                run.at,
                Some(run.execution_id),
                error,
            )
            .await?;
        }
    }
    tx.commit().await?;
    start_buffered(engine, pool).await
}

#[derive(sqlx::FromRow)]
struct Buffered {
    schedule_id: Uuid,
    at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Target {
    workspace_id: Uuid,
    workflow_id: Uuid,
    name: String,
    input: Value,
    status: String,
}

/// Start each buffered tick whose schedule has no run going any more.
async fn start_buffered(engine: &Workflows, pool: &PgPool) -> anyhow::Result<usize> {
    let waiting: Vec<Buffered> = sqlx::query_as(
        "SELECT b.schedule_id, b.at FROM schedule_ticks b WHERE b.outcome = 'buffered' \
         AND NOT EXISTS (SELECT 1 FROM schedule_ticks t JOIN executions e ON e.id = t.execution_id \
             WHERE t.schedule_id = b.schedule_id AND t.outcome = 'started' AND e.status IN ('running', 'waiting'))",
    )
    .fetch_all(pool)
    .await?;
    let mut started = 0;
    for buffered in waiting {
        let mut tx = pool.begin().await?;
        // The schedule row is the lock the ticker holds too: one host starts it.
        let target: Option<Target> = sqlx::query_as(
            "SELECT workspace_id, workflow_id, name, input, status FROM schedules \
             WHERE id = $1 FOR NO KEY UPDATE SKIP LOCKED",
        )
        .bind(buffered.schedule_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(target) = target else { continue };
        let still: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM schedule_ticks WHERE schedule_id = $1 AND at = $2 \
             AND outcome = 'buffered')",
        )
        .bind(buffered.schedule_id)
        .bind(buffered.at)
        .fetch_one(&mut *tx)
        .await?;
        if !still || target.status == "paused" {
            continue;
        }
        let fired = ticker::start(
            engine,
            &mut tx,
            buffered.schedule_id,
            target.workspace_id,
            target.workflow_id,
            &target.name,
            &target.input,
            buffered.at,
            Kind::Scheduled,
        )
        .await?;
        if let Fired::Started = fired {
            started += 1;
        }
        tx.commit().await?;
    }
    Ok(started)
}
