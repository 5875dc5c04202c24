//! Tool calls as a small local model writes them. Qwen2.5's chat template asks for
//! `<tool_call>{"name": ..., "arguments": ...}</tool_call>`, but the 1.5B model mostly
//! writes the bare JSON object, often in a ```json fence (docs/local-model.md). So the
//! output is read leniently — tags, then fenced blocks, then bare objects — and every
//! call found is checked against the offered tools' names and input schemas, so a call
//! that reaches the tool loop is one the host would accept.

use serde_json::{Value, json};

/// One call the model made, in the shape the tool loop runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub name: String,
    pub arguments: Value,
}

impl Call {
    /// The OpenAI `tool_calls` entry (`arguments` as a JSON string, like the API's).
    pub fn to_openai(&self, id: &str) -> Value {
        json!({ "id": id, "type": "function", "function": {
            "name": self.name, "arguments": self.arguments.to_string() } })
    }
}

/// What the model's output turned out to be.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    /// An answer: no call in it.
    Text(String),
    /// Calls that name offered tools with arguments their schemas accept; `text` is
    /// what the model wrote around them.
    Calls { text: String, calls: Vec<Call> },
    /// Something meant as a call that can't be run: the reason, for the model to fix.
    Invalid(String),
}

/// Reads `output` against `tools` (OpenAI `tools` entries).
pub fn parse(output: &str, tools: &[Value]) -> Parsed {
    let found = tagged(output)
        .or_else(|| fenced(output))
        .or_else(|| bare(output));
    let Some((text, candidates)) = found else {
        return Parsed::Text(output.trim().to_string());
    };
    let mut calls = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        match candidate.and_then(|value| check(value, tools)) {
            Ok(call) => calls.push(call),
            Err(error) => return Parsed::Invalid(error),
        }
    }
    Parsed::Calls {
        text: text.trim().to_string(),
        calls,
    }
}

/// Where a call may start in output that is still being written: from here on the
/// output is held back from the stream until it is known whether it is a call.
pub fn call_start(output: &str) -> Option<usize> {
    let tag = output.find("<tool_call>");
    let fence = output.find("```");
    // A bare object at the start of the output or of a line.
    let object = output
        .char_indices()
        .find(|&(i, c)| c == '{' && output[..i].rsplit('\n').next().is_some_and(blank))
        .map(|(i, _)| i);
    // A prefix of `<tool_call>` or of a fence at the very end may become one.
    let partial = ["<tool_call>", "```"].iter().find_map(|marker| {
        (1..marker.len())
            .rev()
            .find(|&n| output.ends_with(&marker[..n]))
            .map(|n| output.len() - n)
    });
    [tag, fence, object, partial].into_iter().flatten().min()
}

fn blank(text: &str) -> bool {
    text.trim().is_empty()
}

type Candidates = (String, Vec<Result<Value, String>>);

/// `<tool_call>...</tool_call>` blocks (the last one may be cut off by a stop).
fn tagged(output: &str) -> Option<Candidates> {
    let (open, close) = ("<tool_call>", "</tool_call>");
    let first = output.find(open)?;
    let mut text = output[..first].to_string();
    let mut candidates = Vec::new();
    let mut rest = &output[first..];
    while let Some(start) = rest.find(open) {
        text.push_str(&rest[..start]);
        let body = &rest[start + open.len()..];
        let (inner, after) = match body.find(close) {
            Some(end) => (&body[..end], &body[end + close.len()..]),
            None => (body, ""),
        };
        let inner = strip_fence(inner.trim());
        candidates.push(
            serde_json::from_str::<Value>(inner)
                .map_err(|e| format!("the <tool_call> block is not valid JSON ({e})")),
        );
        rest = after;
    }
    text.push_str(rest);
    Some((text, candidates))
}

/// ``` fenced blocks whose JSON is a call (or a list of calls).
fn fenced(output: &str) -> Option<Candidates> {
    let mut text = String::new();
    let mut candidates = Vec::new();
    let mut rest = output;
    while let Some(start) = rest.find("```") {
        let body = &rest[start + 3..];
        let (block, after) = match body.find("```") {
            Some(end) => (&body[..end], &body[end + 3..]),
            None => (body, ""),
        };
        let json = strip_language(block).trim();
        match serde_json::from_str::<Value>(json) {
            Ok(value) if looks_like_call(&value) => {
                text.push_str(&rest[..start]);
                candidates.extend(split_list(value).into_iter().map(Ok));
            }
            // Code or data in a fence is part of the answer, fences included.
            _ => text.push_str(&rest[..rest.len() - after.len()]),
        }
        rest = after;
    }
    text.push_str(rest);
    (!candidates.is_empty()).then_some((text, candidates))
}

/// JSON objects (or a list of them) written straight into the text.
fn bare(output: &str) -> Option<Candidates> {
    let mut text = String::new();
    let mut candidates = Vec::new();
    let mut at = 0;
    while let Some(offset) = output[at..].find(['{', '[']) {
        let start = at + offset;
        let mut values = serde_json::Deserializer::from_str(&output[start..]).into_iter::<Value>();
        match values.next() {
            Some(Ok(value)) if looks_like_call(&value) => {
                text.push_str(&output[at..start]);
                candidates.extend(split_list(value).into_iter().map(Ok));
                at = start + values.byte_offset();
            }
            _ => {
                text.push_str(&output[at..=start]);
                at = start + 1;
            }
        }
    }
    text.push_str(&output[at..]);
    (!candidates.is_empty()).then_some((text, candidates))
}

fn strip_fence(text: &str) -> &str {
    match text.strip_prefix("```") {
        Some(inner) => strip_language(inner.trim_end().trim_end_matches("```")),
        None => text,
    }
}

/// A fence's language tag (```json) ends at the first line break.
fn strip_language(block: &str) -> &str {
    match block.split_once('\n') {
        Some((first, rest)) if !first.trim_start().starts_with(['{', '[']) => rest,
        _ => block,
    }
}

/// `{"name", "arguments"|"parameters"}`, `{"function": "name", "arguments"}` (the
/// 1.5B model writes that too), OpenAI's `{"function": {...}}`, or a list of those. A
/// lone `{"name": ...}` is data, not a call.
fn looks_like_call(value: &Value) -> bool {
    match value {
        Value::Array(items) => !items.is_empty() && items.iter().all(looks_like_call),
        Value::Object(map) => {
            let has_arguments = map.contains_key("arguments") || map.contains_key("parameters");
            (map.contains_key("name") && has_arguments)
                || map
                    .get("function")
                    .is_some_and(|f| f.get("name").is_some() || (f.is_string() && has_arguments))
        }
        _ => false,
    }
}

fn split_list(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        other => vec![other],
    }
}

/// A candidate as a call of an offered tool with arguments its schema accepts.
fn check(value: Value, tools: &[Value]) -> Result<Call, String> {
    let value = match value.get("function") {
        Some(function) if function.is_object() => function.clone(),
        Some(Value::String(name)) => {
            let mut renamed = value.clone();
            renamed["name"] = json!(name);
            renamed
        }
        _ => value,
    };
    let name = value["name"]
        .as_str()
        .ok_or("a tool call needs a \"name\" string")?
        .to_string();
    let mut arguments = value
        .get("arguments")
        .or_else(|| value.get("parameters"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    // OpenAI's wire format has the arguments as a JSON string.
    if let Value::String(text) = &arguments {
        arguments = serde_json::from_str(text)
            .map_err(|e| format!("the arguments of {name} are not a JSON object ({e})"))?;
    }
    if arguments.is_null() {
        arguments = json!({});
    }
    if !arguments.is_object() {
        return Err(format!("the arguments of {name} must be a JSON object"));
    }
    let offered = |tool: &&Value| tool["function"]["name"].as_str() == Some(name.as_str());
    let Some(tool) = tools.iter().find(offered) else {
        let names: Vec<&str> = tools
            .iter()
            .filter_map(|t| t["function"]["name"].as_str())
            .collect();
        return Err(format!(
            "there is no tool named {name:?}; the tools are: {}",
            names.join(", ")
        ));
    };
    let schema = &tool["function"]["parameters"];
    if schema.is_object() {
        let validator = jsonschema::validator_for(schema)
            .map_err(|e| format!("the schema of {name} can't be used: {e}"))?;
        let problems: Vec<String> = validator
            .iter_errors(&arguments)
            .map(|e| match e.instance_path().to_string() {
                path if path.is_empty() => e.to_string(),
                path => format!("{e} (at {path})"),
            })
            .collect();
        if !problems.is_empty() {
            return Err(format!(
                "the arguments of {name} do not match its schema: {}",
                problems.join("; ")
            ));
        }
    }
    Ok(Call { name, arguments })
}

#[cfg(test)]
#[path = "toolcall_tests.rs"]
mod tests;
