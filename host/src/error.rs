//! The one error type of the HTTP API. Every error leaves the server as
//! `{"error": {"code": "...", "message": "..."}}`; internal details are logged in the
//! request's span and answered generically.
//!
//! No database error text reaches a client: a database error is either a rule the
//! client broke (a constraint: 409/422), the database being out of reach (503), or
//! ours (500), and the last two are logged and answered with a fixed message. Every
//! 5xx body carries the request's id (`error.request_id`, also in `x-request-id`), the
//! key to its log lines.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed input that no extractor caught (e.g. a component that is not wasm).
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Well-formed input that breaks a rule (422).
    #[error("{0}")]
    Invalid(String),
    #[error("rate limit exceeded: retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// The workspace's monthly LLM budget is spent: 429 `budget_exceeded` with the
    /// figures in `error.budget`.
    #[error("{0}")]
    BudgetExceeded(Box<BudgetExceeded>),
    #[error("{0}")]
    Unavailable(String),
    /// A request the framework refused before a handler ran (bad JSON, wrong
    /// content type, too large, bad path parameter...).
    #[error("{message}")]
    Rejected { status: StatusCode, message: String },
    /// An error with its own machine-readable code (e.g. `plugin_timeout`).
    #[error("{message}")]
    Coded {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// The database can't be reached (pool exhausted, connection lost): 503, logged.
    #[error("the database is not reachable")]
    DatabaseUnreachable(#[source] sqlx::Error),
    /// Not `transparent`: whatever prints an `ApiError` (an MCP tool result, an agent
    /// step) must not print the database's text either.
    #[error("internal server error (details are in the server log)")]
    Internal(#[from] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

tokio::task_local! {
    /// The id of the request being handled, set around every handler by
    /// `http::json_errors` (inside the request-id layer), so a 5xx can name it.
    static REQUEST_ID: Option<String>;
}

/// Runs `work` (a request's handling) with its request id known to [`ApiError`].
pub async fn with_request_id<F: Future>(request_id: Option<String>, work: F) -> F::Output {
    REQUEST_ID.scope(request_id, work).await
}

/// The id of the request being handled, if any (not in background tasks).
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok().flatten()
}

/// Logs `error` (in the current span, so with the request's id) and returns a message
/// for the client that says what failed without the error's text. For errors that
/// travel as strings (`VectorError::Unavailable`, a guest's `unavailable`) and may hold
/// a database's or another internal message.
pub fn logged(what: &str, error: &(dyn std::error::Error + 'static)) -> String {
    tracing::error!(error = %ErrorChain(error), "{what}");
    see_the_log(what, current_request_id().as_deref())
}

/// A 503 for work that failed in a way the client may act on ("no LLM is configured"),
/// or on the database, whose text stays in the log.
pub fn unavailable(what: &str, error: anyhow::Error) -> ApiError {
    if error.chain().any(|cause| cause.is::<sqlx::Error>()) {
        ApiError::Unavailable(logged(what, error.as_ref()))
    } else {
        ApiError::Unavailable(format!("{what}: {error:#}"))
    }
}

/// An error with its sources, `a: b: c`, for the log.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } | ApiError::BudgetExceeded(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Unavailable(_) | ApiError::DatabaseUnreachable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Rejected { status, .. } | ApiError::Coded { status, .. } => *status,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The machine-readable code for a status, shared with responses that did not come
/// from an `ApiError` (see `http::json_errors`).
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        status if status.is_server_error() => "internal",
        _ => "error",
    }
}

/// The standard error body.
pub fn error_body(status: StatusCode, message: &str) -> Json<serde_json::Value> {
    coded_error_body(code_for_status(status), message)
}

fn coded_error_body(code: &str, message: &str) -> Json<serde_json::Value> {
    Json(json!({ "error": { "code": code, "message": message } }))
}

/// The message of an error whose details only the log has.
fn see_the_log(what: &str, request_id: Option<&str>) -> String {
    match request_id {
        Some(id) => format!("{what} (details are in the server log under request id {id})"),
        None => format!("{what} (details are in the server log)"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let request_id = if status.is_server_error() {
            current_request_id()
        } else {
            None
        };
        let message = match &self {
            ApiError::Internal(err) => {
                tracing::error!(error = ?err, "internal error");
                see_the_log("internal server error", request_id.as_deref())
            }
            ApiError::DatabaseUnreachable(err) => {
                tracing::error!(error = %err, "the database is not reachable");
                see_the_log(
                    "the database is not reachable; try again shortly",
                    request_id.as_deref(),
                )
            }
            other => other.to_string(),
        };
        let code = match &self {
            ApiError::Coded { code, .. } => code,
            ApiError::BudgetExceeded(_) => "budget_exceeded",
            _ => code_for_status(status),
        };
        let mut body = coded_error_body(code, &message);
        if let Some(id) = request_id {
            body.0["error"]["request_id"] = json!(id);
        }
        if let ApiError::BudgetExceeded(exceeded) = &self {
            body.0["error"]["budget"] = json!(exceeded);
        }
        let retry_after = match &self {
            ApiError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            ApiError::BudgetExceeded(exceeded) => Some(exceeded.retry_after_secs()),
            _ => None,
        };
        let mut response = (status, body).into_response();
        if let Some(retry_after_secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

/// What a client is told about data the database refused (a constraint, or a rule of
/// a table's trigger). Our triggers raise `check_violation` with a sentence written for
/// people and no constraint named: that is passed on. PostgreSQL's own messages name
/// relations and constraints, so those become a plain sentence; the detail is logged.
pub fn refusal_message(db: &dyn sqlx::error::DatabaseError) -> String {
    let code = db.code();
    if db.constraint().is_none() && code.as_deref() == Some("23514") {
        return db.message().to_string();
    }
    tracing::info!(
        code = code.as_deref().unwrap_or("-"),
        constraint = db.constraint().unwrap_or("-"),
        message = db.message(),
        "the database refused a request's data"
    );
    match code.as_deref() {
        Some("23505") => "already exists",
        Some("23503") => "refers to something that does not exist",
        Some("23502") => "a required value is missing",
        Some("22003") => "a number is out of range",
        Some("22008") => "a date or time is out of range",
        _ => "breaks a rule of the table",
    }
    .to_string()
}

/// Constraint violations are the client's fault (409/422), anything else from the
/// database is ours (500).
impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            match db.code().as_deref() {
                Some("23505") => return ApiError::Conflict(refusal_message(db.as_ref())),
                Some("23514" | "23502" | "23503") => {
                    return ApiError::Invalid(refusal_message(db.as_ref()));
                }
                _ => {}
            }
        }
        match err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => ApiError::DatabaseUnreachable(err),
            // Any other refusal (a statement the database can't run: a limit, a
            // cancelled query, a missing table) is a bug of ours, not the client's.
            err => ApiError::Internal(err.into()),
        }
    }
}

macro_rules! from_rejection {
    ($($rejection:ty),*) => {$(
        impl From<$rejection> for ApiError {
            fn from(rejection: $rejection) -> Self {
                ApiError::Rejected { status: rejection.status(), message: rejection.body_text() }
            }
        }
    )*};
}

from_rejection!(
    axum::extract::rejection::JsonRejection,
    axum::extract::rejection::PathRejection,
    axum::extract::rejection::QueryRejection
);

/// A spent budget: the figures of the 429 `budget_exceeded` and of the event.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Exceeded)]
pub struct BudgetExceeded {
    /// Which budget: `tokens` or `usd`.
    pub unit: &'static str,
    /// Used this month.
    #[schema(value_type = f64)]
    pub used: serde_json::Number,
    /// The monthly budget.
    #[schema(value_type = f64)]
    pub budget: serde_json::Number,
    pub period_start: chrono::DateTime<chrono::Utc>,
    pub resets_at: chrono::DateTime<chrono::Utc>,
}

impl std::fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (used, budget) = match self.unit {
            "usd" => (format!("{} USD", self.used), format!("{} USD", self.budget)),
            _ => (
                format!("{} tokens", self.used),
                format!("{} tokens", self.budget),
            ),
        };
        write!(
            f,
            "the workspace's monthly LLM budget is spent: {used} used of {budget}; \
             it resets at {}",
            self.resets_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    }
}

impl BudgetExceeded {
    /// Whole seconds until the budget resets (at least 1), for `Retry-After`.
    pub fn retry_after_secs(&self) -> u64 {
        let left = self.resets_at - chrono::Utc::now();
        u64::try_from(left.num_seconds()).unwrap_or(0).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(err: ApiError) -> (StatusCode, serde_json::Value, Option<String>) {
        let response = err.into_response();
        let status = response.status();
        let retry = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap_or_default().to_string());
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).expect("json body"),
            retry,
        )
    }

    #[tokio::test]
    async fn internal_errors_hide_their_details() {
        let (status, body, _) =
            body_of(ApiError::Internal(anyhow::anyhow!("password=hunter2"))).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["code"], "internal");
        assert!(!body.to_string().contains("hunter2"));
    }

    #[tokio::test]
    async fn server_errors_name_the_request_but_not_the_database() {
        let database = sqlx::Error::Protocol("stack depth limit exceeded at line 104".into());
        let (status, body, _) =
            with_request_id(Some("req-7".into()), body_of(ApiError::from(database))).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["request_id"], "req-7");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("req-7"), "{message}");
        assert!(!body.to_string().contains("stack depth"), "{body}");

        let (status, body, _) = with_request_id(
            Some("req-8".into()),
            body_of(ApiError::from(sqlx::Error::PoolTimedOut)),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], "unavailable");
        assert_eq!(body["error"]["request_id"], "req-8");

        // A client's mistake has no request id to look up.
        let (_, body, _) =
            with_request_id(Some("req-9".into()), body_of(ApiError::Invalid("x".into()))).await;
        assert!(body["error"].get("request_id").is_none(), "{body}");
    }

    #[tokio::test]
    async fn rate_limits_carry_retry_after() {
        let (status, body, retry) = body_of(ApiError::RateLimited {
            retry_after_secs: 7,
        })
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body["error"]["code"], "rate_limited");
        assert_eq!(retry.as_deref(), Some("7"));
    }
}
