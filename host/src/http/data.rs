//! The business-data API.
//!
//! `POST /api/data/{entity}` imports a JSON array of objects, or CSV with a header
//! line (`Content-Type: text/csv`), upserting by `external_id`, all or nothing:
//! 200 `{entity, received, inserted, updated}`; 422 `invalid_rows` with
//! `error.rows: [{row, field, message}]` listing every problem (nothing is written);
//! 400 a body that can't be read as rows; 404 an unknown entity.
//! `GET /api/data/{entity}?limit=&offset=` lists rows, ordered by external id.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::extract::{Json, Path, Query, TextBody};
use crate::auth::{Role, WorkspaceCaller};
use crate::data::import::{self, ImportError};
use crate::data::{self, Entity, RowError};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_entities))
        .routes(routes!(list_rows, import_rows).layer(super::body_limit(super::IMPORT_BODY_LIMIT)))
}

// The names of `data::ENTITIES` (a test checks they agree).
/// An importable entity.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum DataEntity {
    People,
    Customers,
    Deals,
    Transactions,
    SalesRepPerformance,
    CostAllocationRules,
}

/// An import as CSV: a header line naming the fields, then a row per line (quoted as
/// RFC 4180; empty cells are absent values). Without a row it is 400.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, pattern = "^[^\\r\\n\"]+\\r?\\n[\\s\\S]*\\S")]
#[allow(dead_code)]
pub(super) struct CsvRows(String);

/// Rows of an import as JSON objects (at least one).
#[derive(utoipa::ToSchema)]
#[schema(value_type = Vec<Object>, min_items = 1, max_items = 10000)]
#[allow(dead_code)]
struct JsonRows(Vec<Value>);

/// 422 `invalid_rows` of an import: every problem of every row; nothing was written.
/// Other 422s of an import (`invalid`) have the usual error shape, without `rows`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct InvalidRows {
    error: InvalidRowsDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct InvalidRowsDetail {
    /// `invalid_rows` (or `invalid` for another rule, without `rows`).
    code: String,
    /// How many problems, and the first of them.
    message: String,
    /// Every problem, by row (numbered from 1; in CSV the line after the header is 1).
    #[schema(required = false)]
    rows: Vec<RowError>,
}

/// The 422 of an import whose rows have problems (shared with the tickets import).
pub(super) fn invalid_rows(rows: Vec<RowError>) -> Response {
    let message = format!(
        "{} problem(s) in the rows; nothing was imported (first: row {}: {} {})",
        rows.len(),
        rows[0].row,
        rows[0].field.as_deref().unwrap_or(""),
        rows[0].message
    );
    let body = InvalidRows {
        error: InvalidRowsDetail {
            code: "invalid_rows".into(),
            message,
            rows,
        },
    };
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
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

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct DataEntities {
    entities: Vec<EntityInfo>,
}

/// An importable entity and its fields; `external_id` is implied and required in each.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = DataEntityInfo)]
struct EntityInfo {
    /// The `{entity}` of `/api/data/{entity}`, and the table in schema `data`.
    name: &'static str,
    fields: Vec<FieldInfo>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = DataField)]
struct FieldInfo {
    /// The name in JSON objects and CSV headers.
    name: &'static str,
    /// How the value is checked: `Text`, `Date` (`YYYY-MM-DD`), `Numeric`,
    /// `NonNegative`, `Int`, `IntIn(1, 13)`, `Bool`, `Currency` (ISO 4217),
    /// `OneOf(["a", "b"])`.
    #[serde(rename = "type")]
    kind: String,
    required: bool,
    /// The entity whose `external_id` the field holds.
    references: Option<&'static str>,
}

/// Any role: the importable entities and their fields.
#[utoipa::path(get, path = "/api/data", tag = "data",
    responses((status = 200, body = DataEntities)))]
async fn list_entities(caller: WorkspaceCaller) -> ApiResult<Json<DataEntities>> {
    caller.require(Role::Viewer)?;
    let entities = data::ENTITIES
        .iter()
        .map(|e| EntityInfo {
            name: e.name,
            fields: e
                .fields
                .iter()
                .map(|f| FieldInfo {
                    name: f.name,
                    kind: format!("{:?}", f.kind),
                    required: f.required,
                    references: f.references,
                })
                .collect(),
        })
        .collect();
    Ok(Json(DataEntities { entities }))
}

const ENTITY: &str = "The entity (see `GET /api/data`)";

/// Admin: upsert rows by `external_id` from a JSON array of objects or CSV with a header
/// line, all or nothing.
#[utoipa::path(post, path = "/api/data/{entity}", tag = "data",
    params(("entity" = inline(DataEntity), Path, description = ENTITY)),
    request_body(description = "Up to 10 000 rows (32 MiB); the fields of `GET /api/data` plus `external_id`",
        content((JsonRows = "application/json"), (CsvRows = "text/csv"))),
    responses(
        (status = 200, description = "What was written", body = import::ImportSummary),
        (status = 422, description = "Rows that break the entity's rules, every problem listed (`invalid_rows`); nothing was written", body = InvalidRows),
    ))]
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
        Ok(rows) => {
            import::write(
                &state.pool,
                caller.0.workspace_id,
                entity,
                rows,
                &caller.actor(),
            )
            .await
        }
        Err(err) => Err(err),
    };
    match result {
        Ok(summary) => Ok(axum::Json(summary).into_response()),
        Err(ImportError::Malformed(message)) => Err(ApiError::BadRequest(message)),
        Err(ImportError::Rows(rows)) => Ok(invalid_rows(rows)),
        Err(ImportError::Database(err)) => Err(err.into()),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Page {
    /// Rows per page (1-1000, default 100).
    limit: Option<i64>,
    /// Rows to skip.
    offset: Option<i64>,
}

/// A page of rows, ordered by external id.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct DataRows {
    /// The rows as stored: every column of the entity's table (`id`, `external_id`,
    /// the fields, a reference as `<field>_id`).
    #[schema(value_type = Vec<Object>)]
    rows: Vec<Value>,
    /// Rows of the entity in the workspace.
    total: i64,
}

/// Any role: a page of an entity's rows, ordered by external id.
#[utoipa::path(get, path = "/api/data/{entity}", tag = "data",
    params(("entity" = inline(DataEntity), Path, description = ENTITY), Page),
    responses((status = 200, body = DataRows)))]
async fn list_rows(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult<Json<DataRows>> {
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
    Ok(Json(DataRows { rows, total }))
}

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema;

    use super::*;

    #[test]
    fn the_documented_entities_are_the_entities() {
        let schema = serde_json::to_value(DataEntity::schema()).unwrap();
        let documented: Vec<&str> = schema["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let entities: Vec<&str> = data::ENTITIES.iter().map(|e| e.name).collect();
        assert_eq!(documented, entities);
    }
}
