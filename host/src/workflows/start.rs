//! Starting, cancelling and retrying executions.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use uuid::Uuid;

use super::engine::Engine;
use super::graph;
use super::recovery::CANCEL_CHANNEL;
use super::runs::{
    event, execution_output, finish, insert_ready, insert_skipped, node_input, node_states, started,
};
use super::store::{self, ExecutionRow, StartOptions};
use crate::error::{ApiError, ApiResult};

impl Engine {
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
        // Counting stops at the cap, so a start costs at most `max` index entries.
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT 1 FROM executions \
             WHERE workspace_id = $1 AND status = 'running' LIMIT $2) running",
        )
        .bind(workspace)
        .bind(self.limits.max_running_per_workspace)
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
                &definition,
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
        started(&mut tx, id, None, options.actor()).await?;
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

    /// A new execution of a failed or cancelled one: same version, input and node
    /// plugin versions; the nodes that succeeded keep their outputs (copied, marked
    /// `reused_from`), and the run starts again from the nodes that did not.
    pub async fn retry(&self, workspace: Uuid, id: Uuid, actor: &str) -> ApiResult<ExecutionRow> {
        let old = store::get_execution(&self.pool, workspace, id).await?;
        if old.status != "failed" && old.status != "cancelled" {
            return Err(ApiError::Conflict(format!(
                "only a failed or cancelled execution can be retried; this one is {}",
                old.status
            )));
        }
        let definition = self.definition(old.workflow_id, old.version).await?;
        let timeout = definition
            .execution_timeout()
            .unwrap_or(self.limits.execution_timeout);
        let mut tx = self.pool.begin().await?;
        let new: Uuid = sqlx::query_scalar(
            "INSERT INTO executions (workspace_id, workflow_id, version, input, node_plugins, \
             deadline, retry_of) SELECT workspace_id, workflow_id, version, input, node_plugins, \
             now() + $2 * interval '1 ms', id FROM executions WHERE id = $1 RETURNING id",
        )
        .bind(id)
        .bind(timeout.as_millis() as f64)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO node_runs (execution_id, node_id, attempt, status, input, output, \
             branches, plugin, version, started_at, finished_at, reused_from) \
             SELECT $1, node_id, 1, 'succeeded', input, output, branches, plugin, version, \
                    started_at, finished_at, $2 \
             FROM (SELECT DISTINCT ON (node_id) * FROM node_runs WHERE execution_id = $2 \
                   ORDER BY node_id, attempt DESC) latest WHERE status = 'succeeded'",
        )
        .bind(new)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let (states, _, _) = node_states(&mut tx, new, None).await?;
        let reused: Vec<String> = states.keys().cloned().collect();
        let decisions = graph::decide(&definition, &states, &reused);
        let mut ready = 0;
        for root in definition.roots() {
            if !states.contains_key(&root.id) {
                insert_ready(
                    &mut tx,
                    &definition,
                    new,
                    &root.id,
                    1,
                    &node_input(&old.input, &BTreeMap::new()),
                    None,
                )
                .await?;
                ready += 1;
            }
        }
        for (node, upstream) in &decisions.ready {
            insert_ready(
                &mut tx,
                &definition,
                new,
                node,
                1,
                &node_input(&old.input, upstream),
                None,
            )
            .await?;
            ready += 1;
        }
        for skipped in &decisions.skipped {
            insert_skipped(&mut tx, new, skipped).await?;
        }
        event(
            &mut tx,
            new,
            "started",
            None,
            json!({ "version": old.version, "retry_of": id }),
        )
        .await?;
        started(&mut tx, new, Some(id), actor).await?;
        if ready == 0 {
            let (states, _, _) = node_states(&mut tx, new, None).await?;
            let output = execution_output(&definition, &states);
            finish(&mut tx, new, "succeeded", Some(&output), None, actor).await?;
        }
        tx.commit().await?;
        self.wake.notify_waiters();
        store::get_execution(&self.pool, workspace, new).await
    }

    /// Cancel a running or waiting execution: nodes running on any host are stopped,
    /// nothing after them runs, waiting nodes and pending approvals are cancelled.
    pub async fn cancel(&self, workspace: Uuid, id: Uuid, actor: &str) -> ApiResult<ExecutionRow> {
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
            Some("running" | "waiting") => {
                finish(
                    &mut tx,
                    id,
                    "cancelled",
                    None,
                    Some("cancelled by a caller"),
                    actor,
                )
                .await?;
                // Every host stops its running nodes of this execution.
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CANCEL_CHANNEL)
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            Some(other) => {
                return Err(ApiError::Conflict(format!(
                    "the execution is {other} already"
                )));
            }
        }
        tx.commit().await?;
        self.signal_cancel(id);
        self.finished.notify_waiters();
        store::get_execution(&self.pool, workspace, id).await
    }
}
