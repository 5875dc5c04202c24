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
    /// The id an AI SDK client chose for this chat (`useChat`'s `id`), if any.
    pub chat_id: Option<String>,
    pub created_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

const CONVERSATION: &str = "SELECT c.id, c.agent_id, a.slug AS agent_slug, c.title, c.chat_id, \
     c.created_by, \
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

/// The conversation an AI SDK chat id names in this workspace: the one made for that
/// id, or the conversation whose own id it is (so a client can open a conversation it
/// listed). `None` if there is none yet.
pub async fn find_chat(
    pool: &PgPool,
    workspace: Uuid,
    chat_id: &str,
) -> sqlx::Result<Option<Uuid>> {
    let own_id = Uuid::parse_str(chat_id).ok();
    sqlx::query_scalar(
        "SELECT id FROM conversations WHERE workspace_id = $1 AND (chat_id = $2 OR id = $3) \
         ORDER BY chat_id IS NULL LIMIT 1",
    )
    .bind(workspace)
    .bind(chat_id)
    .bind(own_id)
    .fetch_optional(pool)
    .await
}

/// The conversation of a chat id, made on first use (titled by `title`); `true` if it
/// was made now. Two first requests at once get the same one (the unique index).
pub async fn for_chat(
    pool: &PgPool,
    workspace: Uuid,
    agent: Uuid,
    chat_id: &str,
    title: &str,
    created_by: &str,
) -> sqlx::Result<(Uuid, bool)> {
    if let Some(id) = find_chat(pool, workspace, chat_id).await? {
        return Ok((id, false));
    }
    let title: String = title.chars().take(80).collect();
    let made: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO conversations (workspace_id, agent_id, title, created_by, chat_id) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (workspace_id, chat_id) WHERE chat_id IS NOT NULL DO NOTHING RETURNING id",
    )
    .bind(workspace)
    .bind(agent)
    .bind(title)
    .bind(created_by)
    .bind(chat_id)
    .fetch_optional(pool)
    .await?;
    match made {
        Some(id) => Ok((id, true)),
        None => {
            let id = find_chat(pool, workspace, chat_id).await?;
            Ok((id.ok_or(sqlx::Error::RowNotFound)?, false))
        }
    }
}

/// The whole record of a conversation: messages in order, every turn with its tool
/// calls, and the approvals still pending.
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
    let pending: Vec<Value> = sqlx::query_scalar(
        "SELECT jsonb_build_object('approval_id', id, 'turn_id', turn_id, 'call_id', call_id, \
         'tool', tool, 'input', input, 'created_at', created_at) \
         FROM tool_approvals WHERE conversation_id = $1 AND status = 'pending' \
         ORDER BY created_at, call_id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let mut value = serde_json::to_value(conversation).map_err(anyhow::Error::from)?;
    value["messages"] = Value::Array(messages);
    value["turns"] = Value::Array(turns);
    value["pending_approvals"] = Value::Array(pending);
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
pub async fn add_messages<'e>(
    db: impl sqlx::PgExecutor<'e>,
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
    // Model text may hold NUL, which the database can't store (`crate::nul`).
    .bind(crate::nul::replace_in_json(Value::Array(messages.to_vec())))
    .execute(db)
    .await?;
    Ok(())
}
