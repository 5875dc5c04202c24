//! Sending deliveries. A host claims due deliveries with a lease (`FOR UPDATE SKIP
//! LOCKED` while claiming, then `lease_until`), sends each attempt outside any
//! transaction (a long one would hold back every feed reader: the feed waits for the
//! oldest open transaction), and records the outcome only while it still holds the
//! lease. An attempt a host died during is sent again once the lease ends.
//!
//! An attempt succeeds on a 2xx within the timeout; anything else fails it (3xx too:
//! redirects are not followed). 410 disables the webhook. 429 and 503 may say when to
//! come back (`Retry-After`), which is honoured when later than the schedule's wait.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest13::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER, USER_AGENT};
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use uuid::Uuid;

use super::{ACTOR, Settings, enqueue, sign, store};
use crate::capabilities::http::{checked_client, refused_address};
use crate::events::{self, NewEvent};
use crate::telemetry::metrics;

/// How often a host looks for new events and due deliveries.
const POLL: Duration = Duration::from_millis(250);
/// A lease is twice the request's timeout plus this: it must outlive the attempt (the
/// client stops it at the timeout) and its recording, or another host sends it again.
const LEASE_MARGIN: Duration = Duration::from_secs(5);
/// Attempts of one webhook in flight at once, across hosts: a slow or hanging endpoint
/// holds at most this many of the workers, never all of them.
const PER_WEBHOOK: i64 = 4;
/// How much of a response body the log keeps.
const EXCERPT_BYTES: usize = 1024;
/// The longest `Retry-After` honoured; a later one is taken as this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// How often finished deliveries past their retention are deleted.
const SWEEP_EVERY: Duration = Duration::from_secs(600);
const AGENT: &str = concat!("Agenthost-Webhooks/", env!("CARGO_PKG_VERSION"));

/// A delivery this host holds the lease of.
#[derive(Debug, sqlx::FromRow)]
struct Claimed {
    id: Uuid,
    webhook_id: Uuid,
    workspace_id: Uuid,
    event_id: Uuid,
    event_type: String,
    body: String,
    attempts: i32,
    max_attempts: i32,
    manual: bool,
    url: String,
    secret: String,
    previous_secret: Option<String>,
}

/// Walk feeds and send deliveries until the task is aborted (which aborts the sends
/// in flight with it: their leases end and another host sends them).
pub async fn run_forever(pool: PgPool, settings: Arc<Settings>) {
    let client = match checked_client(settings.networks.clone(), settings.timeout) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(error = %error, "no HTTP client for outbound webhooks; none are sent");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(settings.workers));
    let mut sending = JoinSet::new();
    let mut swept: Option<Instant> = None;
    loop {
        while sending.try_join_next().is_some() {}
        if let Err(error) = enqueue::pass(&pool, &settings).await {
            tracing::warn!(error = %error, "writing webhook deliveries failed");
        }
        let free = slots.available_permits();
        let mut full_batch = false;
        if free > 0 {
            match claim(&pool, &settings, free).await {
                Ok((token, claimed)) => {
                    // More may be due: look again at once rather than after a poll.
                    full_batch = claimed.len() == free;
                    for delivery in claimed {
                        let Ok(permit) = slots.clone().acquire_owned().await else {
                            return;
                        };
                        let (pool, client, settings) =
                            (pool.clone(), client.clone(), settings.clone());
                        sending.spawn(async move {
                            attempt(&pool, &client, &settings, token, delivery).await;
                            drop(permit);
                        });
                    }
                }
                Err(error) => tracing::warn!(error = %error, "claiming webhook deliveries failed"),
            }
        }
        if swept.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
            swept = Some(Instant::now());
            match store::sweep(&pool, settings.retention).await {
                Ok(0) => {}
                Ok(deleted) => {
                    tracing::info!(deleted, "deleted webhook deliveries past their retention")
                }
                Err(error) => {
                    tracing::warn!(error = %error, "deleting old webhook deliveries failed")
                }
            }
        }
        if !full_batch {
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Up to `limit` due deliveries of enabled webhooks, leased to this host, at most
/// [`PER_WEBHOOK`] of one webhook in flight (counting every host's leases), oldest due
/// first. Candidates are locked with `SKIP LOCKED`, so two hosts claiming at once take
/// different rows; the lease keeps them taken after the statement.
async fn claim(
    pool: &PgPool,
    settings: &Settings,
    limit: usize,
) -> sqlx::Result<(Uuid, Vec<Claimed>)> {
    let token = Uuid::new_v4();
    let lease = settings.timeout * 2 + LEASE_MARGIN;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let claimed = sqlx::query_as(
        "WITH candidates AS ( \
             SELECT d.id, d.webhook_id, d.next_attempt_at \
             FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
             WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND w.enabled \
               AND (d.lease_until IS NULL OR d.lease_until < now()) \
             ORDER BY d.next_attempt_at LIMIT $3 * $4 \
             FOR UPDATE OF d SKIP LOCKED), \
         busy AS ( \
             SELECT webhook_id, count(*) AS leased FROM webhook_deliveries \
             WHERE status = 'pending' AND lease_until >= now() \
               AND webhook_id IN (SELECT webhook_id FROM candidates) \
             GROUP BY webhook_id), \
         chosen AS ( \
             SELECT id FROM ( \
                 SELECT c.id, c.next_attempt_at, coalesce(b.leased, 0) + row_number() \
                     OVER (PARTITION BY c.webhook_id ORDER BY c.next_attempt_at) AS slot \
                 FROM candidates c LEFT JOIN busy b USING (webhook_id)) ranked \
             WHERE slot <= $4 ORDER BY next_attempt_at LIMIT $3) \
         UPDATE webhook_deliveries d SET lease_token = $1, \
             lease_until = now() + $2 * interval '1 ms' \
         FROM chosen, webhooks w WHERE d.id = chosen.id AND w.id = d.webhook_id \
         RETURNING d.id, d.webhook_id, w.workspace_id, d.event_id, d.event_type, d.body, \
             d.attempts, d.max_attempts, d.manual, w.url, w.secret, \
             CASE WHEN w.previous_secret_until > now() THEN w.previous_secret END \
                 AS previous_secret",
    )
    .bind(token)
    .bind(lease.as_millis() as f64)
    .bind(limit)
    .bind(PER_WEBHOOK)
    .fetch_all(pool)
    .await?;
    Ok((token, claimed))
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Succeeded,
    /// 410: the receiver says the endpoint is gone for good.
    Gone,
    Failed,
}

#[derive(Debug)]
struct Sent {
    at: DateTime<Utc>,
    elapsed: Duration,
    verdict: Verdict,
    status: Option<u16>,
    error: Option<String>,
    excerpt: Option<String>,
    retry_after: Option<Duration>,
}

async fn attempt(
    pool: &PgPool,
    client: &reqwest13::Client,
    settings: &Settings,
    token: Uuid,
    delivery: Claimed,
) {
    let sent = send(client, settings, &delivery).await;
    let outcome = match record(pool, settings, token, &delivery, &sent).await {
        Ok(outcome) => outcome,
        Err(error) => {
            // The lease ends and the attempt is made again: at least once.
            tracing::warn!(error = %error, delivery = %delivery.id, "recording a webhook attempt failed");
            return;
        }
    };
    metrics::webhook_attempt(outcome, sent.elapsed);
}

/// One signed POST of the delivery's body.
async fn send(client: &reqwest13::Client, settings: &Settings, delivery: &Claimed) -> Sent {
    let at = Utc::now();
    let started = Instant::now();
    let failed = |error: String| Sent {
        at,
        elapsed: started.elapsed(),
        verdict: Verdict::Failed,
        status: None,
        error: Some(error),
        excerpt: None,
        retry_after: None,
    };
    let keys: Result<Vec<Vec<u8>>, String> = std::iter::once(&delivery.secret)
        .chain(delivery.previous_secret.as_ref())
        .map(|secret| sign::key_of(secret))
        .collect();
    let Ok(keys) = keys else {
        return failed("the webhook's secret can't be read; rotate it".into());
    };
    let id = delivery.event_id.to_string();
    let timestamp = at.timestamp();
    let signature = sign::header(&keys, &id, timestamp, delivery.body.as_bytes());
    let response = client
        .post(&delivery.url)
        .header(CONTENT_TYPE, "application/json")
        .header(USER_AGENT, AGENT)
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(delivery.body.clone())
        .send()
        .await;
    let mut response = match response {
        Ok(response) => response,
        Err(error) => return failed(in_words(&error, settings)),
    };
    let status = response.status();
    let retry_after = match status.as_u16() {
        429 | 503 => retry_after(response.headers(), Utc::now()),
        _ => None,
    };
    let mut excerpt = Vec::new();
    while excerpt.len() < EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
            // The status decided the attempt; a body cut short changes nothing.
            Ok(None) | Err(_) => break,
        }
    }
    excerpt.truncate(EXCERPT_BYTES);
    let excerpt = crate::nul::replace(String::from_utf8_lossy(&excerpt).trim());
    let (verdict, error) = if status.is_success() {
        (Verdict::Succeeded, None)
    } else if status.as_u16() == 410 {
        (
            Verdict::Gone,
            Some(format!("the endpoint answered {status}")),
        )
    } else if status.is_redirection() {
        let error = format!(
            "the endpoint answered {status}: redirects are not followed (register the URL it \
             points to)"
        );
        (Verdict::Failed, Some(error))
    } else {
        (
            Verdict::Failed,
            Some(format!("the endpoint answered {status}")),
        )
    };
    Sent {
        at,
        elapsed: started.elapsed(),
        verdict,
        status: Some(status.as_u16()),
        error,
        excerpt: (!excerpt.is_empty()).then_some(excerpt),
        retry_after,
    }
}

/// A failed request in words, without the URL (the log row is about that URL).
fn in_words(error: &reqwest13::Error, settings: &Settings) -> String {
    if let Some(why) = refused_address(error) {
        return format!(
            "refused by the egress policy ({why}); the server allows such networks with \
             --webhook-allow-private-networks"
        );
    }
    if error.is_timeout() {
        return format!("no answer within {} s", settings.timeout.as_secs_f64());
    }
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    let cause = causes.last().cloned().unwrap_or_else(|| error.to_string());
    if error.is_connect() {
        format!("could not connect: {cause}")
    } else {
        format!("the request failed: {cause}")
    }
}

/// `Retry-After` as seconds or an HTTP date, capped.
fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match text.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = DateTime::parse_from_rfc2822(text).ok()?;
            (at.with_timezone(&Utc) - now).to_std().unwrap_or_default()
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// The wait before the next attempt after `made` attempts: the schedule's, plus up to
/// 10 % jitter (so a receiver back up is not hit by every delivery at once), or the
/// receiver's `Retry-After` when that is later.
fn next_wait(
    settings: &Settings,
    made: i32,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Duration {
    let index = usize::try_from(made).unwrap_or(0);
    let base = settings
        .schedule
        .get(index)
        .or(settings.schedule.last())
        .copied()
        .unwrap_or_default();
    let wait = base + base.mul_f64(jitter.clamp(0.0, 1.0) * 0.1);
    retry_after.map_or(wait, |asked| wait.max(asked))
}

/// Write the attempt and what follows from it, if this host still holds the lease;
/// returns the outcome for the metric.
async fn record(
    pool: &PgPool,
    settings: &Settings,
    token: Uuid,
    delivery: &Claimed,
    sent: &Sent,
) -> anyhow::Result<&'static str> {
    let made = delivery.attempts + 1;
    let again = sent.verdict == Verdict::Failed && made < delivery.max_attempts;
    let (status, outcome) = match sent.verdict {
        Verdict::Succeeded => ("succeeded", "succeeded"),
        Verdict::Gone => ("failed", "gone"),
        Verdict::Failed if again => ("pending", "retrying"),
        Verdict::Failed => ("failed", "failed"),
    };
    let wait = again.then(|| next_wait(settings, made, sent.retry_after, rand::random::<f64>()));
    let duration_ms = i32::try_from(sent.elapsed.as_millis()).unwrap_or(i32::MAX);
    let response_status = sent.status.map(i32::from);
    let error = sent.error.as_deref().map(crate::nul::replace);
    let mut tx = pool.begin().await?;
    // The webhook before the delivery, the order every path takes them in
    // (`store::lock_cursor`).
    sqlx::query("SELECT 1 FROM webhooks WHERE id = $1 FOR NO KEY UPDATE")
        .bind(delivery.webhook_id)
        .execute(&mut *tx)
        .await?;
    let updated = sqlx::query(
        "UPDATE webhook_deliveries SET status = $3, attempts = $4, \
             next_attempt_at = now() + $5 * interval '1 ms', \
             lease_token = NULL, lease_until = NULL, last_attempt_at = $6, \
             response_status = $7, duration_ms = $8, error = $9, \
             finished_at = CASE WHEN $3 = 'pending' THEN NULL ELSE now() END \
         WHERE id = $1 AND lease_token = $2",
    )
    .bind(delivery.id)
    .bind(token)
    .bind(status)
    .bind(made)
    .bind(wait.map(|wait| wait.as_millis() as f64))
    .bind(sent.at)
    .bind(response_status)
    .bind(duration_ms)
    .bind(&error)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        anyhow::bail!("the lease ended before the attempt was recorded");
    }
    sqlx::query(
        "INSERT INTO webhook_delivery_attempts \
             (delivery_id, attempt, at, response_status, duration_ms, error, response_excerpt) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(delivery.id)
    .bind(made)
    .bind(sent.at)
    .bind(response_status)
    .bind(duration_ms)
    .bind(&error)
    .bind(&sent.excerpt)
    .execute(&mut *tx)
    .await?;
    match sent.verdict {
        Verdict::Succeeded => {
            sqlx::query(
                "UPDATE webhooks SET exhausted_in_a_row = 0, last_success_at = now() WHERE id = $1",
            )
            .bind(delivery.webhook_id)
            .execute(&mut *tx)
            .await?;
        }
        _ if again || delivery.manual => {}
        verdict => {
            let event = NewEvent {
                workspace: delivery.workspace_id,
                kind: "webhook.delivery.failed",
                subject: Some(delivery.webhook_id.to_string()),
                payload: json!({
                    "webhook_id": delivery.webhook_id,
                    "delivery_id": delivery.id,
                    "event_id": delivery.event_id,
                    "event_type": delivery.event_type,
                    "attempts": made,
                    "response_status": response_status,
                    "error": error.clone().unwrap_or_default(),
                }),
                actor: ACTOR,
            };
            events::emit(&mut tx, event).await?;
            let in_a_row: i32 = sqlx::query_scalar(
                "UPDATE webhooks SET exhausted_in_a_row = exhausted_in_a_row + 1 \
                 WHERE id = $1 RETURNING exhausted_in_a_row",
            )
            .bind(delivery.webhook_id)
            .fetch_one(&mut *tx)
            .await?;
            let reason = if verdict == Verdict::Gone {
                Some("the endpoint answered 410 Gone".to_string())
            } else if in_a_row >= i32::try_from(settings.disable_after).unwrap_or(i32::MAX) {
                Some(format!(
                    "{in_a_row} deliveries in a row failed every attempt"
                ))
            } else {
                None
            };
            if let Some(reason) = reason {
                store::disable(&mut tx, delivery.webhook_id, &reason, ACTOR).await?;
            }
        }
    }
    // A 410 to a retry made by hand disables the webhook too.
    if sent.verdict == Verdict::Gone && delivery.manual {
        store::disable(
            &mut tx,
            delivery.webhook_id,
            "the endpoint answered 410 Gone",
            ACTOR,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(schedule: &[u64]) -> Settings {
        Settings {
            networks: Arc::new(Vec::new()),
            timeout: Duration::from_secs(15),
            schedule: schedule.iter().map(|s| Duration::from_secs(*s)).collect(),
            disable_after: 5,
            workers: 1,
            retention: Duration::from_secs(3600),
        }
    }

    #[test]
    fn waits_follow_the_schedule_with_at_most_a_tenth_of_jitter() {
        let settings = settings(&[0, 5, 300, 1800]);
        assert_eq!(next_wait(&settings, 1, None, 0.0), Duration::from_secs(5));
        assert_eq!(
            next_wait(&settings, 1, None, 1.0),
            Duration::from_millis(5500)
        );
        assert_eq!(
            next_wait(&settings, 3, None, 0.5),
            Duration::from_secs(1890)
        );
        // A later Retry-After wins; an earlier one doesn't shorten the wait.
        let asked = Some(Duration::from_secs(60));
        assert_eq!(next_wait(&settings, 1, asked, 0.0), Duration::from_secs(60));
        assert_eq!(
            next_wait(&settings, 2, asked, 0.0),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates_and_is_capped() {
        let now = DateTime::parse_from_rfc3339("2026-12-07T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let headers = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(RETRY_AFTER, value.parse().unwrap());
            headers
        };
        assert_eq!(
            retry_after(&headers("120"), now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            retry_after(&headers("Mon, 07 Dec 2026 12:01:30 GMT"), now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            retry_after(&headers("999999999"), now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
