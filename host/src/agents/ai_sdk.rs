//! The request body of the Vercel AI SDK's `useChat` (`DefaultChatTransport`):
//! `{id, messages: UIMessage[], trigger, messageId}`, read as a turn (docs/ai-sdk.md).
//!
//! The client sends the whole chat every time, but we hold the conversation already,
//! so only the end of `messages` is new: a user message (the input of a new turn), or
//! the assistant message whose tool parts carry approval answers (the paused turn goes
//! on). Earlier messages are used once, as the history of a conversation made for a
//! chat id we have not seen.

use serde::Deserialize;
use serde_json::{Value, json};

use super::approvals::ApprovalAnswer;
use crate::error::{ApiError, ApiResult};

const MAX_CHAT_ID: usize = 200;

/// Unknown fields are allowed: the transport merges the app's own `body` option in.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UiChatRequest {
    /// The chat's id, chosen by the client; it names our conversation. 1-200
    /// characters, no control characters, not only spaces.
    #[schema(
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub id: String,
    #[schema(min_items = 1)]
    pub messages: Vec<UiMessage>,
    /// `submit-message` or `regenerate-message`.
    #[serde(default)]
    #[schema(pattern = "^(submit-message|regenerate-message)$")]
    pub trigger: Option<String>,
    /// Read for completeness; the last message says what to do.
    #[serde(default, rename = "messageId")]
    pub message_id: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UiMessage {
    #[serde(default)]
    pub id: Option<String>,
    pub role: String,
    #[serde(default)]
    pub parts: Vec<Value>,
}

/// What a request asks for.
#[derive(Debug, PartialEq)]
pub enum UiTurn {
    /// A new user message, and the text messages before it.
    Message { text: String, history: Vec<Value> },
    /// Answers to the approvals the last assistant message asked for.
    Approvals(Vec<ApprovalAnswer>),
}

impl UiChatRequest {
    pub fn read(&self) -> ApiResult<UiTurn> {
        let id = self.id.trim();
        if id.is_empty() || id.chars().count() > MAX_CHAT_ID || id.chars().any(char::is_control) {
            return Err(ApiError::Invalid(format!(
                "the chat id must be 1-{MAX_CHAT_ID} characters without control characters"
            )));
        }
        if let Some(trigger) = &self.trigger
            && !matches!(trigger.as_str(), "submit-message" | "regenerate-message")
        {
            return Err(ApiError::Invalid(format!(
                "trigger {trigger:?} is not supported: send submit-message or regenerate-message"
            )));
        }
        let Some((last, earlier)) = self.messages.split_last() else {
            return Err(ApiError::Invalid("messages must not be empty".into()));
        };
        match last.role.as_str() {
            "user" => {
                let text = user_text(last)?;
                let history = earlier
                    .iter()
                    .filter(|m| matches!(m.role.as_str(), "user" | "assistant"))
                    .map(|m| (m, text_of(m)))
                    .filter(|(_, text)| !text.trim().is_empty())
                    .map(|(m, text)| json!({ "role": m.role, "content": text }))
                    .collect();
                Ok(UiTurn::Message { text, history })
            }
            "assistant" => {
                let answers = approval_answers(last)?;
                if answers.is_empty() {
                    return Err(ApiError::Invalid(
                        "the last message is the assistant's and answers no approval: \
                         end messages with the user's message"
                            .into(),
                    ));
                }
                Ok(UiTurn::Approvals(answers))
            }
            role => Err(ApiError::Invalid(format!(
                "the last message must be the user's or the assistant's, not {role:?}"
            ))),
        }
    }

    pub fn chat_id(&self) -> &str {
        self.id.trim()
    }
}

fn part_type(part: &Value) -> &str {
    part["type"].as_str().unwrap_or_default()
}

/// The text parts of a message, joined.
fn text_of(message: &UiMessage) -> String {
    message
        .parts
        .iter()
        .filter(|p| part_type(p) == "text")
        .filter_map(|p| p["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The new message's text. Files can't be passed on (the agent reads text); data
/// parts are the app's own and are left out.
fn user_text(message: &UiMessage) -> ApiResult<String> {
    if message.parts.iter().any(|p| part_type(p) == "file") {
        return Err(ApiError::Invalid(
            "file parts are not supported: send the message as text".into(),
        ));
    }
    Ok(text_of(message))
}

/// The tool parts (`tool-<name>` or `dynamic-tool`) whose approval the user answered.
fn approval_answers(message: &UiMessage) -> ApiResult<Vec<ApprovalAnswer>> {
    let mut answers = Vec::new();
    for part in &message.parts {
        let kind = part_type(part);
        let is_tool = kind.starts_with("tool-") || kind == "dynamic-tool";
        if !is_tool || part["state"] != "approval-responded" {
            continue;
        }
        let approval = &part["approval"];
        let (Some(id), Some(approved)) = (approval["id"].as_str(), approval["approved"].as_bool())
        else {
            return Err(ApiError::Invalid(format!(
                "the approval of tool call {} needs an id and approved (true or false)",
                part["toolCallId"]
            )));
        };
        answers.push(ApprovalAnswer {
            id: id.to_string(),
            approved,
            reason: approval["reason"].as_str().map(str::to_string),
        });
    }
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: Value) -> UiChatRequest {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn the_last_user_message_is_the_input_and_the_rest_history() {
        let turn = request(json!({
            "id": "chat-1", "trigger": "submit-message", "extra": "the app's own field",
            "messages": [
                { "id": "u1", "role": "user", "parts": [{ "type": "text", "text": "Hi" }] },
                { "id": "a1", "role": "assistant", "parts": [
                    { "type": "step-start" }, { "type": "text", "text": "Hello" },
                    { "type": "tool-roi", "toolCallId": "c", "state": "output-available" }] },
                { "id": "u2", "role": "user", "parts": [
                    { "type": "text", "text": "Q4?" }, { "type": "data-note", "data": 1 }] },
            ],
        }))
        .read()
        .unwrap();
        assert_eq!(
            turn,
            UiTurn::Message {
                text: "Q4?".into(),
                history: vec![
                    json!({ "role": "user", "content": "Hi" }),
                    json!({ "role": "assistant", "content": "Hello" }),
                ],
            }
        );
    }

    #[test]
    fn an_assistant_message_last_carries_approval_answers() {
        let turn = request(json!({
            "id": "chat-1", "trigger": "submit-message", "messageId": "msg-1",
            "messages": [
                { "id": "u1", "role": "user", "parts": [{ "type": "text", "text": "ROI?" }] },
                { "id": "msg-1", "role": "assistant", "parts": [
                    { "type": "tool-roi", "toolCallId": "c1", "state": "approval-responded",
                      "approval": { "id": "a-1", "approved": false, "reason": "no" } },
                    { "type": "dynamic-tool", "toolName": "x", "toolCallId": "c2",
                      "state": "approval-responded", "approval": { "id": "a-2", "approved": true } }] },
            ],
        }))
        .read()
        .unwrap();
        assert_eq!(
            turn,
            UiTurn::Approvals(vec![
                ApprovalAnswer {
                    id: "a-1".into(),
                    approved: false,
                    reason: Some("no".into())
                },
                ApprovalAnswer {
                    id: "a-2".into(),
                    approved: true,
                    reason: None
                },
            ])
        );
    }

    #[test]
    fn requests_that_ask_for_nothing_are_refused() {
        let refused = |body: Value| request(body).read().unwrap_err().to_string();
        let assistant_only = json!({ "id": "c", "messages": [
            { "role": "assistant", "parts": [{ "type": "text", "text": "hi" }] }] });
        assert!(refused(assistant_only).contains("answers no approval"));
        assert!(refused(json!({ "id": "c", "messages": [] })).contains("must not be empty"));
        let file = json!({ "id": "c", "messages": [{ "role": "user", "parts": [
            { "type": "file", "url": "data:,x", "mediaType": "text/plain" }] }] });
        assert!(refused(file).contains("file parts"));
        let no_id = json!({ "id": " ", "messages": [{ "role": "user", "parts": [] }] });
        assert!(refused(no_id).contains("chat id"));
        let trigger = json!({ "id": "c", "trigger": "resume-stream",
                              "messages": [{ "role": "user", "parts": [] }] });
        assert!(refused(trigger).contains("resume-stream"));
    }
}
