//! Liveness and readiness, for load balancers and orchestrators. No credentials.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use super::extract::Json;
use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The process is up and serving HTTP.
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The database answers and every migration of this build has been applied.
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
