//! A fake LLM provider on loopback speaking the OpenAI wire protocol: chat completions
//! (JSON, or SSE chunks when `stream: true`, tool calls included) and embeddings. Tests
//! script replies and failures and read back the requests it received.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// What the next chat request gets.
#[derive(Debug, Clone)]
pub enum Reply {
    /// An assistant message with this text.
    Text(String),
    /// Tool calls: (id, name, arguments JSON).
    ToolCalls(Vec<(String, String, Value)>),
    /// An HTTP error with an OpenAI error body.
    Status(u16, String),
    /// This reply, after a pause (to catch a turn in the middle).
    After(std::time::Duration, Box<Reply>),
}

#[derive(Default)]
struct Script {
    chat: VecDeque<Reply>,
    /// Unscripted requests: call this tool after a user message, answer after a tool.
    auto_tool: Option<(String, Value)>,
    embeddings: VecDeque<Reply>,
    requests: Vec<(String, Value)>,
    /// A pause before every chat reply (a slow model).
    chat_delay: std::time::Duration,
}

#[derive(Clone)]
pub struct FakeOpenAi {
    pub base_url: String,
    script: Arc<Mutex<Script>>,
}

impl FakeOpenAi {
    pub async fn start() -> FakeOpenAi {
        let script = Arc::new(Mutex::new(Script::default()));
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/embeddings", post(embeddings))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeOpenAi {
            base_url: format!("http://{addr}/v1"),
            script,
        }
    }

    /// Queue the reply to the next chat request (unscripted requests get an echo).
    pub fn reply(&self, reply: Reply) {
        self.script.lock().unwrap().chat.push_back(reply);
    }

    /// From now on, unscripted chat requests whose last message is the user's get a
    /// call of `tool` with `arguments`; those after a tool result get a short answer.
    /// For many concurrent conversations, where a queue can't say whose reply is whose.
    pub fn auto_tool(&self, tool: &str, arguments: Value) {
        self.script.lock().unwrap().auto_tool = Some((tool.to_string(), arguments));
    }

    /// From now on, every chat reply comes after `pause` (a slow or busy model).
    pub fn delay_chat(&self, pause: std::time::Duration) {
        self.script.lock().unwrap().chat_delay = pause;
    }

    /// Queue a failure for the next embeddings request.
    pub fn fail_embeddings(&self, status: u16, message: &str) {
        let reply = Reply::Status(status, message.into());
        self.script.lock().unwrap().embeddings.push_back(reply);
    }

    /// Every request received so far: (path, body).
    pub fn requests(&self) -> Vec<(String, Value)> {
        self.script.lock().unwrap().requests.clone()
    }
}

type Shared = State<Arc<Mutex<Script>>>;

fn error(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap();
    let body = json!({ "error": { "message": message, "type": "fake_error", "param": null, "code": null } });
    (status, axum::Json(body)).into_response()
}

async fn chat(State(script): Shared, axum::Json(request): axum::Json<Value>) -> Response {
    let (reply, auto_tool, delay) = {
        let mut script = script.lock().unwrap();
        // Keep memory flat under load: only the last 1000 requests are kept.
        if script.requests.len() >= 1000 {
            script.requests.remove(0);
        }
        script
            .requests
            .push(("/chat/completions".into(), request.clone()));
        (
            script.chat.pop_front(),
            script.auto_tool.clone(),
            script.chat_delay,
        )
    };
    tokio::time::sleep(delay).await;
    let last_role = request["messages"]
        .as_array()
        .and_then(|m| m.last())
        .map(|m| m["role"].clone());
    let reply = reply.or_else(|| {
        let (tool, arguments) = auto_tool?;
        Some(if last_role == Some(json!("user")) {
            Reply::ToolCalls(vec![("call_auto".into(), tool, arguments)])
        } else {
            Reply::Text("Done: the tool answered.".into())
        })
    });
    let model = request["model"].as_str().unwrap_or("fake").to_string();
    let last_user = request["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string();
    let mut reply = reply.unwrap_or(Reply::Text(format!("echo: {last_user}")));
    while let Reply::After(pause, inner) = reply {
        tokio::time::sleep(pause).await;
        reply = *inner;
    }
    let message = match reply {
        Reply::Status(status, message) => return error(status, &message),
        Reply::After(..) => unreachable!("unwrapped above"),
        Reply::Text(text) => json!({ "role": "assistant", "content": text }),
        Reply::ToolCalls(calls) => json!({
            "role": "assistant", "content": null,
            "tool_calls": calls.iter().map(|(id, name, args)| json!({
                "id": id, "type": "function",
                "function": { "name": name, "arguments": args.to_string() },
            })).collect::<Vec<_>>(),
        }),
    };
    let finish = if message["tool_calls"].is_array() {
        "tool_calls"
    } else {
        "stop"
    };
    let prompt_tokens = request.to_string().split_whitespace().count();
    let completion_tokens = message.to_string().split_whitespace().count();
    if request["stream"] == true {
        return stream(&model, &message, finish, prompt_tokens, completion_tokens);
    }
    axum::Json(json!({
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{ "index": 0, "message": message, "finish_reason": finish, "logprobs": null }],
        "usage": { "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                   "total_tokens": prompt_tokens + completion_tokens },
    }))
    .into_response()
}

/// The reply as `chat.completion.chunk` events: text word by word, each tool call as a
/// name chunk then an arguments chunk, then the finish reason, usage and `[DONE]`.
fn stream(
    model: &str,
    message: &Value,
    finish: &str,
    prompt: usize,
    completion: usize,
) -> Response {
    let chunk = |delta: Value, finish: Value, usage: Value| {
        json!({ "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
                "model": model, "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
                "usage": usage })
    };
    let mut events = vec![chunk(
        json!({ "role": "assistant", "content": "" }),
        Value::Null,
        Value::Null,
    )];
    if let Some(text) = message["content"].as_str() {
        for (i, word) in text.split(' ').enumerate() {
            let piece = if i == 0 {
                word.to_string()
            } else {
                format!(" {word}")
            };
            events.push(chunk(json!({ "content": piece }), Value::Null, Value::Null));
        }
    }
    for (index, call) in message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        events.push(chunk(
            json!({ "tool_calls": [{ "index": index, "id": call["id"], "type": "function",
                    "function": { "name": call["function"]["name"], "arguments": "" } }] }),
            Value::Null,
            Value::Null,
        ));
        events.push(chunk(
            json!({ "tool_calls": [{ "index": index,
                    "function": { "arguments": call["function"]["arguments"] } }] }),
            Value::Null,
            Value::Null,
        ));
    }
    events.push(chunk(json!({}), json!(finish), Value::Null));
    let usage = json!({ "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion });
    let mut body = String::new();
    for event in events {
        body.push_str(&format!("data: {event}\n\n"));
    }
    body.push_str(&format!(
        "data: {}\n\n",
        json!({ "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
                "model": model, "choices": [], "usage": usage })
    ));
    body.push_str("data: [DONE]\n\n");
    ([("content-type", "text/event-stream")], body).into_response()
}

async fn embeddings(State(script): Shared, axum::Json(request): axum::Json<Value>) -> Response {
    let failure = {
        let mut script = script.lock().unwrap();
        script
            .requests
            .push(("/embeddings".into(), request.clone()));
        script.embeddings.pop_front()
    };
    if let Some(Reply::Status(status, message)) = failure {
        return error(status, &message);
    }
    let inputs: Vec<String> = match &request["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| json!({ "object": "embedding", "index": index, "embedding": fake_vector(text) }))
        .collect();
    let tokens: usize = inputs.iter().map(|t| t.split_whitespace().count()).sum();
    axum::Json(json!({
        "object": "list", "data": data, "model": request["model"],
        "usage": { "prompt_tokens": tokens, "total_tokens": tokens },
    }))
    .into_response()
}

/// A deterministic 4-dimensional vector for a text: its length and byte sums.
pub fn fake_vector(text: &str) -> Vec<f32> {
    let bytes = text.as_bytes();
    let sum = |step: usize| {
        bytes
            .iter()
            .step_by(step)
            .map(|b| f32::from(*b))
            .sum::<f32>()
    };
    vec![bytes.len() as f32, sum(1), sum(2), sum(3)]
}
