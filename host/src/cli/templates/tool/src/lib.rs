//! The `{{name}}` tool plugin: one tool, `greet`, whose greeting comes from the
//! plugin's `greeting` setting (default "Hello").

use agenthost_sdk::serde_json::{Value, json};
use agenthost_sdk::{CallContext, Error, ToolPlugin, ToolSpec, config, log};

struct Plugin;

impl ToolPlugin for Plugin {
    fn tools() -> Vec<ToolSpec> {
        vec![ToolSpec::new(
            "greet",
            "Greets a person by name.",
            json!({
                "type": "object",
                "properties": { "name": { "type": "string", "minLength": 1 } },
                "required": ["name"],
                "additionalProperties": false
            }),
            json!({
                "type": "object",
                "properties": {
                    "greeting": { "type": "string" },
                    "version": { "type": "string" }
                }
            }),
        )]
    }

    fn invoke(ctx: &CallContext, tool: &str, input: Value) -> Result<Value, Error> {
        match tool {
            "greet" => {
                // The host validated `input` against the input schema already.
                let name = input["name"].as_str().unwrap_or_default();
                let greeting = config::get_as::<String>("greeting")?.unwrap_or("Hello".into());
                log::info(&format!("greeting {name}"));
                Ok(json!({ "greeting": format!("{greeting}, {name}!"), "version": ctx.version }))
            }
            other => Err(Error::NotFound(format!("no tool named {other}"))),
        }
    }
}

agenthost_sdk::export_tool_plugin!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use agenthost_sdk::testing::TestHost;

    #[test]
    fn greets_with_the_configured_greeting() {
        let _host = TestHost::new().setting("greeting", "\"Hi\"").install();
        let out = Plugin::invoke(&CallContext::for_tests("ws"), "greet", json!({"name": "Ada"}));
        assert_eq!(out.unwrap()["greeting"], "Hi, Ada!");
    }
}
