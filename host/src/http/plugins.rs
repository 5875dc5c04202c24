//! Plugin administration (instance admin only): upload, list, show, activate, roll
//! back, enable/disable, delete versions, grants, settings, and instance secrets.

use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::extract::{BodyLimit, Json, Path, Query, RequestId, reject_nul_in_json};
use crate::auth::{InstanceAdmin, Principal};
use crate::error::{ApiError, ApiResult};
use crate::registry::manifest::{Capabilities, Manifest};
use crate::registry::{Actor, PluginInfo, RegistryError, VersionInfo};
use crate::state::AppState;

pub fn router(upload_limit: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_plugins, upload).layer(super::body_limit(upload_limit)))
        .routes(routes!(show_plugin))
        .routes(routes!(rollback))
        .routes(routes!(enable))
        .routes(routes!(disable))
        .routes(routes!(set_settings))
        .routes(routes!(show_version, delete_version))
        .routes(routes!(activate))
        .routes(routes!(set_grants))
        .routes(routes!(metrics))
        .routes(routes!(list_secrets))
        .routes(routes!(set_secret))
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct UploadQuery {
    /// Activate the new version right away.
    #[serde(default)]
    activate: bool,
}

/// The upload form, for the OpenAPI document (the handler reads the parts itself and
/// refuses any other part, hence `deny_unknown_fields`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct UploadForm {
    /// The manifest, JSON (see docs/plugins.md).
    manifest: String,
    /// The compiled component (`.wasm`).
    #[schema(format = Binary, content_media_type = "application/wasm")]
    component: Vec<u8>,
}

/// Admin token: upload a new version: `multipart/form-data` with a `manifest` part
/// (JSON) and a `component` part (wasm).
#[utoipa::path(post, path = "/api/admin/plugins", tag = "plugins", params(UploadQuery),
    request_body(content = inline(UploadForm), content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The new version", body = VersionInfo),
        (status = 400, description = "Not a valid component (`invalid_component`) or a malformed form", body = super::openapi::ErrorBody),
        (status = 409, description = "This version already exists", body = super::openapi::ErrorBody),
    ))]
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

/// Admin token: every installed plugin.
#[utoipa::path(get, path = "/api/admin/plugins", tag = "plugins",
    responses((status = 200, body = Vec<PluginInfo>)))]
async fn list_plugins(
    _: InstanceAdmin,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<PluginInfo>>> {
    Ok(Json(state.registry.plugins().await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct PluginDetail {
    #[serde(flatten)]
    plugin: PluginInfo,
    versions: Vec<VersionInfo>,
}

/// Admin token: a plugin with all its versions.
#[utoipa::path(get, path = "/api/admin/plugins/{name}", tag = "plugins", params(("name" = String, Path, description = "Plugin name")),
    responses((status = 200, body = PluginDetail)))]
async fn show_plugin(
    _: InstanceAdmin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginDetail>> {
    let plugin = state.registry.plugin(&name).await?;
    let versions = state.registry.versions(&name).await?;
    Ok(Json(PluginDetail { plugin, versions }))
}

/// Admin token: one version.
#[utoipa::path(get, path = "/api/admin/plugins/{name}/versions/{version}", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name"), ("version" = String, Path, description = "Semantic version")), responses((status = 200, body = VersionInfo)))]
async fn show_version(
    _: InstanceAdmin,
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<VersionInfo>> {
    Ok(Json(state.registry.version(&name, &version).await?))
}

/// Admin token: make a version the active one (on every replica).
#[utoipa::path(post, path = "/api/admin/plugins/{name}/versions/{version}/activate", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name"), ("version" = String, Path, description = "Semantic version")), responses((status = 200, body = PluginInfo)))]
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

/// Admin token: reactivate the previously active version.
#[utoipa::path(post, path = "/api/admin/plugins/{name}/rollback", tag = "plugins", params(("name" = String, Path, description = "Plugin name")),
    responses((status = 200, body = PluginInfo)))]
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

/// Admin token: enable a plugin.
#[utoipa::path(post, path = "/api/admin/plugins/{name}/enable", tag = "plugins", params(("name" = String, Path, description = "Plugin name")),
    responses((status = 200, body = PluginInfo)))]
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

/// Admin token: disable a plugin; its tools and nodes stop being offered.
#[utoipa::path(post, path = "/api/admin/plugins/{name}/disable", tag = "plugins", params(("name" = String, Path, description = "Plugin name")),
    responses((status = 200, body = PluginInfo)))]
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

/// Admin token: delete an inactive version.
#[utoipa::path(delete, path = "/api/admin/plugins/{name}/versions/{version}", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name"), ("version" = String, Path, description = "Semantic version")), responses((status = 204, description = "Deleted")))]
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

/// Admin token: the capabilities granted to a version (within what it asks for).
#[utoipa::path(put, path = "/api/admin/plugins/{name}/versions/{version}/grants", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name"), ("version" = String, Path, description = "Semantic version")), request_body = Capabilities, responses((status = 200, body = VersionInfo)))]
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

/// Admin token: the plugin's settings, checked against its `config_schema`.
#[utoipa::path(put, path = "/api/admin/plugins/{name}/settings", tag = "plugins", params(("name" = String, Path, description = "Plugin name")),
    request_body(content = Object, description = "Settings matching the manifest's config_schema"),
    responses((status = 200, body = PluginInfo)))]
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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SecretValue {
    value: String,
}

/// Admin token: set an instance secret (plugins read granted ones via `config.secret`).
#[utoipa::path(put, path = "/api/admin/secrets/{name}", tag = "plugins",
    params(("name" = String, Path, description = "Secret name: 1-128 letters, digits, `_`, `.` or `-`",
        pattern = "^[A-Za-z0-9_.-]{1,128}$")),
    request_body = SecretValue, responses((status = 204, description = "Stored")))]
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

/// Admin token: the names of the instance secrets (never their values).
#[utoipa::path(get, path = "/api/admin/secrets", tag = "plugins",
    responses((status = 200, body = Vec<String>)))]
async fn list_secrets(
    _: InstanceAdmin,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(state.registry.secret_names().await?))
}

/// Admin token: the plugin call counters, Prometheus text format (also in `/metrics`).
#[utoipa::path(get, path = "/api/admin/metrics", tag = "plugins", operation_id = "plugin_metrics",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String)))]
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
