//! What the engine does when a node run's completion does not commit: which failures
//! are the data's fault (the node fails) and which are passing (try again, then put the
//! run back), and putting a run back.

use std::time::Duration;

use sqlx::PgPool;

use super::definition::{Definition, NodeDef};
use super::engine::{Attempt, Claimed, Engine};
use super::shares::Share;

/// Commits tried with the same outcome before the run is put back.
pub(super) const TRIES: u32 = 5;

/// The pause before commit try `tries + 1`: 100 ms doubling, so five tries span about
/// three seconds, longer than a connection pool takes to replace a dropped connection.
pub(super) fn backoff(tries: u32) -> Duration {
    Duration::from_millis(100 << tries.min(6))
}

/// The SQLSTATE of an error that says the database refuses the data itself, so trying
/// again would fail the same way: class 22 (data exception: NUL in text, a bad Unicode
/// escape, a value out of range) and class 54 (program limit exceeded: a value too
/// large, a JSON document nested too deep).
pub(super) fn refused_data(error: &anyhow::Error) -> Option<String> {
    let sqlx::Error::Database(database) = error.downcast_ref::<sqlx::Error>()? else {
        return None;
    };
    let code = database.code()?;
    (code.starts_with("22") || code.starts_with("54")).then(|| code.into_owned())
}

/// What a refusal means, in words that name no table or internal detail.
pub(super) fn refusal_reason(code: &str) -> &'static str {
    match code {
        "22P05" | "22021" => "it holds a character the database can't store",
        "22001" => "a value is longer than its column allows",
        "22003" => "a number is out of range",
        code if code.starts_with("54") => "it is larger or deeper than the database allows",
        _ => "it is not valid data for the database",
    }
}

/// Put a run this host holds back to `ready`, for any host to run again with the same
/// idempotency key. Tried until it works: a run must not stay `running` under a live
/// owner, and while the database is unreachable no other host can take it either.
/// `delay_ms` keeps a run that could not be stored from being retried at once.
pub(super) async fn put_back(pool: &PgPool, worker: &str, run: i64, delay_ms: u32) {
    let mut tries = 0;
    loop {
        let put = sqlx::query(
            "UPDATE node_runs SET status = 'ready', worker = NULL, \
             run_at = now() + $3 * interval '1 ms' \
             WHERE id = $1 AND worker = $2 AND status = 'running'",
        )
        .bind(run)
        .bind(worker)
        .bind(f64::from(delay_ms))
        .execute(pool)
        .await;
        match put {
            Ok(_) => return,
            Err(error) => {
                tries += 1;
                tracing::warn!(error = %error, run, "putting a node run back failed; trying again");
                tokio::time::sleep(backoff(tries.min(TRIES))).await;
            }
        }
    }
}

impl Engine {
    /// Commit an attempt's outcome, whatever it takes. A commit that fails for a passing
    /// reason (a connection lost mid-commit, a failover) is tried again with the same
    /// outcome, so the node does not run twice. Data the database refuses (a data
    /// exception, a value past a limit) turns the attempt into a failure of kind
    /// `invalid`, committed like any other, so `on_error` and retries apply. If no
    /// commit goes through, the run is put back for any host to run again.
    pub(super) async fn commit(
        &self,
        claimed: &Claimed,
        definition: &Definition,
        node: &NodeDef,
        plugin: &str,
        version: &str,
        attempt: Attempt,
    ) -> Option<(Claimed, Share)> {
        let mut attempt = attempt;
        let mut refused = false;
        let mut tries = 0;
        loop {
            let result = self
                .complete(claimed, definition, node, plugin, version, attempt.clone())
                .await;
            let error = match result {
                Ok(handed) => return handed,
                Err(error) => error,
            };
            match refused_data(&error) {
                Some(code) if !refused => {
                    tracing::warn!(
                        execution = %claimed.execution_id, node = %claimed.node_id,
                        error = %error, "the database refused a node's result; failing the node"
                    );
                    refused = true;
                    attempt = Attempt::Failed {
                        kind: "invalid".into(),
                        message: format!(
                            "the database refused to store the node's result (SQLSTATE {code}): \
                             {}",
                            refusal_reason(&code)
                        ),
                    };
                    continue;
                }
                _ => {}
            }
            tries += 1;
            if tries >= TRIES {
                tracing::warn!(
                    execution = %claimed.execution_id, node = %claimed.node_id, error = %error,
                    "committing a node's result failed {tries} times; putting the run back"
                );
                put_back(&self.pool, &self.worker_id, claimed.id, 1000).await;
                return None;
            }
            tracing::warn!(
                execution = %claimed.execution_id, node = %claimed.node_id, error = %error,
                "committing a node's result failed; trying again"
            );
            tokio::time::sleep(backoff(tries)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_stays_bounded() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert_eq!(backoff(40), backoff(6));
    }

    #[test]
    fn only_database_refusals_are_the_datas_fault() {
        let io = anyhow::Error::from(sqlx::Error::PoolTimedOut);
        assert_eq!(refused_data(&io), None);
        let other = anyhow::anyhow!("not a database error");
        assert_eq!(refused_data(&other), None);
        assert!(refusal_reason("22P05").contains("character"));
        assert!(refusal_reason("54000").contains("larger"));
    }
}
