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

fn ticket_payload(extra: &[(&str, Value)]) -> Value {
    let mut properties = json!({
        "ticket_id": uuid(),
        "number": {"type": "integer"},
        "subject": {"type": "string"},
        "status": {"type": "string", "enum": ["open", "pending", "solved", "closed"]},
        "priority": {"type": "string", "enum": ["low", "normal", "high", "urgent"]},
        "channel": {"type": "string"},
        "requester_email": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
    });
    let mut required = vec!["ticket_id", "number", "subject", "status", "priority"];
    for (name, schema) in extra {
        properties[*name] = schema.clone();
        required.push(name);
    }
    object(&required, properties)
}

fn article_payload() -> Value {
    object(
        &["article_id", "slug", "title", "version", "status"],
        json!({
            "article_id": uuid(),
            "slug": {"type": "string"},
            "title": {"type": "string"},
            "version": {"type": "integer", "description": "The article's latest revision"},
            "status": {"type": "string", "enum": ["published", "archived"]},
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
    let health = |name, description| EventType {
        name,
        description,
        subject: "the agent id",
        payload: health_payload(),
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
        EventType {
            name: "ticket.created",
            description: "A ticket was created (through the API, an import or a plugin).",
            subject: "the ticket id",
            payload: ticket_payload(&[]),
        },
        EventType {
            name: "ticket.updated",
            description: "A ticket's fields changed (not enrichment's findings).",
            subject: "the ticket id",
            payload: ticket_payload(&[(
                "changed",
                json!({"type": "array", "items": {"type": "string", "enum": [
                    "subject", "description", "status", "priority", "channel",
                    "requester", "customer", "assignee", "tags", "overrides"]}}),
            )]),
        },
        EventType {
            name: "ticket.status_changed",
            description: "A ticket moved from one status to another.",
            subject: "the ticket id",
            payload: ticket_payload(&[
                ("from", json!({"type": "string"})),
                ("to", json!({"type": "string"})),
            ]),
        },
        EventType {
            name: "ticket.commented",
            description: "A reply or an internal note was added to a ticket.",
            subject: "the ticket id",
            payload: object(
                &["ticket_id", "comment_id", "public", "author"],
                json!({
                    "ticket_id": uuid(),
                    "comment_id": uuid(),
                    "public": {"type": "boolean"},
                    "author": {"type": "string"},
                }),
            ),
        },
        EventType {
            name: "kb.article.published",
            description: "An article went live, or a new revision of a live one did.",
            subject: "the article id",
            payload: article_payload(),
        },
        EventType {
            name: "kb.article.archived",
            description: "An article was archived.",
            subject: "the article id",
            payload: article_payload(),
        },
        EventType {
            name: "kb.gap.logged",
            description: "A question the knowledge base could not answer was logged.",
            subject: "the gap id",
            payload: object(
                &["gap_id", "question", "reason"],
                json!({
                    "gap_id": uuid(),
                    "question": {"type": "string"},
                    "reason": {"type": "string", "enum": ["no_match", "not_covered"]},
                    "best_score": {"type": ["number", "null"]},
                    "source": {"type": "string"},
                }),
            ),
        },
        EventType {
            name: "data.imported",
            description: "Rows of business data (or tickets) were imported.",
            subject: "the entity",
            payload: object(
                &["entity", "received", "inserted", "updated"],
                json!({
                    "entity": {"type": "string"},
                    "received": {"type": "integer"},
                    "inserted": {"type": "integer"},
                    "updated": {"type": "integer"},
                }),
            ),
        },
        EventType {
            name: "plugin.version.activated",
            description: "A plugin version became the active one (upload with activation, \
                          activate, roll back); every workspace gets the event.",
            subject: "the plugin's name",
            payload: object(
                &["plugin", "version"],
                json!({
                    "plugin": {"type": "string"},
                    "version": {"type": "string"},
                    "previous": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                }),
            ),
        },
        EventType {
            name: "schedule.run.failed",
            description: "A schedule's run failed: its execution failed, or it could not \
                          start (the input no longer fits, the workflow is disabled).",
            subject: "the schedule id",
            payload: object(
                &["schedule_id", "name", "tick", "error"],
                json!({
                    "schedule_id": uuid(),
                    "name": {"type": "string"},
                    "tick": {"type": "string", "format": "date-time"},
                    "execution_id": {"anyOf": [uuid(), {"type": "null"}]},
                    "error": {"type": "string"},
                }),
            ),
        },
        EventType {
            name: "webhook.disabled",
            description: "An outbound webhook was disabled: by a person, because its \
                endpoint answered 410 Gone, or because deliveries in a row failed every \
                attempt. Not sent to the webhook it is about.",
            subject: "the webhook id",
            payload: object(
                &["webhook_id", "url", "reason", "by"],
                json!({
                    "webhook_id": uuid(),
                    "url": {"type": "string"},
                    "reason": {"type": "string", "description": "Why, in words"},
                    "by": {"type": "string", "description": "`key:<id>` or `system:webhooks`"},
                }),
            ),
        },
        EventType {
            name: "webhook.delivery.failed",
            description: "A delivery of an outbound webhook failed its last attempt. Not \
                sent to the webhook it is about.",
            subject: "the webhook id",
            payload: object(
                &[
                    "webhook_id",
                    "delivery_id",
                    "event_id",
                    "event_type",
                    "attempts",
                    "error",
                ],
                json!({
                    "webhook_id": uuid(),
                    "delivery_id": uuid(),
                    "event_id": uuid(),
                    "event_type": {"type": "string"},
                    "attempts": {"type": "integer"},
                    "response_status": {"type": ["integer", "null"]},
                    "error": {"type": "string"},
                }),
            ),
        },
        EventType {
            name: "deal.won",
            description: "A deal's `won` turned true (however it was written).",
            subject: "the deal id",
            payload: object(
                &["deal_id", "external_id", "amount", "currency", "stage"],
                json!({
                    "deal_id": uuid(),
                    "external_id": {"type": "string"},
                    "amount": {"type": "number"},
                    "currency": {"type": "string"},
                    "stage": {"type": "string"},
                    "owner_id": {"anyOf": [uuid(), {"type": "null"}]},
                    "customer_id": {"anyOf": [uuid(), {"type": "null"}]},
                }),
            ),
        },
        EventType {
            name: "llm.budget.exceeded",
            description: "A workspace spent its monthly LLM token or cost budget: chat \
                answers 429 `budget_exceeded` until the month ends. Once a month (again \
                only if the budget is changed).",
            subject: "the month, `YYYY-MM` (UTC)",
            payload: budget_payload(),
        },
        health(
            "agent.health.degraded",
            "An agent's turns over the health window succeeded too rarely or took too \
                long (its p95); emitted once when it turns degraded.",
        ),
        health(
            "agent.health.recovered",
            "A degraded agent's turns are back within the thresholds.",
        ),
    ]
});

fn budget_payload() -> Value {
    object(
        &[
            "unit",
            "used",
            "budget",
            "period_start",
            "resets_at",
            "month",
        ],
        json!({
            "unit": {"type": "string", "enum": ["tokens", "usd"], "description": "Which budget was spent"},
            "used": {"type": "number", "description": "Used this month"},
            "budget": {"type": "number", "description": "The monthly budget"},
            "period_start": {"type": "string", "format": "date-time"},
            "resets_at": {"type": "string", "format": "date-time"},
            "month": {"type": "string", "description": "YYYY-MM"},
        }),
    )
}

fn health_payload() -> Value {
    let ratio = json!({"type": ["number", "null"], "minimum": 0, "maximum": 1});
    let ms = json!({"type": ["number", "null"]});
    object(
        &[
            "agent_id",
            "agent",
            "status",
            "turns",
            "success_rate",
            "p95_ms",
            "reasons",
            "thresholds",
        ],
        json!({
            "agent_id": uuid(),
            "agent": {"type": "string", "description": "The agent's slug"},
            "status": {"type": "string", "enum": ["degraded", "healthy"]},
            "turns": {"type": "integer", "description": "Turns that ended within the window"},
            "success_rate": ratio,
            "p95_ms": ms,
            "reasons": {"type": "array", "items": {"type": "string", "enum": ["success_rate", "p95"]},
                        "description": "Which thresholds are broken (empty when recovered)"},
            "thresholds": object(&["window_seconds", "min_success", "max_p95_ms", "min_turns"], json!({
                "window_seconds": {"type": "number"},
                "min_success": {"type": "number"},
                "max_p95_ms": {"type": "number"},
                "min_turns": {"type": "integer"},
            })),
        }),
    )
}

/// Whether `text` is an event type or a prefix of whole segments (`ticket`,
/// `workflow.execution.*`), as filters and triggers take it.
pub fn is_type_or_prefix(text: &str) -> bool {
    let bare = text.strip_suffix(".*").unwrap_or(text);
    text.len() <= 200
        && !bare.is_empty()
        && bare.split('.').all(|part| {
            part.starts_with(|c: char| c.is_ascii_lowercase())
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
}

/// Whether an event of type `kind` is selected by `wanted` (a type or a prefix).
pub fn selects(wanted: &str, kind: &str) -> bool {
    let wanted = wanted.strip_suffix(".*").unwrap_or(wanted);
    kind == wanted
        || kind
            .strip_prefix(wanted)
            .is_some_and(|rest| rest.starts_with('.'))
}

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
