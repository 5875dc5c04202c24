//! The ticker every host runs. A pass locks each due schedule (`FOR NO KEY UPDATE SKIP
//! LOCKED`, so one host at a time ticks it), works out the ticks due since
//! `next_run_at`, applies the catch-up and overlap policies, starts an execution per
//! tick with the tick's id as its idempotency key, records the tick and moves
//! `next_run_at` on, all before the lock is let go. A host killed after starting an
//! execution but before committing leaves the schedule due: the next pass computes the
//! same tick, and the idempotency key returns the execution already started.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::spec::{CatchUp, ON_TIME, Overlap, ScheduleSpec};
use crate::error::ApiError;
use crate::events::{self, NewEvent};
use crate::workflows::{StartOptions, Workflows};

/// How events and executions name a schedule as the actor.
pub const ACTOR: &str = "system:schedule";
/// The longest a ticker sleeps: how soon another host's new schedule is seen.
const MAX_SLEEP: Duration = Duration::from_millis(500);
/// Ticks one schedule works through in one pass (`catch_up: all` after a long outage).
const MAX_TICKS_PER_PASS: usize = 1000;
/// Schedules one pass ticks.
const BATCH: i64 = 100;

/// Tick schedules for the life of the host: sleep until the next tick is due, at most
/// `MAX_SLEEP` (a schedule saved on another host is seen that soon).
pub async fn run_forever(engine: Workflows, pool: PgPool) {
    loop {
        if let Err(error) = pass(&engine, &pool).await {
            tracing::warn!(error = %error, "ticking schedules failed");
        }
        let sleep = until_next(&pool).await.unwrap_or(MAX_SLEEP).min(MAX_SLEEP);
        tokio::time::sleep(sleep).await;
    }
}

async fn until_next(pool: &PgPool) -> anyhow::Result<Duration> {
    let wait: Option<f64> = sqlx::query_scalar(
        "SELECT greatest(extract(epoch FROM min(next_run_at) - clock_timestamp()), 0)::float8 \
         FROM schedules WHERE status = 'active'",
    )
    .fetch_one(pool)
    .await?;
    Ok(wait.map_or(MAX_SLEEP, Duration::from_secs_f64))
}

/// One pass: tick what is due, then settle finished runs. Returns the executions started.
pub async fn pass(engine: &Workflows, pool: &PgPool) -> anyhow::Result<usize> {
    let due: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM schedules WHERE status = 'active' AND next_run_at <= clock_timestamp() \
         ORDER BY next_run_at LIMIT $1",
    )
    .bind(BATCH)
    .fetch_all(pool)
    .await?;
    let mut started = 0;
    for id in due {
        // One schedule's trouble doesn't hold up the others.
        match tick(engine, pool, id).await {
            Ok(n) => started += n,
            Err(error) => {
                tracing::warn!(error = %error, schedule = %id, "ticking a schedule failed")
            }
        }
    }
    started += super::settle::pass(engine, pool).await?;
    Ok(started)
}

#[derive(sqlx::FromRow)]
struct Due {
    id: Uuid,
    workspace_id: Uuid,
    workflow_id: Uuid,
    enabled: bool,
    name: String,
    spec: sqlx::types::Json<ScheduleSpec>,
    input: Value,
    anchor: DateTime<Utc>,
    next_run_at: DateTime<Utc>,
    now: DateTime<Utc>,
}

/// A tick to run, and why it runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Scheduled,
    CatchUp,
    Manual,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Scheduled => "scheduled",
            Kind::CatchUp => "catch_up",
            Kind::Manual => "manual",
        }
    }
}

/// Which of the due ticks run, by the catch-up policy: on-time ticks always; missed ones
/// (seen more than `ON_TIME` late) as the policy says, within the window. Returns the
/// runs and how many were missed for good.
fn choose(
    due: &[DateTime<Utc>],
    now: DateTime<Utc>,
    spec: &ScheduleSpec,
) -> (Vec<(DateTime<Utc>, Kind)>, usize) {
    let late = chrono::Duration::from_std(ON_TIME).unwrap_or_default();
    let window = chrono::Duration::from_std(spec.catch_up_window()).unwrap_or_default();
    let (missed, on_time): (Vec<DateTime<Utc>>, Vec<DateTime<Utc>>) =
        due.iter().partition(|t| now - **t > late);
    let in_window: Vec<DateTime<Utc>> = missed
        .iter()
        .filter(|t| now - **t <= window)
        .copied()
        .collect();
    let caught_up: Vec<DateTime<Utc>> = match spec.catch_up {
        CatchUp::Skip => Vec::new(),
        CatchUp::Latest if on_time.is_empty() => in_window.last().copied().into_iter().collect(),
        CatchUp::Latest => Vec::new(),
        CatchUp::All => in_window,
    };
    let lost = missed.len() - caught_up.len();
    let mut runs: Vec<_> = caught_up.into_iter().map(|t| (t, Kind::CatchUp)).collect();
    runs.extend(on_time.into_iter().map(|t| (t, Kind::Scheduled)));
    (runs, lost)
}

/// Tick one schedule if no other host is ticking it.
async fn tick(engine: &Workflows, pool: &PgPool, id: Uuid) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await?;
    let due: Option<Due> = sqlx::query_as(
        "SELECT s.id, s.workspace_id, s.workflow_id, w.enabled, s.name, s.spec, s.input, \
             s.anchor, s.next_run_at, clock_timestamp() AS now \
         FROM schedules s JOIN workflows w ON w.id = s.workflow_id \
         WHERE s.id = $1 AND s.status = 'active' AND s.next_run_at <= clock_timestamp() \
         FOR NO KEY UPDATE OF s SKIP LOCKED",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(due) = due else {
        return Ok(0);
    };
    let timing = match due.spec.check("schedule") {
        Ok(timing) => timing,
        Err(_) => {
            // Written by an older host with other rules: stop rather than guess.
            sqlx::query("UPDATE schedules SET status = 'paused', updated_at = now() WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(0);
        }
    };
    let mut ticks = Vec::new();
    let mut next = Some(due.next_run_at);
    while let Some(at) = next {
        if at > due.now || ticks.len() >= MAX_TICKS_PER_PASS {
            break;
        }
        ticks.push(at);
        next = timing.next_after(at, due.anchor);
    }
    let (runs, lost) = if due.enabled {
        choose(&ticks, due.now, &due.spec)
    } else {
        // A disabled workflow's ticks pass by unrun (and aren't caught up later).
        (Vec::new(), 0)
    };
    let mut started = 0;
    for (at, kind) in runs {
        match fire(engine, &mut tx, &due, at, kind).await? {
            Fired::Started => started += 1,
            Fired::Recorded => {}
            Fired::NotNow => {
                // The workspace is at its running cap or the database hiccuped: this
                // tick and the rest wait for the next pass.
                next = Some(at);
                break;
            }
        }
    }
    sqlx::query(
        "UPDATE schedules SET next_run_at = $2, missed = missed + $3, updated_at = now(), \
             status = CASE WHEN $2::timestamptz IS NULL THEN 'completed' ELSE status END \
         WHERE id = $1",
    )
    .bind(id)
    .bind(next)
    .bind(lost as i64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(started)
}

pub enum Fired {
    Started,
    /// Skipped, buffered or refused: a row says so.
    Recorded,
    NotNow,
}

/// The idempotency key of a tick's execution: the tick's id.
pub fn tick_key(schedule: Uuid, at: DateTime<Utc>) -> String {
    format!(
        "schedule:{schedule}:{}",
        at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )
}

/// Run one tick in the schedule's locked transaction, by its overlap policy.
async fn fire(
    engine: &Workflows,
    tx: &mut PgConnection,
    due: &Due,
    at: DateTime<Utc>,
    kind: Kind,
) -> anyhow::Result<Fired> {
    let running: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM schedule_ticks t JOIN executions e ON e.id = t.execution_id \
         WHERE t.schedule_id = $1 AND t.outcome = 'started' AND t.result IS NULL \
           AND e.status IN ('running', 'waiting'))",
    )
    .bind(due.id)
    .fetch_one(&mut *tx)
    .await?;
    if running && kind != Kind::Manual {
        let outcome = match due.spec.overlap {
            Overlap::Allow => None,
            Overlap::Skip => Some("skipped"),
            Overlap::BufferOne => {
                let buffered: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM schedule_ticks WHERE schedule_id = $1 \
                     AND outcome = 'buffered')",
                )
                .bind(due.id)
                .fetch_one(&mut *tx)
                .await?;
                Some(if buffered { "skipped" } else { "buffered" })
            }
        };
        if let Some(outcome) = outcome {
            record(
                tx,
                due.id,
                at,
                kind,
                outcome,
                None,
                Some("the previous run is still going"),
            )
            .await?;
            return Ok(Fired::Recorded);
        }
    }
    start(
        engine,
        tx,
        due.id,
        due.workspace_id,
        due.workflow_id,
        &due.name,
        &due.input,
        at,
        kind,
    )
    .await
}

/// Start a tick's execution and record it (also used for a buffered tick and "run now").
#[allow(clippy::too_many_arguments)]
pub async fn start(
    engine: &Workflows,
    tx: &mut PgConnection,
    schedule: Uuid,
    workspace: Uuid,
    workflow: Uuid,
    name: &str,
    input: &Value,
    at: DateTime<Utc>,
    kind: Kind,
) -> anyhow::Result<Fired> {
    let mut input = input.clone();
    if let Value::Object(map) = &mut input {
        map.insert(
            "schedule".into(),
            json!({"id": schedule, "name": name, "tick": at, "kind": kind.as_str()}),
        );
    }
    let options = StartOptions {
        idempotency_key: Some(tick_key(schedule, at)),
        actor: Some(ACTOR.to_string()),
    };
    match engine
        .start_execution(workspace, &workflow.to_string(), input, options)
        .await
    {
        Ok((execution, _)) => {
            crate::telemetry::metrics::schedule_tick_started(kind.as_str(), at);
            record(tx, schedule, at, kind, "started", Some(execution.id), None).await?;
            sqlx::query(
                "UPDATE schedules SET runs = runs + 1, last_run_at = $2, last_status = 'running' \
                 WHERE id = $1",
            )
            .bind(schedule)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            Ok(Fired::Started)
        }
        Err(ApiError::Coded { status, .. }) if status.as_u16() == 429 => Ok(Fired::NotNow),
        Err(error @ (ApiError::Internal(_) | ApiError::DatabaseUnreachable(_))) => {
            tracing::warn!(error = %error, %schedule, "starting a scheduled execution failed");
            Ok(Fired::NotNow)
        }
        Err(error) => {
            // The workflow refuses this input (its schema changed) or was disabled: a
            // failed run, said in words, and an event an alert rule can pick up.
            let why = error.to_string();
            record(tx, schedule, at, kind, "failed", None, Some(&why)).await?;
            sqlx::query(
                "UPDATE schedules SET runs = runs + 1, failures = failures + 1, last_run_at = $2, \
                 last_status = 'failed' WHERE id = $1",
            )
            .bind(schedule)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            run_failed(tx, workspace, schedule, name, at, None, &why).await?;
            Ok(Fired::Recorded)
        }
    }
}

async fn record(
    tx: &mut PgConnection,
    schedule: Uuid,
    at: DateTime<Utc>,
    kind: Kind,
    outcome: &str,
    execution: Option<Uuid>,
    note: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO schedule_ticks (schedule_id, at, kind, outcome, execution_id, note) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (schedule_id, at) DO UPDATE SET outcome = EXCLUDED.outcome, \
             execution_id = EXCLUDED.execution_id, note = EXCLUDED.note \
         WHERE schedule_ticks.outcome = 'buffered'",
    )
    .bind(schedule)
    .bind(at)
    .bind(kind.as_str())
    .bind(outcome)
    .bind(execution)
    .bind(note)
    .execute(&mut *tx)
    .await?;
    if outcome == "skipped" {
        sqlx::query("UPDATE schedules SET skipped = skipped + 1 WHERE id = $1")
            .bind(schedule)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// `schedule.run.failed`, in the transaction that records the failure.
pub async fn run_failed(
    tx: &mut PgConnection,
    workspace: Uuid,
    schedule: Uuid,
    name: &str,
    at: DateTime<Utc>,
    execution: Option<Uuid>,
    error: &str,
) -> sqlx::Result<()> {
    events::emit(
        tx,
        NewEvent {
            workspace,
            kind: "schedule.run.failed",
            subject: Some(schedule.to_string()),
            payload: json!({
                "schedule_id": schedule, "name": name, "tick": at,
                "execution_id": execution, "error": error,
            }),
            actor: ACTOR,
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn spec(catch_up: CatchUp) -> ScheduleSpec {
        ScheduleSpec {
            every: Some("1m".into()),
            catch_up,
            catch_up_window: Some("10m".into()),
            ..serde_json::from_value(json!({"every": "1m"})).unwrap()
        }
    }

    #[test]
    fn catch_up_policies_choose_the_missed_ticks() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 5).unwrap();
        // 20 minutes of minute ticks up to now: the last one is on time.
        let due: Vec<_> = (0..=20)
            .rev()
            .map(|m| now - chrono::Duration::seconds(5) - chrono::Duration::minutes(m))
            .collect();
        let (runs, lost) = choose(&due, now, &spec(CatchUp::Skip));
        assert_eq!(runs, [(due[20], Kind::Scheduled)]);
        assert_eq!(lost, 20);
        // `latest` has nothing to add when an on-time tick is due.
        let (runs, _) = choose(&due, now, &spec(CatchUp::Latest));
        assert_eq!(runs, [(due[20], Kind::Scheduled)]);
        let (runs, lost) = choose(&due[..20], now, &spec(CatchUp::Latest));
        assert_eq!(runs, [(due[19], Kind::CatchUp)]);
        assert_eq!(lost, 19);
        // `all` within the 10-minute window: the 9 missed ticks in it, then the on-time
        // one; the 11 older are lost.
        let (runs, lost) = choose(&due, now, &spec(CatchUp::All));
        assert_eq!(runs.len(), 10);
        assert_eq!(runs[0], (due[11], Kind::CatchUp));
        assert_eq!(runs[9], (due[20], Kind::Scheduled));
        assert_eq!(lost, 11);
    }
}
