//! The calling key's workspace settings: today its monthly LLM budgets
//! (crate::llm::budget; docs/automation.md, "Budgets").

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Json, RequestId};
use crate::audit::{self, AuditEvent};
use crate::auth::{Principal, Role, WorkspaceCaller};
use crate::error::{ApiError, ApiResult};
use crate::llm::budget::{self, Exceeded, Spend};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_settings, update_settings))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct WorkspaceSettings {
    /// Tokens (prompt + completion, chat and embeddings) a calendar month (UTC); null:
    /// no limit.
    monthly_token_budget: Option<i64>,
    /// USD a calendar month (UTC) by the host's price table; null: no limit.
    monthly_cost_budget_usd: Option<f64>,
    /// This month's use.
    month: Spend,
    /// The budget that is spent, if one is: chat answers 429 `budget_exceeded` until
    /// `resets_at`.
    exceeded: Option<Exceeded>,
}

impl From<Spend> for WorkspaceSettings {
    fn from(month: Spend) -> Self {
        WorkspaceSettings {
            monthly_token_budget: month.monthly_token_budget,
            monthly_cost_budget_usd: month.monthly_cost_budget_usd,
            exceeded: month.exceeded(),
            month,
        }
    }
}

/// Bounds far above any real budget, so a typo's extra digits are caught and every
/// figure stays exact in JSON and a float.
const MAX_TOKENS: i64 = 1_000_000_000_000_000;
const MAX_USD: f64 = 1e12;

/// A change of settings: a field left out is kept, `null` clears it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SettingsChange {
    /// Whole tokens, 0 to 10^15; `null`: no token budget.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 1_000_000_000_000_000_i64)]
    monthly_token_budget: Option<Option<i64>>,
    /// USD, 0 to 10^12; `null`: no cost budget.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<f64>, minimum = 0.0, maximum = 1e12)]
    monthly_cost_budget_usd: Option<Option<f64>>,
}

/// A body read only from a JSON object: serde's derive also reads a struct from an array
/// of its fields in order (`[null, null]`), which the schema does not allow.
struct ObjectOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Object<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(Object(std::marker::PhantomData))
            .map(ObjectOnly)
    }
}

/// Tells "absent" (outer None) from "null" (Some(None)).
fn nullable<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

impl SettingsChange {
    fn validate(&self) -> ApiResult<()> {
        if let Some(Some(tokens)) = self.monthly_token_budget
            && !(0..=MAX_TOKENS).contains(&tokens)
        {
            return Err(ApiError::Invalid(format!(
                "monthly_token_budget must be 0 to {MAX_TOKENS} tokens (got {tokens})"
            )));
        }
        if let Some(Some(usd)) = self.monthly_cost_budget_usd
            && !(0.0..=MAX_USD).contains(&usd)
        {
            return Err(ApiError::Invalid(format!(
                "monthly_cost_budget_usd must be 0 to {MAX_USD} USD (got {usd})"
            )));
        }
        Ok(())
    }
}

/// Any role: the workspace's budgets and what this month has used of them.
#[utoipa::path(get, path = "/api/workspace/settings", tag = "workspace",
    responses((status = 200, body = WorkspaceSettings)))]
async fn get_settings(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
) -> ApiResult<Json<WorkspaceSettings>> {
    let month = budget::spend(&state.pool, caller.0.workspace_id).await?;
    Ok(Json(month.into()))
}

/// Admin: change the budgets. A changed budget is judged afresh: a workspace that
/// spends the new one this month gets another `llm.budget.exceeded`.
#[utoipa::path(patch, path = "/api/workspace/settings", tag = "workspace",
    request_body = SettingsChange,
    responses((status = 200, body = WorkspaceSettings)))]
async fn update_settings(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    request_id: RequestId,
    Json(ObjectOnly(change)): Json<ObjectOnly<SettingsChange>>,
) -> ApiResult<Json<WorkspaceSettings>> {
    caller.require(Role::Admin)?;
    change.validate()?;
    let workspace = caller.0.workspace_id;
    let mut tx = state.pool.begin().await?;
    let current: Option<(Option<i64>, Option<f64>)> = sqlx::query_as(
        "SELECT monthly_token_budget, monthly_cost_budget_usd FROM workspace_settings \
         WHERE workspace_id = $1 FOR UPDATE",
    )
    .bind(workspace)
    .fetch_optional(&mut *tx)
    .await?;
    let (tokens, usd) = current.unwrap_or_default();
    let tokens = change.monthly_token_budget.unwrap_or(tokens);
    let usd = change.monthly_cost_budget_usd.unwrap_or(usd);
    sqlx::query(
        "INSERT INTO workspace_settings (workspace_id, monthly_token_budget, monthly_cost_budget_usd) \
         VALUES ($1, $2, $3) \
         ON CONFLICT (workspace_id) DO UPDATE SET \
             monthly_token_budget = EXCLUDED.monthly_token_budget, \
             monthly_cost_budget_usd = EXCLUDED.monthly_cost_budget_usd, \
             budget_exceeded_month = CASE WHEN \
                 (workspace_settings.monthly_token_budget, workspace_settings.monthly_cost_budget_usd) \
                 IS NOT DISTINCT FROM (EXCLUDED.monthly_token_budget, EXCLUDED.monthly_cost_budget_usd) \
                 THEN workspace_settings.budget_exceeded_month END, \
             updated_at = now()",
    )
    .bind(workspace)
    .bind(tokens)
    .bind(usd)
    .execute(&mut *tx)
    .await?;
    let principal = Principal::Key(caller.0.clone());
    let event = AuditEvent {
        principal: &principal,
        request_id: request_id.as_deref(),
        workspace_id: Some(workspace),
        action: "workspace.settings.update",
        target: Some(workspace.to_string()),
        details: json!({ "monthly_token_budget": tokens, "monthly_cost_budget_usd": usd }),
    };
    audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    let month = budget::spend(&state.pool, workspace).await?;
    Ok(Json(month.into()))
}
