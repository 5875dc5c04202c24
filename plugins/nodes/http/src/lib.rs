//! The `http/request` workflow node: one HTTP request through the host's `wasi:http`
//! capability, limited to the origins (and private networks) granted to this plugin
//! version. The host has rendered the config's templates already.
//!
//! Config: `{method?, url, query?, headers?, body? | json?, timeout?, max_redirects?,
//! fail_on_status?, idempotency_key?}`. Output: `{status, headers, body, url}`, the
//! body parsed when the response is JSON.
//!
//! A status outside 2xx fails the node (unless `fail_on_status` is false): 408, 425,
//! 429 and 5xx as `unavailable` (in the default `retry_on`, so a `retry` policy retries
//! them), any other as `invalid` (not retried by default: the request itself is
//! wrong). A request that is not GET, HEAD or OPTIONS carries `Idempotency-Key: <the
//! node run's idempotency key>`, the same on every attempt, so a server that honours
//! the header (Stripe, Adyen, the IETF draft) applies a retried POST once.

use std::time::Duration;

use agenthost_sdk::http::{Method, Request, Response};
use agenthost_sdk::{CallContext, Error, NodeOutput, NodePlugin, NodeSpec};
use serde_json::{Map, Value, json};

struct Http;

/// The most redirects a node may ask to follow.
const MAX_REDIRECTS: u64 = 10;
/// How much of an error response's body the error message quotes.
const QUOTED_BODY: usize = 300;

fn config_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "method": {"enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
                                "get", "head", "post", "put", "patch", "delete", "options"]},
            "url": {"type": "string"},
            "query": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
            "headers": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
            "body": {"type": "string"},
            "json": {},
            "timeout": {"type": ["string", "integer"]},
            "max_redirects": {"type": "integer", "minimum": 0, "maximum": MAX_REDIRECTS},
            "fail_on_status": {"type": "boolean"},
            "idempotency_key": {"type": ["boolean", "string"]}
        },
        "required": ["url"],
        "additionalProperties": false
    })
}

impl NodePlugin for Http {
    fn nodes() -> Vec<NodeSpec> {
        vec![NodeSpec {
            node_type: "request".into(),
            description: "Sends one HTTP request to a granted origin; outputs {status, headers, body, url} \
                          (body parsed when the response is JSON). A non-2xx status fails the node: \
                          408/425/429/5xx as `unavailable` (retried by a retry policy), others as `invalid`; \
                          `fail_on_status: false` outputs them instead. Non-GET requests carry an \
                          Idempotency-Key header, the same on every attempt."
                .into(),
            config_schema: config_schema(),
            input_schema: json!({"type": "object"}),
            output_schema: json!({
                "type": "object",
                "properties": {
                    "status": {"type": "integer"},
                    "headers": {"type": "object"},
                    "body": {},
                    "url": {"type": "string"}
                }
            }),
            branches: Vec::new(),
        }]
    }

    fn execute(
        ctx: &CallContext,
        node_type: &str,
        config: Value,
        _input: Value,
    ) -> Result<NodeOutput, Error> {
        if node_type != "request" {
            return Err(Error::NotFound(format!(
                "http has no node type {node_type}"
            )));
        }
        let request = build(ctx, &config)?;
        let fail_on_status = config
            .get("fail_on_status")
            .map(|v| {
                v.as_bool()
                    .ok_or_else(|| invalid("fail_on_status", "a boolean"))
            })
            .transpose()?
            .unwrap_or(true);
        let method = request.method;
        let response = request.send()?;
        if fail_on_status && !response.is_success() {
            return Err(status_error(method, &response));
        }
        Ok(NodeOutput {
            output: output(&response),
            branches: Vec::new(),
        })
    }
}

fn invalid(field: &str, what: &str) -> Error {
    Error::invalid(format!("config.{field} must be {what}"))
}

fn method(config: &Value) -> Result<Method, Error> {
    let Some(name) = config.get("method") else {
        return Ok(Method::Get);
    };
    let name = name.as_str().ok_or_else(|| invalid("method", "a string"))?;
    Ok(match name.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        "OPTIONS" => Method::Options,
        other => {
            return Err(Error::invalid(format!(
                "config.method {other:?} is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
            )));
        }
    })
}

/// A JSON scalar as header or query text.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `500ms`, `30s`, `2m`, or a number of milliseconds.
fn duration(value: &Value) -> Result<Duration, Error> {
    let bad = || {
        invalid(
            "timeout",
            "milliseconds or a duration such as \"500ms\", \"30s\", \"2m\"",
        )
    };
    let millis = match value {
        Value::Number(n) => n.as_u64().ok_or_else(bad)?,
        Value::String(text) => {
            let text = text.trim();
            let split = text
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(text.len());
            let (number, unit) = text.split_at(split);
            let number: u64 = number.parse().map_err(|_| bad())?;
            let factor = match unit.trim() {
                "" | "ms" => 1,
                "s" => 1000,
                "m" => 60_000,
                _ => return Err(bad()),
            };
            number.checked_mul(factor).ok_or_else(bad)?
        }
        _ => return Err(bad()),
    };
    if millis == 0 {
        return Err(bad());
    }
    Ok(Duration::from_millis(millis))
}

/// Percent-encode a query component (RFC 3986 unreserved characters stay).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn with_query(url: &str, query: &Map<String, Value>) -> Result<String, Error> {
    let mut pairs = Vec::new();
    for (key, value) in query {
        if value.is_null() {
            continue;
        }
        let value = scalar_text(value)
            .ok_or_else(|| invalid(&format!("query.{key}"), "a string, number or boolean"))?;
        pairs.push(format!("{}={}", encode(key), encode(&value)));
    }
    if pairs.is_empty() {
        return Ok(url.to_string());
    }
    let (base, fragment) = match url.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (url, None),
    };
    let separator = if base.contains('?') { '&' } else { '?' };
    let mut out = format!("{base}{separator}{}", pairs.join("&"));
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    Ok(out)
}

fn build(ctx: &CallContext, config: &Value) -> Result<Request, Error> {
    let method = method(config)?;
    let url = config["url"]
        .as_str()
        .filter(|url| !url.is_empty())
        .ok_or_else(|| invalid("url", "an absolute http(s) URL"))?;
    let url = match config.get("query") {
        None | Some(Value::Null) => url.to_string(),
        Some(Value::Object(query)) => with_query(url, query)?,
        Some(_) => return Err(invalid("query", "an object")),
    };
    let mut request = Request::new(method, &url);
    if let Some(headers) = config.get("headers") {
        let headers = headers
            .as_object()
            .ok_or_else(|| invalid("headers", "an object of header names and values"))?;
        for (name, value) in headers {
            let value = scalar_text(value)
                .ok_or_else(|| invalid(&format!("headers.{name}"), "a string"))?;
            request = request.header(name, &value);
        }
    }
    match (config.get("body"), config.get("json")) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                "config has both body and json: give one of them",
            ));
        }
        (Some(body), None) => {
            let body = body.as_str().ok_or_else(|| invalid("body", "a string"))?;
            if !request_has(&request, "content-type") {
                request = request.header("content-type", "text/plain; charset=utf-8");
            }
            request = request.body(body);
        }
        (None, Some(json)) => {
            let body = serde_json::to_vec(json)
                .map_err(|e| Error::Internal(format!("encoding config.json: {e}")))?;
            if !request_has(&request, "content-type") {
                request = request.header("content-type", "application/json");
            }
            request = request.body(body);
        }
        (None, None) => {}
    }
    if !matches!(method, Method::Get | Method::Head | Method::Options)
        && !request_has(&request, "idempotency-key")
    {
        match config.get("idempotency_key") {
            None | Some(Value::Bool(true)) => {
                request = request.header("idempotency-key", &ctx.request_id);
            }
            Some(Value::String(key)) if !key.is_empty() => {
                request = request.header("idempotency-key", key);
            }
            Some(Value::Bool(false)) => {}
            Some(_) => {
                return Err(invalid(
                    "idempotency_key",
                    "true, false or a non-empty string",
                ));
            }
        }
    }
    if let Some(timeout) = config.get("timeout") {
        request = request.timeout(duration(timeout)?);
    }
    if let Some(hops) = config.get("max_redirects") {
        let hops = hops
            .as_u64()
            .filter(|n| *n <= MAX_REDIRECTS)
            .ok_or_else(|| invalid("max_redirects", "an integer from 0 to 10"))?;
        request = request.max_redirects(hops as u8);
    }
    Ok(request)
}

fn request_has(request: &Request, name: &str) -> bool {
    request
        .headers
        .iter()
        .any(|(key, _)| key.eq_ignore_ascii_case(name))
}

fn is_json(response: &Response) -> bool {
    response.header("content-type").is_some_and(|value| {
        let media = value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        media == "application/json" || media.ends_with("+json")
    })
}

/// The body as JSON when the response says it is JSON (and parses), else as text.
fn body(response: &Response) -> Value {
    if is_json(response)
        && let Ok(value) = serde_json::from_slice(&response.body)
    {
        return value;
    }
    Value::String(String::from_utf8_lossy(&response.body).into_owned())
}

fn output(response: &Response) -> Value {
    let mut headers = Map::new();
    for (name, value) in &response.headers {
        let name = name.to_ascii_lowercase();
        match headers.get_mut(&name) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(value);
            }
            _ => {
                headers.insert(name, Value::String(value.clone()));
            }
        }
    }
    json!({
        "status": response.status,
        "headers": headers,
        "body": body(response),
        "url": response.url,
    })
}

fn status_error(method: Method, response: &Response) -> Error {
    let text = String::from_utf8_lossy(&response.body);
    let quoted: String = text.chars().take(QUOTED_BODY).collect();
    let more = if text.chars().count() > QUOTED_BODY {
        "..."
    } else {
        ""
    };
    let message = format!(
        "{} {} answered HTTP {}: {quoted}{more}",
        method.as_str(),
        response.url,
        response.status
    );
    if matches!(response.status, 408 | 425 | 429) || response.status >= 500 {
        Error::Unavailable(message)
    } else {
        Error::Invalid(message)
    }
}

agenthost_sdk::export_node_plugin!(Http);

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use agenthost_sdk::testing::TestHost;

    use super::*;

    fn ctx() -> CallContext {
        CallContext {
            request_id: "exec-1/fetch".into(),
            ..CallContext::for_tests("ws")
        }
    }

    fn run(config: Value) -> Result<NodeOutput, Error> {
        Http::execute(&ctx(), "request", config, json!({}))
    }

    fn json_response(status: u16, body: Value) -> Response {
        let mut response = Response::new(status, body.to_string());
        response.headers.push((
            "content-type".into(),
            "application/json; charset=utf-8".into(),
        ));
        response
    }

    #[test]
    fn a_get_returns_status_headers_and_parsed_json() {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let log = seen.clone();
        let _host = TestHost::new()
            .http(move |request| {
                log.borrow_mut().push(request.clone());
                Ok(json_response(200, json!({"price": 12.5})))
            })
            .install();
        let out = run(json!({
            "url": "https://api.example.com/items",
            "query": {"q": "red shoes", "page": 2, "skip": null},
            "headers": {"Accept": "application/json"},
            "timeout": "2s"
        }))
        .unwrap();
        assert_eq!(out.output["status"], 200);
        assert_eq!(out.output["body"], json!({"price": 12.5}));
        assert_eq!(
            out.output["headers"]["content-type"],
            "application/json; charset=utf-8"
        );
        let request = &seen.borrow()[0];
        assert_eq!(request.method, Method::Get);
        assert_eq!(
            request.url,
            "https://api.example.com/items?page=2&q=red%20shoes"
        );
        assert_eq!(request.timeout, Some(Duration::from_secs(2)));
        // A GET is safe to repeat: no idempotency key.
        assert!(!request_has(request, "idempotency-key"));
    }

    #[test]
    fn a_post_sends_json_and_the_run_s_idempotency_key() {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let log = seen.clone();
        let _host = TestHost::new()
            .http(move |request| {
                log.borrow_mut().push(request.clone());
                Ok(Response::new(201, "created"))
            })
            .install();
        let out = run(
            json!({"method": "post", "url": "https://api.example.com/orders",
                             "json": {"sku": "A-1"}}),
        )
        .unwrap();
        assert_eq!(out.output["status"], 201);
        assert_eq!(out.output["body"], "created");
        let request = seen.borrow()[0].clone();
        assert_eq!(request.method, Method::Post);
        assert_eq!(request.body, br#"{"sku":"A-1"}"#);
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        assert_eq!(header("content-type").as_deref(), Some("application/json"));
        assert_eq!(header("idempotency-key").as_deref(), Some("exec-1/fetch"));

        // The user's own key wins; `false` sends none.
        run(
            json!({"method": "PUT", "url": "https://a.example.com/x", "body": "hi",
                   "headers": {"Idempotency-Key": "mine"}}),
        )
        .unwrap();
        run(
            json!({"method": "DELETE", "url": "https://a.example.com/x", "idempotency_key": false}),
        )
        .unwrap();
        let seen = seen.borrow();
        let keys: Vec<Vec<&str>> = seen[1..]
            .iter()
            .map(|r| {
                r.headers
                    .iter()
                    .filter(|(k, _)| k.eq_ignore_ascii_case("idempotency-key"))
                    .map(|(_, v)| v.as_str())
                    .collect()
            })
            .collect();
        assert_eq!(keys, vec![vec!["mine"], vec![]]);
        assert_eq!(seen[1].body, b"hi");
    }

    #[test]
    fn statuses_outside_2xx_fail_with_a_retryable_kind_or_are_output() {
        let _host = TestHost::new()
            .http(|request| {
                let status = request.url.rsplit('/').next().unwrap().parse().unwrap();
                Ok(Response::new(status, "nope"))
            })
            .install();
        for (status, retryable) in [
            (500, true),
            (503, true),
            (429, true),
            (408, true),
            (404, false),
            (400, false),
        ] {
            let error = run(json!({"url": format!("https://a.example.com/{status}")})).unwrap_err();
            match error {
                Error::Unavailable(message) if retryable => {
                    assert!(message.contains(&format!("HTTP {status}")), "{message}");
                }
                Error::Invalid(message) if !retryable => {
                    assert!(message.contains("nope"), "{message}");
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        let out =
            run(json!({"url": "https://a.example.com/404", "fail_on_status": false})).unwrap();
        assert_eq!(out.output["status"], 404);
        assert_eq!(out.output["body"], "nope");
    }

    #[test]
    fn bad_config_and_denied_origins_are_clear_errors() {
        let _host = TestHost::new().install();
        // No http handler: the TestHost refuses like an ungranted origin.
        assert!(matches!(
            run(json!({"url": "https://a.example.com/"})),
            Err(Error::Denied(_))
        ));
        for (config, needle) in [
            (json!({"url": ""}), "config.url"),
            (
                json!({"url": "https://a/", "method": "BREW"}),
                "config.method",
            ),
            (
                json!({"url": "https://a/", "body": "x", "json": {}}),
                "both body and json",
            ),
            (
                json!({"url": "https://a/", "timeout": "soon"}),
                "config.timeout",
            ),
            (
                json!({"url": "https://a/", "headers": {"x": [1]}}),
                "headers.x",
            ),
        ] {
            let Err(Error::Invalid(message)) = run(config.clone()) else {
                panic!("{config} was accepted");
            };
            assert!(message.contains(needle), "{config}: {message}");
        }
    }

    #[test]
    fn durations_and_query_encoding() {
        assert_eq!(duration(&json!(250)).unwrap(), Duration::from_millis(250));
        assert_eq!(duration(&json!("30s")).unwrap(), Duration::from_secs(30));
        assert_eq!(duration(&json!("2m")).unwrap(), Duration::from_secs(120));
        assert_eq!(
            duration(&json!("500ms")).unwrap(),
            Duration::from_millis(500)
        );
        assert!(duration(&json!("0s")).is_err());
        let query = json!({"a b": "x&y=z", "n": 1});
        assert_eq!(
            with_query("https://h/p?x=1#top", query.as_object().unwrap()).unwrap(),
            "https://h/p?x=1&a%20b=x%26y%3Dz&n=1#top"
        );
    }
}
