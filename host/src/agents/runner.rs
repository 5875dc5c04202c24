//! Agent turns for plugins (the `agents` capability): the same `Chat` as the REST
//! endpoint, answered as JSON, with the REST errors mapped to plugin error variants.

use std::sync::{Arc, Weak};

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::chat::{Chat, ChatInput, Emitter, TurnError, TurnGuard};
use crate::capabilities::agents::{AgentRunner, TurnFuture};
use crate::config::Config;
use crate::error::ApiError;
use crate::llm::LlmError;
use crate::registry::Registry;
use crate::runtime::bindings::Error;

#[derive(Debug)]
pub struct ChatRunner {
    pub pool: PgPool,
    /// Weak: the registry holds this runner (through its services).
    pub registry: Weak<Registry>,
    pub config: Arc<Config>,
}

impl AgentRunner for ChatRunner {
    fn run_turn<'a>(
        &'a self,
        workspace: Uuid,
        caller: &'a str,
        agent: &'a str,
        message: String,
        conversation: Option<Uuid>,
    ) -> TurnFuture<'a> {
        Box::pin(async move {
            let registry = self
                .registry
                .upgrade()
                .ok_or_else(|| Error::Unavailable("the host is shutting down".into()))?;
            let chat = Chat {
                pool: self.pool.clone(),
                registry,
                config: self.config.clone(),
            };
            let input = ChatInput {
                conversation_id: conversation,
                message,
            };
            let prepared = chat
                .prepare(workspace, caller, agent, input)
                .await
                .map_err(|error| match error {
                    ApiError::NotFound(m) => Error::NotFound(m),
                    ApiError::Invalid(m) => Error::Invalid(m),
                    ApiError::Conflict(m) | ApiError::Unavailable(m) => Error::Unavailable(m),
                    ApiError::BudgetExceeded(exceeded) => Error::Denied(exceeded.to_string()),
                    other => Error::Internal(other.to_string()),
                })?;
            let guard = TurnGuard::new(self.pool.clone(), prepared.turn_id);
            let timeout = self.config.chat_turn_timeout;
            match tokio::time::timeout(timeout, chat.run(prepared, &Emitter(None))).await {
                Ok(Ok(result)) => {
                    guard.finish();
                    let text = result.message["content"].clone();
                    let turn = json!({
                        "conversation_id": result.conversation_id,
                        "turn_id": result.turn_id,
                        // `awaiting_approval` when a gated tool paused the turn
                        // (docs/ai-sdk.md): a person answers it in the chat API.
                        "status": result.status,
                        "pending_approvals": result.pending_approvals,
                        "text": text,
                        "tool_calls": result.tool_calls,
                        "usage": result.usage,
                        "steps": result.steps,
                        "stopped": result.stopped,
                    });
                    Ok(turn.to_string())
                }
                Ok(Err(error)) => {
                    guard.finish();
                    Err(match error {
                        TurnError::Llm(LlmError::BudgetExceeded(e)) => Error::Denied(e.to_string()),
                        TurnError::Llm(e) => Error::Unavailable(e.to_string()),
                        TurnError::Database(e) => Error::Internal(crate::error::logged(
                            "the turn failed on the database",
                            &e,
                        )),
                    })
                }
                Err(_) => {
                    let why = format!("the turn took longer than {} s", timeout.as_secs());
                    guard.end("failed", &why).await;
                    Err(Error::Unavailable(why))
                }
            }
        })
    }
}
