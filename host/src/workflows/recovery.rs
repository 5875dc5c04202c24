//! What keeps executions moving when no request does: the poller that wakes workers
//! for due runs, the heartbeat, putting back the runs of hosts that died, and the
//! execution deadline.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::engine::Engine;
use super::runs::finish;

/// `pg_notify` channel carrying the id of a cancelled execution.
pub(super) const CANCEL_CHANNEL: &str = "agenthost_workflow_cancel";

impl Engine {
    /// Cancels reach every host: the one that cancelled notifies, each stops its own
    /// running nodes of that execution.
    pub(super) async fn listen_for_cancels(self: Arc<Self>) {
        loop {
            let mut listener = match sqlx::postgres::PgListener::connect_with(&self.pool).await {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::warn!(error = %error, "workflow cancel listener failed to connect");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(error) = listener.listen(CANCEL_CHANNEL).await {
                tracing::warn!(error = %error, "workflow cancel listener failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            while let Ok(notification) = listener.recv().await {
                if let Ok(execution) = notification.payload().parse::<Uuid>() {
                    self.signal_cancel(execution);
                }
            }
        }
    }

    /// host made ready. Sleeps until the earliest due run, at most 200 ms.
    pub(super) async fn poll(self: Arc<Self>) {
        loop {
            let next: Result<Option<f64>, sqlx::Error> = sqlx::query_scalar(
                "SELECT extract(epoch FROM min(run_at) - now())::float8 FROM node_runs \
                 WHERE status IN ('ready', 'waiting') AND run_at < '9999-01-01 00:00:00+00'",
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
    pub(super) async fn keep_alive(self: Arc<Self>) {
        let beat = self.limits.heartbeat;
        loop {
            if let Err(error) = self.beat_and_recover(beat).await {
                tracing::warn!(error = %error, "workflow heartbeat failed");
            }
            tokio::time::sleep(beat).await;
        }
    }

    /// This host is alive.
    pub(super) async fn beat(&self) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO workflow_workers (id) VALUES ($1) \
             ON CONFLICT (id) DO UPDATE SET heartbeat = now()",
        )
        .bind(&self.worker_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn beat_and_recover(&self, beat: Duration) -> sqlx::Result<()> {
        self.beat().await?;
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
            "SELECT id FROM executions WHERE status IN ('running', 'waiting') \
             AND deadline < now() \
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
                super::engine::ENGINE,
            )
            .await?;
        }
        tx.commit().await?;
        if !expired.is_empty() {
            self.finished.notify_waiters();
        }
        Ok(())
    }
}
