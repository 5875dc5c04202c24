//! Usage (LLM tokens and cost, grouped) and an agent's health over the last day.

use serde::Deserialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Inclusive start (RFC 3339 or YYYY-MM-DD); default 30 days ago.
    #[param(inline, value_type = Option<DayOrTime>)]
    pub from: Option<String>,
    /// Exclusive end, after `from`; default now.
    #[param(inline, value_type = Option<DayOrTime>)]
    pub to: Option<String>,
    /// `agent`, `model` or `day` (default `day`).
    #[param(inline, value_type = Option<UsageGrouping>)]
    pub group_by: Option<String>,
}

/// A day (`2025-01-31`, midnight UTC) or a time (RFC 3339), for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum DayOrTime {
    Day(chrono::NaiveDate),
    Time(chrono::DateTime<chrono::Utc>),
}

/// How usage is grouped, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum UsageGrouping {
    Agent,
    Model,
    Day,
}

fn instant(text: &str, name: &str) -> ApiResult<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        .map_err(|_| {
            ApiError::Invalid(format!(
                "{name}={text:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"
            ))
        })
}

/// LLM calls, tokens and cost in the workspace, grouped; plus tool calls made by
/// agents when grouped by agent.
pub async fn usage(pool: &PgPool, workspace: Uuid, query: &UsageQuery) -> ApiResult<Value> {
    let now = chrono::Utc::now();
    let from = match &query.from {
        Some(t) => instant(t, "from")?,
        None => now - chrono::Duration::days(30),
    };
    let to = match &query.to {
        Some(t) => instant(t, "to")?,
        None => now,
    };
    if to <= from {
        return Err(ApiError::Invalid("`to` must be after `from`".into()));
    }
    let group_by = query.group_by.as_deref().unwrap_or("day");
    // Each key is a fixed expression chosen here, never text from the request.
    let key = match group_by {
        "agent" => "coalesce(a.slug, u.agent, '(plugins)')",
        "model" => "u.model",
        "day" => "to_char(date_trunc('day', u.created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD')",
        other => {
            return Err(ApiError::Invalid(format!(
                "group_by={other:?} must be agent, model or day"
            )));
        }
    };
    let sql = format!(
        "SELECT coalesce(jsonb_agg(g ORDER BY g.key), '[]') FROM (SELECT {key} AS key, \
         count(*) AS llm_calls, sum(u.prompt_tokens)::int8 AS prompt_tokens, \
         sum(u.completion_tokens)::int8 AS completion_tokens, \
         sum(u.prompt_tokens + u.completion_tokens)::int8 AS total_tokens, \
         sum(u.cost_usd)::float8 AS cost_usd, count(*) FILTER (WHERE u.cost_usd IS NULL) AS unpriced_calls \
         FROM llm_usage u LEFT JOIN agents a ON a.id::text = u.agent \
         WHERE u.workspace_id = $1 AND u.created_at >= $2 AND u.created_at < $3 GROUP BY 1) g"
    );
    let groups: Value = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(workspace)
        .bind(from)
        .bind(to)
        .fetch_one(pool)
        .await?;
    let tools: Value = sqlx::query_scalar(
        "SELECT coalesce(jsonb_agg(g ORDER BY g.agent), '[]') FROM (SELECT a.slug AS agent, \
         count(*) AS tool_calls, count(*) FILTER (WHERE c.outcome = 'ok') AS ok, \
         round(avg(c.duration_ms)::numeric, 3)::float8 AS mean_ms \
         FROM tool_calls c LEFT JOIN agents a ON a.id = c.agent_id \
         WHERE c.workspace_id = $1 AND c.created_at >= $2 AND c.created_at < $3 GROUP BY 1) g",
    )
    .bind(workspace)
    .bind(from)
    .bind(to)
    .fetch_one(pool)
    .await?;
    Ok(serde_json::json!({
        "from": from, "to": to, "group_by": group_by, "groups": groups, "tool_calls": tools,
    }))
}

/// Requests, success rate and p95 latencies of an agent's turns and tool calls over
/// the last 24 hours. Rates are null when there was nothing to measure; turns not yet
/// ended (running, or paused for approvals) don't count in them.
pub async fn health(pool: &PgPool, agent: Uuid) -> sqlx::Result<Value> {
    sqlx::query_scalar(
        "SELECT jsonb_build_object('window_hours', 24, \
           'turns', (SELECT jsonb_build_object( \
              'requests', count(*), \
              'completed', count(*) FILTER (WHERE status = 'completed'), \
              'failed', count(*) FILTER (WHERE status = 'failed'), \
              'cancelled', count(*) FILTER (WHERE status = 'cancelled'), \
              'running', count(*) FILTER (WHERE status = 'running'), \
              'awaiting_approval', count(*) FILTER (WHERE status = 'awaiting_approval'), \
              'success_rate', (count(*) FILTER (WHERE status = 'completed'))::float8 \
                              / nullif(count(*) FILTER \
                                  (WHERE status NOT IN ('running', 'awaiting_approval')), 0), \
              'p95_ms', percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)) \
            FROM turns WHERE agent_id = $1 AND started_at > now() - interval '24 hours'), \
           'tools', (SELECT jsonb_build_object( \
              'calls', count(*), \
              'ok', count(*) FILTER (WHERE outcome = 'ok'), \
              'success_rate', (count(*) FILTER (WHERE outcome = 'ok'))::float8 / nullif(count(*), 0), \
              'p95_ms', percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)) \
            FROM tool_calls WHERE agent_id = $1 AND created_at > now() - interval '24 hours'))",
    )
    .bind(agent)
    .fetch_one(pool)
    .await
}
