//! The prompt: OpenAI chat messages rendered with the model's own chat template (the
//! Jinja text in the GGUF) by minijinja, the way llama.cpp and transformers do.

use anyhow::{Result, anyhow};
use minijinja::Environment;
use serde_json::{Value, json};

/// Without it the 1.5B model echoes a tool's JSON instead of answering (3/3 prose with
/// it, docs/local-model.md).
pub const PROSE_AFTER_TOOLS: &str =
    "When a tool result is available, answer in plain English; do not output JSON.";

/// Template steps a render may take: a chat template is a loop over the messages, so
/// this only stops a broken template from spinning.
const FUEL: u64 = 5_000_000;

pub struct ChatTemplate {
    env: Environment<'static>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChatTemplate")
    }
}

impl ChatTemplate {
    pub fn new(source: &str) -> Result<ChatTemplate> {
        let mut env = Environment::new();
        env.set_fuel(Some(FUEL));
        // Hugging Face templates call raise_exception to refuse a conversation.
        env.add_function("raise_exception", |message: String| -> Result<String, _> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                message,
            ))
        });
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| anyhow!("the model's chat template does not parse: {e}"))?;
        Ok(ChatTemplate { env })
    }

    /// The prompt for `messages`, ending where the assistant's answer starts. `tools`
    /// are OpenAI `tools` entries (none: the template's plain system prompt).
    pub fn render(&self, messages: &[Value], tools: &[Value]) -> Result<String> {
        let messages = prepared(messages, !tools.is_empty());
        let template = self.env.get_template("chat")?;
        let tools = (!tools.is_empty()).then_some(tools);
        template
            .render(minijinja::Value::from(minijinja::value::Serde(json!({
                "messages": messages,
                "tools": tools,
                "add_generation_prompt": true,
            }))))
            .map_err(|e| anyhow!("rendering the chat template: {e}"))
    }
}

/// Messages as chat templates expect them: text content (parts joined), tool call
/// arguments as objects (OpenAI sends a JSON string), and the prose instruction in the
/// system prompt when tools are about.
fn prepared(messages: &[Value], tools_offered: bool) -> Vec<Value> {
    let mut out: Vec<Value> = messages.iter().map(message).collect();
    let tools_used = out.iter().any(|m| m["role"] == "tool");
    if tools_offered || tools_used {
        match out.first_mut() {
            Some(first) if first["role"] == "system" => {
                let content = first["content"].as_str().unwrap_or_default();
                first["content"] = json!(format!("{content}\n\n{PROSE_AFTER_TOOLS}"));
            }
            _ => out.insert(
                0,
                json!({ "role": "system",
                    "content": format!("You are a helpful assistant.\n\n{PROSE_AFTER_TOOLS}") }),
            ),
        }
    }
    out
}

fn message(message: &Value) -> Value {
    let mut message = message.clone();
    message["content"] = json!(text(&message["content"]));
    if let Some(calls) = message.get_mut("tool_calls").and_then(Value::as_array_mut) {
        for call in calls {
            let arguments = &mut call["function"]["arguments"];
            if let Some(text) = arguments.as_str() {
                *arguments = serde_json::from_str(text).unwrap_or_else(|_| json!({}));
            }
        }
    }
    message
}

/// A message's text: a string, or the text parts of a content list.
pub fn text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Qwen2.5's template cut down to what these tests look at.
    const QWEN_LIKE: &str = r#"{%- if tools %}{{- '<|im_start|>system\n' + messages[0]['content'] + '\n<tools>' }}
        {%- for tool in tools %}{{- '\n' }}{{- tool | tojson }}{%- endfor %}{{- '\n</tools><|im_end|>\n' }}{%- endif %}
        {%- for message in messages %}{%- if not (tools and loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content }}
        {%- for call in message.tool_calls %}{{- '<tool_call>' }}{{- call.function.arguments | tojson }}{{- '</tool_call>' }}{%- endfor %}
        {{- '<|im_end|>\n' }}{%- endif %}{%- endfor %}
        {%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}"#;

    #[test]
    fn tools_bring_the_prose_instruction_and_arguments_are_objects() {
        let template = ChatTemplate::new(QWEN_LIKE).unwrap();
        let tools = vec![json!({"type": "function", "function": {"name": "revenue_analysis"}})];
        let prompt = template
            .render(
                &[
                    json!({"role": "system", "content": "You are Dexter."}),
                    json!({"role": "user", "content": [{"type": "text", "text": "Q4?"}]}),
                    json!({"role": "assistant", "content": null, "tool_calls": [{"id": "1", "type": "function",
                        "function": {"name": "revenue_analysis", "arguments": "{\"period\":\"2025-Q4\"}"}}]}),
                ],
                &tools,
            )
            .unwrap();
        assert!(
            prompt.starts_with(&format!(
                "<|im_start|>system\nYou are Dexter.\n\n{PROSE_AFTER_TOOLS}\n<tools>"
            )),
            "{prompt}"
        );
        assert!(
            prompt.contains("<|im_start|>user\nQ4?<|im_end|>"),
            "{prompt}"
        );
        assert!(
            prompt.contains(r#"<tool_call>{"period": "2025-Q4"}</tool_call>"#),
            "{prompt}"
        );
        assert!(prompt.ends_with("<|im_start|>assistant\n"), "{prompt}");
    }

    #[test]
    fn no_tools_no_instruction() {
        let template = ChatTemplate::new(QWEN_LIKE).unwrap();
        let prompt = template
            .render(&[json!({"role": "user", "content": "hi"})], &[])
            .unwrap();
        assert_eq!(
            prompt,
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn a_template_that_raises_is_an_error_not_a_panic() {
        let template = ChatTemplate::new("{{ raise_exception('no system role') }}").unwrap();
        let error = template.render(&[], &[]).unwrap_err().to_string();
        assert!(error.contains("no system role"), "{error}");
    }
}
