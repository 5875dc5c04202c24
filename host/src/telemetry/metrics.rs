//! Prometheus metrics: the series' names and the one-line helpers the call sites use.
//!
//! The `metrics` facade records into one recorder per process (it is global), rendered
//! by `metrics-exporter-prometheus` from `GET /metrics` (and `--metrics-listen`).
//! Counters and histograms are therefore process-wide: in production a process is one
//! host, and when tests start several servers in one process they add up. Gauges
//! that describe a host's state (pool, instance capacity, queues) are sampled from the
//! scraped server when it is scraped.
//!
//! Names follow the OpenTelemetry semantic conventions where one exists
//! (`http.server.request.duration` -> `http_server_request_duration_seconds`), the
//! rest are `agenthost_*`.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUEST_DURATION: &str = "http_server_request_duration_seconds";
pub const PLUGIN_CALLS: &str = "agenthost_plugin_calls_total";
pub const PLUGIN_CALL_DURATION: &str = "agenthost_plugin_call_duration_seconds";
pub const INSTANCES_IN_USE: &str = "agenthost_plugin_instances_in_use";
pub const INSTANCES_MAX: &str = "agenthost_plugin_instances_max";
pub const LLM_TOKENS: &str = "gen_ai_client_token_usage";
pub const LLM_COST: &str = "agenthost_llm_cost_usd";
pub const CHAT_TURNS: &str = "agenthost_chat_turns_total";
pub const DB_CONNECTIONS: &str = "db_client_connection_count";
pub const DB_CONNECTIONS_MAX: &str = "db_client_connection_max";
pub const WORKFLOW_EXECUTIONS: &str = "agenthost_workflow_executions";
pub const WORKFLOW_NODE_RUNS: &str = "agenthost_workflow_node_runs";
pub const WORKFLOW_QUEUE_DEPTH: &str = "agenthost_workflow_queue_depth";
pub const WORKFLOW_EXECUTIONS_FINISHED: &str = "agenthost_workflow_executions_finished_total";
pub const WORKFLOW_NODE_RUNS_FINISHED: &str = "agenthost_workflow_node_runs_finished_total";
pub const WORKFLOW_QUEUE_LAG: &str = "agenthost_workflow_queue_lag_seconds";
pub const SUPPORT_JOBS: &str = "agenthost_support_jobs";
pub const WEBHOOK_ATTEMPTS: &str = "agenthost_webhook_attempts_total";
pub const WEBHOOK_ATTEMPT_DURATION: &str = "agenthost_webhook_attempt_duration_seconds";
pub const EVENT_LAG: &str = "agenthost_event_lag_seconds";
pub const SCHEDULE_TICK_LATENESS: &str = "agenthost_schedule_tick_lateness_seconds";
pub const RULE_OUTCOMES: &str = "agenthost_rule_outcomes_total";

/// OpenTelemetry's advice for `http.server.request.duration`.
const HTTP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// A plugin call is often well under a millisecond; deadlines are seconds.
const PLUGIN_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// OpenTelemetry's advice for `gen_ai.client.token.usage` (powers of 4).
const TOKEN_BUCKETS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0,
];
const COST_BUCKETS: &[f64] = &[0.0001, 0.001, 0.01, 0.1, 1.0, 10.0];
/// A tick is due to start within 100 ms (the benchmark's goal); past 15 s it counts as
/// missed (schedules::spec::ON_TIME) and is caught up instead.
const LATENESS_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Install the process's recorder on first use; later calls (more servers in the
/// same process) get the same handle.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = builder()
            .unwrap_or_else(|error| {
                tracing::error!(%error, "metric buckets rejected; histograms become summaries");
                PrometheusBuilder::new()
            })
            .build_recorder();
        let handle = recorder.handle();
        if let Err(error) = metrics::set_global_recorder(recorder) {
            tracing::error!(%error, "another metrics recorder is installed; /metrics stays empty");
        }
        describe();
        // Histogram samples wait in per-series buffers until drained; a scrape drains
        // them, this keeps them bounded when nobody scrapes. A thread, not a task: the
        // recorder outlives any one runtime (tests start one per test).
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "no metrics upkeep thread; histograms drain at scrapes only");
        }
        handle
    })
}

fn builder() -> Result<PrometheusBuilder, BuildError> {
    let full = |name: &str| Matcher::Full(name.to_string());
    PrometheusBuilder::new()
        .set_buckets_for_metric(full(HTTP_REQUEST_DURATION), HTTP_BUCKETS)?
        .set_buckets_for_metric(full(PLUGIN_CALL_DURATION), PLUGIN_BUCKETS)?
        .set_buckets_for_metric(full(LLM_TOKENS), TOKEN_BUCKETS)?
        .set_buckets_for_metric(full(LLM_COST), COST_BUCKETS)?
        .set_buckets_for_metric(full(WEBHOOK_ATTEMPT_DURATION), HTTP_BUCKETS)?
        .set_buckets_for_metric(full(SCHEDULE_TICK_LATENESS), LATENESS_BUCKETS)
}

fn describe() {
    use metrics::Unit;
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        Unit::Seconds,
        "HTTP requests by method, route template and status (until the response head)."
    );
    describe_counter!(PLUGIN_CALLS, "Plugin tool and node calls by outcome.");
    describe_histogram!(PLUGIN_CALL_DURATION, Unit::Seconds, "Plugin call duration.");
    describe_gauge!(INSTANCES_IN_USE, "Plugin instances running now.");
    describe_gauge!(INSTANCES_MAX, "Instance slots of the engine's pool.");
    describe_histogram!(LLM_TOKENS, "Tokens per LLM call by model, agent and type.");
    describe_histogram!(
        LLM_COST,
        "USD per priced LLM call; _sum is the total spent."
    );
    describe_counter!(CHAT_TURNS, "Agent chat turns by outcome.");
    describe_gauge!(DB_CONNECTIONS, "Host database connections by state.");
    describe_gauge!(DB_CONNECTIONS_MAX, "Host database pool size limit.");
    describe_gauge!(
        WORKFLOW_EXECUTIONS,
        "Unfinished workflow executions by status."
    );
    describe_gauge!(WORKFLOW_NODE_RUNS, "Unfinished node runs by status.");
    describe_counter!(
        WORKFLOW_EXECUTIONS_FINISHED,
        "Workflow executions this host finished, by status."
    );
    describe_counter!(
        WORKFLOW_NODE_RUNS_FINISHED,
        "Node run attempts this host finished, by status (succeeded, failed)."
    );
    describe_gauge!(WORKFLOW_QUEUE_DEPTH, "Node runs ready and due.");
    describe_gauge!(
        WORKFLOW_QUEUE_LAG,
        Unit::Seconds,
        "How long the oldest due node run has waited."
    );
    describe_gauge!(SUPPORT_JOBS, "Support jobs queued or running.");
    describe_counter!(
        WEBHOOK_ATTEMPTS,
        "Outbound webhook attempts this host sent, by outcome (succeeded, retrying, failed: \
         the last attempt, gone: 410)."
    );
    describe_histogram!(
        WEBHOOK_ATTEMPT_DURATION,
        Unit::Seconds,
        "Outbound webhook attempts, from sending to the response's excerpt."
    );
    describe_gauge!(
        EVENT_LAG,
        Unit::Seconds,
        "Age of the oldest event some subscriber has not passed yet, by subscriber \
         (event_trigger, webhook, rule, nats); 0 when all are at the feed's head."
    );
    describe_histogram!(
        SCHEDULE_TICK_LATENESS,
        Unit::Seconds,
        "From a scheduled tick's time to its execution's start (on-time ticks only)."
    );
    describe_counter!(
        RULE_OUTCOMES,
        "Automation rules' matches by outcome (started, skipped_cooldown, skipped_limit, \
         failed)."
    );
}

/// Middleware: one histogram sample per request, labelled with the route template
/// (`MatchedPath`), never the raw path, so the series stay bounded.
pub async fn track_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |path| path.as_str().to_string());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    histogram!(HTTP_REQUEST_DURATION, "method" => method, "route" => route, "status" => status)
        .record(started.elapsed());
    response
}

/// Methods outside the standard set are one label value (`_OTHER`, as OpenTelemetry
/// says), so a client can't mint series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "_OTHER",
    }
}

pub fn plugin_call(plugin: &str, version: &str, outcome: &'static str, elapsed: Duration) {
    let labels = [
        ("plugin", plugin.to_string()),
        ("version", version.to_string()),
        ("outcome", outcome.to_string()),
    ];
    counter!(PLUGIN_CALLS, &labels).increment(1);
    histogram!(PLUGIN_CALL_DURATION, &labels).record(elapsed);
}

/// Held while a plugin instance exists (the gauge counts live guards).
#[derive(Debug)]
pub struct InstanceSlot(());

pub fn instance_slot() -> InstanceSlot {
    gauge!(INSTANCES_IN_USE).increment(1.0);
    InstanceSlot(())
}

impl Drop for InstanceSlot {
    fn drop(&mut self) {
        gauge!(INSTANCES_IN_USE).decrement(1.0);
    }
}

/// One LLM call's usage. `agent` is the agent's slug (readable, and bounded by the
/// number of agents; the id would need a lookup to read); calls made by plugins and
/// the support pipeline have none.
pub fn llm_usage(model: &str, agent: Option<&str>, input: i32, output: i32, cost: Option<f64>) {
    let (model, agent) = (model.to_string(), agent.unwrap_or("none").to_string());
    for (kind, tokens) in [("input", input), ("output", output)] {
        histogram!(LLM_TOKENS, "model" => model.clone(), "agent" => agent.clone(), "type" => kind)
            .record(f64::from(tokens.max(0)));
    }
    if let Some(cost) = cost {
        histogram!(LLM_COST, "model" => model, "agent" => agent).record(cost);
    }
}

/// One outbound webhook attempt; `outcome` is succeeded, retrying, failed or gone.
pub fn webhook_attempt(outcome: &'static str, elapsed: Duration) {
    counter!(WEBHOOK_ATTEMPTS, "outcome" => outcome).increment(1);
    histogram!(WEBHOOK_ATTEMPT_DURATION, "outcome" => outcome).record(elapsed);
}

/// A schedule's tick started its execution; `kind` is the run's kind (`scheduled`,
/// `catch_up`, `manual`). Only on-time ticks are measured: a caught-up tick is late by
/// design and a manual run has no due time.
pub fn schedule_tick_started(kind: &str, tick: chrono::DateTime<chrono::Utc>) {
    if kind == "scheduled" {
        let late = (chrono::Utc::now() - tick).to_std().unwrap_or_default();
        histogram!(SCHEDULE_TICK_LATENESS).record(late);
    }
}

/// An automation rule matched an event; `outcome` is what came of it: `started`,
/// `skipped_cooldown`, `skipped_limit` or `failed` (rule_runs.outcome).
pub fn rule_outcome(outcome: &'static str) {
    counter!(RULE_OUTCOMES, "outcome" => outcome).increment(1);
}

/// `outcome`: the status a turn ends with (completed, failed, cancelled).
pub fn chat_turn(outcome: &str) {
    counter!(CHAT_TURNS, "outcome" => outcome.to_string()).increment(1);
}

/// The exposition of `GET /metrics`, with this host's gauges sampled first.
pub async fn response(pool: &sqlx::PgPool, plugin_instances: u32) -> Response {
    let handle = install();
    sample(pool, plugin_instances).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

async fn sample(pool: &sqlx::PgPool, plugin_instances: u32) {
    let idle = pool.num_idle() as f64;
    gauge!(DB_CONNECTIONS, "state" => "idle").set(idle);
    gauge!(DB_CONNECTIONS, "state" => "used").set(f64::from(pool.size()) - idle);
    gauge!(DB_CONNECTIONS_MAX).set(pool.options().get_max_connections());
    gauge!(INSTANCES_MAX).set(plugin_instances);
    match sqlx::query_as::<_, Queues>(QUEUES).fetch_one(pool).await {
        Ok(queues) => queues.set(),
        // The rest of the exposition is still worth having.
        Err(error) => tracing::warn!(%error, "sampling the queues for /metrics failed"),
    }
    sample_event_lag(pool).await;
}

/// Per kind of subscriber, the cursors walking now (enabled workflows with an event
/// trigger, enabled webhooks, workspaces with an active rule, the NATS stream) as
/// `(workspace_id, tx, seq)`, and whether a cursor walks one workspace's feed or all.
/// Queried one by one, so a table a feature has not created yet costs only its series.
const EVENT_SUBSCRIBERS: &[(&str, &str, bool)] = &[
    (
        "event_trigger",
        "SELECT w.workspace_id, c.tx, c.seq FROM event_trigger_cursors c \
         JOIN workflows w ON w.id = c.workflow_id WHERE w.enabled",
        true,
    ),
    (
        "webhook",
        "SELECT h.workspace_id, c.tx, c.seq FROM webhook_cursors c \
         JOIN webhooks h ON h.id = c.webhook_id WHERE h.enabled",
        true,
    ),
    (
        "rule",
        "SELECT c.workspace_id, c.tx, c.seq FROM rule_cursors c WHERE EXISTS \
         (SELECT 1 FROM rules r WHERE r.workspace_id = c.workspace_id AND r.active)",
        true,
    ),
    (
        "nats",
        "SELECT NULL::uuid AS workspace_id, tx, seq FROM nats_cursors",
        false,
    ),
];

/// Event lag: per kind of subscriber, the age of the oldest committed event one of its
/// cursors has not passed (the first event after each cursor, found by the feed's
/// indexes); 0 when every cursor is at the head. It grows while a subscriber is stuck
/// or behind, and while an open transaction holds the feed back (readers stop below the
/// oldest open transaction, docs/decisions.md).
async fn sample_event_lag(pool: &sqlx::PgPool) {
    for (subscriber, cursors, per_workspace) in EVENT_SUBSCRIBERS {
        let scope = if *per_workspace {
            "e.workspace_id = c.workspace_id AND"
        } else {
            ""
        };
        let query = format!(
            "SELECT coalesce(extract(epoch FROM now() - min(first.at)), 0)::float8 \
             FROM ({cursors}) c CROSS JOIN LATERAL ( \
                 SELECT e.at FROM events e WHERE {scope} (e.tx, e.seq) > (c.tx, c.seq) \
                 ORDER BY e.tx, e.seq LIMIT 1) first"
        );
        let lag = sqlx::query_scalar::<_, f64>(sqlx::AssertSqlSafe(query))
            .fetch_one(pool)
            .await;
        match lag {
            Ok(lag) => gauge!(EVENT_LAG, "subscriber" => *subscriber).set(lag.max(0.0)),
            Err(error) => tracing::debug!(%error, subscriber, "sampling the event lag failed"),
        }
    }
}

/// One round trip, each count served by a partial index on its status (finished
/// rows, the bulk of both tables, are never read), except waiting executions.
const QUEUES: &str = "SELECT \
    (SELECT count(*) FROM executions WHERE status = 'running') AS executions_running, \
    (SELECT count(*) FROM executions WHERE status = 'waiting') AS executions_waiting, \
    (SELECT count(*) FROM node_runs WHERE status = 'ready') AS runs_ready, \
    (SELECT count(*) FROM node_runs WHERE status = 'running') AS runs_running, \
    (SELECT count(*) FROM node_runs WHERE status = 'waiting') AS runs_waiting, \
    (SELECT count(*) FROM node_runs WHERE status = 'ready' AND run_at <= now()) AS due, \
    (SELECT coalesce(extract(epoch FROM now() - min(run_at)), 0)::float8 \
       FROM node_runs WHERE status = 'ready' AND run_at <= now()) AS lag_seconds, \
    (SELECT count(*) FROM support_jobs WHERE status = 'queued') AS jobs_queued, \
    (SELECT count(*) FROM support_jobs WHERE status = 'running') AS jobs_running";

#[derive(sqlx::FromRow)]
struct Queues {
    executions_running: i64,
    executions_waiting: i64,
    runs_ready: i64,
    runs_running: i64,
    runs_waiting: i64,
    due: i64,
    lag_seconds: f64,
    jobs_queued: i64,
    jobs_running: i64,
}

impl Queues {
    fn set(self) {
        let executions = [
            ("running", self.executions_running),
            ("waiting", self.executions_waiting),
        ];
        for (status, count) in executions {
            gauge!(WORKFLOW_EXECUTIONS, "status" => status).set(count as f64);
        }
        let runs = [
            ("ready", self.runs_ready),
            ("running", self.runs_running),
            ("waiting", self.runs_waiting),
        ];
        for (status, count) in runs {
            gauge!(WORKFLOW_NODE_RUNS, "status" => status).set(count as f64);
        }
        gauge!(WORKFLOW_QUEUE_DEPTH).set(self.due as f64);
        gauge!(WORKFLOW_QUEUE_LAG).set(self.lag_seconds);
        gauge!(SUPPORT_JOBS, "status" => "queued").set(self.jobs_queued as f64);
        gauge!(SUPPORT_JOBS, "status" => "running").set(self.jobs_running as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        let custom = Method::from_bytes(b"BREW").expect("method");
        assert_eq!(method_label(&custom), "_OTHER");
    }
}
