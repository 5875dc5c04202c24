//! A turn's end as the database records it: the guard that marks a turn cancelled when
//! its request goes away, and the sweep of turns a stopped host left running.

use std::time::{Duration, Instant};

use sqlx::PgPool;
use uuid::Uuid;

/// Marks its turn cancelled if dropped before `finish` — the request future was
/// dropped because the client disconnected or the turn was cut off.
pub struct TurnGuard {
    pool: PgPool,
    turn_id: Uuid,
    started: Instant,
    finished: bool,
}

impl TurnGuard {
    pub fn new(pool: PgPool, turn_id: Uuid) -> Self {
        TurnGuard {
            pool,
            turn_id,
            started: Instant::now(),
            finished: false,
        }
    }

    pub fn finish(mut self) {
        self.finished = true;
    }

    /// Record the turn as ended for `reason` (a timeout) now, instead of at drop.
    pub async fn end(mut self, status: &str, reason: &str) {
        self.finished = true;
        end_turn(
            &self.pool,
            self.turn_id,
            status,
            reason,
            self.started.elapsed(),
        )
        .await;
    }
}

impl Drop for TurnGuard {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let (pool, turn_id, elapsed) = (self.pool.clone(), self.turn_id, self.started.elapsed());
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let reason = "the client disconnected before the turn finished";
                end_turn(&pool, turn_id, "cancelled", reason, elapsed).await;
            });
        }
    }
}

async fn end_turn(pool: &PgPool, turn: Uuid, status: &str, reason: &str, elapsed: Duration) {
    let ended = sqlx::query(
        "UPDATE turns SET status = $2, error = $3, duration_ms = $4, finished_at = now() \
         WHERE id = $1 AND status = 'running'",
    )
    .bind(turn)
    .bind(status)
    .bind(reason)
    .bind(elapsed.as_secs_f64() * 1000.0)
    .execute(pool)
    .await;
    match ended {
        // Only the first end of a turn counts (the guard may end one already recorded).
        Ok(done) if done.rows_affected() == 1 => crate::telemetry::metrics::chat_turn(status),
        Ok(_) => {}
        Err(error) => tracing::error!(%error, %turn, "could not record the end of a turn"),
    }
}

/// At start: turns still `running` from a host that stopped mid-turn can't finish.
pub async fn sweep_interrupted_turns(pool: &PgPool, turn_timeout: Duration) -> sqlx::Result<()> {
    let swept = sqlx::query(
        "UPDATE turns SET status = 'cancelled', error = 'the host stopped during the turn', \
         finished_at = now() WHERE status = 'running' AND started_at < now() - $1::interval",
    )
    .bind(format!("{} milliseconds", turn_timeout.as_millis()))
    .execute(pool)
    .await?
    .rows_affected();
    if swept > 0 {
        tracing::warn!(
            swept,
            "turns interrupted by a stop were recorded as cancelled"
        );
    }
    Ok(())
}
