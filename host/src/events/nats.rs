//! Events forwarded to NATS JetStream (`--nats-url`; docs/automation.md, "NATS"): every
//! workspace's events, in the feed's commit order, on subject
//! `agenthost.<workspace slug>.<type>`, the event id as `Nats-Msg-Id`.
//!
//! At least once, and once in practice: the cursor row (`nats_cursors`) moves only
//! past events JetStream acknowledged, so a NATS outage or a host killed mid-batch
//! means publishing again from the cursor, and the stream drops a repeat whose
//! `Nats-Msg-Id` it saw within its duplicate window (2 minutes by default).
//!
//! One host publishes at a time: a pass holds a session advisory lock on a connection
//! of its own, outside any transaction. A transaction would do (`FOR UPDATE SKIP
//! LOCKED`, as event triggers do) but it holds an xid while NATS is slow or away, and
//! every reader of the feed waits for the oldest open xid (crate::events::feed).

use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

/// How often the publisher looks for new events when it has caught up.
const POLL: Duration = Duration::from_millis(250);
/// Pause after a failed pass (NATS or the database away).
const BACKOFF: Duration = Duration::from_secs(1);
/// Events one pass publishes (all in flight at once, then acknowledged in order).
const BATCH: i64 = 256;
/// The advisory lock that makes one host the publisher of a pass ("nats" in ASCII; the
/// stream's name is the second key).
const LOCK: i32 = 0x6e61_7473;

/// The JetStream stream name rule (no spaces, `.`, `*` or `>`), checked at start so a
/// bad `--nats-stream` stops the host rather than every publish.
pub fn check_stream_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 255
        || name
            .bytes()
            .any(|c| c.is_ascii_whitespace() || matches!(c, b'.' | b'*' | b'>'))
    {
        return Err(format!(
            "--nats-stream {name:?} is not a JetStream stream name (1-255 characters, no spaces, '.', '*' or '>')"
        ));
    }
    Ok(())
}

/// An event as it is published.
#[derive(Debug, sqlx::FromRow)]
struct Outgoing {
    id: Uuid,
    #[sqlx(rename = "type")]
    kind: String,
    subject: Option<String>,
    payload: Value,
    actor: String,
    at: DateTime<Utc>,
    workspace_id: Uuid,
    workspace: String,
    tx: String,
    seq: i64,
}

impl Outgoing {
    fn nats_subject(&self) -> String {
        format!("agenthost.{}.{}", self.workspace, self.kind)
    }

    /// The event as the feed shows it, with its workspace.
    fn body(&self) -> Vec<u8> {
        json!({
            "id": self.id, "type": self.kind, "subject": self.subject,
            "payload": self.payload, "actor": self.actor, "at": self.at,
            "workspace_id": self.workspace_id, "workspace": self.workspace,
        })
        .to_string()
        .into_bytes()
    }
}

pub struct Publisher {
    pool: PgPool,
    stream: String,
    jetstream: jetstream::Context,
    /// A connection outside the pool, for the advisory lock: dropped (closed, lock
    /// released) after any error on it.
    connection: Option<PgConnection>,
    stream_ready: bool,
    failing: bool,
}

impl Publisher {
    /// Connects in the background: a NATS server that is down at start is retried.
    pub async fn connect(
        pool: PgPool,
        url: &str,
        stream: String,
        ack_timeout: Duration,
    ) -> anyhow::Result<Publisher> {
        let client = async_nats::ConnectOptions::new()
            .name("agenthost")
            .retry_on_initial_connect()
            .max_reconnects(None)
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis(100 * attempts.min(20) as u64)
            })
            .connect(url)
            .await?;
        let mut jetstream = jetstream::new(client);
        jetstream.set_timeout(ack_timeout);
        Ok(Publisher {
            pool,
            stream,
            jetstream,
            connection: None,
            stream_ready: false,
            failing: false,
        })
    }

    /// Publish for the life of the host.
    pub async fn run_forever(mut self) {
        loop {
            let pause = match self.pass().await {
                Ok(published) => {
                    if self.failing {
                        tracing::info!("publishing events to NATS again");
                        self.failing = false;
                    }
                    if published == BATCH as usize {
                        Duration::ZERO
                    } else {
                        POLL
                    }
                }
                Err(error) => {
                    // Once per outage at warn; the retries every second at debug.
                    if self.failing {
                        tracing::debug!(error = %format!("{error:#}"), "publishing events to NATS failed");
                    } else {
                        tracing::warn!(error = %format!("{error:#}"), "publishing events to NATS failed; retrying");
                        self.failing = true;
                    }
                    BACKOFF
                }
            };
            tokio::time::sleep(pause).await;
        }
    }

    /// One batch, if this host holds the lock; returns the events published.
    pub async fn pass(&mut self) -> anyhow::Result<usize> {
        if self.connection.is_none() {
            let connection = self.pool.acquire().await?.detach();
            self.connection = Some(connection);
        }
        let result = self.locked_pass().await;
        if result.is_err() {
            // The lock goes with the connection; a broken one is replaced next time.
            if let Some(connection) = self.connection.take() {
                let _ = connection.close().await;
            }
        }
        result
    }

    async fn locked_pass(&mut self) -> anyhow::Result<usize> {
        let Some(connection) = self.connection.as_mut() else {
            return Ok(0);
        };
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
            .bind(LOCK)
            .bind(&self.stream)
            .fetch_one(&mut *connection)
            .await?;
        if !locked {
            return Ok(0);
        }
        let published = publish_batch(
            connection,
            &self.jetstream,
            &self.stream,
            &mut self.stream_ready,
        )
        .await;
        sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2))")
            .bind(LOCK)
            .bind(&self.stream)
            .execute(&mut *connection)
            .await?;
        published
    }
}

/// Publish the events after the cursor and move it past the acknowledged ones.
async fn publish_batch(
    db: &mut PgConnection,
    js: &jetstream::Context,
    stream: &str,
    stream_ready: &mut bool,
) -> anyhow::Result<usize> {
    if !*stream_ready {
        let config = jetstream::stream::Config {
            name: stream.to_string(),
            subjects: vec!["agenthost.>".to_string()],
            ..Default::default()
        };
        js.get_or_create_stream(config).await?;
        *stream_ready = true;
    }
    // The first time, from the start: everything still retained is published.
    sqlx::query(
        "INSERT INTO nats_cursors (stream, tx, seq) VALUES ($1, '0'::xid8, 0) \
         ON CONFLICT (stream) DO NOTHING",
    )
    .bind(stream)
    .execute(&mut *db)
    .await?;
    let (tx, seq): (String, i64) =
        sqlx::query_as("SELECT tx::text, seq FROM nats_cursors WHERE stream = $1")
            .bind(stream)
            .fetch_one(&mut *db)
            .await?;
    let batch: Vec<Outgoing> = sqlx::query_as(
        "SELECT e.id, e.type, e.subject, e.payload, e.actor, e.at, e.workspace_id, \
             w.slug AS workspace, e.tx::text AS tx, e.seq \
         FROM events e JOIN workspaces w ON w.id = e.workspace_id \
         WHERE (e.tx, e.seq) > ($1::text::xid8, $2) \
           AND e.tx < pg_snapshot_xmin(pg_current_snapshot()) \
         ORDER BY e.tx, e.seq LIMIT $3",
    )
    .bind(&tx)
    .bind(seq)
    .bind(BATCH)
    .fetch_all(&mut *db)
    .await?;
    // All in flight at once (in order on one connection), then acknowledged in order.
    let mut pending = Vec::with_capacity(batch.len());
    let mut stopped = None;
    for event in &batch {
        let message = PublishMessage::build()
            .payload(event.body().into())
            .message_id(event.id.to_string());
        match js.send_publish(event.nats_subject(), message).await {
            Ok(ack) => pending.push(Some(ack)),
            Err(error) if error.kind() == PublishErrorKind::MaxPayloadExceeded => {
                // Never publishable: said once and passed over, or it would stop the feed.
                tracing::error!(event = %event.id, %error, "an event is too large for NATS; not published");
                pending.push(None);
            }
            Err(error) => {
                stopped = Some(anyhow::Error::from(error));
                break;
            }
        }
    }
    let mut reached = None;
    for (event, ack) in batch.iter().zip(pending) {
        if let Some(ack) = ack
            && let Err(error) = ack.await
        {
            stopped.get_or_insert_with(|| error.into());
            break;
        }
        reached = Some(event);
    }
    let published = if let Some(event) = reached {
        sqlx::query(
            "UPDATE nats_cursors SET tx = $2::text::xid8, seq = $3, updated_at = now() \
             WHERE stream = $1",
        )
        .bind(stream)
        .bind(&event.tx)
        .bind(event.seq)
        .execute(&mut *db)
        .await?;
        batch
            .iter()
            .position(|e| e.id == event.id)
            .map_or(0, |i| i + 1)
    } else {
        0
    };
    match stopped {
        // What was acknowledged stays published; the rest is retried from the cursor.
        Some(error) => Err(error.context(format!("{published} of {} published", batch.len()))),
        None => Ok(published),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_follow_jetstream_rules() {
        assert!(check_stream_name("AGENTHOST").is_ok());
        assert!(check_stream_name("agent-host_2").is_ok());
        for bad in ["", "a.b", "a b", "a*", "a>", &"x".repeat(256)] {
            assert!(check_stream_name(bad).is_err(), "{bad}");
        }
    }
}
