//! Webhooks and their delivery log in the database: what the API reads and writes.
//! Sending is `deliver`'s; walking the feed is `enqueue`'s.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::ACTOR;
use crate::error::{ApiError, ApiResult};
use crate::events::{self, NewEvent};

/// Webhooks one workspace may have.
pub const MAX_WEBHOOKS: i64 = 50;
/// How long a rotated-out secret keeps signing.
pub const ROTATION_GRACE_HOURS: i64 = 24;

/// A webhook as the API shows it (never its secret).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    /// Event types or prefixes (`ticket`, `workflow.execution.*`), or `*`.
    pub event_types: Vec<String>,
    pub description: String,
    pub enabled: bool,
    /// Why it was disabled, in words (`null` while enabled).
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// Until when the secret replaced by the last rotation still signs too.
    pub previous_secret_until: Option<DateTime<Utc>>,
    /// Deliveries in a row that failed every attempt (a success resets it).
    pub exhausted_in_a_row: i32,
    pub last_success_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The columns of [`Webhook`], as a literal for `concat!` (SQL stays static text).
macro_rules! columns {
    () => {
        "id, url, event_types, description, enabled, disabled_reason, disabled_at, \
         CASE WHEN previous_secret_until > now() THEN previous_secret_until END \
             AS previous_secret_until, \
         exhausted_in_a_row, last_success_at, created_by, created_at, updated_at"
    };
}

/// A webhook with its secret: the answer to a create or a rotation, the only times the
/// secret is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// `whsec_` + base64 of the key: configure the receiver with it. Shown only here.
    pub secret: String,
}

/// Fields of a new webhook, already checked (`target`).
#[derive(Debug)]
pub struct NewWebhook {
    pub url: String,
    pub event_types: Vec<String>,
    pub description: String,
    pub secret: String,
}

/// Changes to a webhook, already checked; absent fields keep their value.
#[derive(Debug, Default)]
pub struct Changes {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// The cursor of a webhook created or enabled now: the feed's head, so it is sent
/// events from here on (the statement `workflows::store` uses for triggers).
async fn cursor_at_head(tx: &mut PgConnection, webhook: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO webhook_cursors (webhook_id, tx, seq) \
         SELECT $1, coalesce(head.tx, '0'::xid8), coalesce(head.seq, 0) \
         FROM (SELECT 1) one LEFT JOIN LATERAL ( \
             SELECT tx, seq FROM events \
             WHERE workspace_id = (SELECT workspace_id FROM webhooks WHERE id = $1) \
             ORDER BY tx DESC, seq DESC LIMIT 1) head ON true \
         ON CONFLICT (webhook_id) DO UPDATE SET tx = EXCLUDED.tx, seq = EXCLUDED.seq, \
             updated_at = now()",
    )
    .bind(webhook)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn create(
    tx: &mut PgConnection,
    workspace: Uuid,
    new: &NewWebhook,
    actor: &str,
) -> ApiResult<Webhook> {
    // Serialises creates of one workspace, so two at once can't both pass the cap.
    sqlx::query("SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE")
        .bind(workspace)
        .execute(&mut *tx)
        .await?;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM webhooks WHERE workspace_id = $1")
        .bind(workspace)
        .fetch_one(&mut *tx)
        .await?;
    if count >= MAX_WEBHOOKS {
        return Err(ApiError::Conflict(format!(
            "this workspace has {count} webhooks, the most it may have ({MAX_WEBHOOKS}); \
             delete one first"
        )));
    }
    let webhook: Webhook = sqlx::query_as(concat!(
        "INSERT INTO webhooks (workspace_id, url, event_types, description, secret, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
        columns!()
    ))
    .bind(workspace)
    .bind(&new.url)
    .bind(&new.event_types)
    .bind(&new.description)
    .bind(&new.secret)
    .bind(actor)
    .fetch_one(&mut *tx)
    .await?;
    cursor_at_head(tx, webhook.id).await?;
    Ok(webhook)
}

pub async fn list(pool: &PgPool, workspace: Uuid) -> sqlx::Result<Vec<Webhook>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM webhooks WHERE workspace_id = $1 ORDER BY created_at, id"
    ))
    .bind(workspace)
    .fetch_all(pool)
    .await
}

fn not_found(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no webhook {id} in this workspace"))
}

pub async fn get(tx: &mut PgConnection, workspace: Uuid, id: Uuid) -> ApiResult<Webhook> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM webhooks WHERE workspace_id = $1 AND id = $2"
    ))
    .bind(workspace)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| not_found(id))
}

/// Every path takes a webhook's rows in one order: its cursor, the webhook, its
/// deliveries (the feed walk holds the cursor while it reads events, then shares the
/// webhook; an attempt's record locks the webhook, then the delivery). One order means
/// no deadlock between them.
async fn lock_cursor(tx: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("SELECT 1 FROM webhook_cursors WHERE webhook_id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

pub async fn update(
    tx: &mut PgConnection,
    workspace: Uuid,
    id: Uuid,
    changes: &Changes,
    actor: &str,
) -> ApiResult<Webhook> {
    lock_cursor(tx, id).await?;
    let before: Option<bool> = sqlx::query_scalar(
        "SELECT enabled FROM webhooks WHERE workspace_id = $1 AND id = $2 FOR UPDATE",
    )
    .bind(workspace)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let was_enabled = before.ok_or_else(|| not_found(id))?;
    sqlx::query(
        "UPDATE webhooks SET url = coalesce($2, url), event_types = coalesce($3, event_types), \
             description = coalesce($4, description), updated_at = now() \
         WHERE id = $1",
    )
    .bind(id)
    .bind(&changes.url)
    .bind(&changes.event_types)
    .bind(&changes.description)
    .execute(&mut *tx)
    .await?;
    match (was_enabled, changes.enabled) {
        (true, Some(false)) => {
            disable(tx, id, &format!("disabled by {actor}"), actor).await?;
        }
        (false, Some(true)) => {
            // Enabled again: sent what happens from now on, not what it missed.
            sqlx::query(
                "UPDATE webhooks SET enabled = true, disabled_reason = NULL, disabled_at = NULL, \
                     exhausted_in_a_row = 0 WHERE id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            cursor_at_head(tx, id).await?;
        }
        _ => {}
    }
    get(tx, workspace, id).await
}

pub async fn delete(tx: &mut PgConnection, workspace: Uuid, id: Uuid) -> ApiResult<Webhook> {
    lock_cursor(tx, id).await?;
    let webhook = get(tx, workspace, id).await?;
    sqlx::query("DELETE FROM webhooks WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(webhook)
}

/// A new secret; the current one keeps signing for a day (a rotation within that day
/// ends the older one's grace: two secrets sign at most).
pub async fn rotate(
    tx: &mut PgConnection,
    workspace: Uuid,
    id: Uuid,
    secret: &str,
) -> ApiResult<Webhook> {
    let rotated = sqlx::query(
        "UPDATE webhooks SET previous_secret = secret, \
             previous_secret_until = now() + $3 * interval '1 hour', \
             secret = $4, updated_at = now() \
         WHERE workspace_id = $1 AND id = $2",
    )
    .bind(workspace)
    .bind(id)
    .bind(ROTATION_GRACE_HOURS as f64)
    .bind(secret)
    .execute(&mut *tx)
    .await?;
    if rotated.rows_affected() == 0 {
        return Err(not_found(id));
    }
    get(tx, workspace, id).await
}

/// Disable an enabled webhook: its pending deliveries are cancelled and a
/// `webhook.disabled` event says why. False when it was disabled already.
pub async fn disable(
    tx: &mut PgConnection,
    id: Uuid,
    reason: &str,
    by: &str,
) -> sqlx::Result<bool> {
    let disabled: Option<(Uuid, String)> = sqlx::query_as(
        "UPDATE webhooks SET enabled = false, disabled_reason = $2, disabled_at = now(), \
             updated_at = now() \
         WHERE id = $1 AND enabled RETURNING workspace_id, url",
    )
    .bind(id)
    .bind(reason)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((workspace, url)) = disabled else {
        return Ok(false);
    };
    sqlx::query(
        "UPDATE webhook_deliveries SET status = 'cancelled', next_attempt_at = NULL, \
             finished_at = now() \
         WHERE webhook_id = $1 AND status = 'pending'",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let event = NewEvent {
        workspace,
        kind: "webhook.disabled",
        subject: Some(id.to_string()),
        payload: json!({ "webhook_id": id, "url": url, "reason": reason, "by": by }),
        actor: if by.starts_with("key:") { by } else { ACTOR },
    };
    events::emit(tx, event).await?;
    Ok(true)
}

/// A delivery's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = WebhookDeliveryStatus)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or being sent now).
    Pending,
    Succeeded,
    /// Every attempt failed, or the endpoint answered 410.
    Failed,
    /// Not sent further: the webhook was disabled.
    Cancelled,
}

/// One event sent (or to be sent) to one webhook, as the delivery log shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = WebhookDelivery)]
pub struct Delivery {
    pub id: Uuid,
    /// The event's id: the `webhook-id` header of every attempt.
    pub event_id: Uuid,
    pub event_type: String,
    #[sqlx(try_from = "String")]
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: i32,
    /// When it is tried next (`null` once finished).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The last attempt's HTTP status (`null` without an answer).
    pub response_status: Option<i32>,
    /// How long the last attempt took, in milliseconds.
    pub duration_ms: Option<i32>,
    /// Why the last attempt failed, in words.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The status column, read into its enum.
impl TryFrom<String> for DeliveryStatus {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        serde_json::from_value(serde_json::Value::String(text)).map_err(|e| e.to_string())
    }
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Cancelled => "cancelled",
        }
    }
}

/// The columns of [`Delivery`].
macro_rules! delivery_columns {
    () => {
        "id, event_id, event_type, status, attempts, next_attempt_at, last_attempt_at, \
         response_status, duration_ms, error, created_at, finished_at"
    };
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = WebhookDeliveryAttempt)]
pub struct Attempt {
    pub attempt: i32,
    /// When it was sent: its `webhook-timestamp`.
    pub at: DateTime<Utc>,
    pub response_status: Option<i32>,
    pub duration_ms: i32,
    pub error: Option<String>,
    /// The start of the response body (at most 1 KiB, as text).
    pub response_excerpt: Option<String>,
}

/// A delivery with the body it sends and every attempt.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = WebhookDeliveryDetail)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: Delivery,
    /// The exact body every attempt sends: the event as `GET /api/events` shows it.
    pub body: String,
    pub attempt_log: Vec<Attempt>,
}

/// Newest first, `limit` of them, before the delivery `before` (when given).
pub async fn deliveries(
    pool: &PgPool,
    webhook: Uuid,
    status: Option<DeliveryStatus>,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Delivery>> {
    let status = status.map(DeliveryStatus::as_str);
    sqlx::query_as(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM webhook_deliveries d \
         WHERE webhook_id = $1 AND ($2::text IS NULL OR status = $2) \
           AND ($3::uuid IS NULL OR (created_at, id) < ( \
               SELECT created_at, id FROM webhook_deliveries WHERE id = $3 AND webhook_id = $1)) \
         ORDER BY created_at DESC, id DESC LIMIT $4"
    ))
    .bind(webhook)
    .bind(status)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await
}

fn no_delivery(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no delivery {id} of this webhook"))
}

pub async fn delivery(pool: &PgPool, webhook: Uuid, id: Uuid) -> ApiResult<DeliveryDetail> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        delivery: Delivery,
        body: String,
    }
    let row: Row = sqlx::query_as(concat!(
        "SELECT ",
        delivery_columns!(),
        ", body FROM webhook_deliveries \
         WHERE webhook_id = $1 AND id = $2"
    ))
    .bind(webhook)
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| no_delivery(id))?;
    let attempt_log = sqlx::query_as(
        "SELECT attempt, at, response_status, duration_ms, error, response_excerpt \
         FROM webhook_delivery_attempts WHERE delivery_id = $1 ORDER BY attempt",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok(DeliveryDetail {
        delivery: row.delivery,
        body: row.body,
        attempt_log,
    })
}

/// Send a delivery again now, once more: a finished one gets one more attempt (whose
/// failure is final and disables nothing); a pending one is moved to now.
pub async fn retry(pool: &PgPool, workspace: Uuid, webhook: Uuid, id: Uuid) -> ApiResult<Delivery> {
    let mut tx = pool.begin().await?;
    // Shared with a concurrent disable, which then cancels this delivery too.
    let enabled: Option<bool> = sqlx::query_scalar(
        "SELECT enabled FROM webhooks WHERE workspace_id = $1 AND id = $2 FOR SHARE",
    )
    .bind(workspace)
    .bind(webhook)
    .fetch_optional(&mut *tx)
    .await?;
    if !enabled.ok_or_else(|| not_found(webhook))? {
        return Err(ApiError::Conflict(
            "the webhook is disabled; enable it (PATCH enabled: true) before retrying".into(),
        ));
    }
    let leased: Option<bool> = sqlx::query_scalar(
        "SELECT status = 'pending' AND lease_until > now() FROM webhook_deliveries \
         WHERE webhook_id = $1 AND id = $2 FOR UPDATE",
    )
    .bind(webhook)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    match leased {
        None => return Err(no_delivery(id)),
        Some(true) => {
            return Err(ApiError::Conflict(
                "the delivery is being sent now; its result is in the log shortly".into(),
            ));
        }
        Some(false) => {}
    }
    let delivery: Delivery = sqlx::query_as(concat!(
        "UPDATE webhook_deliveries SET \
             max_attempts = CASE WHEN status = 'pending' THEN max_attempts ELSE attempts + 1 END, \
             manual = manual OR status <> 'pending', \
             status = 'pending', next_attempt_at = now(), finished_at = NULL \
         WHERE id = $1 RETURNING ",
        delivery_columns!()
    ))
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(delivery)
}

/// Delete finished deliveries older than `retention`, a batch at a time.
pub async fn sweep(pool: &PgPool, retention: std::time::Duration) -> sqlx::Result<u64> {
    let mut deleted = 0;
    loop {
        let done = sqlx::query(
            "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries \
             WHERE finished_at < now() - $1 * interval '1 ms' LIMIT 5000)",
        )
        .bind(retention.as_millis() as f64)
        .execute(pool)
        .await?
        .rows_affected();
        deleted += done;
        if done < 5000 {
            return Ok(deleted);
        }
    }
}
