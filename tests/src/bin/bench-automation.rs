//! Automation benchmarks (issue 20, docs/benchmarks.md, "Automation"): the real server in
//! this process on a **durable** embedded PostgreSQL (fsync and synchronous_commit on),
//! each figure beside a baseline measured in the same run.
//!
//! a. Events per second written through the outbox (`events::emit` in a transaction,
//!    one event and ten per transaction) against bare inserts of the same rows into a
//!    table like `events` without the outbox's parts (the commit-order column and its
//!    index, the workspace key, the type check); same pool, same concurrency. Then
//!    the feed read back in commit order (`events::read`, pages of 1000).
//! b. Schedule tick lateness for a 1 s interval: `execution.created_at - tick` over
//!    `TICKS` ticks, p50/p99 (goal p99 < 100 ms); the baseline is a tokio timer in this
//!    process sleeping to each whole second over the same seconds (the floor any
//!    in-process scheduler has on this machine).
//! c. Event → event-trigger execution started: `execution.created_at - event.at` (the
//!    event's time is its transaction's start), p50/p99; the baseline is the latency
//!    of starting the same kind of execution through the API (`POST
//!    /api/workflows/{w}/executions` until its 201). Then the same for an automation
//!    rule (event → the rule's actions started) when the server has `/api/rules`.
//!
//! Run: `cargo run --release -p agenthost-tests --bin bench-automation` (`make bench`);
//! `-- outbox`, `-- ticks` or `-- delivery` runs only that part.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agenthost::db::embedded::{EmbeddedOptions, EmbeddedPostgres};
use agenthost::events::{self, Cursor, Filter, NewEvent};
use agenthost_tests::{TestServer, pg_dir, plugin_wasm};
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

/// Concurrent writers in (a), each with its own connection.
const CLIENTS: usize = 16;
/// Transactions per run in (a).
const TRANSACTIONS: usize = 3000;
/// Ticks measured in (b): about this many seconds.
const TICKS: usize = 40;
/// Events delivered in (c), each to a trigger (and a rule).
const DELIVERIES: usize = 60;

/// A durable PostgreSQL in a scratch directory (startup blocks on its own runtime).
fn durable_postgres() -> (EmbeddedPostgres, std::path::PathBuf) {
    std::thread::spawn(|| {
        let dir = tempfile::Builder::new()
            .prefix("agenthost-bench-automation-pg-")
            .tempdir()
            .unwrap()
            .keep();
        let server = EmbeddedPostgres::start_blocking(&EmbeddedOptions {
            install_dir: pg_dir(),
            data_dir: dir.clone(),
            run_as_when_root: "agenthost-pg".into(),
            unsafe_fast: false,
        })
        .unwrap_or_else(|e| panic!("starting PostgreSQL: {e:#}"));
        (server, dir)
    })
    .join()
    .unwrap()
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

/// "p50 X ms, p99 Y ms, max Z ms (n)" of seconds.
fn spread(seconds: &[f64]) -> String {
    let s = sorted(seconds.to_vec());
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n = {})",
        percentile(&s, 50.0) * 1e3,
        percentile(&s, 99.0) * 1e3,
        s[s.len() - 1] * 1e3,
        s.len()
    )
}

struct Bench {
    server: TestServer,
    db: PgPool,
    key: String,
    workspace: Uuid,
}

impl Bench {
    async fn api(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .server
            .request(method, path, &self.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn ok(&self, method: Method, path: &str, body: Value) -> Value {
        let (status, answer) = self.api(method.clone(), path, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {answer}");
        answer
    }

    async fn workflow(&self, slug: &str, definition: Value) -> Uuid {
        let saved = self
            .ok(
                Method::POST,
                "/api/workflows",
                json!({"slug": slug, "name": slug, "definition": definition}),
            )
            .await;
        saved["id"].as_str().unwrap().parse().unwrap()
    }

    /// `TRANSACTIONS` transactions from `CLIENTS` writers, each writing `per` rows into
    /// the outbox (`table` None) or `table`; rows per second.
    async fn writes(&self, per: usize, table: Option<&str>) -> f64 {
        let started = Instant::now();
        futures_util::stream::iter(0..TRANSACTIONS)
            .map(|i| async move {
                let mut tx = self.db.begin().await.unwrap();
                for j in 0..per {
                    let subject = format!("bench-{i}-{j}");
                    let payload = json!({"ticket_id": subject, "subject": "Printer on fire",
                        "priority": "high", "channel": "email"});
                    if let Some(table) = table {
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "INSERT INTO {table} (workspace_id, type, subject, payload, actor) \
                             VALUES ($1, $2, $3, $4, $5)"
                        )))
                        .bind(self.workspace)
                        .bind("ticket.created")
                        .bind(subject)
                        .bind(payload)
                        .bind("system:bench")
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    } else {
                        events::emit(
                            &mut tx,
                            NewEvent {
                                workspace: self.workspace,
                                kind: "ticket.created",
                                subject: Some(subject),
                                payload,
                                actor: "system:bench",
                            },
                        )
                        .await
                        .unwrap();
                    }
                }
                tx.commit().await.unwrap();
            })
            .buffer_unordered(CLIENTS)
            .collect::<Vec<()>>()
            .await;
        (TRANSACTIONS * per) as f64 / started.elapsed().as_secs_f64()
    }

    /// The whole feed read in commit order; (events, events per second).
    async fn read_feed(&self) -> (usize, f64) {
        let started = Instant::now();
        let (mut after, mut count) = (Cursor::default(), 0);
        loop {
            let page = events::read(&self.db, self.workspace, after, &Filter::default(), 1000)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = last.cursor.parse().unwrap();
            count += page.len();
        }
        (count, count as f64 / started.elapsed().as_secs_f64())
    }

    /// Wait until `sql` (a count) reaches `n`.
    async fn until_count(&self, sql: &str, bind: Uuid, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
                .bind(bind)
                .fetch_one(&self.db)
                .await
                .unwrap();
            if count as usize >= n {
                return;
            }
            assert!(Instant::now() < deadline, "{count} of {n}: {sql}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn outbox(bench: &Bench) {
    // Bare: the same columns without the outbox's parts. Unkeyed: `events` as it is
    // (commit-order column, indexes, type check) but without the workspace's foreign
    // key, whose check locks the workspace row (KEY SHARE) in every writer's transaction.
    for create in [
        "CREATE TABLE bench_bare_events (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
         id uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE, workspace_id uuid NOT NULL, \
         type text NOT NULL, subject text, payload jsonb NOT NULL DEFAULT '{}', \
         actor text NOT NULL, at timestamptz NOT NULL DEFAULT now())",
        "CREATE TABLE bench_unkeyed_events (LIKE events INCLUDING ALL)",
    ] {
        sqlx::query(create).execute(&bench.db).await.unwrap();
    }
    let (bare, unkeyed) = (Some("bench_bare_events"), Some("bench_unkeyed_events"));
    // Warm-up: connections, statement caches, the tables' first pages.
    for table in [bare, unkeyed, None] {
        bench.writes(1, table).await;
    }
    // Interleaved rounds, so a drift in the machine's speed hits all alike.
    let mut rates = [[0.0; 3]; 2];
    for _ in 0..2 {
        for (row, per) in [1, 10].into_iter().enumerate() {
            for (column, table) in [bare, unkeyed, None].into_iter().enumerate() {
                rates[row][column] += bench.writes(per, table).await / 2.0;
            }
        }
    }
    println!(
        "(a) {CLIENTS} writers, {TRANSACTIONS} transactions a run, mean of two interleaved runs:"
    );
    for (row, per) in [1, 10].into_iter().enumerate() {
        let [bare, unkeyed, outbox] = rates[row];
        println!(
            "    {per} per transaction: outbox {outbox:.0} events/s, bare inserts {bare:.0} \
             rows/s, events without its foreign key {unkeyed:.0} rows/s; outbox / bare {:.2}, \
             unkeyed / bare {:.2}",
            outbox / bare,
            unkeyed / bare
        );
    }
    let (count, rate) = bench.read_feed().await;
    println!(
        "    the feed read back in commit order: {count} events at {rate:.0} events/s \
         (pages of 1000); ratio to outbox writes (1 per transaction) {:.1}",
        rate / rates[0][2]
    );
}

async fn tick_lateness(bench: &Bench) {
    bench
        .workflow(
            "tick",
            json!({"nodes": [{"id": "out", "type": "core/output", "config": {"value": 1}}]}),
        )
        .await;
    let task = bench
        .ok(
            Method::POST,
            "/api/schedules",
            json!({"name": "every second", "schedule": {"every": "1s"},
                   "action": {"type": "run_workflow", "workflow": "tick"}}),
        )
        .await;
    let id: Uuid = task["id"].as_str().unwrap().parse().unwrap();
    // The baseline over the same seconds: a timer sleeping to each whole second.
    let timer = tokio::spawn(async {
        let mut late = Vec::new();
        for _ in 0..TICKS {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            let next = Duration::from_secs(now.as_secs() + 1);
            tokio::time::sleep(next - now).await;
            let woke = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            late.push((woke - next).as_secs_f64());
        }
        late
    });
    bench
        .until_count(
            "SELECT count(*) FROM schedule_ticks WHERE schedule_id = $1 AND kind = 'scheduled' \
             AND outcome = 'started'",
            id,
            TICKS,
        )
        .await;
    bench
        .ok(
            Method::POST,
            &format!("/api/schedules/{id}/pause"),
            json!({}),
        )
        .await;
    let lateness: Vec<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM e.created_at - t.at)::float8 FROM schedule_ticks t \
         JOIN executions e ON e.id = t.execution_id \
         WHERE t.schedule_id = $1 AND t.kind = 'scheduled' ORDER BY t.at LIMIT $2",
    )
    .bind(id)
    .bind(TICKS as i64)
    .fetch_all(&bench.db)
    .await
    .unwrap();
    let caught_up: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM schedule_ticks WHERE schedule_id = $1 AND kind <> 'scheduled'",
    )
    .bind(id)
    .fetch_one(&bench.db)
    .await
    .unwrap();
    let timer = timer.await.unwrap();
    println!(
        "(b) 1 s interval, execution.created_at - tick: {} ({caught_up} ticks caught up \
         or skipped)",
        spread(&lateness)
    );
    println!(
        "    baseline, a tokio timer to each whole second in this process: {}",
        spread(&timer)
    );
}

async fn delivery(bench: &Bench) {
    let one = json!({"nodes": [{"id": "out", "type": "core/output", "config": {"value": 1}}]});
    bench.workflow("source", one.clone()).await;
    let follow = bench
        .workflow(
            "follow",
            json!({"triggers": [{"type": "event", "event": "workflow.execution.succeeded",
                    "filter": "{{ event.payload.workflow == 'source' }}"}],
                   "nodes": [{"id": "out", "type": "core/output", "config": {"value": 1}}]}),
        )
        .await;
    let (status, _) = bench.api(Method::GET, "/api/rules", json!(null)).await;
    let rules = status == StatusCode::OK;
    let mut rule_workflow = None;
    if rules {
        bench.workflow("sink", one.clone()).await;
        let rule = bench
            .ok(
                Method::POST,
                "/api/rules",
                json!({"name": "source succeeded",
                       "trigger": {"event": "workflow.execution.succeeded",
                                   "filter": "{{ event.payload.workflow == 'source' }}"},
                       "actions": [{"type": "trigger_workflow", "workflow": "sink"}]}),
            )
            .await;
        rule_workflow = rule["workflow_id"]
            .as_str()
            .map(|w| w.parse::<Uuid>().unwrap());
    }
    // Started one at a time, a random 0-300 ms apart, so events don't fall in step
    // with the subscribers' polls. The API start's latency is the baseline.
    let mut api = Vec::new();
    for i in 0..DELIVERIES {
        let started = Instant::now();
        let (status, answer) = bench
            .api(
                Method::POST,
                "/api/workflows/source/executions",
                json!({"input": {"i": i}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        api.push(started.elapsed().as_secs_f64());
        tokio::time::sleep(Duration::from_millis(rand::random_range(0..300))).await;
    }
    let started_by_event = "SELECT count(*) FROM executions WHERE workflow_id = $1";
    bench
        .until_count(started_by_event, follow, DELIVERIES)
        .await;
    let delay = "SELECT extract(epoch FROM x.created_at - e.at)::float8 FROM executions x \
         JOIN events e ON x.idempotency_key = 'event:' || e.id::text WHERE x.workflow_id = $1";
    let triggered: Vec<f64> = sqlx::query_scalar(delay)
        .bind(follow)
        .fetch_all(&bench.db)
        .await
        .unwrap();
    println!(
        "(c) event -> event-trigger execution started: {}",
        spread(&triggered)
    );
    println!(
        "    baseline, POST /api/workflows/source/executions until its 201: {}",
        spread(&api)
    );
    match rule_workflow {
        Some(workflow) => {
            bench
                .until_count(started_by_event, workflow, DELIVERIES)
                .await;
            let ruled: Vec<f64> = sqlx::query_scalar(
                "SELECT extract(epoch FROM x.created_at - e.at)::float8 FROM rule_runs r \
                 JOIN executions x ON x.id = r.execution_id JOIN events e ON e.id = r.event_id \
                 WHERE x.workflow_id = $1",
            )
            .bind(workflow)
            .fetch_all(&bench.db)
            .await
            .unwrap();
            println!(
                "    event -> rule actions started (the rule's execution): {}",
                spread(&ruled)
            );
        }
        None => println!(
            "    event -> rule action: not measured, this server has no /api/rules ({status})"
        ),
    }
}

/// The shipped node plugins as `make plugins` bundles them (a rule's actions run as
/// their nodes: `trigger_workflow` is `workflow/start`).
fn bundle() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/nodes");
    for name in ["core", "events", "workflow", "tickets"] {
        std::fs::write(dir.path().join(format!("{name}.wasm")), plugin_wasm(name)).unwrap();
        let manifest = root.join(name).join("manifest.json");
        let manifest = std::fs::read(&manifest).unwrap_or_else(|_| {
            json!({"name": name, "version": "0.1.0", "kind": "node"})
                .to_string()
                .into_bytes()
        });
        std::fs::write(dir.path().join(format!("{name}.json")), manifest).unwrap();
    }
    dir
}

#[tokio::main]
async fn main() {
    let (postgres, pg_data) = durable_postgres();
    postgres.ensure_database("bench").await.unwrap();
    let url = postgres.url("bench");
    let server_url = url.clone();
    let plugins = bundle();
    let bundled = plugins.path().to_path_buf();
    let server = TestServer::start_with(move |config| {
        config.database_url = Some(server_url);
        config.bundled_plugins_dir = bundled;
        config.db_max_connections = 16;
        config.workflow_max_running = 20_000;
    })
    .await;
    let db = PgPoolOptions::new()
        .max_connections(CLIENTS as u32 + 2)
        .connect(&url)
        .await
        .unwrap();
    let (workspace, key) = server.create_workspace("bench").await;
    let bench = Bench {
        server,
        db,
        key,
        workspace: workspace.parse().unwrap(),
    };
    println!(
        "automation benchmarks: durable embedded PostgreSQL, the server in this process \
         ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // `bench-automation [outbox] [ticks] [delivery]`: only those parts (default all).
    let parts: Vec<String> = std::env::args().skip(1).collect();
    let part = |name: &str| parts.is_empty() || parts.iter().any(|p| p == name);
    if part("outbox") {
        outbox(&bench).await;
    }
    if part("ticks") {
        tick_lateness(&bench).await;
    }
    if part("delivery") {
        delivery(&bench).await;
    }

    bench.server.stop().await;
    drop(postgres);
    drop(plugins);
    let _ = std::fs::remove_dir_all(pg_data);
}
