//! Automation rules (crate::automation::rules): create, change, pause, resume, delete,
//! and each rule's history of matched events.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{Json, Query};
use super::schedules::invalid;
use crate::auth::{Role, WorkspaceCaller};
use crate::automation::rules::{Rule, RuleInput, Run, store};
use crate::error::ApiResult;
use crate::state::AppState;

const RULE: &str = "The rule's id";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(get_rule, update_rule, delete_rule))
        .routes(routes!(pause_rule))
        .routes(routes!(resume_rule))
        .routes(routes!(rule_runs))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Rules {
    rules: Vec<Rule>,
}

/// Any role: the workspace's rules, highest priority first (the order they run in).
#[utoipa::path(get, path = "/api/rules", tag = "rules", responses((status = 200, body = Rules)))]
async fn list_rules(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
) -> ApiResult<Json<Rules>> {
    caller.require(Role::Viewer)?;
    let rules = store::list(&state.pool, caller.0.workspace_id).await?;
    Ok(Json(Rules { rules }))
}

/// Admin: a rule. It acts on events after it was made.
#[utoipa::path(post, path = "/api/rules", tag = "rules", request_body = RuleInput,
    responses(
        (status = 201, description = "The new rule", body = Rule),
        (status = 422, description = "Every problem, at its field (`trigger.event`, `actions[0].to`)"),
    ))]
async fn create_rule(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Json(input): Json<RuleInput>,
) -> ApiResult<Response> {
    caller.require(Role::Admin)?;
    let workspace = caller.0.workspace_id;
    match store::create(
        &state.pool,
        &state.registry,
        workspace,
        &caller.actor(),
        &input,
    )
    .await
    {
        Ok(created) => Ok((StatusCode::CREATED, Json(created?)).into_response()),
        Err(problems) => Ok(invalid(problems)),
    }
}

/// Any role: one rule with its statistics.
#[utoipa::path(get, path = "/api/rules/{id}", tag = "rules",
    params(("id" = Uuid, Path, description = RULE)),
    responses((status = 200, body = Rule), (status = 404, description = "No such rule")))]
async fn get_rule(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Rule>> {
    caller.require(Role::Viewer)?;
    Ok(Json(
        store::get(&state.pool, caller.0.workspace_id, id).await?,
    ))
}

/// Admin: change what is given (new actions are a new version of its workflow).
#[utoipa::path(patch, path = "/api/rules/{id}", tag = "rules", request_body = RuleInput,
    params(("id" = Uuid, Path, description = RULE)),
    responses(
        (status = 200, body = Rule),
        (status = 404, description = "No such rule"),
        (status = 422, description = "Every problem, at its field"),
    ))]
async fn update_rule(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Json(input): Json<RuleInput>,
) -> ApiResult<Response> {
    caller.require(Role::Admin)?;
    match store::update(
        &state.pool,
        &state.registry,
        caller.0.workspace_id,
        id,
        &input,
    )
    .await?
    {
        Ok(rule) => Ok(Json(rule).into_response()),
        Err(problems) => Ok(invalid(problems)),
    }
}

/// Admin: delete a rule, its history and its runs' workflow.
#[utoipa::path(delete, path = "/api/rules/{id}", tag = "rules",
    params(("id" = Uuid, Path, description = RULE)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such rule")))]
async fn delete_rule(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    store::delete(&state.pool, caller.0.workspace_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Member: stop acting on events (events meanwhile are passed over, not kept).
#[utoipa::path(post, path = "/api/rules/{id}/pause", tag = "rules",
    params(("id" = Uuid, Path, description = RULE)),
    responses((status = 200, body = Rule), (status = 404, description = "No such rule")))]
async fn pause_rule(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Rule>> {
    caller.require(Role::Member)?;
    Ok(Json(
        store::set_active(&state.pool, caller.0.workspace_id, id, false).await?,
    ))
}

/// Member: act on events again, from the ones that come next.
#[utoipa::path(post, path = "/api/rules/{id}/resume", tag = "rules",
    params(("id" = Uuid, Path, description = RULE)),
    responses((status = 200, body = Rule), (status = 404, description = "No such rule")))]
async fn resume_rule(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Rule>> {
    caller.require(Role::Member)?;
    Ok(Json(
        store::set_active(&state.pool, caller.0.workspace_id, id, true).await?,
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct RuleRuns {
    runs: Vec<Run>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct RunsQuery {
    /// 1-500, default 50.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// Any role: the events the rule matched, newest first: started (with the execution
/// and its status), skipped by cooldown or the hourly limit, or failed to start.
#[utoipa::path(get, path = "/api/rules/{id}/runs", tag = "rules",
    params(("id" = Uuid, Path, description = RULE), RunsQuery),
    responses((status = 200, body = RuleRuns), (status = 404, description = "No such rule")))]
async fn rule_runs(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Query(query): Query<RunsQuery>,
) -> ApiResult<Json<RuleRuns>> {
    caller.require(Role::Viewer)?;
    let limit = super::clamp_limit(query.limit, 50, 500);
    let runs = store::runs(&state.pool, caller.0.workspace_id, id, limit).await?;
    Ok(Json(RuleRuns { runs }))
}
