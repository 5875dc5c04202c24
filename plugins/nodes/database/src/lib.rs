//! The `database/query` and `database/execute` workflow nodes: one SQL statement
//! through the host's database capability, as this plugin's own PostgreSQL role,
//! inside the calling workspace, on the `data` tables granted to this plugin version.
//! The host has rendered the config's templates already: values belong in `params`,
//! never in `sql`.
//!
//! Config: `{sql, params?, once?}`. A parameter is a JSON scalar (null, boolean,
//! integer, float, text) or a one-key object naming its type: `{"numeric": "12.50"}`,
//! `{"json": {...}}`, `{"timestamp": "2025-01-01T00:00:00Z"}`, `{"date": ..}`,
//! `{"uuid": ..}`, `{"int": ..}`, `{"float": ..}`, `{"bool": ..}`, `{"text": ..}`,
//! `{"bytes": "text" or [0, 255]}`, or `{"idempotency_key": true}` (the node run's
//! idempotency key as text). An array is a `json` parameter.
//!
//! `query` outputs `{rows, row, columns, count}` (`row`: the first row or null);
//! `execute` outputs `{affected}`.
//!
//! With `once` (the default for statements that don't start with SELECT, VALUES or
//! TABLE) the statement runs exactly once per node run: the run's idempotency key is
//! claimed in the plugin's own table `runs` in the same transaction as the statement,
//! with the output recorded next to it, and the call's transaction commits or rolls
//! back as a whole. A re-run after a success answers with the recorded output without
//! running the statement again.

use agenthost_sdk::database::{self, Value as Sql};
use agenthost_sdk::{CallContext, Error, NodeOutput, NodePlugin, NodeSpec, log};
use serde_json::{Map, Value, json};

struct Database;

fn config_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "sql": {"type": "string"},
            "params": {"type": "array"},
            "once": {"type": "boolean"}
        },
        "required": ["sql"],
        "additionalProperties": false
    })
}

fn spec(node_type: &str, description: &str, output: Value) -> NodeSpec {
    NodeSpec {
        node_type: node_type.into(),
        description: description.into(),
        config_schema: config_schema(),
        input_schema: json!({"type": "object"}),
        output_schema: output,
        branches: Vec::new(),
    }
}

impl NodePlugin for Database {
    fn nodes() -> Vec<NodeSpec> {
        vec![
            spec(
                "query",
                "Runs one SQL statement with typed params and outputs its rows: {rows, row, columns, count}. \
                 Writing statements (INSERT ... RETURNING) run once per node run.",
                json!({"type": "object", "properties": {
                    "rows": {"type": "array"}, "row": {}, "columns": {"type": "array"}, "count": {"type": "integer"}
                }}),
            ),
            spec(
                "execute",
                "Runs one SQL statement with typed params and outputs {affected}; once per node run by default.",
                json!({"type": "object", "properties": {"affected": {"type": "integer"}}}),
            ),
        ]
    }

    fn execute(
        ctx: &CallContext,
        node_type: &str,
        config: Value,
        _input: Value,
    ) -> Result<NodeOutput, Error> {
        if !matches!(node_type, "query" | "execute") {
            return Err(Error::NotFound(format!(
                "database has no node type {node_type}"
            )));
        }
        let sql = config["sql"]
            .as_str()
            .filter(|sql| !sql.trim().is_empty())
            .ok_or_else(|| Error::invalid("config.sql must be an SQL statement"))?;
        let params = match config.get("params") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| param(ctx, item).map_err(|why| at(i, why)))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(Error::invalid("config.params must be a list")),
        };
        let once = match config.get("once") {
            None | Some(Value::Null) => writes(sql),
            Some(Value::Bool(once)) => *once,
            Some(_) => return Err(Error::invalid("config.once must be a boolean")),
        };
        let key = ctx.request_id.as_str();
        if once && let Some(output) = claim(key)? {
            log::info(&format!(
                "{key}: the statement already ran, answering from the ledger"
            ));
            return Ok(all(output));
        }
        let output = if node_type == "query" {
            let rows = database::query(sql, &params)?;
            let rows_json = rows.to_json();
            json!({
                "row": rows_json.first().cloned().map_or(Value::Null, Value::Object),
                "count": rows_json.len(),
                "columns": rows.columns,
                "rows": rows_json,
            })
        } else {
            json!({ "affected": database::execute(sql, &params)? })
        };
        if once {
            database::execute(
                "UPDATE runs SET output = $2 WHERE idempotency_key = $1",
                &[key.into(), (&output).into()],
            )?;
        }
        Ok(all(output))
    }
}

fn all(output: Value) -> NodeOutput {
    NodeOutput {
        output,
        branches: Vec::new(),
    }
}

fn at(index: usize, error: Error) -> Error {
    match error {
        Error::Invalid(why) => Error::Invalid(format!("config.params[{index}]: {why}")),
        other => other,
    }
}

/// Whether a statement may change data (so it runs once per node run by default).
fn writes(sql: &str) -> bool {
    let first = sql
        .trim_start_matches(|c: char| c.is_whitespace() || c == '(')
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    !matches!(first.as_str(), "SELECT" | "VALUES" | "TABLE")
}

/// Claim `key` in the ledger; the recorded output when an earlier run has it.
fn claim(key: &str) -> Result<Option<Value>, Error> {
    let claimed = database::execute(
        "INSERT INTO runs (idempotency_key) VALUES ($1) ON CONFLICT DO NOTHING",
        &[key.into()],
    )?;
    if claimed > 0 {
        return Ok(None);
    }
    let rows = database::query(
        "SELECT output FROM runs WHERE idempotency_key = $1",
        &[key.into()],
    )?;
    match rows.get(0, "output") {
        Some(output) if !output.is_null() => Ok(Some(output.to_json())),
        _ => Err(Error::Internal(format!(
            "{key} is claimed in the ledger without an output"
        ))),
    }
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn param(ctx: &CallContext, item: &Value) -> Result<Sql, Error> {
    Ok(match item {
        Value::Null => Sql::Null,
        Value::Bool(b) => Sql::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Sql::Int(i),
            None => Sql::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => Sql::Text(s.clone()),
        Value::Array(_) => Sql::Json(item.to_string()),
        Value::Object(object) => typed(ctx, object)?,
    })
}

fn typed(ctx: &CallContext, object: &Map<String, Value>) -> Result<Sql, Error> {
    let mut entries = object.iter();
    let (Some((kind, value)), None) = (entries.next(), entries.next()) else {
        return Err(Error::invalid(
            "an object parameter names its type with one key, such as {\"numeric\": \"1.50\"}; \
             wrap JSON objects as {\"json\": {...}}",
        ));
    };
    if value.is_null() && kind != "json" {
        return Ok(Sql::Null);
    }
    let text = || {
        text_of(value)
            .ok_or_else(|| Error::invalid(format!("a {kind} parameter needs a scalar value")))
    };
    let bad = || Error::invalid(format!("{value} is not a valid {kind}"));
    Ok(match kind.as_str() {
        "text" => Sql::Text(text()?),
        "int" => Sql::Int(match value {
            Value::Number(n) => n.as_i64().ok_or_else(bad)?,
            _ => text()?.trim().parse().map_err(|_| bad())?,
        }),
        "float" => Sql::Float(match value {
            Value::Number(n) => n.as_f64().ok_or_else(bad)?,
            _ => text()?.trim().parse().map_err(|_| bad())?,
        }),
        "bool" => Sql::Bool(match value {
            Value::Bool(b) => *b,
            _ => text()?.trim().parse().map_err(|_| bad())?,
        }),
        "numeric" => Sql::Numeric(text()?),
        "json" => Sql::Json(value.to_string()),
        "timestamp" => Sql::Timestamp(text()?),
        "date" => Sql::Date(text()?),
        "uuid" => Sql::Uuid(text()?),
        "bytes" => Sql::Bytes(match value {
            Value::Array(items) => items
                .iter()
                .map(|b| {
                    b.as_u64()
                        .and_then(|b| u8::try_from(b).ok())
                        .ok_or_else(bad)
                })
                .collect::<Result<_, _>>()?,
            _ => text()?.into_bytes(),
        }),
        "idempotency_key" => Sql::Text(ctx.request_id.clone()),
        other => {
            return Err(Error::invalid(format!(
                "unknown parameter type {other:?} (text, int, float, bool, numeric, json, timestamp, \
                 date, uuid, bytes, idempotency_key)"
            )));
        }
    })
}

agenthost_sdk::export_node_plugin!(Database);

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::rc::Rc;

    use agenthost_sdk::database::Rows;
    use agenthost_sdk::testing::TestHost;

    use super::*;

    fn ctx() -> CallContext {
        CallContext {
            request_id: "exec-1/store".into(),
            ..CallContext::for_tests("ws")
        }
    }

    type Log = Rc<RefCell<Vec<(String, Vec<Sql>)>>>;

    /// A TestHost playing the ledger and a `deals` table (inserts affect one row);
    /// returns the statements it got.
    fn host() -> (TestHost, Log) {
        let log: Log = Rc::default();
        let seen = log.clone();
        let ledger: Rc<RefCell<HashMap<String, Option<String>>>> = Rc::default();
        let host = TestHost::new().database(move |sql, params| {
            seen.borrow_mut().push((sql.to_string(), params.to_vec()));
            let one = || Rows::new(&["n"]).row(vec![Sql::Int(1)]);
            let mut ledger = ledger.borrow_mut();
            if sql.contains(" runs ") || sql.contains(" runs(") {
                let key = params[0].as_str().unwrap().to_string();
                return Ok(if sql.starts_with("INSERT") {
                    match ledger.entry(key) {
                        std::collections::hash_map::Entry::Occupied(_) => Rows::new(&["n"]),
                        std::collections::hash_map::Entry::Vacant(slot) => {
                            slot.insert(None);
                            one()
                        }
                    }
                } else if sql.starts_with("UPDATE") {
                    ledger.insert(key, params[1].as_str().map(str::to_string));
                    one()
                } else {
                    let output = ledger.get(&key).cloned().flatten();
                    Rows::new(&["output"]).row(vec![output.map_or(Sql::Null, Sql::Json)])
                });
            }
            if sql.starts_with("SELECT") {
                return Ok(Rows::new(&["name", "amount"])
                    .row(vec!["Acme".into(), Sql::Numeric("1200.50".into())])
                    .row(vec!["Beta".into(), Sql::Numeric("10".into())]));
            }
            Ok(one())
        });
        (host, log)
    }

    fn statements(log: &Log) -> Vec<String> {
        log.borrow().iter().map(|(sql, _)| sql.clone()).collect()
    }

    #[test]
    fn a_query_outputs_rows_and_does_not_touch_the_ledger() {
        let (host, log) = host();
        let _host = host.install();
        let out = Database::execute(
            &ctx(),
            "query",
            json!({"sql": "SELECT name, amount FROM deals WHERE stage = $1 AND amount > $2",
                   "params": ["won", {"numeric": 100}]}),
            json!({}),
        )
        .unwrap();
        assert_eq!(out.output["count"], 2);
        assert_eq!(out.output["row"], json!({"name": "Acme", "amount": 1200.5}));
        assert_eq!(out.output["columns"], json!(["name", "amount"]));
        assert_eq!(
            log.borrow()[0].1,
            vec![Sql::Text("won".into()), Sql::Numeric("100".into())]
        );
        assert_eq!(statements(&log).len(), 1);
    }

    #[test]
    fn a_write_runs_once_per_node_run() {
        let (host, log) = host();
        let _host = host.install();
        let config = json!({"sql": "INSERT INTO deals (name, amount, ref) VALUES ($1, $2::numeric, $3)",
                            "params": ["Acme", {"numeric": "12.50"}, {"idempotency_key": true}]});
        let first = Database::execute(&ctx(), "execute", config.clone(), json!({})).unwrap();
        assert_eq!(first.output, json!({"affected": 1}));
        let again = Database::execute(&ctx(), "execute", config, json!({})).unwrap();
        assert_eq!(again.output, first.output);
        let inserts: Vec<_> = log
            .borrow()
            .iter()
            .filter(|(sql, _)| sql.starts_with("INSERT INTO deals"))
            .map(|(_, params)| params.clone())
            .collect();
        assert_eq!(inserts.len(), 1, "{:?}", statements(&log));
        assert_eq!(inserts[0][2], Sql::Text("exec-1/store".into()));
        // `once: false` runs it every time.
        let config = json!({"sql": "UPDATE deals SET seen = seen + 1", "once": false});
        Database::execute(&ctx(), "execute", config.clone(), json!({})).unwrap();
        Database::execute(&ctx(), "execute", config, json!({})).unwrap();
        let updates = statements(&log)
            .iter()
            .filter(|sql| sql.starts_with("UPDATE deals"))
            .count();
        assert_eq!(updates, 2);
    }

    #[test]
    fn parameters_are_typed() {
        let ctx = ctx();
        let p = |value: Value| param(&ctx, &value);
        assert_eq!(p(json!(null)).unwrap(), Sql::Null);
        assert_eq!(p(json!(true)).unwrap(), Sql::Bool(true));
        assert_eq!(p(json!(7)).unwrap(), Sql::Int(7));
        assert_eq!(p(json!(1.5)).unwrap(), Sql::Float(1.5));
        assert_eq!(p(json!([1, 2])).unwrap(), Sql::Json("[1,2]".into()));
        assert_eq!(
            p(json!({"json": {"a": 1}})).unwrap(),
            Sql::Json(r#"{"a":1}"#.into())
        );
        assert_eq!(p(json!({"int": "42"})).unwrap(), Sql::Int(42));
        assert_eq!(
            p(json!({"date": "2025-01-31"})).unwrap(),
            Sql::Date("2025-01-31".into())
        );
        assert_eq!(p(json!({"uuid": null})).unwrap(), Sql::Null);
        assert_eq!(
            p(json!({"bytes": [0, 255]})).unwrap(),
            Sql::Bytes(vec![0, 255])
        );
        assert!(p(json!({"int": "x"})).is_err());
        assert!(p(json!({"a": 1, "b": 2})).is_err());
        assert!(p(json!({"money": 1})).is_err());
        assert!(writes("  insert into x values (1)"));
        assert!(writes(
            "WITH d AS (DELETE FROM x RETURNING *) SELECT * FROM d"
        ));
        assert!(!writes("select 1"));
        assert!(!writes("(SELECT 1)"));
        let _host = TestHost::new().install();
        let Err(Error::Invalid(message)) = Database::execute(
            &ctx,
            "query",
            json!({"sql": "SELECT $1", "params": [{"money": 1}]}),
            json!({}),
        ) else {
            panic!("accepted");
        };
        assert!(message.starts_with("config.params[0]"), "{message}");
    }

    #[test]
    fn without_a_grant_the_node_is_denied() {
        let _host = TestHost::new().install();
        let error = Database::execute(
            &ctx(),
            "execute",
            json!({"sql": "DELETE FROM deals"}),
            json!({}),
        )
        .unwrap_err();
        assert!(matches!(error, Error::Denied(_)), "{error:?}");
    }
}
