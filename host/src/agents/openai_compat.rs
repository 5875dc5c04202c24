//! Agents in the OpenAI Chat Completions format (docs/chat.md, "OpenAI-compatible
//! endpoint"): the request body, the `chat.completion` answer and the
//! `chat.completion.chunk` stream. The turn itself is the chat service's; this module
//! only translates.
//!
//! Our tools run on our side, so their calls are never sent as `tool_calls`: a client
//! would take those as calls it has to execute and answer.

use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::chat::TurnResult;
use super::stream::ChatEvent;

/// The fields of a Chat Completions request we use. Unknown fields are ignored, as
/// OpenAI's own API does with fields a model doesn't support.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CompletionRequest {
    /// An agent's slug (or id).
    pub model: String,
    /// The conversation so far; the last one is the user's new message.
    #[schema(min_items = 1)]
    pub messages: Vec<Message>,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    /// Overrides the agent's temperature for this turn (0 to 2).
    #[schema(minimum = 0.0, maximum = 2.0)]
    pub temperature: Option<f32>,
    /// Must be 1 when given: an agent gives one answer.
    #[schema(minimum = 1, maximum = 1)]
    pub n: Option<u32>,
    /// `metadata.conversation_id` continues a conversation, like `X-Conversation-Id`.
    pub metadata: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: Option<Content>,
}

/// A message's content: text, or an array of parts of which we read the text ones.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Part {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
}

impl Message {
    /// The text of the message; an error names a part we can't pass on (an image...).
    fn text(&self) -> Result<String, String> {
        match &self.content {
            None => Ok(String::new()),
            Some(Content::Text(text)) => Ok(text.clone()),
            Some(Content::Parts(parts)) => {
                let mut text = String::new();
                for part in parts {
                    match (part.kind.as_str(), &part.text) {
                        ("text", Some(t)) => text.push_str(t),
                        (kind, _) => {
                            return Err(format!(
                                "content parts of type {kind:?} are not supported; send text"
                            ));
                        }
                    }
                }
                Ok(text)
            }
        }
    }
}

/// A request's messages read as a turn: the last message (the user's, the new one) and
/// the user and assistant messages before it as plain `{role, content}` history.
/// System and developer messages are left out (the agent's system prompt is used), and
/// so are tool messages and tool calls: the client never ran any of our tools.
pub fn split_messages(messages: &[Message]) -> Result<(String, Vec<Value>), String> {
    let Some((last, earlier)) = messages.split_last() else {
        return Err("messages must not be empty".into());
    };
    if last.role != "user" {
        return Err(format!(
            "the last message must be the user's, not {:?}",
            last.role
        ));
    }
    let message = last.text()?;
    let mut history = Vec::new();
    for earlier in earlier {
        if !matches!(earlier.role.as_str(), "user" | "assistant") {
            continue;
        }
        let text = earlier.text()?;
        if !text.trim().is_empty() {
            history.push(json!({ "role": earlier.role, "content": text }));
        }
    }
    Ok((message, history))
}

/// Record history the client sent as the start of a new conversation. The messages
/// belong to no turn (`turn_id` is null): no turn of ours produced them.
pub async fn seed_history(
    pool: &PgPool,
    conversation: Uuid,
    history: &[Value],
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO messages (conversation_id, role, content) \
         SELECT $1, m->>'role', m->>'content' \
         FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS e(m, n) ORDER BY n",
    )
    .bind(conversation)
    .bind(crate::nul::replace_in_json(Value::Array(history.to_vec())))
    .execute(pool)
    .await?;
    Ok(())
}

pub fn completion_id(turn: Uuid) -> String {
    format!("chatcmpl-{}", turn.simple())
}

/// `step_limit` ends the turn like a model that ran out of tokens: `length`.
fn finish_reason(stopped: Option<&str>) -> &'static str {
    if stopped.is_some() { "length" } else { "stop" }
}

/// The `chat.completion` object of a finished turn.
pub fn completion(result: &TurnResult, model: &str, created: i64) -> Value {
    json!({
        "id": completion_id(result.turn_id),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": result.message["content"],
                "refusal": null,
            },
            "logprobs": null,
            "finish_reason": finish_reason(result.stopped),
        }],
        "usage": result.usage,
        "system_fingerprint": null,
    })
}

/// Turns a turn's events into `chat.completion.chunk` objects: the role first, then
/// content deltas, then the finish reason, then (with `include_usage`) a chunk with
/// empty `choices` and the usage. Tool events send nothing (see the module doc); text
/// of a later step is set off from an earlier step's by a blank line.
#[derive(Debug)]
pub struct ChunkEncoder {
    id: String,
    model: String,
    created: i64,
    include_usage: bool,
    /// Text was sent in an earlier step / in the current one.
    text_before: bool,
    text_in_step: bool,
}

impl ChunkEncoder {
    pub fn new(turn: Uuid, model: &str, created: i64, include_usage: bool) -> Self {
        ChunkEncoder {
            id: completion_id(turn),
            model: model.to_string(),
            created,
            include_usage,
            text_before: false,
            text_in_step: false,
        }
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Value {
        let mut chunk = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "system_fingerprint": null,
            "choices": [{ "index": 0, "delta": delta, "logprobs": null,
                          "finish_reason": finish_reason }],
        });
        // OpenAI sends `usage: null` on every chunk but the last when usage is asked for.
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        chunk
    }

    pub fn encode(&mut self, event: ChatEvent) -> Vec<Value> {
        match event {
            ChatEvent::Start { .. } => {
                vec![self.chunk(json!({ "role": "assistant", "content": "" }), None)]
            }
            ChatEvent::StepStart => {
                self.text_before |= self.text_in_step;
                self.text_in_step = false;
                Vec::new()
            }
            ChatEvent::TextDelta(delta) => {
                let delta = if !self.text_in_step && self.text_before {
                    format!("\n\n{delta}")
                } else {
                    delta
                };
                self.text_in_step = true;
                vec![self.chunk(json!({ "content": delta }), None)]
            }
            ChatEvent::Finish { reason, usage } => {
                let reason = if reason == "length" { "length" } else { "stop" };
                let mut chunks = vec![self.chunk(json!({}), Some(reason))];
                if self.include_usage {
                    let mut last = self.chunk(json!({}), None);
                    last["choices"] = json!([]);
                    last["usage"] = usage;
                    chunks.push(last);
                }
                chunks
            }
            // The client reads this as an API error (the OpenAI libraries raise it).
            ChatEvent::Error(message) => vec![json!({
                "error": { "message": message, "type": "server_error", "param": null,
                           "code": "turn_failed" },
            })],
            ChatEvent::ToolInput { .. }
            | ChatEvent::ToolOutput { .. }
            | ChatEvent::ToolError { .. }
            | ChatEvent::ToolApprovalRequest { .. }
            | ChatEvent::ToolDenied { .. }
            | ChatEvent::StepFinish => Vec::new(),
        }
    }
}

/// OpenAI's error `type` for a status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        s if s >= 500 => "server_error",
        _ => "invalid_request_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(value: Value) -> Vec<Message> {
        serde_json::from_value(value).expect("messages")
    }

    #[test]
    fn the_last_user_message_is_new_and_the_rest_is_history() {
        let (message, history) = split_messages(&messages(json!([
            { "role": "system", "content": "You are a pirate" },
            { "role": "user", "content": "Hi" },
            { "role": "assistant", "content": null, "tool_calls": [] },
            { "role": "tool", "tool_call_id": "x", "content": "{}" },
            { "role": "assistant", "content": "Hello" },
            { "role": "user", "content": [{ "type": "text", "text": "Q4 " },
                                          { "type": "text", "text": "revenue?" }] },
        ])))
        .expect("split");
        assert_eq!(message, "Q4 revenue?");
        assert_eq!(
            history,
            [
                json!({ "role": "user", "content": "Hi" }),
                json!({ "role": "assistant", "content": "Hello" })
            ]
        );
    }

    #[test]
    fn requests_without_a_last_user_text_are_refused() {
        assert!(split_messages(&[]).is_err());
        let last_assistant = messages(json!([{ "role": "assistant", "content": "Hi" }]));
        assert!(split_messages(&last_assistant).is_err());
        let image = messages(json!([{ "role": "user", "content": [
            { "type": "image_url", "image_url": { "url": "data:," } }] }]));
        let error = split_messages(&image).expect_err("image");
        assert!(error.contains("image_url"), "{error}");
    }

    #[test]
    fn unknown_request_fields_are_ignored() {
        let request: CompletionRequest = serde_json::from_value(json!({
            "model": "dexter", "messages": [{ "role": "user", "content": "Hi", "name": "ana" }],
            "stream": true, "stream_options": { "include_usage": true },
            "max_tokens": 10, "presence_penalty": 0.5, "seed": 1,
        }))
        .expect("request");
        assert!(request.stream);
        assert!(request.stream_options.unwrap_or_default().include_usage);
    }

    #[test]
    fn chunks_carry_role_text_finish_and_usage_but_no_tool_calls() {
        let mut encoder = ChunkEncoder::new(Uuid::nil(), "dexter", 7, true);
        let events = [
            ChatEvent::Start {
                message_id: "m".into(),
                conversation_id: "c".into(),
                turn_id: "t".into(),
            },
            ChatEvent::StepStart,
            ChatEvent::TextDelta("Let me look.".into()),
            ChatEvent::ToolInput {
                call_id: "call_1".into(),
                tool: "revenue_analysis".into(),
                input: json!({}),
            },
            ChatEvent::ToolOutput {
                call_id: "call_1".into(),
                output: json!({ "total": 1 }),
            },
            ChatEvent::StepFinish,
            ChatEvent::StepStart,
            ChatEvent::TextDelta("Q4".into()),
            ChatEvent::TextDelta(" was good".into()),
            ChatEvent::StepFinish,
            ChatEvent::Finish {
                reason: "stop".into(),
                usage: json!({ "prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5 }),
            },
        ];
        let chunks: Vec<Value> = events.into_iter().flat_map(|e| encoder.encode(e)).collect();
        assert!(
            chunks
                .iter()
                .all(|c| c["object"] == "chat.completion.chunk")
        );
        assert!(
            !Value::Array(chunks.clone())
                .to_string()
                .contains("tool_calls")
        );
        let deltas: Vec<&Value> = chunks.iter().map(|c| &c["choices"][0]["delta"]).collect();
        assert_eq!(deltas[0]["role"], "assistant");
        let text: String = deltas
            .iter()
            .filter_map(|d| d["content"].as_str())
            .collect();
        assert_eq!(text, "Let me look.\n\nQ4 was good");
        let finish = &chunks[chunks.len() - 2];
        assert_eq!(finish["choices"][0]["finish_reason"], "stop");
        assert!(finish["usage"].is_null());
        let usage = &chunks[chunks.len() - 1];
        assert_eq!(usage["choices"], json!([]));
        assert_eq!(usage["usage"]["total_tokens"], 5);
    }
}
