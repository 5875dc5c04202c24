//! Tickets as plain statements on `data.tickets` and `data.ticket_comments`, like
//! Cassie's: the table's triggers do the rest (numbers, SLA, allowed status moves,
//! history, the `ticket.*` events, `plugin:tickets` as the actor), and a move they
//! refuse comes back as `invalid` with their sentence. The rules a config can break
//! are checked first with the REST API's own (`agenthost_support::tickets`), so the
//! message names the field.

use agenthost_sdk::Error;
use agenthost_sdk::database::{self, Value as Sql};
use agenthost_support::tickets::{
    CHANNELS, MAX_COMMENT_CHARS, MAX_DESCRIPTION_CHARS, MAX_SUBJECT_CHARS, PRIORITIES, STATUSES,
    TagError, TicketKey, clean_tags,
};
use serde_json::{Map, Value, json};

/// The ticket as the REST API shows it, minus what this plugin isn't granted
/// (customer, enrichment): same field names, so a workflow reads either alike.
const VIEW: &str = "SELECT jsonb_build_object(
        'id', t.id, 'number', t.number, 'external_id', t.external_id,
        'subject', t.subject, 'description', t.description, 'status', t.status,
        'priority', t.priority, 'channel', t.channel,
        'requester', jsonb_build_object('email', t.requester_email, 'name', t.requester_name),
        'assignee', CASE WHEN p.id IS NULL THEN NULL ELSE
            jsonb_build_object('id', p.id, 'external_id', p.external_id,
                               'name', p.name, 'email', p.email) END,
        'tags', to_jsonb(t.tags), 'sla_due_at', t.sla_due_at,
        'created_at', t.created_at, 'updated_at', t.updated_at,
        'solved_at', t.solved_at, 'closed_at', t.closed_at) AS ticket
      FROM data.tickets t LEFT JOIN data.people p ON p.id = t.assignee_id
     WHERE t.id = $1::uuid";

fn field_error(field: &str, why: impl std::fmt::Display) -> Error {
    Error::invalid(format!("config.{field} {why}"))
}

/// An optional text field: absent or null is none.
fn text<'a>(config: &'a Value, field: &str) -> Result<Option<&'a str>, Error> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim())),
        Some(_) => Err(field_error(field, "must be text")),
    }
}

/// An optional value that must be one of `allowed`.
fn one_of(config: &Value, field: &str, allowed: &[&str]) -> Result<Option<String>, Error> {
    match text(config, field)? {
        None | Some("") => Ok(None),
        Some(value) if allowed.contains(&value) => Ok(Some(value.to_string())),
        Some(value) => Err(field_error(
            field,
            format!("{value:?} is not one of {}", allowed.join(", ")),
        )),
    }
}

fn tags(config: &Value) -> Result<Option<Sql>, Error> {
    let tags: Vec<String> = match config.get("tags") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| t.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| field_error("tags", "must be a list of text"))?,
        Some(_) => return Err(field_error("tags", "must be a list of text")),
    };
    let cleaned = clean_tags(&tags).map_err(|error| match error {
        TagError::TooLong(_) | TagError::TooMany(_) => field_error("tags", format!(": {error}")),
    })?;
    Ok(Some(Sql::Json(Value::from(cleaned).to_string())))
}

fn too_long(field: &str, text: &str, max: usize) -> Result<(), Error> {
    if text.chars().count() > max {
        return Err(field_error(
            field,
            format!("is longer than {max} characters"),
        ));
    }
    Ok(())
}

/// The ticket's view by id.
pub fn view(id: &str) -> Result<Map<String, Value>, Error> {
    let rows = database::query(VIEW, &[Sql::Uuid(id.to_string())])?;
    match rows.get(0, "ticket").map(Sql::to_json) {
        Some(Value::Object(ticket)) => Ok(ticket),
        _ => Err(Error::NotFound(format!("ticket {id} is gone"))),
    }
}

/// `tickets/create`: `{subject, description?, requester: {email, name?} or email,
/// priority?, tags?, channel?}`.
pub fn create(config: &Value) -> Result<Value, Error> {
    let subject = text(config, "subject")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| field_error("subject", "is required: one line saying what it is about"))?;
    too_long("subject", subject, MAX_SUBJECT_CHARS)?;
    let description = text(config, "description")?.unwrap_or_default();
    too_long("description", description, MAX_DESCRIPTION_CHARS)?;
    let (email, name) = match config.get("requester") {
        Some(Value::String(email)) => (email.trim(), None),
        Some(requester @ Value::Object(_)) => (
            text(requester, "email")
                .map_err(|_| field_error("requester.email", "must be text"))?
                .unwrap_or_default(),
            text(requester, "name")
                .map_err(|_| field_error("requester.name", "must be text"))?
                .filter(|n| !n.is_empty()),
        ),
        _ => return Err(field_error("requester", "is required: {email, name?}")),
    };
    // The table's rule, checked here so the message names the field.
    let well_formed = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && !domain.is_empty() && !domain.contains('@')
    }) && !email.contains(char::is_whitespace);
    if !well_formed {
        return Err(field_error(
            "requester.email",
            format!("{email:?} is not an email address"),
        ));
    }
    let priority = one_of(config, "priority", PRIORITIES)?.unwrap_or_else(|| "normal".into());
    let channel = one_of(config, "channel", CHANNELS)?.unwrap_or_else(|| "api".into());
    let tags = tags(config)?.unwrap_or(Sql::Json("[]".into()));
    let rows = database::query(
        "INSERT INTO data.tickets (subject, description, priority, channel, requester_email,
                                   requester_name, tags)
         VALUES ($1, $2, $3, $4, $5, $6, ARRAY(SELECT jsonb_array_elements_text($7::jsonb)))
         RETURNING id",
        &[
            subject.into(),
            description.into(),
            priority.into(),
            channel.into(),
            email.into(),
            name.into(),
            tags,
        ],
    )?;
    let id = rows
        .get(0, "id")
        .and_then(Sql::as_str)
        .ok_or_else(|| Error::Internal("the insert returned no ticket".into()))?
        .to_string();
    Ok(Value::Object(view(&id)?))
}

/// The ticket a config names (`42`, `"#42"` or its id), or `not-found`.
fn resolve(config: &Value) -> Result<String, Error> {
    let key = match config.get("ticket") {
        Some(Value::Number(n)) => n.as_i64().filter(|n| *n > 0).map(TicketKey::Number),
        Some(Value::String(s)) => TicketKey::parse(s),
        _ => None,
    }
    .ok_or_else(|| {
        field_error(
            "ticket",
            "must be a ticket number (42 or \"#42\") or a ticket id",
        )
    })?;
    let (id, number) = match &key {
        TicketKey::Id(id) => (Sql::Uuid(id.clone()), Sql::Null),
        TicketKey::Number(n) => (Sql::Null, Sql::Int(*n)),
    };
    let rows = database::query(
        "SELECT id FROM data.tickets WHERE id = $1::uuid OR number = $2::bigint",
        &[id, number],
    )?;
    let named = match key {
        TicketKey::Id(id) => id,
        TicketKey::Number(n) => format!("#{n}"),
    };
    rows.get(0, "id")
        .and_then(Sql::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            Error::NotFound(format!(
                "config.ticket: there is no ticket {named} in this workspace"
            ))
        })
}

/// The person an external id or email names in the workspace, or `not-found`.
fn person(name: &str) -> Result<String, Error> {
    let rows = database::query(
        "SELECT id FROM data.people WHERE external_id = $1 OR lower(email) = lower($1)
          ORDER BY external_id = $1 DESC LIMIT 1",
        &[name.into()],
    )?;
    rows.get(0, "id")
        .and_then(Sql::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            Error::NotFound(format!(
                "config.assignee: nobody in the workspace's people has the external id or email {name:?}"
            ))
        })
}

/// `{body, public}` of a config's `comment`: text (an internal note) or an object.
fn comment(config: &Value) -> Result<Option<(String, bool)>, Error> {
    let (body, public) = match config.get("comment") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(body)) => (body.as_str(), false),
        Some(comment @ Value::Object(_)) => (
            comment["body"]
                .as_str()
                .ok_or_else(|| field_error("comment.body", "must be text"))?,
            match comment.get("public") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(public)) => *public,
                Some(_) => return Err(field_error("comment.public", "must be true or false")),
            },
        ),
        Some(_) => return Err(field_error("comment", "must be text or {body, public?}")),
    };
    let body = body.trim();
    if body.is_empty() {
        return Err(field_error("comment", "is empty"));
    }
    too_long("comment", body, MAX_COMMENT_CHARS)?;
    Ok(Some((body.to_string(), public)))
}

/// `tickets/update`: `{ticket, status?, priority?, assignee?, tags?, comment?}`.
pub fn update(config: &Value) -> Result<Value, Error> {
    let status = one_of(config, "status", STATUSES)?;
    let priority = one_of(config, "priority", PRIORITIES)?;
    let tags = tags(config)?;
    // Present and null unassigns; absent leaves it (the REST API's PATCH rule).
    let assignee = match config.get("assignee") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) if s.trim().is_empty() => Some(None),
        Some(Value::String(s)) => Some(Some(s.trim())),
        Some(_) => {
            return Err(field_error(
                "assignee",
                "must be a person's external id or email, or null",
            ));
        }
    };
    let comment = comment(config)?;
    let changes = status.is_some() || priority.is_some() || tags.is_some() || assignee.is_some();
    if !changes && comment.is_none() {
        return Err(Error::invalid(
            "nothing to change: give config.status, priority, assignee, tags or comment",
        ));
    }
    let id = resolve(config)?;
    if changes {
        let assignee_id = match assignee {
            Some(Some(name)) => Sql::Uuid(person(name)?),
            _ => Sql::Null,
        };
        database::execute(
            "UPDATE data.tickets SET
                 status = coalesce($2::text, status),
                 priority = coalesce($3::text, priority),
                 tags = CASE WHEN $4::jsonb IS NULL THEN tags
                             ELSE ARRAY(SELECT jsonb_array_elements_text($4::jsonb)) END,
                 assignee_id = CASE WHEN $5 THEN $6::uuid ELSE assignee_id END
              WHERE id = $1::uuid",
            &[
                Sql::Uuid(id.clone()),
                status.into(),
                priority.into(),
                tags.unwrap_or(Sql::Null),
                assignee.is_some().into(),
                assignee_id,
            ],
        )?;
    }
    let mut ticket = view(&id)?;
    if let Some((body, public)) = comment {
        // The trigger signs it `plugin:tickets` whatever author is given.
        let rows = database::query(
            "INSERT INTO data.ticket_comments (ticket_id, public, author, body)
             VALUES ($1::uuid, $2, 'tickets', $3) RETURNING id, public",
            &[Sql::Uuid(id), public.into(), body.into()],
        )?;
        let added = rows.to_json().into_iter().next().map(Value::Object);
        ticket.insert("comment".into(), added.unwrap_or(json!(null)));
    }
    Ok(Value::Object(ticket))
}
