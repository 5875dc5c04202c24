//! A webhook request as an execution's input: `{method, headers, query, body}`, with
//! the headers that carry credentials left out (the input is stored and shown to every
//! viewer of the workspace's executions).

use axum::http::{HeaderMap, Method, header};
use serde_json::{Map, Value};

/// Header names with any of these in them are dropped from the input: credentials
/// (`authorization`, `cookie`, `x-api-key`, `x-auth-token`), and the signature, which
/// proves nothing once stored.
const SECRET_PARTS: &[&str] = &[
    "auth",
    "cookie",
    "token",
    "secret",
    "signature",
    "password",
    "api-key",
    "apikey",
    "session",
];

pub fn is_secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARTS.iter().any(|part| name.contains(part))
}

/// How a body is read, by its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/json`, `application/*+json`: the parsed JSON.
    Json,
    /// `application/x-www-form-urlencoded`: an object of the fields.
    Form,
    /// `text/plain`: the text.
    Text,
    /// No `Content-Type`: only an empty body (`null`) is accepted.
    Absent,
}

/// The kind of a body, or the 415 message for a content type we don't read.
pub fn body_kind(headers: &HeaderMap) -> Result<BodyKind, String> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(BodyKind::Absent);
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(BodyKind::Json),
        "application/x-www-form-urlencoded" => Ok(BodyKind::Form),
        "text/plain" => Ok(BodyKind::Text),
        other if other.starts_with("application/") && other.ends_with("+json") => {
            Ok(BodyKind::Json)
        }
        other => Err(format!(
            "a webhook takes `application/json`, `application/x-www-form-urlencoded` or \
             `text/plain`, not {other:?}"
        )),
    }
}

/// Why a body can't be an input: 400 (it doesn't parse) or 422 (it parses but can't be
/// stored).
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    Malformed(String),
    Unstorable(String),
    /// A body without a `Content-Type` (415).
    Untyped,
}

/// The body as JSON, by its kind.
pub fn decode_body(kind: BodyKind, bytes: &[u8]) -> Result<Value, BodyError> {
    match kind {
        BodyKind::Absent if bytes.is_empty() => Ok(Value::Null),
        BodyKind::Absent => Err(BodyError::Untyped),
        BodyKind::Json if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Value::Null),
        BodyKind::Json => {
            let value: Value = serde_json::from_slice(bytes)
                .map_err(|e| BodyError::Malformed(format!("the body is not JSON: {e}")))?;
            match crate::nul::path_of_first(&value) {
                None => Ok(value),
                Some((path, _)) => Err(BodyError::Unstorable(format!(
                    "{} contains a NUL character (\\u0000), which text can't hold",
                    match path.chars().next() {
                        None => "the body".to_string(),
                        Some('[') => format!("`body{path}`"),
                        Some(_) => format!("`body.{path}`"),
                    }
                ))),
            }
        }
        BodyKind::Form => pairs_to_object(bytes, "body"),
        BodyKind::Text => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| BodyError::Malformed("a text/plain body must be UTF-8".into()))?;
            if text.contains('\0') {
                return Err(BodyError::Unstorable(
                    "the body contains a NUL character, which text can't hold".into(),
                ));
            }
            Ok(Value::String(text.to_string()))
        }
    }
}

/// `a=1&b=2&b=3` as `{"a": "1", "b": ["2", "3"]}`: a name given more than once is a list.
pub fn pairs_to_object(bytes: &[u8], what: &str) -> Result<Value, BodyError> {
    let mut object = Map::new();
    for (name, value) in url::form_urlencoded::parse(bytes) {
        if name.contains('\0') || value.contains('\0') {
            return Err(BodyError::Unstorable(format!(
                "the {what} field {:?} contains a NUL character (%00), which text can't hold",
                name.replace('\0', "%00")
            )));
        }
        let value = Value::String(value.into_owned());
        match object.get_mut(name.as_ref()) {
            None => {
                object.insert(name.into_owned(), value);
            }
            Some(Value::Array(values)) => values.push(value),
            Some(first) => *first = Value::Array(vec![first.take(), value]),
        }
    }
    Ok(Value::Object(object))
}

/// The headers, names lower-case, values joined with `, ` when repeated, those that
/// carry credentials left out.
pub fn headers_of(headers: &HeaderMap) -> Value {
    let mut object = Map::new();
    for name in headers.keys() {
        if is_secret_header(name.as_str()) {
            continue;
        }
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .collect();
        object.insert(name.as_str().to_string(), Value::String(values.join(", ")));
    }
    Value::Object(object)
}

/// The execution's input.
pub fn input(method: &Method, headers: &HeaderMap, query: Value, body: Value) -> Value {
    serde_json::json!({
        "method": method.as_str(),
        "headers": headers_of(headers),
        "query": query,
        "body": body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn credentials_never_reach_the_input() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("authorization", "Bearer x"),
            ("cookie", "a=b"),
            ("x-webhook-signature", "sha256=00"),
            ("webhook-signature", "v1,AA=="),
            ("x-api-key", "k"),
            ("x-gitlab-token", "t"),
            ("x-client-secret", "s"),
            ("content-type", "application/json"),
            ("webhook-id", "msg_1"),
            ("x-tag", "one"),
        ] {
            headers.append(name, value.parse().expect("value"));
        }
        headers.append("x-tag", "two".parse().expect("value"));
        assert_eq!(
            headers_of(&headers),
            json!({"content-type": "application/json", "webhook-id": "msg_1", "x-tag": "one, two"})
        );
    }

    #[test]
    fn bodies_by_content_type() {
        let typed = |content_type: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, content_type.parse().expect("value"));
            body_kind(&headers)
        };
        assert_eq!(typed("application/json; charset=utf-8"), Ok(BodyKind::Json));
        assert_eq!(typed("application/cloudevents+json"), Ok(BodyKind::Json));
        assert_eq!(
            typed("Application/X-WWW-Form-Urlencoded"),
            Ok(BodyKind::Form)
        );
        assert!(typed("application/xml").is_err());
        assert!(typed("multipart/form-data; boundary=x").is_err());
        assert_eq!(body_kind(&HeaderMap::new()), Ok(BodyKind::Absent));

        assert_eq!(
            decode_body(BodyKind::Form, b"a=1&b=2&b=3&c=x%20y"),
            Ok(json!({"a": "1", "b": ["2", "3"], "c": "x y"}))
        );
        assert_eq!(decode_body(BodyKind::Absent, b""), Ok(Value::Null));
        assert_eq!(decode_body(BodyKind::Absent, b"x"), Err(BodyError::Untyped));
        assert!(matches!(
            decode_body(BodyKind::Json, b"{"),
            Err(BodyError::Malformed(_))
        ));
        assert!(matches!(
            decode_body(BodyKind::Json, br#"{"a": ["\u0000"]}"#),
            Err(BodyError::Unstorable(m)) if m.contains("`body.a[0]`")
        ));
        assert!(matches!(
            decode_body(BodyKind::Form, b"a=%00"),
            Err(BodyError::Unstorable(_))
        ));
        assert_eq!(
            decode_body(BodyKind::Text, "héllo".as_bytes()),
            Ok(json!("héllo"))
        );
    }
}
