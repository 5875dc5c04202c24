//! The `llm/chat` workflow node: one chat completion through the host's llm
//! capability, with a model granted to this plugin version (within its daily token
//! budget). The host has rendered the config's templates already.
//!
//! Config: `{model, system?, prompt?, messages?, temperature?, max_tokens?, json?}`:
//! the conversation is `system`, then `messages` (`[{role, content}]`), then `prompt`
//! as the last user message. Output: `{text, json?, model, finish_reason, usage:
//! {prompt_tokens, completion_tokens, total_tokens}}`; `json` (the answer parsed) only
//! with `json: true`, which asks the provider for a JSON object. An answer that is not
//! JSON then fails the node as `unavailable`, which a retry policy retries by default.
//!
//! Not idempotent by nature: a retried node calls the model (and spends tokens) again.

use agenthost_sdk::llm::{self, ChatRequest, Message};
use agenthost_sdk::{CallContext, Error, NodeOutput, NodePlugin, NodeSpec};
use serde_json::{Value, json};

struct Llm;

impl NodePlugin for Llm {
    fn nodes() -> Vec<NodeSpec> {
        vec![NodeSpec {
            node_type: "chat".into(),
            description: "One chat completion with a granted model: system, messages and/or prompt; \
                          outputs {text, json?, model, finish_reason, usage}. `json: true` asks for and \
                          parses a JSON object."
                .into(),
            config_schema: json!({
                "type": "object",
                "properties": {
                    "model": {"type": "string"},
                    "system": {"type": ["string", "null"]},
                    "prompt": {"type": ["string", "null"]},
                    "messages": {"type": "array", "items": {
                        "type": "object",
                        "properties": {"role": {"enum": ["system", "user", "assistant"]}, "content": {"type": "string"}},
                        "required": ["role", "content"]
                    }},
                    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
                    "max_tokens": {"type": "integer", "minimum": 1},
                    "json": {"type": "boolean"}
                },
                "required": ["model"],
                "additionalProperties": false
            }),
            input_schema: json!({"type": "object"}),
            output_schema: json!({
                "type": "object",
                "properties": {
                    "text": {"type": "string"},
                    "json": {},
                    "model": {"type": "string"},
                    "finish_reason": {"type": "string"},
                    "usage": {"type": "object"}
                }
            }),
            branches: Vec::new(),
        }]
    }

    fn execute(
        _: &CallContext,
        node_type: &str,
        config: Value,
        _input: Value,
    ) -> Result<NodeOutput, Error> {
        if node_type != "chat" {
            return Err(Error::NotFound(format!("llm has no node type {node_type}")));
        }
        let request = request(&config)?;
        let response = llm::chat(&request)?;
        let text = response.content.unwrap_or_default();
        let usage = response.usage;
        let mut output = json!({
            "text": text,
            "model": response.model,
            "finish_reason": response.finish_reason,
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.prompt_tokens + usage.completion_tokens,
            },
        });
        if request.json_response {
            output["json"] = parse_json(&text)?;
        }
        Ok(NodeOutput {
            output,
            branches: Vec::new(),
        })
    }
}

fn optional_text(config: &Value, field: &str) -> Result<Option<String>, Error> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        // A template that rendered to JSON: the model reads its text.
        Some(other) => Ok(Some(other.to_string())),
    }
}

fn request(config: &Value) -> Result<ChatRequest, Error> {
    let model = config["model"]
        .as_str()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| Error::invalid("config.model must name a granted model"))?;
    let json_response = match config.get("json") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(Error::invalid("config.json must be a boolean")),
    };
    let mut messages = Vec::new();
    if let Some(system) = optional_text(config, "system")? {
        messages.push(Message::system(&system));
    }
    match config.get("messages") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let role = item["role"]
                    .as_str()
                    .filter(|r| matches!(*r, "system" | "user" | "assistant"));
                let (Some(role), Some(content)) = (role, optional_text(item, "content")?) else {
                    return Err(Error::invalid(format!(
                        "config.messages[{i}] must be {{role: system|user|assistant, content}}"
                    )));
                };
                messages.push(Message {
                    role: role.into(),
                    content,
                    ..Message::default()
                });
            }
        }
        Some(_) => return Err(Error::invalid("config.messages must be a list")),
    }
    if let Some(prompt) = optional_text(config, "prompt")? {
        messages.push(Message::user(&prompt));
    }
    if !messages.iter().any(|m| m.role == "user") {
        return Err(Error::invalid(
            "the conversation has no user message: give config.prompt or config.messages",
        ));
    }
    // Providers refuse a JSON response format unless a message asks for JSON.
    if json_response
        && !messages
            .iter()
            .any(|m| m.content.to_ascii_lowercase().contains("json"))
    {
        messages.insert(0, Message::system("Answer with a JSON object."));
    }
    let temperature = match config.get("temperature") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_f64()
                .filter(|t| (0.0..=2.0).contains(t))
                .ok_or_else(|| Error::invalid("config.temperature must be a number from 0 to 2"))?
                as f32,
        ),
    };
    let max_tokens = match config.get("max_tokens") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| Error::invalid("config.max_tokens must be a positive integer"))?,
        ),
    };
    Ok(ChatRequest {
        model: model.into(),
        messages,
        json_response,
        temperature,
        max_tokens,
        ..ChatRequest::default()
    })
}

/// The answer as JSON, tolerating a Markdown code fence around it.
fn parse_json(text: &str) -> Result<Value, Error> {
    let trimmed = text.trim();
    let unfenced = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|rest| rest.strip_suffix("```"))
        .unwrap_or(trimmed);
    serde_json::from_str(unfenced.trim()).map_err(|e| {
        let quoted: String = text.chars().take(200).collect();
        Error::Unavailable(format!("the model's answer is not JSON ({e}): {quoted}"))
    })
}

agenthost_sdk::export_node_plugin!(Llm);

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use agenthost_sdk::llm::{ChatResponse, Usage};
    use agenthost_sdk::testing::TestHost;

    use super::*;

    fn run(config: Value) -> Result<NodeOutput, Error> {
        Llm::execute(&CallContext::for_tests("ws"), "chat", config, json!({}))
    }

    #[test]
    fn builds_the_conversation_and_reports_usage() {
        let seen = Rc::new(RefCell::new(None));
        let log = seen.clone();
        let _host = TestHost::new()
            .llm_chat(move |request| {
                *log.borrow_mut() = Some(request.clone());
                Ok(ChatResponse {
                    model: request.model.clone(),
                    usage: Usage {
                        prompt_tokens: 12,
                        completion_tokens: 3,
                    },
                    ..ChatResponse::text("Paris")
                })
            })
            .install();
        let out = run(json!({
            "model": "gpt-4o-mini", "system": "Be brief.",
            "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
            "prompt": "Capital of France?", "temperature": 0.2, "max_tokens": 20
        }))
        .unwrap();
        assert_eq!(out.output["text"], "Paris");
        assert_eq!(out.output["model"], "gpt-4o-mini");
        assert_eq!(out.output["finish_reason"], "stop");
        assert_eq!(
            out.output["usage"],
            json!({"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15})
        );
        assert!(out.output.get("json").is_none());
        let request = seen.borrow().clone().unwrap();
        let roles: Vec<&str> = request.messages.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"]);
        assert_eq!(request.messages[3].content, "Capital of France?");
        assert_eq!(request.temperature, Some(0.2));
        assert_eq!(request.max_tokens, Some(20));
        assert!(!request.json_response);
    }

    #[test]
    fn json_answers_are_parsed_and_bad_ones_are_retryable() {
        let answer = Rc::new(RefCell::new(String::new()));
        let next = answer.clone();
        let seen = Rc::new(RefCell::new(None));
        let log = seen.clone();
        let _host = TestHost::new()
            .llm_chat(move |request| {
                *log.borrow_mut() = Some(request.clone());
                Ok(ChatResponse::text(&next.borrow()))
            })
            .install();
        *answer.borrow_mut() = "```json\n{\"score\": 0.9}\n```".into();
        let out = run(json!({"model": "m", "prompt": "Rate it", "json": true})).unwrap();
        assert_eq!(out.output["json"], json!({"score": 0.9}));
        let request = seen.borrow().clone().unwrap();
        assert!(request.json_response);
        // No message mentioned JSON, so the node asked for it.
        assert_eq!(request.messages[0].content, "Answer with a JSON object.");

        *answer.borrow_mut() = "I think 0.9".into();
        let error =
            run(json!({"model": "m", "prompt": "Rate it as JSON", "json": true})).unwrap_err();
        assert!(
            matches!(error, Error::Unavailable(ref m) if m.contains("not JSON")),
            "{error:?}"
        );
    }

    #[test]
    fn bad_config_and_denied_models_are_errors() {
        let _host = TestHost::new()
            .llm_chat(|request| {
                Err(Error::Denied(format!(
                    "model {} is not granted",
                    request.model
                )))
            })
            .install();
        assert!(matches!(
            run(json!({"model": "m", "prompt": "x"})),
            Err(Error::Denied(_))
        ));
        for (config, needle) in [
            (json!({"model": "", "prompt": "x"}), "config.model"),
            (json!({"model": "m", "system": "only"}), "no user message"),
            (
                json!({"model": "m", "prompt": "x", "temperature": 3}),
                "temperature",
            ),
            (
                json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}),
                "messages[0]",
            ),
        ] {
            let Err(Error::Invalid(message)) = run(config.clone()) else {
                panic!("{config} was accepted");
            };
            assert!(message.contains(needle), "{config}: {message}");
        }
    }
}
