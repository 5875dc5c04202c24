//! A workspace's monthly LLM budgets (docs/automation.md, "Budgets"): a token budget
//! and/or a cost budget, in `workspace_settings`, measured against `llm_usage` over the
//! calendar month in UTC.
//!
//! Every chat completion checks the budget before it is sent (`Llm::chat`,
//! `Llm::chat_stream`: the one path of agents, the OpenAI-compatible route, MCP, plugins
//! and workflow nodes), and a chat request checks it before its turn starts, so a spent
//! budget is a 429 `budget_exceeded` rather than a failed stream. The call that crosses
//! the budget finishes (a call can't be stopped half way); the ones after it are
//! refused. Embeddings count towards the budget but are not refused, so search and
//! indexing keep working.
//!
//! `llm.budget.exceeded` is written once a workspace a month: the month is marked on
//! the settings row with a conditional UPDATE in the event's transaction, so of all
//! the hosts (and calls) that find the budget spent, one writes it.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{Number, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::events::{self, NewEvent};

/// The event written when a workspace's budget is spent.
pub const EXCEEDED_EVENT: &str = "llm.budget.exceeded";
const ACTOR: &str = "system:budget";

/// A workspace's budgets and what it has used of them this month.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Spend {
    pub monthly_token_budget: Option<i64>,
    pub monthly_cost_budget_usd: Option<f64>,
    /// Prompt and completion tokens used this month (chat and embeddings).
    pub tokens_used: i64,
    /// USD used this month by the price table (unpriced models count nothing).
    pub cost_usd_used: f64,
    /// The month's first instant (UTC).
    pub period_start: DateTime<Utc>,
    /// When the month ends and the budgets start again.
    pub resets_at: DateTime<Utc>,
}

// The figures live with the error that carries them (`error` is below `llm`).
pub use crate::error::BudgetExceeded as Exceeded;

impl Spend {
    /// The first budget that is spent (used reached the budget), tokens before cost.
    pub fn exceeded(&self) -> Option<Exceeded> {
        let figures = |unit, used, budget| Exceeded {
            unit,
            used,
            budget,
            period_start: self.period_start,
            resets_at: self.resets_at,
        };
        if let Some(budget) = self.monthly_token_budget
            && self.tokens_used >= budget
        {
            return Some(figures("tokens", self.tokens_used.into(), budget.into()));
        }
        if let Some(budget) = self.monthly_cost_budget_usd
            && self.cost_usd_used >= budget
        {
            let number = |x: f64| Number::from_f64(x).unwrap_or_else(|| Number::from(0));
            // Cents and below as the price table gives them, without float noise.
            let used = (self.cost_usd_used * 1e6).round() / 1e6;
            return Some(figures("usd", number(used), number(budget)));
        }
        None
    }
}

/// The workspace's budgets and this month's use.
pub async fn spend(pool: &PgPool, workspace: Uuid) -> sqlx::Result<Spend> {
    sqlx::query_as(
        "WITH month AS (SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS start) \
         SELECT s.monthly_token_budget, s.monthly_cost_budget_usd, \
             u.tokens AS tokens_used, u.cost AS cost_usd_used, \
             m.start AS period_start, m.start + interval '1 month' AS resets_at \
         FROM month m LEFT JOIN workspace_settings s ON s.workspace_id = $1 \
         CROSS JOIN LATERAL ( \
             SELECT coalesce(sum(prompt_tokens + completion_tokens), 0)::int8 AS tokens, \
                 coalesce(sum(cost_usd), 0)::float8 AS cost \
             FROM llm_usage WHERE workspace_id = $1 AND created_at >= m.start) u",
    )
    .bind(workspace)
    .fetch_one(pool)
    .await
}

/// Whether the workspace has a budget at all (one primary-key read: the common case,
/// no budget, costs no sum over the month's usage).
async fn has_budget(pool: &PgPool, workspace: Uuid) -> sqlx::Result<bool> {
    let found: Option<bool> = sqlx::query_scalar(
        "SELECT monthly_token_budget IS NOT NULL OR monthly_cost_budget_usd IS NOT NULL \
         FROM workspace_settings WHERE workspace_id = $1",
    )
    .bind(workspace)
    .fetch_optional(pool)
    .await?;
    Ok(found == Some(true))
}

/// Whether the workspace may make another LLM call: `Err` with the figures when a
/// budget is spent (and the month's event written, once).
pub async fn check(pool: &PgPool, workspace: Uuid) -> sqlx::Result<Result<(), Exceeded>> {
    if !has_budget(pool, workspace).await? {
        return Ok(Ok(()));
    }
    let Some(exceeded) = spend(pool, workspace).await?.exceeded() else {
        return Ok(Ok(()));
    };
    mark(pool, workspace, &exceeded).await?;
    Ok(Err(exceeded))
}

/// After a call was recorded: if it spent the budget, say so now (the event), not at
/// the next call. Errors are logged; the call itself succeeded.
pub async fn after_use(pool: &PgPool, workspace: Uuid) {
    if let Err(error) = check(pool, workspace).await {
        tracing::warn!(%error, %workspace, "checking the LLM budget after a call failed");
    }
}

/// Write the month's `llm.budget.exceeded`, unless some host already has.
async fn mark(pool: &PgPool, workspace: Uuid, exceeded: &Exceeded) -> sqlx::Result<()> {
    let month: NaiveDate = exceeded.period_start.date_naive();
    let mut tx = pool.begin().await?;
    // The row lock makes a second host wait here, then find the month already set.
    let first = sqlx::query(
        "UPDATE workspace_settings SET budget_exceeded_month = $2 \
         WHERE workspace_id = $1 AND budget_exceeded_month IS DISTINCT FROM $2",
    )
    .bind(workspace)
    .bind(month)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if first {
        let mut payload = serde_json::to_value(exceeded).unwrap_or_else(|_| json!({}));
        payload["month"] = json!(month.format("%Y-%m").to_string());
        events::emit(
            &mut tx,
            NewEvent {
                workspace,
                kind: EXCEEDED_EVENT,
                subject: Some(month.format("%Y-%m").to_string()),
                payload,
                actor: ACTOR,
            },
        )
        .await?;
        tracing::info!(%workspace, %exceeded, "a workspace's LLM budget is spent");
    }
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spend(tokens: (Option<i64>, i64), cost: (Option<f64>, f64)) -> Spend {
        let start = "2026-12-01T00:00:00Z".parse().unwrap();
        Spend {
            monthly_token_budget: tokens.0,
            tokens_used: tokens.1,
            monthly_cost_budget_usd: cost.0,
            cost_usd_used: cost.1,
            period_start: start,
            resets_at: "2027-01-01T00:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn a_budget_is_spent_when_use_reaches_it() {
        assert_eq!(spend((Some(100), 99), (None, 5.0)).exceeded(), None);
        let tokens = spend((Some(100), 100), (Some(1.0), 2.0))
            .exceeded()
            .unwrap();
        assert_eq!((tokens.unit, tokens.used.as_i64()), ("tokens", Some(100)));
        let usd = spend((Some(100), 3), (Some(0.01), 0.0100004))
            .exceeded()
            .unwrap();
        assert_eq!(usd.unit, "usd");
        assert_eq!(usd.used.as_f64(), Some(0.01));
        assert_eq!(
            spend((None, 0), (Some(0.0), 0.0)).exceeded().unwrap().unit,
            "usd"
        );
        let text = tokens.to_string();
        assert!(text.contains("100 tokens used of 100 tokens"), "{text}");
        assert!(text.contains("2027-01-01T00:00:00Z"), "{text}");
    }
}
