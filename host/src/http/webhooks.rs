//! Outbound webhooks (crate::automation::outbound; docs/automation.md): a workspace's
//! events POSTed to URLs, signed as the Standard Webhooks spec says, with a delivery log.
//!
//! Roles: `admin` for every route, reading too (a webhook's URL may carry a token, and
//! its log the workspace's events), as for API keys. Refusals name the field (`url:`,
//! `event_types[1]:`, `secret:`) in a 422; a URL whose host is a loopback or private
//! address is refused unless the server allows its network.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use utoipa::openapi::schema::{Array, ArrayBuilder, ObjectBuilder, Type};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{Json, Path, Query, RequestId};
use super::openapi::ErrorBody;
use crate::audit::{self, AuditEvent};
use crate::auth::{Principal, Role, WorkspaceCaller};
use crate::automation::outbound::store::{
    self, Changes, Delivery, DeliveryDetail, DeliveryStatus, NewWebhook, Webhook, WebhookWithSecret,
};
use crate::automation::outbound::{sign, target};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(rotate_secret))
        .routes(routes!(list_deliveries))
        .routes(routes!(get_delivery))
        .routes(routes!(retry_delivery))
}

/// `event_types` as the OpenAPI document states it: 1-50 distinct values, each `*`, a
/// type of the catalogue or a prefix of whole segments of one (with or without `.*`).
fn event_types_schema() -> Array {
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(target::selectors())),
        )
        .min_items(Some(1))
        .max_items(Some(target::MAX_EVENT_TYPES))
        .unique_items(true)
        .description(Some(
            "Event types (`GET /api/event-types`), prefixes of whole segments (`ticket`, \
             `workflow.execution.*`), or `*` for every event.",
        ))
        .build()
}

/// An optional field that may be left out but not sent as `null`.
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// A new webhook.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct WebhookInput {
    /// Where to POST events: http or https, no user name or password; not a loopback
    /// or private address unless the server allows its network.
    #[schema(max_length = 2000, pattern = r"^[Hh][Tt][Tt][Pp][Ss]?://\S+$")]
    url: String,
    #[schema(schema_with = event_types_schema)]
    event_types: Vec<String>,
    /// `whsec_` + base64 of 24-64 random bytes; generated when absent.
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false, pattern = r"^whsec_[A-Za-z0-9+/]{32,88}={0,2}$")]
    secret: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false, max_length = 500)]
    description: Option<String>,
}

/// Changes to a webhook; absent fields keep their value. Enabling a disabled webhook
/// sends it events from then on, not those it missed.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct WebhookPatch {
    #[serde(default, deserialize_with = "present")]
    #[schema(
        nullable = false,
        max_length = 2000,
        pattern = r"^[Hh][Tt][Tt][Pp][Ss]?://\S+$"
    )]
    url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = event_types_schema)]
    event_types: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false, max_length = 500)]
    description: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    enabled: Option<bool>,
}

fn invalid(why: String) -> ApiError {
    ApiError::Invalid(why)
}

fn checked_url(state: &AppState, url: &str) -> ApiResult<String> {
    // Kept as the parser wrote it back: what the API shows is what is dialled.
    target::check_url(url, &state.config.webhook_allow_private_networks)
        .map(|url| url.to_string())
        .map_err(invalid)
}

fn audit_event<'a>(
    principal: &'a Principal,
    request_id: &'a RequestId,
    workspace: Uuid,
    action: &'a str,
    webhook: &Webhook,
) -> AuditEvent<'a> {
    AuditEvent {
        principal,
        request_id: request_id.as_deref(),
        workspace_id: Some(workspace),
        action,
        target: Some(webhook.id.to_string()),
        details: json!({ "url": webhook.url, "event_types": webhook.event_types,
            "enabled": webhook.enabled }),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Webhooks {
    webhooks: Vec<Webhook>,
}

/// Admin: the workspace's webhooks, oldest first (never their secrets).
#[utoipa::path(get, path = "/api/webhooks", tag = "webhooks",
    responses((status = 200, body = Webhooks)))]
async fn list_webhooks(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
) -> ApiResult<Json<Webhooks>> {
    caller.require(Role::Admin)?;
    let webhooks = store::list(&state.pool, caller.0.workspace_id).await?;
    Ok(Json(Webhooks { webhooks }))
}

/// Admin: a new webhook, sent the events committed after it. Its secret is in the
/// answer and never again (rotate it to get a new one).
#[utoipa::path(post, path = "/api/webhooks", tag = "webhooks", request_body = WebhookInput,
    responses(
        (status = 201, description = "The webhook and its secret", body = WebhookWithSecret),
        (status = 409, description = "The workspace has the most webhooks it may have (50)", body = ErrorBody),
        (status = 422, description = "A field breaks a rule; the message starts with its name", body = ErrorBody),
    ))]
async fn create_webhook(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    request_id: RequestId,
    Json(input): Json<WebhookInput>,
) -> ApiResult<(StatusCode, Json<WebhookWithSecret>)> {
    caller.require(Role::Admin)?;
    let url = checked_url(&state, &input.url)?;
    target::check_event_types(&input.event_types).map_err(invalid)?;
    let description = input.description.unwrap_or_default();
    target::check_description(&description).map_err(invalid)?;
    let secret = match input.secret {
        Some(secret) => {
            target::check_secret(&secret).map_err(invalid)?;
            secret
        }
        None => sign::generate_secret(),
    };
    let new = NewWebhook {
        url,
        event_types: input.event_types,
        description,
        secret: secret.clone(),
    };
    let workspace = caller.0.workspace_id;
    let principal = Principal::Key(caller.0.clone());
    let mut tx = state.pool.begin().await?;
    let webhook = store::create(&mut tx, workspace, &new, &caller.actor()).await?;
    let event = audit_event(
        &principal,
        &request_id,
        workspace,
        "webhook.create",
        &webhook,
    );
    audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookWithSecret { webhook, secret }),
    ))
}

const ID: &str = "The webhook's id";
const DELIVERY: &str = "The delivery's id";

/// Admin: one webhook.
#[utoipa::path(get, path = "/api/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = ID)),
    responses((status = 200, body = Webhook)))]
async fn get_webhook(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Webhook>> {
    caller.require(Role::Admin)?;
    let mut connection = state.pool.acquire().await?;
    Ok(Json(
        store::get(&mut connection, caller.0.workspace_id, id).await?,
    ))
}

/// Admin: change the URL, the event types or the description, or enable or disable
/// it. Disabling cancels its pending deliveries (a `webhook.disabled` event says so);
/// enabling sends it the events committed from then on.
#[utoipa::path(patch, path = "/api/webhooks/{id}", tag = "webhooks", request_body = WebhookPatch,
    params(("id" = Uuid, Path, description = ID)),
    responses(
        (status = 200, body = Webhook),
        (status = 422, description = "A field breaks a rule; the message starts with its name", body = ErrorBody),
    ))]
async fn update_webhook(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    request_id: RequestId,
    Path(id): Path<Uuid>,
    Json(patch): Json<WebhookPatch>,
) -> ApiResult<Json<Webhook>> {
    caller.require(Role::Admin)?;
    let url = patch
        .url
        .as_deref()
        .map(|url| checked_url(&state, url))
        .transpose()?;
    if let Some(types) = &patch.event_types {
        target::check_event_types(types).map_err(invalid)?;
    }
    if let Some(description) = &patch.description {
        target::check_description(description).map_err(invalid)?;
    }
    let changes = Changes {
        url,
        event_types: patch.event_types,
        description: patch.description,
        enabled: patch.enabled,
    };
    let workspace = caller.0.workspace_id;
    let principal = Principal::Key(caller.0.clone());
    let mut tx = state.pool.begin().await?;
    let webhook = store::update(&mut tx, workspace, id, &changes, &caller.actor()).await?;
    let event = audit_event(
        &principal,
        &request_id,
        workspace,
        "webhook.update",
        &webhook,
    );
    audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok(Json(webhook))
}

/// Admin: delete a webhook with its delivery log; nothing more is sent to it.
#[utoipa::path(delete, path = "/api/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = ID)),
    responses((status = 204, description = "Deleted")))]
async fn delete_webhook(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    request_id: RequestId,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    let workspace = caller.0.workspace_id;
    let principal = Principal::Key(caller.0.clone());
    let mut tx = state.pool.begin().await?;
    let webhook = store::delete(&mut tx, workspace, id).await?;
    let event = audit_event(
        &principal,
        &request_id,
        workspace,
        "webhook.delete",
        &webhook,
    );
    audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Admin: a new secret, shown in the answer only. For a day the old secret signs too:
/// `webhook-signature` carries both signatures, so receivers switch when ready.
#[utoipa::path(post, path = "/api/webhooks/{id}/rotate-secret", tag = "webhooks",
    params(("id" = Uuid, Path, description = ID)),
    responses((status = 200, description = "The webhook and its new secret", body = WebhookWithSecret)))]
async fn rotate_secret(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    request_id: RequestId,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<WebhookWithSecret>> {
    caller.require(Role::Admin)?;
    let workspace = caller.0.workspace_id;
    let principal = Principal::Key(caller.0.clone());
    let secret = sign::generate_secret();
    let mut tx = state.pool.begin().await?;
    let webhook = store::rotate(&mut tx, workspace, id, &secret).await?;
    let event = audit_event(
        &principal,
        &request_id,
        workspace,
        "webhook.rotate_secret",
        &webhook,
    );
    audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok(Json(WebhookWithSecret { webhook, secret }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DeliveryQuery {
    /// Only deliveries in this state.
    status: Option<DeliveryStatus>,
    /// Only deliveries older than this one (the previous page's `next`).
    before: Option<Uuid>,
    /// How many (1-100, default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Deliveries {
    /// Newest first.
    deliveries: Vec<Delivery>,
    /// Pass as `before` for the next page; `null` on the last.
    next: Option<Uuid>,
}

/// Admin: the webhook's delivery log, newest first: each event sent, its state, the
/// attempts made, the last answer's status and time, the error in words and when it
/// is tried next.
#[utoipa::path(get, path = "/api/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = Uuid, Path, description = ID), DeliveryQuery),
    responses((status = 200, body = Deliveries)))]
async fn list_deliveries(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Query(query): Query<DeliveryQuery>,
) -> ApiResult<Json<Deliveries>> {
    caller.require(Role::Admin)?;
    if let Some(limit) = query.limit.filter(|l| !(1..=MAX_LIMIT).contains(l)) {
        return Err(ApiError::Invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}, not {limit}"
        )));
    }
    let mut connection = state.pool.acquire().await?;
    store::get(&mut connection, caller.0.workspace_id, id).await?;
    drop(connection);
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    let deliveries = store::deliveries(&state.pool, id, query.status, query.before, limit).await?;
    let next = (deliveries.len() as i64 == limit)
        .then(|| deliveries.last().map(|d| d.id))
        .flatten();
    Ok(Json(Deliveries { deliveries, next }))
}

/// Admin: one delivery with the body it sends and every attempt (status, time taken,
/// error, the start of the answer).
#[utoipa::path(get, path = "/api/webhooks/{id}/deliveries/{delivery}", tag = "webhooks",
    params(("id" = Uuid, Path, description = ID), ("delivery" = Uuid, Path, description = DELIVERY)),
    responses((status = 200, body = DeliveryDetail)))]
async fn get_delivery(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path((id, delivery)): Path<(Uuid, Uuid)>,
) -> ApiResult<Json<DeliveryDetail>> {
    caller.require(Role::Admin)?;
    let mut connection = state.pool.acquire().await?;
    store::get(&mut connection, caller.0.workspace_id, id).await?;
    drop(connection);
    Ok(Json(store::delivery(&state.pool, id, delivery).await?))
}

/// Admin: send a delivery again now, with the same `webhook-id`. A finished one gets
/// one more attempt (its failure disables nothing); a pending one is sent now.
#[utoipa::path(post, path = "/api/webhooks/{id}/deliveries/{delivery}/retry", tag = "webhooks",
    params(("id" = Uuid, Path, description = ID), ("delivery" = Uuid, Path, description = DELIVERY)),
    responses(
        (status = 202, description = "Queued to be sent now", body = Delivery),
        (status = 409, description = "The webhook is disabled, or the delivery is being sent", body = ErrorBody),
    ))]
async fn retry_delivery(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path((id, delivery)): Path<(Uuid, Uuid)>,
) -> ApiResult<(StatusCode, Json<Delivery>)> {
    caller.require(Role::Admin)?;
    let delivery = store::retry(&state.pool, caller.0.workspace_id, id, delivery).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery)))
}
