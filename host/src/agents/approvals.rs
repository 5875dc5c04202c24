//! Tool calls that wait for a person (docs/ai-sdk.md, "Approvals"). A tool an admin
//! marks `requires_approval` on an agent is not run when the model calls it: the call
//! is stored here as `pending` and the turn pauses (`awaiting_approval`). The client's
//! next request answers every pending call of the turn at once — approved calls run,
//! denied ones tell the model so — and the turn goes on. A new user message instead
//! expires them, so the conversation never holds a tool request without its result.
//!
//! Each approval is answered once: the answer takes the row lock and moves the turn
//! from `awaiting_approval` to `running` in one transaction.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// A call waiting for an answer, as the client sees it.
#[derive(Debug, Clone, Serialize)]
pub struct PendingApproval {
    pub approval_id: Uuid,
    pub call_id: String,
    pub tool: String,
    pub input: Value,
}

/// One answer of a client: `approved`, or not, with an optional reason.
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalAnswer {
    pub id: String,
    pub approved: bool,
    #[serde(default)]
    pub reason: Option<String>,
}

/// An answered approval, ready for the turn to act on.
#[derive(Debug, Clone)]
pub struct Decision {
    pub call_id: String,
    pub tool: String,
    pub input: Value,
    pub approved: bool,
    pub reason: Option<String>,
}

impl Decision {
    /// The call as the model made it (the OpenAI `tool_calls` item), to run it.
    pub fn call(&self) -> Value {
        json!({ "id": self.call_id, "type": "function",
                "function": { "name": self.tool, "arguments": self.input.to_string() } })
    }
}

/// A turn taken up again: the turn, the steps it had taken, what was decided.
#[derive(Debug)]
pub struct Resumed {
    pub turn_id: Uuid,
    pub steps_done: u32,
    pub decisions: Vec<Decision>,
}

const MAX_REASON: usize = 2000;

/// Store the calls a paused step waits on (in the step's transaction, with the
/// assistant message that asked for them).
pub async fn request(
    db: &mut PgConnection,
    workspace: Uuid,
    conversation: Uuid,
    turn: Uuid,
    calls: &[(String, String, Value)],
) -> sqlx::Result<Vec<PendingApproval>> {
    let pending: Vec<PendingApproval> = calls
        .iter()
        .map(|(call_id, tool, input)| PendingApproval {
            approval_id: Uuid::new_v4(),
            call_id: call_id.clone(),
            tool: tool.clone(),
            input: input.clone(),
        })
        .collect();
    sqlx::query(
        "INSERT INTO tool_approvals (id, turn_id, conversation_id, workspace_id, call_id, tool, \
         input) SELECT r.approval_id, $1, $2, $3, r.call_id, r.tool, r.input \
         FROM jsonb_to_recordset($4::jsonb) AS r(approval_id uuid, call_id text, tool text, \
         input jsonb)",
    )
    .bind(turn)
    .bind(conversation)
    .bind(workspace)
    .bind(crate::nul::replace_in_json(
        serde_json::to_value(&pending).unwrap_or_default(),
    ))
    .execute(&mut *db)
    .await?;
    Ok(pending)
}

type Row = (Uuid, Uuid, String, String, Value, String);

/// Take the client's answers for the conversation's paused turn. Every pending call of
/// the turn must be answered (the model needs a result for each); an id that is not
/// this conversation's is a 404, one already answered a 409.
pub async fn answer(
    pool: &PgPool,
    workspace: Uuid,
    conversation: Uuid,
    answers: &[ApprovalAnswer],
    caller: &str,
) -> ApiResult<Resumed> {
    if answers.is_empty() {
        return Err(ApiError::Invalid("approvals must not be empty".into()));
    }
    let mut ids = Vec::with_capacity(answers.len());
    for answer in answers {
        let id = Uuid::parse_str(&answer.id).map_err(|_| not_found(&answer.id))?;
        if ids.contains(&id) {
            return Err(ApiError::Invalid(format!(
                "approval {id} is answered twice"
            )));
        }
        if answer.reason.as_ref().is_some_and(|r| r.len() > MAX_REASON) {
            return Err(ApiError::Invalid(format!(
                "the reason of approval {id} is longer than {MAX_REASON} bytes"
            )));
        }
        ids.push(id);
    }
    let mut tx = pool.begin().await?;
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, turn_id, call_id, tool, input, status FROM tool_approvals \
         WHERE conversation_id = $1 AND workspace_id = $2 AND (status = 'pending' OR id = ANY($3)) \
         ORDER BY created_at, call_id FOR UPDATE",
    )
    .bind(conversation)
    .bind(workspace)
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    for (answer, id) in answers.iter().zip(&ids) {
        match rows.iter().find(|row| row.0 == *id) {
            None => return Err(not_found(&answer.id)),
            Some(row) if row.5 != "pending" => {
                return Err(ApiError::Conflict(format!(
                    "approval {id} was already answered ({})",
                    row.5
                )));
            }
            Some(_) => {}
        }
    }
    let mut decisions = Vec::with_capacity(rows.len());
    let mut turn = None;
    for (id, turn_id, call_id, tool, input, _) in rows.into_iter().filter(|r| r.5 == "pending") {
        let Some(answer) = ids.iter().position(|i| *i == id).map(|i| &answers[i]) else {
            return Err(ApiError::Invalid(format!(
                "approval {id} (tool {tool}) has no answer: answer every pending approval \
                 of the turn in one request"
            )));
        };
        turn = Some(turn_id);
        sqlx::query(
            "UPDATE tool_approvals SET status = $2, reason = $3, decided_by = $4, \
             decided_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(if answer.approved {
            "approved"
        } else {
            "denied"
        })
        .bind(&answer.reason)
        .bind(caller)
        .execute(&mut *tx)
        .await?;
        decisions.push(Decision {
            call_id,
            tool,
            input,
            approved: answer.approved,
            reason: answer.reason.clone(),
        });
    }
    let Some(turn_id) = turn else {
        return Err(ApiError::Invalid("no approval is pending".into()));
    };
    let steps: Option<i32> = sqlx::query_scalar(
        "UPDATE turns SET status = 'running', finished_at = NULL \
         WHERE id = $1 AND status = 'awaiting_approval' RETURNING steps",
    )
    .bind(turn_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(steps) = steps else {
        return Err(ApiError::Conflict(format!(
            "turn {turn_id} is no longer waiting for approvals"
        )));
    };
    tx.commit().await?;
    Ok(Resumed {
        turn_id,
        steps_done: steps.max(0) as u32,
        decisions,
    })
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no approval {id:?} in this conversation"))
}

/// A new user message came while calls were waiting: they will never run. Each gets a
/// tool result saying so (what the model reads next) and a `tool_calls` record, and its
/// turn ends as cancelled.
pub async fn expire_pending(pool: &PgPool, conversation: Uuid) -> sqlx::Result<()> {
    let why = "not run: the user sent a new message instead of answering the approval";
    let result = json!({ "error": why, "outcome": "expired" }).to_string();
    let ended = sqlx::query(
        "WITH expired AS ( \
           UPDATE tool_approvals SET status = 'expired', decided_at = now() \
           WHERE conversation_id = $1 AND status = 'pending' \
           RETURNING turn_id, workspace_id, call_id, tool, input, created_at), \
         results AS ( \
           INSERT INTO messages (conversation_id, turn_id, role, content, tool_call_id) \
           SELECT $1, turn_id, 'tool', $2, call_id FROM expired ORDER BY created_at, call_id), \
         records AS ( \
           INSERT INTO tool_calls (turn_id, workspace_id, agent_id, call_id, tool, input, \
             error, outcome, duration_ms) \
           SELECT e.turn_id, e.workspace_id, t.agent_id, e.call_id, e.tool, e.input, $3, \
             'expired', 0 FROM expired e JOIN turns t ON t.id = e.turn_id) \
         UPDATE turns SET status = 'cancelled', error = $3, finished_at = now() \
         WHERE id IN (SELECT turn_id FROM expired) AND status = 'awaiting_approval'",
    )
    .bind(conversation)
    .bind(result)
    .bind(why)
    .execute(pool)
    .await?
    .rows_affected();
    for _ in 0..ended {
        crate::telemetry::metrics::chat_turn("cancelled");
    }
    Ok(())
}
