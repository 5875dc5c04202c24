//! The OpenAPI 3.1 document of the API and the `/docs` page.
//!
//! Every route is registered with utoipa-axum's `routes!`, which takes the handler's
//! `#[utoipa::path]` entry with it: the document is collected from the same definitions
//! as the router. What the handlers don't say themselves is filled in here once for
//! every operation: the bearer scheme, and the error responses all routes share.

use axum::Router;
use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};
use utoipa::{PartialSchema, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

use crate::state::AppState;

/// The error shape of every route: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable: `bad_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `invalid`, `payload_too_large`, `rate_limited`, `unavailable`, or a
    /// specific code such as `plugin_timeout`.
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
    /// On a 5xx: the request's id (also in `x-request-id`), under which the server
    /// logged what happened. A server error's details are never in the body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The error shape of the OpenAI-compatible routes (`/v1/...`), as OpenAI's clients
/// expect it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiErrorBody {
    pub error: OpenAiErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiErrorDetail {
    pub message: String,
    /// `invalid_request_error`, `authentication_error`, `permission_error`,
    /// `not_found_error`, `rate_limit_error`, `api_error`, ...
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
    /// On a 5xx: the request's id, under which the server logged what happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// One event of a `text/event-stream` response, as an SSE parser reads it: the schema
/// of every such response (schemathesis checks each event against it).
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerSentEvent {
    /// The event's type; `message` when absent.
    #[schema(required = false)]
    pub event: String,
    /// The event's data: JSON in our streams (`[DONE]` ends the OpenAI-compatible one).
    #[schema(required = false)]
    pub data: String,
    /// What a reconnect sends as `Last-Event-ID` to resume after this event.
    #[schema(required = false)]
    pub id: String,
    /// How long a client waits before reconnecting, in milliseconds.
    #[schema(required = false)]
    pub retry: u64,
}

/// Operations anyone may call; everything else needs a bearer key.
/// (A webhook trigger's URL carries its own credential, the token in the path.)
const PUBLIC: &[&str] = &["/healthz", "/readyz", "/hooks/{workflow}/{token}"];

/// The errors any authenticated route can answer, besides those a handler documents.
/// Routes without a body or parameters still get 400/413/415 from the framework
/// when a client sends something unexpected, so they are listed everywhere.
const SHARED_ERRORS: &[(&str, &str)] = &[
    (
        "400",
        "The request could not be read (bad JSON, path or query).",
    ),
    ("401", "No key, or an unknown, revoked or expired key."),
    ("403", "The key's role may not do this."),
    ("404", "Not found (in this workspace)."),
    ("405", "Method not allowed for this route."),
    ("409", "Conflicts with the current state."),
    ("413", "The body is larger than this route's limit."),
    ("415", "Wrong content type."),
    (
        "422",
        "Well-formed but breaks a rule; the message says which.",
    ),
    ("429", "Rate limited; see Retry-After."),
    (
        "503",
        "Unavailable (a dependency is down, or the request timed out).",
    ),
];

const PUBLIC_ERRORS: &[&str] = &["400", "404", "405", "503"];

/// Fills in what every operation shares and titles the document.
pub fn finish(mut api: OpenApi) -> OpenApi {
    api.info.title = "Agenthost API".into();
    api.info.version = env!("CARGO_PKG_VERSION").into();
    api.info.description = Some(
        "A self-hosted server for AI agents whose tools and workflow steps are \
         WebAssembly components. Authenticate with a workspace API key \
         (`Authorization: Bearer ahk_...`); instance administration uses the admin token \
         (`aha_...`)."
            .into(),
    );
    api.info.license = None;
    // `OpenApiRouter::new` derives its document inside utoipa-axum, so the contact it
    // carries is that crate's author, not anyone to ask about this API.
    api.info.contact = None;
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A workspace API key, or the instance admin token for /api/admin routes.",
                ))
                .build(),
        ),
    );
    components
        .schemas
        .insert("Error".into(), ErrorBody::schema());
    components
        .schemas
        .insert("ErrorDetail".into(), ErrorDetail::schema());
    components
        .schemas
        .insert("OpenAiError".into(), OpenAiErrorBody::schema());
    components
        .schemas
        .insert("OpenAiErrorDetail".into(), OpenAiErrorDetail::schema());
    components
        .schemas
        .insert("ServerSentEvent".into(), ServerSentEvent::schema());
    for (path, item) in api.paths.paths.iter_mut() {
        let public = PUBLIC.contains(&path.as_str());
        let error_schema = if path.starts_with("/v1/") {
            "OpenAiError"
        } else {
            "Error"
        };
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            add_shared(operation, public, error_schema);
        }
    }
    api
}

fn add_shared(operation: &mut Operation, public: bool, error_schema: &str) {
    // OpenAPI requires a description on every response; a handler's own
    // `(status = 200, body = X)` says enough in its body type, so it gets the status's name.
    for (status, response) in operation.responses.responses.iter_mut() {
        if let RefOr::T(response) = response
            && response.description.trim().is_empty()
        {
            response.description = status
                .parse::<u16>()
                .ok()
                .and_then(|code| axum::http::StatusCode::from_u16(code).ok())
                .and_then(|code| code.canonical_reason())
                .unwrap_or("The response")
                .to_string();
        }
    }
    for response in operation.responses.responses.values_mut() {
        if let RefOr::T(response) = response
            && let Some(RefOr::T(stream)) = response.content.get_mut("text/event-stream")
        {
            stream.schema = Some(Ref::from_schema_name("ServerSentEvent").into());
        }
    }
    if !public {
        operation.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
    for (status, description) in SHARED_ERRORS {
        if public && !PUBLIC_ERRORS.contains(status) {
            continue;
        }
        operation
            .responses
            .responses
            .entry((*status).to_string())
            .or_insert_with(|| RefOr::T(error_response(description, error_schema)));
    }
}

fn error_response(description: &str, schema: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build(),
        )
        .build()
}

/// `GET /openapi.json` and the Swagger UI at `/docs`, both without credentials. The UI's
/// assets are compiled into the binary (utoipa-swagger-ui's vendored copy), so the page
/// renders with no network. Its validator badge is off: by default Swagger UI sends the
/// spec's URL to validator.swagger.io whenever the page is not on localhost.
pub fn router(api: OpenApi) -> Router<AppState> {
    SwaggerUi::new("/docs")
        .url("/openapi.json", api)
        .config(utoipa_swagger_ui::Config::default().validator_url("none"))
        .into()
}
