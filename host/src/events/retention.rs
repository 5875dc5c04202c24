//! Events older than `--event-retention` are deleted, a batch at a time, so the outbox
//! never grows without bound and no sweep holds a long transaction.

use std::time::Duration;

use sqlx::PgPool;

/// Rows one statement deletes.
const BATCH: i64 = 5_000;

/// Delete events older than `retention`; returns how many went.
pub async fn sweep(pool: &PgPool, retention: Duration) -> sqlx::Result<u64> {
    let mut deleted = 0;
    loop {
        let done = sqlx::query(
            "DELETE FROM events WHERE seq IN (SELECT seq FROM events \
             WHERE at < now() - $1 * interval '1 ms' LIMIT $2)",
        )
        .bind(retention.as_millis() as f64)
        .bind(BATCH)
        .execute(pool)
        .await?
        .rows_affected();
        deleted += done;
        if done < BATCH as u64 {
            return Ok(deleted);
        }
    }
}

/// Sweep every `every` for the life of the host.
pub async fn sweep_forever(pool: PgPool, retention: Duration, every: Duration) {
    loop {
        match sweep(&pool, retention).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "deleted events past their retention"),
            Err(error) => tracing::warn!(error = %error, "deleting old events failed"),
        }
        tokio::time::sleep(every).await;
    }
}
