//! Reading a ticket from a request body or an import row: every problem named by its
//! field, values normalised (trimmed text, lower-case deduplicated tags).

use agenthost_support::tickets::{
    CHANNELS, MAX_DESCRIPTION_CHARS, MAX_SUBJECT_CHARS, PRIORITIES, STATUSES, clean_tags,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

const MAX_NAME: usize = 200;
const MAX_EXTERNAL_ID: usize = 200;

/// A ticket to write, validated; `customer` and `assignee` are still the names the
/// client gave (a customer's external id; a person's external id or email).
#[derive(Debug, Clone, Serialize)]
pub struct NewTicket {
    pub external_id: Option<String>,
    pub subject: String,
    pub description: String,
    /// `None` in an import: a new ticket is open, an existing one keeps its status.
    pub status: Option<String>,
    pub priority: String,
    pub channel: String,
    pub requester_email: String,
    pub requester_name: Option<String>,
    pub customer: Option<String>,
    pub assignee: Option<String>,
    pub tags: Vec<String>,
    pub created_at: Option<DateTime<Utc>>,
}

/// `PATCH`: each field is absent (keep), or the new value; `Some(None)` clears.
#[derive(Debug, Default)]
pub struct TicketPatch {
    pub subject: Option<String>,
    pub description: Option<String>,
    pub status: Option<String>,
    pub priority: Option<String>,
    pub channel: Option<String>,
    pub requester_email: Option<String>,
    pub requester_name: Option<Option<String>>,
    pub customer: Option<Option<String>>,
    pub assignee: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
}

/// `(field, message)` pairs, reported together.
pub(crate) type Problems = Vec<(String, String)>;

pub(crate) fn invalid(problems: Problems) -> ApiError {
    let text: Vec<String> = problems
        .iter()
        .map(|(field, message)| format!("{field}: {message}"))
        .collect();
    ApiError::Invalid(text.join("; "))
}

/// The names fields have in the input: the API nests the requester, imports are flat.
pub(crate) struct Shape {
    email: &'static str,
    name: &'static str,
    customer: &'static str,
    import: bool,
}

const API_SHAPE: Shape = Shape {
    email: "requester.email",
    name: "requester.name",
    customer: "requester.customer",
    import: false,
};

pub(crate) const IMPORT_SHAPE: Shape = Shape {
    email: "requester_email",
    name: "requester_name",
    customer: "customer",
    import: true,
};

/// A value as trimmed text: `Ok(None)` for null, empty or blank. Only a JSON string is
/// text: the documented type is string, and `5` quietly stored as `"5"` hides a client's
/// bug. (A CSV import converts nothing: every cell is already a string.)
pub(crate) fn text_value(value: &Value) -> Result<Option<String>, String> {
    let text = match value {
        Value::Null => return Ok(None),
        Value::String(s) => s.trim().to_string(),
        other => return Err(format!("must be a string, not {}", json_type(other))),
    };
    Ok((!text.is_empty()).then_some(text))
}

/// A JSON value's type as a person reads it in an error message.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn limited(text: String, max: usize) -> Result<String, String> {
    if text.chars().count() > max {
        Err(format!("is longer than {max} characters"))
    } else {
        Ok(text)
    }
}

pub(crate) fn one_of(text: &str, what: &str, options: &[&str]) -> Result<String, String> {
    if options.contains(&text) {
        Ok(text.to_string())
    } else {
        Err(format!(
            "{text:?} is not a {what}; use one of {}",
            options.join(", ")
        ))
    }
}

fn email(text: String) -> Result<String, String> {
    // The same rule as the table's check: one @ with something on both sides.
    let ok = text.split('@').count() == 2
        && !text.starts_with('@')
        && !text.ends_with('@')
        && !text.chars().any(char::is_whitespace)
        && text.len() <= 320;
    if ok {
        Ok(text)
    } else {
        Err(format!("{text:?} is not an email address"))
    }
}

/// Tags from an array of strings, or in an import one string separated by `;` (a CSV
/// cell), cleaned up as Cassie's are ([`clean_tags`]).
fn tags(value: &Value, import: bool) -> Result<Vec<String>, String> {
    let raw: Vec<String> = match value {
        Value::Null => Vec::new(),
        Value::String(s) if import => s.split(';').map(str::to_string).collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                _ => Err("must be an array of strings".to_string()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("must be an array of strings".into()),
    };
    clean_tags(&raw).map_err(|error| error.to_string())
}

/// Read the text field `key` into `problems`' world: `None` when absent or blank.
fn field(
    map: &Map<String, Value>,
    key: &str,
    max: usize,
    problems: &mut Problems,
) -> Option<String> {
    let value = map.get(key)?;
    match text_value(value).and_then(|t| t.map(|t| limited(t, max)).transpose()) {
        Ok(text) => text,
        Err(message) => {
            problems.push((key.to_string(), message));
            None
        }
    }
}

pub(crate) fn checked<T>(
    key: &str,
    result: Result<T, String>,
    problems: &mut Problems,
) -> Option<T> {
    result
        .map_err(|message| problems.push((key.to_string(), message)))
        .ok()
}

pub(crate) fn unknown_keys(
    map: &Map<String, Value>,
    known: &[&str],
    prefix: &str,
    problems: &mut Problems,
) {
    for key in map.keys() {
        if !known.contains(&key.as_str()) {
            problems.push((
                format!("{prefix}{key}"),
                format!("unknown field; use {}", known.join(", ")),
            ));
        }
    }
}

/// The API's nested `requester` object as flat `requester.<field>` keys.
fn flatten_requester(input: &Map<String, Value>, problems: &mut Problems) -> Map<String, Value> {
    let mut flat = Map::new();
    for (key, value) in input {
        if key != "requester" {
            flat.insert(key.clone(), value.clone());
            continue;
        }
        match value {
            Value::Object(requester) => {
                unknown_keys(
                    requester,
                    &["email", "name", "customer"],
                    "requester.",
                    problems,
                );
                for (k, v) in requester {
                    flat.insert(format!("requester.{k}"), v.clone());
                }
            }
            Value::Null => {}
            _ => problems.push((
                "requester".into(),
                "must be an object {email, name?, customer?}".into(),
            )),
        }
    }
    flat
}

/// The fields of a new ticket from a flat map named as `shape` says.
pub(crate) fn ticket_fields(
    map: &Map<String, Value>,
    shape: &Shape,
    problems: &mut Problems,
) -> Option<NewTicket> {
    let before = problems.len();
    let external_id = field(map, "external_id", MAX_EXTERNAL_ID, problems);
    if shape.import && external_id.is_none() && !problems.iter().any(|(f, _)| f == "external_id") {
        problems.push(("external_id".into(), "is required in an import".into()));
    }
    let subject = field(map, "subject", MAX_SUBJECT_CHARS, problems);
    if subject.is_none() && !problems.iter().any(|(f, _)| f == "subject") {
        problems.push((
            "subject".into(),
            format!("is required (1 to {MAX_SUBJECT_CHARS} characters)"),
        ));
    }
    let description =
        field(map, "description", MAX_DESCRIPTION_CHARS, problems).unwrap_or_default();
    let status = field(map, "status", 20, problems).and_then(|s| {
        let allowed: &[&str] = if shape.import {
            STATUSES
        } else {
            &["open", "pending"]
        };
        let result = one_of(&s, "status", STATUSES).and_then(|s| {
            if allowed.contains(&s.as_str()) {
                Ok(s)
            } else {
                Err(format!("a new ticket must be open or pending, not {s}"))
            }
        });
        checked("status", result, problems)
    });
    let priority = field(map, "priority", 20, problems)
        .map(|p| checked("priority", one_of(&p, "priority", PRIORITIES), problems))
        .unwrap_or_else(|| Some("normal".into()));
    let channel = field(map, "channel", 20, problems)
        .map(|c| checked("channel", one_of(&c, "channel", CHANNELS), problems))
        .unwrap_or_else(|| Some("api".into()));
    let requester_email = match field(map, shape.email, 320, problems) {
        Some(text) => checked(shape.email, email(text), problems),
        None => {
            if !problems.iter().any(|(f, _)| f == shape.email) {
                problems.push((shape.email.into(), "is required".into()));
            }
            None
        }
    };
    let requester_name = field(map, shape.name, MAX_NAME, problems);
    let customer = field(map, shape.customer, MAX_EXTERNAL_ID, problems);
    let assignee = field(map, "assignee", 320, problems);
    let tags = map
        .get("tags")
        .and_then(|value| checked("tags", tags(value, shape.import), problems))
        .unwrap_or_default();
    let created_at = match (shape.import, map.get("created_at")) {
        (true, Some(value)) => match text_value(value) {
            Ok(Some(text)) => checked("created_at", created_at(&text), problems),
            Ok(None) => None,
            Err(message) => {
                problems.push(("created_at".into(), message));
                None
            }
        },
        _ => None,
    };
    if problems.len() > before {
        return None;
    }
    Some(NewTicket {
        external_id,
        subject: subject?,
        description,
        status: status.or_else(|| (!shape.import).then(|| "open".to_string())),
        priority: priority?,
        channel: channel?,
        requester_email: requester_email?,
        requester_name,
        customer,
        assignee,
        tags,
        created_at,
    })
}

fn created_at(text: &str) -> Result<DateTime<Utc>, String> {
    let at = DateTime::parse_from_rfc3339(text)
        .map_err(|_| format!("{text:?} is not an RFC 3339 time (2025-01-31T09:30:00Z)"))?
        .with_timezone(&Utc);
    if at > Utc::now() {
        return Err(format!("{text} is in the future"));
    }
    Ok(at)
}

/// `POST /api/tickets`'s body.
pub fn new_ticket(input: &Map<String, Value>) -> ApiResult<NewTicket> {
    let mut problems = Problems::new();
    unknown_keys(
        input,
        &[
            "external_id",
            "subject",
            "description",
            "status",
            "priority",
            "channel",
            "requester",
            "assignee",
            "tags",
        ],
        "",
        &mut problems,
    );
    if !input.contains_key("requester") {
        problems.push((
            "requester".into(),
            "is required: {email, name?, customer?}".into(),
        ));
    }
    let flat = flatten_requester(input, &mut problems);
    let ticket = ticket_fields(&flat, &API_SHAPE, &mut problems);
    match ticket {
        Some(ticket) if problems.is_empty() => Ok(ticket),
        _ => Err(invalid(problems)),
    }
}

/// `PATCH /api/tickets/{id}`'s body.
pub fn ticket_patch(input: &Map<String, Value>) -> ApiResult<TicketPatch> {
    let mut problems = Problems::new();
    unknown_keys(
        input,
        &[
            "subject",
            "description",
            "status",
            "priority",
            "channel",
            "requester",
            "assignee",
            "tags",
        ],
        "",
        &mut problems,
    );
    let map = flatten_requester(input, &mut problems);
    let mut patch = TicketPatch::default();
    let required = |key: &str, max: usize, problems: &mut Problems| {
        map.get(key)?;
        let value = field(&map, key, max, problems);
        if value.is_none() && !problems.iter().any(|(f, _)| f == key) {
            problems.push((key.to_string(), "can't be removed".into()));
        }
        value
    };
    patch.subject = required("subject", MAX_SUBJECT_CHARS, &mut problems);
    patch.status = required("status", 20, &mut problems)
        .and_then(|s| checked("status", one_of(&s, "status", STATUSES), &mut problems));
    patch.priority = required("priority", 20, &mut problems).and_then(|p| {
        checked(
            "priority",
            one_of(&p, "priority", PRIORITIES),
            &mut problems,
        )
    });
    patch.channel = required("channel", 20, &mut problems)
        .and_then(|c| checked("channel", one_of(&c, "channel", CHANNELS), &mut problems));
    patch.requester_email = required("requester.email", 320, &mut problems)
        .and_then(|e| checked("requester.email", email(e), &mut problems));
    if map.contains_key("description") {
        patch.description = Some(
            field(&map, "description", MAX_DESCRIPTION_CHARS, &mut problems).unwrap_or_default(),
        );
    }
    let clearable = |key: &str, max: usize, problems: &mut Problems| {
        map.contains_key(key)
            .then(|| field(&map, key, max, problems))
    };
    patch.requester_name = clearable("requester.name", MAX_NAME, &mut problems);
    patch.customer = clearable("requester.customer", MAX_EXTERNAL_ID, &mut problems);
    patch.assignee = clearable("assignee", 320, &mut problems);
    if let Some(value) = map.get("tags") {
        patch.tags = checked("tags", tags(value, false), &mut problems);
    }
    if problems.is_empty() {
        Ok(patch)
    } else {
        Err(invalid(problems))
    }
}
