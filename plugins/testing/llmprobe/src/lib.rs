//! Passes its input to the llm capability: `chat` takes a chat request, `embed` takes
//! `{"model", "texts"}`.

use agenthost_sdk::llm::{self, ChatRequest};
use agenthost_sdk::serde_json::{Value, json};
use agenthost_sdk::{CallContext, Error, ToolPlugin, ToolSpec, typed};

struct LlmProbe;

#[derive(agenthost_sdk::serde::Deserialize)]
#[serde(crate = "agenthost_sdk::serde")]
struct EmbedInput {
    model: String,
    texts: Vec<String>,
}

impl ToolPlugin for LlmProbe {
    fn tools() -> Vec<ToolSpec> {
        let any = json!({"type": "object"});
        vec![
            ToolSpec::new("chat", "One chat completion.", any.clone(), any.clone()),
            ToolSpec::new("embed", "Embeddings of texts.", any.clone(), any),
        ]
    }

    fn invoke(_: &CallContext, tool: &str, input: Value) -> Result<Value, Error> {
        match tool {
            "chat" => typed(input, |request: ChatRequest| {
                let response = llm::chat(&request)?;
                Ok(json!(response))
            }),
            "embed" => typed(input, |input: EmbedInput| {
                Ok(json!({ "vectors": llm::embed(&input.model, &input.texts)? }))
            }),
            other => Err(Error::NotFound(format!("no tool named {other}"))),
        }
    }
}

agenthost_sdk::export_tool_plugin!(LlmProbe);
