//! Agents, chat, conversations, usage and health (docs/chat.md).
//!
//! `POST /api/agents/{id}/chat` takes our body (`{message, conversation_id?}`, or
//! `{conversation_id, approvals}` to answer a paused turn) and answers JSON, or with
//! `Accept: text/event-stream` the Vercel AI SDK UI message stream v1. It also takes
//! the body of the AI SDK's `useChat` (`{id, messages, trigger, messageId}`,
//! docs/ai-sdk.md), always answered with the stream: `useChat` sends no `Accept`.
//! Status codes: 200; 404 unknown agent, conversation or approval; 409 agent disabled,
//! or an approval already answered; 422 bad message or a conversation of another
//! agent; 503 no LLM configured (the message names the settings), or the provider
//! kept failing; 502 the provider refused the request. In a stream, errors after the
//! start are an `error` part. Either way the turn's outcome is recorded.

pub(super) mod schema;

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{Json, Path, Query};
use crate::agents::ai_sdk::{UiChatRequest, UiTurn};
use crate::agents::approvals::ApprovalAnswer;
use crate::agents::chat::{Chat, ChatInput, Emitter, Prepared, TurnError, TurnGuard};
use crate::agents::openai_compat::seed_history;
use crate::agents::stream::{ChatEvent, UiMessageEncoder};
use crate::agents::{self, AgentChanges, conversations, usage};
use crate::auth::{Role, WorkspaceCaller};
use crate::capabilities::automation::OnBehalf;
use crate::error::{ApiError, ApiResult};
use crate::llm::LlmError;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_agents, create_agent))
        .routes(routes!(get_agent, update_agent, delete_agent))
        .routes(routes!(chat))
        .routes(routes!(health))
        .routes(routes!(list_conversations))
        .routes(routes!(get_conversation, delete_conversation))
        .routes(routes!(get_usage))
}

/// Viewer: the workspace's agents, with each tool's availability.
#[utoipa::path(get, path = "/api/agents", tag = "agents",
    responses((status = 200, description = "The agents, each with its tools' availability (`tool_status`)", body = schema::AgentList)))]
async fn list_agents(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let agents = agents::list(&state.pool, caller.0.workspace_id).await?;
    let mut views: Vec<Value> = Vec::with_capacity(agents.len());
    for agent in &agents {
        views.push(agents::view(agent, &state.registry).await);
    }
    Ok(Json(json!({ "agents": views })))
}

/// Viewer: one agent.
#[utoipa::path(get, path = "/api/agents/{agent}", tag = "agents", params(("agent" = String, Path, description = "The agent's slug or id")),
    responses((status = 200, description = "The agent", body = schema::AgentView)))]
async fn get_agent(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(agent): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let agent = agents::get(&state.pool, caller.0.workspace_id, &agent).await?;
    Ok(Json(agents::view(&agent, &state.registry).await))
}

/// Admin: a new agent.
#[utoipa::path(post, path = "/api/agents", tag = "agents", request_body = schema::NewAgent,
    responses((status = 201, description = "The new agent", body = schema::AgentView)))]
async fn create_agent(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Json(new): Json<AgentChanges>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(Role::Admin)?;
    let agent = agents::create(&state.pool, caller.0.workspace_id, &new).await?;
    Ok((
        StatusCode::CREATED,
        Json(agents::view(&agent, &state.registry).await),
    ))
}

/// Admin: change an agent; absent fields keep their value, `null` resets.
#[utoipa::path(patch, path = "/api/agents/{agent}", tag = "agents", params(("agent" = String, Path, description = "The agent's slug or id")),
    request_body = AgentChanges,
    responses((status = 200, description = "The agent as changed", body = schema::AgentView)))]
async fn update_agent(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(agent): Path<String>,
    Json(changes): Json<AgentChanges>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Admin)?;
    let agent = agents::get(&state.pool, caller.0.workspace_id, &agent).await?;
    let agent = agents::update(&state.pool, &agent, &changes).await?;
    Ok(Json(agents::view(&agent, &state.registry).await))
}

/// Admin: delete an agent (its conversations stay).
#[utoipa::path(delete, path = "/api/agents/{agent}", tag = "agents", params(("agent" = String, Path, description = "The agent's slug or id")),
    responses((status = 204, description = "Deleted")))]
async fn delete_agent(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(agent): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    let agent = agents::get(&state.pool, caller.0.workspace_id, &agent).await?;
    // Conversations stay (their agent becomes null): they are the workspace's record.
    sqlx::query("DELETE FROM agents WHERE id = $1")
        .bind(agent.id)
        .execute(&state.pool)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Viewer: an agent's recent turns by outcome, tool errors and latency.
#[utoipa::path(get, path = "/api/agents/{agent}/health", tag = "agents", params(("agent" = String, Path, description = "The agent's slug or id")),
    responses((status = 200, description = "Turns and tool calls of the last 24 hours", body = schema::AgentHealth)))]
async fn health(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(agent): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let agent = agents::get(&state.pool, caller.0.workspace_id, &agent).await?;
    let mut health = usage::health(&state.pool, agent.id).await?;
    health["agent"] = json!(agent.slug);
    Ok(Json(health))
}

/// Viewer: LLM tokens and cost, grouped by agent, model or day.
#[utoipa::path(get, path = "/api/usage", tag = "agents", params(usage::UsageQuery),
    responses((status = 200, description = "Usage in the range, grouped", body = schema::Usage)))]
async fn get_usage(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Query(query): Query<usage::UsageQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    Ok(Json(
        usage::usage(&state.pool, caller.0.workspace_id, &query).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ConversationQuery {
    /// Only this agent's (slug or id).
    agent: Option<String>,
    /// How many (1-500, default 50).
    limit: Option<i64>,
}

/// Viewer: recent conversations, newest first.
#[utoipa::path(get, path = "/api/conversations", tag = "agents", params(ConversationQuery),
    responses((status = 200, description = "Conversations, newest first", body = schema::ConversationList)))]
async fn list_conversations(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Query(query): Query<ConversationQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let workspace = caller.0.workspace_id;
    let agent = match &query.agent {
        Some(agent) => Some(agents::get(&state.pool, workspace, agent).await?.id),
        None => None,
    };
    let limit = super::clamp_limit(query.limit, 50, 500);
    let list = conversations::list(&state.pool, workspace, agent, limit).await?;
    Ok(Json(json!({ "conversations": list })))
}

/// Viewer: a conversation with its messages, turns and pending approvals.
#[utoipa::path(get, path = "/api/conversations/{id}", tag = "agents", params(("id" = Uuid, Path, description = "The conversation id")),
    responses((status = 200, description = "The conversation and its record", body = schema::ConversationDetail)))]
async fn get_conversation(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    Ok(Json(
        conversations::detail(&state.pool, caller.0.workspace_id, id).await?,
    ))
}

/// Member: delete a conversation.
#[utoipa::path(delete, path = "/api/conversations/{id}", tag = "agents", params(("id" = Uuid, Path, description = "The conversation id")),
    responses((status = 204, description = "Deleted")))]
async fn delete_conversation(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Member)?;
    conversations::delete(&state.pool, caller.0.workspace_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Our own body, or the AI SDK's (told apart by its `messages`).
#[derive(Debug)]
enum ChatBody {
    Ours(OurChat),
    AiSdk(UiChatRequest),
}

/// The chat request, for the OpenAPI document: [`ChatBody`] reads it.
#[derive(Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
enum ChatRequest {
    Ours(OurChat),
    AiSdk(UiChatRequest),
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct OurChat {
    conversation_id: Option<Uuid>,
    message: Option<String>,
    /// Answers to the approvals a paused turn of `conversation_id` waits for.
    approvals: Option<Vec<ApprovalAnswer>>,
}

impl<'de> Deserialize<'de> for ChatBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = Value::deserialize(deserializer)?;
        if value.get("messages").is_some() {
            serde_json::from_value(value)
                .map(ChatBody::AiSdk)
                .map_err(D::Error::custom)
        } else {
            serde_json::from_value(value)
                .map(ChatBody::Ours)
                .map_err(D::Error::custom)
        }
    }
}

/// Member: one chat turn. Our body (`message`, or `approvals` for a paused turn)
/// answers JSON, or the AI SDK UI message stream with `Accept: text/event-stream`;
/// the AI SDK's `useChat` body is always answered with the stream.
#[utoipa::path(post, path = "/api/agents/{agent}/chat", tag = "agents", params(("agent" = String, Path, description = "The agent's slug or id")),
    request_body = ChatRequest,
    responses(
        (status = 200, description = "The turn (JSON: status, answer, tool calls, usage, pending approvals), or the UI message stream",
            content((schema::ChatTurn = "application/json"), (String = "text/event-stream"))),
        (status = 502, description = "The LLM provider refused the request", body = super::openapi::ErrorBody),
    ))]
async fn chat(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(agent): Path<String>,
    headers: HeaderMap,
    Json(body): Json<ChatBody>,
) -> ApiResult<Response> {
    caller.require(Role::Member)?;
    let chat = Chat {
        pool: state.pool.clone(),
        registry: state.registry.clone(),
        config: state.config.clone(),
    };
    let who = format!("key:{}", caller.0.key_id);
    let workspace = caller.0.workspace_id;
    let ours = match body {
        ChatBody::AiSdk(request) => {
            let mut prepared = prepare_ai_sdk(&chat, workspace, &who, &agent, &request).await?;
            prepared.on_behalf = Some(OnBehalf::key(&caller.0));
            return Ok(ui_stream(&state, chat, prepared));
        }
        ChatBody::Ours(ours) => ours,
    };
    let mut prepared = match (ours.message, ours.approvals, ours.conversation_id) {
        (Some(message), None, conversation_id) => {
            let input = ChatInput {
                conversation_id,
                message,
            };
            chat.prepare(workspace, &who, &agent, input).await?
        }
        (None, Some(answers), Some(conversation)) => {
            chat.resume(workspace, &who, &agent, conversation, &answers)
                .await?
        }
        (None, Some(_), None) => {
            return Err(ApiError::Invalid(
                "approvals answer a paused turn: send them with its conversation_id".into(),
            ));
        }
        (Some(_), Some(_), _) => {
            return Err(ApiError::Invalid(
                "send either a message or approvals, not both".into(),
            ));
        }
        (None, None, _) => return Err(ApiError::Invalid("message is required".into())),
    };
    // The turn's tools act for this key (capabilities::automation checks its role).
    prepared.on_behalf = Some(OnBehalf::key(&caller.0));
    let wants_stream = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if wants_stream {
        return Ok(ui_stream(&state, chat, prepared));
    }
    let guard = TurnGuard::new(state.pool.clone(), prepared.turn_id);
    let turn_timeout = state.config.chat_turn_timeout;
    let (conversation_id, turn_id) = (prepared.conversation_id, prepared.turn_id);
    let ran = tokio::time::timeout(turn_timeout, chat.run(prepared, &Emitter(None))).await;
    match ran {
        Ok(Ok(result)) => {
            guard.finish();
            Ok(axum::Json(result).into_response())
        }
        Ok(Err(err)) => {
            guard.finish();
            Ok(turn_error(&err, conversation_id, turn_id))
        }
        Err(_) => {
            let message = format!("the turn took longer than {} s", turn_timeout.as_secs());
            guard.end("failed", &message).await;
            Err(ApiError::Coded {
                status: StatusCode::GATEWAY_TIMEOUT,
                code: "turn_timeout",
                message,
            })
        }
    }
}

/// An AI SDK request as a turn of the conversation its chat id names: a new user
/// message (the conversation is made on the id's first use, with the client's earlier
/// messages as its history), or the answers to the approvals of its paused turn.
async fn prepare_ai_sdk(
    chat: &Chat,
    workspace: Uuid,
    who: &str,
    agent: &str,
    request: &UiChatRequest,
) -> ApiResult<Prepared> {
    let turn = request.read()?;
    let chat_id = request.chat_id();
    match turn {
        UiTurn::Approvals(answers) => {
            let conversation = conversations::find_chat(&chat.pool, workspace, chat_id)
                .await?
                .ok_or_else(|| {
                    ApiError::NotFound(format!("no chat {chat_id:?} in this workspace"))
                })?;
            chat.resume(workspace, who, agent, conversation, &answers)
                .await
        }
        UiTurn::Message { text, history } => {
            let agent_id = agents::get(&chat.pool, workspace, agent).await?.id;
            let (conversation, made) =
                conversations::for_chat(&chat.pool, workspace, agent_id, chat_id, &text, who)
                    .await?;
            if made && !history.is_empty() {
                seed_history(&chat.pool, conversation, &history).await?;
            }
            let input = ChatInput {
                conversation_id: Some(conversation),
                message: text,
            };
            match chat.prepare(workspace, who, agent, input).await {
                Ok(prepared) => Ok(prepared),
                Err(err) => {
                    if made {
                        // Nothing ran: the chat id stays free for the next try.
                        let _ = conversations::delete(&chat.pool, workspace, conversation).await;
                    }
                    Err(err)
                }
            }
        }
    }
}

/// The turn as the UI message stream, with the protocol's header.
fn ui_stream(state: &AppState, chat: Chat, prepared: Prepared) -> Response {
    let guard = TurnGuard::new(state.pool.clone(), prepared.turn_id);
    let mut encoder = UiMessageEncoder::default();
    let mut response = stream_turn(
        chat,
        prepared,
        guard,
        state.config.chat_turn_timeout,
        move |event| encoder.encode(event),
    );
    response.headers_mut().insert(
        "x-vercel-ai-ui-message-stream",
        HeaderValue::from_static("v1"),
    );
    response
}

/// An error that ended a turn, with the ids to look its record up by.
fn turn_error(err: &TurnError, conversation_id: Uuid, turn_id: Uuid) -> Response {
    let (status, code) = match err {
        TurnError::Llm(LlmError::Rejected(_)) => (StatusCode::BAD_GATEWAY, "llm_error"),
        TurnError::Llm(LlmError::Unavailable(_)) => {
            (StatusCode::SERVICE_UNAVAILABLE, "llm_unavailable")
        }
        TurnError::Llm(LlmError::BudgetExceeded(_)) => {
            (StatusCode::TOO_MANY_REQUESTS, "budget_exceeded")
        }
        TurnError::Llm(LlmError::Busy { .. }) => (StatusCode::TOO_MANY_REQUESTS, "llm_busy"),
        TurnError::Llm(LlmError::TooLong(_)) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "context_length_exceeded")
        }
        TurnError::Database(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    if let TurnError::Database(error) = err {
        tracing::error!(%error, "a chat turn failed on the database");
    }
    let request_id = crate::error::current_request_id();
    let message = match (err, &request_id) {
        (TurnError::Database(_), Some(id)) => {
            format!("internal server error (details are in the server log under request id {id})")
        }
        (TurnError::Database(_), None) => {
            "internal server error (details are in the server log)".into()
        }
        (other, _) => other.to_string(),
    };
    let mut body = json!({ "error": { "code": code, "message": message,
        "conversation_id": conversation_id, "turn_id": turn_id } });
    if let Some(id) = request_id.filter(|_| status.is_server_error()) {
        body["error"]["request_id"] = json!(id);
    }
    if let TurnError::Llm(LlmError::BudgetExceeded(exceeded)) = err {
        body["error"]["budget"] = json!(exceeded);
    }
    let mut response = (status, axum::Json(body)).into_response();
    if let TurnError::Llm(LlmError::Busy { retry_after }) = err {
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            HeaderValue::from(retry_after.as_secs().max(1)),
        );
    }
    response
}

/// Run the turn in its own task and stream what `encode` makes of its events as SSE,
/// ending with `data: [DONE]`. A client that goes away drops the receiver; the task
/// sees the channel close and its guard records the turn as cancelled. Shared with the
/// OpenAI-compatible route, which encodes the same events as `chat.completion.chunk`s.
pub(super) fn stream_turn(
    chat: Chat,
    prepared: Prepared,
    guard: TurnGuard,
    turn_timeout: Duration,
    mut encode: impl FnMut(ChatEvent) -> Vec<Value> + Send + 'static,
) -> Response {
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel::<ChatEvent>();
    let watch = sender.clone();
    tokio::spawn(async move {
        let emitter = Emitter(Some(sender));
        let finished = tokio::select! {
            ran = tokio::time::timeout(turn_timeout, chat.run(prepared, &emitter)) => Some(ran.is_ok()),
            _ = watch.closed() => None,
        };
        match finished {
            Some(true) => guard.finish(),
            Some(false) => {
                let message = format!("the turn took longer than {} s", turn_timeout.as_secs());
                emitter.emit(ChatEvent::Error(message.clone()));
                guard.end("failed", &message).await;
            }
            // The client left: dropping the guard records the turn as cancelled.
            None => drop(guard),
        }
    });
    let events = futures_util::stream::unfold((receiver, false), move |(receiver, done)| {
        let next = if done { None } else { Some(receiver) };
        async move {
            let mut receiver = next?;
            Some(match receiver.recv().await {
                Some(event) => (Some(event), (receiver, false)),
                None => (None, (receiver, true)),
            })
        }
    })
    .flat_map(move |event| {
        let events: Vec<Event> = match event {
            Some(event) => encode(event)
                .into_iter()
                .map(|part| Event::default().data(part.to_string()))
                .collect(),
            None => vec![Event::default().data("[DONE]")],
        };
        futures_util::stream::iter(events.into_iter().map(Ok::<_, std::convert::Infallible>))
    });
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(5)))
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
