//! Waits in the database: timers and approval requests. A waiting node's run row holds
//! what it waits for and when it wakes (`run_at`); a decision moves `run_at` to now, so
//! the next free worker on any host resumes the execution at the node's successors.
//! Deciding is single use per key and only by POST (mail scanners prefetch GET links).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::runs::event;
use super::waits::{OnTimeout, Requested, Wait};
use crate::auth::Role;
use crate::error::{ApiError, ApiResult};

/// Put a run to sleep: a timer, or an approval request that is created here.
#[allow(clippy::too_many_arguments)]
pub(super) async fn suspend(
    tx: &mut PgConnection,
    workspace: Uuid,
    execution: Uuid,
    run: i64,
    node: &str,
    plugin: &str,
    version: &str,
    requested: Requested,
) -> sqlx::Result<()> {
    let (wait, wake, data) = match requested {
        Requested::Timer { until, output } => (
            Wait::Timer { until, output },
            Some(until),
            json!({ "until": until }),
        ),
        Requested::Approval(request) => {
            let timeout_ms = request.timeout_ms.map(|ms| ms as f64);
            let (id, timeout_at): (Uuid, Option<DateTime<Utc>>) = sqlx::query_as(
                "INSERT INTO approvals (workspace_id, execution_id, node_run_id, node_id, \
                 message, role, required, timeout_at, on_timeout) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, now() + $8 * interval '1 ms', $9) \
                 RETURNING id, timeout_at",
            )
            .bind(workspace)
            .bind(execution)
            .bind(run)
            .bind(node)
            .bind(&request.message)
            .bind(request.role.as_str())
            .bind(request.required)
            .bind(timeout_ms)
            .bind(on_timeout_name(request.on_timeout))
            .fetch_one(&mut *tx)
            .await?;
            approval_event(tx, id, "approval.requested", super::engine::ENGINE).await?;
            (
                Wait::Approval {
                    approval_id: id,
                    on_timeout: request.on_timeout,
                    decided: None,
                },
                timeout_at,
                json!({ "approval_id": id, "timeout_at": timeout_at }),
            )
        }
    };
    // A wait without an end (an approval with no timeout) is due in the year 9999, not
    // at `infinity`, which the driver can't decode.
    sqlx::query(
        "UPDATE node_runs SET status = 'waiting', wait = $2, \
         run_at = COALESCE($3, '9999-12-31 00:00:00+00'::timestamptz), plugin = $4, version = $5 WHERE id = $1",
    )
    .bind(run)
    .bind(sqlx::types::Json(&wait))
    .bind(wake)
    .bind(plugin)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    event(tx, execution, "waiting", Some(node), data).await
}

/// The workspace's `approval.*` event (crate::events) for the approval as it now is.
async fn approval_event(
    tx: &mut PgConnection,
    approval: Uuid,
    kind: &str,
    actor: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO events (workspace_id, type, subject, payload, actor) \
         SELECT workspace_id, $2, id::text, jsonb_build_object('approval_id', id, \
             'execution_id', execution_id, 'node', node_id, 'status', status, \
             'message', message), $3 \
         FROM approvals WHERE id = $1",
    )
    .bind(approval)
    .bind(kind)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

fn on_timeout_name(on_timeout: OnTimeout) -> &'static str {
    match on_timeout {
        OnTimeout::Approve => "approve",
        OnTimeout::Reject => "reject",
        OnTimeout::Fail => "fail",
    }
}

/// How a woken approval node ends: its output and branch, or the failure message of
/// an `on_timeout: fail` that timed out.
pub(super) async fn outcome(
    pool: &PgPool,
    approval: Uuid,
    on_timeout: OnTimeout,
    decided: Option<String>,
) -> sqlx::Result<Result<(Value, String), String>> {
    let decided = match decided {
        Some(decided) => decided,
        None => {
            // Woken by its timeout. A decision that got in first wins. Marking it timed
            // out commits before the node's completion does; a host that dies between
            // the two leaves it `timed_out` with the node still to complete, so a
            // `timed_out` found here is that same timeout and gets its `on_timeout`
            // (decisions are refused once it is past due, so none can come between).
            let status: String = sqlx::query_scalar(
                "WITH timed_out AS ( \
                   UPDATE approvals SET status = 'timed_out', decided_at = now() \
                   WHERE id = $1 AND status = 'pending' \
                   RETURNING workspace_id, id, execution_id, node_id, status, message), \
                 decided AS ( \
                   INSERT INTO events (workspace_id, type, subject, payload, actor) \
                   SELECT workspace_id, 'approval.decided', id::text, \
                       jsonb_build_object('approval_id', id, 'execution_id', execution_id, \
                           'node', node_id, 'status', status, 'message', message), \
                       'system:engine' FROM timed_out) \
                 SELECT status FROM timed_out \
                 UNION ALL SELECT status FROM approvals \
                 WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM timed_out)",
            )
            .bind(approval)
            .fetch_one(pool)
            .await?;
            if status == "timed_out" {
                let decision = match on_timeout {
                    OnTimeout::Approve => "approved",
                    OnTimeout::Reject => "rejected",
                    OnTimeout::Fail => return Ok(Err("the approval timed out".into())),
                };
                let output =
                    json!({ "decision": decision, "approval_id": approval, "timed_out": true });
                return Ok(Ok((output, decision.to_string())));
            }
            if status != "approved" && status != "rejected" {
                return Ok(Err(format!("the approval was {status}")));
            }
            status
        }
    };
    let decisions = decisions(pool, approval).await?;
    let output = json!({ "decision": decided, "approval_id": approval, "decisions": decisions });
    Ok(Ok((output, decided)))
}

/// One key's decision on an approval.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = ApprovalDecision)]
pub struct Decision {
    pub key_id: Uuid,
    /// `approve` or `reject`.
    pub decision: String,
    pub comment: String,
    pub at: DateTime<Utc>,
}

async fn decisions(pool: &PgPool, approval: Uuid) -> sqlx::Result<Vec<Decision>> {
    sqlx::query_as(
        "SELECT key_id, decision, comment, at FROM approval_decisions \
         WHERE approval_id = $1 ORDER BY at",
    )
    .bind(approval)
    .fetch_all(pool)
    .await
}

/// A workflow node waiting for people to approve or reject.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Approval {
    pub id: Uuid,
    pub execution_id: Uuid,
    pub workflow_id: Uuid,
    pub node_id: String,
    /// `pending`, `approved`, `rejected`, `timed_out` or `cancelled`.
    pub status: String,
    pub message: String,
    /// The least role a key needs to decide.
    pub role: String,
    /// Approvals needed.
    pub required: i32,
    /// Approvals so far.
    pub approvals: i64,
    pub timeout_at: Option<DateTime<Utc>>,
    /// What a timeout does.
    pub on_timeout: String,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

const APPROVAL: &str = "SELECT a.id, a.execution_id, e.workflow_id, a.node_id, a.status, \
     a.message, a.role, a.required, \
     (SELECT count(*) FROM approval_decisions d WHERE d.approval_id = a.id \
      AND d.decision = 'approve') AS approvals, \
     a.timeout_at, a.on_timeout, a.created_at, a.decided_at \
     FROM approvals a JOIN executions e ON e.id = a.execution_id";

pub async fn list(
    pool: &PgPool,
    workspace: Uuid,
    status: Option<&str>,
    limit: i64,
) -> ApiResult<Vec<Approval>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{APPROVAL} WHERE a.workspace_id = $1 AND ($2::text IS NULL OR a.status = $2) \
         ORDER BY a.created_at DESC LIMIT $3"
    )))
    .bind(workspace)
    .bind(status)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

pub async fn get(pool: &PgPool, workspace: Uuid, id: Uuid) -> ApiResult<(Approval, Vec<Decision>)> {
    let approval: Approval = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{APPROVAL} WHERE a.workspace_id = $1 AND a.id = $2"
    )))
    .bind(workspace)
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no approval {id} in this workspace")))?;
    let decisions = decisions(pool, id).await?;
    Ok((approval, decisions))
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    status: String,
    role: String,
    required: i32,
    node_run_id: i64,
    timeout_at: Option<DateTime<Utc>>,
}

/// Record one key's decision. The approval is decided by the first rejection or once
/// `required` keys approved; then its node wakes up. Returns whether it was decided.
pub async fn decide(
    pool: &PgPool,
    workspace: Uuid,
    id: Uuid,
    key: Uuid,
    role: Role,
    approve: bool,
    comment: &str,
) -> ApiResult<bool> {
    let mut tx = pool.begin().await?;
    let row: Option<PendingRow> = sqlx::query_as(
        "SELECT status, role, required, node_run_id, timeout_at FROM approvals \
         WHERE id = $1 AND workspace_id = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(workspace)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(PendingRow {
        status,
        role: needed,
        required,
        node_run_id: run,
        timeout_at,
    }) = row
    else {
        return Err(ApiError::NotFound(format!(
            "no approval {id} in this workspace"
        )));
    };
    if status != "pending" {
        return Err(ApiError::Conflict(format!(
            "the approval is {status} already; a decision is single use"
        )));
    }
    if timeout_at.is_some_and(|at| at <= Utc::now()) {
        return Err(ApiError::Conflict(
            "the approval timed out; its on_timeout rule decides it".into(),
        ));
    }
    let needed: Role = serde_json::from_value(json!(needed))
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored role: {e}")))?;
    if role < needed {
        return Err(ApiError::Forbidden(format!(
            "deciding this approval needs {} key or higher; this key is {} key",
            needed.with_article(),
            role.with_article()
        )));
    }
    let inserted = sqlx::query(
        "INSERT INTO approval_decisions (approval_id, key_id, decision, comment) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(key)
    .bind(if approve { "approve" } else { "reject" })
    .bind(comment)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(ApiError::Conflict(
            "this key has decided on this approval already".into(),
        ));
    }
    let approvals: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM approval_decisions WHERE approval_id = $1 AND decision = 'approve'",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    let decided = if !approve {
        Some("rejected")
    } else if approvals >= i64::from(required) {
        Some("approved")
    } else {
        None
    };
    if let Some(decided) = decided {
        sqlx::query("UPDATE approvals SET status = $2, decided_at = now() WHERE id = $1")
            .bind(id)
            .bind(decided)
            .execute(&mut *tx)
            .await?;
        approval_event(&mut tx, id, "approval.decided", &format!("key:{key}")).await?;
        let woken = sqlx::query(
            "UPDATE node_runs SET wait = wait || jsonb_build_object('decided', $2::text), \
             run_at = now() WHERE id = $1 AND status = 'waiting'",
        )
        .bind(run)
        .bind(decided)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if woken == 0 {
            return Err(ApiError::Conflict(
                "the approval's node is no longer waiting (it timed out or was cancelled)".into(),
            ));
        }
    }
    tx.commit().await?;
    Ok(decided.is_some())
}
