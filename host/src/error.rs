//! The one error type of the HTTP API. Every error leaves the server as
//! `{"error": {"code": "...", "message": "..."}}`; internal details are logged in the
//! request's span and answered generically.

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
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(err) => {
                tracing::error!(error = ?err, "internal error");
                "internal server error (details are in the server log)".to_string()
            }
            other => other.to_string(),
        };
        let code = match &self {
            ApiError::Coded { code, .. } => code,
            _ => code_for_status(status),
        };
        let mut response = (status, coded_error_body(code, &message)).into_response();
        if let ApiError::RateLimited { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

/// Constraint violations are the client's fault (409/422), anything else from the
/// database is ours (500).
impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            let constraint = db.constraint().unwrap_or("a constraint");
            match db.code().as_deref() {
                Some("23505") => {
                    return ApiError::Conflict(format!("already exists (violates {constraint})"));
                }
                Some("23514") | Some("23502") => {
                    return ApiError::Invalid(format!("invalid value (violates {constraint})"));
                }
                Some("23503") => {
                    return ApiError::Invalid(format!(
                        "refers to something that does not exist (violates {constraint})"
                    ));
                }
                _ => {}
            }
        }
        ApiError::Internal(err.into())
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
