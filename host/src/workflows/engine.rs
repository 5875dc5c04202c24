//! The engine: every host runs workers that claim `ready` node runs with
//! `FOR UPDATE SKIP LOCKED`, execute them in their node plugin, and commit the result
//! together with what it makes ready next, in one transaction per node. A heartbeat per
//! host lets the others put back the runs of a host that died.
//!
//! Why our own table rather than apalis-postgres: its backoff lives in process memory
//! (lost when the host dies) and its idempotency insert fails on a duplicate rather
//! than returning the first job; a node's state and its queue entry being one row also
//! saves a commit per node (docs/decisions.md).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;
use uuid::Uuid;

use super::WorkflowLimits;
use super::definition::{Definition, NodeDef, OnError};
use super::graph::{self, Fired, NodeState};
use super::store::{self, ExecutionRow, StartOptions};
use super::template;
use crate::error::{ApiError, ApiResult};
use crate::registry::Registry;

pub struct Engine {
    pool: PgPool,
    registry: Arc<Registry>,
    pub limits: WorkflowLimits,
    worker_id: String,
    /// Wakes idle workers when this host made runs ready, or the poller saw some.
    wake: Notify,
    /// Wakes `?wait=` callers when an execution finished on this host.
    pub finished: Notify,
    definitions: Mutex<HashMap<(Uuid, i32), Arc<Definition>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("worker_id", &self.worker_id)
            .finish()
    }
}

/// A claimed node run.
#[derive(Debug, sqlx::FromRow)]
struct Claimed {
    id: i64,
    execution_id: Uuid,
    node_id: String,
    attempt: i32,
    input: Option<Value>,
    workspace_id: Uuid,
    workflow_id: Uuid,
    version: i32,
    node_plugins: Value,
    execution_input: Value,
}

/// How one attempt ended.
enum Attempt {
    Succeeded {
        output: Value,
        branches: Vec<String>,
    },
    Failed {
        kind: String,
        message: String,
    },
}

impl Engine {
    pub fn new(pool: PgPool, registry: Arc<Registry>, limits: WorkflowLimits) -> Arc<Engine> {
        Arc::new(Engine {
            pool,
            registry,
            limits,
            worker_id: format!("wf-{}", Uuid::new_v4()),
            wake: Notify::new(),
            finished: Notify::new(),
            definitions: Mutex::new(HashMap::new()),
        })
    }

    /// Start the workers, the poller and the heartbeat of this host.
    pub fn spawn(self: &Arc<Self>) {
        for _ in 0..self.limits.workers.max(1) {
            let engine = self.clone();
            tokio::spawn(async move { engine.work().await });
        }
        let engine = self.clone();
        tokio::spawn(async move { engine.poll().await });
        let engine = self.clone();
        tokio::spawn(async move { engine.keep_alive().await });
    }

    /// Start an execution of the workflow's latest version. With an idempotency key
    /// that was used before, the first execution is returned (`false`: not new).
    pub async fn start_execution(
        &self,
        workspace: Uuid,
        workflow: &str,
        input: Value,
        options: StartOptions,
    ) -> ApiResult<(ExecutionRow, bool)> {
        let workflow = store::get_workflow(&self.pool, workspace, workflow).await?;
        if let Some(key) = &options.idempotency_key
            && let Some(existing) = self.by_idempotency_key(workspace, workflow.id, key).await?
        {
            return Ok((existing, false));
        }
        if !workflow.enabled {
            return Err(ApiError::Conflict(format!(
                "workflow {:?} is disabled",
                workflow.slug
            )));
        }
        let definition = self
            .definition(workflow.id, workflow.latest_version)
            .await?;
        if let Some(schema) = &definition.input_schema
            && let Ok(validator) = jsonschema::validator_for(schema)
        {
            let errors: Vec<String> = validator
                .iter_errors(&input)
                .map(|e| format!("{e} (at {})", e.instance_path()))
                .collect();
            if !errors.is_empty() {
                return Err(ApiError::Invalid(format!(
                    "the input does not match the workflow's input schema: {}",
                    errors.join("; ")
                )));
            }
        }
        let pins = store::pin_node_plugins(&self.registry, &definition)?;
        let timeout = definition
            .execution_timeout()
            .unwrap_or(self.limits.execution_timeout);
        let mut tx = self.pool.begin().await?;
        // Serialises starts per workspace, so the running cap holds under concurrency.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('agenthost_executions:' || $1))")
            .bind(workspace.to_string())
            .execute(&mut *tx)
            .await?;
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM executions WHERE workspace_id = $1 AND status = 'running'",
        )
        .bind(workspace)
        .fetch_one(&mut *tx)
        .await?;
        if running >= self.limits.max_running_per_workspace {
            return Err(ApiError::Coded {
                status: axum::http::StatusCode::TOO_MANY_REQUESTS,
                code: "execution_limit",
                message: format!(
                    "this workspace has {running} executions running, the most it may have \
                     (--workflow-max-running); retry when some have finished"
                ),
            });
        }
        let id: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO executions (workspace_id, workflow_id, version, input, idempotency_key, \
             node_plugins, deadline) VALUES ($1, $2, $3, $4, $5, $6, now() + $7 * interval '1 ms') \
             ON CONFLICT (workspace_id, workflow_id, idempotency_key) DO NOTHING RETURNING id",
        )
        .bind(workspace)
        .bind(workflow.id)
        .bind(workflow.latest_version)
        .bind(&input)
        .bind(&options.idempotency_key)
        .bind(sqlx::types::Json(&pins))
        .bind(timeout.as_millis() as f64)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            // Another request with the same key won the race.
            drop(tx);
            let key = options.idempotency_key.unwrap_or_default();
            let existing = self
                .by_idempotency_key(workspace, workflow.id, &key)
                .await?;
            return existing
                .map(|e| (e, false))
                .ok_or_else(|| ApiError::Conflict("the execution was deleted".into()));
        };
        for root in definition.roots() {
            insert_ready(
                &mut tx,
                id,
                &root.id,
                1,
                &node_input(&input, &BTreeMap::new()),
                None,
            )
            .await?;
        }
        event(
            &mut tx,
            id,
            "started",
            None,
            json!({ "version": workflow.latest_version }),
        )
        .await?;
        tx.commit().await?;
        self.wake.notify_waiters();
        let execution = store::get_execution(&self.pool, workspace, id).await?;
        Ok((execution, true))
    }

    async fn by_idempotency_key(
        &self,
        workspace: Uuid,
        workflow: Uuid,
        key: &str,
    ) -> ApiResult<Option<ExecutionRow>> {
        let id: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM executions WHERE workspace_id = $1 AND workflow_id = $2 \
             AND idempotency_key = $3",
        )
        .bind(workspace)
        .bind(workflow)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        match id {
            Some(id) => Ok(Some(store::get_execution(&self.pool, workspace, id).await?)),
            None => Ok(None),
        }
    }

    /// A version's definition; versions are immutable, so they are cached for good.
    async fn definition(&self, workflow: Uuid, version: i32) -> ApiResult<Arc<Definition>> {
        if let Some(found) = self.lock_definitions().get(&(workflow, version)) {
            return Ok(found.clone());
        }
        let row = store::get_version(&self.pool, workflow, version).await?;
        let definition: Definition = serde_json::from_value(row.definition)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored definition: {e}")))?;
        let definition = Arc::new(definition);
        self.lock_definitions()
            .insert((workflow, version), definition.clone());
        Ok(definition)
    }

    fn lock_definitions(&self) -> std::sync::MutexGuard<'_, HashMap<(Uuid, i32), Arc<Definition>>> {
        self.definitions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One worker: claim, run, commit, repeat; sleep when nothing is ready.
    async fn work(self: Arc<Self>) {
        loop {
            let wake = self.wake.notified();
            match self.claim().await {
                Ok(Some(claimed)) => {
                    if let Err(error) = self.run(claimed).await {
                        tracing::warn!(error = %error, "workflow node run failed to commit");
                    }
                }
                Ok(None) => {
                    let _ = tokio::time::timeout(Duration::from_millis(500), wake).await;
                }
                Err(error) => {
                    tracing::warn!(error = %error, "claiming a workflow node run failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    async fn claim(&self) -> sqlx::Result<Option<Claimed>> {
        sqlx::query_as(
            "WITH next AS ( \
                 SELECT id FROM node_runs WHERE status = 'ready' AND run_at <= now() \
                 ORDER BY run_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
             UPDATE node_runs r SET status = 'running', worker = $1, started_at = now() \
             FROM next, executions e WHERE r.id = next.id AND e.id = r.execution_id \
             RETURNING r.id, r.execution_id, r.node_id, r.attempt, r.input, e.workspace_id, \
                 e.workflow_id, e.version, e.node_plugins, e.input AS execution_input",
        )
        .bind(&self.worker_id)
        .fetch_optional(&self.pool)
        .await
    }

    /// Execute one claimed run and commit its outcome.
    async fn run(&self, claimed: Claimed) -> anyhow::Result<()> {
        let definition = self
            .definition(claimed.workflow_id, claimed.version)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let node = definition
            .node(&claimed.node_id)
            .ok_or_else(|| anyhow::anyhow!("node {} is not in its version", claimed.node_id))?
            .clone();
        let (plugin, node_type) = node.plugin_and_type();
        let version = claimed.node_plugins[plugin]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let attempt = self
            .attempt(&claimed, &node, plugin, &version, node_type)
            .await;
        self.complete(&claimed, &definition, &node, plugin, &version, attempt)
            .await
    }

    async fn attempt(
        &self,
        claimed: &Claimed,
        node: &NodeDef,
        plugin: &str,
        version: &str,
        node_type: &str,
    ) -> Attempt {
        let outputs: Vec<(String, Value)> = match sqlx::query_as(
            "SELECT DISTINCT ON (node_id) node_id, output FROM node_runs \
             WHERE execution_id = $1 AND status IN ('succeeded', 'failed') \
               AND output IS NOT NULL \
             ORDER BY node_id, attempt DESC",
        )
        .bind(claimed.execution_id)
        .fetch_all(&self.pool)
        .await
        {
            Ok(rows) => rows,
            Err(error) => {
                return Attempt::Failed {
                    kind: "unavailable".into(),
                    message: format!("reading earlier outputs failed: {error}"),
                };
            }
        };
        let nodes: serde_json::Map<String, Value> = outputs
            .into_iter()
            .map(|(id, output)| (id, json!({ "output": output })))
            .collect();
        let context = json!({
            "input": claimed.execution_input,
            "nodes": nodes,
            "execution": {
                "id": claimed.execution_id,
                "workflow_id": claimed.workflow_id,
                "version": claimed.version,
                "attempt": claimed.attempt,
            },
        });
        let config = match template::render(&node.config, &context) {
            Ok(config) => config,
            Err(message) => {
                return Attempt::Failed {
                    kind: "invalid".into(),
                    message,
                };
            }
        };
        let input = claimed.input.clone().unwrap_or(Value::Null);
        // The same key on every attempt of this node in this execution, including a
        // re-run after a host died mid-call: a plugin can make its side effect once.
        let idempotency_key = format!("{}/{}", claimed.execution_id, claimed.node_id);
        let timeout = node.timeout().unwrap_or(self.limits.node_timeout);
        let call = self.registry.execute_node(
            claimed.workspace_id,
            &idempotency_key,
            plugin,
            version,
            node_type,
            &config,
            &input,
        );
        match tokio::time::timeout(timeout, call).await {
            Err(_) => Attempt::Failed {
                kind: "timeout".into(),
                message: format!("the node ran past its {} ms timeout", timeout.as_millis()),
            },
            Ok(Err(error)) => Attempt::Failed {
                kind: error.kind().into(),
                message: error.to_string(),
            },
            Ok(Ok(out)) => {
                let size = out.output.to_string().len();
                if size > self.limits.max_output_bytes {
                    return Attempt::Failed {
                        kind: "invalid".into(),
                        message: format!(
                            "the node's output is {size} bytes, more than the {} a node may \
                             return (--workflow-max-output-bytes)",
                            self.limits.max_output_bytes
                        ),
                    };
                }
                Attempt::Succeeded {
                    output: out.output,
                    branches: out.branches,
                }
            }
        }
    }

    /// Commit an attempt's outcome and what it makes ready, in one transaction that
    /// holds the execution's row lock (so two predecessors of a join finishing at once
    /// can't both miss that the other is done).
    async fn complete(
        &self,
        claimed: &Claimed,
        definition: &Definition,
        node: &NodeDef,
        plugin: &str,
        version: &str,
        attempt: Attempt,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM executions WHERE id = $1 FOR UPDATE")
                .bind(claimed.execution_id)
                .fetch_optional(&mut *tx)
                .await?;
        if status.as_deref() != Some("running") {
            // Cancelled, failed or timed out meanwhile: the result is not used.
            sqlx::query(
                "UPDATE node_runs SET status = 'cancelled', finished_at = now() WHERE id = $1",
            )
            .bind(claimed.id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(());
        }
        let execution = claimed.execution_id;
        let node_id = claimed.node_id.as_str();
        let settled = match attempt {
            Attempt::Succeeded { output, branches } => {
                sqlx::query(
                    "UPDATE node_runs SET status = 'succeeded', output = $2, branches = $3, \
                     plugin = $4, version = $5, finished_at = now() WHERE id = $1",
                )
                .bind(claimed.id)
                .bind(&output)
                .bind(&branches)
                .bind(plugin)
                .bind(version)
                .execute(&mut *tx)
                .await?;
                event(
                    &mut tx,
                    execution,
                    "node_completed",
                    Some(node_id),
                    json!({ "attempt": claimed.attempt }),
                )
                .await?;
                let fired = if branches.is_empty() {
                    Fired::All
                } else {
                    Fired::Named(branches.into_iter().collect())
                };
                Some((fired, output))
            }
            Attempt::Failed { kind, message } => {
                sqlx::query(
                    "UPDATE node_runs SET status = 'failed', error = $2, error_kind = $3, \
                     plugin = $4, version = $5, finished_at = now() WHERE id = $1",
                )
                .bind(claimed.id)
                .bind(&message)
                .bind(&kind)
                .bind(plugin)
                .bind(version)
                .execute(&mut *tx)
                .await?;
                let retry = node.retry.as_ref().filter(|policy| {
                    policy.retries(&kind) && (claimed.attempt as u32) < policy.max_attempts
                });
                if let Some(policy) = retry {
                    let next = claimed.attempt + 1;
                    let delay = policy.delay(next as u32, rand::random::<f64>());
                    insert_ready(
                        &mut tx,
                        execution,
                        node_id,
                        next,
                        claimed.input.as_ref().unwrap_or(&Value::Null),
                        Some(delay),
                    )
                    .await?;
                    event(
                        &mut tx,
                        execution,
                        "node_failed",
                        Some(node_id),
                        json!({
                            "attempt": claimed.attempt, "kind": kind, "error": message,
                            "retry_in_ms": delay.as_millis() as u64,
                        }),
                    )
                    .await?;
                    tx.commit().await?;
                    self.wake.notify_waiters();
                    return Ok(());
                }
                event(
                    &mut tx,
                    execution,
                    "node_failed",
                    Some(node_id),
                    json!({
                        "attempt": claimed.attempt, "kind": kind, "error": message,
                    }),
                )
                .await?;
                let error = json!({ "error": { "kind": kind, "message": message } });
                if node.on_error != OnError::Fail {
                    // Settled: downstream reads the error as this node's output.
                    sqlx::query("UPDATE node_runs SET output = $2 WHERE id = $1")
                        .bind(claimed.id)
                        .bind(&error)
                        .execute(&mut *tx)
                        .await?;
                }
                match node.on_error {
                    OnError::Fail => {
                        let why = format!("node {node_id} failed: {message}");
                        finish(&mut tx, execution, "failed", None, Some(&why)).await?;
                        tx.commit().await?;
                        self.finished.notify_waiters();
                        return Ok(());
                    }
                    OnError::Continue => Some((Fired::All, error)),
                    OnError::ErrorBranch => {
                        sqlx::query("UPDATE node_runs SET branches = '{error}' WHERE id = $1")
                            .bind(claimed.id)
                            .execute(&mut *tx)
                            .await?;
                        Some((Fired::Named(BTreeSet::from(["error".to_string()])), error))
                    }
                }
            }
        };
        let mut states = node_states(&mut tx, execution).await?;
        if let Some((fired, output)) = settled {
            states.insert(node_id.to_string(), NodeState::Done { fired, output });
        }
        let decisions = graph::decide(definition, &states, &[node_id.to_string()]);
        for skipped in &decisions.skipped {
            sqlx::query(
                "INSERT INTO node_runs (execution_id, node_id, status, finished_at) \
                 VALUES ($1, $2, 'skipped', now()) ON CONFLICT DO NOTHING",
            )
            .bind(execution)
            .bind(skipped)
            .execute(&mut *tx)
            .await?;
            event(&mut tx, execution, "node_skipped", Some(skipped), json!({})).await?;
        }
        for (ready, upstream) in &decisions.ready {
            let input = node_input(&claimed.execution_input, upstream);
            insert_ready(&mut tx, execution, ready, 1, &input, None).await?;
        }
        let open: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM node_runs WHERE execution_id = $1 \
             AND status IN ('ready', 'running') AND id <> $2)",
        )
        .bind(execution)
        .bind(claimed.id)
        .fetch_one(&mut *tx)
        .await?;
        let finished = !open && decisions.ready.is_empty();
        if finished {
            let states = node_states(&mut tx, execution).await?;
            let output = execution_output(definition, &states);
            finish(&mut tx, execution, "succeeded", Some(&output), None).await?;
        }
        tx.commit().await?;
        if !decisions.ready.is_empty() {
            self.wake.notify_waiters();
        }
        if finished {
            self.finished.notify_waiters();
        }
        Ok(())
    }

    /// Wakes the workers when a run becomes due: a retry's backoff or a run another
    /// host made ready. Sleeps until the earliest due run, at most 200 ms.
    async fn poll(self: Arc<Self>) {
        loop {
            let next: Result<Option<f64>, sqlx::Error> = sqlx::query_scalar(
                "SELECT extract(epoch FROM min(run_at) - now())::float8 FROM node_runs \
                 WHERE status = 'ready'",
            )
            .fetch_one(&self.pool)
            .await;
            let wait = match next {
                Ok(Some(seconds)) if seconds <= 0.0 => {
                    self.wake.notify_waiters();
                    Duration::from_millis(20)
                }
                Ok(Some(seconds)) => Duration::from_secs_f64(seconds.min(0.2)),
                _ => Duration::from_millis(200),
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Heartbeat; put back the runs of hosts that stopped beating; fail executions
    /// past their deadline.
    async fn keep_alive(self: Arc<Self>) {
        let beat = self.limits.heartbeat;
        loop {
            if let Err(error) = self.beat_and_recover(beat).await {
                tracing::warn!(error = %error, "workflow heartbeat failed");
            }
            tokio::time::sleep(beat).await;
        }
    }

    async fn beat_and_recover(&self, beat: Duration) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO workflow_workers (id) VALUES ($1) \
             ON CONFLICT (id) DO UPDATE SET heartbeat = now()",
        )
        .bind(&self.worker_id)
        .execute(&self.pool)
        .await?;
        let stale = beat.as_secs_f64() * 5.0;
        let recovered = sqlx::query(
            "UPDATE node_runs SET status = 'ready', worker = NULL, run_at = now() \
             WHERE status = 'running' AND worker IS DISTINCT FROM $1 AND NOT EXISTS ( \
                 SELECT 1 FROM workflow_workers w WHERE w.id = node_runs.worker \
                 AND w.heartbeat > now() - $2 * interval '1 second')",
        )
        .bind(&self.worker_id)
        .bind(stale)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if recovered > 0 {
            tracing::info!(recovered, "put back node runs of a host that stopped");
            self.wake.notify_waiters();
        }
        let mut tx = self.pool.begin().await?;
        let expired: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM executions WHERE status = 'running' AND deadline < now() \
             FOR UPDATE SKIP LOCKED",
        )
        .fetch_all(&mut *tx)
        .await?;
        for execution in &expired {
            finish(
                &mut tx,
                *execution,
                "failed",
                None,
                Some("the execution ran past its execution timeout"),
            )
            .await?;
        }
        tx.commit().await?;
        if !expired.is_empty() {
            self.finished.notify_waiters();
        }
        Ok(())
    }

    /// Cancel a running execution: nothing after it runs; a node in flight is
    /// discarded when it returns.
    pub async fn cancel(&self, workspace: Uuid, id: Uuid) -> ApiResult<ExecutionRow> {
        let mut tx = self.pool.begin().await?;
        let status: Option<String> = sqlx::query_scalar(
            "SELECT status FROM executions WHERE id = $1 AND workspace_id = $2 FOR UPDATE",
        )
        .bind(id)
        .bind(workspace)
        .fetch_optional(&mut *tx)
        .await?;
        match status.as_deref() {
            None => {
                return Err(ApiError::NotFound(format!(
                    "no execution {id} in this workspace"
                )));
            }
            Some("running") => {
                finish(
                    &mut tx,
                    id,
                    "cancelled",
                    None,
                    Some("cancelled by a caller"),
                )
                .await?;
            }
            Some(other) => {
                return Err(ApiError::Conflict(format!(
                    "the execution is {other} already"
                )));
            }
        }
        tx.commit().await?;
        self.finished.notify_waiters();
        store::get_execution(&self.pool, workspace, id).await
    }
}

/// A node's input: the execution input and the outputs of the predecessors whose
/// edges fired into it.
fn node_input(input: &Value, upstream: &BTreeMap<String, Value>) -> Value {
    let nodes: serde_json::Map<String, Value> = upstream
        .iter()
        .map(|(id, output)| (id.clone(), json!({ "output": output })))
        .collect();
    json!({ "input": input, "nodes": nodes })
}

async fn insert_ready(
    tx: &mut PgConnection,
    execution: Uuid,
    node: &str,
    attempt: i32,
    input: &Value,
    delay: Option<Duration>,
) -> sqlx::Result<()> {
    let delay_ms = delay.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    sqlx::query(
        "INSERT INTO node_runs (execution_id, node_id, attempt, status, input, run_at) \
         VALUES ($1, $2, $3, 'ready', $4, now() + $5 * interval '1 ms') ON CONFLICT DO NOTHING",
    )
    .bind(execution)
    .bind(node)
    .bind(attempt)
    .bind(input)
    .bind(delay_ms)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn event(
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

/// End an execution; runs still waiting are cancelled.
async fn finish(
    tx: &mut PgConnection,
    execution: Uuid,
    status: &str,
    output: Option<&Value>,
    error: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE executions SET status = $2, output = $3, error = $4, finished_at = now() \
         WHERE id = $1",
    )
    .bind(execution)
    .bind(status)
    .bind(output)
    .bind(error)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE node_runs SET status = 'cancelled', finished_at = now() \
         WHERE execution_id = $1 AND status = 'ready'",
    )
    .bind(execution)
    .execute(&mut *tx)
    .await?;
    event(
        tx,
        execution,
        "finished",
        None,
        json!({ "status": status, "error": error }),
    )
    .await
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

/// Every node's latest state in an execution.
async fn node_states(
    tx: &mut PgConnection,
    execution: Uuid,
) -> sqlx::Result<BTreeMap<String, NodeState>> {
    let rows: Vec<StateRow> = sqlx::query_as(
        "SELECT DISTINCT ON (node_id) node_id, status, output, branches, error_kind, error \
             FROM node_runs WHERE execution_id = $1 ORDER BY node_id, attempt DESC",
    )
    .bind(execution)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
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
        .collect())
}

/// The result of a finished execution: the `core/output` nodes' outputs (one: its
/// value; several: by node id), else the outputs of the nodes nothing follows.
fn execution_output(definition: &Definition, states: &BTreeMap<String, NodeState>) -> Value {
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
