//! Domain events: a transactional outbox. An event is a row of `events` written in the
//! same transaction as the change that causes it (`emit`), so it exists exactly when
//! its change does. The catalogue of types with their payload schemas is `types`; the
//! workspace's feed (`GET /api/events`, the SSE stream) reads in commit order (`feed`);
//! old events are deleted after `--event-retention` (`retention`).

mod feed;
pub mod nats;
mod retention;
pub mod types;

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

pub use feed::{Cursor, Filter, StoredEvent, read};
pub use retention::{sweep, sweep_forever};

/// An event about to be written.
#[derive(Debug)]
pub struct NewEvent<'a> {
    pub workspace: Uuid,
    /// A type of the catalogue (`types::CATALOGUE`).
    pub kind: &'a str,
    /// What it is about (an execution, ticket or article id, a plugin name).
    pub subject: Option<String>,
    pub payload: Value,
    /// Who caused it, as the audit log names callers (`key:<id>`, `admin`, `system:…`).
    pub actor: &'a str,
}

/// Write an event in the caller's transaction.
pub async fn emit(tx: &mut PgConnection, event: NewEvent<'_>) -> sqlx::Result<()> {
    debug_assert!(
        types::find(event.kind).is_some(),
        "event type {} is not in the catalogue",
        event.kind
    );
    sqlx::query(
        "INSERT INTO events (workspace_id, type, subject, payload, actor) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(event.workspace)
    .bind(event.kind)
    .bind(event.subject)
    .bind(crate::nul::replace_in_json(event.payload))
    .bind(event.actor)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Write a plugin's event (a type outside the catalogue; the `events` capability has
/// checked it) in the caller's transaction. With `id`, an event already written under
/// that id is left as it is: a node run that runs again emits nothing new. Returns
/// whether a row was written.
pub async fn emit_plugin_event(
    tx: &mut PgConnection,
    id: Option<Uuid>,
    execution: Option<Uuid>,
    event: NewEvent<'_>,
) -> sqlx::Result<bool> {
    let written = sqlx::query(
        "INSERT INTO events (id, workspace_id, type, subject, payload, actor, execution_id) \
         VALUES (coalesce($1, gen_random_uuid()), $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(event.workspace)
    .bind(event.kind)
    .bind(event.subject)
    .bind(crate::nul::replace_in_json(event.payload))
    .bind(event.actor)
    .bind(execution)
    .execute(&mut *tx)
    .await?;
    Ok(written.rows_affected() == 1)
}
