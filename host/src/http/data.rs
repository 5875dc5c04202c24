//! The business-data API.
//!
//! `POST /api/data/{entity}` imports a JSON array of objects, or CSV with a header
//! line (`Content-Type: text/csv`), upserting by `external_id`, all or nothing:
//! 200 `{entity, received, inserted, updated}`; 422 `invalid_rows` with
//! `error.rows: [{row, field, message}]` listing every problem (nothing is written);
//! 400 a body that can't be read as rows; 404 an unknown entity.
//! `GET /api/data/{entity}?limit=&offset=` lists rows, ordered by external id.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{Json, Path, Query, TextBody};
use crate::auth::{Role, WorkspaceCaller};
use crate::data::import::{self, ImportError};
use crate::data::{self, Entity};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Imports are bigger than other requests (10 000 rows of a few hundred bytes).
const IMPORT_BODY_LIMIT: usize = 16 << 20;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/data", get(list_entities)).route(
        "/api/data/{entity}",
        get(list_rows)
            .post(import_rows)
            .layer(super::body_limit(IMPORT_BODY_LIMIT)),
    )
}

fn entity_named(name: &str) -> ApiResult<&'static Entity> {
    data::entity(name).ok_or_else(|| {
        let known: Vec<&str> = data::ENTITIES.iter().map(|e| e.name).collect();
        ApiError::NotFound(format!(
            "no data entity {name:?}; there are {}",
            known.join(", ")
        ))
    })
}

async fn list_entities(caller: WorkspaceCaller) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let entities: Vec<Value> = data::ENTITIES
        .iter()
        .map(|e| {
            let fields: Vec<Value> = e
                .fields
                .iter()
                .map(|f| json!({ "name": f.name, "type": format!("{:?}", f.kind), "required": f.required, "references": f.references }))
                .collect();
            json!({ "name": e.name, "fields": fields })
        })
        .collect();
    Ok(Json(json!({ "entities": entities })))
}

async fn import_rows(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    TextBody(body): TextBody,
) -> ApiResult<Response> {
    caller.require(Role::Admin)?;
    let entity = entity_named(&name)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let parsed = if content_type.starts_with("text/csv") {
        import::rows_from_csv(&body)
    } else if content_type.starts_with("application/json") {
        import::rows_from_json(&body)
    } else {
        return Err(ApiError::Rejected {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: format!(
                "send a JSON array (application/json) or CSV (text/csv), not {content_type}"
            ),
        });
    };
    let result = match parsed.and_then(|rows| import::normalise_all(entity, &rows)) {
        Ok(rows) => import::write(&state.pool, caller.0.workspace_id, entity, rows).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(summary) => Ok(axum::Json(summary).into_response()),
        Err(ImportError::Malformed(message)) => Err(ApiError::BadRequest(message)),
        Err(ImportError::Rows(rows)) => {
            let message = format!(
                "{} problem(s) in the rows; nothing was imported (first: row {}: {} {})",
                rows.len(),
                rows[0].row,
                rows[0].field.as_deref().unwrap_or(""),
                rows[0].message
            );
            let body =
                json!({ "error": { "code": "invalid_rows", "message": message, "rows": rows } });
            Ok((StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response())
        }
        Err(ImportError::Database(err)) => Err(err.into()),
    }
}

#[derive(Debug, Deserialize)]
struct Page {
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn list_rows(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let entity = entity_named(&name)?;
    let limit = super::clamp_limit(page.limit, 100, 1000);
    // The table name comes from the static entity list, never from the request.
    let sql = format!(
        "SELECT to_jsonb(t) - 'workspace_id' FROM data.{} t WHERE workspace_id = $1 \
         ORDER BY external_id LIMIT $2 OFFSET $3",
        entity.name
    );
    let rows: Vec<Value> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(caller.0.workspace_id)
        .bind(limit)
        .bind(page.offset.unwrap_or(0).max(0))
        .fetch_all(&state.pool)
        .await?;
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM data.{} WHERE workspace_id = $1",
        entity.name
    )))
    .bind(caller.0.workspace_id)
    .fetch_one(&state.pool)
    .await?;
    Ok(Json(json!({ "rows": rows, "total": total })))
}
