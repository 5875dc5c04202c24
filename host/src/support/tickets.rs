//! Tickets: create, list, show, update, comment, delete, the SLA policy; imports are in
//! [`import`]. The rules every writer follows (transitions, numbers, SLA due times,
//! history) are the triggers of migration 0011; [`input`] checks input so a client
//! gets a message naming its field, and turns a refusal by a trigger into a 422.
//!
//! The host connects as a superuser, so row-level security does not apply here: every
//! query names the workspace itself.

mod input;

use agenthost_support::tickets::{MAX_COMMENT_CHARS, PRIORITIES, STATUSES, TicketKey};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
pub use input::{NewTicket, TicketPatch, new_ticket, ticket_patch};
use input::{Problems, checked, invalid, one_of, unknown_keys};

/// An SLA target longer than a year is a typo.
const MAX_SLA_MINUTES: i64 = 366 * 24 * 60;

/// A refusal by a ticket trigger (`check_violation` with its own message, such as a
/// transition that isn't allowed) is the client's mistake: 422 with that message.
/// Everything else goes the usual way of database errors.
pub fn rule_error(err: sqlx::Error) -> ApiError {
    if let sqlx::Error::Database(db) = &err
        && db.code().as_deref() == Some("23514")
    {
        return ApiError::Invalid(crate::error::refusal_message(db.as_ref()));
    }
    err.into()
}

/// How a client names a ticket: its id, or its number in the workspace (`42`, `#42`).
#[derive(Debug, Clone)]
pub enum TicketRef {
    Id(Uuid),
    Number(i64),
    Unknown(String),
}

impl TicketRef {
    /// The rule Cassie follows too ([`TicketKey::parse`]).
    pub fn parse(text: &str) -> TicketRef {
        match TicketKey::parse(text) {
            Some(TicketKey::Id(id)) => match Uuid::parse_str(&id) {
                Ok(id) => TicketRef::Id(id),
                Err(_) => TicketRef::Unknown(text.to_string()),
            },
            Some(TicketKey::Number(n)) => TicketRef::Number(n),
            None => TicketRef::Unknown(text.to_string()),
        }
    }

    fn not_found(&self) -> ApiError {
        ApiError::NotFound(match self {
            TicketRef::Id(id) => format!("no ticket {id} in this workspace"),
            TicketRef::Number(n) => format!("no ticket #{n} in this workspace"),
            TicketRef::Unknown(text) => {
                format!("no ticket {text:?}: name a ticket by its id or its number")
            }
        })
    }

    fn binds(&self) -> (Option<Uuid>, Option<i64>) {
        match self {
            TicketRef::Id(id) => (Some(*id), None),
            TicketRef::Number(n) => (None, Some(*n)),
            TicketRef::Unknown(_) => (None, None),
        }
    }
}

/// The ticket's id; 404 naming it otherwise.
pub async fn find_id(pool: &PgPool, workspace: Uuid, ticket: &TicketRef) -> ApiResult<Uuid> {
    let (id, number) = ticket.binds();
    sqlx::query_scalar(
        "SELECT id FROM data.tickets WHERE workspace_id = $1 AND (id = $2 OR number = $3)",
    )
    .bind(workspace)
    .bind(id)
    .bind(number)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| ticket.not_found())
}

/// The ticket's id, locked for the rest of the transaction; 404 naming it otherwise.
async fn locked_id(
    tx: &mut Transaction<'_, Postgres>,
    workspace: Uuid,
    ticket: &TicketRef,
) -> ApiResult<Uuid> {
    let (id, number) = ticket.binds();
    sqlx::query_scalar(
        "SELECT id FROM data.tickets WHERE workspace_id = $1 AND (id = $2 OR number = $3) \
         FOR UPDATE",
    )
    .bind(workspace)
    .bind(id)
    .bind(number)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| ticket.not_found())
}

/// The ticket as the API shows it, built in SQL so list and show agree. `t` is the
/// ticket, joined to its customer `c` and assignee `p`.
macro_rules! view_sql {
    () => {
        "jsonb_build_object(
            'id', t.id, 'number', t.number, 'external_id', t.external_id,
            'subject', t.subject, 'description', t.description, 'status', t.status,
            'priority', t.priority, 'channel', t.channel,
            'requester', jsonb_build_object('email', t.requester_email,
                'name', t.requester_name,
                'customer', CASE WHEN c.id IS NULL THEN NULL ELSE
                    jsonb_build_object('id', c.id, 'external_id', c.external_id,
                                       'name', c.name) END),
            'assignee', CASE WHEN p.id IS NULL THEN NULL ELSE
                jsonb_build_object('id', p.id, 'external_id', p.external_id,
                                   'name', p.name, 'email', p.email) END,
            'tags', to_jsonb(t.tags), 'sla_due_at', t.sla_due_at,
            'sla_breached', coalesce(t.sla_due_at < now()
                                     AND t.status NOT IN ('solved', 'closed'), false),
            'created_at', t.created_at, 'updated_at', t.updated_at,
            'solved_at', t.solved_at, 'closed_at', t.closed_at,
            'enrichment', t.enrichment, 'overrides', t.overrides,
            'enriched_at', t.enriched_at)
        FROM data.tickets t
        LEFT JOIN data.customers c ON c.id = t.customer_id AND c.workspace_id = t.workspace_id
        LEFT JOIN data.people p ON p.id = t.assignee_id AND p.workspace_id = t.workspace_id"
    };
}

/// The view of a ticket by id.
async fn view_by_id<'e>(
    db: impl sqlx::PgExecutor<'e>,
    workspace: Uuid,
    id: Uuid,
) -> ApiResult<Option<Value>> {
    Ok(sqlx::query_scalar(concat!(
        "SELECT ",
        view_sql!(),
        " WHERE t.workspace_id = $1 AND t.id = $2"
    ))
    .bind(workspace)
    .bind(id)
    .fetch_optional(db)
    .await?)
}

/// Resolve customer and assignee references of `rows` (JSON objects with
/// `row_number`, `customer`, `assignee`): the ones that name nobody in the workspace,
/// as (row, field, value).
pub(crate) async fn missing_references(
    tx: &mut Transaction<'_, Postgres>,
    workspace: Uuid,
    rows: &Value,
) -> sqlx::Result<Vec<(i32, String, String)>> {
    sqlx::query_as(
        "WITH r AS (SELECT * FROM jsonb_to_recordset($2::jsonb) \
                    AS r(row_number integer, customer text, assignee text)) \
         SELECT row_number, 'customer', customer FROM r WHERE customer IS NOT NULL \
           AND NOT EXISTS (SELECT 1 FROM data.customers c \
                           WHERE c.workspace_id = $1 AND c.external_id = r.customer) \
         UNION ALL \
         SELECT row_number, 'assignee', assignee FROM r WHERE assignee IS NOT NULL \
           AND NOT EXISTS (SELECT 1 FROM data.people p WHERE p.workspace_id = $1 \
                           AND (p.external_id = r.assignee \
                                OR lower(p.email) = lower(r.assignee))) \
         ORDER BY 1, 2",
    )
    .bind(workspace)
    .bind(rows)
    .fetch_all(&mut **tx)
    .await
}

pub(crate) fn missing_message(field: &str, value: &str) -> String {
    match field {
        "customer" => format!("there is no customer with external_id {value:?}"),
        _ => format!("there is no person with external_id or email {value:?}"),
    }
}

/// The rows of `jsonb_to_recordset` that inserts and imports read, with the customer
/// `c` and the assignee `p` they name (a person's external id wins over an email).
macro_rules! rows_sql {
    () => {
        " FROM jsonb_to_recordset($2::jsonb) AS r(row_number integer, external_id text,
            subject text, description text, status text, priority text, channel text,
            requester_email text, requester_name text, customer text, assignee text,
            tags text[], created_at timestamptz)
        LEFT JOIN data.customers c ON c.workspace_id = $1 AND c.external_id = r.customer
        LEFT JOIN LATERAL (
            SELECT p.id FROM data.people p
             WHERE p.workspace_id = $1
               AND (p.external_id = r.assignee OR lower(p.email) = lower(r.assignee))
             ORDER BY p.external_id = r.assignee DESC LIMIT 1) p ON true "
    };
}

/// Insert the rows whose external id is not in the workspace yet, in row order (so
/// numbers follow it). A new ticket starts open or pending (the trigger's rule); an
/// import moves it on afterwards. Returns (id, external id, status) of each.
pub(crate) async fn insert_rows(
    tx: &mut Transaction<'_, Postgres>,
    workspace: Uuid,
    actor: &str,
    rows: &Value,
) -> sqlx::Result<Vec<(Uuid, Option<String>, String)>> {
    sqlx::query_as(concat!(
        "INSERT INTO data.tickets (workspace_id, external_id, subject, description, status,
            priority, channel, requester_email, requester_name, customer_id, assignee_id,
            tags, created_at, updated_by)
         SELECT $1, r.external_id, r.subject, r.description,
            CASE WHEN r.status IN ('open', 'pending') THEN r.status ELSE 'open' END,
            r.priority, r.channel, r.requester_email, r.requester_name, c.id, p.id,
            r.tags, r.created_at, $3",
        rows_sql!(),
        "WHERE r.external_id IS NULL OR NOT EXISTS (SELECT 1 FROM data.tickets t
            WHERE t.workspace_id = $1 AND t.external_id = r.external_id)
         ORDER BY r.row_number
         RETURNING id, external_id, status"
    ))
    .bind(workspace)
    .bind(rows)
    .bind(actor)
    .fetch_all(&mut **tx)
    .await
}

/// `POST /api/tickets`: the new ticket's view.
pub async fn create(
    pool: &PgPool,
    workspace: Uuid,
    actor: &str,
    ticket: &NewTicket,
) -> ApiResult<Value> {
    let mut row = json!(ticket);
    row["row_number"] = json!(1);
    let rows = Value::Array(vec![row]);
    let mut tx = pool.begin().await?;
    let missing = missing_references(&mut tx, workspace, &rows).await?;
    if !missing.is_empty() {
        return Err(invalid(
            missing
                .into_iter()
                .map(|(_, field, value)| {
                    let name = if field == "customer" {
                        "requester.customer"
                    } else {
                        "assignee"
                    };
                    (name.to_string(), missing_message(&field, &value))
                })
                .collect(),
        ));
    }
    let inserted = insert_rows(&mut tx, workspace, actor, &rows)
        .await
        .map_err(rule_error)?;
    let Some((id, _, _)) = inserted.into_iter().next() else {
        return Err(ApiError::Conflict(format!(
            "a ticket with external_id {:?} already exists",
            ticket.external_id.as_deref().unwrap_or_default()
        )));
    };
    let view = view_by_id(&mut *tx, workspace, id).await?;
    tx.commit().await?;
    view.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the new ticket {id} is missing")))
}

/// The list filters of `GET /api/tickets`; all combine with AND.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub status: Option<String>,
    pub priority: Option<String>,
    /// A person's external id or email.
    pub assignee: Option<String>,
    pub tag: Option<String>,
    /// Full text (web search syntax) over subject and description.
    pub q: Option<String>,
    pub limit: i64,
    pub cursor: Option<String>,
}

/// Where a page ends: the (created_at, id) of its last ticket, newest first.
fn encode_cursor(created_at: DateTime<Utc>, id: Uuid) -> String {
    hex::encode(format!("{}|{id}", created_at.timestamp_micros()))
}

fn decode_cursor(cursor: &str) -> ApiResult<(DateTime<Utc>, Uuid)> {
    let refused = || ApiError::BadRequest("cursor: not a cursor this API gave out".into());
    let bytes = hex::decode(cursor).map_err(|_| refused())?;
    let text = String::from_utf8(bytes).map_err(|_| refused())?;
    let (micros, id) = text.split_once('|').ok_or_else(refused)?;
    let micros: i64 = micros.parse().map_err(|_| refused())?;
    let at = DateTime::from_timestamp_micros(micros).ok_or_else(refused)?;
    Ok((at, Uuid::parse_str(id).map_err(|_| refused())?))
}

/// `GET /api/tickets`: a page of views, newest first, and the cursor of the next one.
pub async fn list(
    pool: &PgPool,
    workspace: Uuid,
    filter: &ListFilter,
) -> ApiResult<(Vec<Value>, Option<String>)> {
    let mut problems = Problems::new();
    if let Some(status) = &filter.status {
        checked("status", one_of(status, "status", STATUSES), &mut problems);
    }
    if let Some(priority) = &filter.priority {
        checked(
            "priority",
            one_of(priority, "priority", PRIORITIES),
            &mut problems,
        );
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let after = filter.cursor.as_deref().map(decode_cursor).transpose()?;
    let tag = filter.tag.as_ref().map(|t| t.trim().to_lowercase());
    let rows: Vec<(DateTime<Utc>, Uuid, Value)> = sqlx::query_as(concat!(
        "SELECT t.created_at, t.id, ",
        view_sql!(),
        " WHERE t.workspace_id = $1
            AND ($2::text IS NULL OR t.status = $2)
            AND ($3::text IS NULL OR t.priority = $3)
            AND ($4::text IS NULL OR p.external_id = $4 OR lower(p.email) = lower($4))
            AND ($5::text IS NULL OR t.tags @> ARRAY[$5])
            AND ($6::text IS NULL OR t.search @@ websearch_to_tsquery('english', $6))
            AND ($7::timestamptz IS NULL OR (t.created_at, t.id) < ($7, $8))
          ORDER BY t.created_at DESC, t.id DESC
          LIMIT $9"
    ))
    .bind(workspace)
    .bind(&filter.status)
    .bind(&filter.priority)
    .bind(filter.assignee.as_deref().map(str::trim))
    .bind(tag)
    .bind(&filter.q)
    .bind(after.map(|(at, _)| at))
    .bind(after.map(|(_, id)| id))
    .bind(filter.limit + 1)
    .fetch_all(pool)
    .await?;
    let more = rows.len() as i64 > filter.limit;
    let page: Vec<_> = rows.into_iter().take(filter.limit as usize).collect();
    let next = if more {
        page.last().map(|(at, id, _)| encode_cursor(*at, *id))
    } else {
        None
    };
    Ok((page.into_iter().map(|(_, _, view)| view).collect(), next))
}

/// `GET /api/tickets/{id}`: the view with its comments and history, oldest first.
pub async fn show(pool: &PgPool, workspace: Uuid, ticket: &TicketRef) -> ApiResult<Value> {
    let (id, number) = ticket.binds();
    let found: Option<(Uuid, Value)> = sqlx::query_as(concat!(
        "SELECT t.id, ",
        view_sql!(),
        " WHERE t.workspace_id = $1 AND (t.id = $2 OR t.number = $3)"
    ))
    .bind(workspace)
    .bind(id)
    .bind(number)
    .fetch_optional(pool)
    .await?;
    let (id, mut view) = found.ok_or_else(|| ticket.not_found())?;
    let (comments, events): (Value, Value) = sqlx::query_as(
        "SELECT
            (SELECT coalesce(jsonb_agg(jsonb_build_object('id', id, 'public', public,
                    'author', author, 'body', body, 'created_at', created_at)
                    ORDER BY created_at, id), '[]')
               FROM data.ticket_comments WHERE workspace_id = $1 AND ticket_id = $2),
            (SELECT coalesce(jsonb_agg(jsonb_build_object('id', id, 'actor', actor,
                    'kind', kind, 'changes', changes, 'at', at) ORDER BY id), '[]')
               FROM data.ticket_events WHERE workspace_id = $1 AND ticket_id = $2)",
    )
    .bind(workspace)
    .bind(id)
    .fetch_one(pool)
    .await?;
    view["comments"] = comments;
    view["events"] = events;
    Ok(view)
}

/// The id a person's external id or email names in the workspace.
async fn person_id(
    tx: &mut Transaction<'_, Postgres>,
    workspace: Uuid,
    name: &str,
) -> ApiResult<Uuid> {
    sqlx::query_scalar(
        "SELECT id FROM data.people WHERE workspace_id = $1 \
         AND (external_id = $2 OR lower(email) = lower($2)) \
         ORDER BY external_id = $2 DESC LIMIT 1",
    )
    .bind(workspace)
    .bind(name)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| invalid(vec![("assignee".into(), missing_message("assignee", name))]))
}

async fn customer_id(
    tx: &mut Transaction<'_, Postgres>,
    workspace: Uuid,
    external_id: &str,
) -> ApiResult<Uuid> {
    sqlx::query_scalar("SELECT id FROM data.customers WHERE workspace_id = $1 AND external_id = $2")
        .bind(workspace)
        .bind(external_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| {
            invalid(vec![(
                "requester.customer".into(),
                missing_message("customer", external_id),
            )])
        })
}

/// `PATCH /api/tickets/{id}`: the updated view. The trigger judges the transition.
pub async fn update(
    pool: &PgPool,
    workspace: Uuid,
    actor: &str,
    ticket: &TicketRef,
    patch: &TicketPatch,
) -> ApiResult<Value> {
    let mut tx = pool.begin().await?;
    let id = locked_id(&mut tx, workspace, ticket).await?;
    // The changes as one JSON object: a key present means "set", so null can clear.
    let mut set = Map::new();
    let mut put = |key: &str, value: Value| {
        set.insert(key.to_string(), value);
    };
    let text = |value: &Option<String>| value.as_ref().map(|v| json!(v));
    for (key, value) in [
        ("subject", text(&patch.subject)),
        ("description", text(&patch.description)),
        ("status", text(&patch.status)),
        ("priority", text(&patch.priority)),
        ("channel", text(&patch.channel)),
        ("requester_email", text(&patch.requester_email)),
    ] {
        if let Some(value) = value {
            put(key, value);
        }
    }
    if let Some(name) = &patch.requester_name {
        put("requester_name", json!(name));
    }
    if let Some(tags) = &patch.tags {
        put("tags", json!(tags));
    }
    if let Some(customer) = &patch.customer {
        let resolved = match customer {
            Some(external_id) => Some(customer_id(&mut tx, workspace, external_id).await?),
            None => None,
        };
        put("customer_id", json!(resolved));
    }
    if let Some(assignee) = &patch.assignee {
        let resolved = match assignee {
            Some(name) => Some(person_id(&mut tx, workspace, name).await?),
            None => None,
        };
        put("assignee_id", json!(resolved));
    }
    if !set.is_empty() {
        sqlx::query(
            "UPDATE data.tickets SET
                subject = CASE WHEN $3 ? 'subject' THEN $3 ->> 'subject' ELSE subject END,
                description = CASE WHEN $3 ? 'description' THEN $3 ->> 'description'
                                   ELSE description END,
                status = CASE WHEN $3 ? 'status' THEN $3 ->> 'status' ELSE status END,
                priority = CASE WHEN $3 ? 'priority' THEN $3 ->> 'priority' ELSE priority END,
                channel = CASE WHEN $3 ? 'channel' THEN $3 ->> 'channel' ELSE channel END,
                requester_email = CASE WHEN $3 ? 'requester_email'
                                       THEN $3 ->> 'requester_email' ELSE requester_email END,
                requester_name = CASE WHEN $3 ? 'requester_name'
                                      THEN $3 ->> 'requester_name' ELSE requester_name END,
                customer_id = CASE WHEN $3 ? 'customer_id'
                                   THEN ($3 ->> 'customer_id')::uuid ELSE customer_id END,
                assignee_id = CASE WHEN $3 ? 'assignee_id'
                                   THEN ($3 ->> 'assignee_id')::uuid ELSE assignee_id END,
                tags = CASE WHEN $3 ? 'tags'
                            THEN ARRAY(SELECT jsonb_array_elements_text($3 -> 'tags'))
                            ELSE tags END,
                updated_by = $4
             WHERE workspace_id = $1 AND id = $2",
        )
        .bind(workspace)
        .bind(id)
        .bind(Value::Object(set))
        .bind(actor)
        .execute(&mut *tx)
        .await
        .map_err(rule_error)?;
    }
    let view = view_by_id(&mut *tx, workspace, id).await?;
    tx.commit().await?;
    view.ok_or_else(|| ticket.not_found())
}

/// `POST /api/tickets/{id}/comments`: the new comment.
pub async fn comment(
    pool: &PgPool,
    workspace: Uuid,
    actor: &str,
    ticket: &TicketRef,
    body: &str,
    public: bool,
) -> ApiResult<Value> {
    if body.trim().is_empty() {
        return Err(ApiError::Invalid("body: is required".into()));
    }
    if body.chars().count() > MAX_COMMENT_CHARS {
        return Err(ApiError::Invalid(format!(
            "body: is longer than {MAX_COMMENT_CHARS} characters"
        )));
    }
    let mut tx = pool.begin().await?;
    let id = locked_id(&mut tx, workspace, ticket).await?;
    let comment: Value = sqlx::query_scalar(
        "INSERT INTO data.ticket_comments (workspace_id, ticket_id, public, author, body)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING jsonb_build_object('id', id, 'ticket_id', ticket_id, 'public', public,
                                      'author', author, 'body', body,
                                      'created_at', created_at)",
    )
    .bind(workspace)
    .bind(id)
    .bind(public)
    .bind(actor)
    .bind(body)
    .fetch_one(&mut *tx)
    .await
    .map_err(rule_error)?;
    tx.commit().await?;
    Ok(comment)
}

/// `DELETE /api/tickets/{id}`; its comments and history go with it (cascade), and a
/// queued enrichment of it is dropped.
pub async fn delete(pool: &PgPool, workspace: Uuid, ticket: &TicketRef) -> ApiResult<()> {
    let (id, number) = ticket.binds();
    let deleted: Option<Uuid> = sqlx::query_scalar(
        "WITH gone AS (DELETE FROM data.tickets WHERE workspace_id = $1
                        AND (id = $2 OR number = $3) RETURNING id),
              jobs AS (DELETE FROM support_jobs j USING gone
                        WHERE j.workspace_id = $1 AND j.kind = 'enrich_ticket'
                          AND j.target = gone.id AND j.status = 'queued')
         SELECT id FROM gone",
    )
    .bind(workspace)
    .bind(id)
    .bind(number)
    .fetch_optional(pool)
    .await?;
    deleted.map(|_| ()).ok_or_else(|| ticket.not_found())
}

/// `GET /api/tickets/sla`: resolution minutes per priority, the workspace's policy or
/// the defaults.
pub async fn sla_policy(pool: &PgPool, workspace: Uuid) -> ApiResult<Value> {
    let rows: Vec<(String, i32)> = sqlx::query_as(
        "SELECT p, data.sla_minutes($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS u(p, n) \
         ORDER BY n",
    )
    .bind(workspace)
    .bind(PRIORITIES)
    .fetch_all(pool)
    .await?;
    Ok(Value::Object(
        rows.into_iter().map(|(p, m)| (p, json!(m))).collect(),
    ))
}

/// `PUT /api/tickets/sla`: every priority's minutes. New tickets and tickets whose
/// priority changes get due times from it; existing due times stay as they were.
pub async fn set_sla_policy(
    pool: &PgPool,
    workspace: Uuid,
    input: &Map<String, Value>,
) -> ApiResult<Value> {
    let mut problems = Problems::new();
    unknown_keys(input, PRIORITIES, "", &mut problems);
    let mut minutes = Vec::new();
    for priority in PRIORITIES {
        // JSON Schema counts 60.0 as an integer, so it is one here too.
        let whole = input
            .get(*priority)
            .and_then(Value::as_f64)
            .filter(|m| m.fract() == 0.0 && m.abs() <= 1e15)
            .map(|m| m as i64);
        match whole {
            Some(m) if (1..=MAX_SLA_MINUTES).contains(&m) => minutes.push(m as i32),
            _ => problems.push((
                priority.to_string(),
                format!("needs a whole number of minutes from 1 to {MAX_SLA_MINUTES}"),
            )),
        }
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    sqlx::query(
        "INSERT INTO data.ticket_sla_policies (workspace_id, priority, resolution_minutes)
         SELECT $1, p, m FROM unnest($2::text[], $3::integer[]) AS u(p, m)
         ON CONFLICT (workspace_id, priority)
         DO UPDATE SET resolution_minutes = excluded.resolution_minutes",
    )
    .bind(workspace)
    .bind(PRIORITIES)
    .bind(&minutes)
    .execute(pool)
    .await?;
    sla_policy(pool, workspace).await
}

// After the SQL macros, which the import uses.
pub mod import;
