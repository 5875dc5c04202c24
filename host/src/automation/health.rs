//! Agent health alerts: every host judges, every `--agent-health-interval`, each
//! agent's turns that ended within `--agent-health-window` (their share that completed,
//! and the p95 of their durations) and emits `agent.health.degraded` when an agent
//! breaks a threshold, `agent.health.recovered` when it is back within them. A rule on
//! these events with an email or webhook action is an alert (docs/automation.md,
//! "Alerts").
//!
//! Exactly once across hosts: the agent's health is a row of `agent_health`, flipped
//! by a conditional UPDATE (`WHERE status <> new`) in the transaction that writes the
//! event. Two hosts judging the same change both try; the second waits for the first's
//! row lock and then finds nothing to flip.

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::Config;
use crate::events::{self, NewEvent};

/// How the events name the checker as the actor.
pub const ACTOR: &str = "system:health";

/// When an agent is degraded.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub window: Duration,
    /// Below this share of completed turns (of those that completed or failed).
    pub min_success: f64,
    /// Above this p95 turn duration.
    pub max_p95: Duration,
    /// Fewer ended turns than this: not judged, health stays as it was.
    pub min_turns: u32,
}

impl Thresholds {
    pub fn from_config(config: &Config) -> Self {
        Thresholds {
            window: config.agent_health_window,
            min_success: config.agent_health_min_success,
            max_p95: config.agent_health_max_p95,
            min_turns: config.agent_health_min_turns,
        }
    }

    /// Which thresholds the figures break (none: healthy).
    pub fn broken(&self, success_rate: f64, p95_ms: Option<f64>) -> Vec<&'static str> {
        let mut reasons = Vec::new();
        if success_rate < self.min_success {
            reasons.push("success_rate");
        }
        if p95_ms.is_some_and(|p95| p95 > self.max_p95.as_secs_f64() * 1000.0) {
            reasons.push("p95");
        }
        reasons
    }
}

/// One agent's turns over the window.
#[derive(Debug, sqlx::FromRow)]
struct Measured {
    agent_id: Uuid,
    workspace_id: Uuid,
    slug: String,
    turns: i64,
    success_rate: f64,
    p95_ms: Option<f64>,
    /// As last judged (None: never judged, which is healthy).
    current: Option<String>,
}

/// Judge agent health for the life of the host.
pub async fn run_forever(pool: PgPool, thresholds: Thresholds, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        if let Err(error) = pass(&pool, &thresholds).await {
            tracing::warn!(%error, "judging agent health failed");
        }
    }
}

/// One judgement of every agent with enough turns in the window; returns the changes
/// this host emitted.
pub async fn pass(pool: &PgPool, thresholds: &Thresholds) -> sqlx::Result<usize> {
    // Cancelled turns (the client went away) and turns still open say nothing about
    // the agent, so only completed and failed ones count.
    let measured: Vec<Measured> = sqlx::query_as(
        "SELECT t.agent_id, a.workspace_id, a.slug, count(*) AS turns, \
             (count(*) FILTER (WHERE t.status = 'completed'))::float8 / count(*) AS success_rate, \
             percentile_cont(0.95) WITHIN GROUP (ORDER BY t.duration_ms) AS p95_ms, \
             h.status AS current \
         FROM turns t JOIN agents a ON a.id = t.agent_id \
         LEFT JOIN agent_health h ON h.agent_id = t.agent_id \
         WHERE t.finished_at > now() - make_interval(secs => $1) \
           AND t.status IN ('completed', 'failed') \
         GROUP BY t.agent_id, a.workspace_id, a.slug, h.status \
         HAVING count(*) >= $2",
    )
    .bind(thresholds.window.as_secs_f64())
    .bind(i64::from(thresholds.min_turns))
    .fetch_all(pool)
    .await?;
    let mut changed = 0;
    for agent in measured {
        let reasons = thresholds.broken(agent.success_rate, agent.p95_ms);
        let status = if reasons.is_empty() {
            "healthy"
        } else {
            "degraded"
        };
        if agent.current.as_deref().unwrap_or("healthy") == status {
            continue;
        }
        if flip(pool, thresholds, &agent, status, &reasons).await? {
            changed += 1;
        }
    }
    Ok(changed)
}

/// Set the agent's health and write its event, unless another host just did.
async fn flip(
    pool: &PgPool,
    thresholds: &Thresholds,
    agent: &Measured,
    status: &str,
    reasons: &[&str],
) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO agent_health (agent_id, workspace_id, status) VALUES ($1, $2, 'healthy') \
         ON CONFLICT (agent_id) DO NOTHING",
    )
    .bind(agent.agent_id)
    .bind(agent.workspace_id)
    .execute(&mut *tx)
    .await?;
    let flipped = sqlx::query(
        "UPDATE agent_health SET status = $2, turns = $3, success_rate = $4, p95_ms = $5, \
             changed_at = now() \
         WHERE agent_id = $1 AND status <> $2",
    )
    .bind(agent.agent_id)
    .bind(status)
    .bind(i32::try_from(agent.turns).unwrap_or(i32::MAX))
    .bind(agent.success_rate)
    .bind(agent.p95_ms)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !flipped {
        return Ok(false);
    }
    let kind = if status == "degraded" {
        "agent.health.degraded"
    } else {
        "agent.health.recovered"
    };
    let payload = json!({
        "agent_id": agent.agent_id,
        "agent": agent.slug,
        "status": status,
        "turns": agent.turns,
        "success_rate": agent.success_rate,
        "p95_ms": agent.p95_ms,
        "reasons": reasons,
        "thresholds": {
            "window_seconds": thresholds.window.as_secs_f64(),
            "min_success": thresholds.min_success,
            "max_p95_ms": thresholds.max_p95.as_secs_f64() * 1000.0,
            "min_turns": thresholds.min_turns,
        },
    });
    events::emit(
        &mut tx,
        NewEvent {
            workspace: agent.workspace_id,
            kind,
            subject: Some(agent.agent_id.to_string()),
            payload,
            actor: ACTOR,
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(agent = %agent.slug, status, ?reasons, "agent health changed");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_is_degraded_by_either_threshold() {
        let seed = Thresholds {
            window: Duration::from_secs(900),
            min_success: 0.95,
            max_p95: Duration::from_secs(5),
            min_turns: 10,
        };
        assert!(seed.broken(0.95, Some(5000.0)).is_empty());
        assert_eq!(seed.broken(0.94, Some(100.0)), ["success_rate"]);
        assert_eq!(seed.broken(1.0, Some(5000.5)), ["p95"]);
        assert_eq!(seed.broken(0.5, Some(9000.0)), ["success_rate", "p95"]);
        assert!(seed.broken(1.0, None).is_empty());
    }
}
