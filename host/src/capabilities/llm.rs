//! `agenthost:plugin/llm`: chat and embeddings for plugins, limited to the granted
//! models and daily token budget, recorded per workspace and plugin.

use std::sync::Arc;

use serde_json::{Value, json};
use wasmtime::component::{HasSelf, Linker};

use crate::llm::{Llm, LlmError, UsageKey};
use crate::registry::manifest::LlmCapability;
use crate::runtime::bindings::Error;
use crate::runtime::bindings::agenthost::plugin::llm::{
    self as wit, ChatRequest, ChatResponse, Message, ToolCall, Usage,
};

#[derive(Debug, Clone, Default)]
pub struct LlmCtx {
    pub plugin: String,
    pub workspace: Option<uuid::Uuid>,
    pub grant: Option<LlmCapability>,
    pub llm: Option<Arc<Llm>>,
}

pub trait LlmView {
    fn llm(&mut self) -> &mut LlmCtx;
}

pub fn add_to_linker<T: LlmView + Send + 'static>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    wit::add_to_linker::<T, HasSelf<LlmCtx>>(linker, |state| state.llm())?;
    Ok(())
}

impl LlmCtx {
    /// The service, once the model is granted and the budget not spent.
    async fn admit(&self, model: &str) -> Result<&Llm, Error> {
        let grant = self.grant.as_ref().ok_or_else(|| {
            Error::Denied("the llm capability is not granted to this plugin version".into())
        })?;
        if !grant.models.iter().any(|m| m == model) {
            return Err(Error::Denied(format!(
                "model {model:?} is not granted to this plugin version (granted: {})",
                grant.models.join(", ")
            )));
        }
        let llm = self
            .llm
            .as_deref()
            .ok_or_else(|| Error::Unavailable("no LLM service".into()))?;
        if let Some(budget) = grant.daily_token_budget {
            let used = llm.tokens_used_today(&self.plugin).await.map_err(|e| {
                Error::Unavailable(crate::error::logged("checking the token budget failed", &e))
            })?;
            if u64::try_from(used).unwrap_or(0) >= budget {
                return Err(Error::Denied(format!(
                    "the daily token budget of {budget} tokens is spent ({used} used today, UTC)"
                )));
            }
        }
        Ok(llm)
    }

    fn usage_key(&self) -> UsageKey {
        UsageKey {
            workspace: self.workspace,
            plugin: Some(self.plugin.clone()),
            agent: None,
        }
    }
}

impl wit::Host for LlmCtx {
    async fn chat(&mut self, request: ChatRequest) -> Result<ChatResponse, Error> {
        let llm = self.admit(&request.model).await?;
        let body = request_body(&request)?;
        let response = llm.chat(&self.usage_key(), body).await.map_err(to_error)?;
        Ok(response_record(&response, &request.model))
    }

    async fn embed(&mut self, model: String, texts: Vec<String>) -> Result<Vec<Vec<f32>>, Error> {
        let llm = self.admit(&model).await?;
        llm.embed(&self.usage_key(), &model, &texts)
            .await
            .map_err(to_error)
    }
}

fn to_error(error: LlmError) -> Error {
    match error {
        LlmError::Unavailable(message) => Error::Unavailable(message),
        LlmError::Rejected(message) => Error::Invalid(message),
        LlmError::BudgetExceeded(exceeded) => Error::Denied(exceeded.to_string()),
        busy @ LlmError::Busy { .. } => Error::Unavailable(busy.to_string()),
        LlmError::TooLong(message) => Error::Invalid(message),
    }
}

/// The OpenAI wire format of a plugin's request.
fn request_body(request: &ChatRequest) -> Result<Value, Error> {
    let messages: Vec<Value> = request.messages.iter().map(message_json).collect();
    let mut body = json!({ "model": request.model, "messages": messages });
    if !request.tools.is_empty() {
        let tools = request
            .tools
            .iter()
            .map(|tool| {
                let parameters: Value = serde_json::from_str(&tool.parameters).map_err(|e| {
                    Error::Invalid(format!("tool {}: parameters are not JSON: {e}", tool.name))
                })?;
                Ok(json!({ "type": "function", "function": {
                    "name": tool.name, "description": tool.description, "parameters": parameters,
                }}))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        body["tools"] = Value::Array(tools);
    }
    if request.json_response {
        body["response_format"] = json!({ "type": "json_object" });
    }
    if let Some(temperature) = request.temperature {
        body["temperature"] = json!(temperature);
    }
    if let Some(max_tokens) = request.max_tokens {
        body["max_tokens"] = json!(max_tokens);
    }
    Ok(body)
}

fn message_json(message: &Message) -> Value {
    let mut value = json!({ "role": message.role, "content": message.content });
    if !message.tool_calls.is_empty() {
        value["tool_calls"] = message
            .tool_calls
            .iter()
            .map(|call| {
                json!({ "id": call.id, "type": "function",
                "function": { "name": call.name, "arguments": call.arguments } })
            })
            .collect();
    }
    if let Some(id) = &message.tool_call_id {
        value["tool_call_id"] = json!(id);
    }
    value
}

fn response_record(response: &Value, requested_model: &str) -> ChatResponse {
    let choice = &response["choices"][0];
    let message = &choice["message"];
    let tool_calls = message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|call| ToolCall {
            id: text(&call["id"]),
            name: text(&call["function"]["name"]),
            arguments: text(&call["function"]["arguments"]),
        })
        .collect();
    let count = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
    ChatResponse {
        content: message["content"].as_str().map(str::to_string),
        tool_calls,
        finish_reason: text(&choice["finish_reason"]),
        model: response["model"]
            .as_str()
            .unwrap_or(requested_model)
            .to_string(),
        usage: Usage {
            prompt_tokens: count(&response["usage"]["prompt_tokens"]),
            completion_tokens: count(&response["usage"]["completion_tokens"]),
        },
    }
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}
