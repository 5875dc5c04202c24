//! The `agent/turn` workflow node: one chat turn of a workspace agent, through the
//! host's `agents` interface (the same tool loop and record as the chat API). The
//! bundled manifest asks for every agent (`*`); an admin can grant fewer.

use agenthost_sdk::{CallContext, Error, NodeOutput, NodePlugin, NodeSpec, agents};
use serde_json::{Value, json};

struct Agent;

impl NodePlugin for Agent {
    fn nodes() -> Vec<NodeSpec> {
        vec![NodeSpec {
            node_type: "turn".into(),
            description: "Asks `config.agent` (slug) `config.message`, continuing `config.conversation_id` if given; outputs `{text, conversation_id, turn_id, tool_calls, usage, steps}`.".into(),
            config_schema: json!({"type": "object", "properties": {
                "agent": {"type": "string", "minLength": 1},
                "message": {"type": "string", "minLength": 1},
                "conversation_id": {"type": "string"}
            }, "required": ["agent", "message"], "additionalProperties": false}),
            input_schema: json!({"type": "object"}),
            output_schema: json!({"type": "object", "properties": {
                "text": {"type": "string"}, "conversation_id": {"type": "string"}
            }}),
            branches: Vec::new(),
        }]
    }

    fn execute(
        _: &CallContext,
        node_type: &str,
        config: Value,
        _input: Value,
    ) -> Result<NodeOutput, Error> {
        if node_type != "turn" {
            return Err(Error::NotFound(format!(
                "agent has no node type {node_type}"
            )));
        }
        let text = |key: &str| config[key].as_str().filter(|s| !s.is_empty());
        let agent = text("agent").ok_or_else(|| Error::invalid("config.agent is required"))?;
        let message =
            text("message").ok_or_else(|| Error::invalid("config.message is required"))?;
        let turn = agents::run_turn(agent, message, text("conversation_id"))?;
        let mut output = turn.raw;
        output["text"] = json!(turn.text);
        Ok(NodeOutput {
            output,
            branches: Vec::new(),
        })
    }
}

agenthost_sdk::export_node_plugin!(Agent);

#[cfg(test)]
mod tests {
    use agenthost_sdk::testing::TestHost;

    use super::*;

    #[test]
    fn a_turn_outputs_the_agents_answer() {
        let _host = TestHost::new()
            .agent(|agent, message, conversation| {
                assert_eq!(conversation, None);
                Ok(json!({"text": format!("{agent}: {message}"), "conversation_id": "c1", "steps": 1}))
            })
            .install();
        let out = Agent::execute(
            &CallContext::for_tests("ws"),
            "turn",
            json!({"agent": "cassie", "message": "hi"}),
            json!({}),
        )
        .unwrap();
        assert_eq!(out.output["text"], "cassie: hi");
        assert_eq!(out.output["conversation_id"], "c1");
    }

    #[test]
    fn without_a_grant_the_node_fails_with_the_hosts_refusal() {
        let _host = TestHost::new().install();
        let error = Agent::execute(
            &CallContext::for_tests("ws"),
            "turn",
            json!({"agent": "dexter", "message": "hi"}),
            json!({}),
        )
        .unwrap_err();
        assert!(matches!(error, Error::Denied(_)), "{error:?}");
    }
}
