//! The engine: every host runs workers that claim `ready` node runs with
//! `FOR UPDATE SKIP LOCKED`, execute them in their node plugin, and commit the result
//! together with what it makes ready next, in one transaction per node. A heartbeat per
//! host lets the others put back the runs of a host that died.
//!
//! Why our own table rather than apalis-postgres: its backoff lives in process memory
//! (lost when the host dies) and its idempotency insert fails on a duplicate rather
//! than returning the first job; a node's state and its queue entry being one row also
//! saves a commit per node (docs/decisions.md).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::Notify;
use uuid::Uuid;

use super::WorkflowLimits;
use super::approvals;
use super::commit;
use super::definition::{Definition, NodeDef, OnError};
use super::graph::{self, Fired, NodeState};
use super::runs::{
    event, execution_output, finish, insert_ready, insert_skipped, node_input, node_states,
};
use super::shares::{Share, Shares};
use super::waits::{self, Wait};
use super::{store, template};
use crate::error::{ApiError, ApiResult};
use crate::registry::Registry;

/// How events name the engine when it, not a caller, ends an execution.
pub(super) const ENGINE: &str = "system:engine";

pub struct Engine {
    pub(super) pool: PgPool,
    pub(super) registry: Arc<Registry>,
    pub limits: WorkflowLimits,
    pub(super) worker_id: String,
    /// Wakes idle workers when this host made runs ready, or the poller saw some.
    pub(super) wake: Notify,
    /// Wakes `?wait=` callers when an execution finished on this host.
    pub finished: Notify,
    pub(super) definitions: Mutex<HashMap<(Uuid, i32), Arc<Definition>>>,
    /// Per execution with a node running here: the signal that stops it on cancel,
    /// and how many of its nodes are running.
    pub(super) cancels: Mutex<HashMap<Uuid, (Arc<Notify>, usize)>>,
    /// How many of this host's workers each node plugin holds now.
    shares: Shares,
    /// The workers, poller, heartbeat and listener, stopped by `stop`.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
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
pub(super) struct Claimed {
    pub(super) id: i64,
    pub(super) execution_id: Uuid,
    pub(super) node_id: String,
    attempt: i32,
    input: Option<Value>,
    workspace_id: Uuid,
    workflow_id: Uuid,
    version: i32,
    node_plugins: Value,
    execution_input: Value,
    /// Set when a waiting run woke up (its timer ran out, its approval was decided or
    /// timed out): the run resumes instead of calling the plugin again.
    wait: Option<Value>,
    /// The node's plugin (unset on runs made before it was recorded at insert).
    plugin: Option<String>,
}

/// How one attempt ended.
#[derive(Clone)]
pub(super) enum Attempt {
    Succeeded {
        output: Value,
        branches: Vec<String>,
    },
    Failed {
        kind: String,
        message: String,
    },
    /// The node asked to wait (a timer or an approval).
    Wait(waits::Requested),
}

impl Engine {
    /// This host's id in `workflow_workers`, whose heartbeat other hosts watch; the
    /// support jobs use it too.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// The registry whose node plugins run this engine's nodes.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn new(pool: PgPool, registry: Arc<Registry>, limits: WorkflowLimits) -> Arc<Engine> {
        Arc::new(Engine {
            pool,
            registry,
            limits,
            worker_id: format!("wf-{}", Uuid::new_v4()),
            wake: Notify::new(),
            finished: Notify::new(),
            definitions: Mutex::new(HashMap::new()),
            cancels: Mutex::new(HashMap::new()),
            shares: Shares::new(limits.workers),
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// Start the workers, the poller and the heartbeat of this host. The first beat is
    /// written before any worker claims a run, so no other host takes this host's
    /// first runs for those of a dead one.
    pub async fn spawn(self: &Arc<Self>) -> sqlx::Result<()> {
        self.beat().await?;
        let mut tasks = Vec::new();
        for _ in 0..self.limits.workers.max(1) {
            let engine = self.clone();
            tasks.push(tokio::spawn(async move { engine.work().await }));
        }
        let engine = self.clone();
        tasks.push(tokio::spawn(async move { engine.poll().await }));
        let engine = self.clone();
        tasks.push(tokio::spawn(async move { engine.keep_alive().await }));
        let engine = self.clone();
        tasks.push(tokio::spawn(
            async move { engine.listen_for_cancels().await },
        ));
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(tasks);
        Ok(())
    }

    /// Stop this host's part of the engine (at shutdown). Nodes running here are
    /// stopped and put back as they were, so another host (or the next start) runs
    /// them again with the same idempotency key, without waiting for the heartbeat to
    /// go stale.
    pub async fn stop(&self) {
        let tasks: Vec<_> = self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
        let put_back = sqlx::query(
            "UPDATE node_runs SET status = 'ready', worker = NULL, run_at = now() \
             WHERE worker = $1 AND status = 'running'",
        )
        .bind(&self.worker_id)
        .execute(&self.pool)
        .await;
        let _ = sqlx::query("DELETE FROM workflow_workers WHERE id = $1")
            .bind(&self.worker_id)
            .execute(&self.pool)
            .await;
        match put_back {
            Ok(done) if done.rows_affected() > 0 => {
                tracing::info!(
                    nodes = done.rows_affected(),
                    "put running workflow nodes back"
                )
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(error = %error, "putting running workflow nodes back failed")
            }
        }
    }

    /// Wake this host's idle workers (a decision made a waiting run due).
    pub fn wake_workers(&self) {
        self.wake.notify_waiters();
    }

    /// The signal that stops this execution's running nodes on this host.
    fn cancel_signal(&self, execution: Uuid) -> Arc<Notify> {
        let mut map = self.cancels.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map
            .entry(execution)
            .or_insert_with(|| (Arc::new(Notify::new()), 0));
        entry.1 += 1;
        entry.0.clone()
    }

    fn release_cancel_signal(&self, execution: Uuid) {
        let mut map = self.cancels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = map.get_mut(&execution) {
            entry.1 -= 1;
            if entry.1 == 0 {
                map.remove(&execution);
            }
        }
    }

    /// Stop the nodes of `execution` running on this host.
    pub(super) fn signal_cancel(&self, execution: Uuid) {
        let map = self.cancels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((signal, _)) = map.get(&execution) {
            signal.notify_waiters();
        }
    }

    /// A version's definition; versions are immutable, so they are cached for good.
    pub(super) async fn definition(
        &self,
        workflow: Uuid,
        version: i32,
    ) -> ApiResult<Arc<Definition>> {
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
                    let Some(share) = self.shares.take(claimed.plugin.as_deref(), false) else {
                        // Another worker took the plugin's last share meanwhile.
                        commit::put_back(&self.pool, &self.worker_id, claimed.id, 0).await;
                        continue;
                    };
                    // A node that makes a successor ready hands it straight to this
                    // worker (already claimed, in the same commit): a chain runs
                    // without a dispatch round trip per step.
                    let mut next = Some((claimed, share));
                    while let Some((claimed, share)) = next.take() {
                        next = self.run(claimed).await;
                        drop(share);
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
                 SELECT id FROM node_runs WHERE status IN ('ready', 'waiting') \
                 AND run_at <= now() AND (plugin IS NULL OR plugin <> ALL($2)) \
                 ORDER BY run_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
             UPDATE node_runs r SET status = 'running', worker = $1, started_at = now() \
             FROM next, executions e WHERE r.id = next.id AND e.id = r.execution_id \
             RETURNING r.id, r.execution_id, r.node_id, r.attempt, r.input, e.workspace_id, \
                 e.workflow_id, e.version, e.node_plugins, e.input AS execution_input, r.wait, \
                 r.plugin",
        )
        .bind(&self.worker_id)
        .bind(self.shares.full())
        .fetch_optional(&self.pool)
        .await
    }

    /// Execute one claimed run and commit its outcome. Every way out ends with the run
    /// committed as done, failed, waiting or put back: never left `running` here.
    async fn run(&self, claimed: Claimed) -> Option<(Claimed, Share)> {
        let definition = match self.definition(claimed.workflow_id, claimed.version).await {
            Ok(definition) => definition,
            Err(error) => {
                tracing::warn!(error = %error, "reading a workflow version failed; putting its node run back");
                commit::put_back(&self.pool, &self.worker_id, claimed.id, 1000).await;
                return None;
            }
        };
        let Some(node) = definition.node(&claimed.node_id).cloned() else {
            // Versions are immutable, so this is a host bug, not a passing fault.
            tracing::error!(node = %claimed.node_id, "a node run names a node its version lacks");
            let attempt = Attempt::Failed {
                kind: "internal".into(),
                message: format!("node {} is not in its workflow version", claimed.node_id),
            };
            let stand_in = json!({ "id": claimed.node_id, "type": "missing/missing" });
            let Ok(node) = serde_json::from_value::<NodeDef>(stand_in) else {
                commit::put_back(&self.pool, &self.worker_id, claimed.id, 1000).await;
                return None;
            };
            return self
                .commit(&claimed, &definition, &node, "", "", attempt)
                .await;
        };
        let (plugin, node_type) = node.plugin_and_type();
        let version = claimed.node_plugins[plugin]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let attempt = match &claimed.wait {
            Some(wait) => self.resume(wait).await,
            None => {
                let signal = self.cancel_signal(claimed.execution_id);
                let attempt = tokio::select! {
                    attempt = self.attempt(&claimed, &node, plugin, &version, node_type) => attempt,
                    () = signal.notified() => Attempt::Failed {
                        kind: "cancelled".into(),
                        message: "the execution was cancelled while the node ran".into(),
                    },
                };
                self.release_cancel_signal(claimed.execution_id);
                attempt
            }
        };
        self.commit(&claimed, &definition, &node, plugin, &version, attempt)
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
        // Earlier outputs are only read when a template could use them.
        let templated = template::any(&node.config);
        let outputs: Vec<(String, Value)> = if !templated {
            Vec::new()
        } else {
            match sqlx::query_as(
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
                if let Some((path, is_key)) = crate::nul::path_of_first(&out.output) {
                    let place = match (path.is_empty(), is_key) {
                        (true, _) => "the output itself".to_string(),
                        (false, false) => format!("`{path}`"),
                        (false, true) => format!("the key `{path}`"),
                    };
                    return Attempt::Failed {
                        kind: "invalid".into(),
                        message: format!(
                            "the node's output holds a NUL character (\\u0000) at {place}, \
                             which the database can't store"
                        ),
                    };
                }
                match waits::requested(&out.output, chrono::Utc::now()) {
                    Some(Ok(requested)) => Attempt::Wait(requested),
                    Some(Err(message)) => Attempt::Failed {
                        kind: "invalid".into(),
                        message,
                    },
                    None => Attempt::Succeeded {
                        output: out.output,
                        branches: out.branches,
                    },
                }
            }
        }
    }

    /// How a woken run ends, without calling its plugin again.
    async fn resume(&self, wait: &Value) -> Attempt {
        let wait: Wait = match serde_json::from_value(wait.clone()) {
            Ok(wait) => wait,
            Err(error) => {
                return Attempt::Failed {
                    kind: "internal".into(),
                    message: format!("the stored wait is unreadable: {error}"),
                };
            }
        };
        match wait {
            Wait::Timer { output, .. } => Attempt::Succeeded {
                output,
                branches: Vec::new(),
            },
            Wait::Approval {
                approval_id,
                on_timeout,
                decided,
            } => match approvals::outcome(&self.pool, approval_id, on_timeout, decided).await {
                Ok(Ok((output, branch))) => Attempt::Succeeded {
                    output,
                    branches: vec![branch],
                },
                Ok(Err(message)) => Attempt::Failed {
                    kind: "timeout".into(),
                    message,
                },
                Err(error) => Attempt::Failed {
                    kind: "unavailable".into(),
                    message: format!("reading the approval failed: {error}"),
                },
            },
        }
    }

    /// Commit an attempt's outcome and what it makes ready, in one transaction that
    /// holds the execution's row lock (so two predecessors of a join finishing at once
    /// can't both miss that the other is done).
    pub(super) async fn complete(
        &self,
        claimed: &Claimed,
        definition: &Definition,
        node: &NodeDef,
        plugin: &str,
        version: &str,
        attempt: Attempt,
    ) -> anyhow::Result<Option<(Claimed, Share)>> {
        let mut tx = self.pool.begin().await?;
        // One statement locks the execution (serialising its completions) and the run.
        // Fencing: only the host that holds the run may end it. A host that stalled
        // (paused, partitioned) past five heartbeats had its run put back and taken by
        // another; its late result is dropped here.
        let locked: Option<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT e.status, r.status, r.worker FROM executions e \
             JOIN node_runs r ON r.execution_id = e.id WHERE r.id = $1 FOR UPDATE OF e, r",
        )
        .bind(claimed.id)
        .fetch_optional(&mut *tx)
        .await?;
        let status = locked.as_ref().map(|(execution, _, _)| execution.clone());
        let ours = matches!(&locked, Some((_, run, Some(worker)))
            if run == "running" && *worker == self.worker_id);
        if !ours {
            tracing::warn!(
                execution = %claimed.execution_id,
                node = %claimed.node_id,
                "dropping the result of a node run another host took over"
            );
            tx.rollback().await?;
            return Ok(None);
        }
        if !matches!(status.as_deref(), Some("running" | "waiting")) {
            // Cancelled, failed or timed out meanwhile: the result is not used.
            sqlx::query(
                "UPDATE node_runs SET status = 'cancelled', finished_at = now() WHERE id = $1",
            )
            .bind(claimed.id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(None);
        }
        let execution = claimed.execution_id;
        let node_id = claimed.node_id.as_str();
        if status.as_deref() == Some("waiting") {
            sqlx::query("UPDATE executions SET status = 'running' WHERE id = $1")
                .bind(execution)
                .execute(&mut *tx)
                .await?;
            event(&mut tx, execution, "resumed", Some(node_id), json!({})).await?;
        }
        let settled = match attempt {
            Attempt::Wait(requested) => {
                approvals::suspend(
                    &mut tx,
                    claimed.workspace_id,
                    execution,
                    claimed.id,
                    node_id,
                    plugin,
                    version,
                    requested,
                )
                .await?;
                let running: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM node_runs WHERE execution_id = $1 \
                     AND status IN ('ready', 'running'))",
                )
                .bind(execution)
                .fetch_one(&mut *tx)
                .await?;
                if !running {
                    sqlx::query("UPDATE executions SET status = 'waiting' WHERE id = $1")
                        .bind(execution)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                self.wake.notify_waiters();
                return Ok(None);
            }
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
                node_run_finished("succeeded");
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
                node_run_finished("failed");
                let retry = node.retry.as_ref().filter(|policy| {
                    policy.retries(&kind) && (claimed.attempt as u32) < policy.max_attempts
                });
                if let Some(policy) = retry {
                    let next = claimed.attempt + 1;
                    let delay = policy.delay(next as u32, rand::random::<f64>());
                    insert_ready(
                        &mut tx,
                        definition,
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
                    return Ok(None);
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
                        finish(&mut tx, execution, "failed", None, Some(&why), ENGINE).await?;
                        tx.commit().await?;
                        self.finished.notify_waiters();
                        return Ok(None);
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
        let needed = definition.outputs_needed_after(node_id);
        let (mut states, open, waiting) = node_states(&mut tx, execution, Some(&needed)).await?;
        if let Some((fired, output)) = settled {
            states.insert(node_id.to_string(), NodeState::Done { fired, output });
        }
        let decisions = graph::decide(definition, &states, &[node_id.to_string()]);
        for skipped in &decisions.skipped {
            insert_skipped(&mut tx, execution, skipped).await?;
        }
        let mut handed = None;
        for (ready, upstream) in &decisions.ready {
            let input = node_input(&claimed.execution_input, upstream);
            let plugin = definition.node(ready).map(|n| n.plugin_and_type().0);
            // The worker gives this run's share back as it moves on to the successor,
            // so a successor of the same plugin takes its place.
            let share = match handed {
                None => self
                    .shares
                    .take(plugin, plugin == claimed.plugin.as_deref()),
                Some(_) => None,
            };
            if let Some(share) = share {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO node_runs (execution_id, node_id, attempt, status, input, \
                     worker, started_at, plugin) VALUES ($1, $2, 1, 'running', $3, $4, now(), $5) \
                     RETURNING id",
                )
                .bind(execution)
                .bind(ready)
                .bind(&input)
                .bind(&self.worker_id)
                .bind(plugin)
                .fetch_one(&mut *tx)
                .await?;
                handed = Some((
                    Claimed {
                        id,
                        execution_id: execution,
                        node_id: ready.clone(),
                        attempt: 1,
                        input: Some(input),
                        workspace_id: claimed.workspace_id,
                        workflow_id: claimed.workflow_id,
                        version: claimed.version,
                        node_plugins: claimed.node_plugins.clone(),
                        execution_input: claimed.execution_input.clone(),
                        wait: None,
                        plugin: plugin.map(str::to_string),
                    },
                    share,
                ));
            } else {
                insert_ready(&mut tx, definition, execution, ready, 1, &input, None).await?;
            }
        }
        let idle = !open && decisions.ready.is_empty();
        if idle && waiting {
            sqlx::query("UPDATE executions SET status = 'waiting' WHERE id = $1")
                .bind(execution)
                .execute(&mut *tx)
                .await?;
        }
        let finished = idle && !waiting;
        if finished {
            let output = execution_output(definition, &states);
            finish(&mut tx, execution, "succeeded", Some(&output), None, ENGINE).await?;
        }
        tx.commit().await?;
        if decisions.ready.len() > 1 {
            self.wake.notify_waiters();
        }
        if finished {
            self.finished.notify_waiters();
        }
        Ok(handed)
    }
}

/// One finished node run attempt for `/metrics` (retries count once per attempt).
fn node_run_finished(status: &'static str) {
    metrics::counter!(crate::telemetry::metrics::WORKFLOW_NODE_RUNS_FINISHED, "status" => status)
        .increment(1);
}
