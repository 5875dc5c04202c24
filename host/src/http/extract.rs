//! Extractors whose rejections are `ApiError`s, so malformed input gets the same JSON
//! error shape (and a readable message) as every other error.
//!
//! They are also the one place where input is refused for holding a NUL character:
//! PostgreSQL can store NUL in neither `text` nor `jsonb`, so a NUL that got past here
//! would fail its query (a 500). Every handler takes its input through these wrappers —
//! `Json` (422 naming the JSON path of the string), `Path` and `Query` (400 naming the
//! parameter) and `TextBody` for bodies read as a whole (data imports: 422 naming the
//! JSON path, or the CSV row and column) — so no NUL reaches a handler.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;

const NUL: char = '\0';

/// The body size limit of the route, put in the request by [`super::body_limit`] so a
/// 413 can say what the limit is.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

impl<S: Send + Sync> FromRequestParts<S> for BodyLimit {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<BodyLimit>()
            .copied()
            .unwrap_or(BodyLimit(0)))
    }
}

impl BodyLimit {
    /// The error for a body over this limit.
    pub fn exceeded(self) -> ApiError {
        let message = if self.0 > 0 {
            format!(
                "the request body is larger than this route's limit of {} bytes",
                self.0
            )
        } else {
            "the request body is too large".to_string()
        };
        ApiError::Rejected {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message,
        }
    }
}

/// The whole body as bytes; a body over the limit is a 413 that names the limit.
async fn body_bytes<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    let limit = request
        .extensions()
        .get::<BodyLimit>()
        .copied()
        .unwrap_or(BodyLimit(0));
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                limit.exceeded()
            } else {
                ApiError::Rejected {
                    status: rejection.status(),
                    message: rejection.body_text(),
                }
            }
        })
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.strip_prefix("application/") {
        Some(subtype) => subtype == "json" || subtype.ends_with("+json"),
        None => false,
    }
}

/// A JSON body (`Content-Type: application/json`). 415 without that content type, 400
/// for JSON that doesn't parse, 422 for JSON of the wrong shape or with a NUL in any
/// string or key, 413 over the body limit.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(request.headers()) {
            return Err(ApiError::Rejected {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                message: "Expected request with `Content-Type: application/json`".into(),
            });
        }
        let bytes = body_bytes(request, state).await?;
        reject_nul_in_json(&bytes, "")?;
        if starts_with_array(&bytes) && wants_an_object::<T>() {
            return Err(ApiError::Invalid(
                "the body must be a JSON object, not an array".into(),
            ));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) if rejection.status() == StatusCode::UNPROCESSABLE_ENTITY => {
                match with_whole_numbers_as_integers(&bytes) {
                    Some(value) => Ok(Json(value)),
                    None => Err(rejection.into()),
                }
            }
            Err(rejection) => Err(rejection.into()),
        }
    }
}

pub fn starts_with_array(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
}

/// Whether `T` is read from a JSON object (a struct or a map). serde's derived structs
/// also accept an array of their fields in order, so `[]` would be a struct whose fields
/// all have defaults: a request body in an undocumented shape, which we refuse.
pub fn wants_an_object<T: DeserializeOwned>() -> bool {
    use serde::de::{Deserializer, Error, Visitor, value};

    /// Answers every question with which kind of value was asked for.
    struct Probe;
    impl<'de> Deserializer<'de> for Probe {
        type Error = value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, value::Error> {
            Err(value::Error::custom("other"))
        }
        fn deserialize_map<V: Visitor<'de>>(self, _: V) -> Result<V::Value, value::Error> {
            Err(value::Error::custom("object"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            _: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, value::Error> {
            Err(value::Error::custom("object"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct enum
            identifier ignored_any
        }
    }
    T::deserialize(Probe).is_err_and(|e| e.to_string() == "object")
}

/// JSON Schema counts `36.0` as an integer, so a client, or a generator working from
/// our schema, may send one where serde wants an integer and refuses a float. A body
/// refused for its shape is read once more with every whole number written as an
/// integer; when that doesn't help, the first error (which names the field) stands.
fn with_whole_numbers_as_integers<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let mut value: Value = serde_json::from_slice(bytes).ok()?;
    if !whole_floats_to_integers(&mut value) {
        return None;
    }
    serde_json::from_value(value).ok()
}

/// Rewrites whole floats (`36.0`, `2.5e1` is not one) as integers; true if any was.
fn whole_floats_to_integers(value: &mut Value) -> bool {
    match value {
        Value::Number(number) if number.is_f64() => {
            let float = number.as_f64().unwrap_or(f64::NAN);
            // Below 2^53 a float holds every integer exactly.
            if float.fract() == 0.0 && float.abs() < 9_007_199_254_740_992.0 {
                *value = Value::from(float as i64);
                true
            } else {
                false
            }
        }
        Value::Array(items) => items.iter_mut().fold(false, |changed, item| {
            whole_floats_to_integers(item) | changed
        }),
        Value::Object(fields) => fields.values_mut().fold(false, |changed, item| {
            whole_floats_to_integers(item) | changed
        }),
        _ => false,
    }
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// A body read whole, for handlers that parse it themselves by content type (the data
/// import: JSON or CSV). A NUL anywhere in its text is a 422 naming where it is.
#[derive(Debug)]
pub struct TextBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for TextBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let csv = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/csv"));
        let bytes = body_bytes(request, state).await?;
        // Anything but CSV may be read as JSON (the import's default), where NUL is
        // spelled `\u0000`; a raw NUL byte is refused in any body.
        if !csv {
            reject_nul_in_json(&bytes, "")?;
        }
        if bytes.contains(&0) {
            return Err(ApiError::Invalid(format!(
                "{} contains a NUL character (\\u0000), which text can't hold",
                if csv {
                    locate_nul_in_csv(&bytes)
                } else {
                    nul_line(&bytes)
                }
            )));
        }
        Ok(TextBody(bytes))
    }
}

/// A 422 naming the first string (or object key) of a JSON document that holds a NUL.
/// `prefix` names the document when it is part of something bigger (`manifest`).
/// Cheap for the usual body: JSON can only spell NUL as the escape `\u0000`, so a body
/// without that text is not parsed again.
pub fn reject_nul_in_json(bytes: &[u8], prefix: &str) -> Result<(), ApiError> {
    if !bytes.windows(6).any(|w| w == br"\u0000") {
        return Ok(());
    }
    // Malformed JSON is reported by the real parse that follows.
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        return Ok(());
    };
    match crate::nul::path_of_first(&value) {
        Some((path, is_key)) => {
            let path = match (prefix.is_empty(), path.is_empty(), path.starts_with('[')) {
                (true, _, _) => path,
                (false, true, _) => prefix.to_string(),
                (false, false, true) => format!("{prefix}{path}"),
                (false, false, false) => format!("{prefix}.{path}"),
            };
            let what = match (path.is_empty(), is_key) {
                (true, _) => "the body".to_string(),
                (false, false) => format!("`{path}`"),
                (false, true) => format!("the key `{path}`"),
            };
            Err(ApiError::Invalid(format!(
                "{what} contains a NUL character (\\u0000), which text can't hold"
            )))
        }
        None => Ok(()),
    }
}

/// Where the first NUL of a CSV (or other text) body is: the column and row as the
/// import counts them (row 1 is the line after the header).
fn locate_nul_in_csv(bytes: &[u8]) -> String {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut header = csv::ByteRecord::new();
    for (index, record) in reader.byte_records().enumerate() {
        let Ok(record) = record else { break };
        if index == 0 {
            header = record.clone();
        }
        if let Some(column) = record.iter().position(|field| field.contains(&0)) {
            if index == 0 {
                return format!("the CSV header (column {})", column + 1);
            }
            let name = header
                .get(column)
                .map(|name| String::from_utf8_lossy(name).trim().to_string())
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| format!("column {}", column + 1));
            return format!("row {index}, field `{name}`");
        }
    }
    nul_line(bytes)
}

/// The line of the body its first NUL is on.
fn nul_line(bytes: &[u8]) -> String {
    let line = bytes
        .iter()
        .take_while(|b| **b != 0)
        .filter(|b| **b == b'\n');
    format!("line {} of the body", line.count() + 1)
}

/// Path parameters. A NUL (`%00`) in one is a 400 naming the parameter.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // Parameters that can't be read raw are reported by the real extraction below.
        if let Ok(params) = RawPathParams::from_request_parts(parts, state).await
            && let Some((name, _)) = params.iter().find(|(_, value)| value.contains(NUL))
        {
            return Err(ApiError::BadRequest(format!(
                "the path parameter `{name}` contains a NUL character (%00)"
            )));
        }
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(value))
    }
}

/// The query string. A NUL (`%00`) in a name or value is a 400 naming the parameter.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        if let Ok(axum::extract::Query(pairs)) =
            axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            && let Some((name, _)) = pairs
                .iter()
                .find(|(name, value)| name.contains(NUL) || value.contains(NUL))
        {
            return Err(ApiError::BadRequest(format!(
                "the query parameter `{}` contains a NUL character (%00)",
                name.replace(NUL, "%00")
            )));
        }
        let axum::extract::Query(value) = axum::extract::Query::<T>::try_from_uri(&parts.uri)?;
        Ok(Query(value))
    }
}

/// The request id set by the request-id middleware (echoed in `x-request-id`).
#[derive(Debug, Clone)]
pub struct RequestId(pub Option<String>);

impl RequestId {
    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestId(
            parts
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_path_of_a_nul_is_named() {
        let value = json!({ "name": "ok", "tools": [{ "plugin": "a" }, { "plugin": "b\u{0}" }] });
        assert_eq!(
            crate::nul::path_of_first(&value),
            Some(("tools[1].plugin".into(), false))
        );
        let value = json!([{ "name": "ok" }, { "x": { "k\u{0}": 1 } }]);
        assert_eq!(
            crate::nul::path_of_first(&value),
            Some(("[1].x.k\\u0000".into(), true))
        );
        assert_eq!(crate::nul::path_of_first(&json!({ "a": [1, "b"] })), None);
    }

    #[test]
    fn structs_and_maps_want_an_object_and_lists_do_not() {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Publish {
            #[serde(default)]
            version: Option<i32>,
        }
        // serde would read `[]` as a `Publish` with no version.
        assert!(serde_json::from_slice::<Publish>(b"[]").is_ok());
        assert!(wants_an_object::<Publish>());
        assert!(wants_an_object::<std::collections::HashMap<String, i32>>());
        assert!(!wants_an_object::<Vec<Publish>>());
        assert!(!wants_an_object::<Value>());
        assert!(starts_with_array(b" \n [1]"));
        assert!(!starts_with_array(b"{}"));
    }

    #[test]
    fn whole_floats_are_integers_as_json_schema_says() {
        #[derive(serde::Deserialize)]
        struct Limits {
            steps: u32,
            ratio: f32,
        }
        let body = br#"{"steps": 36.0, "ratio": 0.5}"#;
        let read: Limits = with_whole_numbers_as_integers(body).expect("36.0 is an integer");
        assert_eq!((read.steps, read.ratio), (36, 0.5));
        assert!(
            with_whole_numbers_as_integers::<Limits>(br#"{"steps": 36.5, "ratio": 1}"#).is_none()
        );
    }

    #[test]
    fn only_a_real_nul_is_refused() {
        // An escaped backslash followed by `u0000` is text, not a NUL.
        assert!(reject_nul_in_json(br#"{"a": "\\u0000"}"#, "").is_ok());
        let err = reject_nul_in_json(br#"{"a": {"b": "x\u0000"}}"#, "").unwrap_err();
        assert!(err.to_string().contains("`a.b`"), "{err}");
        let err = reject_nul_in_json(br#"{"b": "\u0000"}"#, "manifest").unwrap_err();
        assert!(err.to_string().contains("`manifest.b`"), "{err}");
    }

    #[test]
    fn a_nul_in_csv_is_located_by_row_and_field() {
        let csv = b"external_id,name\nc1,Acme\nc2,Be\0ta\n";
        assert_eq!(locate_nul_in_csv(csv), "row 2, field `name`");
        assert_eq!(
            locate_nul_in_csv(b"external_id,na\0me\n"),
            "the CSV header (column 2)"
        );
    }
}
