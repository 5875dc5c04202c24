//! Workflows, their versions and executions (docs/workflows.md).
//!
//! Roles: reading needs any key, starting and cancelling executions `member`, saving
//! workflows `admin`. A definition with problems is 422 `invalid_definition` listing
//! every one of them (`problems: [{path, message}]`).

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::extract::{Json, Path, Query};
use crate::auth::{Role, WorkspaceCaller};
use crate::config::parse_duration;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::workflows::definition::{self, Definition};
use crate::workflows::store::{self, WorkflowInput};
use crate::workflows::{StartOptions, approvals};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/workflows", get(list_workflows).post(create_workflow))
        .route(
            "/api/workflows/{workflow}",
            get(get_workflow)
                .patch(update_workflow)
                .delete(delete_workflow),
        )
        .route("/api/workflows/{workflow}/versions", get(list_versions))
        .route(
            "/api/workflows/{workflow}/versions/{version}",
            get(get_version),
        )
        .route(
            "/api/workflows/{workflow}/executions",
            post(start_execution),
        )
        .route("/api/executions", get(list_executions))
        .route("/api/executions/{id}", get(get_execution))
        .route("/api/executions/{id}/cancel", post(cancel_execution))
        .route("/api/executions/{id}/retry", post(retry_execution))
        .route("/api/approvals", get(list_approvals))
        .route(
            "/api/approvals/{id}",
            get(get_approval).post(decide_approval),
        )
        .route("/api/executions/{id}/events", get(execution_events))
}

/// Validate a definition against the node types active now.
fn validated(state: &AppState, raw: &Value) -> Result<Definition, Vec<definition::Problem>> {
    let lookup = store::node_type_lookup(&state.registry);
    definition::validate(raw, &lookup)
}

async fn list_workflows(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let workflows = store::list_workflows(&state.pool, caller.0.workspace_id).await?;
    Ok(Json(json!({ "workflows": workflows })))
}

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
    Ok((StatusCode::CREATED, Json(json!(workflow))).into_response())
}

async fn get_workflow(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(workflow): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let workflow = store::get_workflow(&state.pool, caller.0.workspace_id, &workflow).await?;
    let latest = store::get_version(&state.pool, workflow.id, workflow.latest_version).await?;
    let mut view = json!(workflow);
    view["definition"] = latest.definition;
    Ok(Json(view))
}

/// Name, description and enabled change in place; a `definition` saves version n+1.
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
    Ok(Json(json!(workflow)).into_response())
}

async fn delete_workflow(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(workflow): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    store::delete_workflow(&state.pool, caller.0.workspace_id, &workflow).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_versions(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(workflow): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let workflow = store::get_workflow(&state.pool, caller.0.workspace_id, &workflow).await?;
    let versions = store::list_versions(&state.pool, workflow.id).await?;
    Ok(Json(json!({ "versions": versions })))
}

async fn get_version(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path((workflow, version)): Path<(String, i32)>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let workflow = store::get_workflow(&state.pool, caller.0.workspace_id, &workflow).await?;
    let version = store::get_version(&state.pool, workflow.id, version).await?;
    Ok(Json(json!(version)))
}

#[derive(Debug, Deserialize)]
struct StartQuery {
    /// Wait up to this long (`5s`, `500ms`, at most the request timeout) for the result.
    wait: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    #[serde(default)]
    input: Value,
}

/// 201 with the execution (or 200 with the first one when the `Idempotency-Key` was
/// used before); with `?wait=` 200 once it finished in time, else 202.
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
            StartOptions { idempotency_key },
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
    Ok((status, Json(json!(execution))).into_response())
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    workflow: Option<String>,
    status: Option<String>,
    limit: Option<i64>,
}

async fn list_executions(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
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
    Ok(Json(json!({ "executions": executions })))
}

async fn get_execution(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let execution = store::get_execution(&state.pool, caller.0.workspace_id, id).await?;
    let runs = store::node_runs(&state.pool, id).await?;
    let mut view = json!(execution);
    view["nodes"] = json!(runs);
    Ok(Json(view))
}

async fn cancel_execution(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Member)?;
    let execution = state.workflows.cancel(caller.0.workspace_id, id).await?;
    Ok(Json(json!(execution)))
}

/// 201 with a new execution that reuses the completed nodes' outputs and runs again
/// from the ones that failed.
async fn retry_execution(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(Role::Member)?;
    let execution = state.workflows.retry(caller.0.workspace_id, id).await?;
    Ok((StatusCode::CREATED, Json(json!(execution))))
}

#[derive(Debug, Deserialize)]
struct ApprovalQuery {
    status: Option<String>,
    limit: Option<i64>,
}

async fn list_approvals(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Query(query): Query<ApprovalQuery>,
) -> ApiResult<Json<Value>> {
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
    Ok(Json(json!({ "approvals": list })))
}

async fn get_approval(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    approval_view(&state, caller.0.workspace_id, id).await
}

/// An approval with its decisions.
async fn approval_view(state: &AppState, workspace: Uuid, id: Uuid) -> ApiResult<Json<Value>> {
    let (approval, decisions) = approvals::get(&state.pool, workspace, id).await?;
    let mut view = json!(approval);
    view["decisions"] = json!(decisions);
    Ok(Json(view))
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    /// `approve` or `reject`.
    decision: String,
    #[serde(default)]
    comment: String,
}

/// Record the key's decision (single use per key; the approval's role applies).
async fn decide_approval(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Json(body): Json<DecisionBody>,
) -> ApiResult<Json<Value>> {
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

/// SSE of the execution's events, from the start or after `Last-Event-ID`; the
/// stream ends after `finished`.
async fn execution_events(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>> {
    caller.require(Role::Viewer)?;
    store::get_execution(&state.pool, caller.0.workspace_id, id).await?;
    let after: i64 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let pool = state.pool.clone();
    let stream = async_stream(pool, id, after);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
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
