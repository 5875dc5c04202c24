//! What a chat turn reports while it runs, and its encoding as the Vercel AI SDK UI
//! message stream protocol v1 (docs/chat.md): SSE `data:` lines of JSON parts, ended by
//! `data: [DONE]`, with the header `x-vercel-ai-ui-message-stream: v1`.

use serde_json::{Value, json};

/// One thing that happened in a turn, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    Start {
        message_id: String,
        conversation_id: String,
        turn_id: String,
    },
    StepStart,
    TextDelta(String),
    /// The model asked for a tool; `input` is its parsed arguments.
    ToolInput {
        call_id: String,
        tool: String,
        input: Value,
    },
    ToolOutput {
        call_id: String,
        output: Value,
    },
    ToolError {
        call_id: String,
        error: String,
    },
    StepFinish,
    Finish {
        reason: String,
        usage: Value,
    },
    Error(String),
}

/// Turns events into protocol parts; it tracks the open text part of a step, since
/// the protocol brackets text with `text-start` / `text-end`.
#[derive(Debug, Default)]
pub struct UiMessageEncoder {
    message_id: String,
    open_text: Option<String>,
    texts: usize,
}

impl UiMessageEncoder {
    pub fn encode(&mut self, event: ChatEvent) -> Vec<Value> {
        let mut parts = Vec::new();
        match event {
            ChatEvent::Start {
                message_id,
                conversation_id,
                turn_id,
            } => {
                self.message_id = message_id.clone();
                parts.push(json!({
                    "type": "start", "messageId": message_id,
                    "messageMetadata": { "conversationId": conversation_id, "turnId": turn_id },
                }));
            }
            ChatEvent::StepStart => parts.push(json!({ "type": "start-step" })),
            ChatEvent::TextDelta(delta) => {
                let id = match &self.open_text {
                    Some(id) => id.clone(),
                    None => {
                        self.texts += 1;
                        let id = format!("{}-text-{}", self.message_id, self.texts);
                        parts.push(json!({ "type": "text-start", "id": id }));
                        self.open_text = Some(id.clone());
                        id
                    }
                };
                parts.push(json!({ "type": "text-delta", "id": id, "delta": delta }));
            }
            ChatEvent::ToolInput {
                call_id,
                tool,
                input,
            } => {
                self.close_text(&mut parts);
                parts.push(
                    json!({ "type": "tool-input-start", "toolCallId": call_id, "toolName": tool }),
                );
                parts.push(json!({
                    "type": "tool-input-available", "toolCallId": call_id, "toolName": tool, "input": input,
                }));
            }
            ChatEvent::ToolOutput { call_id, output } => parts.push(json!({
                "type": "tool-output-available", "toolCallId": call_id, "output": output,
            })),
            ChatEvent::ToolError { call_id, error } => parts.push(json!({
                "type": "tool-output-error", "toolCallId": call_id, "errorText": error,
            })),
            ChatEvent::StepFinish => {
                self.close_text(&mut parts);
                parts.push(json!({ "type": "finish-step" }));
            }
            ChatEvent::Finish { reason, usage } => {
                self.close_text(&mut parts);
                parts.push(json!({
                    "type": "finish", "finishReason": reason,
                    "messageMetadata": { "usage": usage },
                }));
            }
            ChatEvent::Error(message) => {
                self.close_text(&mut parts);
                parts.push(json!({ "type": "error", "errorText": message }));
            }
        }
        parts
    }

    fn close_text(&mut self, parts: &mut Vec<Value>) {
        if let Some(id) = self.open_text.take() {
            parts.push(json!({ "type": "text-end", "id": id }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_bracketed_and_tools_close_it() {
        let mut encoder = UiMessageEncoder::default();
        let events = [
            ChatEvent::Start {
                message_id: "m".into(),
                conversation_id: "c".into(),
                turn_id: "t".into(),
            },
            ChatEvent::StepStart,
            ChatEvent::TextDelta("Let me ".into()),
            ChatEvent::TextDelta("check.".into()),
            ChatEvent::ToolInput {
                call_id: "call_1".into(),
                tool: "revenue_analysis".into(),
                input: json!({}),
            },
            ChatEvent::ToolOutput {
                call_id: "call_1".into(),
                output: json!({"total": 1}),
            },
            ChatEvent::StepFinish,
            ChatEvent::StepStart,
            ChatEvent::TextDelta("Done".into()),
            ChatEvent::StepFinish,
            ChatEvent::Finish {
                reason: "stop".into(),
                usage: json!({}),
            },
        ];
        let types: Vec<String> = events
            .into_iter()
            .flat_map(|e| encoder.encode(e))
            .map(|p| p["type"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(
            types,
            [
                "start",
                "start-step",
                "text-start",
                "text-delta",
                "text-delta",
                "text-end",
                "tool-input-start",
                "tool-input-available",
                "tool-output-available",
                "finish-step",
                "start-step",
                "text-start",
                "text-delta",
                "text-end",
                "finish-step",
                "finish"
            ]
        );
    }
}
