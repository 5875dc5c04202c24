//! The `local` LLM provider: a GGUF model (Qwen2.5-Coder-1.5B-Instruct by default,
//! installed by `make setup`) run in-process on the CPU with candle, behind the same
//! calls as the OpenAI-compatible provider (`Llm::chat`, `Llm::chat_stream`), so agents,
//! plugins, workflows, MCP and the OpenAI-compatible endpoint use it unchanged.
//!
//! The file's header is checked at start; the tokenizer and weights load when the first
//! request comes (that request waits), so `/readyz` and processes that never chat pay
//! nothing. The model has one KV cache: calls run one at a time, and at most `queue`
//! more wait; past that a call is refused as busy (429 with Retry-After).
//! docs/local-model.md has the figures.

mod engine;
mod gguf;
mod queue;
mod qwen2;
mod template;
mod toolcall;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::{Completion, LlmError};
use engine::{Engine, Finish, Generated, Params};
use gguf::ModelFile;
use queue::Queue;
use toolcall::Parsed;

/// Answer length when the request names none.
const DEFAULT_MAX_TOKENS: usize = 1024;

/// What the model is told when its call can't be run, before its one retry.
const FIX_CALL: &str = "That tool call can't be run: {error}. Write the call again as JSON \
    {\"name\": ..., \"arguments\": {...}} with an offered tool and arguments its schema \
    accepts, or answer in plain English without a tool.";

#[derive(Debug, Clone)]
pub struct Options {
    pub model_file: PathBuf,
    /// Tokens of prompt and answer together (at most the model's own context length).
    pub context_tokens: usize,
    /// Calls that may wait while one runs.
    pub queue: usize,
}

pub struct LocalModel {
    file: Arc<ModelFile>,
    context: usize,
    queue: Queue,
    engine: OnceCell<Result<Arc<Mutex<Engine>>, String>>,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel")
            .field("file", &self.file.path)
            .finish()
    }
}

/// Sets the threads candle computes with (`--llm-threads`), for the local model and the
/// embedding model alike. candle reads them from the environment once, when its thread
/// pool starts, so this must run before any thread does: at the top of `main`.
#[allow(unsafe_code)]
pub fn use_threads(threads: Option<usize>) {
    if let Some(threads) = threads.filter(|t| *t > 0) {
        // SAFETY: called from `main` before the async runtime or any other thread
        // starts, so nothing reads the environment concurrently.
        unsafe {
            std::env::set_var("CANDLE_NUM_THREADS", threads.to_string());
            std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
        }
    }
}

impl LocalModel {
    /// Checks the model file's header; the weights load on first use.
    pub fn open(options: &Options) -> anyhow::Result<LocalModel> {
        let file = ModelFile::open(&options.model_file)?;
        let context = options.context_tokens.clamp(256, file.context_length);
        Ok(LocalModel {
            file: Arc::new(file),
            context,
            queue: Queue::new(options.queue),
            engine: OnceCell::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// The name usage is recorded under.
    pub fn model_name(&self) -> String {
        self.file
            .name
            .to_lowercase()
            .trim_end_matches(" gguf")
            .replace(' ', "-")
    }

    /// Some(Retry-After) when a call now would be refused as busy (the chat routes
    /// check before a turn starts, so a full queue is a 429 rather than a failed stream).
    pub fn is_full(&self) -> Option<Duration> {
        self.queue.is_full()
    }

    async fn engine(&self) -> Result<Arc<Mutex<Engine>>, LlmError> {
        let loaded = self
            .engine
            .get_or_init(|| async {
                let path = self.file.path.display().to_string();
                let started = Instant::now();
                let file = self.file.clone();
                let context = self.context;
                // Reads a GB from disk and builds the tokenizer: seconds of blocking work.
                let result = tokio::task::spawn_blocking(move || Engine::load(&file, context))
                    .await
                    .unwrap_or_else(|e| Err(anyhow::anyhow!("the loading task failed: {e}")));
                match result {
                    Ok(engine) => {
                        tracing::info!(model = %path, seconds = started.elapsed().as_secs_f64(),
                            "the local model is loaded");
                        Ok(Arc::new(Mutex::new(engine)))
                    }
                    Err(error) => {
                        tracing::error!(model = %path, error = format!("{error:#}"),
                            "the local model can't be loaded; LLM calls answer unavailable");
                        Err(format!("the local model {path} can't be loaded: {error:#}"))
                    }
                }
            })
            .await;
        loaded.clone().map_err(LlmError::Unavailable)
    }

    /// One chat completion of an OpenAI request, streamed through `on_text`. Tool calls
    /// the model writes are parsed and checked against the offered tools; one that
    /// can't be run goes back to the model once with the reason, then the answer is
    /// whatever text it writes.
    pub async fn chat_stream(
        &self,
        request: &Value,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Completion, LlmError> {
        let _permit = self.queue.admit().await?;
        let engine = self.engine().await?;
        let started = Instant::now();
        let tools: Vec<Value> = match request["tool_choice"].as_str() {
            Some("none") => Vec::new(),
            _ => request["tools"].as_array().cloned().unwrap_or_default(),
        };
        let params = params(request)?;
        let mut messages = request["messages"].as_array().cloned().unwrap_or_default();
        let mut completion = Completion {
            model: self.model_name(),
            ..Completion::default()
        };
        for attempt in 0..2 {
            let prompt = fit(&engine, &mut messages, &tools, &params, self.context)?;
            let mut limited = params.clone();
            limited.max_tokens = params.max_tokens.min(self.context - prompt.len()).max(1);
            let (generated, streamed) =
                generate(engine.clone(), prompt, limited, !tools.is_empty(), on_text).await?;
            tracing::info!(
                prompt_tokens = generated.prompt_tokens,
                cached_tokens = generated.cached_tokens,
                prompt_seconds = generated.prompt_seconds,
                prompt_per_second = (generated.prompt_tokens - generated.cached_tokens) as f64
                    / generated.prompt_seconds,
                completion_tokens = generated.completion_tokens,
                generation_seconds = generated.generation_seconds,
                completion_per_second =
                    generated.completion_tokens as f64 / generated.generation_seconds,
                "local model call"
            );
            completion.prompt_tokens += generated.prompt_tokens as i32;
            completion.completion_tokens += generated.completion_tokens as i32;
            completion.finish_reason = Some(
                match generated.finish {
                    Finish::Length => "length",
                    _ => "stop",
                }
                .into(),
            );
            let parsed = if tools.is_empty() {
                Parsed::Text(generated.text.clone())
            } else {
                toolcall::parse(&generated.text, &tools)
            };
            match parsed {
                Parsed::Calls { calls, .. } => {
                    completion.text.push_str(&streamed);
                    completion.tool_calls = calls
                        .iter()
                        .map(|call| {
                            call.to_openai(&format!("call_{}", uuid::Uuid::new_v4().simple()))
                        })
                        .collect();
                    completion.finish_reason = Some("tool_calls".into());
                    break;
                }
                Parsed::Invalid(error) if attempt == 0 => {
                    tracing::debug!(%error, "the local model's tool call is retried");
                    completion.text.push_str(&streamed);
                    messages.push(json!({ "role": "assistant", "content": generated.text }));
                    messages.push(
                        json!({ "role": "user", "content": FIX_CALL.replace("{error}", &error) }),
                    );
                }
                Parsed::Text(_) | Parsed::Invalid(_) => {
                    // Whatever was held back as a possible call is part of the answer.
                    let rest = generated.text.get(streamed.len()..).unwrap_or_default();
                    if !rest.is_empty() {
                        on_text(rest);
                    }
                    completion.text.push_str(&generated.text);
                    break;
                }
            }
        }
        self.queue.took(started.elapsed());
        Ok(completion)
    }
}

/// The request's sampling and limits.
fn params(request: &Value) -> Result<Params, LlmError> {
    let max_tokens = request["max_completion_tokens"]
        .as_u64()
        .or(request["max_tokens"].as_u64())
        .unwrap_or(DEFAULT_MAX_TOKENS as u64);
    if max_tokens == 0 {
        return Err(LlmError::Rejected("max_tokens must be at least 1".into()));
    }
    let stop = match &request["stop"] {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many
            .iter()
            .filter_map(|s| s.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    };
    Ok(Params {
        max_tokens: max_tokens as usize,
        temperature: request["temperature"].as_f64(),
        top_p: request["top_p"].as_f64(),
        seed: request["seed"].as_u64().unwrap_or_else(rand::random),
        stop: stop.into_iter().filter(|s| !s.is_empty()).collect(),
    })
}

/// The prompt's tokens, leaving room for an answer: the oldest history goes first (the
/// system prompt and the last user message with what followed it stay); when that is
/// not enough the request is refused.
fn fit(
    engine: &Mutex<Engine>,
    messages: &mut Vec<Value>,
    tools: &[Value],
    params: &Params,
    context: usize,
) -> Result<Vec<u32>, LlmError> {
    let engine = engine
        .lock()
        .map_err(|_| LlmError::Unavailable("the local model failed earlier".into()))?;
    // Room for at least a short answer: a long max_tokens is cut to what is left.
    let reserve = params.max_tokens.min(context / 4);
    loop {
        let prompt = engine
            .template
            .render(messages, tools)
            .map_err(|e| LlmError::Rejected(format!("{e:#}")))?;
        let tokens = engine
            .encode(&prompt)
            .map_err(|e| LlmError::Unavailable(format!("{e:#}")))?;
        if tokens.len() + reserve <= context {
            return Ok(tokens);
        }
        let first = messages.iter().position(|m| m["role"] != "system");
        let last_user = messages.iter().rposition(|m| m["role"] == "user");
        match (first, last_user) {
            (Some(first), Some(last_user)) if first < last_user => {
                messages.remove(first);
                // A call's results go with it.
                while messages.get(first).is_some_and(|m| m["role"] == "tool") {
                    messages.remove(first);
                }
            }
            _ => {
                return Err(LlmError::TooLong(format!(
                    "the message is too long for the local model: the prompt is {} tokens and \
                     its context holds {context}, {reserve} of them kept for the answer",
                    tokens.len()
                )));
            }
        }
    }
}

/// Runs the engine on a blocking thread and streams its text. When tools are offered,
/// text that may be the start of a call is held back until the output ends (a call is
/// not shown as text). Returns what was generated and the text handed on so far.
async fn generate(
    engine: Arc<Mutex<Engine>>,
    prompt: Vec<u32>,
    params: Params,
    hold_calls: bool,
    on_text: &mut (dyn FnMut(&str) + Send),
) -> Result<(Generated, String), LlmError> {
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
    let work = tokio::task::spawn_blocking(move || {
        let mut engine = engine
            .lock()
            .map_err(|_| anyhow::anyhow!("the local model failed earlier"))?;
        engine.generate(&prompt, &params, &mut |piece| {
            sender.send(piece.to_string()).is_ok()
        })
    });
    let mut output = String::new();
    let mut sent = 0;
    while let Some(piece) = receiver.recv().await {
        output.push_str(&piece);
        let ready = if hold_calls {
            toolcall::call_start(&output).unwrap_or(output.len())
        } else {
            output.len()
        };
        if ready > sent {
            on_text(&output[sent..ready]);
            sent = ready;
        }
    }
    let generated = work
        .await
        .map_err(|e| LlmError::Unavailable(format!("the local model stopped: {e}")))?
        .map_err(|e| LlmError::Unavailable(format!("the local model failed: {e:#}")))?;
    output.truncate(sent);
    Ok((generated, output))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_params_greedy_by_default_with_limits_and_stops() {
        let plain = params(&json!({"messages": []})).unwrap();
        assert_eq!(plain.max_tokens, DEFAULT_MAX_TOKENS);
        assert_eq!(plain.temperature, None);
        assert!(plain.stop.is_empty());
        let asked = params(&json!({"max_tokens": 20, "max_completion_tokens": 10,
            "temperature": 0.7, "top_p": 0.9, "seed": 7, "stop": ["\n\n", ""]}))
        .unwrap();
        assert_eq!(asked.max_tokens, 10);
        assert_eq!(
            (asked.temperature, asked.top_p, asked.seed),
            (Some(0.7), Some(0.9), 7)
        );
        assert_eq!(asked.stop, vec!["\n\n".to_string()]);
        assert_eq!(
            params(&json!({"stop": "END"})).unwrap().stop,
            vec!["END".to_string()]
        );
        assert!(matches!(
            params(&json!({"max_tokens": 0})),
            Err(LlmError::Rejected(_))
        ));
    }
}
