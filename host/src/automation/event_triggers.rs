//! Event triggers: each host walks, for every enabled workflow whose latest version has
//! event triggers, the workspace's feed from that workflow's cursor, and starts an
//! execution for each event a trigger accepts.
//!
//! Exactly once across hosts and crashes: the cursor row is locked (`SKIP LOCKED`), so
//! one host at a time walks a workflow's feed, in order; an execution's idempotency key
//! is the event's id, so an event delivered again (a host killed after starting the
//! execution but before moving the cursor) returns the first execution instead of
//! starting another.

use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::ApiError;
use crate::events::{self, Cursor, Filter};
use crate::workflows::trigger::TriggerDef;
use crate::workflows::{StartOptions, Workflows};

/// How often a host looks for new events.
const POLL: Duration = Duration::from_millis(250);
/// Events one pass reads per workflow.
const BATCH: i64 = 100;
/// How events and executions name the trigger as the actor.
pub const ACTOR: &str = "system:trigger";

#[derive(sqlx::FromRow)]
struct Triggered {
    workflow_id: Uuid,
    workspace_id: Uuid,
    slug: String,
    triggers: sqlx::types::Json<Vec<TriggerDef>>,
}

/// Deliver events to triggers for the life of the host.
pub async fn run_forever(engine: Workflows, pool: PgPool) {
    loop {
        if let Err(error) = pass(&engine, &pool).await {
            tracing::warn!(error = %error, "delivering events to workflow triggers failed");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// One pass over every triggered workflow; returns the executions started.
pub async fn pass(engine: &Workflows, pool: &PgPool) -> anyhow::Result<usize> {
    let triggered: Vec<Triggered> = sqlx::query_as(
        "SELECT w.id AS workflow_id, w.workspace_id, w.slug, \
             v.definition->'triggers' AS triggers \
         FROM event_trigger_cursors c \
         JOIN workflows w ON w.id = c.workflow_id \
         JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = w.latest_version \
         WHERE w.enabled AND jsonb_typeof(v.definition->'triggers') = 'array'",
    )
    .fetch_all(pool)
    .await?;
    let mut started = 0;
    for workflow in &triggered {
        started += deliver(engine, pool, workflow).await?;
    }
    Ok(started)
}

/// Walk one workflow's feed from its cursor, if no other host is walking it.
async fn deliver(engine: &Workflows, pool: &PgPool, workflow: &Triggered) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await?;
    let cursor: Option<String> = sqlx::query_scalar(
        "SELECT tx::text || '-' || seq::text FROM event_trigger_cursors \
         WHERE workflow_id = $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(workflow.workflow_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(cursor) = cursor else {
        return Ok(0);
    };
    let after: Cursor = cursor.parse().map_err(anyhow::Error::msg)?;
    let batch = events::read(
        pool,
        workflow.workspace_id,
        after,
        &Filter::default(),
        BATCH,
    )
    .await?;
    let mut reached = None;
    let mut started = 0;
    for event in batch {
        let own = super::cause_of(pool, &event)
            .await?
            .stops(workflow.workflow_id);
        let input = serde_json::to_value(&event)?;
        // A workflow is not started by its own executions' events (no loops).
        if !own
            && workflow
                .triggers
                .iter()
                .any(|t| t.accepts(&event.kind, &input))
        {
            match start(engine, workflow, &event.id, input).await {
                Started::Yes => started += 1,
                Started::Later => break,
                Started::Never => {}
            }
        }
        reached = Some(event.cursor);
    }
    if let Some(reached) = reached {
        let (tx_id, seq) = reached.split_once('-').unwrap_or(("0", "0"));
        sqlx::query(
            "UPDATE event_trigger_cursors SET tx = $2::text::xid8, seq = $3::bigint, \
             updated_at = now() WHERE workflow_id = $1",
        )
        .bind(workflow.workflow_id)
        .bind(tx_id)
        .bind(seq.parse::<i64>().unwrap_or(0))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(started)
}

enum Started {
    Yes,
    /// Not now (the workspace is at its running cap): the event waits for the next pass.
    Later,
    /// Never (the input does not fit the workflow): logged, and the event passed over.
    Never,
}

async fn start(engine: &Workflows, workflow: &Triggered, event: &Uuid, input: Value) -> Started {
    let options = StartOptions {
        idempotency_key: Some(format!("event:{event}")),
        actor: Some(ACTOR.to_string()),
    };
    match engine
        .start_execution(workflow.workspace_id, &workflow.slug, input, options)
        .await
    {
        Ok(_) => Started::Yes,
        Err(ApiError::Coded { status, .. }) if status.as_u16() == 429 => Started::Later,
        Err(error @ (ApiError::Internal(_) | ApiError::DatabaseUnreachable(_))) => {
            tracing::warn!(error = %error, workflow = %workflow.slug, "starting a triggered execution failed");
            Started::Later
        }
        Err(error) => {
            tracing::warn!(error = %error, workflow = %workflow.slug, %event,
                "an event the trigger accepted could not start the workflow");
            Started::Never
        }
    }
}
