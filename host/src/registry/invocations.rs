//! The invocation record, written in batches off the request path: one multi-row
//! insert per batch instead of one round trip per tool call.

use sqlx::PgPool;
use tokio::sync::mpsc;
use uuid::Uuid;

/// One finished tool call.
#[derive(Debug)]
pub struct Invocation {
    pub workspace_id: Uuid,
    pub plugin: String,
    pub version: String,
    pub tool: String,
    pub duration_ms: f64,
    pub outcome: &'static str,
    pub error: Option<String>,
    pub request_id: String,
}

/// Calls waiting to be written; past this the newest are dropped (and logged) rather
/// than letting memory grow when the database falls behind.
const QUEUE: usize = 50_000;
const BATCH: usize = 1_000;

#[derive(Debug, Clone)]
pub struct InvocationLog {
    sender: mpsc::Sender<Invocation>,
}

impl InvocationLog {
    /// Start the writer task; it ends when the last `InvocationLog` is dropped.
    pub fn start(pool: PgPool) -> Self {
        let (sender, mut receiver) = mpsc::channel(QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while receiver.recv_many(&mut batch, BATCH).await > 0 {
                if let Err(err) = write(&pool, &batch).await {
                    tracing::warn!(error = %err, rows = batch.len(), "could not record tool invocations");
                }
                batch.clear();
            }
        });
        InvocationLog { sender }
    }

    pub fn record(&self, invocation: Invocation) {
        if self.sender.try_send(invocation).is_err() {
            tracing::warn!("invocation log queue full: a tool call was not recorded");
        }
    }
}

async fn write(pool: &PgPool, batch: &[Invocation]) -> sqlx::Result<()> {
    let column = |f: fn(&Invocation) -> String| batch.iter().map(f).collect::<Vec<String>>();
    let workspaces: Vec<Uuid> = batch.iter().map(|i| i.workspace_id).collect();
    let durations: Vec<f64> = batch.iter().map(|i| i.duration_ms).collect();
    // A plugin's error text may hold NUL, which would fail the whole batch (`crate::nul`).
    let errors: Vec<Option<String>> = batch
        .iter()
        .map(|i| i.error.as_deref().map(crate::nul::replace))
        .collect();
    sqlx::query(
        "INSERT INTO plugin_invocations \
         (workspace_id, plugin, version, tool, duration_ms, outcome, error, request_id) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], \
         $5::float8[], $6::text[], $7::text[], $8::text[])",
    )
    .bind(workspaces)
    .bind(column(|i| i.plugin.clone()))
    .bind(column(|i| i.version.clone()))
    .bind(column(|i| i.tool.clone()))
    .bind(durations)
    .bind(column(|i| i.outcome.to_string()))
    .bind(errors)
    .bind(column(|i| i.request_id.clone()))
    .execute(pool)
    .await?;
    Ok(())
}
