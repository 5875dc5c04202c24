//! The tickets API (issue 13).
//!
//! Roles: any key reads, `member` creates, updates, comments and imports, `admin`
//! deletes and sets the SLA policy. A ticket is named by its id or its number (`42`).
//! A status move the ticket's rules refuse is 422 `invalid` with the rule's message.
//!
//! - `POST /api/tickets` → 201 the ticket; `GET /api/tickets?status=&priority=&assignee=&tag=&q=&limit=&cursor=`
//!   → `{tickets, next_cursor}`, newest first.
//! - `GET|PATCH|DELETE /api/tickets/{id}`; `GET` adds `comments` and `events`.
//! - `POST /api/tickets/{id}/comments` `{body, public?}` → 201 the comment.
//! - `POST /api/tickets/import`: a JSON array or CSV (`text/csv`), upserted by
//!   `external_id`, all or nothing; 422 `invalid_rows` lists every problem.
//! - `GET|PUT /api/tickets/sla`: resolution minutes per priority.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::extract::{Json, Path, Query, TextBody};
use crate::auth::{Role, WorkspaceCaller};
use crate::data::import::{ImportError, rows_from_csv, rows_from_json};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::support::tickets::{self, ListFilter, TicketRef, import};

/// Imports are bigger than other requests (10 000 tickets with descriptions).
const IMPORT_BODY_LIMIT: usize = 32 << 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/tickets", get(list_tickets).post(create_ticket))
        .route(
            "/api/tickets/import",
            post(import_tickets).layer(super::body_limit(IMPORT_BODY_LIMIT)),
        )
        .route("/api/tickets/sla", get(get_sla).put(put_sla))
        .route(
            "/api/tickets/{id}",
            get(show_ticket).patch(update_ticket).delete(delete_ticket),
        )
        .route("/api/tickets/{id}/comments", post(add_comment))
}

/// Who the history names for a key's change.
fn actor(caller: &WorkspaceCaller) -> String {
    format!("key:{}", caller.0.key_id)
}

async fn create_ticket(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Json(input): Json<Map<String, Value>>,
) -> ApiResult<Response> {
    caller.require(Role::Member)?;
    let ticket = tickets::new_ticket(&input)?;
    let view =
        tickets::create(&state.pool, caller.0.workspace_id, &actor(&caller), &ticket).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    priority: Option<String>,
    assignee: Option<String>,
    tag: Option<String>,
    q: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

async fn list_tickets(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    // An empty parameter (`?status=`) is no filter.
    let given = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    let filter = ListFilter {
        status: given(query.status),
        priority: given(query.priority),
        assignee: given(query.assignee),
        tag: given(query.tag),
        q: given(query.q),
        limit: super::clamp_limit(query.limit, 50, 200),
        cursor: given(query.cursor),
    };
    let (page, next) = tickets::list(&state.pool, caller.0.workspace_id, &filter).await?;
    Ok(Json(json!({ "tickets": page, "next_cursor": next })))
}

async fn show_ticket(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let view = tickets::show(&state.pool, caller.0.workspace_id, &TicketRef::parse(&id)).await?;
    Ok(Json(view))
}

async fn update_ticket(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(input): Json<Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Member)?;
    let patch = tickets::ticket_patch(&input)?;
    let view = tickets::update(
        &state.pool,
        caller.0.workspace_id,
        &actor(&caller),
        &TicketRef::parse(&id),
        &patch,
    )
    .await?;
    Ok(Json(view))
}

async fn delete_ticket(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    tickets::delete(&state.pool, caller.0.workspace_id, &TicketRef::parse(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentInput {
    body: String,
    #[serde(default = "public_by_default")]
    public: bool,
}

fn public_by_default() -> bool {
    true
}

async fn add_comment(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(input): Json<CommentInput>,
) -> ApiResult<Response> {
    caller.require(Role::Member)?;
    let comment = tickets::comment(
        &state.pool,
        caller.0.workspace_id,
        &actor(&caller),
        &TicketRef::parse(&id),
        &input.body,
        input.public,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(comment)).into_response())
}

async fn get_sla(caller: WorkspaceCaller, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    Ok(Json(
        tickets::sla_policy(&state.pool, caller.0.workspace_id).await?,
    ))
}

async fn put_sla(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Json(input): Json<Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Admin)?;
    Ok(Json(
        tickets::set_sla_policy(&state.pool, caller.0.workspace_id, &input).await?,
    ))
}

async fn import_tickets(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    headers: HeaderMap,
    TextBody(body): TextBody,
) -> ApiResult<Response> {
    caller.require(Role::Member)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let parsed = if content_type.starts_with("text/csv") {
        rows_from_csv(&body)
    } else if content_type.starts_with("application/json") {
        rows_from_json(&body)
    } else {
        return Err(ApiError::Rejected {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: format!(
                "send a JSON array (application/json) or CSV (text/csv), not {content_type}"
            ),
        });
    };
    let result = match parsed.and_then(|rows| import::normalise_all(&rows)) {
        Ok(rows) => import::write(&state.pool, caller.0.workspace_id, &actor(&caller), rows).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(summary) => Ok(Json(summary).into_response()),
        Err(ImportError::Malformed(message)) => Err(ApiError::BadRequest(message)),
        Err(ImportError::Rows(rows)) => {
            let first = &rows[0];
            let message = format!(
                "{} problem(s) in the rows; nothing was imported (first: row {}: {} {})",
                rows.len(),
                first.row,
                first.field.as_deref().unwrap_or(""),
                first.message
            );
            let body =
                json!({ "error": { "code": "invalid_rows", "message": message, "rows": rows } });
            Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response())
        }
        Err(ImportError::Database(err)) => Err(err.into()),
    }
}
