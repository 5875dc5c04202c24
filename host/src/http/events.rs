//! The workspace's activity feed: its domain events (crate::events) as pages
//! (`GET /api/events`) and as a live stream (`GET /api/events/stream`), and the
//! catalogue of event types with their payload schemas.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{Json, Query};
use crate::auth::{Role, WorkspaceCaller};
use crate::error::{ApiError, ApiResult};
use crate::events::types::{CATALOGUE, EventType};
use crate::events::{self, Cursor, Filter, StoredEvent};
use crate::state::AppState;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;
/// How often an open stream looks for new events.
const POLL: Duration = Duration::from_millis(250);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(event_types))
        .routes(routes!(list_events))
        .routes(routes!(stream_events))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct EventTypes {
    event_types: Vec<EventType>,
}

/// Any role: every event type the host emits, with what its subject is and its
/// payload's JSON Schema.
#[utoipa::path(get, path = "/api/event-types", tag = "events",
    responses((status = 200, description = "The catalogue", body = EventTypes)))]
async fn event_types(caller: WorkspaceCaller) -> ApiResult<Json<EventTypes>> {
    caller.require(Role::Viewer)?;
    Ok(Json(EventTypes {
        event_types: CATALOGUE.clone(),
    }))
}

/// The event filters both routes take.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct FilterQuery {
    /// A type (`ticket.created`) or a prefix of whole segments (`workflow`,
    /// `workflow.execution.*`).
    #[serde(rename = "type")]
    #[param(
        rename = "type",
        pattern = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?$",
        max_length = 200
    )]
    kind: Option<String>,
    /// Only events about this subject (an execution, ticket or article id, ...).
    #[param(max_length = 200)]
    subject: Option<String>,
}

impl FilterQuery {
    fn checked(self) -> ApiResult<Filter> {
        if let Some(kind) = &self.kind {
            let well_formed = crate::events::types::is_type_or_prefix(kind);
            if !well_formed {
                return Err(ApiError::Invalid(format!(
                    "type {kind:?} is not an event type or a prefix of one (like \
                     `workflow.execution` or `workflow.*`)"
                )));
            }
        }
        if self.subject.as_ref().is_some_and(|s| s.len() > 200) {
            return Err(ApiError::Invalid("subject is longer than 200 bytes".into()));
        }
        Ok(Filter {
            kind: self.kind,
            subject: self.subject,
        })
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only events after this `cursor` (an event's, or the previous page's `next`).
    // Digits that always fit the cursor's u64 and i64 halves.
    #[param(pattern = r"^[0-9]{1,19}-[0-9]{1,18}$")]
    after: Option<String>,
    #[serde(rename = "type")]
    #[param(
        rename = "type",
        pattern = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?$",
        max_length = 200
    )]
    kind: Option<String>,
    #[param(max_length = 200)]
    subject: Option<String>,
    /// How many events (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct EventPage {
    /// Oldest first, in the order they were committed.
    events: Vec<StoredEvent>,
    /// Where to read on (`after`): the last event's cursor, or `after` itself when
    /// there was nothing new.
    next: String,
}

fn cursor(text: Option<&str>) -> ApiResult<Cursor> {
    match text {
        None => Ok(Cursor::default()),
        Some(text) => text
            .parse()
            .map_err(|why: String| ApiError::Invalid(format!("after: {why}"))),
    }
}

/// Any role: the workspace's events, oldest first, in commit order; page with `after`.
#[utoipa::path(get, path = "/api/events", tag = "events",
    params(ListQuery),
    responses((status = 200, description = "A page of events", body = EventPage)))]
async fn list_events(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<EventPage>> {
    caller.require(Role::Viewer)?;
    if let Some(limit) = query.limit.filter(|l| !(1..=MAX_LIMIT).contains(l)) {
        return Err(ApiError::Invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}, not {limit}"
        )));
    }
    let after = cursor(query.after.as_deref())?;
    let filter = FilterQuery {
        kind: query.kind,
        subject: query.subject,
    }
    .checked()?;
    let events = events::read(
        &state.pool,
        caller.0.workspace_id,
        after,
        &filter,
        query.limit.unwrap_or(DEFAULT_LIMIT),
    )
    .await?;
    let next = events
        .last()
        .map_or_else(|| after.to_string(), |event| event.cursor.clone());
    Ok(Json(EventPage { events, next }))
}

/// Any role: the live feed as Server-Sent Events, from the start or after
/// `Last-Event-ID` (an event's `cursor`), filtered like `GET /api/events`. Each
/// event's SSE `event` is its type and `id` its cursor; `data` is the event as JSON.
/// The feed does not end; a reconnect resumes where it left off.
#[utoipa::path(get, path = "/api/events/stream", tag = "events",
    params(
        FilterQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event's cursor",
            nullable = false, pattern = r"^[0-9]{1,19}-[0-9]{1,18}$"),
    ),
    responses((status = 200, description = "An event stream", content_type = "text/event-stream", body = String)))]
async fn stream_events(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Query(query): Query<FilterQuery>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    caller.require(Role::Viewer)?;
    // An empty Last-Event-ID is what EventSource sends before it saw any id: the start.
    let last = headers
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or("-").trim())
        .filter(|v| !v.is_empty());
    let after = cursor(last).map_err(|_| {
        ApiError::Invalid("Last-Event-ID is not an event's cursor (like `0-0`)".into())
    })?;
    let filter = query.checked()?;
    let stream = feed(
        state.pool.clone(),
        caller.0.workspace_id,
        after,
        filter,
        state.shutting_down.clone(),
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn feed(
    pool: sqlx::PgPool,
    workspace: Uuid,
    after: Cursor,
    filter: Filter,
    shutting_down: CancellationToken,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    futures_util::stream::unfold(
        (
            pool,
            after,
            filter,
            Vec::<StoredEvent>::new(),
            shutting_down,
        ),
        move |(pool, mut after, filter, mut queue, shutting_down)| async move {
            loop {
                if let Some(event) = queue.pop() {
                    let sse = SseEvent::default()
                        .id(event.cursor.clone())
                        .event(&event.kind)
                        .data(serde_json::to_string(&event).unwrap_or_default());
                    return Some((Ok(sse), (pool, after, filter, queue, shutting_down)));
                }
                match events::read(&pool, workspace, after, &filter, DEFAULT_LIMIT).await {
                    Ok(page) if !page.is_empty() => {
                        if let Some(last) = page.last() {
                            after = last.cursor.parse().unwrap_or(after);
                        }
                        queue = page;
                        queue.reverse();
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(error = %error, "reading the event feed failed"),
                }
                if queue.is_empty() {
                    // The feed has no end; it ends with the server, so shutdown does
                    // not wait for its clients.
                    tokio::select! {
                        () = tokio::time::sleep(POLL) => {}
                        () = shutting_down.cancelled() => return None,
                    }
                }
            }
        },
    )
}
