//! The MCP requests we answer: `tools/list` and `tools/call` (plus what the SDK answers
//! itself: `initialize`, `server/discover`, `ping`).
//!
//! A call runs where the REST API runs it: plugin tools through the registry (input
//! schema, grants, limits, the invocation record), agents through the chat service.
//! Failures of the tool itself come back as `isError: true` with the message, so the
//! model calling it can read what went wrong; only requests that can't be routed
//! (unknown tool, a key without the right) are JSON-RPC errors.

use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};

use super::catalog::{self, Entry};
use crate::agents::chat::{Chat, ChatInput, Emitter, TurnError, TurnGuard, TurnResult};
use crate::auth::{KeyPrincipal, Principal, Role};
use crate::state::AppState;

const INSTRUCTIONS: &str = "The tools of an Agenthost workspace. `plugin__tool` runs one \
     plugin tool; `agent__<slug>` asks that agent one question (a chat turn, which may call \
     the agent's own tools) and returns its answer and a conversation_id to continue with.";

/// One per session (or per request, stateless): all it holds is the shared state; who
/// is calling is read from each request.
#[derive(Clone)]
pub struct McpServer {
    state: AppState,
}

impl McpServer {
    pub fn new(state: AppState) -> Self {
        McpServer { state }
    }

    /// Everything the key's workspace offers right now.
    async fn entries(&self, caller: &KeyPrincipal) -> Result<Vec<Entry>, ErrorData> {
        let agents = crate::agents::list(&self.state.pool, caller.workspace_id)
            .await
            .map_err(|err| internal(&err))?;
        Ok(catalog::entries(self.state.registry.tools(), agents))
    }

    async fn call_plugin(
        &self,
        caller: &KeyPrincipal,
        request_id: &str,
        info: &crate::registry::ToolInfo,
        arguments: Value,
    ) -> CallToolResult {
        let called = self
            .state
            .registry
            .invoke_tool_as(
                caller.workspace_id,
                request_id,
                &info.plugin,
                None,
                &info.name,
                &arguments,
                Some(crate::capabilities::automation::OnBehalf::key(caller)),
            )
            .await;
        match called {
            Ok(result) => structured(result.output),
            // The registry logged and recorded it; the caller gets the message.
            Err(err) => tool_error(err.to_string()),
        }
    }

    /// One chat turn with the agent, as `POST /api/agents/{agent}/chat` runs it
    /// without streaming.
    async fn call_agent(
        &self,
        caller: &KeyPrincipal,
        agent: &crate::agents::Agent,
        arguments: Value,
    ) -> CallToolResult {
        let input: ChatInput = match serde_json::from_value(arguments) {
            Ok(input) => input,
            Err(err) => {
                return tool_error(format!(
                    "the input must be {{\"message\": string, \"conversation_id\"?: uuid}}: {err}"
                ));
            }
        };
        let chat = Chat {
            pool: self.state.pool.clone(),
            registry: self.state.registry.clone(),
            config: self.state.config.clone(),
        };
        let who = format!("key:{}", caller.key_id);
        let prepared = match chat
            .prepare(caller.workspace_id, &who, &agent.slug, input)
            .await
        {
            Ok(mut prepared) => {
                prepared.on_behalf = Some(crate::capabilities::automation::OnBehalf::key(caller));
                prepared
            }
            Err(err) => return tool_error(err.to_string()),
        };
        let guard = TurnGuard::new(self.state.pool.clone(), prepared.turn_id);
        let turn_timeout = self.state.config.chat_turn_timeout;
        let ran = tokio::time::timeout(turn_timeout, chat.run(prepared, &Emitter(None))).await;
        match ran {
            Ok(Ok(result)) => {
                guard.finish();
                structured(turn_output(&result))
            }
            Ok(Err(TurnError::Database(err))) => {
                guard.finish();
                tool_error(crate::error::logged(
                    "the turn failed on the database",
                    &err,
                ))
            }
            Ok(Err(err)) => {
                guard.finish();
                tool_error(format!("the turn failed: {err}"))
            }
            Err(_) => {
                let message = timeout_message(turn_timeout);
                guard.end("failed", &message).await;
                tool_error(message)
            }
        }
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("agenthost", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let caller = caller(&context)?;
        // Viewers may look (as `GET /api/tools` lets them), not call.
        let tools = self
            .entries(&caller)
            .await?
            .iter()
            .map(Entry::to_tool)
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = caller(&context)?;
        if caller.role < Role::Member {
            return Err(ErrorData::invalid_request(
                format!(
                    "calling tools needs the member role or higher; this key is {} key",
                    caller.role.with_article()
                ),
                None,
            ));
        }
        let name = request.name.as_ref();
        let entry = self
            .entries(&caller)
            .await?
            .into_iter()
            .find(|entry| entry.name() == name)
            .ok_or_else(|| {
                ErrorData::invalid_params(
                    format!("unknown tool {name:?}: tools/list shows this workspace's tools"),
                    None,
                )
            })?;
        let arguments = Value::Object(request.arguments.unwrap_or_default());
        let result = match &entry {
            Entry::Plugin(info) => {
                self.call_plugin(&caller, &request_id(&context), info, arguments)
                    .await
            }
            Entry::Agent(agent) => self.call_agent(&caller, agent, arguments).await,
        };
        Ok(result.into())
    }
}

/// The workspace key the request was authenticated with (by `mcp::router`'s layers).
fn caller(context: &RequestContext<RoleServer>) -> Result<KeyPrincipal, ErrorData> {
    let principal = context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Principal>());
    match principal {
        Some(Principal::Key(key)) => Ok(key.clone()),
        _ => Err(ErrorData::internal_error(
            "the request reached the MCP handler without a workspace key",
            None,
        )),
    }
}

/// The HTTP request's id (`X-Request-Id`), so the invocation record names it.
fn request_id(context: &RequestContext<RoleServer>) -> String {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.headers.get("x-request-id"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// A result as `structuredContent` (when it is an object, as MCP requires) and always
/// as JSON text, for clients that read only `content`.
fn structured(output: Value) -> CallToolResult {
    let text = output.to_string();
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    if output.is_object() {
        result.structured_content = Some(output);
    }
    result
}

fn tool_error(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

/// An agent tool's output: the final text and how to continue the conversation.
fn turn_output(result: &TurnResult) -> Value {
    let answer = result.message["content"].as_str().unwrap_or_default();
    let tool_calls: Vec<Value> = result
        .tool_calls
        .iter()
        .map(|c| json!({ "plugin": c.plugin, "tool": c.tool, "outcome": c.outcome }))
        .collect();
    json!({
        "answer": answer,
        "conversation_id": result.conversation_id,
        "turn_id": result.turn_id,
        "status": result.status,
        "steps": result.steps,
        "tool_calls": tool_calls,
    })
}

fn timeout_message(limit: Duration) -> String {
    format!("the turn took longer than {} s", limit.as_secs())
}

fn internal(err: &dyn std::fmt::Display) -> ErrorData {
    tracing::error!(error = %err, "MCP request failed");
    ErrorData::internal_error(
        "internal server error (details are in the server log)",
        None,
    )
}
