//! LLM access through any OpenAI-compatible API (async-openai): chat completions and
//! embeddings, retried with backoff on 429/5xx/connection errors, each call's tokens and
//! cost recorded in `llm_usage`. Used by the `llm` capability and by agents.

pub mod budget;
pub mod local;
mod stream;

use std::collections::HashMap;
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use rand::Rng;
use serde::Deserialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

pub use stream::Completion;

/// USD per million tokens.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
pub struct Price {
    pub prompt: f64,
    #[serde(default)]
    pub completion: f64,
}

/// Who a call is for, as recorded in `llm_usage`.
#[derive(Debug, Clone, Default)]
pub struct UsageKey {
    pub workspace: Option<Uuid>,
    pub plugin: Option<String>,
    pub agent: Option<UsageAgent>,
}

/// The agent a call is for: `llm_usage` keeps its id (slugs can change), the metrics'
/// `agent` label its slug (what a person reads; bounded by the number of agents).
#[derive(Debug, Clone)]
pub struct UsageAgent {
    pub id: Uuid,
    pub slug: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// No provider configured, or it kept failing after the retries.
    #[error("{0}")]
    Unavailable(String),
    /// The provider refused the request as malformed (4xx other than 429).
    #[error("{0}")]
    Rejected(String),
    /// The workspace's monthly budget is spent (`budget`): nothing was sent.
    #[error("{0}")]
    BudgetExceeded(Box<budget::Exceeded>),
    /// The local model is serving others and its queue is full (429 with Retry-After).
    #[error("the local model is busy with other conversations: retry in {} s", retry_after.as_secs().max(1))]
    Busy { retry_after: Duration },
    /// The prompt can't fit the local model's context even with the history cut (422).
    #[error("{0}")]
    TooLong(String),
}

pub struct Llm {
    client: Option<Client<OpenAIConfig>>,
    /// The in-process model, when no OpenAI-compatible API is configured (local.rs).
    local: Option<std::sync::Arc<local::LocalModel>>,
    /// Why there is no LLM, for the 503s (the local model file is missing or broken).
    unavailable: String,
    prices: HashMap<String, Price>,
    max_retries: u32,
    backoff: Duration,
    pool: PgPool,
}

impl std::fmt::Debug for Llm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Llm")
            .field("configured", &self.client.is_some())
            .field(
                "local",
                &self.local.as_ref().map(|l| l.path().to_path_buf()),
            )
            .finish()
    }
}

pub const NOT_CONFIGURED: &str = "no LLM provider is configured: set AGENTHOST_LLM_BASE_URL \
    (--llm-base-url) to an OpenAI-compatible API, and AGENTHOST_LLM_API_KEY if it needs one, \
    or install the local model with `make setup` (--llm-model-file)";

impl Llm {
    pub fn from_config(config: &crate::config::Config, pool: PgPool) -> anyhow::Result<Self> {
        let prices: HashMap<String, Price> = serde_json::from_str(&config.llm_prices)
            .map_err(|e| anyhow::anyhow!("--llm-prices is not a valid price table: {e}"))?;
        let base_url = config
            .llm_base_url
            .as_ref()
            .filter(|_| config.llm == "auto");
        let client = match base_url {
            None => None,
            Some(base) => {
                crate::net::install_crypto_provider();
                let mut openai = OpenAIConfig::new().with_api_base(base.trim_end_matches('/'));
                if let Some(key) = &config.llm_api_key {
                    openai = openai.with_api_key(key);
                }
                let http = reqwest13::Client::builder()
                    .timeout(config.llm_timeout)
                    .build()?;
                // Our own retry loop (configurable, logged) replaces async-openai's
                // built-in retry layer, so requests are not retried twice over.
                let plain = async_openai::middleware::ReqwestService::new(http.clone());
                Some(
                    Client::with_config(openai)
                        .with_http_client(http)
                        .with_http_service(plain),
                )
            }
        };
        let (local, unavailable) = match (&client, config.llm.as_str()) {
            (None, "auto" | "local") => open_local(config),
            _ => (None, NOT_CONFIGURED.to_string()),
        };
        Ok(Llm {
            client,
            local,
            unavailable,
            prices,
            max_retries: config.llm_max_retries,
            backoff: config.llm_backoff,
            pool,
        })
    }

    pub fn is_configured(&self) -> bool {
        self.client.is_some() || self.local.is_some()
    }

    /// Why LLM calls are unavailable (when `is_configured` is false).
    pub fn unavailable_reason(&self) -> &str {
        &self.unavailable
    }

    /// Some(Retry-After) when the local model would refuse a call now as busy.
    pub fn busy(&self) -> Option<Duration> {
        self.local.as_ref().and_then(|local| local.is_full())
    }

    fn client(&self) -> Result<&Client<OpenAIConfig>, LlmError> {
        self.client
            .as_ref()
            .ok_or_else(|| LlmError::Unavailable(self.unavailable.clone()))
    }

    /// One chat completion; `request` is an OpenAI chat request body (no streaming).
    pub async fn chat(&self, key: &UsageKey, mut request: Value) -> Result<Value, LlmError> {
        if let Some(local) = self.local.as_ref().filter(|_| self.client.is_none()) {
            return self.chat_local(local, key, &request).await;
        }
        let client = self.client()?;
        self.within_budget(key).await?;
        request["stream"] = Value::Bool(false);
        let response: Value = self
            .with_retries(|| {
                let request = request.clone();
                async move { client.chat().create_byot::<_, Value>(request).await }
            })
            .await?;
        let model = response["model"]
            .as_str()
            .or(request["model"].as_str())
            .unwrap_or_default()
            .to_string();
        let usage = &response["usage"];
        self.record(
            key,
            &model,
            "chat",
            tokens(&usage["prompt_tokens"]),
            tokens(&usage["completion_tokens"]),
        )
        .await;
        Ok(response)
    }

    /// A non-streamed call answered by the local model, in the API's response shape.
    async fn chat_local(
        &self,
        local: &local::LocalModel,
        key: &UsageKey,
        request: &Value,
    ) -> Result<Value, LlmError> {
        self.within_budget(key).await?;
        let completion = local.chat_stream(request, &mut |_| {}).await?;
        self.record(
            key,
            &completion.model,
            "chat",
            completion.prompt_tokens,
            completion.completion_tokens,
        )
        .await;
        let mut message = serde_json::json!({ "role": "assistant",
            "content": (!completion.text.is_empty()).then_some(&completion.text) });
        if !completion.tool_calls.is_empty() {
            message["tool_calls"] = Value::Array(completion.tool_calls.clone());
        }
        Ok(serde_json::json!({
            "id": format!("chatcmpl-{}", Uuid::new_v4().simple()),
            "object": "chat.completion",
            "created": chrono::Utc::now().timestamp(),
            "model": completion.model,
            "choices": [{ "index": 0, "message": message,
                "finish_reason": completion.finish_reason.as_deref().unwrap_or("stop") }],
            "usage": { "prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens,
                "total_tokens": completion.prompt_tokens + completion.completion_tokens },
        }))
    }

    /// Embeddings of `texts`, in order.
    pub async fn embed(
        &self,
        key: &UsageKey,
        model: &str,
        texts: &[String],
    ) -> Result<Vec<Vec<f32>>, LlmError> {
        let client = self.client()?;
        let request =
            serde_json::json!({ "model": model, "input": texts, "encoding_format": "float" });
        let response: Value = self
            .with_retries(|| {
                let request = request.clone();
                async move { client.embeddings().create_byot::<_, Value>(request).await }
            })
            .await?;
        let mut data: Vec<(u64, Vec<f32>)> = Vec::new();
        for item in response["data"].as_array().into_iter().flatten() {
            let vector = item["embedding"]
                .as_array()
                .map(|v| {
                    v.iter()
                        .filter_map(Value::as_f64)
                        .map(|x| x as f32)
                        .collect()
                })
                .ok_or_else(|| {
                    LlmError::Unavailable("the provider returned no embedding".into())
                })?;
            data.push((item["index"].as_u64().unwrap_or(data.len() as u64), vector));
        }
        data.sort_by_key(|(index, _)| *index);
        if data.len() != texts.len() {
            return Err(LlmError::Unavailable(format!(
                "the provider returned {} embeddings for {} texts",
                data.len(),
                texts.len()
            )));
        }
        self.record(
            key,
            model,
            "embedding",
            tokens(&response["usage"]["prompt_tokens"]),
            0,
        )
        .await;
        Ok(data.into_iter().map(|(_, v)| v).collect())
    }

    /// Refuses a chat call for a workspace whose monthly budget is spent. A budget that
    /// can't be read (the database is away) lets the call through: the budget is a
    /// spending control, not a reason to stop every agent.
    async fn within_budget(&self, key: &UsageKey) -> Result<(), LlmError> {
        let Some(workspace) = key.workspace else {
            return Ok(());
        };
        match budget::check(&self.pool, workspace).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(exceeded)) => Err(LlmError::BudgetExceeded(Box::new(exceeded))),
            Err(error) => {
                tracing::warn!(%error, %workspace, "the LLM budget could not be checked");
                Ok(())
            }
        }
    }

    async fn with_retries<T, F, Fut>(&self, mut call: F) -> Result<T, LlmError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, OpenAIError>>,
    {
        let mut attempt = 0;
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(error) if attempt < self.max_retries && retryable(&error) => {
                    let base = self.backoff.saturating_mul(1 << attempt.min(16));
                    let jitter = rand::rng().random_range(0.0..0.25);
                    let delay = base.mul_f64(1.0 + jitter);
                    tracing::warn!(attempt, ?delay, %error, "LLM call failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(error) => return Err(classify(error, attempt)),
            }
        }
    }

    async fn record(
        &self,
        key: &UsageKey,
        model: &str,
        operation: &str,
        prompt: i32,
        completion: i32,
    ) {
        let cost = self.prices.get(model).map(|price| {
            (f64::from(prompt) * price.prompt + f64::from(completion) * price.completion) / 1e6
        });
        let agent_slug = key.agent.as_ref().map(|agent| agent.slug.as_str());
        crate::telemetry::metrics::llm_usage(model, agent_slug, prompt, completion, cost);
        let recorded = sqlx::query(
            "INSERT INTO llm_usage (workspace_id, plugin, agent, model, operation, \
             prompt_tokens, completion_tokens, cost_usd) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8::float8::numeric)",
        )
        .bind(key.workspace)
        .bind(&key.plugin)
        .bind(key.agent.as_ref().map(|agent| agent.id.to_string()))
        .bind(model)
        .bind(operation)
        .bind(prompt)
        .bind(completion)
        .bind(cost)
        .execute(&self.pool)
        .await;
        if let Err(error) = recorded {
            tracing::error!(%error, "recording LLM usage failed");
        }
        if let Some(workspace) = key.workspace {
            budget::after_use(&self.pool, workspace).await;
        }
    }

    /// Tokens a plugin used today (UTC), for its budget.
    pub async fn tokens_used_today(&self, plugin: &str) -> sqlx::Result<i64> {
        sqlx::query_scalar(
            "SELECT coalesce(sum(prompt_tokens + completion_tokens), 0)::int8 FROM llm_usage \
             WHERE plugin = $1 AND created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
        )
        .bind(plugin)
        .fetch_one(&self.pool)
        .await
    }
}

/// The local model when its file is there and sound; else why there is no LLM. Said at
/// start, in the log: a broken file must not go unnoticed until the first chat.
fn open_local(
    config: &crate::config::Config,
) -> (Option<std::sync::Arc<local::LocalModel>>, String) {
    let options = local::Options {
        model_file: config.llm_model_file.clone(),
        context_tokens: config.llm_context_tokens,
        queue: config.llm_queue,
    };
    let path = options.model_file.display().to_string();
    if config.llm == "auto" && !options.model_file.exists() {
        tracing::info!(model = %path, "no LLM: no --llm-base-url and no local model file (`make setup` installs it)");
        return (None, NOT_CONFIGURED.to_string());
    }
    match local::LocalModel::open(&options) {
        Ok(model) => {
            tracing::info!(model = %path, "LLM calls go to the local model (loaded on first use)");
            let only_chat = "the local model only chats: embeddings need an OpenAI-compatible \
                API (--llm-base-url), or --embedding-provider local";
            (Some(std::sync::Arc::new(model)), only_chat.to_string())
        }
        Err(error) => {
            let why = format!(
                "the local model can't be used: {error:#}; LLM calls answer \
                unavailable until it is fixed (`make setup` installs it, --llm-model-file names another)"
            );
            tracing::error!(model = %path, "{why}");
            (None, why)
        }
    }
}

fn tokens(value: &Value) -> i32 {
    value
        .as_i64()
        .and_then(|t| i32::try_from(t).ok())
        .unwrap_or(0)
}

fn retryable(error: &OpenAIError) -> bool {
    match error {
        OpenAIError::ApiError(api) => {
            api.status_code.as_u16() == 429 || api.status_code.is_server_error()
        }
        OpenAIError::Reqwest(_) | OpenAIError::StreamError(_) => true,
        _ => false,
    }
}

fn classify(error: OpenAIError, retries: u32) -> LlmError {
    match &error {
        OpenAIError::ApiError(api) if !retryable(&error) => LlmError::Rejected(format!(
            "the LLM provider refused the request ({}): {}",
            api.status_code, api.api_error.message
        )),
        _ => LlmError::Unavailable(format!(
            "the LLM provider failed after {} attempt(s): {error}",
            retries + 1
        )),
    }
}
