//! Chat completions and embeddings through the host's LLM provider, with the models
//! your plugin version was granted.
//!
//! ```
//! use agenthost_sdk::llm::{self, ChatRequest, ChatResponse, Message};
//! use agenthost_sdk::testing::TestHost;
//!
//! // In unit tests, a handler plays the model.
//! let _host = TestHost::new()
//!     .llm_chat(|request| Ok(ChatResponse::text(&format!("you said: {}", request.messages[0].content))))
//!     .install();
//!
//! let answer = llm::chat(&ChatRequest::new("gpt-4o-mini", vec![Message::user("hi")])).unwrap();
//! assert_eq!(answer.content.as_deref(), Some("you said: hi"));
//! ```

use serde::{Deserialize, Serialize};

use crate::Error;

/// A tool call the model asked for; `arguments` is JSON text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ToolCall {
    /// The provider's id of the call.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments as JSON text.
    pub arguments: String,
}

/// One message of a conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Message {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text.
    pub content: String,
    /// Tool calls of an `assistant` message.
    pub tool_calls: Vec<ToolCall>,
    /// For `tool` messages: the call answered.
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A `system` message.
    pub fn system(content: &str) -> Self {
        Self::with_role("system", content)
    }

    /// A `user` message.
    pub fn user(content: &str) -> Self {
        Self::with_role("user", content)
    }

    fn with_role(role: &str, content: &str) -> Self {
        Message {
            role: role.into(),
            content: content.into(),
            ..Message::default()
        }
    }
}

/// A tool the model may call; `parameters` is a JSON Schema as text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tool {
    /// Its name.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema of its arguments, as text.
    pub parameters: String,
}

/// A chat completion request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChatRequest {
    /// A granted model.
    pub model: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    pub tools: Vec<Tool>,
    /// Ask for a JSON object as the answer.
    pub json_response: bool,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Most tokens to generate.
    pub max_tokens: Option<u32>,
}

impl ChatRequest {
    /// A request with defaults for everything but the model and messages.
    pub fn new(model: &str, messages: Vec<Message>) -> Self {
        ChatRequest {
            model: model.into(),
            messages,
            ..ChatRequest::default()
        }
    }
}

/// Tokens a call used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Completion tokens.
    pub completion_tokens: u32,
}

/// The model's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChatResponse {
    /// Text of the answer, if any.
    pub content: Option<String>,
    /// Tools the model wants called.
    pub tool_calls: Vec<ToolCall>,
    /// `stop`, `length`, `tool_calls`...
    pub finish_reason: String,
    /// The model that answered.
    pub model: String,
    /// Tokens used.
    pub usage: Usage,
}

impl ChatResponse {
    /// A plain text answer (for tests).
    pub fn text(content: &str) -> Self {
        ChatResponse {
            content: Some(content.into()),
            finish_reason: "stop".into(),
            ..ChatResponse::default()
        }
    }
}

/// One chat completion.
pub fn chat(request: &ChatRequest) -> Result<ChatResponse, Error> {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::__private::bindings::agenthost::plugin::llm as raw;
        let call = |c: &ToolCall| raw::ToolCall {
            id: c.id.clone(),
            name: c.name.clone(),
            arguments: c.arguments.clone(),
        };
        let raw_request = raw::ChatRequest {
            model: request.model.clone(),
            messages: request
                .messages
                .iter()
                .map(|m| raw::Message {
                    role: m.role.clone(),
                    content: m.content.clone(),
                    tool_calls: m.tool_calls.iter().map(call).collect(),
                    tool_call_id: m.tool_call_id.clone(),
                })
                .collect(),
            tools: request
                .tools
                .iter()
                .map(|t| raw::Tool {
                    name: t.name.clone(),
                    description: t.description.clone(),
                    parameters: t.parameters.clone(),
                })
                .collect(),
            json_response: request.json_response,
            temperature: request.temperature,
            max_tokens: request.max_tokens,
        };
        let response = raw::chat(&raw_request).map_err(Error::from)?;
        Ok(ChatResponse {
            content: response.content,
            tool_calls: response
                .tool_calls
                .into_iter()
                .map(|c| ToolCall {
                    id: c.id,
                    name: c.name,
                    arguments: c.arguments,
                })
                .collect(),
            finish_reason: response.finish_reason,
            model: response.model,
            usage: Usage {
                prompt_tokens: response.usage.prompt_tokens,
                completion_tokens: response.usage.completion_tokens,
            },
        })
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::testing::run_chat(request)
    }
}

/// Embeddings of `texts`, in order.
pub fn embed(model: &str, texts: &[String]) -> Result<Vec<Vec<f32>>, Error> {
    #[cfg(target_arch = "wasm32")]
    {
        crate::__private::bindings::agenthost::plugin::llm::embed(model, texts).map_err(Error::from)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::testing::run_embed(model, texts)
    }
}
