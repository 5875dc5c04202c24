//! Importing rows: parse (JSON array or CSV), validate every row, then upsert them all
//! by external id in one transaction, or nothing at all.

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::{Entity, RowError};

/// Rows per request; larger imports are split by the client.
pub const MAX_ROWS: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The body can't be read as rows at all.
    #[error("{0}")]
    Malformed(String),
    /// Rows that break the entity's rules; nothing was written.
    #[error("{} row error(s); nothing was imported", .0.len())]
    Rows(Vec<RowError>),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[schema(as = DataImportSummary)]
pub struct ImportSummary {
    pub entity: &'static str,
    /// Rows in the request.
    pub received: usize,
    /// New rows.
    pub inserted: usize,
    /// Existing rows (same `external_id`) that were updated.
    pub updated: usize,
}

/// Rows of a JSON array of objects.
pub fn rows_from_json(body: &[u8]) -> Result<Vec<Map<String, Value>>, ImportError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ImportError::Malformed(format!("the body is not valid JSON: {e}")))?;
    let Value::Array(items) = value else {
        return Err(ImportError::Malformed(
            "the body must be a JSON array of objects".into(),
        ));
    };
    let mut rows = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match item {
            Value::Object(map) => rows.push(map),
            _ => errors.push(RowError {
                row: index + 1,
                field: None,
                message: "is not a JSON object".into(),
            }),
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(ImportError::Rows(errors))
    }
}

/// Rows of a CSV document with a header line; empty cells are absent values.
pub fn rows_from_csv(body: &[u8]) -> Result<Vec<Map<String, Value>>, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(body);
    let headers = reader
        .headers()
        .map_err(|e| ImportError::Malformed(format!("the CSV header can't be read: {e}")))?
        .clone();
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            ImportError::Rows(vec![RowError {
                row: index + 1,
                field: None,
                message: format!("is not valid CSV: {e}"),
            }])
        })?;
        let row = headers
            .iter()
            .zip(record.iter())
            .filter(|(_, cell)| !cell.is_empty())
            .map(|(name, cell)| (name.to_string(), Value::String(cell.to_string())))
            .collect();
        rows.push(row);
    }
    Ok(rows)
}

/// Validate every row; all problems are reported, not just the first.
pub fn normalise_all(
    entity: &Entity,
    rows: &[Map<String, Value>],
) -> Result<Vec<Value>, ImportError> {
    if rows.is_empty() {
        return Err(ImportError::Malformed("there are no rows to import".into()));
    }
    if rows.len() > MAX_ROWS {
        return Err(ImportError::Malformed(format!(
            "{} rows is more than {MAX_ROWS} per request; split the import",
            rows.len()
        )));
    }
    let mut normalised = Vec::with_capacity(rows.len());
    let mut errors = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (index, row) in rows.iter().enumerate() {
        let id = row.get("external_id").map(|v| match v {
            Value::String(s) => s.trim().to_string(),
            other => other.to_string(),
        });
        if let Some(id) = id.filter(|id| !id.is_empty())
            && let Some(first) = seen.insert(id.clone(), index + 1)
        {
            errors.push(RowError {
                row: index + 1,
                field: Some("external_id".into()),
                message: format!("{id:?} already appears in row {first}"),
            });
        }
        match entity.normalise(index + 1, row) {
            Ok(value) => normalised.push(value),
            Err(mut row_errors) => errors.append(&mut row_errors),
        }
    }
    if errors.is_empty() {
        Ok(normalised)
    } else {
        errors.sort_by_key(|e| e.row);
        Err(ImportError::Rows(errors))
    }
}

/// Upsert validated rows into `data.<entity>`; references are resolved by external id
/// within the workspace, and a missing one fails the whole import.
pub async fn write(
    pool: &PgPool,
    workspace: Uuid,
    entity: &'static Entity,
    rows: Vec<Value>,
    actor: &str,
) -> Result<ImportSummary, ImportError> {
    let received = rows.len();
    let rows = Value::Array(rows);
    let mut tx = pool.begin().await?;
    check_references(&mut tx, workspace, entity, &rows).await?;
    let inserted: Vec<bool> = sqlx::query_scalar(sqlx::AssertSqlSafe(upsert_sql(entity)))
        .bind(workspace)
        .bind(&rows)
        .fetch_all(&mut *tx)
        .await
        .map_err(constraint_errors)?;
    let new = inserted.iter().filter(|i| **i).count();
    imported_event(
        &mut tx,
        workspace,
        entity.name,
        (received, new, received - new),
        actor,
    )
    .await?;
    tx.commit().await?;
    Ok(ImportSummary {
        entity: entity.name,
        received,
        inserted: new,
        updated: received - new,
    })
}

/// The workspace's `data.imported` event (crate::events), in the import's
/// transaction: the entity and (received, inserted, updated) counts.
pub async fn imported_event(
    tx: &mut sqlx::PgConnection,
    workspace: Uuid,
    entity: &str,
    (received, inserted, updated): (usize, usize, usize),
    actor: &str,
) -> sqlx::Result<()> {
    crate::events::emit(
        tx,
        crate::events::NewEvent {
            workspace,
            kind: "data.imported",
            subject: Some(entity.to_string()),
            payload: serde_json::json!({
                "entity": entity, "received": received, "inserted": inserted,
                "updated": updated,
            }),
            actor,
        },
    )
    .await
}

async fn check_references(
    tx: &mut Transaction<'_, Postgres>,
    workspace: Uuid,
    entity: &Entity,
    rows: &Value,
) -> Result<(), ImportError> {
    let mut errors = Vec::new();
    for field in entity.fields {
        let Some(table) = field.references else {
            continue;
        };
        // Names come from the static entity table, never from the request.
        let sql = format!(
            "SELECT r.row_number, r.value FROM jsonb_to_recordset($2::jsonb) \
             AS r(row_number integer, value text) \
             WHERE r.value IS NOT NULL AND NOT EXISTS (SELECT 1 FROM data.{table} t \
             WHERE t.workspace_id = $1 AND t.external_id = r.value) ORDER BY 1"
        );
        let picked: Vec<Value> = rows
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| serde_json::json!({ "row_number": r["row_number"], "value": r[field.name] }))
            .collect();
        let missing: Vec<(i32, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(workspace)
            .bind(Value::Array(picked))
            .fetch_all(&mut **tx)
            .await?;
        errors.extend(missing.into_iter().map(|(row, value)| RowError {
            row: row as usize,
            field: Some(field.name.into()),
            message: format!("there is no {table} row with external_id {value:?}"),
        }));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        errors.sort_by_key(|e| e.row);
        Err(ImportError::Rows(errors))
    }
}

/// `INSERT ... SELECT FROM jsonb_to_recordset ... ON CONFLICT DO UPDATE`, returning
/// whether each row was new. Built only from the static entity table.
fn upsert_sql(entity: &Entity) -> String {
    let mut columns = vec!["workspace_id".to_string(), "external_id".into()];
    let mut values = vec!["$1".to_string(), "r.external_id".into()];
    let mut joins = String::new();
    for (index, field) in entity.fields.iter().enumerate() {
        columns.push(format!("\"{}\"", field.column()));
        match field.references {
            Some(table) => {
                let alias = format!("ref{index}");
                joins.push_str(&format!(
                    " LEFT JOIN data.{table} {alias} ON {alias}.workspace_id = $1 \
                     AND {alias}.external_id = r.\"{}\"",
                    field.name
                ));
                values.push(format!("{alias}.id"));
            }
            None => values.push(format!("r.\"{}\"", field.name)),
        }
    }
    let updates: Vec<String> = columns[2..]
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO data.{table} ({columns}) SELECT {values} \
         FROM jsonb_to_recordset($2::jsonb) AS r({record}){joins} ORDER BY r.row_number \
         ON CONFLICT (workspace_id, external_id) DO UPDATE SET {updates} \
         RETURNING (xmax = 0)",
        table = entity.name,
        columns = columns.join(", "),
        values = values.join(", "),
        record = entity.record_columns(),
        updates = updates.join(", "),
    )
}

/// A row that passes our checks but breaks a table constraint (say, a period end
/// before its start) is the client's mistake, not a server error.
fn constraint_errors(error: sqlx::Error) -> ImportError {
    if let sqlx::Error::Database(db) = &error
        && db
            .code()
            .is_some_and(|c| c.starts_with("23") || c == "22008" || c == "22003")
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
