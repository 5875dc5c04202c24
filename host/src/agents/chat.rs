//! A chat turn: the user's message, then model -> tool calls (in parallel) -> results ->
//! model, until the model answers or the step limit is reached. Everything is recorded
//! as it happens, and a turn that is dropped half way (the client went away) is
//! recorded as cancelled, never left running.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::mpsc::UnboundedSender;
use uuid::Uuid;

use super::approvals::{self, ApprovalAnswer, Decision, PendingApproval};
use super::stream::ChatEvent;
use super::{Agent, conversations};
use crate::capabilities::automation::OnBehalf;
use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::llm::{LlmError, UsageKey};
use crate::registry::{Registry, ToolCallError, ToolInfo};

mod guard;
pub use guard::{TurnGuard, sweep_interrupted_turns};

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
    /// Names of the offered tools whose calls wait for approval.
    gated: HashSet<String>,
    messages: Vec<Value>,
    model: String,
    max_steps: u32,
    /// Steps taken before the turn paused for approvals (0 for a new turn).
    steps_done: u32,
    /// The answered approvals a resumed turn starts with.
    decisions: Vec<Decision>,
    /// The person the turn's tool calls act for (the chatting key); none for a turn a
    /// plugin started, whose tools may then only read (capabilities::automation).
    pub on_behalf: Option<OnBehalf>,
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
    /// With status `awaiting_approval`: the calls to answer (docs/ai-sdk.md).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending_approvals: Vec<PendingApproval>,
}

/// How the tool loop ended.
enum Ending {
    Answered,
    StepLimit,
    AwaitingApproval(Vec<PendingApproval>),
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
        let agent = self.ready_agent(workspace, agent).await?;
        let conversation_id = match input.conversation_id {
            Some(id) => {
                self.check_conversation(workspace, &agent, id).await?;
                // Calls still waiting will never be answered now.
                approvals::expire_pending(&self.pool, id).await?;
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
        let messages = self.context(&agent, conversation_id).await?;
        let mut prepared = self
            .prepared(agent, workspace, conversation_id, turn_id)
            .await;
        prepared.messages = messages;
        Ok(prepared)
    }

    /// Take up a turn that paused for approvals, with the client's answers (every
    /// pending call of the turn). The approved calls run when the turn does.
    pub async fn resume(
        &self,
        workspace: Uuid,
        caller: &str,
        agent: &str,
        conversation_id: Uuid,
        answers: &[ApprovalAnswer],
    ) -> ApiResult<Prepared> {
        let agent = self.ready_agent(workspace, agent).await?;
        self.check_conversation(workspace, &agent, conversation_id)
            .await?;
        let resumed =
            approvals::answer(&self.pool, workspace, conversation_id, answers, caller).await?;
        let mut prepared = self
            .prepared(agent, workspace, conversation_id, resumed.turn_id)
            .await;
        prepared.steps_done = resumed.steps_done;
        prepared.decisions = resumed.decisions;
        Ok(prepared)
    }

    /// The agent, if it may chat now.
    async fn ready_agent(&self, workspace: Uuid, agent: &str) -> ApiResult<Agent> {
        let agent = super::get(&self.pool, workspace, agent).await?;
        if !agent.enabled {
            return Err(ApiError::Conflict(format!(
                "agent {} is disabled",
                agent.slug
            )));
        }
        let llm = &self.registry.services.llm;
        if !llm.is_configured() {
            return Err(ApiError::Unavailable(llm.unavailable_reason().into()));
        }
        // The local model's queue is full: a 429 now rather than a failed stream.
        if let Some(retry_after) = llm.busy() {
            return Err(ApiError::RateLimited {
                retry_after_secs: retry_after.as_secs().max(1),
            });
        }
        // Before the turn starts, so a spent budget is a 429, not a failed stream.
        if let Err(exceeded) = crate::llm::budget::check(&self.pool, workspace).await? {
            return Err(ApiError::BudgetExceeded(Box::new(exceeded)));
        }
        Ok(agent)
    }

    async fn check_conversation(&self, workspace: Uuid, agent: &Agent, id: Uuid) -> ApiResult<()> {
        let conversation = conversations::get(&self.pool, workspace, id).await?;
        if conversation.agent_id != Some(agent.id) {
            return Err(ApiError::Invalid(format!(
                "conversation {id} belongs to another agent"
            )));
        }
        Ok(())
    }

    /// What the model reads: the system prompt, then the conversation's window.
    async fn context(&self, agent: &Agent, conversation: Uuid) -> sqlx::Result<Vec<Value>> {
        let window = i64::from(self.config.chat_context_messages.max(1));
        let mut messages = Vec::new();
        if !agent.system_prompt.is_empty() {
            messages.push(json!({ "role": "system", "content": agent.system_prompt }));
        }
        messages.extend(conversations::context(&self.pool, conversation, window).await?);
        Ok(messages)
    }

    /// A turn with the agent's offered tools, ready to run (messages still empty).
    async fn prepared(
        &self,
        agent: Agent,
        workspace: Uuid,
        conversation_id: Uuid,
        turn_id: Uuid,
    ) -> Prepared {
        let tools: Vec<ToolInfo> = super::resolve_tools(&self.registry, &agent.tools.0)
            .await
            .into_iter()
            .filter_map(|status| {
                if let Some(problem) = &status.problem {
                    tracing::warn!(agent = %agent.slug, %problem, "agent tool not offered");
                }
                status.info.filter(|_| status.available)
            })
            .collect();
        let gated = agent
            .tools
            .0
            .iter()
            .filter(|r| r.requires_approval && tools.iter().any(|t| t.name == r.tool))
            .map(|r| r.tool.clone())
            .collect();
        Prepared {
            workspace,
            conversation_id,
            turn_id,
            tools,
            gated,
            messages: Vec::new(),
            model: agent
                .model
                .clone()
                .unwrap_or_else(|| self.config.llm_default_model.clone()),
            max_steps: agent
                .max_steps
                .map_or(self.config.chat_max_steps, |s| s.max(1) as u32),
            steps_done: 0,
            decisions: Vec::new(),
            on_behalf: None,
            agent,
        }
    }

    /// Run the tool loop of a prepared turn and record how it ended (or paused).
    pub async fn run(&self, turn: Prepared, events: &Emitter) -> Result<TurnResult, TurnError> {
        let started = Instant::now();
        // A resumed turn keeps its id, so its message id is the one the client holds.
        events.emit(ChatEvent::Start {
            message_id: format!("msg-{}", turn.turn_id.simple()),
            conversation_id: turn.conversation_id.to_string(),
            turn_id: turn.turn_id.to_string(),
        });
        let mut progress = Progress {
            steps: turn.steps_done,
            ..Progress::default()
        };
        let result = self.steps(&turn, events, &mut progress).await;
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let (status, error) = match &result {
            Ok(Ending::Answered) => ("completed", None),
            Ok(Ending::StepLimit) => ("completed", Some("step_limit".to_string())),
            Ok(Ending::AwaitingApproval(_)) => ("awaiting_approval", None),
            Err(err) => ("failed", Some(err.to_string())),
        };
        crate::telemetry::metrics::chat_turn(status);
        // Tokens and time add up over the parts of a turn that paused for approvals. A
        // turn that ended is the workspace's `agent.turn.<status>` event (crate::events),
        // caused by whoever started the conversation.
        sqlx::query(
            "WITH turn AS ( \
               UPDATE turns SET status = $2, error = $3, steps = $4, \
               prompt_tokens = prompt_tokens + $5, completion_tokens = completion_tokens + $6, \
               duration_ms = coalesce(duration_ms, 0) + $7, \
               finished_at = CASE WHEN $2 = 'awaiting_approval' THEN NULL ELSE now() END \
               WHERE id = $1 RETURNING id, conversation_id, workspace_id, status, error, steps) \
             INSERT INTO events (workspace_id, type, subject, payload, actor) \
             SELECT t.workspace_id, 'agent.turn.' || t.status, t.id::text, \
                 jsonb_build_object('turn_id', t.id, 'conversation_id', t.conversation_id, \
                     'agent', $8::text, 'status', t.status, 'error', t.error, \
                     'steps', t.steps), c.created_by \
             FROM turn t JOIN conversations c ON c.id = t.conversation_id \
             WHERE t.status IN ('completed', 'failed')",
        )
        .bind(turn.turn_id)
        .bind(status)
        .bind(error.as_deref().map(crate::nul::replace))
        .bind(progress.steps as i32)
        .bind(progress.prompt_tokens)
        .bind(progress.completion_tokens)
        .bind(duration_ms)
        .bind(&turn.agent.slug)
        .execute(&self.pool)
        .await?;
        let usage = json!({
            "prompt_tokens": progress.prompt_tokens,
            "completion_tokens": progress.completion_tokens,
            "total_tokens": progress.prompt_tokens + progress.completion_tokens,
        });
        let ending = match result {
            Ok(ending) => ending,
            Err(err) => {
                events.emit(ChatEvent::Error(err.to_string()));
                return Err(err);
            }
        };
        let (reason, stopped, pending_approvals) = match ending {
            Ending::Answered => ("stop", None, Vec::new()),
            Ending::StepLimit => ("length", Some("step_limit"), Vec::new()),
            Ending::AwaitingApproval(pending) => ("tool-calls", None, pending),
        };
        events.emit(ChatEvent::Finish {
            reason: reason.into(),
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
            pending_approvals,
        })
    }

    async fn steps(
        &self,
        turn: &Prepared,
        events: &Emitter,
        progress: &mut Progress,
    ) -> Result<Ending, TurnError> {
        let llm = &self.registry.services.llm;
        let key = UsageKey {
            workspace: Some(turn.workspace),
            plugin: None,
            agent: Some(crate::llm::UsageAgent {
                id: turn.agent.id,
                slug: turn.agent.slug.clone(),
            }),
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
        if !turn.decisions.is_empty() {
            self.act_on_decisions(turn, events, progress).await?;
            messages = self.context(&turn.agent, turn.conversation_id).await?;
        }
        // An agent whose max_steps was lowered while a turn waited still answers it.
        let max_steps = turn.max_steps.max(turn.steps_done + 1);
        for step in (turn.steps_done + 1)..=max_steps {
            events.emit(ChatEvent::StepStart);
            let last = step == max_steps;
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
                return Ok(if completion.tool_calls.is_empty() {
                    Ending::Answered
                } else {
                    Ending::StepLimit
                });
            }
            let calls = completion.tool_calls;
            for call in &calls {
                events.emit(ChatEvent::ToolInput {
                    call_id: call_id(call),
                    tool: call_name(call).into(),
                    input: arguments(call),
                });
            }
            let (gated, free): (Vec<&Value>, Vec<&Value>) = calls
                .iter()
                .partition(|call| turn.gated.contains(call_name(call)));
            let records =
                futures_util::future::join_all(free.iter().map(|call| self.call_tool(turn, call)))
                    .await;
            let mut new_messages =
                vec![json!({ "role": "assistant", "content": text, "tool_calls": calls })];
            for record in &records {
                events.emit(output_event(record));
                new_messages.push(tool_message(record));
            }
            self.record_tool_calls(turn, &records).await?;
            progress.tool_calls.extend(records);
            if !gated.is_empty() {
                let waiting: Vec<(String, String, Value)> = gated
                    .iter()
                    .map(|call| (call_id(call), call_name(call).to_string(), arguments(call)))
                    .collect();
                // The request and its waiting calls are stored together: the record
                // never holds a call that is neither answered nor waiting.
                let mut tx = self.pool.begin().await?;
                conversations::add_messages(
                    &mut *tx,
                    turn.conversation_id,
                    turn.turn_id,
                    &new_messages,
                )
                .await?;
                let pending = approvals::request(
                    &mut tx,
                    turn.workspace,
                    turn.conversation_id,
                    turn.turn_id,
                    &waiting,
                )
                .await?;
                tx.commit().await?;
                for waiting in &pending {
                    events.emit(ChatEvent::ToolApprovalRequest {
                        approval_id: waiting.approval_id.to_string(),
                        call_id: waiting.call_id.clone(),
                    });
                }
                // What the model said before the calls is all there is to show yet.
                progress.answer = text.unwrap_or_default();
                events.emit(ChatEvent::StepFinish);
                return Ok(Ending::AwaitingApproval(pending));
            }
            conversations::add_messages(
                &self.pool,
                turn.conversation_id,
                turn.turn_id,
                &new_messages,
            )
            .await?;
            messages.extend(new_messages);
            events.emit(ChatEvent::StepFinish);
        }
        Ok(Ending::StepLimit)
    }

    /// A resumed turn first settles the calls that waited: approved ones run (all at
    /// once), denied ones get a result telling the model a person said no.
    async fn act_on_decisions(
        &self,
        turn: &Prepared,
        events: &Emitter,
        progress: &mut Progress,
    ) -> Result<(), TurnError> {
        let approved: Vec<Value> = turn
            .decisions
            .iter()
            .filter(|d| d.approved)
            .map(Decision::call)
            .collect();
        let mut ran =
            futures_util::future::join_all(approved.iter().map(|call| self.call_tool(turn, call)))
                .await
                .into_iter();
        let mut records = Vec::with_capacity(turn.decisions.len());
        let mut results = Vec::with_capacity(turn.decisions.len());
        for decision in &turn.decisions {
            // `ran` holds the approved calls' records, in the decisions' order.
            let record = match decision.approved.then(|| ran.next()).flatten() {
                Some(record) => {
                    events.emit(output_event(&record));
                    record
                }
                None => {
                    events.emit(ChatEvent::ToolDenied {
                        call_id: decision.call_id.clone(),
                    });
                    denied(turn, decision)
                }
            };
            results.push(tool_message(&record));
            records.push(record);
        }
        self.record_tool_calls(turn, &records).await?;
        conversations::add_messages(&self.pool, turn.conversation_id, turn.turn_id, &results)
            .await?;
        progress.tool_calls.extend(records);
        Ok(())
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
            self.registry.invoke_tool_as(
                turn.workspace,
                &turn.turn_id.to_string(),
                &tool.plugin,
                Some(&tool.version),
                name,
                &record.input,
                turn.on_behalf.clone(),
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
        // A tool's output or the model's arguments may hold NUL (`crate::nul`).
        .bind(crate::nul::replace_in_json(
            serde_json::to_value(records).unwrap_or_default(),
        ))
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

/// What the stream says of a call that ran.
fn output_event(record: &ToolCallRecord) -> ChatEvent {
    match (&record.output, &record.error) {
        (Some(output), None) => ChatEvent::ToolOutput {
            call_id: record.call_id.clone(),
            output: output.clone(),
        },
        _ => ChatEvent::ToolError {
            call_id: record.call_id.clone(),
            error: record.error.clone().unwrap_or_default(),
        },
    }
}

fn tool_message(record: &ToolCallRecord) -> Value {
    json!({ "role": "tool", "tool_call_id": record.call_id, "content": tool_result(record) })
}

/// The record of a call a person denied: it did not run, and the model reads why.
fn denied(turn: &Prepared, decision: &Decision) -> ToolCallRecord {
    let tool = turn.tools.iter().find(|t| t.name == decision.tool);
    let error = match &decision.reason {
        Some(reason) if !reason.trim().is_empty() => {
            format!("the user denied this tool call, so it did not run: {reason}")
        }
        _ => "the user denied this tool call, so it did not run".to_string(),
    };
    ToolCallRecord {
        call_id: decision.call_id.clone(),
        plugin: tool.map(|t| t.plugin.clone()),
        version: tool.map(|t| t.version.clone()),
        tool: decision.tool.clone(),
        input: decision.input.clone(),
        output: None,
        error: Some(error),
        outcome: "denied".into(),
        duration_ms: 0.0,
    }
}

fn call_name(call: &Value) -> &str {
    call["function"]["name"].as_str().unwrap_or_default()
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
