//! Webhook triggers over HTTP (docs/automation.md, Webhook triggers).
//!
//! `POST /hooks/{workflow}/{token}` is outside the API's authentication: the token in
//! the URL is the credential (and the signature, when the trigger asks for one). Every
//! refusal starts nothing: 404 (no such hook, or its latest version has no webhook
//! trigger), 409 (the workflow is disabled), 429, 415, 413, 401 (signature), 400/422
//! (the body can't be read or stored). The hook's settings, `GET …/hook`, are for
//! members; issuing and rotating its credentials, `POST …/hook/rotate`, for admins.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{Json, Path, TextBody};
use crate::auth::{Role, WorkspaceCaller};
use crate::automation::hooks::input::{self, BodyError};
use crate::automation::hooks::limiter::HookLimiter;
use crate::automation::hooks::store::{self, HookInfo, Issued, Rotation};
use crate::automation::hooks::{Respond, verify};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::workflows::StartOptions;
use crate::workflows::store::{ExecutionRow, get_execution};

/// How executions started by a hook name the actor.
pub const ACTOR: &str = "system:webhook";
/// The header every accepted request's answer names its execution in.
const EXECUTION_ID: &str = "x-execution-id";
/// The longest grace period of a rotation.
const MAX_GRACE: Duration = Duration::from_secs(7 * 86_400);

/// `POST /hooks/{workflow}/{token}`, without credentials. The per-hook rate limits are
/// this router's, so each server (and each test server) has its own.
pub fn public_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(receive))
        .layer(Extension(Arc::new(HookLimiter::default())))
}

/// The hook's settings and credentials, behind the API's authentication.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_hook))
        .routes(routes!(rotate_hook))
}

/// 202: the execution started (or, for a repeated idempotency key, the first one).
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Accepted {
    execution_id: Uuid,
    /// `running`, or where it got by now (`on_output` after its timeout, a repeated key).
    status: String,
}

/// 502 of `on_output`: the execution failed or was cancelled.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
struct ExecutionFailed {
    error: ExecutionFailedDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
struct ExecutionFailedDetail {
    /// `execution_failed`.
    code: String,
    message: String,
    execution_id: Uuid,
}

/// Start the workflow with the request as its input: `{method, headers, query, body}`
/// (headers that carry credentials left out). The response is 202 with the execution's
/// id, or, with `respond: "on_output"`, 200 with its output once it finished (502 when
/// it failed; 202 when `respond_timeout` passes first). An `Idempotency-Key` (or
/// Standard Webhooks' `webhook-id`) makes a retried delivery return the first execution.
#[utoipa::path(post, path = "/hooks/{workflow}/{token}", tag = "webhooks", security(()),
    params(
        ("workflow" = String, Path, description = "The workflow's slug (or id)"),
        ("token" = String, Path, description = "The hook's token, from `POST /api/workflows/{workflow}/hook/rotate`"),
        ("Idempotency-Key" = Option<String>, Header, description = "1-200 visible ASCII characters: a repeated key answers with the first execution instead of starting another (`webhook-id` counts when this is absent)"),
        ("X-Webhook-Timestamp" = Option<String>, Header, description = "Signed hooks (`hmac_sha256`): the Unix time in seconds the request was signed at"),
        ("X-Webhook-Signature" = Option<String>, Header, description = "Signed hooks (`hmac_sha256`): `sha256=<hex of HMAC-SHA256(secret, timestamp + \".\" + body)>`"),
    ),
    request_body(description = "JSON, form fields, or text; up to the hook's `max_body`",
        content((Object = "application/json"), (Object = "application/x-www-form-urlencoded"), (String = "text/plain"))),
    responses(
        (status = 202, description = "Started (or still running when `on_output` stopped waiting)", body = Accepted,
            headers(("x-execution-id" = String, description = "The execution's id"))),
        (status = 200, description = "`on_output`: the execution's output, any JSON value", body = Value,
            headers(("x-execution-id" = String, description = "The execution's id"))),
        (status = 401, description = "A signed hook's signature is missing or wrong, or its timestamp is outside the tolerance (a replay)", body = super::openapi::ErrorBody),
        (status = 404, description = "No hook with this token, or the workflow's latest version has no webhook trigger", body = super::openapi::ErrorBody),
        (status = 409, description = "The workflow is disabled (`workflow_disabled`)", body = super::openapi::ErrorBody),
        (status = 413, description = "The body is larger than the hook's `max_body`", body = super::openapi::ErrorBody),
        (status = 415, description = "Not JSON, form fields or text", body = super::openapi::ErrorBody),
        (status = 422, description = "The body can't be stored (a NUL), or doesn't match the workflow's input schema", body = super::openapi::ErrorBody),
        (status = 429, description = "Over the hook's `rate_limit_per_minute` (see Retry-After), or the workspace runs its most executions", body = super::openapi::ErrorBody),
        (status = 502, description = "`on_output`: the execution failed or was cancelled", body = ExecutionFailed),
    ))]
async fn receive(
    State(state): State<AppState>,
    Extension(limiter): Extension<Arc<HookLimiter>>,
    Path((workflow, token)): Path<(String, String)>,
    request: Request,
) -> ApiResult<Response> {
    let not_found = || ApiError::NotFound("no webhook at this URL".into());
    // A token is 4 + 43 characters; anything far longer is not one (and not hashed).
    if token.len() > 200 || workflow.len() > 200 {
        return Err(not_found());
    }
    let hook = store::find(&state.pool, &workflow, &token)
        .await?
        .ok_or_else(not_found)?;
    let Some(trigger) = hook.trigger else {
        return Err(ApiError::NotFound(format!(
            "workflow {:?} has no webhook trigger in its latest version",
            hook.slug
        )));
    };
    if !hook.enabled {
        return Err(ApiError::Coded {
            status: StatusCode::CONFLICT,
            code: "workflow_disabled",
            message: format!("workflow {:?} is disabled", hook.slug),
        });
    }
    if let Err(wait) = limiter.check(hook.workflow_id, trigger.rate_limit_per_minute()) {
        return Err(ApiError::RateLimited {
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
        });
    }
    let (parts, body) = request.into_parts();
    let kind = input::body_kind(&parts.headers).map_err(|message| ApiError::Rejected {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        message,
    })?;
    let limit = trigger.max_body(state.config.webhook_trigger_max_body);
    let bytes = read_body(&parts.headers, body, limit).await?;
    if let Some(signature) = &trigger.signature {
        let secrets: Vec<&str> = hook.secrets.iter().map(String::as_str).collect();
        verify::verify(
            signature.scheme,
            &secrets,
            &parts.headers,
            &bytes,
            signature.tolerance(),
            chrono::Utc::now().timestamp(),
        )
        .map_err(|refused| ApiError::Unauthorized(refused.0))?;
    }
    let idempotency_key = idempotency_key(&parts.headers)?;
    let body = input::decode_body(kind, &bytes).map_err(|error| match error {
        BodyError::Malformed(message) => ApiError::BadRequest(message),
        BodyError::Unstorable(message) => ApiError::Invalid(message),
        BodyError::Untyped => ApiError::Rejected {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: "a body needs a `Content-Type`: `application/json`, \
                      `application/x-www-form-urlencoded` or `text/plain`"
                .into(),
        },
    })?;
    let query = input::pairs_to_object(parts.uri.query().unwrap_or("").as_bytes(), "query")
        .map_err(|error| match error {
            BodyError::Unstorable(message) | BodyError::Malformed(message) => {
                ApiError::BadRequest(message)
            }
            BodyError::Untyped => ApiError::BadRequest("the query can't be read".into()),
        })?;
    let input = input::input(&parts.method, &parts.headers, query, body);
    let (execution, _) = state
        .workflows
        .start_execution(
            hook.workspace_id,
            &hook.workflow_id.to_string(),
            input,
            StartOptions {
                idempotency_key: idempotency_key.map(|key| format!("webhook:{key}")),
                actor: Some(ACTOR.to_string()),
            },
        )
        .await?;
    let execution = match trigger.respond {
        Respond::Accepted => execution,
        Respond::OnOutput => {
            // Never longer than the request may take: the caller gets 202, not a 503.
            let most = state
                .config
                .request_timeout
                .saturating_sub(Duration::from_millis(500));
            wait_for(
                &state,
                hook.workspace_id,
                execution,
                trigger.respond_timeout().min(most),
            )
            .await?
        }
    };
    Ok(answer(trigger.respond, execution))
}

/// The body, refused with 413 past `limit` (by its declared length before reading).
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> ApiResult<bytes::Bytes> {
    let too_large = || ApiError::Rejected {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        message: format!("the body is larger than this webhook's limit of {limit} bytes"),
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        let over = std::error::Error::source(&error)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if over {
            too_large()
        } else {
            ApiError::BadRequest("the body could not be read".into())
        }
    })
}

/// `Idempotency-Key`, else Standard Webhooks' `webhook-id`.
fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    for name in ["idempotency-key", verify::SW_ID] {
        if let Some(value) = headers.get(name) {
            let key = value
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|k| !k.is_empty() && k.len() <= 200 && !k.contains(char::is_control))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("{name} must be 1-200 visible ASCII characters"))
                })?;
            return Ok(Some(key.to_string()));
        }
    }
    Ok(None)
}

/// Wait until the execution finished or `wait` passed, whichever is first.
async fn wait_for(
    state: &AppState,
    workspace: Uuid,
    mut execution: ExecutionRow,
    wait: Duration,
) -> ApiResult<ExecutionRow> {
    let deadline = tokio::time::Instant::now() + wait;
    while matches!(execution.status.as_str(), "running" | "waiting")
        && tokio::time::Instant::now() < deadline
    {
        // Woken when it finishes on this host; polled for other hosts.
        let finished = state.workflows.finished.notified();
        let _ = tokio::time::timeout_at(
            deadline.min(tokio::time::Instant::now() + Duration::from_millis(50)),
            finished,
        )
        .await;
        execution = get_execution(&state.pool, workspace, execution.id).await?;
    }
    Ok(execution)
}

fn answer(respond: Respond, execution: ExecutionRow) -> Response {
    let id = HeaderValue::from_str(&execution.id.to_string()).ok();
    let mut response = match (respond, execution.status.as_str()) {
        (Respond::OnOutput, "succeeded") => (
            StatusCode::OK,
            Json(execution.output.clone().unwrap_or(Value::Null)),
        )
            .into_response(),
        (Respond::OnOutput, "failed" | "cancelled") => {
            let message = format!(
                "the execution {}: {}",
                execution.status,
                execution.error.as_deref().unwrap_or("no reason given")
            );
            let body = json!({"error": {
                "code": "execution_failed", "message": message, "execution_id": execution.id
            }});
            let mut response = (StatusCode::BAD_GATEWAY, Json(body)).into_response();
            // The workflow's failure is on record in its execution, not a server fault.
            response.extensions_mut().insert(super::AlreadyLogged);
            response
        }
        _ => (
            StatusCode::ACCEPTED,
            Json(Accepted {
                execution_id: execution.id,
                status: execution.status.clone(),
            }),
        )
            .into_response(),
    };
    if let Some(id) = id {
        response.headers_mut().insert(EXECUTION_ID, id);
    }
    response
}

const WORKFLOW: &str = "The workflow's id or slug";

/// Member: the workflow's webhook: its URL path (without the token), whether it is
/// active and signed, and when its credentials were issued. Never the token or secret.
#[utoipa::path(get, path = "/api/workflows/{workflow}/hook", tag = "webhooks",
    params(("workflow" = String, Path, description = WORKFLOW)),
    responses((status = 200, body = HookInfo)))]
async fn get_hook(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(workflow): Path<String>,
) -> ApiResult<Json<HookInfo>> {
    caller.require(Role::Member)?;
    Ok(Json(
        store::info(&state.pool, caller.0.workspace_id, &workflow).await?,
    ))
}

/// What to replace; the body is optional (a new token).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = HookRotation)]
struct RotateInput {
    /// A new token (default true). The first call always issues one.
    #[serde(default = "yes")]
    token: bool,
    /// A new signing secret (default false).
    #[serde(default)]
    secret: bool,
    /// How long the replaced token and secret keep working (`10m`, `24h`; default 0:
    /// they stop at once; longer than `7d` is cut to `7d`). A rotation ends an earlier
    /// grace period, so one that replaces nothing revokes the previous credentials now.
    #[serde(default)]
    #[schema(
        pattern = "^([0-9]{1,9}(\\.[0-9]{0,9})?|\\.[0-9]{1,9})(ms|s|m|h|d)?$",
        example = "1h"
    )]
    grace: Option<String>,
}

fn yes() -> bool {
    true
}

/// Admin: issue the webhook's first token, or replace its token and/or signing secret.
/// The new token (and the URL path with it) and a new secret are shown in this
/// response only. Replacing neither ends a grace period at once.
#[utoipa::path(post, path = "/api/workflows/{workflow}/hook/rotate", tag = "webhooks",
    params(("workflow" = String, Path, description = WORKFLOW)),
    request_body(content = Option<RotateInput>, description = "Optional: no body issues a new token"),
    responses((status = 200, description = "The new credentials, shown once", body = Issued)))]
async fn rotate_hook(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(workflow): Path<String>,
    TextBody(body): TextBody,
) -> ApiResult<Json<Issued>> {
    caller.require(Role::Admin)?;
    let input = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<Option<RotateInput>>(&body).map_err(|e| {
            let message = format!("the body is not a rotation: {e}");
            match e.classify() {
                serde_json::error::Category::Data => ApiError::Invalid(message),
                _ => ApiError::BadRequest(message),
            }
        })?
    };
    let (token, secret, grace) = match input {
        Some(input) => (input.token, input.secret, input.grace),
        None => (true, false, None),
    };
    let grace = match grace {
        // Cut rather than refused, as `?wait=` is: the caller asked for "long".
        Some(text) => crate::config::parse_retention(&text)
            .map_err(|why| ApiError::Invalid(format!("grace: {why}")))?
            .min(MAX_GRACE),
        None => Duration::ZERO,
    };
    let issued = store::rotate(
        &state.pool,
        caller.0.workspace_id,
        &workflow,
        Rotation {
            token,
            secret,
            grace,
        },
    )
    .await?;
    Ok(Json(issued))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_without_a_length_is_cut_at_the_limit() {
        // Chunked: no Content-Length to refuse it by, so the read itself must stop.
        let headers = HeaderMap::new();
        let error = read_body(&headers, Body::from(vec![b'x'; 2000]), 1999)
            .await
            .expect_err("over the limit");
        assert_eq!(error.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let read = read_body(&headers, Body::from(vec![b'x'; 2000]), 2000)
            .await
            .expect("at the limit");
        assert_eq!(read.len(), 2000);
        let mut declared = HeaderMap::new();
        declared.insert(header::CONTENT_LENGTH, HeaderValue::from(5000));
        let error = read_body(&declared, Body::empty(), 1000)
            .await
            .expect_err("declared over the limit");
        assert_eq!(error.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
