//! Tickets as plain statements on `data.tickets` and `data.ticket_comments`; the
//! triggers do the rest (numbers, SLA, allowed moves, history, `plugin:cassie`), and a
//! move they refuse comes back as `invalid` with their message, passed on as is.

use agenthost_sdk::Error;
use agenthost_sdk::database::{self, Rows, Value as Param};
use agenthost_support::tickets::{MAX_TAG_CHARS, MAX_TAGS, TagError, TicketKey};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// `find_tickets` returns at most this many.
const MAX_FIND: i64 = 50;

/// A ticket as the model names it: its number (42, "42", "#42") or its id, read as
/// the REST API reads them ([`TicketKey::parse`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TicketRef {
    Number(i64),
    Text(String),
}

impl TicketRef {
    /// (id, number) to look up; exactly one is set.
    fn key(&self) -> Result<(Option<String>, Option<i64>), Error> {
        let refused = |text: &str| {
            Error::invalid(format!(
                "ticket {text:?} is neither a ticket number (42 or \"#42\") nor a ticket id (UUID)"
            ))
        };
        match self {
            TicketRef::Number(n) => Ok((None, Some(*n))),
            TicketRef::Text(text) => match TicketKey::parse(text) {
                Some(TicketKey::Id(id)) => Ok((Some(id), None)),
                Some(TicketKey::Number(n)) => Ok((None, Some(n))),
                None => Err(refused(text.trim())),
            },
        }
    }

    fn describe(&self) -> String {
        match self {
            TicketRef::Number(n) => format!("#{n}"),
            TicketRef::Text(text) => text.trim().to_string(),
        }
    }
}

fn text(rows: &Rows, i: usize, column: &str) -> String {
    rows.get(i, column)
        .and_then(Param::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The ticket's id and number, or `not-found` telling the model how to find one.
pub fn resolve(ticket: &TicketRef) -> Result<(String, i64), Error> {
    let (id, number) = ticket.key()?;
    let rows = database::query(
        "SELECT id, number FROM data.tickets WHERE id = $1::uuid OR number = $2::bigint",
        &[id.map(Param::Uuid).into(), number.into()],
    )?;
    if rows.is_empty() {
        return Err(Error::NotFound(format!(
            "there is no ticket {}; find_tickets lists the tickets and their numbers",
            ticket.describe()
        )));
    }
    let number = rows.get(0, "number").and_then(Param::as_i64).unwrap_or(0);
    Ok((text(&rows, 0, "id"), number))
}

/// Tags cleaned up as the REST API does ([`agenthost_support::tickets::clean_tags`]),
/// refused in words for the model.
pub fn clean_tags(tags: &[String]) -> Result<Vec<String>, Error> {
    agenthost_support::tickets::clean_tags(tags).map_err(|error| {
        Error::invalid(match error {
            TagError::TooLong(tag) => {
                format!("tag {tag:?} is longer than {MAX_TAG_CHARS} characters")
            }
            TagError::TooMany(count) => {
                format!("{count} tags is more than the {MAX_TAGS} a ticket may have")
            }
        })
    })
}

fn tags_param(tags: Option<&[String]>) -> Result<Param, Error> {
    Ok(match tags {
        Some(tags) => Param::Json(Value::from(clean_tags(tags)?).to_string()),
        None => Param::Null,
    })
}

fn non_blank(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

#[derive(Debug, Deserialize)]
pub struct NewTicket {
    subject: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    priority: Option<String>,
    requester_email: String,
    #[serde(default)]
    requester_name: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    channel: Option<String>,
}

pub fn create(input: NewTicket) -> Result<Value, Error> {
    let subject = input.subject.trim();
    if subject.is_empty() {
        return Err(Error::invalid(
            "subject is empty; say in one line what the problem is",
        ));
    }
    let rows = database::query(
        "INSERT INTO data.tickets (subject, description, priority, channel, requester_email,
                                   requester_name, tags)
         VALUES ($1, $2, $3, $4, $5, $6, ARRAY(SELECT jsonb_array_elements_text($7::jsonb)))
         RETURNING id, number, status, priority, sla_due_at",
        &[
            subject.into(),
            input.description.unwrap_or_default().trim().into(),
            input.priority.as_deref().unwrap_or("normal").into(),
            input.channel.as_deref().unwrap_or("chat").into(),
            input.requester_email.trim().into(),
            non_blank(input.requester_name).into(),
            tags_param(Some(input.tags.as_deref().unwrap_or_default()))?,
        ],
    )?;
    rows.to_json()
        .into_iter()
        .next()
        .map(Value::Object)
        .ok_or_else(|| Error::Internal("the insert returned no ticket".into()))
}

/// The ticket as the tools show it, with its last history entry.
fn view(id: &str) -> Result<Value, Error> {
    let rows = database::query(
        "SELECT t.id, t.number, t.subject, t.description, t.status, t.priority, t.channel,
                t.requester_email, t.requester_name, c.name AS customer,
                p.email AS assignee_email, p.name AS assignee_name, to_jsonb(t.tags) AS tags,
                t.sla_due_at, t.created_at, t.updated_at, t.solved_at, t.closed_at, t.updated_by
           FROM data.tickets t
           LEFT JOIN data.customers c ON c.id = t.customer_id
           LEFT JOIN data.people p ON p.id = t.assignee_id
          WHERE t.id = $1::uuid",
        &[Param::Uuid(id.to_string())],
    )?;
    let mut ticket = rows
        .to_json()
        .into_iter()
        .next()
        .ok_or_else(|| Error::NotFound(format!("ticket {id} is gone")))?;
    let events = database::query(
        "SELECT actor, kind, changes, at FROM data.ticket_events
          WHERE ticket_id = $1::uuid ORDER BY id DESC LIMIT 1",
        &[Param::Uuid(id.to_string())],
    )?;
    let last = events.to_json().into_iter().next().map(Value::Object);
    ticket.insert("last_change".into(), last.unwrap_or(Value::Null));
    Ok(Value::Object(ticket))
}

#[derive(Debug, Deserialize)]
pub struct TicketUpdate {
    ticket: TicketRef,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    priority: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    assignee_email: Option<String>,
}

/// The person of `email` in `data.people`, or `not-found`.
fn person(email: &str) -> Result<String, Error> {
    let rows = database::query(
        "SELECT id FROM data.people WHERE lower(email) = lower($1) ORDER BY external_id LIMIT 1",
        &[email.into()],
    )?;
    if rows.is_empty() {
        return Err(Error::NotFound(format!(
            "there is no team member with email {email:?}; assign the ticket to someone in the workspace's people"
        )));
    }
    Ok(text(&rows, 0, "id"))
}

pub fn update(input: TicketUpdate) -> Result<Value, Error> {
    let assignee = non_blank(input.assignee_email);
    if input.status.is_none()
        && input.priority.is_none()
        && input.tags.is_none()
        && assignee.is_none()
    {
        return Err(Error::invalid(
            "nothing to change: give status, priority, tags or assignee_email",
        ));
    }
    let (id, _) = resolve(&input.ticket)?;
    let assignee = assignee.as_deref().map(person).transpose()?;
    // The BEFORE trigger judges the status move and raises with the allowed moves;
    // the capability hands that back as `invalid`, which is what the model should read.
    database::execute(
        "UPDATE data.tickets SET
             status = coalesce($2::text, status),
             priority = coalesce($3::text, priority),
             tags = CASE WHEN $4::jsonb IS NULL THEN tags
                         ELSE ARRAY(SELECT jsonb_array_elements_text($4::jsonb)) END,
             assignee_id = coalesce($5::uuid, assignee_id)
          WHERE id = $1::uuid",
        &[
            Param::Uuid(id.clone()),
            input.status.into(),
            input.priority.into(),
            tags_param(input.tags.as_deref())?,
            assignee.map(Param::Uuid).into(),
        ],
    )?;
    view(&id)
}

#[derive(Debug, Deserialize)]
pub struct TicketFilter {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    priority: Option<String>,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    requester_email: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
}

pub fn find(filter: TicketFilter) -> Result<Value, Error> {
    let limit = filter.limit.unwrap_or(20);
    if !(1..=MAX_FIND).contains(&limit) {
        return Err(Error::invalid(format!("limit must be 1 to {MAX_FIND}")));
    }
    let rows = database::query(
        "SELECT number, subject, status, priority, requester_email, created_at
           FROM data.tickets
          WHERE ($1::text IS NULL OR status = $1::text)
            AND ($2::text IS NULL OR priority = $2::text)
            AND ($3::text IS NULL OR search @@ websearch_to_tsquery('english', $3::text))
            AND ($4::text IS NULL OR lower(requester_email) = lower($4::text))
          ORDER BY created_at DESC, id
          LIMIT $5",
        &[
            filter.status.into(),
            filter.priority.into(),
            non_blank(filter.query).into(),
            non_blank(filter.requester_email).into(),
            limit.into(),
        ],
    )?;
    let tickets: Vec<Value> = rows.to_json().into_iter().map(Value::Object).collect();
    Ok(json!({ "count": tickets.len(), "tickets": tickets }))
}

#[derive(Debug, Deserialize)]
pub struct NewComment {
    ticket: TicketRef,
    body: String,
    #[serde(default)]
    public: Option<bool>,
}

pub fn comment(input: NewComment) -> Result<Value, Error> {
    if input.body.trim().is_empty() {
        return Err(Error::invalid("body is empty; write the comment's text"));
    }
    let (id, number) = resolve(&input.ticket)?;
    // The trigger signs it plugin:cassie whatever author is given.
    let rows = database::query(
        "INSERT INTO data.ticket_comments (ticket_id, public, author, body)
         VALUES ($1::uuid, $2, 'cassie', $3)
         RETURNING id, public, author, created_at",
        &[
            Param::Uuid(id),
            input.public.unwrap_or(true).into(),
            input.body.into(),
        ],
    )?;
    let mut comment: Map<String, Value> = rows
        .to_json()
        .into_iter()
        .next()
        .ok_or_else(|| Error::Internal("the insert returned no comment".into()))?;
    comment.insert("ticket_number".into(), json!(number));
    Ok(Value::Object(comment))
}
