//! The catalogue of event types: what each means, what its subject is, and its
//! payload's JSON Schema (`GET /api/event-types`). Every type the host emits is here;
//! `emit` checks it in debug builds.

use std::sync::LazyLock;

use serde::Serialize;
use serde_json::{Value, json};

/// One type of event.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventType {
    /// `area.thing.happened`.
    #[serde(rename = "type")]
    pub name: &'static str,
    pub description: &'static str,
    /// What the event's `subject` holds.
    pub subject: &'static str,
    /// The payload's JSON Schema.
    #[schema(value_type = Object)]
    pub payload: Value,
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({
        "type": "object",
        "required": required,
        "properties": properties,
    })
}

fn uuid() -> Value {
    json!({"type": "string", "format": "uuid"})
}

fn execution_payload() -> Value {
    object(
        &[
            "execution_id",
            "workflow_id",
            "workflow",
            "version",
            "status",
        ],
        json!({
            "execution_id": uuid(),
            "workflow_id": uuid(),
            "workflow": {"type": "string", "description": "The workflow's slug"},
            "version": {"type": "integer"},
            "status": {"type": "string", "enum": ["running", "succeeded", "failed", "cancelled"]},
            "error": {"type": ["string", "null"]},
        }),
    )
}

fn approval_payload() -> Value {
    object(
        &["approval_id", "execution_id", "node", "status"],
        json!({
            "approval_id": uuid(),
            "execution_id": uuid(),
            "node": {"type": "string"},
            "status": {"type": "string", "enum": ["pending", "approved", "rejected", "timed_out"]},
            "message": {"type": "string"},
        }),
    )
}

fn turn_payload() -> Value {
    object(
        &["turn_id", "conversation_id", "agent", "status"],
        json!({
            "turn_id": uuid(),
            "conversation_id": uuid(),
            "agent": {"type": "string", "description": "The agent's slug"},
            "status": {"type": "string"},
            "error": {"type": ["string", "null"]},
            "steps": {"type": "integer"},
        }),
    )
}

/// Every event type the host emits.
pub static CATALOGUE: LazyLock<Vec<EventType>> = LazyLock::new(|| {
    let execution = |name, description| EventType {
        name,
        description,
        subject: "the execution id",
        payload: execution_payload(),
    };
    let approval = |name, description| EventType {
        name,
        description,
        subject: "the approval id",
        payload: approval_payload(),
    };
    let turn = |name, description| EventType {
        name,
        description,
        subject: "the turn id",
        payload: turn_payload(),
    };
    vec![
        execution(
            "workflow.execution.started",
            "An execution of a workflow started (or a failed one was retried).",
        ),
        execution(
            "workflow.execution.succeeded",
            "An execution finished with its output.",
        ),
        execution(
            "workflow.execution.failed",
            "An execution failed (a node failed, or it ran past its timeout).",
        ),
        execution(
            "workflow.execution.cancelled",
            "An execution was cancelled.",
        ),
        approval(
            "approval.requested",
            "A workflow's approval node waits for people to decide.",
        ),
        approval(
            "approval.decided",
            "An approval was approved, rejected, or timed out.",
        ),
        turn(
            "agent.turn.completed",
            "An agent answered a message (or stopped at its step limit).",
        ),
        turn("agent.turn.failed", "An agent's turn failed."),
    ]
});

/// The catalogue's entry for `name`.
pub fn find(name: &str) -> Option<&'static EventType> {
    CATALOGUE.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_dotted_and_schemas_compile() {
        let mut names: Vec<&str> = CATALOGUE.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len());
        for event in CATALOGUE.iter() {
            assert!(
                event.name.split('.').count() >= 2
                    && event
                        .name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'),
                "{}",
                event.name
            );
            assert!(
                jsonschema::validator_for(&event.payload).is_ok(),
                "{}",
                event.name
            );
        }
    }
}
