//! Schedules (crate::automation::schedules): workflows' schedule triggers and scheduled
//! tasks, their run history, pause, resume and run now.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{Json, Query};
use crate::auth::{Role, WorkspaceCaller};
use crate::automation::schedules::tasks::{self, TaskInput};
use crate::automation::schedules::{Run, Schedule, store};
use crate::error::ApiResult;
use crate::state::AppState;
use crate::workflows::definition::Problem;
use crate::workflows::store as workflows;

const SCHEDULE: &str = "The schedule's id";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_schedules, create_task))
        .routes(routes!(get_schedule, update_task, delete_task))
        .routes(routes!(pause_schedule))
        .routes(routes!(resume_schedule))
        .routes(routes!(run_schedule_now))
        .routes(routes!(schedule_runs))
}

/// Every problem with a task at once, like a workflow definition's.
pub fn invalid(problems: Vec<Problem>) -> Response {
    let message = problems
        .iter()
        .map(|p| format!("{}: {}", p.path, p.message))
        .collect::<Vec<_>>()
        .join("; ");
    let body = json!({"error": {"code": "invalid", "message": message, "problems": problems}});
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Schedules {
    schedules: Vec<Schedule>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only this workflow's schedule triggers (its id or slug).
    workflow: Option<String>,
}

/// Any role: the workspace's schedules (workflow triggers and tasks), oldest first.
#[utoipa::path(get, path = "/api/schedules", tag = "schedules", params(ListQuery),
    responses((status = 200, body = Schedules)))]
async fn list_schedules(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Schedules>> {
    caller.require(Role::Viewer)?;
    let workspace = caller.0.workspace_id;
    let workflow = match &query.workflow {
        Some(w) => Some(workflows::get_workflow(&state.pool, workspace, w).await?.id),
        None => None,
    };
    let schedules = store::list(&state.pool, workspace, workflow).await?;
    Ok(Json(Schedules { schedules }))
}

/// Admin: a scheduled task (a schedule and one action).
#[utoipa::path(post, path = "/api/schedules", tag = "schedules", request_body = TaskInput,
    responses(
        (status = 201, description = "The new task", body = Schedule),
        (status = 422, description = "Every problem, at its field (`schedule.cron`, `action.to`)"),
    ))]
async fn create_task(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Json(input): Json<TaskInput>,
) -> ApiResult<Response> {
    caller.require(Role::Admin)?;
    let workspace = caller.0.workspace_id;
    match tasks::create(
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

/// Any role: one schedule with its counts and next run.
#[utoipa::path(get, path = "/api/schedules/{id}", tag = "schedules",
    params(("id" = Uuid, Path, description = SCHEDULE)),
    responses((status = 200, body = Schedule), (status = 404, description = "No such schedule")))]
async fn get_schedule(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Schedule>> {
    caller.require(Role::Viewer)?;
    Ok(Json(
        store::get(&state.pool, caller.0.workspace_id, id).await?,
    ))
}

/// Admin: change a task's name, description, schedule, action or retry (a workflow's
/// trigger is changed in its definition: 409).
#[utoipa::path(patch, path = "/api/schedules/{id}", tag = "schedules", request_body = TaskInput,
    params(("id" = Uuid, Path, description = SCHEDULE)),
    responses(
        (status = 200, body = Schedule),
        (status = 404, description = "No such schedule"),
        (status = 409, description = "A workflow's trigger"),
        (status = 422, description = "Every problem, at its field"),
    ))]
async fn update_task(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Json(input): Json<TaskInput>,
) -> ApiResult<Response> {
    caller.require(Role::Admin)?;
    let workspace = caller.0.workspace_id;
    match tasks::update(&state.pool, &state.registry, workspace, id, &input).await? {
        Ok(schedule) => Ok(Json(schedule).into_response()),
        Err(problems) => Ok(invalid(problems)),
    }
}

/// Admin: delete a task and its runs' workflow (a trigger: 409).
#[utoipa::path(delete, path = "/api/schedules/{id}", tag = "schedules",
    params(("id" = Uuid, Path, description = SCHEDULE)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such schedule"),
        (status = 409, description = "A workflow's trigger"),
    ))]
async fn delete_task(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    tasks::delete(&state.pool, caller.0.workspace_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Member: stop ticking until resumed.
#[utoipa::path(post, path = "/api/schedules/{id}/pause", tag = "schedules",
    params(("id" = Uuid, Path, description = SCHEDULE)),
    responses((status = 200, body = Schedule), (status = 404, description = "No such schedule"),
        (status = 409, description = "Completed")))]
async fn pause_schedule(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Schedule>> {
    caller.require(Role::Member)?;
    Ok(Json(
        store::set_paused(&state.pool, caller.0.workspace_id, id, true).await?,
    ))
}

/// Member: tick again from now (ticks that passed while paused are not caught up).
#[utoipa::path(post, path = "/api/schedules/{id}/resume", tag = "schedules",
    params(("id" = Uuid, Path, description = SCHEDULE)),
    responses((status = 200, body = Schedule), (status = 404, description = "No such schedule"),
        (status = 409, description = "Completed")))]
async fn resume_schedule(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Schedule>> {
    caller.require(Role::Member)?;
    Ok(Json(
        store::set_paused(&state.pool, caller.0.workspace_id, id, false).await?,
    ))
}

/// Member: run once now, outside the schedule (paused or not).
#[utoipa::path(post, path = "/api/schedules/{id}/run", tag = "schedules",
    params(("id" = Uuid, Path, description = SCHEDULE)),
    responses((status = 202, description = "The run, as its history shows it", body = Run),
        (status = 404, description = "No such schedule"),
        (status = 429, description = "The workspace is at its running cap")))]
async fn run_schedule_now(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<(StatusCode, Json<Run>)> {
    caller.require(Role::Member)?;
    let run = store::run_now(&state.workflows, &state.pool, caller.0.workspace_id, id).await?;
    Ok((StatusCode::ACCEPTED, Json(run)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ScheduleRuns {
    runs: Vec<Run>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct RunsQuery {
    /// 1-500, default 50.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// Any role: the schedule's ticks, newest first: started (with the execution and its
/// status), skipped for overlap, buffered, or failed to start (with why).
#[utoipa::path(get, path = "/api/schedules/{id}/runs", tag = "schedules",
    params(("id" = Uuid, Path, description = SCHEDULE), RunsQuery),
    responses((status = 200, body = ScheduleRuns), (status = 404, description = "No such schedule")))]
async fn schedule_runs(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Query(query): Query<RunsQuery>,
) -> ApiResult<Json<ScheduleRuns>> {
    caller.require(Role::Viewer)?;
    let limit = super::clamp_limit(query.limit, 50, 500);
    let runs = store::runs(&state.pool, caller.0.workspace_id, id, limit).await?;
    Ok(Json(ScheduleRuns { runs }))
}
