//! A ticket's enrichment on demand, and a person's corrections of it (docs/cassie.md).
//!
//! Enriching embeds the ticket several times and may ask the LLM twice, so on a busy
//! host it can take longer than a request may. The work runs in a task of its own: when
//! it is not done within the request's time, the answer is 202 with what is stored so
//! far, and the work finishes anyway (never a 503 for being slow, never lost halfway).

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{Json, Path};
use super::tickets::schema::TicketPriority;
use crate::auth::{Role, WorkspaceCaller};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::support::{enrichment, rule_violation};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enrich_ticket))
        .routes(routes!(set_overrides))
}

fn actor(caller: &WorkspaceCaller) -> String {
    format!("key:{}", caller.0.key_id)
}

/// A ticket by id or number, in the caller's workspace (the tickets API's rule).
async fn ticket_id(state: &AppState, workspace: Uuid, ticket: &str) -> ApiResult<Uuid> {
    crate::support::tickets::find_id(
        &state.pool,
        workspace,
        &crate::support::tickets::TicketRef::parse(ticket),
    )
    .await
}

/// A ticket's enrichment and a person's corrections of it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct TicketEnrichment {
    /// Sentiment, intent, suggested priority, related articles, summary and suggested
    /// reply, each with how it was found; null until enriched.
    enrichment: Option<Value>,
    /// `sentiment`, `intent` and `priority` a person set; they win over `enrichment`.
    #[schema(value_type = Object)]
    overrides: Value,
    enriched_at: Option<chrono::DateTime<chrono::Utc>>,
}

async fn enrichment_of(state: &AppState, workspace: Uuid, id: Uuid) -> ApiResult<TicketEnrichment> {
    let (enrichment, overrides, enriched_at): (
        Option<Value>,
        Value,
        Option<chrono::DateTime<chrono::Utc>>,
    ) = sqlx::query_as(
        "SELECT enrichment, overrides, enriched_at FROM data.tickets
              WHERE workspace_id = $1 AND id = $2",
    )
    .bind(workspace)
    .bind(id)
    .fetch_one(&state.pool)
    .await
    .map_err(anyhow::Error::from)?;
    Ok(TicketEnrichment {
        enrichment,
        overrides,
        enriched_at,
    })
}

/// Member: enrich a ticket now (the same work the background job does). 200 with the
/// new enrichment; 202 with what is stored so far when the work outlasts the request's
/// time (it goes on; read the result with `GET /api/tickets/{id}`).
#[utoipa::path(post, path = "/api/tickets/{id}/enrich", tag = "tickets",
    params(("id" = String, Path, description = "The ticket's id, or its number (`42` or `#42`)")),
    responses(
        (status = 200, description = "The ticket's new enrichment", body = TicketEnrichment),
        (status = 202, description = "Still enriching: what is stored so far (`enriched_at` is older than the request)", body = TicketEnrichment),
        (status = 503, description = "Enrichment failed (the embedding model or the LLM)", body = super::openapi::ErrorBody),
    ))]
async fn enrich_ticket(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(ticket): Path<String>,
) -> ApiResult<Response> {
    caller.require(Role::Member)?;
    let workspace = caller.0.workspace_id;
    let id = ticket_id(&state, workspace, &ticket).await?;
    let support = state.support_services();
    let work = tokio::spawn(async move { enrichment::enrich(&support, workspace, id).await });
    match tokio::time::timeout(patience(&state), work).await {
        Ok(Ok(done)) => {
            done.map_err(|e| crate::error::unavailable("enrichment failed", e))?;
            Ok(Json(enrichment_of(&state, workspace, id).await?).into_response())
        }
        Ok(Err(panicked)) => Err(crate::error::unavailable(
            "enrichment failed",
            anyhow::Error::from(panicked),
        )),
        Err(_still_running) => {
            let mut response = (
                StatusCode::ACCEPTED,
                Json(enrichment_of(&state, workspace, id).await?),
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            Ok(response)
        }
    }
}

/// How long a request waits for enrichment: its own time limit, less a margin to read
/// and send what is stored.
fn patience(state: &AppState) -> Duration {
    let limit = state.config.request_timeout;
    limit.saturating_sub(Duration::from_secs(2)).max(limit / 2)
}

/// A person's corrections of a ticket's enrichment.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TicketOverrides)]
struct Overrides {
    sentiment: Option<OverriddenSentiment>,
    /// One of the workspace's intents.
    intent: Option<String>,
    #[schema(value_type = Option<TicketPriority>)]
    priority: Option<agenthost_support::triage::Priority>,
}

#[derive(Debug, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = SentimentLabel)]
enum OverriddenSentiment {
    Negative,
    Neutral,
    Positive,
}

/// Member: a person's corrections of enrichment, kept when the ticket is enriched again.
/// The body replaces every override: leave a field out (or null) to drop its override.
#[utoipa::path(put, path = "/api/tickets/{id}/overrides", tag = "tickets",
    params(("id" = String, Path, description = "The ticket's id, or its number (`42` or `#42`)")),
    request_body = Overrides,
    responses((status = 200, body = TicketEnrichment)))]
async fn set_overrides(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(ticket): Path<String>,
    Json(overrides): Json<Overrides>,
) -> ApiResult<Json<TicketEnrichment>> {
    caller.require(Role::Member)?;
    let workspace = caller.0.workspace_id;
    let id = ticket_id(&state, workspace, &ticket).await?;
    if let Some(intent) = &overrides.intent {
        let known = enrichment::intents(&state.pool, workspace)
            .await
            .map_err(anyhow::Error::from)?;
        if !known.iter().any(|i| &i.name == intent) {
            let names: Vec<&str> = known.iter().map(|i| i.name.as_str()).collect();
            return Err(ApiError::Invalid(format!(
                "intent {intent:?} is not one of the workspace's intents: {}",
                names.join(", ")
            )));
        }
    }
    let value = json!({
        "sentiment": overrides.sentiment,
        "intent": overrides.intent,
        "priority": overrides.priority,
    });
    let set: serde_json::Map<String, Value> = value
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    sqlx::query(
        "UPDATE data.tickets SET overrides = $3, updated_by = $4
          WHERE workspace_id = $1 AND id = $2",
    )
    .bind(workspace)
    .bind(id)
    .bind(Value::Object(set))
    .bind(actor(&caller))
    .execute(&state.pool)
    .await
    .map_err(rule_violation)?;
    Ok(Json(enrichment_of(&state, workspace, id).await?))
}
