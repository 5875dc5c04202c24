//! Plugin administration (instance admin only): upload, list, show, activate, roll
//! back, enable/disable, delete versions, grants, settings, and instance secrets.

use axum::Router;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::extract::{BodyLimit, Json, Path, Query, RequestId, reject_nul_in_json};
use crate::auth::{InstanceAdmin, Principal};
use crate::error::{ApiError, ApiResult};
use crate::registry::manifest::{Capabilities, Manifest};
use crate::registry::{Actor, PluginInfo, RegistryError, VersionInfo};
use crate::state::AppState;

pub fn router(upload_limit: usize) -> Router<AppState> {
    Router::new()
        .route(
            "/api/admin/plugins",
            get(list_plugins)
                .post(upload)
                .layer(super::body_limit(upload_limit)),
        )
        .route("/api/admin/plugins/{name}", get(show_plugin))
        .route("/api/admin/plugins/{name}/rollback", post(rollback))
        .route("/api/admin/plugins/{name}/enable", post(enable))
        .route("/api/admin/plugins/{name}/disable", post(disable))
        .route("/api/admin/plugins/{name}/settings", put(set_settings))
        .route(
            "/api/admin/plugins/{name}/versions/{version}",
            get(show_version).delete(delete_version),
        )
        .route(
            "/api/admin/plugins/{name}/versions/{version}/activate",
            post(activate),
        )
        .route(
            "/api/admin/plugins/{name}/versions/{version}/grants",
            put(set_grants),
        )
        .route("/api/admin/metrics", get(metrics))
        .route("/api/admin/secrets", get(list_secrets))
        .route("/api/admin/secrets/{name}", put(set_secret))
}

impl From<RegistryError> for ApiError {
    fn from(err: RegistryError) -> Self {
        match err {
            RegistryError::NotFound(m) => ApiError::NotFound(m),
            RegistryError::Conflict(m) => ApiError::Conflict(m),
            RegistryError::Invalid(m) => ApiError::Invalid(m),
            RegistryError::BadComponent(m) => ApiError::Coded {
                status: StatusCode::BAD_REQUEST,
                code: "invalid_component",
                message: m,
            },
            RegistryError::Internal(e) => ApiError::Internal(e),
        }
    }
}

fn actor<'a>(request_id: &'a RequestId) -> Actor<'a> {
    Actor {
        principal: &Principal::InstanceAdmin,
        request_id: request_id.as_deref(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    /// Activate the new version right away.
    #[serde(default)]
    activate: bool,
}

/// `multipart/form-data` with a `manifest` part (JSON) and a `component` part (wasm).
async fn upload(
    _: InstanceAdmin,
    State(state): State<AppState>,
    request_id: RequestId,
    Query(query): Query<UploadQuery>,
    limit: BodyLimit,
    multipart: Multipart,
) -> ApiResult<(StatusCode, Json<VersionInfo>)> {
    let (manifest, component) = read_upload(multipart, limit).await?;
    let (name, version) = (manifest.name.clone(), manifest.version.clone());
    let registry = &state.registry;
    let mut info = registry
        .install(manifest, component, actor(&request_id))
        .await?;
    if query.activate {
        registry
            .activate(&name, &version, actor(&request_id))
            .await?;
        info = registry.version(&name, &version).await?;
    }
    Ok((StatusCode::CREATED, Json(info)))
}

async fn read_upload(mut multipart: Multipart, limit: BodyLimit) -> ApiResult<(Manifest, Vec<u8>)> {
    let bad = |m: String| ApiError::BadRequest(m);
    let rejected = |e: axum::extract::multipart::MultipartError| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => limit.exceeded(),
        status => ApiError::Rejected {
            status,
            message: e.body_text(),
        },
    };
    let (mut manifest, mut component) = (None, None);
    while let Some(field) = multipart.next_field().await.map_err(rejected)? {
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field.bytes().await.map_err(rejected)?;
        match name.as_str() {
            "manifest" => {
                reject_nul_in_json(&bytes, "manifest")?;
                let parsed: Manifest = serde_json::from_slice(&bytes)
                    .map_err(|e| ApiError::Invalid(format!("invalid manifest: {e}")))?;
                manifest = Some(parsed);
            }
            "component" => component = Some(bytes.to_vec()),
            other => {
                return Err(bad(format!(
                    "unexpected form field {other:?}: send `manifest` and `component`"
                )));
            }
        }
    }
    match (manifest, component) {
        (Some(manifest), Some(component)) => Ok((manifest, component)),
        (None, _) => Err(bad("the `manifest` form field (JSON) is missing".into())),
        (_, None) => Err(bad(
            "the `component` form field (the .wasm file) is missing".into(),
        )),
    }
}

async fn list_plugins(
    _: InstanceAdmin,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<PluginInfo>>> {
    Ok(Json(state.registry.plugins().await?))
}

#[derive(Debug, Serialize)]
struct PluginDetail {
    #[serde(flatten)]
    plugin: PluginInfo,
    versions: Vec<VersionInfo>,
}

async fn show_plugin(
    _: InstanceAdmin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginDetail>> {
    let plugin = state.registry.plugin(&name).await?;
    let versions = state.registry.versions(&name).await?;
    Ok(Json(PluginDetail { plugin, versions }))
}

async fn show_version(
    _: InstanceAdmin,
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<VersionInfo>> {
    Ok(Json(state.registry.version(&name, &version).await?))
}

async fn activate(
    _: InstanceAdmin,
    State(state): State<AppState>,
    request_id: RequestId,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<PluginInfo>> {
    Ok(Json(
        state
            .registry
            .activate(&name, &version, actor(&request_id))
            .await?,
    ))
}

async fn rollback(
    _: InstanceAdmin,
    State(state): State<AppState>,
    request_id: RequestId,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginInfo>> {
    Ok(Json(
        state.registry.rollback(&name, actor(&request_id)).await?,
    ))
}

async fn enable(
    _: InstanceAdmin,
    State(state): State<AppState>,
    request_id: RequestId,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginInfo>> {
    Ok(Json(
        state
            .registry
            .set_enabled(&name, true, actor(&request_id))
            .await?,
    ))
}

async fn disable(
    _: InstanceAdmin,
    State(state): State<AppState>,
    request_id: RequestId,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginInfo>> {
    Ok(Json(
        state
            .registry
            .set_enabled(&name, false, actor(&request_id))
            .await?,
    ))
}

async fn delete_version(
    _: InstanceAdmin,
    State(state): State<AppState>,
    request_id: RequestId,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .registry
        .delete_version(&name, &version, actor(&request_id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_grants(
    _: InstanceAdmin,
    State(state): State<AppState>,
    request_id: RequestId,
    Path((name, version)): Path<(String, String)>,
    Json(grants): Json<Capabilities>,
) -> ApiResult<Json<VersionInfo>> {
    Ok(Json(
        state
            .registry
            .set_grants(&name, &version, grants, actor(&request_id))
            .await?,
    ))
}

async fn set_settings(
    _: InstanceAdmin,
    State(state): State<AppState>,
    request_id: RequestId,
    Path(name): Path<String>,
    Json(settings): Json<Value>,
) -> ApiResult<Json<PluginInfo>> {
    Ok(Json(
        state
            .registry
            .set_settings(&name, settings, actor(&request_id))
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretValue {
    value: String,
}

async fn set_secret(
    _: InstanceAdmin,
    State(state): State<AppState>,
    request_id: RequestId,
    Path(name): Path<String>,
    Json(secret): Json<SecretValue>,
) -> ApiResult<StatusCode> {
    state
        .registry
        .set_secret(&name, &secret.value, actor(&request_id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_secrets(
    _: InstanceAdmin,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(state.registry.secret_names().await?))
}

/// Prometheus text format.
async fn metrics(
    _: InstanceAdmin,
    State(state): State<AppState>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.registry.metrics.render(),
    )
}
