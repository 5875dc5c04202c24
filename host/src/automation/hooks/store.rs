//! The credentials of webhook URLs in `workflow_hooks`: made when a version with a
//! webhook trigger is saved, issued and rotated through the API, and matched against
//! a request's token in constant time.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use rand::Rng;
use serde::Serialize;
use sqlx::PgPool;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{WebhookTrigger, webhook_of};
use crate::error::{ApiError, ApiResult};
use crate::workflows::definition::Definition;
use crate::workflows::trigger::TriggerDef;

/// Where the URLs are served.
pub const PATH_PREFIX: &str = "/hooks";

/// Make the workflow's hook row when `definition` has a webhook trigger and the
/// workflow has none yet; called in the transaction that saves a version. A version
/// without the trigger keeps the row (the URL answers 404 until a version has it again).
pub async fn on_version_saved(
    tx: &mut sqlx::PgConnection,
    workflow: Uuid,
    definition: &Definition,
) -> ApiResult<()> {
    if webhook_of(&definition.triggers).is_none() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO workflow_hooks (workflow_id, workspace_id, secret) \
         SELECT id, workspace_id, $2 FROM workflows WHERE id = $1 \
         ON CONFLICT (workflow_id) DO NOTHING",
    )
    .bind(workflow)
    .bind(new_secret())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// `whk_` + 32 random bytes, base64url: fits a URL path segment as it is.
fn new_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    format!("whk_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// `whsec_` + 32 random bytes, base64: the Standard Webhooks format of a secret.
fn new_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// A hook that a request's token opened.
#[derive(Debug)]
pub struct Hook {
    pub workflow_id: Uuid,
    pub workspace_id: Uuid,
    pub slug: String,
    pub enabled: bool,
    /// The latest version's webhook trigger; none: the URL answers 404.
    pub trigger: Option<WebhookTrigger>,
    /// The secrets a signature may be made with: the current one, and the previous one
    /// during a rotation's grace period.
    pub secrets: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct Candidate {
    workflow_id: Uuid,
    workspace_id: Uuid,
    slug: String,
    enabled: bool,
    token_sha256: Option<Vec<u8>>,
    previous_token_sha256: Option<Vec<u8>>,
    secret: String,
    previous_secret: Option<String>,
    trigger: Option<sqlx::types::Json<TriggerDef>>,
}

/// The hook at `/hooks/{workflow}/{token}`: `workflow` is a slug (the same slug may be
/// in several workspaces; the token tells them apart) or an id. Every candidate's token
/// hash is compared in constant time.
pub async fn find(pool: &PgPool, workflow: &str, token: &str) -> ApiResult<Option<Hook>> {
    let candidates: Vec<Candidate> = sqlx::query_as(
        "SELECT h.workflow_id, h.workspace_id, w.slug, w.enabled, h.token_sha256, \
             CASE WHEN h.previous_until > now() THEN h.previous_token_sha256 END \
                 AS previous_token_sha256, \
             h.secret, \
             CASE WHEN h.previous_until > now() THEN h.previous_secret END AS previous_secret, \
             (SELECT t FROM jsonb_array_elements(CASE jsonb_typeof(v.definition->'triggers') \
                 WHEN 'array' THEN v.definition->'triggers' ELSE '[]' END) t \
              WHERE t->>'type' = 'webhook' LIMIT 1) AS trigger \
         FROM workflow_hooks h \
         JOIN workflows w ON w.id = h.workflow_id \
         JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = w.latest_version \
         WHERE w.slug = $1 OR w.id = $2",
    )
    .bind(workflow)
    .bind(Uuid::parse_str(workflow).ok())
    .fetch_all(pool)
    .await?;
    let presented = crate::auth::sha256(token);
    let matches = |stored: &Option<Vec<u8>>| {
        stored
            .as_deref()
            .is_some_and(|stored| bool::from(stored.ct_eq(&presented)))
    };
    let Some(found) = candidates
        .into_iter()
        .find(|c| matches(&c.token_sha256) | matches(&c.previous_token_sha256))
    else {
        return Ok(None);
    };
    let trigger = match found.trigger.map(|t| t.0) {
        Some(TriggerDef::Webhook(hook)) => Some(hook),
        _ => None,
    };
    let mut secrets = vec![found.secret];
    secrets.extend(found.previous_secret);
    Ok(Some(Hook {
        workflow_id: found.workflow_id,
        workspace_id: found.workspace_id,
        slug: found.slug,
        enabled: found.enabled,
        trigger,
        secrets,
    }))
}

/// A workflow's webhook, as `GET /api/workflows/{workflow}/hook` shows it: never its
/// token or secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = WorkflowHook)]
pub struct HookInfo {
    pub workflow: String,
    /// The URL's path with its token left out: `/hooks/{slug}/{token}`. The token is
    /// shown once, when issued (`POST …/hook/rotate`).
    pub path: String,
    /// Whether a token was issued (`POST …/hook/rotate` issues the first).
    pub issued: bool,
    /// Whether the URL starts executions now: a token was issued, the latest version has
    /// a webhook trigger, and the workflow is enabled.
    pub active: bool,
    /// The latest version's trigger; none when it has no webhook trigger.
    pub trigger: Option<WebhookTrigger>,
    /// Whether requests must be signed (`trigger.signature`).
    pub signed: bool,
    pub created_at: DateTime<Utc>,
    pub token_issued_at: Option<DateTime<Utc>>,
    pub secret_rotated_at: Option<DateTime<Utc>>,
    /// Until when the token and secret a rotation replaced still work.
    pub previous_valid_until: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct InfoRow {
    workflow_id: Uuid,
    slug: String,
    enabled: bool,
    issued: bool,
    created_at: DateTime<Utc>,
    token_issued_at: Option<DateTime<Utc>>,
    secret_rotated_at: Option<DateTime<Utc>>,
    previous_valid_until: Option<DateTime<Utc>>,
    trigger: Option<sqlx::types::Json<TriggerDef>>,
}

const INFO: &str = "SELECT h.workflow_id, w.slug, w.enabled, h.token_sha256 IS NOT NULL AS issued, \
         h.created_at, h.token_issued_at, h.secret_rotated_at, \
         CASE WHEN h.previous_until > now() THEN h.previous_until END AS previous_valid_until, \
         (SELECT t FROM jsonb_array_elements(CASE jsonb_typeof(v.definition->'triggers') \
             WHEN 'array' THEN v.definition->'triggers' ELSE '[]' END) t \
          WHERE t->>'type' = 'webhook' LIMIT 1) AS trigger \
     FROM workflow_hooks h \
     JOIN workflows w ON w.id = h.workflow_id \
     JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = w.latest_version \
     WHERE h.workspace_id = $1 AND (w.slug = $2 OR w.id = $3)";

impl From<InfoRow> for HookInfo {
    fn from(row: InfoRow) -> HookInfo {
        let trigger = match row.trigger.map(|t| t.0) {
            Some(TriggerDef::Webhook(hook)) => Some(hook),
            _ => None,
        };
        HookInfo {
            path: format!("{PATH_PREFIX}/{}/{{token}}", row.slug),
            workflow: row.slug,
            issued: row.issued,
            active: row.issued && row.enabled && trigger.is_some(),
            signed: trigger.as_ref().is_some_and(|t| t.signature.is_some()),
            trigger,
            created_at: row.created_at,
            token_issued_at: row.token_issued_at,
            secret_rotated_at: row.secret_rotated_at,
            previous_valid_until: row.previous_valid_until,
        }
    }
}

fn no_hook(workflow: &str) -> ApiError {
    ApiError::NotFound(format!(
        "workflow {workflow:?} has no webhook: save a version with a `{{\"type\": \"webhook\"}}` \
         trigger first"
    ))
}

async fn info_row(
    executor: impl sqlx::PgExecutor<'_>,
    workspace: Uuid,
    workflow: &str,
    lock: bool,
) -> ApiResult<Option<InfoRow>> {
    let sql = if lock {
        format!("{INFO} FOR UPDATE OF h")
    } else {
        INFO.to_string()
    };
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(workspace)
        .bind(workflow)
        .bind(Uuid::parse_str(workflow).ok())
        .fetch_optional(executor)
        .await?)
}

pub async fn info(pool: &PgPool, workspace: Uuid, workflow: &str) -> ApiResult<HookInfo> {
    let row = info_row(pool, workspace, workflow, false)
        .await?
        .ok_or_else(|| no_hook(workflow))?;
    Ok(row.into())
}

/// What `POST …/hook/rotate` replaces.
#[derive(Debug, Clone, Copy)]
pub struct Rotation {
    pub token: bool,
    pub secret: bool,
    /// How long what was replaced keeps working; zero: it stops at once.
    pub grace: Duration,
}

/// A hook with its new credentials, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = IssuedWorkflowHook)]
pub struct Issued {
    #[serde(flatten)]
    pub hook: HookInfo,
    /// The new token, and the URL's path with it (`POST` there); absent when only the
    /// secret was rotated. Shown only now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_path: Option<String>,
    /// The signing secret, when it is new (or was never shown): with `hmac_sha256`
    /// the HMAC key is this text; with `standard_webhooks` the base64 after `whsec_`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Issue the first token, or replace the token and/or secret. The first issue shows the
/// secret too, since nobody saw it before. Every rotation ends an earlier grace period,
/// so one that replaces nothing revokes the previous token and secret now.
pub async fn rotate(
    pool: &PgPool,
    workspace: Uuid,
    workflow: &str,
    rotation: Rotation,
) -> ApiResult<Issued> {
    let mut tx = pool.begin().await?;
    let row = info_row(&mut *tx, workspace, workflow, true)
        .await?
        .ok_or_else(|| no_hook(workflow))?;
    let first = !row.issued;
    // Without a token nothing was shown yet: a new token is the point of the call.
    let issue_token = rotation.token || first;
    let token = issue_token.then(new_token);
    // A token may be rotated without the secret; the secret is then shown only on the
    // first issue, when it is new to everyone.
    let secret = rotation.secret.then(new_secret);
    let grace_ms = rotation.grace.as_millis() as f64;
    sqlx::query(
        "UPDATE workflow_hooks SET \
             previous_token_sha256 = CASE WHEN $4 > 0 AND $2::bytea IS NOT NULL \
                 THEN token_sha256 END, \
             previous_secret = CASE WHEN $4 > 0 AND $3::text IS NOT NULL THEN secret END, \
             previous_until = CASE WHEN $4 > 0 AND ($2::bytea IS NOT NULL OR $3::text IS NOT NULL) \
                 THEN now() + $4 * interval '1 ms' END, \
             token_sha256 = coalesce($2, token_sha256), \
             secret = coalesce($3, secret), \
             token_issued_at = CASE WHEN $2::bytea IS NOT NULL THEN now() \
                 ELSE token_issued_at END, \
             secret_rotated_at = CASE WHEN $3::text IS NOT NULL THEN now() \
                 ELSE secret_rotated_at END \
         WHERE workflow_id = $1",
    )
    .bind(row.workflow_id)
    .bind(token.as_deref().map(crate::auth::sha256))
    .bind(&secret)
    .bind(grace_ms)
    .execute(&mut *tx)
    .await?;
    let shown_secret = match (&secret, first) {
        (Some(secret), _) => Some(secret.clone()),
        (None, true) => Some(
            sqlx::query_scalar("SELECT secret FROM workflow_hooks WHERE workflow_id = $1")
                .bind(row.workflow_id)
                .fetch_one(&mut *tx)
                .await?,
        ),
        (None, false) => None,
    };
    let row = info_row(&mut *tx, workspace, workflow, false)
        .await?
        .ok_or_else(|| no_hook(workflow))?;
    tx.commit().await?;
    let hook = HookInfo::from(row);
    Ok(Issued {
        url_path: token
            .as_ref()
            .map(|token| format!("{PATH_PREFIX}/{}/{token}", hook.workflow)),
        token,
        hook,
        secret: shown_secret,
    })
}
