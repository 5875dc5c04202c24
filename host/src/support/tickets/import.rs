//! `POST /api/tickets/import`: JSON or CSV rows, upserted by external id, all or
//! nothing, every problem reported with its row like `/api/data`.
//!
//! A new ticket may only start open or pending (the trigger's rule), so a solved or
//! closed one is inserted open and then moved along allowed transitions in the same
//! transaction; its history shows those steps. An existing ticket keeps its number
//! and creation time, and its status unless the row names one.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value, json};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::input::{IMPORT_SHAPE, Problems, text_value, ticket_fields};
use super::{insert_rows, missing_message, missing_references};
use crate::data::RowError;
use crate::data::import::{ImportError, MAX_ROWS};

const COLUMNS: &[&str] = &[
    "external_id",
    "subject",
    "description",
    "status",
    "priority",
    "channel",
    "requester_email",
    "requester_name",
    "customer",
    "assignee",
    "tags",
    "created_at",
];

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[schema(as = TicketImportSummary)]
pub struct ImportSummary {
    /// Rows in the request.
    pub received: usize,
    /// New tickets.
    pub inserted: usize,
    /// Existing tickets (same `external_id`) that were updated.
    pub updated: usize,
}

fn row_errors(row: usize, problems: Problems) -> impl Iterator<Item = RowError> {
    problems.into_iter().map(move |(field, message)| RowError {
        row,
        field: Some(field),
        message,
    })
}

/// Validate every row; all problems are reported, not just the first.
pub fn normalise_all(rows: &[Map<String, Value>]) -> Result<Vec<Value>, ImportError> {
    if rows.is_empty() {
        return Err(ImportError::Malformed("there are no rows to import".into()));
    }
    if rows.len() > MAX_ROWS {
        return Err(ImportError::Malformed(format!(
            "{} rows is more than {MAX_ROWS} per request; split the import",
            rows.len()
        )));
    }
    let mut out = Vec::with_capacity(rows.len());
    let mut errors = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (index, row) in rows.iter().enumerate() {
        let number = index + 1;
        let mut problems = Problems::new();
        for key in row.keys() {
            if !COLUMNS.contains(&key.as_str()) {
                problems.push((
                    key.clone(),
                    format!("unknown field; a ticket has {}", COLUMNS.join(", ")),
                ));
            }
        }
        let ticket = ticket_fields(row, &IMPORT_SHAPE, &mut problems);
        let id = row
            .get("external_id")
            .and_then(|v| text_value(v).ok().flatten());
        if let Some(id) = id
            && let Some(first) = seen.insert(id.clone(), number)
        {
            problems.push((
                "external_id".into(),
                format!("{id:?} already appears in row {first}"),
            ));
        }
        match ticket {
            Some(ticket) if problems.is_empty() => {
                let mut value = json!(ticket);
                value["row_number"] = json!(number);
                out.push(value);
            }
            _ => errors.extend(row_errors(number, problems)),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ImportError::Rows(errors))
    }
}

/// The allowed status moves, as the trigger `data.ticket_transition_allowed` has them;
/// used only to plan an import's steps, the trigger still judges each one.
const MOVES: &[(&str, &str)] = &[
    ("open", "pending"),
    ("pending", "open"),
    ("open", "solved"),
    ("pending", "solved"),
    ("solved", "open"),
    ("solved", "closed"),
];

/// The statuses to go through from `from` to `to` (excluding `from`), shortest first;
/// `None` when `to` can't be reached (a closed ticket stays closed).
fn steps(from: &str, to: &str) -> Option<Vec<&'static str>> {
    let mut paths: Vec<(&str, Vec<&'static str>)> = vec![(from, Vec::new())];
    let mut seen = vec![from];
    while !paths.is_empty() {
        let mut next = Vec::new();
        for (at, path) in paths {
            if at == to {
                return Some(path);
            }
            for (a, b) in MOVES {
                if *a == at && !seen.contains(b) {
                    seen.push(b);
                    let mut longer = path.clone();
                    longer.push(*b);
                    next.push((*b, longer));
                }
            }
        }
        paths = next;
    }
    None
}

/// Update the rows whose external id exists: every field but number, creation time
/// and status. Returns (id, external id, status) of each.
async fn update_existing(
    tx: &mut Transaction<'_, Postgres>,
    workspace: Uuid,
    actor: &str,
    rows: &Value,
) -> sqlx::Result<Vec<(Uuid, Option<String>, String)>> {
    sqlx::query_as(concat!(
        "UPDATE data.tickets t SET subject = r.subject, description = r.description,
            priority = r.priority, channel = r.channel, requester_email = r.requester_email,
            requester_name = r.requester_name, customer_id = c.id, assignee_id = p.id,
            tags = r.tags, updated_by = $3",
        rows_sql!(),
        "WHERE t.workspace_id = $1 AND t.external_id = r.external_id
         RETURNING t.id, t.external_id, t.status"
    ))
    .bind(workspace)
    .bind(rows)
    .bind(actor)
    .fetch_all(&mut **tx)
    .await
}

/// Upsert validated rows; a reference to nobody, or a status a ticket can't reach,
/// fails the whole import with every such row named.
pub async fn write(
    pool: &PgPool,
    workspace: Uuid,
    actor: &str,
    rows: Vec<Value>,
) -> Result<ImportSummary, ImportError> {
    let received = rows.len();
    // external id -> (row number, the status the row asks for)
    let wanted: HashMap<String, (usize, Option<String>)> = rows
        .iter()
        .filter_map(|r| {
            let id = r["external_id"].as_str()?.to_string();
            let row = r["row_number"].as_u64().unwrap_or_default() as usize;
            Some((id, (row, r["status"].as_str().map(String::from))))
        })
        .collect();
    let rows = Value::Array(rows);
    let mut tx = pool.begin().await?;
    let missing = missing_references(&mut tx, workspace, &rows).await?;
    if !missing.is_empty() {
        return Err(ImportError::Rows(
            missing
                .into_iter()
                .map(|(row, field, value)| RowError {
                    row: row as usize,
                    message: missing_message(&field, &value),
                    field: Some(field),
                })
                .collect(),
        ));
    }
    let updated = update_existing(&mut tx, workspace, actor, &rows)
        .await
        .map_err(rule_errors)?;
    let inserted = insert_rows(&mut tx, workspace, actor, &rows)
        .await
        .map_err(rule_errors)?;
    let mut plans: Vec<(Uuid, Vec<&'static str>)> = Vec::new();
    let mut errors = Vec::new();
    for (id, external_id, status) in updated.iter().chain(&inserted) {
        let Some((row, Some(to))) = external_id.as_ref().and_then(|e| wanted.get(e)) else {
            continue;
        };
        match steps(status, to) {
            Some(path) if !path.is_empty() => plans.push((*id, path)),
            Some(_) => {}
            None => errors.push(RowError {
                row: *row,
                field: Some("status".into()),
                message: format!(
                    "the ticket is {status} and can't become {to} (allowed: open <-> pending, \
                     open or pending -> solved, solved -> open or closed)"
                ),
            }),
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.row);
        return Err(ImportError::Rows(errors));
    }
    // One statement per step: the longest path is two steps (open -> solved -> closed).
    for step in 0.. {
        let moves: Vec<Value> = plans
            .iter()
            .filter_map(|(id, path)| path.get(step).map(|s| json!({ "id": id, "status": s })))
            .collect();
        if moves.is_empty() {
            break;
        }
        sqlx::query(
            "UPDATE data.tickets t SET status = r.status, updated_by = $3
               FROM jsonb_to_recordset($2::jsonb) AS r(id uuid, status text)
              WHERE t.workspace_id = $1 AND t.id = r.id",
        )
        .bind(workspace)
        .bind(Value::Array(moves))
        .bind(actor)
        .execute(&mut *tx)
        .await
        .map_err(rule_errors)?;
    }
    crate::data::import::imported_event(
        &mut tx,
        workspace,
        "tickets",
        (received, inserted.len(), updated.len()),
        actor,
    )
    .await?;
    tx.commit().await?;
    Ok(ImportSummary {
        received,
        inserted: inserted.len(),
        updated: updated.len(),
    })
}

/// A row that passes our checks but is refused by a table rule is the client's
/// mistake; the database does not say which row, so it is reported as row 0.
fn rule_errors(error: sqlx::Error) -> ImportError {
    if let sqlx::Error::Database(db) = &error
        && db.code().is_some_and(|c| c.starts_with("23"))
    {
        return ImportError::Rows(vec![RowError {
            row: 0,
            field: None,
            message: format!(
                "a row is refused: {}",
                crate::error::refusal_message(db.as_ref())
            ),
        }]);
    }
    ImportError::Database(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_plan_their_status_steps() {
        assert_eq!(steps("open", "closed"), Some(vec!["solved", "closed"]));
        assert_eq!(steps("solved", "pending"), Some(vec!["open", "pending"]));
        assert_eq!(steps("pending", "pending"), Some(vec![]));
        assert_eq!(steps("closed", "open"), None);
    }
}
