//! Plugin log lines, per plugin and version (instance admin only): what plugins wrote
//! with `log.write`, newest first, paged with `before`.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Json, Path, Query};
use crate::auth::InstanceAdmin;
use crate::error::{ApiError, ApiResult};
use crate::plugin_logs::{self, Filter, Level, LogLine};
use crate::state::AppState;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(plugin_logs))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct LogsQuery {
    /// Only lines written by this version.
    version: Option<String>,
    /// Only lines at this level or a more severe one.
    #[param(inline)]
    level: Option<Level>,
    /// Only lines written at or after this time (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// Only lines of the call(s) of this request id.
    request_id: Option<String>,
    /// Only lines older than this line id: pass the previous page's `next_before`.
    before: Option<i64>,
    /// Only lines newer than this line id (to follow new lines).
    after: Option<i64>,
    /// How many lines, newest first (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct PluginLogs {
    /// Newest first.
    lines: Vec<LogLine>,
    /// When older lines match too: the `before` of the next page.
    next_before: Option<i64>,
}

/// Admin token: a plugin's stored log lines, newest first (kept: the newest 10 000 per
/// plugin, at most 14 days).
#[utoipa::path(get, path = "/api/admin/plugins/{name}/logs", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name"), LogsQuery),
    responses((status = 200, body = PluginLogs)))]
async fn plugin_logs(
    _: InstanceAdmin,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<LogsQuery>,
) -> ApiResult<Json<PluginLogs>> {
    if let Some(limit) = query.limit.filter(|l| !(1..=MAX_LIMIT).contains(l)) {
        return Err(ApiError::Invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}, not {limit}"
        )));
    }
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    // 404 for a plugin that is not installed, rather than an empty list.
    state.registry.plugin(&name).await?;
    let filter = Filter {
        version: query.version,
        level: query.level,
        since: query.since.map(within_postgres_range),
        request_id: query.request_id,
        before: query.before,
        after: query.after,
    };
    // One more than asked: whether there is a next page.
    let mut lines = plugin_logs::read(&state.pool, &name, &filter, limit + 1).await?;
    let next_before = if lines.len() as i64 > limit {
        lines.truncate(limit as usize);
        lines.last().map(|line| line.id)
    } else {
        None
    };
    Ok(Json(PluginLogs { lines, next_before }))
}

/// chrono reads years PostgreSQL cannot store (it would answer 500): no line is older
/// than the epoch or newer than year 9999, so clamping changes no answer.
fn within_postgres_range(since: DateTime<Utc>) -> DateTime<Utc> {
    let earliest = DateTime::<Utc>::UNIX_EPOCH;
    let latest = DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(earliest);
    since.clamp(earliest, latest)
}
