//! The example tool plugin: one tool, `greet`, whose greeting comes from the plugin's
//! `greeting` setting (default "Hello"). It depends on nothing but `agenthost-sdk`.

use agenthost_sdk::serde::Deserialize;
use agenthost_sdk::serde_json::{Value, json};
use agenthost_sdk::{CallContext, Error, ToolPlugin, ToolSpec, config, log, typed};

#[derive(Deserialize)]
#[serde(crate = "agenthost_sdk::serde")]
struct GreetInput {
    name: String,
}

struct Hello;

impl ToolPlugin for Hello {
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
            "greet" => typed(input, |GreetInput { name }| {
                let greeting = config::get_as::<String>("greeting")?.unwrap_or("Hello".into());
                log::info(&format!("greeting {name}"));
                Ok(json!({ "greeting": format!("{greeting}, {name}!"), "version": ctx.version }))
            }),
            other => Err(Error::NotFound(format!("no tool named {other}"))),
        }
    }
}

agenthost_sdk::export_tool_plugin!(Hello);

#[cfg(test)]
mod tests {
    use super::*;
    use agenthost_sdk::testing::TestHost;

    #[test]
    fn greets_with_the_configured_greeting() {
        let _host = TestHost::new().setting("greeting", "\"Hi\"").install();
        let out = Hello::invoke(
            &CallContext::for_tests("ws"),
            "greet",
            json!({"name": "Ada"}),
        );
        assert_eq!(out.unwrap()["greeting"], "Hi, Ada!");
    }
}
