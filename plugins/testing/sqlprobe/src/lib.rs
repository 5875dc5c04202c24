//! Runs the statements its `run` tool receives, to exercise the database capability
//! (including as a hostile plugin would).
//!
//! Input: `{"statements": [{"sql": "...", "params": [{"int": 1}, {"text": "x"}, null],
//! "execute": false}], "fail": false, "keep_going": false}`. Output: one entry per
//! statement: `{"rows": [...]}`, `{"affected": n}` or `{"error": "denied: ..."}`.
//! Without `keep_going`, the first error ends the call with that error. With `fail`,
//! the call returns an error after running everything (its work must roll back).

use agenthost_sdk::database::{self, Value};
use agenthost_sdk::serde_json::{Value as Json, json};
use agenthost_sdk::{CallContext, Error, ToolPlugin, ToolSpec};

struct SqlProbe;

fn param(json: &Json) -> Result<Value, Error> {
    let Some(object) = json.as_object() else {
        return Ok(Value::Null);
    };
    let (kind, value) = object
        .iter()
        .next()
        .ok_or_else(|| Error::invalid("empty parameter"))?;
    let text = || value.as_str().unwrap_or_default().to_string();
    Ok(match kind.as_str() {
        "bool" => Value::Bool(value.as_bool().unwrap_or_default()),
        "int" => Value::Int(value.as_i64().unwrap_or_default()),
        "float" => Value::Float(value.as_f64().unwrap_or_default()),
        "numeric" => Value::Numeric(text()),
        "text" => Value::Text(text()),
        "json" => Value::Json(value.to_string()),
        "timestamp" => Value::Timestamp(text()),
        "date" => Value::Date(text()),
        "uuid" => Value::Uuid(text()),
        "bytes" => Value::Bytes(text().into_bytes()),
        other => return Err(Error::invalid(format!("unknown parameter type {other}"))),
    })
}

fn describe(error: &Error) -> String {
    let (kind, message) = match error {
        Error::Denied(m) => ("denied", m),
        Error::NotFound(m) => ("not-found", m),
        Error::Invalid(m) => ("invalid", m),
        Error::Unavailable(m) => ("unavailable", m),
        Error::Internal(m) => ("internal", m),
    };
    format!("{kind}: {message}")
}

fn run(statement: &Json) -> Result<Json, Error> {
    let sql = statement["sql"].as_str().unwrap_or_default();
    let params = statement["params"]
        .as_array()
        .map(|params| params.iter().map(param).collect::<Result<Vec<_>, _>>())
        .transpose()?
        .unwrap_or_default();
    if statement["execute"].as_bool().unwrap_or(false) {
        Ok(json!({ "affected": database::execute(sql, &params)? }))
    } else {
        let rows = database::query(sql, &params)?;
        Ok(json!({ "columns": rows.columns, "rows": rows.to_json() }))
    }
}

impl ToolPlugin for SqlProbe {
    fn tools() -> Vec<ToolSpec> {
        vec![ToolSpec::new(
            "run",
            "Runs the given SQL statements.",
            json!({"type": "object", "required": ["statements"]}),
            json!({"type": "object"}),
        )]
    }

    fn invoke(_: &CallContext, tool: &str, input: Json) -> Result<Json, Error> {
        if tool != "run" {
            return Err(Error::NotFound(format!("no tool named {tool}")));
        }
        let keep_going = input["keep_going"].as_bool().unwrap_or(false);
        let mut results = Vec::new();
        for statement in input["statements"].as_array().into_iter().flatten() {
            match run(statement) {
                Ok(result) => results.push(result),
                Err(error) if keep_going => results.push(json!({ "error": describe(&error) })),
                Err(error) => return Err(error),
            }
        }
        if input["fail"].as_bool().unwrap_or(false) {
            return Err(Error::invalid(
                "failing on purpose after the statements ran",
            ));
        }
        Ok(json!({ "results": results }))
    }
}

agenthost_sdk::export_tool_plugin!(SqlProbe);
