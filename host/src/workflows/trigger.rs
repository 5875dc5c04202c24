//! What starts a workflow by itself, declared in its definition so it is versioned with
//! it: only the latest version's triggers fire (`crate::automation`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::definition::Problem;
use super::template;

/// Triggers one workflow may have.
pub const MAX_TRIGGERS: usize = 20;

/// One trigger of a workflow.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[schema(as = WorkflowTrigger)]
pub enum TriggerDef {
    /// An execution for each domain event of a type the filter accepts (after the
    /// version was saved); the event is the execution's input, and its id the
    /// execution's idempotency key, so an event starts the workflow at most once.
    Event {
        /// An event type (`GET /api/event-types`) or a prefix of whole segments
        /// (`ticket`, `workflow.execution.*`).
        #[schema(
            pattern = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?$",
            max_length = 200
        )]
        event: String,
        /// An expression over `event` (`{{ event.payload.status == "failed" }}`);
        /// without one every event of the type starts it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(max_length = 2000)]
        filter: Option<String>,
    },
    /// An execution at each tick of a schedule (cron in a time zone, an interval, or
    /// once); the input is `input` with `schedule: {id, name, tick, kind}` added. Each
    /// tick starts the workflow once across all hosts.
    Schedule(crate::automation::schedules::ScheduleSpec),
    /// An execution for each request to the workflow's URL,
    /// `POST /hooks/{workflow}/{token}`; the request is the input. At most one per
    /// workflow.
    Webhook(crate::automation::hooks::WebhookTrigger),
}

impl TriggerDef {
    /// Whether an event of type `kind` and content `event` starts the workflow. A filter
    /// that fails to evaluate does not.
    pub fn accepts(&self, kind: &str, event: &Value) -> bool {
        match self {
            TriggerDef::Event {
                event: wanted,
                filter,
            } => {
                let type_matches = crate::events::types::selects(wanted, kind);
                type_matches
                    && filter.as_ref().is_none_or(|filter| {
                        let context = serde_json::json!({ "event": event });
                        template::render(&Value::String(filter.clone()), &context)
                            .is_ok_and(|value| template::truthy(&value))
                    })
            }
            TriggerDef::Schedule(_) => false,
            TriggerDef::Webhook(_) => false,
        }
    }
}

/// Problems with a definition's triggers, at `triggers[i].field`.
pub fn check(triggers: &[TriggerDef]) -> Vec<Problem> {
    let mut problems = Vec::new();
    if triggers.len() > MAX_TRIGGERS {
        problems.push(Problem::at(
            "triggers",
            format!(
                "{} triggers is more than the {MAX_TRIGGERS} a workflow may have",
                triggers.len()
            ),
        ));
    }
    for (i, trigger) in triggers.iter().enumerate() {
        match trigger {
            TriggerDef::Event { event, filter } => {
                if !crate::events::types::is_type_or_prefix(event) {
                    problems.push(Problem::at(
                        format!("triggers[{i}].event"),
                        format!(
                            "{event:?} is not an event type or a prefix of one (like \
                             `ticket.created` or `workflow.*`)"
                        ),
                    ));
                }
                if let Some(filter) = filter {
                    let wrapped = if template::is_template(filter) {
                        filter.clone()
                    } else {
                        format!("{{{{ {filter} }}}}")
                    };
                    if filter.len() > 2000 {
                        problems.push(Problem::at(
                            format!("triggers[{i}].filter"),
                            "is longer than 2000 bytes",
                        ));
                    } else if let Err(why) = template::check(&wrapped) {
                        problems.push(Problem::at(format!("triggers[{i}].filter"), why));
                    }
                }
            }
            TriggerDef::Schedule(schedule) => {
                if let Err(found) = schedule.check(&format!("triggers[{i}]")) {
                    problems.extend(found);
                }
            }
            TriggerDef::Webhook(hook) => problems.extend(hook.check(&format!("triggers[{i}]"))),
        }
    }
    problems.extend(crate::automation::hooks::at_most_one(triggers));
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: &str, filter: Option<&str>) -> TriggerDef {
        TriggerDef::Event {
            event: kind.into(),
            filter: filter.map(String::from),
        }
    }

    #[test]
    fn types_match_whole_segments_and_filters_decide() {
        let payload = json!({"payload": {"status": "failed"}});
        assert!(event("workflow", None).accepts("workflow.execution.failed", &payload));
        assert!(event("workflow.*", None).accepts("workflow.execution.failed", &payload));
        assert!(!event("workflow.exec", None).accepts("workflow.execution.failed", &payload));
        assert!(!event("ticket", None).accepts("workflow.execution.failed", &payload));
        let failed = event("workflow", Some("{{ event.payload.status == 'failed' }}"));
        assert!(failed.accepts("workflow.execution.failed", &payload));
        let other = json!({"payload": {"status": "succeeded"}});
        assert!(!failed.accepts("workflow.execution.succeeded", &other));
        // A filter that can't be evaluated starts nothing.
        let broken = event("workflow", Some("{{ event.payload.nothing.deeper }}"));
        assert!(!broken.accepts("workflow.execution.failed", &payload));
    }

    #[test]
    fn bad_triggers_are_named_by_path() {
        let problems = check(&[
            event("Ticket", None),
            event("ticket", Some("{{ event.payload.x ==")),
            event("ticket.*", Some("event.payload.x == 1")),
        ]);
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["triggers[0].event", "triggers[1].filter"]);
    }
}
