//! The worker of `support_jobs`: indexing published revisions and enriching tickets.
//! Jobs are claimed with `FOR UPDATE SKIP LOCKED`, so several hosts share the queue. A
//! running job names its host, whose heartbeat the workflow engine keeps in
//! `workflow_workers`: when that host stops beating (it was killed), or the job's lease
//! runs out, another host (or the same one restarted) claims it again; both kinds are
//! idempotent. Woken by `NOTIFY support_jobs`, with a poll as a fallback.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;
use uuid::Uuid;

use super::chunking::TokenCounter;
use super::enrichment;
use super::kb::index::{self, Indexed};
use crate::llm::Llm;
use crate::vector::VectorStore;

/// How long a claimed job may run before another host may take it over.
const LEASE: Duration = Duration::from_secs(300);
/// Attempts before a job is marked failed.
const MAX_ATTEMPTS: i32 = 3;
/// Poll interval when no notification arrives.
const POLL: Duration = Duration::from_secs(2);

/// What the jobs need.
#[derive(Clone, Debug)]
pub struct Support {
    pub pool: PgPool,
    pub vectors: Arc<VectorStore>,
    pub llm: Arc<Llm>,
    pub model: String,
    pub tokens: TokenCounter,
    /// This host's heartbeat id (see `workflows::Engine::worker_id`).
    pub worker: String,
    /// A host whose heartbeat is older than this is gone.
    pub stale_after: Duration,
}

#[derive(sqlx::FromRow)]
struct Job {
    id: i64,
    workspace_id: Uuid,
    kind: String,
    target: Uuid,
    attempts: i32,
}

/// The running worker; `stop` ends it after the job in hand.
#[derive(Debug)]
pub struct Worker {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    pub fn spawn(support: Support) -> Worker {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(support, stopped));
        Worker { stop, task }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// A listener on a connection of its own: a `PgListener` keeps its connection for
/// good, and taking it from the shared pool would leave one slot fewer for requests.
async fn listener(pool: &PgPool) -> sqlx::Result<PgListener> {
    let own = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with((*pool.connect_options()).clone())
        .await?;
    PgListener::connect_with(&own).await
}

async fn run(support: Support, mut stopped: watch::Receiver<bool>) {
    let mut listener = match listener(&support.pool).await {
        Ok(mut listener) => match listener.listen("support_jobs").await {
            Ok(()) => Some(listener),
            Err(error) => {
                tracing::warn!(%error, "support jobs: LISTEN failed; polling only");
                None
            }
        },
        Err(error) => {
            tracing::warn!(%error, "support jobs: no listener connection; polling only");
            None
        }
    };
    loop {
        if *stopped.borrow() {
            return;
        }
        match claim(&support).await {
            Ok(Some(job)) => {
                run_job(&support, job).await;
                continue;
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "support jobs: claiming failed"),
        }
        let notified = async {
            match listener.as_mut() {
                Some(listener) => {
                    let _ = listener.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// The oldest ready job, or a running one whose host is gone or whose lease ran out.
async fn claim(support: &Support) -> sqlx::Result<Option<Job>> {
    sqlx::query_as(
        "UPDATE support_jobs SET status = 'running', attempts = attempts + 1, worker = $2,
                lease_until = now() + make_interval(secs => $1), progress = '{}'
          WHERE id = (SELECT id FROM support_jobs j
                       WHERE (status = 'queued' AND run_after <= now())
                          OR (status = 'running' AND (lease_until < now() OR NOT EXISTS (
                                SELECT 1 FROM workflow_workers w WHERE w.id = j.worker
                                   AND w.heartbeat > now() - make_interval(secs => $3))))
                       -- Indexing first: a published article is out of search
                       -- until its job ran, a ticket merely waits for its labels.
                       ORDER BY (kind = 'index_revision') DESC, id
                       LIMIT 1 FOR UPDATE SKIP LOCKED)
          RETURNING id, workspace_id, kind, target, attempts",
    )
    .bind(LEASE.as_secs_f64())
    .bind(&support.worker)
    .bind(support.stale_after.as_secs_f64())
    .fetch_optional(&support.pool)
    .await
}

async fn run_job(support: &Support, job: Job) {
    let pool = support.pool.clone();
    let id = job.id;
    // Progress also renews the lease, so a long index job is not taken over.
    let progress = move |done: usize, total: usize| {
        let pool = pool.clone();
        tokio::spawn(async move {
            let _ = sqlx::query(
                "UPDATE support_jobs SET progress = $2, lease_until = now() + make_interval(secs => $3)
                  WHERE id = $1 AND status = 'running'",
            )
            .bind(id)
            .bind(serde_json::json!({ "done": done, "total": total }))
            .bind(LEASE.as_secs_f64())
            .execute(&pool)
            .await;
        });
    };
    let outcome = match job.kind.as_str() {
        "index_revision" => index::index_revision(
            &support.pool,
            &support.vectors,
            &support.tokens,
            job.workspace_id,
            job.target,
            &progress,
        )
        .await
        .map(|indexed| match indexed {
            Indexed::Done { chunks } => format!("{chunks} chunks"),
            Indexed::Stale => "no longer live".to_string(),
        }),
        "enrich_ticket" => enrichment::enrich(support, job.workspace_id, job.target)
            .await
            .map(|()| "enriched".to_string()),
        other => Err(anyhow::anyhow!("unknown job kind {other}")),
    };
    let finished = match &outcome {
        Ok(what) => {
            tracing::info!(job = job.id, kind = %job.kind, target = %job.target, %what, "support job done");
            sqlx::query(
                "UPDATE support_jobs SET status = 'done', finished_at = now(), error = NULL,
                        lease_until = NULL WHERE id = $1 AND worker = $2 AND attempts = $3",
            )
            .bind(job.id)
            .bind(&support.worker)
            .bind(job.attempts)
            .execute(&support.pool)
            .await
        }
        Err(error) => {
            let message = format!("{error:#}");
            let last = job.attempts >= MAX_ATTEMPTS;
            tracing::warn!(job = job.id, kind = %job.kind, target = %job.target, attempts = job.attempts, error = %message, "support job failed");
            if last && job.kind == "index_revision" {
                let _ =
                    index::mark(&support.pool, job.target, "failed", Some(&message), None).await;
            }
            // Retried after 2, 4 ... seconds; a queued twin (same kind and target)
            // already covers a retry, so this one then just ends.
            sqlx::query(
                "UPDATE support_jobs
                    SET status = CASE WHEN $3 OR EXISTS (SELECT 1 FROM support_jobs t
                                        WHERE t.kind = $4 AND t.target = $5 AND t.status = 'queued')
                                      THEN 'failed' ELSE 'queued' END,
                        error = $2, lease_until = NULL,
                        run_after = now() + make_interval(secs => power(2, attempts)),
                        finished_at = CASE WHEN $3 THEN now() END
                  WHERE id = $1 AND worker = $6 AND attempts = $7",
            )
            .bind(job.id)
            .bind(&message)
            .bind(last)
            .bind(&job.kind)
            .bind(job.target)
            .bind(&support.worker)
            .bind(job.attempts)
            .execute(&support.pool)
            .await
        }
    };
    if let Err(error) = finished {
        tracing::warn!(job = job.id, %error, "support job: recording the outcome failed");
    }
}
