//! The OpenAI-compatible endpoint (docs/chat.md): `GET /v1/models` lists the
//! workspace's enabled agents (`GET /v1/models/{model}` shows one, OpenAI's
//! `models.retrieve`), `POST /v1/chat/completions` runs a chat turn with the
//! agent named by `model`, exactly as `/api/agents/{agent}/chat` does, answered as a
//! `chat.completion` or a stream of `chat.completion.chunk`s.
//!
//! A conversation is continued with `X-Conversation-Id` (or `metadata.conversation_id`);
//! then only the last message is new. Without one, the request's messages are the
//! history of a new conversation. Either way its id comes back in `X-Conversation-Id`.
//!
//! Errors are in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`,
//! authentication's included: these routes authenticate inside their own error layer.

mod schema;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{Json, Path};
use crate::agents::chat::{Chat, ChatInput, Emitter, TurnError, TurnGuard};
use crate::agents::openai_compat::{
    ChunkEncoder, CompletionRequest, completion, error_type, seed_history, split_messages,
};
use crate::agents::{self, conversations};
use crate::auth::{self, Role, WorkspaceCaller};
use crate::error::{ApiError, ApiResult, code_for_status};
use crate::llm::LlmError;
use crate::state::AppState;

pub const CONVERSATION_HEADER: &str = "x-conversation-id";

pub fn router(state: AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(models))
        .routes(routes!(model))
        .routes(routes!(completions))
        .route_layer(middleware::from_fn_with_state(state, auth::authenticate))
        .layer(middleware::from_fn(openai_errors))
}

/// An enabled agent as an OpenAI model object.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OpenAiModel)]
struct Model {
    /// The agent's slug: what `model` names in a chat completion.
    id: String,
    /// Always `model`.
    object: String,
    /// When the agent was created (Unix seconds).
    created: i64,
    /// Always `agenthost`.
    owned_by: String,
}

impl Model {
    fn of(agent: &agents::Agent) -> Model {
        Model {
            id: agent.slug.clone(),
            object: "model".into(),
            created: agent.created_at.timestamp(),
            owned_by: "agenthost".into(),
        }
    }
}

/// Viewer: the workspace's enabled agents, each a "model" named by its slug.
#[utoipa::path(get, path = "/v1/models", tag = "openai",
    responses((status = 200, description = "An OpenAI model list", body = schema::ModelList,
        example = json!({"object": "list", "data": [{"id": "dexter", "object": "model", "created": 1764633600, "owned_by": "agenthost"}]}))))]
async fn models(caller: WorkspaceCaller, State(state): State<AppState>) -> ApiResult<Response> {
    caller.require(Role::Viewer)?;
    let agents = agents::list(&state.pool, caller.0.workspace_id).await?;
    let data: Vec<Model> = agents.iter().filter(|a| a.enabled).map(Model::of).collect();
    Ok(axum::Json(json!({ "object": "list", "data": data })).into_response())
}

/// Viewer: one enabled agent as a model (OpenAI's `models.retrieve`), by slug or id.
#[utoipa::path(get, path = "/v1/models/{model}", tag = "openai",
    params(("model" = String, Path, description = "The agent's slug (or id)")),
    responses((status = 200, description = "An OpenAI model object; 404 `model_not_found` when no enabled agent has that name", body = Model)))]
async fn model(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(model): Path<String>,
) -> ApiResult<axum::Json<Model>> {
    caller.require(Role::Viewer)?;
    let workspace = caller.0.workspace_id;
    let slug = agent_for_model(&state, workspace, &model).await?;
    let agent = agents::get(&state.pool, workspace, &slug).await?;
    Ok(axum::Json(Model::of(&agent)))
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(message.into())
}

/// The conversation to continue: the header, else `metadata.conversation_id`.
fn conversation_id(headers: &HeaderMap, request: &CompletionRequest) -> ApiResult<Option<Uuid>> {
    let from_header = headers
        .get(CONVERSATION_HEADER)
        .map(|v| v.to_str().unwrap_or_default().trim().to_string());
    let from_metadata = request
        .metadata
        .as_ref()
        .and_then(|m| m.get("conversation_id"))
        .and_then(Value::as_str)
        .map(str::to_string);
    match from_header.or(from_metadata) {
        None => Ok(None),
        Some(id) => Uuid::parse_str(&id)
            .map(Some)
            .map_err(|_| bad_request(format!("conversation id {id:?} is not a UUID"))),
    }
}

/// The enabled agent `model` names, or a 404 that lists the ones there are.
async fn agent_for_model(state: &AppState, workspace: Uuid, model: &str) -> ApiResult<String> {
    let all = agents::list(&state.pool, workspace).await?;
    if let Some(agent) = all
        .iter()
        .find(|a| a.enabled && (a.slug == model || a.id.to_string() == model))
    {
        return Ok(agent.slug.clone());
    }
    let known: Vec<&str> = all
        .iter()
        .filter(|a| a.enabled)
        .map(|a| a.slug.as_str())
        .collect();
    Err(ApiError::Coded {
        status: StatusCode::NOT_FOUND,
        code: "model_not_found",
        message: format!(
            "the model {model:?} does not exist: models are this workspace's enabled agents ({})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ),
    })
}

/// Member: one chat turn with the agent named by `model`, as OpenAI Chat Completions
/// (JSON, or `chat.completion.chunk` events with `"stream": true`). Tools run on the
/// server; continue a conversation with the `X-Conversation-Id` header.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "openai",
    params(("X-Conversation-Id" = Option<Uuid>, Header, nullable = false, description = "Continue this conversation")),
    request_body(content = CompletionRequest, description = "An OpenAI Chat Completions request; fields we don't use are ignored",
        example = json!({"model": "dexter", "messages": [{"role": "user", "content": "Which deals closed last month?"}]})),
    responses(
        (status = 200, description = "A `chat.completion`, or with `stream: true` server-sent `chat.completion.chunk`s ending with `data: [DONE]`",
            headers(("X-Conversation-Id" = Uuid, description = "The conversation of this turn")),
            content((schema::ChatCompletion = "application/json"), (String = "text/event-stream"))),
    ))]
async fn completions(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<CompletionRequest>,
) -> ApiResult<Response> {
    caller.require(Role::Member)?;
    if request.n.is_some_and(|n| n != 1) {
        return Err(bad_request("n must be 1: an agent gives one answer"));
    }
    if let Some(t) = request.temperature
        && !(0.0..=2.0).contains(&t)
    {
        return Err(bad_request(format!(
            "temperature {t} must be between 0 and 2"
        )));
    }
    let continued = conversation_id(&headers, &request)?;
    let (message, history) = split_messages(&request.messages).map_err(bad_request)?;
    let workspace = caller.0.workspace_id;
    let slug = agent_for_model(&state, workspace, &request.model).await?;
    let chat = Chat {
        pool: state.pool.clone(),
        registry: state.registry.clone(),
        config: state.config.clone(),
    };
    let who = format!("key:{}", caller.0.key_id);
    // Stateless: the client's earlier messages start a new conversation of ours.
    let seeded = match continued {
        None if !history.is_empty() => {
            let agent = agents::get(&state.pool, workspace, &slug).await?;
            let id =
                conversations::create(&state.pool, workspace, agent.id, &message, &who).await?;
            seed_history(&state.pool, id, &history).await?;
            Some(id)
        }
        _ => None,
    };
    let input = ChatInput {
        conversation_id: continued.or(seeded),
        message,
    };
    let mut prepared = match chat.prepare(workspace, &who, &slug, input).await {
        Ok(mut prepared) => {
            prepared.on_behalf = Some(crate::capabilities::automation::OnBehalf::key(&caller.0));
            prepared
        }
        Err(err) => {
            if let Some(id) = seeded {
                // Nothing ran: don't keep the history of a turn that never started.
                let _ = conversations::delete(&state.pool, workspace, id).await;
            }
            return Err(err);
        }
    };
    if let Some(t) = request.temperature {
        prepared.agent.temperature = Some(t);
    }
    let created = chrono::Utc::now().timestamp();
    let conversation = HeaderValue::from_str(&prepared.conversation_id.to_string())
        .map_err(anyhow::Error::from)?;
    let guard = TurnGuard::new(state.pool.clone(), prepared.turn_id);
    let turn_timeout = state.config.chat_turn_timeout;
    let mut response = if request.stream {
        let include_usage = request.stream_options.is_some_and(|o| o.include_usage);
        let encoder = ChunkEncoder::new(prepared.turn_id, &slug, created, include_usage);
        let mut encoder = encoder;
        super::agents::stream_turn(chat, prepared, guard, turn_timeout, move |event| {
            encoder.encode(event)
        })
    } else {
        let ran = tokio::time::timeout(turn_timeout, chat.run(prepared, &Emitter(None))).await;
        match ran {
            Ok(Ok(result)) => {
                guard.finish();
                axum::Json(completion(&result, &slug, created)).into_response()
            }
            Ok(Err(err)) => {
                guard.finish();
                turn_error(err).into_response()
            }
            Err(_) => {
                let message = format!("the turn took longer than {} s", turn_timeout.as_secs());
                guard.end("failed", &message).await;
                ApiError::Coded {
                    status: StatusCode::GATEWAY_TIMEOUT,
                    code: "turn_timeout",
                    message,
                }
                .into_response()
            }
        }
    };
    response
        .headers_mut()
        .insert(CONVERSATION_HEADER, conversation);
    Ok(response)
}

fn turn_error(err: TurnError) -> ApiError {
    match err {
        TurnError::Llm(LlmError::Rejected(message)) => ApiError::Coded {
            status: StatusCode::BAD_GATEWAY,
            code: "llm_error",
            message,
        },
        TurnError::Llm(LlmError::Unavailable(message)) => ApiError::Coded {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "llm_unavailable",
            message,
        },
        TurnError::Llm(LlmError::BudgetExceeded(exceeded)) => ApiError::BudgetExceeded(exceeded),
        TurnError::Llm(LlmError::Busy { retry_after }) => ApiError::RateLimited {
            retry_after_secs: retry_after.as_secs().max(1),
        },
        TurnError::Llm(LlmError::TooLong(message)) => ApiError::Coded {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "context_length_exceeded",
            message,
        },
        TurnError::Database(err) => ApiError::Internal(err.into()),
    }
}

/// Every error of these routes in OpenAI's shape, whoever made it (our `ApiError`s,
/// authentication, the extractors, the router's 405). A 422 (well-formed JSON that
/// breaks a rule) is OpenAI's 400 `invalid_request_error`.
async fn openai_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = to_bytes(body, 64 * 1024).await.unwrap_or_default();
    let ours: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    let message = match ours["error"]["message"].as_str() {
        Some(message) => message.to_string(),
        None if !text.is_empty() => text,
        None => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase(),
    };
    let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
        StatusCode::BAD_REQUEST
    } else {
        status
    };
    let code = match ours["error"]["code"].as_str() {
        Some("unauthorized") => "invalid_api_key".to_string(),
        Some("invalid") => "invalid_request".to_string(),
        Some(code) => code.to_string(),
        None => code_for_status(status).to_string(),
    };
    let mut body = json!({ "error": {
        "message": message, "type": error_type(status.as_u16()), "param": null, "code": code,
    }});
    // A server error's request id, the key to its log lines, passes through.
    if let Some(request_id) = ours["error"].get("request_id") {
        body["error"]["request_id"] = request_id.clone();
    }
    // A spent budget's figures (used, budget, resets_at) pass through too.
    if let Some(budget) = ours["error"].get("budget") {
        body["error"]["budget"] = budget.clone();
    }
    parts.status = status;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body.to_string()))
}
