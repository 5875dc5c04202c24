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
            other => Err(Error::NotFound(format!("core has no node type {other}"))),
        }
    }
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
