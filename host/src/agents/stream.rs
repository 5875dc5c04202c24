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
    /// The call waits for a person's answer (docs/ai-sdk.md, "Approvals").
    ToolApprovalRequest {
        approval_id: String,
        call_id: String,
    },
    /// A person denied the call: it did not run.
    ToolDenied {
        call_id: String,
    },
    StepFinish,
    Finish {
        reason: String,
        usage: Value,
    },
    Error(String),
}

/// Turns events into protocol parts. It tracks what is open — the text part (bracketed
/// by `text-start` / `text-end`), tool calls still waiting for their output, the step
/// (`start-step` / `finish-step`) — so that every step closes the same way, also when
/// the turn fails half way: an `error` part comes after the step's `finish-step`.
#[derive(Debug, Default)]
pub struct UiMessageEncoder {
    message_id: String,
    open_text: Option<String>,
    texts: usize,
    open_step: bool,
    open_tools: Vec<String>,
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
            ChatEvent::StepStart => {
                self.close_step(&mut parts);
                self.open_step = true;
                parts.push(json!({ "type": "start-step" }));
            }
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
                self.open_tools.push(call_id.clone());
                parts.push(
                    json!({ "type": "tool-input-start", "toolCallId": call_id, "toolName": tool }),
                );
                parts.push(json!({
                    "type": "tool-input-available", "toolCallId": call_id, "toolName": tool, "input": input,
                }));
            }
            ChatEvent::ToolOutput { call_id, output } => {
                self.open_tools.retain(|id| *id != call_id);
                parts.push(json!({
                    "type": "tool-output-available", "toolCallId": call_id, "output": output,
                }));
            }
            ChatEvent::ToolError { call_id, error } => {
                self.open_tools.retain(|id| *id != call_id);
                parts.push(json!({
                    "type": "tool-output-error", "toolCallId": call_id, "errorText": error,
                }));
            }
            ChatEvent::ToolApprovalRequest {
                approval_id,
                call_id,
            } => {
                // Not left open: the call has no output in this stream, and that is
                // not an error.
                self.open_tools.retain(|id| *id != call_id);
                parts.push(json!({
                    "type": "tool-approval-request", "approvalId": approval_id, "toolCallId": call_id,
                }));
            }
            ChatEvent::ToolDenied { call_id } => {
                self.open_tools.retain(|id| *id != call_id);
                parts.push(json!({ "type": "tool-output-denied", "toolCallId": call_id }));
            }
            ChatEvent::StepFinish => {
                self.open_step = true;
                self.close_step(&mut parts);
            }
            ChatEvent::Finish { reason, usage } => {
                self.close_step(&mut parts);
                parts.push(json!({
                    "type": "finish", "finishReason": reason,
                    "messageMetadata": { "usage": usage },
                }));
            }
            ChatEvent::Error(message) => {
                self.close_step(&mut parts);
                parts.push(json!({ "type": "error", "errorText": message }));
            }
        }
        parts
    }

    /// Close the open step, if any: its text, its tool calls still running (the turn
    /// ended before they did), then `finish-step`.
    fn close_step(&mut self, parts: &mut Vec<Value>) {
        self.close_text(parts);
        for call_id in std::mem::take(&mut self.open_tools) {
            parts.push(json!({
                "type": "tool-output-error", "toolCallId": call_id,
                "errorText": "the turn ended before this tool call finished",
            }));
        }
        if std::mem::take(&mut self.open_step) {
            parts.push(json!({ "type": "finish-step" }));
        }
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

    fn types(events: Vec<ChatEvent>) -> Vec<String> {
        let mut encoder = UiMessageEncoder::default();
        events
            .into_iter()
            .flat_map(|e| encoder.encode(e))
            .map(|p| p["type"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn start() -> ChatEvent {
        ChatEvent::Start {
            message_id: "m".into(),
            conversation_id: "c".into(),
            turn_id: "t".into(),
        }
    }

    #[test]
    fn a_call_waiting_for_approval_is_not_closed_as_an_error() {
        let paused = types(vec![
            start(),
            ChatEvent::StepStart,
            ChatEvent::ToolInput {
                call_id: "call_1".into(),
                tool: "roi".into(),
                input: json!({}),
            },
            ChatEvent::ToolApprovalRequest {
                approval_id: "a1".into(),
                call_id: "call_1".into(),
            },
            ChatEvent::StepFinish,
            ChatEvent::Finish {
                reason: "tool-calls".into(),
                usage: json!({}),
            },
        ]);
        assert_eq!(
            paused,
            [
                "start",
                "start-step",
                "tool-input-start",
                "tool-input-available",
                "tool-approval-request",
                "finish-step",
                "finish"
            ]
        );
        // Taken up again: the decision comes before the next step.
        let resumed = types(vec![
            start(),
            ChatEvent::ToolDenied {
                call_id: "call_1".into(),
            },
            ChatEvent::StepStart,
            ChatEvent::TextDelta("Fine.".into()),
            ChatEvent::StepFinish,
        ]);
        assert_eq!(
            resumed,
            [
                "start",
                "tool-output-denied",
                "start-step",
                "text-start",
                "text-delta",
                "text-end",
                "finish-step"
            ]
        );
    }

    #[test]
    fn a_failed_step_is_closed_before_the_error() {
        // The provider failed before answering.
        let failed = types(vec![
            start(),
            ChatEvent::StepStart,
            ChatEvent::Error("boom".into()),
        ]);
        assert_eq!(failed, ["start", "start-step", "finish-step", "error"]);
        // Half way through the text.
        let failed = types(vec![
            start(),
            ChatEvent::StepStart,
            ChatEvent::TextDelta("Let".into()),
            ChatEvent::Error("boom".into()),
        ]);
        assert_eq!(
            failed,
            [
                "start",
                "start-step",
                "text-start",
                "text-delta",
                "text-end",
                "finish-step",
                "error"
            ]
        );
        // While a tool ran (the turn timed out): the call gets an error output.
        let failed = types(vec![
            start(),
            ChatEvent::StepStart,
            ChatEvent::ToolInput {
                call_id: "call_1".into(),
                tool: "slow".into(),
                input: json!({}),
            },
            ChatEvent::Error("the turn took longer than 1 s".into()),
        ]);
        assert_eq!(
            failed,
            [
                "start",
                "start-step",
                "tool-input-start",
                "tool-input-available",
                "tool-output-error",
                "finish-step",
                "error"
            ]
        );
    }
}
