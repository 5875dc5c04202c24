//! The HTTP API: routes, and the middleware every request passes through.

mod admin;
mod agents;
mod console;
mod data;
mod drafts;
mod events;
mod extract;
mod health;
mod hooks;
mod kb;
mod keys;
mod node_types;
mod openai;
pub mod openapi;
mod plugin_logs;
mod plugins;
mod rules;
mod schedules;
mod settings;
mod ticket_enrichment;
mod tickets;
mod tools;
mod webhooks;
mod workflows;
mod workspace;

use axum::Extension;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};
use tower_http::classify::{
    ClassifiedResponse, ClassifyResponse, NeverClassifyEos, ServerErrorsAsFailures,
    ServerErrorsFailureClass, SharedClassifier,
};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::auth;
use crate::config::Config;
use crate::error::{ApiError, error_body};
use crate::state::AppState;
use crate::telemetry::metrics;

pub use extract::{BodyLimit, RequestId};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application. Separate from `serve` so tests can drive it directly.
pub fn app(state: AppState) -> Router {
    let (routes, api) = documented_routes(&state).split_for_parts();
    let routes = routes
        .merge(openapi::router(openapi::finish(api)))
        .merge(crate::mcp::router(state.clone()))
        // The web console: any GET the API doesn't serve (its 404s stay JSON).
        .fallback(console::fallback);
    with_middleware(routes, &state.config).with_state(state)
}

/// The OpenAPI document of [`app`], as `GET /openapi.json` serves it.
pub fn openapi_document(state: &AppState) -> utoipa::openapi::OpenApi {
    openapi::finish(documented_routes(state).into_openapi())
}

/// Every route of the REST API, each registered with its OpenAPI entry by `routes!`.
/// Only `/mcp` (a JSON-RPC protocol with its own discovery), `/openapi.json` and
/// `/docs` are added outside it.
fn documented_routes(state: &AppState) -> OpenApiRouter<AppState> {
    let authenticated = OpenApiRouter::new()
        .merge(admin::router())
        .merge(agents::router())
        .merge(data::router())
        .merge(drafts::router())
        .merge(events::router())
        .merge(hooks::router())
        .merge(kb::router())
        .merge(keys::router())
        .merge(node_types::router())
        .merge(plugin_logs::router())
        .merge(plugins::router(state.config.plugin_upload_limit))
        .merge(rules::router())
        .merge(schedules::router())
        .merge(settings::router())
        .merge(tickets::router())
        .merge(ticket_enrichment::router())
        .merge(tools::router())
        .merge(webhooks::router())
        .merge(workflows::router())
        .merge(workspace::router())
        // route_layer: unknown paths get a plain 404, not a demand for credentials.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    OpenApiRouter::new()
        .merge(health::router())
        // Webhook triggers: the URL's token is the credential; each hook reads its body
        // under its own limit (`max_body`), not the API's.
        .merge(hooks::public_router())
        .merge(authenticated)
        .merge(openai::router(state.clone()))
}

/// The `--metrics-listen` app: `GET /metrics` without credentials, for a private network.
pub fn metrics_app(state: AppState) -> Router {
    let scrape = |State(state): State<AppState>| async move {
        metrics::response(&state.pool, state.config.plugin_instances).await
    };
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(state)
}

/// What every request passes through, outermost first: the request duration metric,
/// request id, tracing span, JSON error bodies, timeout, body size limit.
fn with_middleware(routes: Router<AppState>, config: &Config) -> Router<AppState> {
    routes.layer(
        ServiceBuilder::new()
            .layer(middleware::from_fn(metrics::track_request))
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(
                TraceLayer::new(SharedClassifier::new(UnloggedServerErrors))
                    .make_span_with(request_span),
            )
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(middleware::from_fn(json_errors))
            .layer(middleware::from_fn_with_state(
                TimeLimits {
                    request: config.request_timeout,
                    upload: config.plugin_upload_timeout,
                },
                time_limit,
            ))
            .layer(body_limit(config.body_limit)),
    )
}

/// The time limits of requests: one for all, and a longer one for plugin uploads.
#[derive(Debug, Clone, Copy)]
struct TimeLimits {
    request: std::time::Duration,
    upload: std::time::Duration,
}

/// Where plugins are uploaded (`http::plugins`).
const PLUGIN_UPLOAD_PATH: &str = "/api/admin/plugins";

/// Stops a request that takes longer than its limit with a 503. Decided before routing
/// (an outer limit would cut a longer inner one short), so the upload is told apart by
/// its method and path.
async fn time_limit(State(limits): State<TimeLimits>, request: Request, next: Next) -> Response {
    let is_upload = request.method() == axum::http::Method::POST
        && request.uri().path().trim_end_matches('/') == PLUGIN_UPLOAD_PATH;
    let limit = if is_upload {
        limits.upload
    } else {
        limits.request
    };
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Unavailable("the request took too long and was stopped".into())
            .into_response(),
    }
}

/// The body limit of every import (business data, tickets, knowledge-base articles):
/// one number, the one README.md states.
pub(crate) const IMPORT_BODY_LIMIT: usize = 32 << 20;

/// The body size limit of a route, also put in the request as [`BodyLimit`] so the
/// 413 can say what the limit is. Layers nearer the route override outer ones.
pub(crate) fn body_limit(
    limit: usize,
) -> ServiceBuilder<Stack<Extension<BodyLimit>, Stack<DefaultBodyLimit, Identity>>> {
    ServiceBuilder::new()
        .layer(DefaultBodyLimit::max(limit))
        .layer(Extension(BodyLimit(limit)))
}

/// A response extension: its failure was already logged where it happened (plugin
/// faults: rate-limited warnings in the registry), so the trace layer doesn't log it
/// again as an ERROR.
#[derive(Debug, Clone, Copy)]
pub struct AlreadyLogged;

/// tower-http's `ServerErrorsAsFailures`, except for responses marked [`AlreadyLogged`].
#[derive(Debug, Clone, Copy)]
struct UnloggedServerErrors;

impl ClassifyResponse for UnloggedServerErrors {
    type FailureClass = ServerErrorsFailureClass;
    type ClassifyEos = NeverClassifyEos<ServerErrorsFailureClass>;

    fn classify_response<B>(
        self,
        response: &axum::http::Response<B>,
    ) -> ClassifiedResponse<Self::FailureClass, Self::ClassifyEos> {
        if response.extensions().get::<AlreadyLogged>().is_some() {
            ClassifiedResponse::Ready(Ok(()))
        } else {
            ServerErrorsAsFailures::new().classify_response(response)
        }
    }

    fn classify_error<E: std::fmt::Display + 'static>(self, error: &E) -> Self::FailureClass {
        ServerErrorsFailureClass::Error(error.to_string())
    }
}

fn request_span(request: &Request) -> tracing::Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id,
        actor = tracing::field::Empty,
    )
}

async fn unknown_route(request: Request) -> ApiError {
    ApiError::NotFound(format!(
        "no route for {} {}",
        request.method(),
        request.uri().path()
    ))
}

/// Responses made outside our handlers (405 from the router, 413 from the body
/// limit, 503 from the timeout, ...) get the same JSON error shape as ours. The
/// request's id is made known to `ApiError` here, so a 5xx body can name it.
async fn json_errors(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let response = crate::error::with_request_id(request_id, next.run(request)).await;
    let status = response.status();
    let is_error = status.is_client_error() || status.is_server_error();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !is_error || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let message = match (text.trim(), status) {
        // The router adds the Allow header after this middleware has run.
        (_, StatusCode::METHOD_NOT_ALLOWED) => {
            "method not allowed for this route (see the Allow header)".to_string()
        }
        (_, StatusCode::SERVICE_UNAVAILABLE) if text.trim().is_empty() => {
            "the request took too long and was stopped".to_string()
        }
        ("", _) => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase(),
        (text, _) => text.to_string(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = error_body(status, &message).into_response().into_body();
    Response::from_parts(parts, Body::new(body))
}

pub(crate) use crate::db::clamp_limit;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::routing::get;
    use http_body_util::BodyExt;
    use sqlx::postgres::PgPoolOptions;
    use tower::ServiceExt;

    use super::*;

    fn state_without_database(config: Config) -> AppState {
        // Never connects: these tests only exercise middleware.
        let pool = PgPoolOptions::new()
            .connect_lazy("postgres://nobody@localhost/none")
            .expect("lazy pool");
        let engine = crate::runtime::EngineConfig {
            max_concurrent_instances: 4,
            ..Default::default()
        };
        let engine = std::sync::Arc::new(crate::runtime::WasmEngine::new(&engine).expect("engine"));
        let cache_dir = std::env::temp_dir().join("agenthost-unit-cache");
        let cache = crate::registry::cache::ArtifactCache::new(cache_dir, &engine).expect("cache");
        let registry = crate::registry::Registry::new(
            pool.clone(),
            engine,
            cache,
            crate::runtime::Limits::default(),
            64 << 20,
            crate::capabilities::Services::from_config(&config, &pool).expect("services"),
        );
        AppState::new(pool, config, std::sync::Arc::new(registry))
    }

    async fn send(app: Router, request: Request) -> (StatusCode, serde_json::Value) {
        let response = app.oneshot(request).await.expect("infallible");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (
            status,
            serde_json::from_slice(&body).expect("JSON error body"),
        )
    }

    #[tokio::test]
    async fn slow_requests_are_stopped_at_the_timeout_with_json() {
        let mut config = Config::for_data_dir("unused".into());
        config.request_timeout = Duration::from_millis(50);
        let routes = Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "finished"
            }),
        );
        let state = state_without_database(config);
        let app = with_middleware(routes, &state.config).with_state(state);
        let started = std::time::Instant::now();
        let request = Request::get("/slow").body(Body::empty()).expect("request");
        let (status, body) = send(app, request).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], "unavailable");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn plugin_uploads_get_their_own_time_limit() {
        let mut config = Config::for_data_dir("unused".into());
        config.request_timeout = Duration::from_millis(50);
        config.plugin_upload_timeout = Duration::from_secs(10);
        let slow = || async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            "compiled"
        };
        let routes = Router::new()
            .route(PLUGIN_UPLOAD_PATH, axum::routing::post(slow))
            .route("/api/other", axum::routing::post(slow));
        let state = state_without_database(config);
        let app = with_middleware(routes, &state.config).with_state(state);
        let upload = Request::post(PLUGIN_UPLOAD_PATH)
            .body(Body::empty())
            .expect("request");
        let response = app.clone().oneshot(upload).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        let other = Request::post("/api/other")
            .body(Body::empty())
            .expect("request");
        let (status, body) = send(app, other).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], "unavailable");
    }

    #[tokio::test]
    async fn unknown_routes_and_methods_get_json_errors() {
        let state = state_without_database(Config::for_data_dir("unused".into()));
        let app = app(state);
        // Under the API's prefixes; other GETs are the web console's pages.
        let request = Request::get("/api/nope")
            .body(Body::empty())
            .expect("request");
        let (status, body) = send(app.clone(), request).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["message"], "no route for GET /api/nope");

        let request = Request::delete("/healthz")
            .body(Body::empty())
            .expect("request");
        let (status, body) = send(app, request).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["error"]["code"], "method_not_allowed");
    }
}
