//! The `chat.completion` object `POST /v1/chat/completions` answers with (built by
//! `agents::openai_compat::completion`), described for the OpenAPI document.

#![allow(dead_code)]

use utoipa::ToSchema;

use crate::http::agents::schema::TokenUsage;

/// An OpenAI `chat.completion`: one choice, the agent's answer.
#[derive(ToSchema)]
pub struct ChatCompletion {
    /// `chatcmpl-` and the turn's id.
    pub id: String,
    /// Always `chat.completion`.
    pub object: String,
    /// Unix seconds.
    pub created: i64,
    /// The agent's slug.
    pub model: String,
    #[schema(min_items = 1, max_items = 1)]
    pub choices: Vec<ChatCompletionChoice>,
    pub usage: TokenUsage,
    /// Always null.
    pub system_fingerprint: Option<String>,
}

#[derive(ToSchema)]
pub struct ChatCompletionChoice {
    pub index: i64,
    pub message: ChatCompletionMessage,
    /// Always null.
    pub logprobs: Option<String>,
    /// `stop`, or `length` when the agent ran out of steps.
    pub finish_reason: String,
}

#[derive(ToSchema)]
pub struct ChatCompletionMessage {
    /// Always `assistant`.
    pub role: String,
    pub content: Option<String>,
    /// Always null.
    pub refusal: Option<String>,
}

/// `GET /v1/models`: OpenAI's model list, one model per enabled agent.
#[derive(ToSchema)]
#[schema(as = OpenAiModelList)]
pub struct ModelList {
    /// Always `list`.
    pub object: String,
    pub data: Vec<super::Model>,
}
