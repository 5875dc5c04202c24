//! Outbound HTTP through the standard `wasi:http/outgoing-handler`, limited by the
//! host to the origins your plugin version was granted. Redirects are followed here
//! (up to 5 by default), each one checked by the host like a new request.
//!
//! ```
//! use agenthost_sdk::{http::{self, Request, Response}, testing::TestHost};
//! let _host = TestHost::new()
//!     .http(|request| Ok(Response::new(200, format!("you asked for {}", request.url))))
//!     .install();
//! let response = http::get("https://api.example.com/rates").unwrap();
//! assert_eq!(response.status, 200);
//! assert_eq!(response.text().unwrap(), "you asked for https://api.example.com/rates");
//! let created = Request::post("https://api.example.com/orders")
//!     .header("authorization", "Bearer t0ken")
//!     .json(&serde_json::json!({"sku": "A-1"}))
//!     .unwrap()
//!     .send()
//!     .unwrap();
//! assert_eq!(created.status, 200);
//! ```

#[cfg(target_arch = "wasm32")]
mod wasi;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// HEAD
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
    /// OPTIONS
    Options,
}

impl Method {
    /// The method's name, upper case.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }
}

/// A request to send; build it with [`Request::get`], [`Request::post`] or [`Request::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// An absolute `http://` or `https://` URL.
    pub url: String,
    /// Header names and values, in order. `Host` and hop-by-hop headers are refused.
    pub headers: Vec<(String, String)>,
    /// The body (empty for none).
    pub body: Vec<u8>,
    /// How many redirects to follow; 0 returns the 3xx response itself.
    pub max_redirects: u8,
    /// Give up (`Error::Unavailable`) when the response hasn't fully arrived within
    /// this long; each redirect hop gets the whole time again. `None`: only the
    /// host's `--http-timeout`.
    pub timeout: Option<std::time::Duration>,
}

/// A response, with its body read in full (the host caps its size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The URL that answered: the request's, or the last redirect's.
    pub url: String,
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, url: &str) -> Self {
        Request {
            method,
            url: url.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            max_redirects: 5,
            timeout: None,
        }
    }

    /// A GET request.
    pub fn get(url: &str) -> Self {
        Self::new(Method::Get, url)
    }

    /// A POST request.
    pub fn post(url: &str) -> Self {
        Self::new(Method::Post, url)
    }

    /// Add a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Set the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Set a JSON body and `content-type: application/json`.
    pub fn json<T: Serialize>(self, value: &T) -> Result<Self, Error> {
        let body = serde_json::to_vec(value)
            .map_err(|e| Error::Invalid(format!("encoding the request body: {e}")))?;
        Ok(self.header("content-type", "application/json").body(body))
    }

    /// Give up when the response hasn't fully arrived within `timeout`.
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Follow at most `count` redirects.
    pub fn max_redirects(mut self, count: u8) -> Self {
        self.max_redirects = count;
        self
    }

    /// Send the request (following redirects) and read the whole response.
    pub fn send(self) -> Result<Response, Error> {
        let mut request = self;
        let mut hops = 0;
        loop {
            let response = send_once(&request)?;
            let Some(next) = redirect(&request, &response) else {
                return Ok(response);
            };
            if hops == request.max_redirects {
                return Ok(response);
            }
            hops += 1;
            request = next?;
        }
    }
}

impl Response {
    /// A response with a status and a text body, for tests.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
            url: String::new(),
        }
    }

    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<String, Error> {
        String::from_utf8(self.body.clone())
            .map_err(|_| Error::Invalid(format!("the response from {} is not UTF-8", self.url)))
    }

    /// The body parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::Invalid(format!(
                "the response from {} is not the expected JSON: {e}",
                self.url
            ))
        })
    }
}

/// GET `url` and read the response.
pub fn get(url: &str) -> Result<Response, Error> {
    Request::get(url).send()
}

/// Send several requests at once and wait for all of them. The host runs them
/// concurrently, up to the plugin's in-flight cap. Redirects are not followed.
pub fn send_all(requests: &[Request]) -> Vec<Result<Response, Error>> {
    #[cfg(target_arch = "wasm32")]
    {
        wasi::send_all(requests)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        requests.iter().map(crate::testing::run_http).collect()
    }
}

fn send_once(request: &Request) -> Result<Response, Error> {
    let mut responses = send_all(std::slice::from_ref(request));
    responses
        .pop()
        .unwrap_or_else(|| Err(Error::Internal("no response".into())))
}

/// The request a redirect response asks for, if it is one.
fn redirect(request: &Request, response: &Response) -> Option<Result<Request, Error>> {
    if !matches!(response.status, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = response.header("location")?;
    let url = match resolve(&request.url, location) {
        Some(url) => url,
        None => {
            return Some(Err(Error::Invalid(format!(
                "{} redirected to an unusable location {location:?}",
                request.url
            ))));
        }
    };
    let mut next = request.clone();
    // 301/302/303 turn into a GET without a body (what browsers and curl do).
    if matches!(response.status, 301..=303) && request.method != Method::Head {
        next.method = Method::Get;
        next.body.clear();
        next.headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case("content-type"));
    }
    // Credentials don't follow a redirect to another origin.
    if origin(&url) != origin(&request.url) {
        next.headers.retain(|(name, _)| {
            !name.eq_ignore_ascii_case("authorization") && !name.eq_ignore_ascii_case("cookie")
        });
    }
    next.url = url;
    Some(Ok(next))
}

/// Scheme, authority and path-with-query of an absolute URL (fragment dropped).
pub(crate) fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let rest = rest.split('#').next().unwrap_or(rest);
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() {
        return None;
    }
    Some((scheme, authority, if path.is_empty() { "/" } else { path }))
}

fn origin(url: &str) -> Option<(String, String)> {
    split_url(url)
        .map(|(scheme, authority, _)| (scheme.to_ascii_lowercase(), authority.to_ascii_lowercase()))
}

/// `location` made absolute against `base`.
fn resolve(base: &str, location: &str) -> Option<String> {
    if split_url(location).is_some() {
        return Some(location.to_string());
    }
    let (scheme, authority, path) = split_url(base)?;
    if let Some(rest) = location.strip_prefix("//") {
        return Some(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Some(format!("{scheme}://{authority}{location}"));
    }
    let path = path.split('?').next().unwrap_or("/");
    let directory = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    Some(format!("{scheme}://{authority}{directory}{location}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_locations_resolve_against_the_request() {
        let base = "https://a.example.com/v1/items?page=2";
        assert_eq!(
            resolve(base, "/login").unwrap(),
            "https://a.example.com/login"
        );
        assert_eq!(
            resolve(base, "next").unwrap(),
            "https://a.example.com/v1/next"
        );
        assert_eq!(
            resolve(base, "//b.example.com/x").unwrap(),
            "https://b.example.com/x"
        );
        assert_eq!(
            resolve(base, "http://c.example.com").unwrap(),
            "http://c.example.com"
        );
    }

    #[test]
    fn a_cross_origin_redirect_drops_credentials_and_303_becomes_get() {
        let request = Request::post("https://a.example.com/pay")
            .header("Authorization", "Bearer x")
            .header("x-trace", "1")
            .body("{}");
        let mut response = Response::new(303, "");
        response
            .headers
            .push(("location".into(), "https://b.example.com/done".into()));
        let next = redirect(&request, &response).unwrap().unwrap();
        assert_eq!(next.method, Method::Get);
        assert!(next.body.is_empty());
        assert_eq!(next.headers, vec![("x-trace".to_string(), "1".to_string())]);
        assert_eq!(next.url, "https://b.example.com/done");
    }

    #[test]
    fn urls_must_be_absolute_http() {
        assert_eq!(
            split_url("https://h:8443/p?q=1#f"),
            Some(("https", "h:8443", "/p?q=1"))
        );
        assert_eq!(split_url("http://h"), Some(("http", "h", "/")));
        assert!(split_url("ftp://h/").is_none());
        assert!(split_url("/relative").is_none());
        assert!(split_url("https:///nohost").is_none());
    }
}
