//! The wasm32 side: requests go out through `wasi:http/outgoing-handler`.

use wasip2::clocks::monotonic_clock;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, HeaderError, IncomingBody, Method as WasiMethod,
    OutgoingBody, OutgoingRequest, Scheme,
};
use wasip2::io::poll::{Pollable, poll};
use wasip2::io::streams::StreamError;

use super::{Method, Request, Response, split_url};
use crate::Error;

/// Start every request first, so the host runs them concurrently, then collect them.
pub fn send_all(requests: &[Request]) -> Vec<Result<Response, Error>> {
    let started: Vec<Result<FutureIncomingResponse, Error>> = requests.iter().map(start).collect();
    started
        .into_iter()
        .zip(requests)
        .map(|(future, request)| future.and_then(|future| finish(future, request)))
        .collect()
}

fn start(request: &Request) -> Result<FutureIncomingResponse, Error> {
    let url = &request.url;
    let (scheme, authority, path) = split_url(url)
        .ok_or_else(|| Error::Invalid(format!("{url:?} is not an absolute http(s) URL")))?;
    let entries: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.as_bytes().to_vec()))
        .collect();
    let headers = Fields::from_list(&entries).map_err(|error| match error {
        HeaderError::Forbidden => Error::Invalid(format!(
            "{url}: a plugin may not set Host, Connection, Transfer-Encoding or other hop-by-hop headers"
        )),
        _ => Error::Invalid(format!("{url}: a header name or value is malformed")),
    })?;
    let outgoing = OutgoingRequest::new(headers);
    let invalid = |what: &str| Error::Invalid(format!("{url}: invalid {what}"));
    outgoing
        .set_method(&wasi_method(request.method))
        .map_err(|_| invalid("method"))?;
    let scheme = if scheme.eq_ignore_ascii_case("https") {
        Scheme::Https
    } else {
        Scheme::Http
    };
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|_| invalid("scheme"))?;
    outgoing
        .set_authority(Some(authority))
        .map_err(|_| invalid("host"))?;
    outgoing
        .set_path_with_query(Some(path))
        .map_err(|_| invalid("path"))?;
    let body = outgoing.body().map_err(|_| invalid("body"))?;
    let future = outgoing_handler::handle(outgoing, None).map_err(|code| to_error(url, &code))?;
    write_body(body, &request.body).map_err(|code| to_error(url, &code))?;
    Ok(future)
}

fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), ErrorCode> {
    {
        let stream = body
            .write()
            .map_err(|_| ErrorCode::InternalError(Some("request body stream".into())))?;
        for chunk in bytes.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|_| ErrorCode::HttpRequestBodySize(None))?;
        }
    }
    OutgoingBody::finish(body, None)
}

/// Wait for `pollable`, or until the request's deadline passes (`false`).
fn wait(pollable: &Pollable, deadline: Option<u64>) -> bool {
    let Some(deadline) = deadline else {
        pollable.block();
        return true;
    };
    let timer = monotonic_clock::subscribe_instant(deadline);
    poll(&[pollable, &timer]).contains(&0) || pollable.ready()
}

fn timed_out(request: &Request) -> Error {
    let millis = request.timeout.map_or(0, |t| t.as_millis());
    Error::Unavailable(format!("{}: timed out after {millis} ms", request.url))
}

fn finish(future: FutureIncomingResponse, request: &Request) -> Result<Response, Error> {
    let url = &request.url;
    let deadline = request.timeout.map(|t| {
        monotonic_clock::now().saturating_add(u64::try_from(t.as_nanos()).unwrap_or(u64::MAX))
    });
    if !wait(&future.subscribe(), deadline) {
        return Err(timed_out(request));
    }
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(to_error(url, &code)),
        _ => {
            return Err(Error::Internal(format!(
                "{url}: the response was not ready"
            )));
        }
    };
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let status = response.status();
    let body = response
        .consume()
        .map_err(|_| Error::Internal(format!("{url}: the response body was taken")))?;
    let bytes = match read_body(&body, deadline) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(timed_out(request)),
        Err(code) => return Err(to_error(url, &code)),
    };
    drop(IncomingBody::finish(body));
    Ok(Response {
        status,
        headers,
        body: bytes,
        url: url.clone(),
    })
}

/// The whole body, or `None` when the deadline passed first.
fn read_body(body: &IncomingBody, deadline: Option<u64>) -> Result<Option<Vec<u8>>, ErrorCode> {
    let stream = body
        .stream()
        .map_err(|_| ErrorCode::InternalError(Some("response body stream".into())))?;
    let mut bytes = Vec::new();
    loop {
        if !wait(&stream.subscribe(), deadline) {
            return Ok(None);
        }
        match stream.read(64 << 10) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => return Ok(Some(bytes)),
            Err(StreamError::LastOperationFailed(error)) => {
                return Err(wasip2::http::types::http_error_code(&error)
                    .unwrap_or(ErrorCode::HttpResponseIncomplete));
            }
        }
    }
}

fn wasi_method(method: Method) -> WasiMethod {
    match method {
        Method::Get => WasiMethod::Get,
        Method::Head => WasiMethod::Head,
        Method::Post => WasiMethod::Post,
        Method::Put => WasiMethod::Put,
        Method::Patch => WasiMethod::Patch,
        Method::Delete => WasiMethod::Delete,
        Method::Options => WasiMethod::Options,
    }
}

/// The host's refusal codes become the SDK's error variants, with the reason spelled
/// out (the host logs the details under the plugin's name).
fn to_error(url: &str, code: &ErrorCode) -> Error {
    match code {
        ErrorCode::HttpRequestDenied => Error::Denied(format!(
            "{url}: its origin is not in this plugin version's http grant"
        )),
        ErrorCode::DestinationIpProhibited => Error::Denied(format!(
            "{url}: the host resolves to a loopback, private, link-local or other non-public address whose network is not granted"
        )),
        ErrorCode::HttpResponseBodySize(limit) => Error::Invalid(format!(
            "{url}: the response body is larger than the host's cap{}",
            limit.map(|n| format!(" of {n} bytes")).unwrap_or_default()
        )),
        ErrorCode::HttpRequestBodySize(_) => Error::Invalid(format!(
            "{url}: the request body is larger than the host's cap"
        )),
        ErrorCode::HttpRequestUriInvalid => Error::Invalid(format!(
            "{url}: the URL is not allowed (user info or bad host)"
        )),
        ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionTimeout
        | ErrorCode::HttpResponseTimeout => Error::Unavailable(format!("{url}: timed out")),
        ErrorCode::ConnectionLimitReached => {
            Error::Unavailable(format!("{url}: too many requests in flight"))
        }
        other => Error::Unavailable(format!("{url}: {other:?}")),
    }
}
