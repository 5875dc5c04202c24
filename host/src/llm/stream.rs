//! Streamed chat completions: text deltas are handed on as they arrive, tool calls are
//! assembled from their fragments, and usage is recorded when the stream ends.

use futures_util::StreamExt;
use serde_json::{Value, json};

use super::{Llm, LlmError, UsageKey, tokens};

/// A whole assistant message put together from a stream.
#[derive(Debug, Default, Clone)]
pub struct Completion {
    pub model: String,
    pub text: String,
    /// OpenAI `tool_calls` entries: `{id, type: "function", function: {name, arguments}}`.
    pub tool_calls: Vec<Value>,
    pub finish_reason: Option<String>,
    pub prompt_tokens: i32,
    pub completion_tokens: i32,
}

impl Llm {
    /// One streamed chat completion; `on_text` gets every piece of text as it comes.
    /// Opening the stream is retried like any call; a stream cut short is an error.
    pub async fn chat_stream(
        &self,
        key: &UsageKey,
        mut request: Value,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Completion, LlmError> {
        if let Some(local) = self.local.as_ref().filter(|_| self.client.is_none()) {
            self.within_budget(key).await?;
            let completion = local.chat_stream(&request, on_text).await?;
            self.record(
                key,
                &completion.model,
                "chat",
                completion.prompt_tokens,
                completion.completion_tokens,
            )
            .await;
            return Ok(completion);
        }
        let client = self.client()?;
        self.within_budget(key).await?;
        request["stream"] = Value::Bool(true);
        request["stream_options"] = json!({ "include_usage": true });
        let mut stream = self
            .with_retries(|| {
                let request = request.clone();
                async move { client.chat().create_stream_byot::<_, Value>(request).await }
            })
            .await?;
        let mut completion = Completion {
            model: request["model"].as_str().unwrap_or_default().to_string(),
            ..Completion::default()
        };
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                LlmError::Unavailable(format!("the LLM provider's stream failed: {e}"))
            })?;
            if let Some(model) = chunk["model"].as_str().filter(|m| !m.is_empty()) {
                completion.model = model.to_string();
            }
            if chunk["usage"].is_object() {
                completion.prompt_tokens = tokens(&chunk["usage"]["prompt_tokens"]);
                completion.completion_tokens = tokens(&chunk["usage"]["completion_tokens"]);
            }
            let Some(choice) = chunk["choices"].get(0) else {
                continue;
            };
            if let Some(reason) = choice["finish_reason"].as_str() {
                completion.finish_reason = Some(reason.to_string());
            }
            let delta = &choice["delta"];
            if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
                completion.text.push_str(text);
                on_text(text);
            }
            for fragment in delta["tool_calls"].as_array().into_iter().flatten() {
                merge_tool_call(&mut completion.tool_calls, fragment);
            }
        }
        self.record(
            key,
            &completion.model,
            "chat",
            completion.prompt_tokens,
            completion.completion_tokens,
        )
        .await;
        Ok(completion)
    }
}

/// Tool calls arrive in pieces keyed by `index`: the first has the id and name, the
/// rest append to the arguments.
fn merge_tool_call(calls: &mut Vec<Value>, fragment: &Value) {
    let index = fragment["index"].as_u64().unwrap_or(calls.len() as u64) as usize;
    while calls.len() <= index {
        calls.push(
            json!({ "id": "", "type": "function", "function": { "name": "", "arguments": "" } }),
        );
    }
    let call = &mut calls[index];
    if let Some(id) = fragment["id"].as_str() {
        call["id"] = Value::String(id.to_string());
    }
    let function = &fragment["function"];
    if let Some(name) = function["name"].as_str() {
        let joined = format!("{}{name}", call["function"]["name"].as_str().unwrap_or(""));
        call["function"]["name"] = Value::String(joined);
    }
    if let Some(arguments) = function["arguments"].as_str() {
        let joined = format!(
            "{}{arguments}",
            call["function"]["arguments"].as_str().unwrap_or("")
        );
        call["function"]["arguments"] = Value::String(joined);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_call_fragments_are_joined_by_index() {
        let mut calls = Vec::new();
        for fragment in [
            json!({"index": 0, "id": "a", "function": {"name": "rev", "arguments": ""}}),
            json!({"index": 1, "id": "b", "function": {"name": "pnl", "arguments": "{}"}}),
            json!({"index": 0, "function": {"arguments": "{\"period\":"}}),
            json!({"index": 0, "function": {"arguments": "\"2025-Q4\"}"}}),
        ] {
            merge_tool_call(&mut calls, &fragment);
        }
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0]["id"], "a");
        assert_eq!(calls[0]["function"]["name"], "rev");
        assert_eq!(
            calls[0]["function"]["arguments"],
            "{\"period\":\"2025-Q4\"}"
        );
        assert_eq!(calls[1]["function"]["name"], "pnl");
    }
}
