//! The JSON the agents routes answer with, described for the OpenAPI document. The
//! handlers build it from rows and SQL (`agents::view`, `usage`, `conversations`), not
//! from these types; schemathesis checks every response it gets against them, so a
//! field added there and not here fails `make test`.

#![allow(dead_code)]

use chrono::{DateTime, Utc};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::agents::ToolRef;
use crate::agents::usage::UsageGrouping;

/// An agent as the API shows it.
#[derive(ToSchema)]
#[schema(as = Agent)]
pub struct AgentView {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub slug: String,
    pub name: String,
    pub role: String,
    pub system_prompt: String,
    /// Null: the host's default model.
    pub model: Option<String>,
    pub temperature: Option<f64>,
    pub tools: Vec<ToolRef>,
    pub max_steps: Option<i32>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Each of `tools`, and whether it can be called now.
    pub tool_status: Vec<AgentToolStatus>,
}

/// One tool of an agent: the reference, and whether it is available.
#[derive(ToSchema)]
pub struct AgentToolStatus {
    pub plugin: String,
    pub tool: String,
    #[schema(required = false)]
    pub version: String,
    #[schema(required = false)]
    pub requires_approval: bool,
    pub available: bool,
    /// Why not, when it is not available.
    #[schema(required = false)]
    pub problem: String,
}

#[derive(ToSchema)]
pub struct AgentList {
    pub agents: Vec<AgentView>,
}

/// An agent's last 24 hours. Rates and percentiles are null with nothing to measure.
#[derive(ToSchema)]
pub struct AgentHealth {
    /// The agent's slug.
    pub agent: String,
    pub window_hours: i64,
    pub turns: AgentTurnHealth,
    pub tools: AgentToolHealth,
}

#[derive(ToSchema)]
pub struct AgentTurnHealth {
    pub requests: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub running: i64,
    pub awaiting_approval: i64,
    pub success_rate: Option<f64>,
    pub p95_ms: Option<f64>,
}

#[derive(ToSchema)]
pub struct AgentToolHealth {
    pub calls: i64,
    pub ok: i64,
    pub success_rate: Option<f64>,
    pub p95_ms: Option<f64>,
}

/// LLM calls, tokens and cost in a time range, grouped.
#[derive(ToSchema)]
pub struct Usage {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub group_by: UsageGrouping,
    pub groups: Vec<UsageGroup>,
    /// Tool calls agents made, per agent (null: a deleted agent's).
    pub tool_calls: Vec<UsageToolCalls>,
}

#[derive(ToSchema)]
pub struct UsageGroup {
    /// The agent's slug (`(plugins)` for plugins' own calls), the model, or the day.
    pub key: String,
    pub llm_calls: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    /// Null when no call had a price.
    pub cost_usd: Option<f64>,
    /// Calls of models without a price.
    pub unpriced_calls: i64,
}

#[derive(ToSchema)]
pub struct UsageToolCalls {
    pub agent: Option<String>,
    pub tool_calls: i64,
    pub ok: i64,
    pub mean_ms: f64,
}

#[derive(ToSchema)]
pub struct Conversation {
    pub id: Uuid,
    /// Null once the agent is deleted.
    pub agent_id: Option<Uuid>,
    pub agent_slug: Option<String>,
    pub title: String,
    /// The id an AI SDK client chose for this chat (`useChat`'s `id`), if any.
    pub chat_id: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(ToSchema)]
pub struct ConversationList {
    pub conversations: Vec<Conversation>,
}

/// A conversation with its messages, turns and pending approvals, oldest first.
#[derive(ToSchema)]
pub struct ConversationDetail {
    #[serde(flatten)]
    pub conversation: Conversation,
    pub messages: Vec<ConversationMessage>,
    pub turns: Vec<ConversationTurn>,
    pub pending_approvals: Vec<ConversationApproval>,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageRole {
    User,
    Assistant,
    Tool,
}

#[derive(ToSchema)]
pub struct ConversationMessage {
    pub id: i64,
    /// Null for history a client sent (no turn of ours produced it).
    pub turn_id: Option<Uuid>,
    pub role: MessageRole,
    pub content: Option<String>,
    /// An assistant message's OpenAI `tool_calls` array.
    pub tool_calls: Option<Vec<Value>>,
    /// A tool message: the call it is the result of.
    pub tool_call_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TurnStatus {
    Running,
    AwaitingApproval,
    Completed,
    Failed,
    Cancelled,
}

#[derive(ToSchema)]
pub struct ConversationTurn {
    pub id: Uuid,
    pub status: TurnStatus,
    pub error: Option<String>,
    pub steps: i32,
    pub prompt_tokens: i32,
    pub completion_tokens: i32,
    pub duration_ms: Option<f64>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub tool_calls: Vec<ToolCallRecord>,
}

/// A tool call of a turn.
#[derive(ToSchema)]
#[schema(as = AgentToolCall)]
pub struct ToolCallRecord {
    pub call_id: String,
    pub plugin: Option<String>,
    pub version: Option<String>,
    pub tool: String,
    pub input: Option<Value>,
    pub output: Option<Value>,
    pub error: Option<String>,
    /// `ok`, `tool_error`, `invalid_input`, `not_found`, `timeout`, `plugin_fault`,
    /// `denied`, `cancelled`...
    pub outcome: String,
    pub duration_ms: f64,
}

#[derive(ToSchema)]
pub struct ConversationApproval {
    pub approval_id: Uuid,
    pub turn_id: Uuid,
    pub call_id: String,
    pub tool: String,
    pub input: Value,
    pub created_at: DateTime<Utc>,
}

/// A finished (or paused) chat turn.
#[derive(ToSchema)]
pub struct ChatTurn {
    pub conversation_id: Uuid,
    pub turn_id: Uuid,
    pub status: TurnStatus,
    pub message: ChatMessage,
    pub tool_calls: Vec<ToolCallRecord>,
    pub usage: TokenUsage,
    pub steps: i64,
    /// `step_limit` when the model still wanted tools at the last step.
    pub stopped: Option<String>,
    /// With status `awaiting_approval`: the calls to answer.
    #[schema(required = false)]
    pub pending_approvals: Vec<PendingApproval>,
}

#[derive(ToSchema)]
#[schema(as = ChatAnswer)]
pub struct ChatMessage {
    /// Always `assistant`.
    pub role: String,
    pub content: Option<String>,
}

#[derive(ToSchema)]
pub struct TokenUsage {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
}

#[derive(ToSchema)]
#[schema(as = ChatPendingApproval)]
pub struct PendingApproval {
    pub approval_id: Uuid,
    pub call_id: String,
    pub tool: String,
    pub input: Value,
}

/// `POST /api/agents`: the fields of `AgentChanges`, with `slug` and `name` required
/// (a change may leave them out; a new agent can't).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    /// 1-63 lowercase letters, digits or `-`, not starting with `-`.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,62}$")]
    pub slug: String,
    /// 1-200 characters, not only spaces.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
    pub role: Option<String>,
    /// Up to 32 768 characters.
    #[schema(max_length = 32768)]
    pub system_prompt: Option<String>,
    /// Null: the host's default model.
    pub model: Option<String>,
    /// 0 to 2.
    #[schema(minimum = 0.0, maximum = 2.0)]
    pub temperature: Option<f32>,
    /// Up to 64, each with its own `tool` name.
    #[schema(max_items = 64)]
    pub tools: Option<Vec<ToolRef>>,
    /// 1 to 50.
    #[schema(minimum = 1, maximum = 50)]
    pub max_steps: Option<i32>,
    pub enabled: Option<bool>,
}
