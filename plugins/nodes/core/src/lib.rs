//! The built-in workflow nodes. They only shape data and choose branches: the host has
//! already rendered every `{{ ... }}` in a node's config against the execution, so a
//! condition arrives here as a plain value and the plugin judges its truth.
//!
//! Input (every node type): `{"input": <execution input>, "nodes": {<id>: {"output": ..}}}`
//! holding the outputs of the predecessors whose edges fired into the node.

use agenthost_sdk::{CallContext, Error, NodeOutput, NodePlugin, NodeSpec};
use serde_json::{Value, json};

struct Core;

fn spec(node_type: &str, description: &str, config: Value, branches: &[&str]) -> NodeSpec {
    NodeSpec {
        node_type: node_type.into(),
        description: description.into(),
        config_schema: config,
        input_schema: json!({"type": "object"}),
        output_schema: json!({}),
        branches: branches.iter().map(|b| b.to_string()).collect(),
    }
}

/// Truth as users of n8n and JavaScript expect it: null, false, 0, "", "false", [] and
/// {} are false.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty() && s != "false",
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

impl NodePlugin for Core {
    fn nodes() -> Vec<NodeSpec> {
        vec![
            spec(
                "transform",
                "Outputs `config.value` (templates build JSON from the input and earlier nodes).",
                json!({"type": "object", "properties": {"value": {}}, "required": ["value"], "additionalProperties": false}),
                &[],
            ),
            spec(
                "condition",
                "Fires the `true` or `false` branch by the truth of `config.if`; outputs `{result}` plus `config.value` if given.",
                json!({"type": "object", "properties": {"if": {}, "value": {}}, "required": ["if"], "additionalProperties": false}),
                &["true", "false"],
            ),
            spec(
                "switch",
                "Fires the branch named `config.value` if it is one of `config.cases`, else `default`.",
                json!({"type": "object", "properties": {
                    "value": {"type": "string"},
                    "cases": {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": true}
                }, "required": ["value", "cases"], "additionalProperties": false}),
                &["*"],
            ),
            spec(
                "merge",
                "Waits for every live predecessor (the host does that) and outputs their outputs by node id.",
                json!({"type": "object", "additionalProperties": false}),
                &[],
            ),
            spec(
                "delay",
                "Waits `config.duration` (`500ms`, `30s`, `5m`, `2h`) or until `config.until` (RFC 3339), durably: the execution waits in the database, not in memory. Outputs `config.value` (default `{}`).",
                json!({"type": "object", "properties": {
                    "duration": {"type": "string"}, "until": {"type": "string"}, "value": {}
                }, "additionalProperties": false}),
                &[],
            ),
            spec(
                "approval",
                "Suspends the execution until people decide: `approvals` (default 1) keys of at least `role` (default `member`) approve, or one rejects. After `timeout` (optional), `on_timeout` decides: `approve`, `reject` (default) or `fail`.",
                json!({"type": "object", "properties": {
                    "message": {"type": "string"},
                    "role": {"enum": ["viewer", "member", "admin", "owner"]},
                    "approvals": {"type": "integer", "minimum": 1, "maximum": 100},
                    "timeout": {"type": "string"},
                    "on_timeout": {"enum": ["approve", "reject", "fail"]}
                }, "additionalProperties": false}),
                &["approved", "rejected"],
            ),
            spec(
                "output",
                "The execution's result: outputs `config.value`.",
                json!({"type": "object", "properties": {"value": {}}, "required": ["value"], "additionalProperties": false}),
                &[],
            ),
        ]
    }

    fn execute(
        _: &CallContext,
        node_type: &str,
        config: Value,
        input: Value,
    ) -> Result<NodeOutput, Error> {
        let all = |output| NodeOutput {
            output,
            branches: Vec::new(),
        };
        match node_type {
            "transform" | "output" => Ok(all(config["value"].clone())),
            "condition" => {
                let result = truthy(&config["if"]);
                let mut output = json!({ "result": result });
                if let Some(value) = config.get("value") {
                    output["value"] = value.clone();
                }
                Ok(NodeOutput {
                    output,
                    branches: vec![result.to_string()],
                })
            }
            "switch" => {
                let value = config["value"]
                    .as_str()
                    .ok_or_else(|| Error::invalid("config.value must be a string"))?;
                let cases = config["cases"]
                    .as_array()
                    .ok_or_else(|| Error::invalid("config.cases must be a list"))?;
                let branch = if cases.iter().any(|case| case == value) {
                    value
                } else {
                    "default"
                };
                Ok(NodeOutput {
                    output: json!({ "value": value, "branch": branch }),
                    branches: vec![branch.to_string()],
                })
            }
            "merge" => {
                let nodes = input["nodes"].as_object().cloned().unwrap_or_default();
                let merged: serde_json::Map<String, Value> = nodes
                    .into_iter()
                    .map(|(id, node)| (id, node["output"].clone()))
                    .collect();
                Ok(all(Value::Object(merged)))
            }
            "delay" => {
                let value = config.get("value").cloned().unwrap_or(json!({}));
                let wait = match (config.get("duration"), config.get("until")) {
                    (Some(duration), None) => {
                        let text = duration
                            .as_str()
                            .ok_or_else(|| Error::invalid("config.duration must be a string"))?;
                        json!({ "for_ms": duration_ms(text)?, "output": value })
                    }
                    (None, Some(until)) => json!({ "until": until, "output": value }),
                    _ => {
                        return Err(Error::invalid(
                            "a delay needs exactly one of config.duration and config.until",
                        ));
                    }
                };
                Ok(all(json!({ "$wait": wait })))
            }
            "approval" => {
                let timeout_ms = match config.get("timeout") {
                    Some(timeout) => {
                        Some(duration_ms(timeout.as_str().ok_or_else(|| {
                            Error::invalid("config.timeout must be a string")
                        })?)?)
                    }
                    None => None,
                };
                Ok(all(json!({ "$wait": { "approval": {
                    "message": config.get("message").cloned().unwrap_or(json!("")),
                    "role": config.get("role").cloned().unwrap_or(json!("member")),
                    "approvals": config.get("approvals").cloned().unwrap_or(json!(1)),
                    "timeout_ms": timeout_ms,
                    "on_timeout": config.get("on_timeout").cloned().unwrap_or(json!("reject")),
                }}})))
            }
            other => Err(Error::NotFound(format!("core has no node type {other}"))),
        }
    }
}

/// `500ms`, `30s`, `5m`, `2h` in milliseconds.
fn duration_ms(text: &str) -> Result<u64, Error> {
    let bad = || {
        Error::invalid(format!(
            "{text:?} is not a duration like 500ms, 30s, 5m or 2h"
        ))
    };
    let text = text.trim();
    let at = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let number: u64 = text[..at].parse().map_err(|_| bad())?;
    let unit = match &text[at..] {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(bad()),
    };
    number.checked_mul(unit).ok_or_else(bad)
}

agenthost_sdk::export_node_plugin!(Core);

#[cfg(test)]
mod tests {
    use super::*;

    fn run(node_type: &str, config: Value, input: Value) -> NodeOutput {
        Core::execute(&CallContext::for_tests("ws"), node_type, config, input).unwrap()
    }

    #[test]
    fn conditions_pick_a_branch_by_truth() {
        for (value, branch) in [
            (json!(true), "true"),
            (json!(0), "false"),
            (json!("false"), "false"),
            (json!([1]), "true"),
            (Value::Null, "false"),
        ] {
            let out = run("condition", json!({ "if": value }), json!({}));
            assert_eq!(out.branches, [branch], "{value}");
        }
    }

    #[test]
    fn delays_and_approvals_ask_the_host_to_wait() {
        let out = run("delay", json!({"duration": "2s"}), json!({}));
        assert_eq!(out.output, json!({"$wait": {"for_ms": 2000, "output": {}}}));
        assert!(
            Core::execute(
                &CallContext::for_tests("ws"),
                "delay",
                json!({"duration": "soon"}),
                json!({})
            )
            .is_err()
        );
        let out = run(
            "approval",
            json!({"role": "admin", "timeout": "1h"}),
            json!({}),
        );
        assert_eq!(out.output["$wait"]["approval"]["timeout_ms"], 3_600_000);
        assert_eq!(out.output["$wait"]["approval"]["on_timeout"], "reject");
    }

    #[test]
    fn switch_falls_back_to_default_and_merge_collects_outputs() {
        let out = run(
            "switch",
            json!({"value": "b", "cases": ["a", "b"]}),
            json!({}),
        );
        assert_eq!(out.branches, ["b"]);
        let out = run("switch", json!({"value": "z", "cases": ["a"]}), json!({}));
        assert_eq!(out.branches, ["default"]);
        let out = run(
            "merge",
            json!({}),
            json!({"nodes": {"x": {"output": 1}, "y": {"output": {"k": 2}}}}),
        );
        assert_eq!(out.output, json!({"x": 1, "y": {"k": 2}}));
    }
}
