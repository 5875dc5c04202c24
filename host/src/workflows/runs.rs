//! Statements on node runs and executions shared by the engine's parts.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use super::definition::{Definition, NodeDef};
use super::graph::{Fired, NodeState};

/// A node's input: the execution input and the outputs of the predecessors whose
/// edges fired into it.
pub(super) fn node_input(input: &Value, upstream: &BTreeMap<String, Value>) -> Value {
    let nodes: serde_json::Map<String, Value> = upstream
        .iter()
        .map(|(id, output)| (id.clone(), json!({ "output": output })))
        .collect();
    json!({ "input": input, "nodes": nodes })
}

/// Make a node run ready. Its plugin is recorded from the start, so a worker can pass
/// over the runs of a plugin that holds its share of this host's workers.
pub(super) async fn insert_ready(
    tx: &mut PgConnection,
    definition: &Definition,
    execution: Uuid,
    node: &str,
    attempt: i32,
    input: &Value,
    delay: Option<Duration>,
) -> sqlx::Result<()> {
    let delay_ms = delay.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let plugin = definition.node(node).map(|n| n.plugin_and_type().0);
    sqlx::query(
        "INSERT INTO node_runs (execution_id, node_id, attempt, status, input, run_at, plugin) \
         VALUES ($1, $2, $3, 'ready', $4, now() + $5 * interval '1 ms', $6) \
         ON CONFLICT DO NOTHING",
    )
    .bind(execution)
    .bind(node)
    .bind(attempt)
    .bind(input)
    .bind(delay_ms)
    .bind(plugin)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Record a node that will not run (no edge into it fired).
pub(super) async fn insert_skipped(
    tx: &mut PgConnection,
    execution: Uuid,
    node: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO node_runs (execution_id, node_id, status, finished_at) \
         VALUES ($1, $2, 'skipped', now()) ON CONFLICT DO NOTHING",
    )
    .bind(execution)
    .bind(node)
    .execute(&mut *tx)
    .await?;
    event(tx, execution, "node_skipped", Some(node), json!({})).await
}

pub(super) async fn event(
    tx: &mut PgConnection,
    execution: Uuid,
    kind: &str,
    node: Option<&str>,
    data: Value,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO execution_events (execution_id, kind, node_id, data) VALUES ($1, $2, $3, $4)",
    )
    .bind(execution)
    .bind(kind)
    .bind(node)
    .bind(data)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// End an execution; runs still waiting are cancelled. `status` is `succeeded`,
/// `failed` or `cancelled`; `actor` caused it (`system:engine` unless a caller did).
pub(super) async fn finish(
    tx: &mut PgConnection,
    execution: Uuid,
    status: &str,
    output: Option<&Value>,
    error: Option<&str>,
    actor: &str,
) -> sqlx::Result<()> {
    // One round trip: the execution, its waiting runs and approvals, its own event and
    // the workspace's domain event (`workflow.execution.<status>`, crate::events).
    sqlx::query(
        "WITH done AS ( \
             UPDATE executions SET status = $2, output = $3, error = $4, finished_at = now() \
             WHERE id = $1), \
         runs AS ( \
             UPDATE node_runs SET status = 'cancelled', finished_at = now() \
             WHERE execution_id = $1 AND status IN ('ready', 'waiting')), \
         asks AS ( \
             UPDATE approvals SET status = 'cancelled', decided_at = now() \
             WHERE execution_id = $1 AND status = 'pending'), \
         domain AS ( \
             INSERT INTO events (workspace_id, type, subject, payload, actor) \
             SELECT e.workspace_id, 'workflow.execution.' || $2, e.id::text, \
                 jsonb_build_object('execution_id', e.id, 'workflow_id', e.workflow_id, \
                     'workflow', w.slug, 'version', e.version, 'status', $2::text, \
                     'error', $4::text), $6 \
             FROM executions e JOIN workflows w ON w.id = e.workflow_id WHERE e.id = $1) \
         INSERT INTO execution_events (execution_id, kind, data) VALUES ($1, 'finished', $5)",
    )
    .bind(execution)
    .bind(status)
    .bind(output)
    .bind(error)
    .bind(json!({ "status": status, "error": error }))
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    // Counted when written: a transaction that fails after this (a database error) is
    // counted too, and its execution is finished again by whoever retries it.
    metrics::counter!(
        crate::telemetry::metrics::WORKFLOW_EXECUTIONS_FINISHED,
        "status" => status.to_string()
    )
    .increment(1);
    Ok(())
}

#[derive(sqlx::FromRow)]
struct StateRow {
    node_id: String,
    status: String,
    output: Option<Value>,
    branches: Option<Vec<String>>,
    error_kind: Option<String>,
    error: Option<String>,
}

/// Every node's latest state in an execution, and whether any node is still ready or
/// running, or waiting (read in the same statement, after the caller's own update).
/// Outputs are read only for the nodes in `outputs` (`None`: all), so a step of a long
/// execution doesn't fetch every earlier output again.
pub(super) async fn node_states(
    tx: &mut PgConnection,
    execution: Uuid,
    outputs: Option<&[String]>,
) -> sqlx::Result<(BTreeMap<String, NodeState>, bool, bool)> {
    let rows: Vec<StateRow> = sqlx::query_as(
        "SELECT DISTINCT ON (node_id) node_id, status, \
                CASE WHEN $2::text[] IS NULL OR node_id = ANY($2) THEN output END AS output, \
                branches, error_kind, error \
         FROM node_runs WHERE execution_id = $1 ORDER BY node_id, attempt DESC",
    )
    .bind(execution)
    .bind(outputs)
    .fetch_all(&mut *tx)
    .await?;
    let open = rows
        .iter()
        .any(|row| row.status == "ready" || row.status == "running");
    let waiting = rows.iter().any(|row| row.status == "waiting");
    let states = rows
        .into_iter()
        .map(
            |StateRow {
                 node_id: id,
                 status,
                 output,
                 branches,
                 error_kind: kind,
                 error,
             }| {
                let state = match status.as_str() {
                    "succeeded" => NodeState::Done {
                        fired: match branches.filter(|b| !b.is_empty()) {
                            Some(names) => Fired::Named(names.into_iter().collect()),
                            None => Fired::All,
                        },
                        output: output.unwrap_or(Value::Null),
                    },
                    "skipped" => NodeState::Skipped,
                    // A failure that settled its node (on_error continue / error branch) is
                    // recorded by the caller for the node it just ran; older failed rows
                    // are earlier attempts or settled failures.
                    "failed" => NodeState::Done {
                        fired: match branches.filter(|b| !b.is_empty()) {
                            Some(names) => Fired::Named(names.into_iter().collect()),
                            None => Fired::All,
                        },
                        output: json!({ "error": { "kind": kind, "message": error } }),
                    },
                    _ => NodeState::Pending,
                };
                (id, state)
            },
        )
        .collect();
    Ok((states, open, waiting))
}

/// The result of a finished execution: the `core/output` nodes' outputs (one: its
/// value; several: by node id), else the outputs of the nodes nothing follows.
pub(super) fn execution_output(
    definition: &Definition,
    states: &BTreeMap<String, NodeState>,
) -> Value {
    let output_of = |id: &str| match states.get(id) {
        Some(NodeState::Done { output, .. }) => Some(output.clone()),
        _ => None,
    };
    let outputs: Vec<&NodeDef> = definition
        .nodes
        .iter()
        .filter(|n| n.node_type == "core/output" && output_of(&n.id).is_some())
        .collect();
    if let [only] = outputs.as_slice() {
        return output_of(&only.id).unwrap_or(Value::Null);
    }
    let chosen: Vec<&NodeDef> = if outputs.is_empty() {
        definition
            .nodes
            .iter()
            .filter(|n| definition.outgoing(&n.id).next().is_none())
            .collect()
    } else {
        outputs
    };
    Value::Object(
        chosen
            .into_iter()
            .filter_map(|n| output_of(&n.id).map(|o| (n.id.clone(), o)))
            .collect(),
    )
}

/// The workspace's `workflow.execution.started` event (crate::events), in the
/// transaction that creates the execution.
pub(super) async fn started(
    tx: &mut PgConnection,
    execution: Uuid,
    retry_of: Option<Uuid>,
    actor: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO events (workspace_id, type, subject, payload, actor) \
         SELECT e.workspace_id, 'workflow.execution.started', e.id::text, \
             jsonb_build_object('execution_id', e.id, 'workflow_id', e.workflow_id, \
                 'workflow', w.slug, 'version', e.version, 'status', 'running', \
                 'retry_of', $2::uuid), $3 \
         FROM executions e JOIN workflows w ON w.id = e.workflow_id WHERE e.id = $1",
    )
    .bind(execution)
    .bind(retry_of)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
