//! Workflows, their versions and executions (docs/workflows.md).
//!
//! Roles: reading needs any key, starting and cancelling executions `member`, saving
//! workflows `admin`. A definition with problems is 422 `invalid_definition` listing
//! every one of them (`problems: [{path, message}]`).

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{Json, Path, Query};
use crate::auth::{Role, WorkspaceCaller};
use crate::config::parse_duration;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::workflows::approvals::{Approval, Decision};
use crate::workflows::definition::{self, Definition, Problem};
use crate::workflows::store::{
    self, ExecutionRow, NodeRunRow, VersionRow, Workflow, WorkflowInput,
};
use crate::workflows::{StartOptions, approvals};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_workflows, create_workflow))
        .routes(routes!(get_workflow, update_workflow, delete_workflow))
        .routes(routes!(list_versions))
        .routes(routes!(get_version))
        .routes(routes!(start_execution))
        .routes(routes!(list_executions))
        .routes(routes!(get_execution))
        .routes(routes!(cancel_execution))
        .routes(routes!(retry_execution))
        .routes(routes!(list_approvals))
        .routes(routes!(get_approval, decide_approval))
        .routes(routes!(execution_events))
}

/// Statuses, as the list filters take them (for the OpenAPI document).
#[allow(dead_code)]
mod schema {
    #[derive(utoipa::ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum ExecutionStatus {
        Running,
        Waiting,
        Succeeded,
        Failed,
        Cancelled,
    }

    #[derive(utoipa::ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum ApprovalStatus {
        Pending,
        Approved,
        Rejected,
        TimedOut,
        Cancelled,
    }

    #[derive(utoipa::ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum DecisionKind {
        Approve,
        Reject,
    }
}
use schema::{ApprovalStatus, DecisionKind, ExecutionStatus};

/// 422 `invalid_definition`: every problem of a definition. Other 422s of these routes
/// (`invalid`) have the usual error shape, without `problems`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct InvalidDefinition {
    error: InvalidDefinitionDetail,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct InvalidDefinitionDetail {
    /// `invalid_definition` (or `invalid`, without `problems`).
    code: String,
    message: String,
    #[schema(required = false)]
    problems: Vec<Problem>,
}

const WORKFLOW: &str = "The workflow's id or slug";
const EXECUTION: &str = "The execution's id";

/// Validate a definition against the node types active now.
fn validated(state: &AppState, raw: &Value) -> Result<Definition, Vec<definition::Problem>> {
    let lookup = store::node_type_lookup(&state.registry);
    definition::validate(raw, &lookup)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Workflows {
    workflows: Vec<Workflow>,
}

/// Any role: the workspace's workflows.
#[utoipa::path(get, path = "/api/workflows", tag = "workflows",
    responses((status = 200, body = Workflows)))]
async fn list_workflows(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
) -> ApiResult<Json<Workflows>> {
    caller.require(Role::Viewer)?;
    let workflows = store::list_workflows(&state.pool, caller.0.workspace_id).await?;
    Ok(Json(Workflows { workflows }))
}

/// Admin: a new workflow with version 1 of its definition, checked against the node
/// types active now.
#[utoipa::path(post, path = "/api/workflows", tag = "workflows", request_body = WorkflowInput,
    responses(
        (status = 201, description = "The new workflow", body = Workflow),
        (status = 422, description = "The definition has problems (`invalid_definition`, every one listed), or another rule is broken (`invalid`)", body = InvalidDefinition),
    ))]
async fn create_workflow(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Json(input): Json<WorkflowInput>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let Some(raw) = &input.definition else {
        return Err(ApiError::Invalid(
            "a new workflow needs a definition".into(),
        ));
    };
    let definition = match validated(&state, raw) {
        Ok(definition) => definition,
        Err(problems) => return Ok(store::invalid_definition(problems)),
    };
    let workflow = store::create_workflow(
        &state.pool,
        caller.0.workspace_id,
        Some(caller.0.key_id),
        &input,
        &definition,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(workflow)).into_response())
}

/// A workflow with the definition of its latest version.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct WorkflowDetail {
    #[serde(flatten)]
    workflow: Workflow,
    #[schema(value_type = Definition)]
    definition: Value,
}

/// Any role: a workflow with its latest definition.
#[utoipa::path(get, path = "/api/workflows/{workflow}", tag = "workflows",
    params(("workflow" = String, Path, description = WORKFLOW)),
    responses((status = 200, body = WorkflowDetail)))]
async fn get_workflow(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(workflow): Path<String>,
) -> ApiResult<Json<WorkflowDetail>> {
    caller.require(Role::Viewer)?;
    let workflow = store::get_workflow(&state.pool, caller.0.workspace_id, &workflow).await?;
    let latest = store::get_version(&state.pool, workflow.id, workflow.latest_version).await?;
    Ok(Json(WorkflowDetail {
        workflow,
        definition: latest.definition,
    }))
}

/// Admin: name, description and enabled change in place; a `definition` saves
/// version n+1. The slug can't change.
#[utoipa::path(patch, path = "/api/workflows/{workflow}", tag = "workflows",
    params(("workflow" = String, Path, description = WORKFLOW)),
    request_body = WorkflowInput,
    responses(
        (status = 200, description = "The workflow", body = Workflow),
        (status = 422, description = "The definition has problems (`invalid_definition`, every one listed), or another rule is broken (`invalid`)", body = InvalidDefinition),
    ))]
async fn update_workflow(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(workflow): Path<String>,
    Json(input): Json<WorkflowInput>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    if input.slug.is_some() {
        return Err(ApiError::Invalid(
            "a workflow's slug can't be changed".into(),
        ));
    }
    let definition = match &input.definition {
        Some(raw) => match validated(&state, raw) {
            Ok(definition) => Some(definition),
            Err(problems) => return Ok(store::invalid_definition(problems)),
        },
        None => None,
    };
    let workflow = store::update_workflow(
        &state.pool,
        caller.0.workspace_id,
        &workflow,
        Some(caller.0.key_id),
        &input,
        definition.as_ref(),
    )
    .await?;
    Ok(Json(workflow).into_response())
}

/// Admin: delete a workflow, its versions and executions.
#[utoipa::path(delete, path = "/api/workflows/{workflow}", tag = "workflows",
    params(("workflow" = String, Path, description = WORKFLOW)),
    responses((status = 204, description = "Deleted")))]
async fn delete_workflow(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(workflow): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    store::delete_workflow(&state.pool, caller.0.workspace_id, &workflow).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct WorkflowVersions {
    /// Newest first.
    versions: Vec<VersionRow>,
}

/// Any role: a workflow's versions, newest first.
#[utoipa::path(get, path = "/api/workflows/{workflow}/versions", tag = "workflows",
    params(("workflow" = String, Path, description = WORKFLOW)),
    responses((status = 200, body = WorkflowVersions)))]
async fn list_versions(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(workflow): Path<String>,
) -> ApiResult<Json<WorkflowVersions>> {
    caller.require(Role::Viewer)?;
    let workflow = store::get_workflow(&state.pool, caller.0.workspace_id, &workflow).await?;
    let versions = store::list_versions(&state.pool, workflow.id).await?;
    Ok(Json(WorkflowVersions { versions }))
}

/// Any role: one version of a workflow.
#[utoipa::path(get, path = "/api/workflows/{workflow}/versions/{version}", tag = "workflows",
    params(
        ("workflow" = String, Path, description = WORKFLOW),
        ("version" = i32, Path, description = "The version number, from 1"),
    ),
    responses((status = 200, body = VersionRow)))]
async fn get_version(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path((workflow, version)): Path<(String, i32)>,
) -> ApiResult<Json<VersionRow>> {
    caller.require(Role::Viewer)?;
    let workflow = store::get_workflow(&state.pool, caller.0.workspace_id, &workflow).await?;
    let version = store::get_version(&state.pool, workflow.id, version).await?;
    Ok(Json(version))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct StartQuery {
    /// Wait up to this long (`5s`, `500ms`, `1m`; at most the request timeout) for the
    /// result.
    #[param(pattern = "^\\s*(\\d{1,9}(\\.\\d{0,9})?|\\.\\d{1,9})(ms|s|m)?\\s*$")]
    wait: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ExecutionStart)]
struct StartBody {
    /// The execution's input (`{}` when absent or null), checked against the
    /// definition's `input_schema`.
    #[serde(default)]
    input: Value,
}

/// Member: start an execution of the workflow's latest version. 201 with the execution
/// (or 200 with the first one when the `Idempotency-Key` was used before); with
/// `?wait=` 200 once it finished in time, else 202.
#[utoipa::path(post, path = "/api/workflows/{workflow}/executions", tag = "executions",
    params(
        ("workflow" = String, Path, description = WORKFLOW),
        StartQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "1-200 visible ASCII characters: a repeated key returns the first execution instead of starting another",
            pattern = "^[!-~]([ -~]{0,198}[!-~])?$"),
    ),
    request_body = StartBody,
    responses(
        (status = 201, description = "Started", body = ExecutionRow),
        (status = 200, description = "Finished within `wait`, or the execution of an `Idempotency-Key` used before", body = ExecutionRow),
        (status = 202, description = "Still running or waiting after `wait`", body = ExecutionRow),
    ))]
async fn start_execution(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(workflow): Path<String>,
    Query(query): Query<StartQuery>,
    headers: HeaderMap,
    Json(body): Json<StartBody>,
) -> ApiResult<Response> {
    caller.require(Role::Member)?;
    let wait = match &query.wait {
        Some(text) => Some(
            parse_duration(text)
                .map_err(|why| ApiError::Invalid(format!("wait: {why}")))?
                .min(
                    state
                        .config
                        .request_timeout
                        .saturating_sub(Duration::from_millis(500)),
                ),
        ),
        None => None,
    };
    let idempotency_key = match headers.get("idempotency-key") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= 200)
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "Idempotency-Key must be 1-200 visible ASCII characters".into(),
                    )
                })?
                .to_string(),
        ),
        None => None,
    };
    let input = match body.input {
        Value::Null => json!({}),
        other => other,
    };
    let (execution, created) = state
        .workflows
        .start_execution(
            caller.0.workspace_id,
            &workflow,
            input,
            StartOptions {
                idempotency_key,
                actor: Some(caller.actor()),
            },
        )
        .await?;
    let workspace = caller.0.workspace_id;
    let mut execution = execution;
    if let Some(wait) = wait {
        let deadline = tokio::time::Instant::now() + wait;
        while matches!(execution.status.as_str(), "running" | "waiting")
            && tokio::time::Instant::now() < deadline
        {
            // A waiting execution (an approval, a long delay) is not waited for.
            let finished = state.workflows.finished.notified();
            let _ = tokio::time::timeout_at(
                deadline.min(tokio::time::Instant::now() + Duration::from_millis(50)),
                finished,
            )
            .await;
            execution = store::get_execution(&state.pool, workspace, execution.id).await?;
        }
    }
    let status = match (wait.is_some(), execution.status.as_str(), created) {
        (true, "running" | "waiting", _) => StatusCode::ACCEPTED,
        (true, _, _) | (false, _, false) => StatusCode::OK,
        (false, _, true) => StatusCode::CREATED,
    };
    Ok((status, Json(execution)).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only this workflow's executions (id or slug).
    workflow: Option<String>,
    /// Only executions in this status.
    #[param(inline, value_type = Option<ExecutionStatus>)]
    status: Option<String>,
    /// How many, newest first (1-500, default 50).
    limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Executions {
    /// Newest first.
    executions: Vec<ExecutionRow>,
}

/// Any role: executions, newest first.
#[utoipa::path(get, path = "/api/executions", tag = "executions", params(ListQuery),
    responses((status = 200, body = Executions)))]
async fn list_executions(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Executions>> {
    caller.require(Role::Viewer)?;
    let workspace = caller.0.workspace_id;
    let workflow = match &query.workflow {
        Some(w) => Some(store::get_workflow(&state.pool, workspace, w).await?.id),
        None => None,
    };
    check_status(
        query.status.as_deref(),
        &["running", "waiting", "succeeded", "failed", "cancelled"],
    )?;
    let limit = super::clamp_limit(query.limit, 50, 500);
    let executions = store::list_executions(
        &state.pool,
        workspace,
        workflow,
        query.status.as_deref(),
        limit,
    )
    .await?;
    Ok(Json(Executions { executions }))
}

/// An execution with its node runs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ExecutionDetail {
    #[serde(flatten)]
    execution: ExecutionRow,
    nodes: Vec<NodeRunRow>,
}

/// Any role: an execution with every node run.
#[utoipa::path(get, path = "/api/executions/{id}", tag = "executions",
    params(("id" = Uuid, Path, description = EXECUTION)),
    responses((status = 200, body = ExecutionDetail)))]
async fn get_execution(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ExecutionDetail>> {
    caller.require(Role::Viewer)?;
    let execution = store::get_execution(&state.pool, caller.0.workspace_id, id).await?;
    let nodes = store::node_runs(&state.pool, id).await?;
    Ok(Json(ExecutionDetail { execution, nodes }))
}

/// Member: cancel a running or waiting execution.
#[utoipa::path(post, path = "/api/executions/{id}/cancel", tag = "executions",
    params(("id" = Uuid, Path, description = EXECUTION)),
    responses((status = 200, description = "The execution", body = ExecutionRow)))]
async fn cancel_execution(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ExecutionRow>> {
    caller.require(Role::Member)?;
    let execution = state
        .workflows
        .cancel(caller.0.workspace_id, id, &caller.actor())
        .await?;
    Ok(Json(execution))
}

/// Member: 201 with a new execution that reuses the completed nodes' outputs and runs
/// again from the ones that failed.
#[utoipa::path(post, path = "/api/executions/{id}/retry", tag = "executions",
    params(("id" = Uuid, Path, description = "The failed or cancelled execution")),
    responses((status = 201, description = "The new execution", body = ExecutionRow)))]
async fn retry_execution(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<(StatusCode, Json<ExecutionRow>)> {
    caller.require(Role::Member)?;
    let execution = state
        .workflows
        .retry(caller.0.workspace_id, id, &caller.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(execution)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ApprovalQuery {
    /// Only approvals in this status.
    #[param(inline, value_type = Option<ApprovalStatus>)]
    status: Option<String>,
    /// How many, newest first (1-500, default 50).
    limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Approvals {
    approvals: Vec<Approval>,
}

/// Any role: approvals of workflow nodes.
#[utoipa::path(get, path = "/api/approvals", tag = "approvals", params(ApprovalQuery),
    responses((status = 200, body = Approvals)))]
async fn list_approvals(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Query(query): Query<ApprovalQuery>,
) -> ApiResult<Json<Approvals>> {
    caller.require(Role::Viewer)?;
    check_status(
        query.status.as_deref(),
        &["pending", "approved", "rejected", "timed_out", "cancelled"],
    )?;
    let limit = super::clamp_limit(query.limit, 50, 500);
    let list = approvals::list(
        &state.pool,
        caller.0.workspace_id,
        query.status.as_deref(),
        limit,
    )
    .await?;
    Ok(Json(Approvals { approvals: list }))
}

/// An approval with its decisions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ApprovalDetail {
    #[serde(flatten)]
    approval: Approval,
    /// Oldest first.
    decisions: Vec<Decision>,
}

const APPROVAL: &str = "The approval's id";

/// Any role: an approval with its decisions.
#[utoipa::path(get, path = "/api/approvals/{id}", tag = "approvals",
    params(("id" = Uuid, Path, description = APPROVAL)),
    responses((status = 200, body = ApprovalDetail)))]
async fn get_approval(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ApprovalDetail>> {
    caller.require(Role::Viewer)?;
    approval_view(&state, caller.0.workspace_id, id).await
}

async fn approval_view(
    state: &AppState,
    workspace: Uuid,
    id: Uuid,
) -> ApiResult<Json<ApprovalDetail>> {
    let (approval, decisions) = approvals::get(&state.pool, workspace, id).await?;
    Ok(Json(ApprovalDetail {
        approval,
        decisions,
    }))
}

/// A `?status=` filter must name one of `allowed`.
fn check_status(status: Option<&str>, allowed: &[&str]) -> ApiResult<()> {
    match status {
        Some(status) if !allowed.contains(&status) => Err(ApiError::Invalid(format!(
            "status {status:?} is not one of {}",
            allowed.join(", ")
        ))),
        _ => Ok(()),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ApprovalDecisionInput)]
struct DecisionBody {
    #[schema(value_type = DecisionKind)]
    decision: String,
    /// Up to 4000 bytes.
    #[serde(default)]
    #[schema(max_length = 4000)]
    comment: String,
}

/// Any role the approval allows: record the key's decision (one per key).
#[utoipa::path(post, path = "/api/approvals/{id}", tag = "approvals",
    params(("id" = Uuid, Path, description = APPROVAL)),
    request_body = DecisionBody,
    responses(
        (status = 200, description = "The approval with its decisions", body = ApprovalDetail),
        (status = 409, description = "Decided already (or timed out), or this key decided before", body = super::openapi::ErrorBody),
    ))]
async fn decide_approval(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Json(body): Json<DecisionBody>,
) -> ApiResult<Json<ApprovalDetail>> {
    caller.require(Role::Viewer)?;
    let approve = match body.decision.as_str() {
        "approve" => true,
        "reject" => false,
        other => {
            return Err(ApiError::Invalid(format!(
                "decision {other:?} must be \"approve\" or \"reject\""
            )));
        }
    };
    if body.comment.len() > 4000 {
        return Err(ApiError::Invalid(
            "comment is longer than 4000 bytes".into(),
        ));
    }
    let workspace = caller.0.workspace_id;
    let decided = approvals::decide(
        &state.pool,
        workspace,
        id,
        caller.0.key_id,
        caller.0.role,
        approve,
        &body.comment,
    )
    .await?;
    if decided {
        state.workflows.wake_workers();
    }
    approval_view(&state, workspace, id).await
}

/// Any role: Server-Sent Events of the execution's events, from the start or after
/// `Last-Event-ID`; the stream ends after `finished`. Each event's `event` is its type
/// and `id` its sequence number; `data` is `{"type", "node", "data", "at"}` as JSON.
/// Reconnecting to a finished execution after its last event (as a browser's
/// `EventSource` does when a stream ends) answers 204, which tells it to stop.
#[utoipa::path(get, path = "/api/executions/{id}/events", tag = "executions",
    params(
        ("id" = Uuid, Path, description = EXECUTION),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event (an `id` of the stream); a value that isn't one starts from the beginning"),
    ),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream", body = String),
        (status = 204, description = "The execution finished and nothing is left after `Last-Event-ID`"),
    ))]
async fn execution_events(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    caller.require(Role::Viewer)?;
    store::get_execution(&state.pool, caller.0.workspace_id, id).await?;
    let after: i64 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if finished_at_or_before(&state.pool, id, after).await? {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let pool = state.pool.clone();
    let stream = async_stream(pool, id, after);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Whether the execution's `finished` event is at or before event `after`: nothing is
/// left to send, now or later.
async fn finished_at_or_before(
    pool: &sqlx::PgPool,
    execution: Uuid,
    after: i64,
) -> ApiResult<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM execution_events \
         WHERE execution_id = $1 AND kind = 'finished' AND id <= $2)",
    )
    .bind(execution)
    .bind(after)
    .fetch_one(pool)
    .await?)
}

fn async_stream(
    pool: sqlx::PgPool,
    execution: Uuid,
    after: i64,
) -> impl Stream<Item = Result<Event, std::convert::Infallible>> {
    futures_util::stream::unfold(
        (pool, after, Vec::<Event>::new(), false),
        move |(pool, mut after, mut queue, mut done)| async move {
            loop {
                if let Some(event) = queue.pop() {
                    return Some((Ok(event), (pool, after, queue, done)));
                }
                if done {
                    return None;
                }
                let rows: Vec<EventRow> = sqlx::query_as(
                    "SELECT id, kind, node_id, data, at FROM execution_events \
                     WHERE execution_id = $1 AND id > $2 ORDER BY id LIMIT 100",
                )
                .bind(execution)
                .bind(after)
                .fetch_all(&pool)
                .await
                .unwrap_or_default();
                if rows.is_empty() {
                    // A client that resumed exactly at the end gets no `finished` to
                    // see: end here rather than poll a finished execution forever.
                    if finished_at_or_before(&pool, execution, after)
                        .await
                        .unwrap_or(false)
                    {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                for EventRow {
                    id,
                    kind,
                    node_id: node,
                    data,
                    at,
                } in rows
                {
                    after = id;
                    done |= kind == "finished";
                    let body = json!({ "type": kind, "node": node, "data": data, "at": at });
                    queue.push(
                        Event::default()
                            .id(id.to_string())
                            .event(&kind)
                            .data(body.to_string()),
                    );
                }
                queue.reverse();
            }
        },
    )
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    kind: String,
    node_id: Option<String>,
    data: Value,
    at: chrono::DateTime<chrono::Utc>,
}
