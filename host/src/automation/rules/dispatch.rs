//! The rule walker every host runs: for each workspace with active rules, one host at a
//! time (its cursor row locked `SKIP LOCKED`) reads the event feed in commit order and,
//! for each event, tries the workspace's active rules highest priority first: trigger,
//! filter, conditions, then cooldown and hourly limit by the event's time, then the
//! actions' workflow is started with the key `rule:<rule>:<event>`. Each decision is a
//! `rule_runs` row keyed by (rule, event), written with the cursor's move, so an event
//! acts on a rule once across hosts and crashes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::def::{self, Conditions};
use crate::error::ApiError;
use crate::events::{self, Cursor, Filter, StoredEvent};
use crate::workflows::{StartOptions, Workflows};

/// How often a host looks for new events.
const POLL: Duration = Duration::from_millis(250);
/// Events one pass reads per workspace.
const BATCH: i64 = 100;
/// How executions and events name a rule as the actor.
pub const ACTOR: &str = "system:rule";

#[derive(sqlx::FromRow)]
struct ActiveRule {
    id: Uuid,
    name: String,
    event: String,
    filter: Option<String>,
    conditions: sqlx::types::Json<Conditions>,
    workflow_id: Uuid,
    cooldown_ms: Option<i64>,
    max_per_hour: Option<i32>,
    since: String,
}

/// Walk rules for the life of the host.
pub async fn run_forever(engine: Workflows, pool: PgPool) {
    loop {
        if let Err(error) = pass(&engine, &pool).await {
            tracing::warn!(error = %error, "running automation rules failed");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// One pass over every workspace with active rules; returns the runs started.
pub async fn pass(engine: &Workflows, pool: &PgPool) -> anyhow::Result<usize> {
    let workspaces: Vec<Uuid> = sqlx::query_scalar(
        "SELECT c.workspace_id FROM rule_cursors c WHERE EXISTS \
         (SELECT 1 FROM rules r WHERE r.workspace_id = c.workspace_id AND r.active)",
    )
    .fetch_all(pool)
    .await?;
    let mut started = 0;
    for workspace in workspaces {
        match walk(engine, pool, workspace).await {
            Ok(n) => started += n,
            Err(error) => {
                tracing::warn!(error = %error, %workspace, "running a workspace's rules failed")
            }
        }
    }
    super::settle::pass(pool).await?;
    Ok(started)
}

fn position(cursor: &str) -> (u64, i64) {
    let (tx, seq) = cursor.split_once('-').unwrap_or(("0", "0"));
    (tx.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

async fn walk(engine: &Workflows, pool: &PgPool, workspace: Uuid) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await?;
    let cursor: Option<String> = sqlx::query_scalar(
        "SELECT tx::text || '-' || seq::text FROM rule_cursors \
         WHERE workspace_id = $1 FOR NO KEY UPDATE SKIP LOCKED",
    )
    .bind(workspace)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(cursor) = cursor else {
        return Ok(0);
    };
    let after: Cursor = cursor.parse().map_err(anyhow::Error::msg)?;
    let batch = events::read(pool, workspace, after, &Filter::default(), BATCH).await?;
    if batch.is_empty() {
        return Ok(0);
    }
    let rules: Vec<ActiveRule> = sqlx::query_as(
        "SELECT id, name, event, filter, conditions, workflow_id, cooldown_ms, max_per_hour, \
             since_tx::text || '-' || since_seq::text AS since \
         FROM rules WHERE workspace_id = $1 AND active ORDER BY priority DESC, created_at",
    )
    .bind(workspace)
    .fetch_all(&mut *tx)
    .await?;
    let mut reached = None;
    let mut started = 0;
    'events: for event in &batch {
        let input = serde_json::to_value(event)?;
        // A rule is not set off by its own runs (no loops through them).
        let cause = crate::automation::cause_of(pool, event).await?;
        for rule in &rules {
            if cause.stops(rule.workflow_id) || !matches(rule, event, &input) {
                continue;
            }
            match act(engine, &mut tx, workspace, rule, event, &input).await? {
                Acted::Started => started += 1,
                Acted::Recorded => {}
                Acted::Later => break 'events,
            }
        }
        reached = Some(event.cursor.clone());
    }
    if let Some(reached) = reached {
        let (tx_id, seq) = position(&reached);
        sqlx::query(
            "UPDATE rule_cursors SET tx = $2::text::xid8, seq = $3, updated_at = now() \
             WHERE workspace_id = $1",
        )
        .bind(workspace)
        .bind(tx_id.to_string())
        .bind(seq)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(started)
}

/// Trigger, filter and conditions, for an event after the rule was made.
fn matches(rule: &ActiveRule, event: &StoredEvent, input: &Value) -> bool {
    if position(&event.cursor) <= position(&rule.since) {
        return false;
    }
    if !crate::events::types::selects(&rule.event, &event.kind) {
        return false;
    }
    let context = def::context(input, &json!({"id": rule.id, "name": rule.name}));
    rule.filter
        .as_deref()
        .is_none_or(|f| def::holds(f, &context))
        && rule.conditions.hold(&context)
}

enum Acted {
    Started,
    /// Skipped or refused: a row says so.
    Recorded,
    /// Not now (the running cap, the database): the event waits for the next pass.
    Later,
}

async fn act(
    engine: &Workflows,
    tx: &mut PgConnection,
    workspace: Uuid,
    rule: &ActiveRule,
    event: &StoredEvent,
    input: &Value,
) -> anyhow::Result<Acted> {
    let seen: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM rule_runs WHERE rule_id = $1 AND event_id = $2)",
    )
    .bind(rule.id)
    .bind(event.id)
    .fetch_one(&mut *tx)
    .await?;
    if seen {
        return Ok(Acted::Recorded);
    }
    if let Some(cooldown) = rule.cooldown_ms {
        let last: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT max(at) FROM rule_runs WHERE rule_id = $1 AND outcome = 'started'",
        )
        .bind(rule.id)
        .fetch_one(&mut *tx)
        .await?;
        if last.is_some_and(|last| (event.at - last).num_milliseconds() < cooldown) {
            record(tx, rule, event, "skipped_cooldown", None, None).await?;
            return Ok(Acted::Recorded);
        }
    }
    if let Some(max) = rule.max_per_hour {
        let in_hour: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM rule_runs WHERE rule_id = $1 AND outcome = 'started' \
             AND at > $2 - interval '1 hour'",
        )
        .bind(rule.id)
        .bind(event.at)
        .fetch_one(&mut *tx)
        .await?;
        if in_hour >= i64::from(max) {
            record(tx, rule, event, "skipped_limit", None, None).await?;
            return Ok(Acted::Recorded);
        }
    }
    let run_input = def::context(input, &json!({"id": rule.id, "name": rule.name}));
    let options = StartOptions {
        idempotency_key: Some(format!("rule:{}:{}", rule.id, event.id)),
        actor: Some(ACTOR.to_string()),
    };
    match engine
        .start_execution(workspace, &rule.workflow_id.to_string(), run_input, options)
        .await
    {
        Ok((execution, _)) => {
            record(tx, rule, event, "started", Some(execution.id), None).await?;
            Ok(Acted::Started)
        }
        Err(ApiError::Coded { status, .. }) if status.as_u16() == 429 => Ok(Acted::Later),
        Err(error @ (ApiError::Internal(_) | ApiError::DatabaseUnreachable(_))) => {
            tracing::warn!(error = %error, rule = %rule.id, "starting a rule's actions failed");
            Ok(Acted::Later)
        }
        Err(error) => {
            record(tx, rule, event, "failed", None, Some(&error.to_string())).await?;
            Ok(Acted::Recorded)
        }
    }
}

async fn record(
    tx: &mut PgConnection,
    rule: &ActiveRule,
    event: &StoredEvent,
    outcome: &'static str,
    execution: Option<Uuid>,
    note: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO rule_runs (rule_id, event_id, event_type, outcome, execution_id, note, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(rule.id)
    .bind(event.id)
    .bind(&event.kind)
    .bind(outcome)
    .bind(execution)
    .bind(note)
    .bind(event.at)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE rules SET matched = matched + 1, last_matched_at = now(), \
             ran = ran + ($2 = 'started')::int, \
             last_ran_at = CASE WHEN $2 = 'started' THEN now() ELSE last_ran_at END, \
             skipped_cooldown = skipped_cooldown + ($2 = 'skipped_cooldown')::int, \
             skipped_limit = skipped_limit + ($2 = 'skipped_limit')::int, \
             failed = failed + ($2 = 'failed')::int \
         WHERE id = $1",
    )
    .bind(rule.id)
    .bind(outcome)
    .execute(&mut *tx)
    .await?;
    crate::telemetry::metrics::rule_outcome(outcome);
    Ok(())
}
