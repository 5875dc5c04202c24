//! What starts work by itself. Today: event triggers, which start a workflow for the
//! domain events (crate::events) its latest version's triggers accept. Schedules,
//! webhooks, rules and outbound webhooks come next (issue 20; docs/automation.md).

pub mod actions;
pub mod event_triggers;
pub mod health;
pub mod hooks;
pub mod outbound;
pub mod rules;
pub mod schedules;

/// The longest chain of events starting work that starts more events (a workflow's
/// success starting another whose success starts the first, two rules emitting what
/// the other listens to): an event this deep is passed over by triggers and rules.
pub const MAX_CHAIN: u32 = 8;

/// The execution an event came out of: the one whose node emitted it, or the one a
/// `workflow.execution.*` event is about.
fn source(event: &crate::events::StoredEvent) -> Option<uuid::Uuid> {
    event.execution_id.or_else(|| {
        event
            .kind
            .starts_with("workflow.execution.")
            .then(|| event.payload["execution_id"].as_str())
            .flatten()
            .and_then(|id| uuid::Uuid::parse_str(id).ok())
    })
}

/// Whether `event` came from `workflow`'s own run, or at the end of a chain of
/// `MAX_CHAIN` events each starting the work that made the next. Triggers and rules
/// pass over those, so automations can't set themselves (or each other) off forever.
pub async fn caused_by(
    pool: &sqlx::PgPool,
    event: &crate::events::StoredEvent,
    workflow: uuid::Uuid,
) -> sqlx::Result<bool> {
    let mut execution = source(event);
    let mut depth = 0;
    while let Some(id) = execution {
        let cause: Option<(uuid::Uuid, Option<String>)> =
            sqlx::query_as("SELECT workflow_id, idempotency_key FROM executions WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?;
        let Some((cause_workflow, key)) = cause else {
            return Ok(false);
        };
        if depth == 0 && cause_workflow == workflow {
            return Ok(true);
        }
        depth += 1;
        if depth >= MAX_CHAIN {
            tracing::warn!(event = %event.id, "a chain of automations stopped at {MAX_CHAIN} steps");
            return Ok(true);
        }
        // Started by an event (`event:<id>`, `rule:<rule>:<id>`): follow it back.
        let Some(cause_event) = key
            .as_deref()
            .and_then(|k| k.rsplit(':').next())
            .filter(|_| {
                key.as_deref()
                    .is_some_and(|k| k.starts_with("event:") || k.starts_with("rule:"))
            })
            .and_then(|id| uuid::Uuid::parse_str(id).ok())
        else {
            return Ok(false);
        };
        let previous: Option<(Option<uuid::Uuid>, String, serde_json::Value)> =
            sqlx::query_as("SELECT execution_id, type, payload FROM events WHERE id = $1")
                .bind(cause_event)
                .fetch_optional(pool)
                .await?;
        execution = previous.and_then(|(execution, kind, payload)| {
            execution.or_else(|| {
                kind.starts_with("workflow.execution.")
                    .then(|| {
                        payload["execution_id"]
                            .as_str()
                            .and_then(|id| uuid::Uuid::parse_str(id).ok())
                    })
                    .flatten()
            })
        });
    }
    Ok(false)
}
