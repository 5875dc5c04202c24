//! What scheduled tasks and rules do, as engine nodes: an action is a node of a
//! bundled node plugin, so its retries, records, grants and idempotency keys are the
//! engine's ("one implementation of do something"). A list of actions compiles to a
//! workflow of those nodes in a chain, owned by the task or rule.
//!
//! An action is `{"type": <action>, ...the node's config}`; the node type's config
//! schema checks the rest, and its problems come back at the action's path.

use serde_json::{Map, Value, json};

use crate::workflows::definition::{self, Definition, NodeTypeInfo, Problem};

/// Actions one rule may have.
pub const MAX_ACTIONS: usize = 20;

/// Each action and the node type it runs as (docs/automation.md, Actions).
pub const ACTIONS: &[(&str, &str)] = &[
    ("send_email", "email/send"),
    ("call_webhook", "http/request"),
    ("trigger_workflow", "workflow/start"),
    ("invoke_agent", "agent/turn"),
    ("emit_event", "events/emit"),
    ("create_ticket", "tickets/create"),
    ("update_ticket", "tickets/update"),
];

/// Other names users reach for (a scheduled task's vocabulary).
const ALIASES: &[(&str, &str)] = &[
    ("call_url", "call_webhook"),
    ("message_agent", "invoke_agent"),
    ("run_workflow", "trigger_workflow"),
];

/// The action's canonical name (aliases resolved), if it is one.
pub fn canonical(name: &str) -> Option<&'static str> {
    let name = ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, to)| to);
    ACTIONS.iter().find(|(a, _)| *a == name).map(|(a, _)| *a)
}

fn node_type(action: &str) -> Option<&'static str> {
    ACTIONS.iter().find(|(a, _)| *a == action).map(|(_, n)| *n)
}

/// Settings of the nodes actions run as.
#[derive(Debug, Clone, Default)]
pub struct NodeSettings {
    /// The engine's retry policy (`RetryPolicy` JSON), for every action.
    pub retry: Option<Value>,
    /// One attempt's time limit (`30s`).
    pub timeout: Option<String>,
    /// Run the next action even when this one failed.
    pub continue_on_error: bool,
}

/// Compile actions into a chain of nodes (`action_1` → `action_2` …), checked against
/// the node types active now. Problems are at `{path}[i].field` (`actions[0].to`).
pub fn compile(
    actions: &[Value],
    path: &str,
    settings: &NodeSettings,
    node_types: &dyn Fn(&str) -> Option<NodeTypeInfo>,
) -> Result<Definition, Vec<Problem>> {
    let mut problems = Vec::new();
    if actions.is_empty() || actions.len() > MAX_ACTIONS {
        problems.push(Problem::at(
            path,
            format!("give 1 to {MAX_ACTIONS} actions"),
        ));
    }
    let mut nodes = Vec::new();
    for (i, action) in actions.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let Some(fields) = action.as_object() else {
            problems.push(Problem::at(at, "an action is an object with a `type`"));
            continue;
        };
        let name = fields
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(node) = canonical(name).and_then(node_type) else {
            let known: Vec<&str> = ACTIONS.iter().map(|(a, _)| *a).collect();
            problems.push(Problem::at(
                format!("{at}.type"),
                format!("{name:?} is not an action; use one of {}", known.join(", ")),
            ));
            continue;
        };
        let mut config: Map<String, Value> = fields
            .iter()
            .filter(|(k, _)| k.as_str() != "type")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // `type` names the action, so `emit_event` takes the event's type as `event`.
        if node == "events/emit"
            && let Some(event) = config.remove("event")
        {
            config.insert("type".into(), event);
        }
        let mut node = json!({
            "id": format!("action_{}", i + 1),
            "type": node,
            "config": config,
        });
        if let Some(retry) = &settings.retry {
            node["retry"] = retry.clone();
        }
        if let Some(timeout) = &settings.timeout {
            node["timeout"] = json!(timeout);
        }
        if settings.continue_on_error {
            node["on_error"] = json!("continue");
        }
        nodes.push(node);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let edges: Vec<Value> = (1..nodes.len())
        .map(|i| json!({"from": format!("action_{i}"), "to": format!("action_{}", i + 1)}))
        .collect();
    let raw = json!({"nodes": nodes, "edges": edges});
    definition::validate(&raw, node_types).map_err(|found| {
        found
            .into_iter()
            .map(|problem| Problem::at(rename(&problem.path, path), problem.message))
            .collect()
    })
}

/// `nodes[2].config.to` → `actions[2].to`; `nodes[0].retry…` → `retry…`.
fn rename(node_path: &str, path: &str) -> String {
    let Some(rest) = node_path.strip_prefix("nodes[") else {
        return path.to_string();
    };
    let Some((index, field)) = rest.split_once(']') else {
        return path.to_string();
    };
    let field = field.strip_prefix('.').unwrap_or(field);
    match field.strip_prefix("config") {
        // `emit_event`'s `event` is the node's `type`.
        Some(".type") => format!("{path}[{index}].event"),
        Some(config) => format!("{path}[{index}]{config}"),
        None if field.starts_with("retry") || field.starts_with("timeout") => field.to_string(),
        None => format!("{path}[{index}]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<NodeTypeInfo> {
        (name == "email/send").then(|| NodeTypeInfo {
            config_schema: json!({
                "type": "object", "required": ["to", "subject"],
                "properties": {"to": {"type": "string"}, "subject": {"type": "string"}},
            }),
            branches: vec![],
        })
    }

    #[test]
    fn actions_become_a_chain_of_nodes() {
        let actions = [
            json!({"type": "send_email", "to": "a@example.com", "subject": "one"}),
            json!({"type": "send_email", "to": "b@example.com", "subject": "{{ input.x }}"}),
        ];
        let definition = compile(&actions, "actions", &NodeSettings::default(), &lookup).unwrap();
        let ids: Vec<&str> = definition.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["action_1", "action_2"]);
        assert_eq!(definition.edges.len(), 1);
        assert_eq!(definition.nodes[1].config["subject"], "{{ input.x }}");
    }

    #[test]
    fn problems_are_named_at_the_action() {
        let actions = [
            json!({"type": "send_email", "subject": "no recipient"}),
            json!({"type": "launch_rocket"}),
        ];
        let problems = compile(&actions, "actions", &NodeSettings::default(), &lookup).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["actions[1].type"]);
        let problems =
            compile(&actions[..1], "actions", &NodeSettings::default(), &lookup).unwrap_err();
        assert!(problems[0].path.starts_with("actions[0]"), "{problems:?}");
        assert_eq!(canonical("call_url"), Some("call_webhook"));
    }
}
