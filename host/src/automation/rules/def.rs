//! A rule as people write it, and its checks: every problem at once, at its field.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::automation::actions::{self, NodeSettings};
use crate::workflows::definition::{Definition, NodeTypeInfo, Problem};
use crate::workflows::template;

/// Conditions a rule may have (each list).
pub const MAX_CONDITIONS: usize = 20;
/// The longest condition or filter expression.
pub const MAX_EXPRESSION: usize = 2000;
/// The longest cooldown.
pub const MAX_COOLDOWN: Duration = Duration::from_secs(30 * 86_400);

/// What a rule listens to.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RuleTrigger)]
pub struct Trigger {
    /// An event type (`GET /api/event-types`) or a prefix of whole segments
    /// (`ticket`, `workflow.execution.*`).
    #[schema(max_length = 200, example = "deal.won")]
    pub event: String,
    /// An expression over `event` that must hold (`event.payload.amount > 1000`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 2000)]
    pub filter: Option<String>,
}

/// Expressions over `event` (and `rule`); `all` must all hold and, when given, at least
/// one of `any`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RuleConditions)]
pub struct Conditions {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub all: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any: Vec<String>,
}

/// A rule as created or changed (PATCH: only what is given changes).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// Default true.
    #[serde(default)]
    pub active: Option<bool>,
    /// Rules matching one event start highest first; default 0.
    #[serde(default)]
    #[schema(minimum = -1000, maximum = 1000)]
    pub priority: Option<i32>,
    #[serde(default)]
    pub trigger: Option<Trigger>,
    #[serde(default)]
    pub conditions: Option<Conditions>,
    /// 1 to 20, run in order: `{"type": "send_email" | "call_webhook" | "trigger_workflow"
    /// | "invoke_agent" | "emit_event" | "create_ticket" | "update_ticket", ...}` with the
    /// node's config; templates see `input.event` and `input.rule`.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>, min_items = 1, max_items = 20)]
    pub actions: Option<Vec<Value>>,
    /// After a run, matching events within this time are skipped (`10m`, `1h`).
    #[serde(default)]
    #[schema(max_length = 32)]
    pub cooldown: Option<String>,
    /// At most this many runs in any hour; more matching events are skipped.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100000)]
    pub max_per_hour: Option<i32>,
    /// Retries of a failed action (the engine's retry policy); default none.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub retry: Option<Value>,
    /// Run the next action even when one fails; default false (stop).
    #[serde(default)]
    pub continue_on_error: Option<bool>,
}

/// `expr` or `{{ expr }}` as a template.
fn wrapped(expression: &str) -> String {
    if template::is_template(expression) {
        expression.to_string()
    } else {
        format!("{{{{ {expression} }}}}")
    }
}

fn check_expression(expression: &str, path: String, problems: &mut Vec<Problem>) {
    if expression.len() > MAX_EXPRESSION {
        problems.push(Problem::at(path, "is longer than 2000 bytes"));
    } else if let Err(why) = template::check(&wrapped(expression)) {
        problems.push(Problem::at(path, why));
    }
}

/// Whether an expression holds for `context`; one that can't be evaluated doesn't.
pub fn holds(expression: &str, context: &Value) -> bool {
    template::render(&Value::String(wrapped(expression)), context)
        .is_ok_and(|value| template::truthy(&value))
}

impl Conditions {
    pub fn hold(&self, context: &Value) -> bool {
        self.all.iter().all(|c| holds(c, context))
            && (self.any.is_empty() || self.any.iter().any(|c| holds(c, context)))
    }
}

/// Check the parts given; `actions` compile to the rule's workflow.
pub fn check(
    input: &RuleInput,
    node_types: &dyn Fn(&str) -> Option<NodeTypeInfo>,
) -> Result<Option<Definition>, Vec<Problem>> {
    let mut problems = Vec::new();
    if let Some(name) = &input.name
        && (name.trim().is_empty() || name.chars().count() > 200)
    {
        problems.push(Problem::at("name", "must be 1-200 characters"));
    }
    if input
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 2000)
    {
        problems.push(Problem::at(
            "description",
            "must be at most 2000 characters",
        ));
    }
    if input.priority.is_some_and(|p| !(-1000..=1000).contains(&p)) {
        problems.push(Problem::at("priority", "must be between -1000 and 1000"));
    }
    if let Some(trigger) = &input.trigger {
        if !crate::events::types::is_type_or_prefix(&trigger.event) {
            problems.push(Problem::at(
                "trigger.event",
                format!(
                    "{:?} is not an event type or a prefix of one (like `deal.won` or `ticket.*`)",
                    trigger.event
                ),
            ));
        }
        if let Some(filter) = &trigger.filter {
            check_expression(filter, "trigger.filter".into(), &mut problems);
        }
    }
    if let Some(conditions) = &input.conditions {
        for (list, name) in [(&conditions.all, "all"), (&conditions.any, "any")] {
            if list.len() > MAX_CONDITIONS {
                problems.push(Problem::at(
                    format!("conditions.{name}"),
                    format!("at most {MAX_CONDITIONS} conditions"),
                ));
            }
            for (i, condition) in list.iter().enumerate() {
                check_expression(condition, format!("conditions.{name}[{i}]"), &mut problems);
            }
        }
    }
    if let Some(cooldown) = &input.cooldown {
        match crate::config::parse_retention(cooldown) {
            Ok(duration) if duration <= MAX_COOLDOWN => {}
            Ok(_) => problems.push(Problem::at("cooldown", "must be at most 30d")),
            Err(why) => problems.push(Problem::at("cooldown", why)),
        }
    }
    if input
        .max_per_hour
        .is_some_and(|m| !(1..=100_000).contains(&m))
    {
        problems.push(Problem::at("max_per_hour", "must be between 1 and 100000"));
    }
    let definition = match &input.actions {
        Some(list) => {
            let settings = NodeSettings {
                retry: input.retry.clone(),
                timeout: None,
                continue_on_error: input.continue_on_error.unwrap_or(false),
            };
            match actions::compile(list, "actions", &settings, node_types) {
                Ok(definition) => Some(definition),
                Err(found) => {
                    problems.extend(found);
                    None
                }
            }
        }
        None => None,
    };
    if problems.is_empty() {
        Ok(definition)
    } else {
        Err(problems)
    }
}

/// The cooldown in milliseconds.
pub fn cooldown_ms(input: &RuleInput) -> Option<i64> {
    input
        .cooldown
        .as_deref()
        .and_then(|c| crate::config::parse_retention(c).ok())
        .map(|d| d.as_millis() as i64)
}

/// What a rule's conditions and actions see.
pub fn context(event: &Value, rule: &Value) -> Value {
    json!({"event": event, "rule": rule})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_need_all_and_one_of_any() {
        let event = json!({"event": {"payload": {"amount": 5000, "currency": "EUR"}}});
        let conditions = Conditions {
            all: vec!["event.payload.amount > 1000".into()],
            any: vec![
                "event.payload.currency == 'USD'".into(),
                "{{ event.payload.currency == 'EUR' }}".into(),
            ],
        };
        assert!(conditions.hold(&event));
        let small = json!({"event": {"payload": {"amount": 5, "currency": "EUR"}}});
        assert!(!conditions.hold(&small));
        // One that can't be evaluated doesn't hold.
        assert!(!holds("event.payload.nothing.deeper > 1", &event));
        assert!(Conditions::default().hold(&event));
    }

    #[test]
    fn bad_parts_are_named() {
        let input = RuleInput {
            name: Some(" ".into()),
            trigger: Some(Trigger {
                event: "Deal".into(),
                filter: Some("event.x ==".into()),
            }),
            conditions: Some(Conditions {
                all: vec!["ok".into(), "{{ broken".into()],
                any: vec![],
            }),
            cooldown: Some("soon".into()),
            max_per_hour: Some(0),
            actions: Some(vec![json!({"type": "fly"})]),
            ..Default::default()
        };
        let problems = check(&input, &|_| None).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "name",
                "trigger.event",
                "trigger.filter",
                "conditions.all[1]",
                "cooldown",
                "max_per_hour",
                "actions[0].type"
            ]
        );
    }
}
