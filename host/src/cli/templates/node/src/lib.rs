//! The `{{name}}` node plugin: one node type, `threshold`, that compares
//! `input.value` with `config.limit` and fires the `high` or `low` branch, passing
//! the input through.

use agenthost_sdk::serde_json::{Value, json};
use agenthost_sdk::{CallContext, Error, NodeOutput, NodePlugin, NodeSpec};

struct Plugin;

impl NodePlugin for Plugin {
    fn nodes() -> Vec<NodeSpec> {
        vec![NodeSpec {
            node_type: "threshold".into(),
            description: "Routes to `high` when input.value >= config.limit, else `low`.".into(),
            config_schema: json!({
                "type": "object",
                "properties": { "limit": { "type": "number" } },
                "required": ["limit"]
            }),
            input_schema: json!({ "type": "object" }),
            output_schema: json!({ "type": "object" }),
            branches: vec!["high".into(), "low".into()],
        }]
    }

    fn execute(
        _ctx: &CallContext,
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
        let value = input["value"]
            .as_f64()
            .ok_or_else(|| Error::invalid("input.value must be a number"))?;
        let branch = if value >= limit { "high" } else { "low" };
        Ok(NodeOutput {
            output: input,
            branches: vec![branch.into()],
        })
    }
}

agenthost_sdk::export_node_plugin!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_the_limit() {
        let ctx = CallContext::for_tests("ws");
        let high = Plugin::execute(&ctx, "threshold", json!({"limit": 10}), json!({"value": 12}));
        assert_eq!(high.unwrap().branches, ["high"]);
        let low = Plugin::execute(&ctx, "threshold", json!({"limit": 10}), json!({"value": 3}));
        assert_eq!(low.unwrap().branches, ["low"]);
    }
}
