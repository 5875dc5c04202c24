//! The web console: the single-page app in `console/`, embedded in the binary by
//! `host/build.rs` and served at `/` as the router's fallback, so the API (`/api`,
//! `/v1`, `/mcp`, `/docs`, ...) always wins and a path nothing else serves gets the
//! app, which routes in the browser.
//!
//! Caching: files under `/assets/` carry a content hash in their name (Vite), so they
//! are `immutable` for a year; everything else (the HTML) is `no-cache` with an ETag,
//! so a browser revalidates it on each load (a 304) and an upgraded binary's new
//! asset names are seen at once rather than after a max-age. Compression: the setup
//! script stores a gzip twin of each file, sent when the client accepts gzip; nothing
//! is compressed per request.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));

/// One embedded file of `console/dist`.
pub(crate) struct Asset {
    /// The URL path, `/index.html`, `/assets/index-3f2a.js`, ...
    path: &'static str,
    body: &'static [u8],
    /// The same bytes gzipped, when the setup script made them.
    gzip: Option<&'static [u8]>,
    content_type: &'static str,
    etag: &'static str,
}

/// Paths of the API and the other non-console routes: an unknown path under them is the
/// API's JSON 404, never the app's HTML.
const API_PREFIXES: &[&str] = &[
    "/api",
    "/v1",
    "/mcp",
    "/docs",
    "/openapi.json",
    "/hooks",
    "/healthz",
    "/readyz",
    "/metrics",
];

/// What the browser may do with the console's pages: only this origin's scripts,
/// styles and API; never framed. (React Flow positions nodes with style attributes,
/// hence `'unsafe-inline'` for styles only.)
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
    form-action 'self'";

/// The router's fallback: a console file, the app's page for its own routes, or the
/// API's 404.
pub(super) async fn fallback(request: Request) -> Response {
    let path = request.uri().path();
    let is_api = API_PREFIXES
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")));
    let is_read = request.method() == Method::GET || request.method() == Method::HEAD;
    if is_api || !is_read {
        return super::unknown_route(request).await.into_response();
    }
    let asset = match find(path) {
        Some(asset) => asset,
        // A hashed file that isn't there is a stale page asking for an old build's
        // file: a 404, not the HTML (which a script tag would try to run).
        None if path.starts_with("/assets/") => {
            return super::unknown_route(request).await.into_response();
        }
        None => match find("/index.html") {
            Some(index) => index,
            None => return super::unknown_route(request).await.into_response(),
        },
    };
    respond(asset, request.headers(), request.method() == Method::HEAD)
}

fn find(path: &str) -> Option<&'static Asset> {
    let path = if path == "/" { "/index.html" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}

fn respond(asset: &'static Asset, request: &HeaderMap, head: bool) -> Response {
    let cache = if asset.path.starts_with("/assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if asset.content_type.starts_with("text/html") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    let matches = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|t| t.trim() == asset.etag || t.trim() == "*")
        });
    if matches {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    let body = match asset.gzip {
        Some(gzip) if accepts_gzip(request) => {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            gzip
        }
        _ => asset.body,
    };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    let body = if head {
        Body::empty()
    } else {
        Body::from(body)
    };
    (StatusCode::OK, headers, body).into_response()
}

/// Whether `Accept-Encoding` lists gzip (or `*`) with a weight above zero.
fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(accept).unwrap(),
        );
        h
    }

    #[test]
    fn gzip_is_sent_only_when_accepted_with_a_weight() {
        assert!(accepts_gzip(&headers("gzip, deflate, br")));
        assert!(accepts_gzip(&headers("br;q=1.0, gzip;q=0.5")));
        assert!(accepts_gzip(&headers("*")));
        assert!(!accepts_gzip(&headers("gzip;q=0")));
        assert!(!accepts_gzip(&headers("br, deflate")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
