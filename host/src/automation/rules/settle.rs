//! After the runs: copy each finished execution's status onto its rule run and count it
//! on the rule, in one conditional update, so two hosts count each run once.

use sqlx::PgPool;

pub async fn pass(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::query(
        "WITH done AS ( \
             UPDATE rule_runs r SET result = e.status, finished_at = e.finished_at \
             FROM executions e \
             WHERE e.id = r.execution_id AND r.outcome = 'started' AND r.result IS NULL \
               AND e.status IN ('succeeded', 'failed', 'cancelled') \
             RETURNING r.rule_id, e.status), \
         counts AS ( \
             SELECT rule_id, count(*) FILTER (WHERE status = 'succeeded') AS ok, \
                 count(*) FILTER (WHERE status <> 'succeeded') AS bad \
             FROM done GROUP BY rule_id) \
         UPDATE rules SET succeeded = succeeded + counts.ok, failed = failed + counts.bad \
         FROM counts WHERE rules.id = counts.rule_id",
    )
    .execute(pool)
    .await?;
    Ok(())
}
