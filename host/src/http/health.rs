//! Liveness and readiness, for load balancers and orchestrators. No credentials.

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::Json;
use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// `{"status": "ok"}` or `{"status": "ready"}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct HealthStatus {
    #[schema(example = "ok")]
    status: String,
}

/// The process is up and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, description = "Up", body = HealthStatus, example = json!({"status": "ok"}))))]
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The database answers and every migration of this build has been applied.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()),
    responses(
        (status = 200, description = "Ready", body = HealthStatus, example = json!({"status": "ready"})),
        (status = 503, description = "The database is unreachable or migrations are pending", body = super::openapi::ErrorBody),
    ))]
async fn readyz(State(state): State<AppState>) -> ApiResult<(StatusCode, Json<Value>)> {
    match db::migrations_applied(&state.pool).await {
        Ok(true) => Ok((StatusCode::OK, Json(json!({ "status": "ready" })))),
        Ok(false) => Err(ApiError::Unavailable(
            "database migrations are pending (run `agenthost migrate`)".into(),
        )),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            Err(ApiError::Unavailable(
                "the database is not reachable".into(),
            ))
        }
    }
}
