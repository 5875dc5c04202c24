//! A chat turn: the user's message, then model -> tool calls (in parallel) -> results ->
//! model, until the model answers or the step limit is reached. Everything is recorded
//! as it happens, and a turn that is dropped half way (the client went away) is
//! recorded as cancelled, never left running.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::mpsc::UnboundedSender;
use uuid::Uuid;

use super::stream::ChatEvent;
use super::{Agent, conversations};
use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::llm::{LlmError, UsageKey};
use crate::registry::{Registry, ToolCallError, ToolInfo};

/// The most of a tool's output that is passed back to the model.
const MAX_TOOL_RESULT: usize = 32 * 1024;
const MAX_MESSAGE: usize = 32 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatInput {
    pub conversation_id: Option<Uuid>,
    pub message: String,
}

/// What a turn needs, checked and recorded before the first model call.
pub struct Prepared {
    pub agent: Agent,
    pub workspace: Uuid,
    pub conversation_id: Uuid,
    pub turn_id: Uuid,
    tools: Vec<ToolInfo>,
    messages: Vec<Value>,
    model: String,
    max_steps: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct ToolCallRecord {
    pub call_id: String,
    pub plugin: Option<String>,
    pub version: Option<String>,
    pub tool: String,
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub outcome: String,
    pub duration_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct TurnResult {
    pub conversation_id: Uuid,
    pub turn_id: Uuid,
    pub status: &'static str,
    pub message: Value,
    pub tool_calls: Vec<ToolCallRecord>,
    pub usage: Value,
    pub steps: u32,
    /// `step_limit` when the model still wanted tools at the last step.
    pub stopped: Option<&'static str>,
}

/// Why a turn ended without an answer; the turn is recorded as failed.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Everything a turn uses, cheap to clone into a task.
#[derive(Clone)]
pub struct Chat {
    pub pool: PgPool,
    pub registry: Arc<Registry>,
    pub config: Arc<Config>,
}

/// Where a turn's events go: nowhere for a JSON answer, a channel for a stream.
pub struct Emitter(pub Option<UnboundedSender<ChatEvent>>);

impl Emitter {
    pub fn emit(&self, event: ChatEvent) {
        if let Some(sender) = &self.0 {
            // A closed channel means the client left; the caller cancels the turn.
            let _ = sender.send(event);
        }
    }
}

impl Chat {
    /// Check the request, start or continue the conversation, record the user's
    /// message and the running turn. Errors here are plain HTTP errors.
    pub async fn prepare(
        &self,
        workspace: Uuid,
        caller: &str,
        agent: &str,
        input: ChatInput,
    ) -> ApiResult<Prepared> {
        let message = input.message.trim();
        if message.is_empty() || message.len() > MAX_MESSAGE {
            return Err(ApiError::Invalid(format!(
                "message must be 1-{MAX_MESSAGE} bytes"
            )));
        }
        let agent = super::get(&self.pool, workspace, agent).await?;
        if !agent.enabled {
            return Err(ApiError::Conflict(format!(
                "agent {} is disabled",
                agent.slug
            )));
        }
        let llm = &self.registry.services.llm;
        if !llm.is_configured() {
            return Err(ApiError::Unavailable(crate::llm::NOT_CONFIGURED.into()));
        }
        let conversation_id = match input.conversation_id {
            Some(id) => {
                let conversation = conversations::get(&self.pool, workspace, id).await?;
                if conversation.agent_id != Some(agent.id) {
                    return Err(ApiError::Invalid(format!(
                        "conversation {id} belongs to another agent"
                    )));
                }
                id
            }
            None => conversations::create(&self.pool, workspace, agent.id, message, caller).await?,
        };
        let turn_id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO turns (id, conversation_id, workspace_id, agent_id, status) \
             VALUES ($1, $2, $3, $4, 'running')",
        )
        .bind(turn_id)
        .bind(conversation_id)
        .bind(workspace)
        .bind(agent.id)
        .execute(&self.pool)
        .await?;
        let user = json!({ "role": "user", "content": message });
        conversations::add_messages(&self.pool, conversation_id, turn_id, &[user]).await?;

        let window = i64::from(self.config.chat_context_messages.max(1));
        let mut messages = Vec::new();
        if !agent.system_prompt.is_empty() {
            messages.push(json!({ "role": "system", "content": agent.system_prompt }));
        }
        messages.extend(conversations::context(&self.pool, conversation_id, window).await?);
        let tools = super::resolve_tools(&self.registry, &agent.tools.0)
            .await
            .into_iter()
            .filter_map(|status| {
                if let Some(problem) = &status.problem {
                    tracing::warn!(agent = %agent.slug, %problem, "agent tool not offered");
                }
                status.info.filter(|_| status.available)
            })
            .collect();
        Ok(Prepared {
            workspace,
            conversation_id,
            turn_id,
            tools,
            messages,
            model: agent
                .model
                .clone()
                .unwrap_or_else(|| self.config.llm_default_model.clone()),
            max_steps: agent
                .max_steps
                .map_or(self.config.chat_max_steps, |s| s.max(1) as u32),
            agent,
        })
    }

    /// Run the tool loop of a prepared turn and record how it ended.
    pub async fn run(&self, turn: Prepared, events: &Emitter) -> Result<TurnResult, TurnError> {
        let started = Instant::now();
        events.emit(ChatEvent::Start {
            message_id: format!("msg-{}", turn.turn_id.simple()),
            conversation_id: turn.conversation_id.to_string(),
            turn_id: turn.turn_id.to_string(),
        });
        let mut progress = Progress::default();
        let result = self.steps(&turn, events, &mut progress).await;
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let (status, error) = match &result {
            Ok(stopped) => ("completed", stopped.map(str::to_string)),
            Err(err) => ("failed", Some(err.to_string())),
        };
        crate::telemetry::metrics::chat_turn(status);
        sqlx::query(
            "UPDATE turns SET status = $2, error = $3, steps = $4, prompt_tokens = $5, \
             completion_tokens = $6, duration_ms = $7, finished_at = now() WHERE id = $1",
        )
        .bind(turn.turn_id)
        .bind(status)
        .bind(&error)
        .bind(progress.steps as i32)
        .bind(progress.prompt_tokens)
        .bind(progress.completion_tokens)
        .bind(duration_ms)
        .execute(&self.pool)
        .await?;
        let usage = json!({
            "prompt_tokens": progress.prompt_tokens,
            "completion_tokens": progress.completion_tokens,
            "total_tokens": progress.prompt_tokens + progress.completion_tokens,
        });
        match result {
            Ok(stopped) => {
                events.emit(ChatEvent::Finish {
                    reason: if stopped.is_some() { "length" } else { "stop" }.into(),
                    usage: usage.clone(),
                });
                Ok(TurnResult {
                    conversation_id: turn.conversation_id,
                    turn_id: turn.turn_id,
                    status,
                    message: json!({ "role": "assistant", "content": progress.answer }),
                    tool_calls: progress.tool_calls,
                    usage,
                    steps: progress.steps,
                    stopped,
                })
            }
            Err(err) => {
                events.emit(ChatEvent::Error(err.to_string()));
                Err(err)
            }
        }
    }

    async fn steps(
        &self,
        turn: &Prepared,
        events: &Emitter,
        progress: &mut Progress,
    ) -> Result<Option<&'static str>, TurnError> {
        let llm = &self.registry.services.llm;
        let key = UsageKey {
            workspace: Some(turn.workspace),
            plugin: None,
            agent: Some(turn.agent.id.to_string()),
        };
        let tools: Vec<Value> = turn
            .tools
            .iter()
            .map(|t| {
                json!({ "type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.input_schema,
                }})
            })
            .collect();
        let mut messages = turn.messages.clone();
        for step in 1..=turn.max_steps {
            events.emit(ChatEvent::StepStart);
            let last = step == turn.max_steps;
            let mut request = json!({ "model": turn.model, "messages": messages });
            if let Some(temperature) = turn.agent.temperature {
                request["temperature"] = json!(temperature);
            }
            if !tools.is_empty() {
                request["tools"] = Value::Array(tools.clone());
                // The last step must answer with what it has.
                if last {
                    request["tool_choice"] = json!("none");
                }
            }
            let mut on_text = |text: &str| events.emit(ChatEvent::TextDelta(text.to_string()));
            let completion = llm.chat_stream(&key, request, &mut on_text).await?;
            progress.steps = step;
            progress.prompt_tokens += completion.prompt_tokens;
            progress.completion_tokens += completion.completion_tokens;
            let text = (!completion.text.is_empty()).then(|| completion.text.clone());
            if completion.tool_calls.is_empty() || last {
                let answer = json!({ "role": "assistant", "content": completion.text });
                conversations::add_messages(
                    &self.pool,
                    turn.conversation_id,
                    turn.turn_id,
                    &[answer],
                )
                .await?;
                progress.answer = completion.text;
                events.emit(ChatEvent::StepFinish);
                let stopped = (!completion.tool_calls.is_empty()).then_some("step_limit");
                return Ok(stopped);
            }
            let calls = completion.tool_calls;
            for call in &calls {
                events.emit(ChatEvent::ToolInput {
                    call_id: call_id(call),
                    tool: call["function"]["name"].as_str().unwrap_or_default().into(),
                    input: arguments(call),
                });
            }
            let records =
                futures_util::future::join_all(calls.iter().map(|call| self.call_tool(turn, call)))
                    .await;
            let mut new_messages =
                vec![json!({ "role": "assistant", "content": text, "tool_calls": calls })];
            for record in &records {
                events.emit(match (&record.output, &record.error) {
                    (Some(output), None) => ChatEvent::ToolOutput {
                        call_id: record.call_id.clone(),
                        output: output.clone(),
                    },
                    _ => ChatEvent::ToolError {
                        call_id: record.call_id.clone(),
                        error: record.error.clone().unwrap_or_default(),
                    },
                });
                new_messages.push(json!({
                    "role": "tool", "tool_call_id": record.call_id, "content": tool_result(record),
                }));
            }
            self.record_tool_calls(turn, &records).await?;
            conversations::add_messages(
                &self.pool,
                turn.conversation_id,
                turn.turn_id,
                &new_messages,
            )
            .await?;
            messages.extend(new_messages);
            progress.tool_calls.extend(records);
            events.emit(ChatEvent::StepFinish);
        }
        Ok(Some("step_limit"))
    }

    /// Run one tool call the model asked for. Every failure becomes a result the model
    /// can read (and the record keeps its outcome); none ends the turn.
    async fn call_tool(&self, turn: &Prepared, call: &Value) -> ToolCallRecord {
        let name = call["function"]["name"].as_str().unwrap_or_default();
        let mut record = ToolCallRecord {
            call_id: call_id(call),
            plugin: None,
            version: None,
            tool: name.to_string(),
            input: arguments(call),
            output: None,
            error: None,
            outcome: "ok".into(),
            duration_ms: 0.0,
        };
        let Some(tool) = turn.tools.iter().find(|t| t.name == name) else {
            record.outcome = "not_found".into();
            record.error = Some(format!("this agent has no tool named {name:?}"));
            return record;
        };
        record.plugin = Some(tool.plugin.clone());
        record.version = Some(tool.version.clone());
        if !record.input.is_object() {
            record.outcome = "invalid_input".into();
            record.error = Some("the tool arguments are not a JSON object".into());
            return record;
        }
        let started = Instant::now();
        let timeout = self.config.chat_tool_timeout;
        let invoked = tokio::time::timeout(
            timeout,
            self.registry.invoke_tool_at(
                turn.workspace,
                &turn.turn_id.to_string(),
                &tool.plugin,
                Some(&tool.version),
                name,
                &record.input,
            ),
        )
        .await;
        record.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        match invoked {
            Ok(Ok(result)) => record.output = Some(result.output),
            Ok(Err(err)) => {
                record.outcome = match &err {
                    ToolCallError::NotFound(_) => "not_found",
                    ToolCallError::InvalidInput(_) => "invalid_input",
                    ToolCallError::BadOutput(_) => "bad_output",
                    ToolCallError::Invoke(invoke) => invoke.outcome(),
                }
                .into();
                record.error = Some(err.to_string());
            }
            Err(_) => {
                record.outcome = "timeout".into();
                record.error = Some(format!(
                    "the tool did not finish within {} ms",
                    timeout.as_millis()
                ));
            }
        }
        record
    }

    async fn record_tool_calls(
        &self,
        turn: &Prepared,
        records: &[ToolCallRecord],
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO tool_calls (turn_id, workspace_id, agent_id, call_id, plugin, version, \
             tool, input, output, error, outcome, duration_ms) \
             SELECT $1, $2, $3, r.call_id, r.plugin, r.version, r.tool, r.input, r.output, \
             r.error, r.outcome, r.duration_ms \
             FROM jsonb_to_recordset($4::jsonb) AS r(call_id text, plugin text, version text, \
             tool text, input jsonb, output jsonb, error text, outcome text, \
             duration_ms float8)",
        )
        .bind(turn.turn_id)
        .bind(turn.workspace)
        .bind(turn.agent.id)
        .bind(serde_json::to_value(records).unwrap_or_default())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[derive(Default)]
struct Progress {
    steps: u32,
    prompt_tokens: i32,
    completion_tokens: i32,
    answer: String,
    tool_calls: Vec<ToolCallRecord>,
}

fn call_id(call: &Value) -> String {
    call["id"].as_str().unwrap_or_default().to_string()
}

/// The call's arguments parsed; text that isn't JSON is kept as a string.
fn arguments(call: &Value) -> Value {
    let text = call["function"]["arguments"].as_str().unwrap_or("{}");
    let text = if text.trim().is_empty() { "{}" } else { text };
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// What the model reads back from a tool call.
fn tool_result(record: &ToolCallRecord) -> String {
    match (&record.output, &record.error) {
        (Some(output), None) => {
            let text = output.to_string();
            if text.len() <= MAX_TOOL_RESULT {
                text
            } else {
                json!({ "error": format!(
                    "the tool's output is {} bytes, more than the {MAX_TOOL_RESULT} passed to the model",
                    text.len()) })
                .to_string()
            }
        }
        (_, error) => json!({ "error": error, "outcome": record.outcome }).to_string(),
    }
}

/// Marks its turn cancelled if dropped before `finish` — the request future was
/// dropped because the client disconnected or the turn was cut off.
pub struct TurnGuard {
    pool: PgPool,
    turn_id: Uuid,
    started: Instant,
    finished: bool,
}

impl TurnGuard {
    pub fn new(pool: PgPool, turn_id: Uuid) -> Self {
        TurnGuard {
            pool,
            turn_id,
            started: Instant::now(),
            finished: false,
        }
    }

    pub fn finish(mut self) {
        self.finished = true;
    }

    /// Record the turn as ended for `reason` (a timeout) now, instead of at drop.
    pub async fn end(mut self, status: &str, reason: &str) {
        self.finished = true;
        end_turn(
            &self.pool,
            self.turn_id,
            status,
            reason,
            self.started.elapsed(),
        )
        .await;
    }
}

impl Drop for TurnGuard {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let (pool, turn_id, elapsed) = (self.pool.clone(), self.turn_id, self.started.elapsed());
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let reason = "the client disconnected before the turn finished";
                end_turn(&pool, turn_id, "cancelled", reason, elapsed).await;
            });
        }
    }
}

async fn end_turn(pool: &PgPool, turn: Uuid, status: &str, reason: &str, elapsed: Duration) {
    let ended = sqlx::query(
        "UPDATE turns SET status = $2, error = $3, duration_ms = $4, finished_at = now() \
         WHERE id = $1 AND status = 'running'",
    )
    .bind(turn)
    .bind(status)
    .bind(reason)
    .bind(elapsed.as_secs_f64() * 1000.0)
    .execute(pool)
    .await;
    match ended {
        // Only the first end of a turn counts (the guard may end one already recorded).
        Ok(done) if done.rows_affected() == 1 => crate::telemetry::metrics::chat_turn(status),
        Ok(_) => {}
        Err(error) => tracing::error!(%error, %turn, "could not record the end of a turn"),
    }
}

/// At start: turns still `running` from a host that stopped mid-turn can't finish.
pub async fn sweep_interrupted_turns(pool: &PgPool, turn_timeout: Duration) -> sqlx::Result<()> {
    let swept = sqlx::query(
        "UPDATE turns SET status = 'cancelled', error = 'the host stopped during the turn', \
         finished_at = now() WHERE status = 'running' AND started_at < now() - $1::interval",
    )
    .bind(format!("{} milliseconds", turn_timeout.as_millis()))
    .execute(pool)
    .await?
    .rows_affected();
    if swept > 0 {
        tracing::warn!(
            swept,
            "turns interrupted by a stop were recorded as cancelled"
        );
    }
    Ok(())
}
