//! The MCP server at `/mcp` (docs/mcp.md): a workspace's tools and agents for MCP
//! clients, over Streamable HTTP.
//!
//! The transport is the official Rust SDK's (`rmcp`) tower service: it speaks the
//! stateless 2026-07-28 protocol (no handshake, the version in every request) and the
//! session protocol of 2025-11-25 and before (`initialize`, `Mcp-Session-Id`), and it
//! checks `Host` and `Origin` against the configured lists. What the tools are and how
//! a call runs is ours, in [`handler`] and [`catalog`].
//!
//! In front of it: a workspace API key as bearer token, resolved by the API's own
//! authentication (same keys, cache and rate limit). Without a valid key the answer is
//! a 401 with `WWW-Authenticate`, as MCP's authorization section asks.

mod catalog;
mod handler;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};

use crate::auth::{self, Principal};
use crate::config::Config;
use crate::error::ApiError;
use crate::state::AppState;

pub const PATH: &str = "/mcp";

/// The `/mcp` route. Authentication is the MCP server's own (a 401 with
/// `WWW-Authenticate`), so it sits outside the API's authentication layer.
pub fn router(state: AppState) -> Router<AppState> {
    let handler_state = state.clone();
    let service = StreamableHttpService::new(
        move || Ok(handler::McpServer::new(handler_state.clone())),
        Arc::new(LocalSessionManager::default()),
        transport_config(&state.config).with_cancellation_token(state.shutting_down.child_token()),
    );
    Router::new()
        .route_service(PATH, service)
        // Innermost first: a workspace key is required, after the key was resolved,
        // and a 401 from either gets its challenge.
        .route_layer(middleware::from_fn(require_workspace_key))
        .route_layer(middleware::from_fn_with_state(state, auth::authenticate))
        .route_layer(middleware::from_fn(challenge))
}

/// The transport's settings: sessions for the older protocol (2026-07-28 requests are
/// stateless whatever this says), SSE keep-alives, and the DNS-rebinding guard.
fn transport_config(config: &Config) -> StreamableHttpServerConfig {
    let listed = |values: &[String]| -> Vec<String> {
        values
            .iter()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect()
    };
    let hosts = listed(&config.mcp_allowed_hosts);
    let origins = listed(&config.mcp_allowed_origins);
    let transport = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(true)
        .with_max_request_body_bytes(config.body_limit);
    let transport = if hosts.iter().any(|h| h == "*") {
        transport.disable_allowed_hosts()
    } else {
        transport.with_allowed_hosts(hosts)
    };
    if origins.iter().any(|o| o == "*") {
        transport.disable_allowed_origins()
    } else {
        // Enforced even if the list is emptied: then a browser page of any origin is
        // refused, while clients that send no Origin pass.
        transport
            .with_allowed_origins(origins)
            .enforce_origin_validation()
    }
}

/// A 401 says how to authenticate (RFC 6750): a bearer token, and whether the one sent
/// was wrong. There is no OAuth here, so no `resource_metadata`: the token is a
/// workspace API key created in the admin API.
async fn challenge(request: Request, next: Next) -> Response {
    let sent_token = request.headers().contains_key(header::AUTHORIZATION);
    let mut response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        let value = if sent_token {
            r#"Bearer realm="agenthost", error="invalid_token", error_description="the token is not a valid workspace API key""#
        } else {
            r#"Bearer realm="agenthost""#
        };
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
    }
    response
}

/// Tools and agents belong to a workspace: the instance admin token has none.
async fn require_workspace_key(request: Request, next: Next) -> Response {
    match request.extensions().get::<Principal>() {
        Some(Principal::Key(_)) => next.run(request).await,
        _ => ApiError::Forbidden(
            "the MCP server needs a workspace API key; the admin token has no workspace".into(),
        )
        .into_response(),
    }
}
