//! The MCP server at `/mcp`: a workspace's tools and agents for MCP clients.

use axum::Router;

use crate::state::AppState;

/// The `/mcp` routes. Authentication is the MCP server's own (a 401 with
/// `WWW-Authenticate`), so these sit outside the API's authentication layer.
pub fn router(_state: AppState) -> Router<AppState> {
    Router::new()
}
