//! Webhooks as subscribers of their workspace's event feed: each enabled webhook's
//! cursor row is locked (`SKIP LOCKED`, so one host at a time walks it, in order), the
//! events after it that the webhook selects become delivery rows, and the cursor moves
//! in the same transaction. A host killed in between leaves both unchanged; the unique
//! (webhook, event) makes a second walk over the same events write nothing twice.

use sqlx::PgPool;
use uuid::Uuid;

use super::{Settings, target};
use crate::events::{self, Cursor, Filter, StoredEvent};

/// Events one walk reads per webhook.
const BATCH: i64 = 200;

#[derive(sqlx::FromRow)]
struct Subscriber {
    webhook_id: Uuid,
    workspace_id: Uuid,
    event_types: Vec<String>,
}

/// One pass over every enabled webhook; returns the deliveries written.
pub async fn pass(pool: &PgPool, settings: &Settings) -> anyhow::Result<usize> {
    let subscribers: Vec<Subscriber> = sqlx::query_as(
        "SELECT w.id AS webhook_id, w.workspace_id, w.event_types \
         FROM webhook_cursors c JOIN webhooks w ON w.id = c.webhook_id WHERE w.enabled",
    )
    .fetch_all(pool)
    .await?;
    let mut written = 0;
    for subscriber in &subscribers {
        written += walk(pool, settings, subscriber).await?;
    }
    Ok(written)
}

/// Whether `event` goes to `webhook`: a type it selects, and not about itself (a
/// webhook is not sent its own failures, or a failing one would feed itself).
fn wanted(subscriber: &Subscriber, event: &StoredEvent) -> bool {
    let own = event.kind.starts_with("webhook.")
        && event.payload["webhook_id"].as_str() == Some(&subscriber.webhook_id.to_string());
    !own && target::selects(&subscriber.event_types, &event.kind)
}

async fn walk(
    pool: &PgPool,
    settings: &Settings,
    subscriber: &Subscriber,
) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await?;
    let cursor: Option<String> = sqlx::query_scalar(
        "SELECT tx::text || '-' || seq::text FROM webhook_cursors \
         WHERE webhook_id = $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(subscriber.webhook_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(cursor) = cursor else {
        return Ok(0);
    };
    let after: Cursor = cursor.parse().map_err(anyhow::Error::msg)?;
    // Read on another connection, before this walk holds anything but its cursor.
    let batch = events::read(
        pool,
        subscriber.workspace_id,
        after,
        &Filter::default(),
        BATCH,
    )
    .await?;
    let Some(last) = batch.last().map(|event| event.cursor.clone()) else {
        return Ok(0);
    };
    // Shares the webhook's row (after the cursor, the order every path takes them in,
    // `store::lock_cursor`): a concurrent disable waits for this walk and then cancels
    // what it wrote, or this walk sees the webhook disabled and writes nothing.
    let enabled: Option<bool> =
        sqlx::query_scalar("SELECT enabled FROM webhooks WHERE id = $1 FOR SHARE")
            .bind(subscriber.webhook_id)
            .fetch_optional(&mut *tx)
            .await?;
    if enabled != Some(true) {
        return Ok(0);
    }
    let first_wait = settings.schedule.first().copied().unwrap_or_default();
    let mut written = 0;
    for event in batch.iter().filter(|event| wanted(subscriber, event)) {
        let body = serde_json::to_string(event)?;
        let inserted = sqlx::query(
            "INSERT INTO webhook_deliveries \
                 (webhook_id, event_id, event_type, body, max_attempts, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $5, now() + $6 * interval '1 ms') \
             ON CONFLICT (webhook_id, event_id) DO NOTHING",
        )
        .bind(subscriber.webhook_id)
        .bind(event.id)
        .bind(&event.kind)
        .bind(&body)
        .bind(settings.max_attempts())
        .bind(first_wait.as_millis() as f64)
        .execute(&mut *tx)
        .await?;
        written += inserted.rows_affected() as usize;
    }
    let (tx_id, seq) = last.split_once('-').unwrap_or(("0", "0"));
    sqlx::query(
        "UPDATE webhook_cursors SET tx = $2::text::xid8, seq = $3::bigint, updated_at = now() \
         WHERE webhook_id = $1",
    )
    .bind(subscriber.webhook_id)
    .bind(tx_id)
    .bind(seq.parse::<i64>().unwrap_or(0))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(written)
}
