//! SQL against the host's PostgreSQL, as your plugin's own role, inside the calling
//! workspace. Values go in as typed parameters (`$1`, `$2`...), never into the SQL text.
//! Every statement of one call runs in one transaction, committed when your tool
//! returns `Ok` and rolled back when it returns `Err`.
//!
//! ```
//! use agenthost_sdk::database::{self, Rows, Value};
//! use agenthost_sdk::testing::TestHost;
//!
//! // In unit tests, a handler plays the database.
//! let _host = TestHost::new()
//!     .database(|sql, params| {
//!         assert!(sql.starts_with("SELECT"));
//!         assert_eq!(params, &[Value::from("enterprise")][..]);
//!         Ok(Rows::new(&["name", "amount"]).row(vec!["Acme".into(), Value::Numeric("1200.50".into())]))
//!     })
//!     .install();
//!
//! let rows = database::query(
//!     "SELECT name, amount FROM customers WHERE segment = $1",
//!     &["enterprise".into()],
//! ).unwrap();
//! assert_eq!(rows.len(), 1);
//! assert_eq!(rows.get(0, "name").and_then(Value::as_str), Some("Acme"));
//! assert_eq!(rows.get(0, "amount").and_then(Value::as_f64), Some(1200.5));
//! ```

use serde_json::{Map, Value as Json};

use crate::Error;

/// A parameter or column value (see the WIT `database.value`).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL; as a parameter its type is inferred from where it is used.
    Null,
    /// `boolean`.
    Bool(bool),
    /// Any integer column.
    Int(i64),
    /// `real`/`double precision`.
    Float(f64),
    /// `numeric`, exactly, as decimal text. As a parameter write `$1::numeric`.
    Numeric(String),
    /// Text columns.
    Text(String),
    /// `json`/`jsonb`, as JSON text.
    Json(String),
    /// RFC 3339 timestamp.
    Timestamp(String),
    /// `YYYY-MM-DD`.
    Date(String),
    /// Hyphenated UUID.
    Uuid(String),
    /// `bytea`.
    Bytes(Vec<u8>),
}

impl Value {
    /// Text-like values (text, numeric, timestamp, date, uuid, json) as `&str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s)
            | Value::Numeric(s)
            | Value::Timestamp(s)
            | Value::Date(s)
            | Value::Uuid(s)
            | Value::Json(s) => Some(s),
            _ => None,
        }
    }

    /// Integers, floats and numerics as `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Numeric(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// Integers as `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// Booleans.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Whether this is SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as JSON: numbers for numerics, parsed JSON for json columns, strings
    /// for the other text-like values, an array of numbers for bytes.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(*i),
            Value::Float(f) => Json::from(*f),
            Value::Numeric(s) => s.parse::<f64>().map(Json::from).unwrap_or(Json::Null),
            Value::Json(s) => serde_json::from_str(s).unwrap_or(Json::Null),
            Value::Text(s) | Value::Timestamp(s) | Value::Date(s) | Value::Uuid(s) => {
                Json::String(s.clone())
            }
            Value::Bytes(b) => Json::from(b.clone()),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Int(i.into())
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Value::Bytes(b)
    }
}
impl From<&Json> for Value {
    /// JSON as a `json` parameter (`jsonb` on the server).
    fn from(json: &Json) -> Self {
        Value::Json(json.to_string())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(option: Option<T>) -> Self {
        option.map_or(Value::Null, Into::into)
    }
}

/// The rows of a query, with their column names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Each row's values, in column order.
    pub rows: Vec<Vec<Value>>,
}

impl Rows {
    /// No rows yet, these columns (for tests).
    pub fn new(columns: &[&str]) -> Self {
        Rows {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Add a row (for tests).
    pub fn row(mut self, values: Vec<Value>) -> Self {
        self.rows.push(values);
        self
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The value in row `index` of the column named `column`.
    pub fn get(&self, index: usize, column: &str) -> Option<&Value> {
        let position = self.columns.iter().position(|c| c == column)?;
        self.rows.get(index)?.get(position)
    }

    /// Every row as a JSON object keyed by column name (see [`Value::to_json`]).
    pub fn to_json(&self) -> Vec<Map<String, Json>> {
        self.rows
            .iter()
            .map(|row| {
                self.columns
                    .iter()
                    .cloned()
                    .zip(row.iter().map(Value::to_json))
                    .collect()
            })
            .collect()
    }
}

/// Run a statement that returns rows.
pub fn query(sql: &str, params: &[Value]) -> Result<Rows, Error> {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::__private::bindings::agenthost::plugin::database as raw;
        let params: Vec<raw::Value> = params.iter().map(to_raw).collect();
        let rows = raw::query(sql, &params).map_err(Error::from)?;
        Ok(Rows {
            columns: rows.columns,
            rows: rows
                .rows
                .into_iter()
                .map(|row| row.into_iter().map(from_raw).collect())
                .collect(),
        })
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::testing::run_query(sql, params)
    }
}

/// Run a statement for its effect; returns the number of rows affected.
pub fn execute(sql: &str, params: &[Value]) -> Result<u64, Error> {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::__private::bindings::agenthost::plugin::database as raw;
        let params: Vec<raw::Value> = params.iter().map(to_raw).collect();
        raw::execute(sql, &params).map_err(Error::from)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::testing::run_query(sql, params).map(|rows| rows.len() as u64)
    }
}

#[cfg(target_arch = "wasm32")]
fn to_raw(value: &Value) -> crate::__private::bindings::agenthost::plugin::database::Value {
    use crate::__private::bindings::agenthost::plugin::database::Value as Raw;
    match value.clone() {
        Value::Null => Raw::Null,
        Value::Bool(b) => Raw::Boolean(b),
        Value::Int(i) => Raw::Int(i),
        Value::Float(f) => Raw::Float(f),
        Value::Numeric(s) => Raw::Numeric(s),
        Value::Text(s) => Raw::Text(s),
        Value::Json(s) => Raw::Json(s),
        Value::Timestamp(s) => Raw::Timestamp(s),
        Value::Date(s) => Raw::Date(s),
        Value::Uuid(s) => Raw::Uuid(s),
        Value::Bytes(b) => Raw::Bytes(b),
    }
}

#[cfg(target_arch = "wasm32")]
fn from_raw(value: crate::__private::bindings::agenthost::plugin::database::Value) -> Value {
    use crate::__private::bindings::agenthost::plugin::database::Value as Raw;
    match value {
        Raw::Null => Value::Null,
        Raw::Boolean(b) => Value::Bool(b),
        Raw::Int(i) => Value::Int(i),
        Raw::Float(f) => Value::Float(f),
        Raw::Numeric(s) => Value::Numeric(s),
        Raw::Text(s) => Value::Text(s),
        Raw::Json(s) => Value::Json(s),
        Raw::Timestamp(s) => Value::Timestamp(s),
        Raw::Date(s) => Value::Date(s),
        Raw::Uuid(s) => Value::Uuid(s),
        Raw::Bytes(b) => Value::Bytes(b),
    }
}
