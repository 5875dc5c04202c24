//! Conversations and what is recorded of each turn: messages, tool calls, outcome.

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Conversation {
    pub id: Uuid,
    pub agent_id: Option<Uuid>,
    pub agent_slug: Option<String>,
    pub title: String,
    pub created_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

const CONVERSATION: &str = "SELECT c.id, c.agent_id, a.slug AS agent_slug, c.title, c.created_by, \
     c.created_at, c.updated_at FROM conversations c LEFT JOIN agents a ON a.id = c.agent_id";

pub async fn create(
    pool: &PgPool,
    workspace: Uuid,
    agent: Uuid,
    title: &str,
    created_by: &str,
) -> sqlx::Result<Uuid> {
    let title: String = title.chars().take(80).collect();
    sqlx::query_scalar(
        "INSERT INTO conversations (workspace_id, agent_id, title, created_by) \
         VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(workspace)
    .bind(agent)
    .bind(title)
    .bind(created_by)
    .fetch_one(pool)
    .await
}

pub async fn get(pool: &PgPool, workspace: Uuid, id: Uuid) -> ApiResult<Conversation> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{CONVERSATION} WHERE c.workspace_id = $1 AND c.id = $2"
    )))
    .bind(workspace)
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no conversation {id} in this workspace")))
}

pub async fn list(
    pool: &PgPool,
    workspace: Uuid,
    agent: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Conversation>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{CONVERSATION} WHERE c.workspace_id = $1 AND ($2::uuid IS NULL OR c.agent_id = $2) \
         ORDER BY c.updated_at DESC LIMIT $3"
    )))
    .bind(workspace)
    .bind(agent)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn delete(pool: &PgPool, workspace: Uuid, id: Uuid) -> ApiResult<()> {
    let deleted = sqlx::query("DELETE FROM conversations WHERE workspace_id = $1 AND id = $2")
        .bind(workspace)
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(ApiError::NotFound(format!(
            "no conversation {id} in this workspace"
        )));
    }
    Ok(())
}

/// The whole record of a conversation: messages in order, and every turn with its
/// tool calls.
pub async fn detail(pool: &PgPool, workspace: Uuid, id: Uuid) -> ApiResult<Value> {
    let conversation = get(pool, workspace, id).await?;
    let messages: Vec<Value> = sqlx::query_scalar(
        "SELECT jsonb_build_object('id', id, 'turn_id', turn_id, 'role', role, 'content', content, \
         'tool_calls', tool_calls, 'tool_call_id', tool_call_id, 'created_at', created_at) \
         FROM messages WHERE conversation_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let turns: Vec<Value> = sqlx::query_scalar(
        "SELECT jsonb_build_object('id', t.id, 'status', t.status, 'error', t.error, \
         'steps', t.steps, 'prompt_tokens', t.prompt_tokens, \
         'completion_tokens', t.completion_tokens, 'duration_ms', t.duration_ms, \
         'started_at', t.started_at, 'finished_at', t.finished_at, \
         'tool_calls', coalesce((SELECT jsonb_agg(jsonb_build_object('call_id', c.call_id, \
            'plugin', c.plugin, 'version', c.version, 'tool', c.tool, 'input', c.input, \
            'output', c.output, 'error', c.error, 'outcome', c.outcome, \
            'duration_ms', c.duration_ms) ORDER BY c.id) \
          FROM tool_calls c WHERE c.turn_id = t.id), '[]'::jsonb)) \
         FROM turns t WHERE t.conversation_id = $1 ORDER BY t.started_at",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let mut value = serde_json::to_value(conversation).map_err(anyhow::Error::from)?;
    value["messages"] = Value::Array(messages);
    value["turns"] = Value::Array(turns);
    Ok(value)
}

/// The last `window` messages as OpenAI chat messages. The window never starts inside
/// an exchange: leading assistant and tool messages are dropped, so every tool result
/// sent follows the assistant message that asked for it.
pub async fn context(pool: &PgPool, conversation: Uuid, window: i64) -> sqlx::Result<Vec<Value>> {
    type Row = (String, Option<String>, Option<Value>, Option<String>);
    let mut rows: Vec<Row> = sqlx::query_as(
        "SELECT role, content, tool_calls, tool_call_id FROM messages \
         WHERE conversation_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(conversation)
    .bind(window)
    .fetch_all(pool)
    .await?;
    rows.reverse();
    let first_user = rows
        .iter()
        .position(|r| r.0 == "user")
        .unwrap_or(rows.len());
    Ok(rows
        .into_iter()
        .skip(first_user)
        .map(
            |(role, content, tool_calls, tool_call_id)| match role.as_str() {
                "tool" => {
                    json!({ "role": "tool", "tool_call_id": tool_call_id, "content": content })
                }
                "assistant" if tool_calls.is_some() => {
                    json!({ "role": "assistant", "content": content, "tool_calls": tool_calls })
                }
                _ => json!({ "role": role, "content": content.unwrap_or_default() }),
            },
        )
        .collect())
}

/// Add messages of a turn (an assistant message and the results of its tool calls go
/// in together, so the record never holds a request without its results).
pub async fn add_messages(
    pool: &PgPool,
    conversation: Uuid,
    turn: Uuid,
    messages: &[Value],
) -> sqlx::Result<()> {
    sqlx::query(
        "WITH touched AS (UPDATE conversations SET updated_at = now() WHERE id = $1) \
         INSERT INTO messages (conversation_id, turn_id, role, content, tool_calls, tool_call_id) \
         SELECT $1, $2, m->>'role', m->>'content', nullif(m->'tool_calls', 'null'), \
         m->>'tool_call_id' \
         FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS e(m, n) ORDER BY n",
    )
    .bind(conversation)
    .bind(turn)
    .bind(Value::Array(messages.to_vec()))
    .execute(pool)
    .await?;
    Ok(())
}
