//! Sends whatever message its `send` tool receives, to exercise the email capability.

use agenthost_sdk::email::{self, Message};
use agenthost_sdk::serde_json::{Value, json};
use agenthost_sdk::{CallContext, Error, ToolPlugin, ToolSpec, typed};

struct Mailer;

impl ToolPlugin for Mailer {
    fn tools() -> Vec<ToolSpec> {
        vec![ToolSpec::new(
            "send",
            "Sends the given message.",
            json!({"type": "object"}),
            json!({"type": "object", "properties": {"id": {"type": "string"}}}),
        )]
    }

    fn invoke(_: &CallContext, tool: &str, input: Value) -> Result<Value, Error> {
        match tool {
            "send" => typed(input, |message: Message| {
                Ok(json!({ "id": email::send(&message)? }))
            }),
            other => Err(Error::NotFound(format!("no tool named {other}"))),
        }
    }
}

agenthost_sdk::export_tool_plugin!(Mailer);
