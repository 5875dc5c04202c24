//! A node plugin: `threshold` compares a value with `config.limit` and fires the
//! `high` or `low` branch, passing the input through. The value is `config.value`
//! (in a workflow, usually a template such as `{{ input.amount }}`), else
//! `input.value`.

use agenthost_sdk::{CallContext, Error, NodeOutput, NodePlugin, NodeSpec};
use serde_json::{Value, json};

struct Threshold;

impl NodePlugin for Threshold {
    fn nodes() -> Vec<NodeSpec> {
        vec![NodeSpec {
            node_type: "threshold".into(),
            description: "Routes to `high` when the value (config.value, else input.value) >= config.limit, else `low`.".into(),
            config_schema: json!({"type": "object", "properties": {"limit": {"type": "number"}, "value": {"type": "number"}}, "required": ["limit"]}),
            input_schema: json!({"type": "object"}),
            output_schema: json!({"type": "object"}),
            branches: vec!["high".into(), "low".into()],
        }]
    }

    fn execute(
        _: &CallContext,
        node_type: &str,
        config: Value,
        input: Value,
    ) -> Result<NodeOutput, Error> {
        if node_type != "threshold" {
            return Err(Error::NotFound(format!("no node type {node_type}")));
        }
        let limit = config["limit"]
            .as_f64()
            .ok_or_else(|| Error::invalid("config.limit must be a number"))?;
        let value = config
            .get("value")
            .unwrap_or(&input["value"])
            .as_f64()
            .ok_or_else(|| Error::invalid("config.value (or input.value) must be a number"))?;
        let branch = if value >= limit { "high" } else { "low" };
        Ok(NodeOutput {
            output: input,
            branches: vec![branch.into()],
        })
    }
}

agenthost_sdk::export_node_plugin!(Threshold);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_the_limit() {
        let ctx = CallContext::for_tests("ws");
        let out = Threshold::execute(
            &ctx,
            "threshold",
            json!({"limit": 10}),
            json!({"value": 12}),
        )
        .unwrap();
        assert_eq!(out.branches, ["high"]);
        let out = Threshold::execute(&ctx, "threshold", json!({"limit": 10}), json!({"value": 3}))
            .unwrap();
        assert_eq!(out.branches, ["low"]);
    }
}
