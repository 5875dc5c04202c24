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

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::router::UtoipaMethodRouterExt;
use utoipa_axum::routes;

use super::data::{CsvRows, InvalidRows, invalid_rows};
use super::extract::{Json, Path, Query, TextBody};
use crate::auth::{Role, WorkspaceCaller};
use crate::data::import::{ImportError, rows_from_csv, rows_from_json};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::support::tickets::import::ImportSummary;
use crate::support::tickets::{self, ListFilter, TicketRef, import};
use schema::{
    NewComment, Sla, Ticket, TicketDetail, TicketImportRows, TicketInput, TicketPatchInput,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tickets, create_ticket))
        .routes(routes!(import_tickets).layer(super::body_limit(super::IMPORT_BODY_LIMIT)))
        .routes(routes!(get_sla, put_sla))
        .routes(routes!(show_ticket, update_ticket, delete_ticket))
        .routes(routes!(add_comment))
}

/// The JSON the tickets module builds in SQL (`support::tickets`' `view_sql!`), described
/// for the OpenAPI document; the handlers return that JSON, not these types.
#[allow(dead_code)]
pub(super) mod schema {
    use chrono::{DateTime, Utc};
    use serde::Serialize;
    use serde_json::Value;
    use utoipa::ToSchema;
    use uuid::Uuid;

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum TicketStatus {
        Open,
        Pending,
        Solved,
        Closed,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum TicketPriority {
        Low,
        Normal,
        High,
        Urgent,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum TicketChannel {
        Email,
        Chat,
        Phone,
        Web,
        Api,
    }

    /// A ticket as the API shows it.
    #[derive(Serialize, ToSchema)]
    pub struct Ticket {
        pub id: Uuid,
        /// The ticket's number in the workspace (`#42`).
        pub number: i64,
        /// Set by imports, which upsert by it; null for tickets made through the API.
        pub external_id: Option<String>,
        pub subject: String,
        pub description: String,
        pub status: TicketStatus,
        pub priority: TicketPriority,
        pub channel: TicketChannel,
        pub requester: Requester,
        pub assignee: Option<Assignee>,
        pub tags: Vec<String>,
        /// When the ticket should be solved by, from the SLA policy.
        pub sla_due_at: Option<DateTime<Utc>>,
        /// Past its due time and neither solved nor closed.
        pub sla_breached: bool,
        pub created_at: DateTime<Utc>,
        pub updated_at: DateTime<Utc>,
        pub solved_at: Option<DateTime<Utc>>,
        pub closed_at: Option<DateTime<Utc>>,
        /// What enrichment computed (sentiment, intent, suggested priority, related
        /// articles, summary, suggested reply); null until the ticket is enriched.
        pub enrichment: Option<Value>,
        /// A person's corrections of the enrichment (`sentiment`, `intent`, `priority`).
        #[schema(value_type = Object)]
        pub overrides: Value,
        pub enriched_at: Option<DateTime<Utc>>,
    }

    #[derive(Serialize, ToSchema)]
    #[schema(as = TicketRequester)]
    pub struct Requester {
        pub email: String,
        pub name: Option<String>,
        /// The customer the requester belongs to, if known.
        pub customer: Option<CustomerRef>,
    }

    #[derive(Serialize, ToSchema)]
    pub struct CustomerRef {
        pub id: Uuid,
        pub external_id: String,
        pub name: String,
    }

    /// The person the ticket is assigned to.
    #[derive(Serialize, ToSchema)]
    #[schema(as = TicketAssignee)]
    pub struct Assignee {
        pub id: Uuid,
        pub external_id: String,
        pub name: String,
        pub email: Option<String>,
    }

    /// A ticket with its comments and history, oldest first.
    #[derive(Serialize, ToSchema)]
    pub struct TicketDetail {
        #[serde(flatten)]
        pub ticket: Ticket,
        pub comments: Vec<Comment>,
        pub events: Vec<TicketEvent>,
    }

    #[derive(Serialize, ToSchema)]
    #[schema(as = TicketComment)]
    pub struct Comment {
        pub id: Uuid,
        /// A public reply goes to the requester; an internal note is for the team only.
        pub public: bool,
        /// Who wrote it (`key:<uuid>`, `plugin:cassie`).
        pub author: String,
        pub body: String,
        pub created_at: DateTime<Utc>,
    }

    /// A comment as `POST /api/tickets/{id}/comments` returns it.
    #[derive(Serialize, ToSchema)]
    #[schema(as = TicketNewComment)]
    pub struct NewComment {
        pub id: Uuid,
        pub ticket_id: Uuid,
        pub public: bool,
        pub author: String,
        pub body: String,
        pub created_at: DateTime<Utc>,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum TicketEventKind {
        Created,
        Updated,
        Commented,
        Enriched,
    }

    /// One change of a ticket, written by the database's triggers.
    #[derive(Serialize, ToSchema)]
    pub struct TicketEvent {
        pub id: i64,
        /// Who made the change (`key:<uuid>`, `plugin:cassie`, `system:enrichment`).
        pub actor: String,
        pub kind: TicketEventKind,
        /// `{"field": {"from": old, "to": new}}` for updates, `{"comment": id, "public": b}`
        /// for comments, the first status and priority for `created`.
        #[schema(value_type = Object)]
        pub changes: Value,
        pub at: DateTime<Utc>,
    }

    /// The requester of a new ticket, or its changes in a `PATCH`.
    #[derive(Serialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct RequesterInput {
        /// One `@` with text on both sides, no spaces; can't be removed.
        #[schema(max_length = 320, pattern = "^[^@\\s]+@[^@\\s]+$", nullable = false)]
        pub email: Option<String>,
        #[schema(max_length = 200)]
        pub name: Option<String>,
        /// A customer's `external_id` in the workspace.
        #[schema(max_length = 200)]
        pub customer: Option<String>,
    }

    /// The requester of a new ticket.
    #[derive(Serialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct NewRequester {
        /// One `@` with text on both sides, no spaces.
        #[schema(max_length = 320, pattern = "^[^@\\s]+@[^@\\s]+$")]
        pub email: String,
        #[schema(max_length = 200)]
        pub name: Option<String>,
        /// A customer's `external_id` in the workspace.
        #[schema(max_length = 200)]
        pub customer: Option<String>,
    }

    /// `POST /api/tickets`: text fields are trimmed, tags lower-cased and deduplicated.
    #[derive(Serialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct TicketInput {
        #[schema(max_length = 200)]
        pub external_id: Option<String>,
        /// Not only spaces.
        #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
        pub subject: String,
        /// Up to 65 536 characters (not bytes: JSON Schema's `maxLength` counts
        /// characters, and so does the server).
        #[schema(max_length = 65536)]
        pub description: Option<String>,
        /// A new ticket is `open` (default) or `pending`.
        pub status: Option<TicketStatus>,
        /// `normal` when absent.
        pub priority: Option<TicketPriority>,
        /// `api` when absent.
        pub channel: Option<TicketChannel>,
        /// `{email, name?, customer?}`; `email` is required.
        pub requester: NewRequester,
        /// A person's `external_id` or email.
        #[schema(max_length = 320)]
        pub assignee: Option<String>,
        pub tags: Option<Vec<String>>,
    }

    /// `PATCH /api/tickets/{id}`: only the fields given change; null clears
    /// `requester.name`, `requester.customer` and `assignee`. The ticket's rules
    /// decide which status moves are allowed (422 otherwise).
    #[derive(Serialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct TicketPatchInput {
        /// Not only spaces; can't be removed.
        #[schema(min_length = 1, max_length = 500, pattern = "\\S", nullable = false)]
        pub subject: Option<String>,
        /// Up to 65 536 characters.
        #[schema(max_length = 65536)]
        pub description: Option<String>,
        #[schema(nullable = false)]
        pub status: Option<TicketStatus>,
        #[schema(nullable = false)]
        pub priority: Option<TicketPriority>,
        #[schema(nullable = false)]
        pub channel: Option<TicketChannel>,
        pub requester: Option<RequesterInput>,
        #[schema(max_length = 320)]
        pub assignee: Option<String>,
        pub tags: Option<Vec<String>>,
    }

    /// One ticket of an import, flat; cells are text (CSV columns of the same names).
    #[derive(Serialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct TicketImportRow {
        /// Required: imports upsert by it.
        pub external_id: String,
        pub subject: String,
        /// Up to 65 536 characters.
        pub description: Option<String>,
        /// Any status; a solved or closed ticket is moved there along allowed steps.
        pub status: Option<TicketStatus>,
        pub priority: Option<TicketPriority>,
        pub channel: Option<TicketChannel>,
        pub requester_email: String,
        pub requester_name: Option<String>,
        /// A customer's `external_id`.
        pub customer: Option<String>,
        /// A person's `external_id` or email.
        pub assignee: Option<String>,
        /// An array of strings, or one string separated by `;`.
        pub tags: Option<Value>,
        /// RFC 3339, not in the future.
        pub created_at: Option<DateTime<Utc>>,
    }

    /// The tickets of an import (at least one).
    #[derive(ToSchema)]
    #[schema(value_type = Vec<TicketImportRow>, min_items = 1, max_items = 10000)]
    pub struct TicketImportRows(Vec<TicketImportRow>);

    /// Minutes to resolve a ticket, per priority.
    #[derive(Serialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(as = SlaPolicy)]
    pub struct Sla {
        #[schema(minimum = 1, maximum = 527040)]
        pub low: i64,
        #[schema(minimum = 1, maximum = 527040)]
        pub normal: i64,
        #[schema(minimum = 1, maximum = 527040)]
        pub high: i64,
        #[schema(minimum = 1, maximum = 527040)]
        pub urgent: i64,
    }
}

/// Who the history names for a key's change.
fn actor(caller: &WorkspaceCaller) -> String {
    format!("key:{}", caller.0.key_id)
}

/// Member: a new ticket (open or pending); its SLA due time comes from the policy.
#[utoipa::path(post, path = "/api/tickets", tag = "tickets", request_body = TicketInput,
    responses(
        (status = 201, description = "The new ticket", body = Ticket),
        (status = 409, description = "A ticket with this `external_id` exists", body = super::openapi::ErrorBody),
    ))]
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

/// Filters of the ticket list; they combine with AND, and an empty one is no filter.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only tickets in this status: `open`, `pending`, `solved` or `closed` (empty
    /// for any).
    #[param(pattern = "^\\s*(open|pending|solved|closed)?\\s*$")]
    status: Option<String>,
    /// Only tickets of this priority: `low`, `normal`, `high` or `urgent` (empty for any).
    #[param(pattern = "^\\s*(low|normal|high|urgent)?\\s*$")]
    priority: Option<String>,
    /// Only tickets assigned to this person (external id or email).
    assignee: Option<String>,
    /// Only tickets with this tag.
    tag: Option<String>,
    /// Full text over subject and description (web search syntax).
    q: Option<String>,
    /// Tickets per page (1-200, default 50).
    limit: Option<i64>,
    /// `next_cursor` of the previous page (hex).
    #[param(
        pattern = "^((3[0-9]){1,16}7c(3[0-9]|6[1-6]){8}2d((3[0-9]|6[1-6]){4}2d){3}(3[0-9]|6[1-6]){12})?$"
    )]
    cursor: Option<String>,
}

/// A page of tickets, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct TicketPage {
    #[schema(value_type = Vec<Ticket>)]
    tickets: Vec<Value>,
    /// Pass as `cursor` for the next page; null on the last one.
    next_cursor: Option<String>,
}

/// Any role: tickets, newest first, a page at a time.
#[utoipa::path(get, path = "/api/tickets", tag = "tickets", params(ListQuery),
    responses((status = 200, body = TicketPage)))]
async fn list_tickets(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<TicketPage>> {
    caller.require(Role::Viewer)?;
    // An empty parameter (`?status=`) is no filter.
    let given = |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
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
    Ok(Json(TicketPage {
        tickets: page,
        next_cursor: next,
    }))
}

/// Any role: a ticket with its comments and history.
#[utoipa::path(get, path = "/api/tickets/{id}", tag = "tickets",
    params(("id" = String, Path, description = "The ticket's id, or its number (`42` or `#42`)")),
    responses((status = 200, body = TicketDetail)))]
async fn show_ticket(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let view = tickets::show(&state.pool, caller.0.workspace_id, &TicketRef::parse(&id)).await?;
    Ok(Json(view))
}

/// Member: change a ticket; the ticket's rules judge a status move (422 `invalid`).
#[utoipa::path(patch, path = "/api/tickets/{id}", tag = "tickets",
    params(("id" = String, Path, description = "The ticket's id, or its number (`42` or `#42`)")),
    request_body = TicketPatchInput,
    responses((status = 200, description = "The updated ticket", body = Ticket)))]
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

/// Admin: delete a ticket with its comments and history.
#[utoipa::path(delete, path = "/api/tickets/{id}", tag = "tickets",
    params(("id" = String, Path, description = "The ticket's id, or its number (`42` or `#42`)")),
    responses((status = 204, description = "Deleted")))]
async fn delete_ticket(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    tickets::delete(&state.pool, caller.0.workspace_id, &TicketRef::parse(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TicketCommentInput)]
struct CommentInput {
    /// 1 to 65 536 characters.
    #[schema(min_length = 1, max_length = 65536)]
    body: String,
    /// A reply to the requester (default), or `false` for an internal note.
    #[serde(default = "public_by_default")]
    #[schema(default = true)]
    public: bool,
}

fn public_by_default() -> bool {
    true
}

/// Member: a public reply or an internal note on a ticket.
#[utoipa::path(post, path = "/api/tickets/{id}/comments", tag = "tickets",
    params(("id" = String, Path, description = "The ticket's id, or its number (`42` or `#42`)")),
    request_body = CommentInput,
    responses((status = 201, description = "The new comment", body = NewComment)))]
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

/// Any role: minutes to resolve a ticket per priority (the workspace's or the defaults).
#[utoipa::path(get, path = "/api/tickets/sla", tag = "tickets",
    responses((status = 200, body = Sla)))]
async fn get_sla(caller: WorkspaceCaller, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    Ok(Json(
        tickets::sla_policy(&state.pool, caller.0.workspace_id).await?,
    ))
}

/// Admin: set every priority's minutes. New tickets and tickets whose priority
/// changes get due times from it; existing due times stay.
#[utoipa::path(put, path = "/api/tickets/sla", tag = "tickets", request_body = Sla,
    responses((status = 200, description = "The policy now", body = Sla)))]
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

/// Member: upsert tickets by `external_id` from a JSON array or CSV with a header line,
/// all or nothing. A new ticket is numbered in row order.
#[utoipa::path(post, path = "/api/tickets/import", tag = "tickets",
    request_body(description = "Up to 10 000 rows (32 MiB)",
        content((TicketImportRows = "application/json"), (CsvRows = "text/csv"))),
    responses(
        (status = 200, description = "What was written", body = ImportSummary),
        (status = 422, description = "Rows that break the rules, every problem listed (`invalid_rows`), or another rule (`invalid`); nothing was written", body = InvalidRows),
    ))]
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
        Err(ImportError::Rows(rows)) => Ok(invalid_rows(rows)),
        Err(ImportError::Database(err)) => Err(err.into()),
    }
}
