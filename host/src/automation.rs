//! What starts work by itself. Today: event triggers, which start a workflow for the
//! domain events (crate::events) its latest version's triggers accept. Schedules,
//! webhooks, rules and outbound webhooks come next (issue 20; docs/automation.md).

pub mod actions;
pub mod builder;
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
fn source(
    execution: Option<uuid::Uuid>,
    kind: &str,
    payload: &serde_json::Value,
) -> Option<uuid::Uuid> {
    execution.or_else(|| {
        kind.starts_with("workflow.execution.")
            .then(|| payload["execution_id"].as_str())
            .flatten()
            .and_then(|id| uuid::Uuid::parse_str(id).ok())
    })
}

/// Where an event came from, as triggers and rules judge it.
pub struct Cause {
    /// The workflow whose execution made it.
    workflow: Option<uuid::Uuid>,
    /// It ends a chain of `MAX_CHAIN` events each starting the work that made the next.
    too_deep: bool,
    /// It came out of a test run of a draft (crate::automation::builder::drafts), which
    /// must not set anything live off.
    test_run: bool,
}

impl Cause {
    /// Whether `workflow`'s trigger or rule passes the event over: its own run's, or
    /// too deep in a chain, so automations can't set themselves (or each other) off
    /// forever.
    pub fn stops(&self, workflow: uuid::Uuid) -> bool {
        self.too_deep || self.test_run || self.workflow == Some(workflow)
    }
}

/// Follow an event back through the executions and events that led to it, up to
/// `MAX_CHAIN` steps: once per event, whatever number of rules then judge it.
pub async fn cause_of(
    pool: &sqlx::PgPool,
    event: &crate::events::StoredEvent,
) -> sqlx::Result<Cause> {
    let mut cause = Cause {
        workflow: None,
        too_deep: false,
        test_run: false,
    };
    let mut execution = source(event.execution_id, &event.kind, &event.payload);
    let mut depth = 0;
    while let Some(id) = execution {
        let found: Option<(uuid::Uuid, Option<String>, bool)> = sqlx::query_as(
            "SELECT e.workflow_id, e.idempotency_key, coalesce(w.owner LIKE 'draft:%', false) \
             FROM executions e JOIN workflows w ON w.id = e.workflow_id WHERE e.id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?;
        let Some((workflow, key, test_run)) = found else {
            break;
        };
        cause.workflow.get_or_insert(workflow);
        cause.test_run |= test_run;
        depth += 1;
        if depth >= MAX_CHAIN {
            tracing::warn!(event = %event.id, "a chain of automations stopped at {MAX_CHAIN} steps");
            cause.too_deep = true;
            break;
        }
        // Started by an event (`event:<id>`, `rule:<rule>:<id>`): follow it back.
        let Some(previous) = key
            .as_deref()
            .filter(|k| k.starts_with("event:") || k.starts_with("rule:"))
            .and_then(|k| k.rsplit(':').next())
            .and_then(|id| uuid::Uuid::parse_str(id).ok())
        else {
            break;
        };
        let row: Option<(Option<uuid::Uuid>, String, serde_json::Value)> =
            sqlx::query_as("SELECT execution_id, type, payload FROM events WHERE id = $1")
                .bind(previous)
                .fetch_optional(pool)
                .await?;
        execution = row.and_then(|(execution, kind, payload)| source(execution, &kind, &payload));
    }
    Ok(cause)
}
