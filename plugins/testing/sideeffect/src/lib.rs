//! Test-only node plugin for the workflow durability tests (issue 12): node type
//! `effect` makes one side effect per idempotency key and counts every attempt.
//!
//! The key is `call-context.request-id`, which the engine sets to
//! `<execution id>/<node id>` on every attempt of a node, including a re-run after the
//! host running it died. Per attempt, in order:
//!
//! 1. with `config.count_url`, `POST {"key": ...}` to it and read `{"attempt": n}`
//!    back. This is the count of attempts that *started*: it lives outside the host's
//!    database on purpose, because the database capability runs a call's statements
//!    in one transaction that commits only when the call returns, so an attempt killed
//!    mid-call leaves no row behind.
//! 2. sleep `config.sleep_ms` (std::thread::sleep, i.e. a WASI monotonic-clock poll:
//!    it waits in the host, not in guest code, so the epoch deadline does not end it;
//!    the node timeout does);
//! 3. `INSERT INTO effects ... ON CONFLICT DO NOTHING`: the side effect, once per key;
//! 4. `INSERT INTO attempts`: one row per attempt that reached its commit, with the
//!    attempt number from step 1 and whether this attempt made the effect.
//!
//! Output: `{"key", "attempt", "applied"}`.
//!
//! Migrations (in the manifest the tests upload):
//! `CREATE TABLE effects (workspace_id uuid NOT NULL, key text NOT NULL, made_at
//! timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (workspace_id, key))` and
//! `CREATE TABLE attempts (id bigserial PRIMARY KEY, workspace_id uuid NOT NULL, key
//! text NOT NULL, attempt integer, applied boolean NOT NULL, at timestamptz NOT NULL
//! DEFAULT now())`.

use agenthost_sdk::database::{self, Value as Sql};
use agenthost_sdk::http::Request;
use agenthost_sdk::{CallContext, Error, NodeOutput, NodePlugin, NodeSpec};
use serde_json::{Value, json};

struct SideEffect;

/// Ask the counter which attempt this is (1 for the first).
fn count_attempt(url: &str, key: &str) -> Result<i64, Error> {
    let response = Request::post(url).json(&json!({ "key": key }))?.send()?;
    if !response.is_success() {
        return Err(Error::Unavailable(format!(
            "the attempt counter answered {}",
            response.status
        )));
    }
    let body: Value = response.json()?;
    body["attempt"]
        .as_i64()
        .ok_or_else(|| Error::Unavailable(format!("the attempt counter answered {body}")))
}

impl NodePlugin for SideEffect {
    fn nodes() -> Vec<NodeSpec> {
        vec![NodeSpec {
            node_type: "effect".into(),
            description: "Makes one side effect per idempotency key (request id) and counts \
                          every attempt; `sleep_ms` keeps the node busy."
                .into(),
            config_schema: json!({
                "type": "object",
                "properties": {
                    "sleep_ms": {"type": "integer", "minimum": 0, "maximum": 60000},
                    "count_url": {"type": "string"}
                },
                "additionalProperties": false
            }),
            input_schema: json!({"type": "object"}),
            output_schema: json!({"type": "object"}),
            branches: Vec::new(),
        }]
    }

    fn execute(
        context: &CallContext,
        node_type: &str,
        config: Value,
        _input: Value,
    ) -> Result<NodeOutput, Error> {
        if node_type != "effect" {
            return Err(Error::NotFound(format!(
                "sideeffect has no node type {node_type}"
            )));
        }
        let key = context.request_id.as_str();
        let attempt = match config["count_url"].as_str() {
            Some(url) => Some(count_attempt(url, key)?),
            None => None,
        };
        if let Some(ms) = config["sleep_ms"].as_u64().filter(|ms| *ms > 0) {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        let applied = database::execute(
            "INSERT INTO effects (key) VALUES ($1) ON CONFLICT DO NOTHING",
            &[Sql::Text(key.to_string())],
        )? == 1;
        database::execute(
            "INSERT INTO attempts (key, attempt, applied) VALUES ($1, $2, $3)",
            &[
                Sql::Text(key.to_string()),
                attempt.map_or(Sql::Null, Sql::Int),
                Sql::Bool(applied),
            ],
        )?;
        Ok(NodeOutput {
            output: json!({ "key": key, "attempt": attempt, "applied": applied }),
            branches: Vec::new(),
        })
    }
}

agenthost_sdk::export_node_plugin!(SideEffect);
