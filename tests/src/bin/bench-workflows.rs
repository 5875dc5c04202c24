//! Workflow engine benchmarks (issue 12, docs/benchmarks.md), against the real server
//! in this process, the bundled `core` node plugin and a **durable** embedded
//! PostgreSQL started for the run (fsync, synchronous_commit and full_page_writes on,
//! unlike the test cluster):
//!
//! a. 40 sequential `core/transform` nodes end to end (`?wait=`), goal <= 0.2 s;
//! b. executions per second of a 3-node chain, 2000 executions started by 32 clients,
//!    next to the same run's durable commits per second; goal >= 500/s;
//! c. where one step's time goes: the chain's per-node time taken apart with the
//!    `node_runs` timestamps, next to a bare commit and a bare plugin instance call
//!    measured in the same run;
//! d. the process's RSS with 10 000 executions parked on `core/approval` (waiting in
//!    the database), against its RSS before they started.
//!
//! Run: `cargo run --release -p agenthost-tests --bin bench-workflows` (`make bench`).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use agenthost::capabilities::CallGrants;
use agenthost::db::embedded::{EmbeddedOptions, EmbeddedPostgres};
use agenthost::runtime::bindings::CallContext;
use agenthost::runtime::{self, EngineConfig, Limits, LoadedPlugin, PluginKind, WasmEngine};
use agenthost_tests::{TestServer, pg_dir, plugin_wasm};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

const CHAIN: usize = 40;
const CHAIN_RUNS: usize = 20;
const THROUGHPUT_EXECUTIONS: usize = 2000;
const CLIENTS: usize = 32;
const PARKED: usize = 10_000;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

struct Bench {
    server: TestServer,
    db: PgPool,
    admin: String,
}

impl Bench {
    async fn send(&self, method: Method, path: &str, body: Value) -> Value {
        let response = self
            .server
            .request(method.clone(), path, &self.admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap()
    }

    async fn save(&self, slug: &str, definition: Value) {
        self.send(
            Method::POST,
            "/api/workflows",
            json!({"slug": slug, "name": slug, "definition": definition}),
        )
        .await;
    }

    /// Start `count` executions of `slug` from `CLIENTS` concurrent clients.
    async fn start_many(&self, slug: &str, count: usize) {
        let path = format!("/api/workflows/{slug}/executions");
        futures_util::stream::iter(0..count)
            .map(|i| {
                let path = path.clone();
                async move {
                    self.send(Method::POST, &path, json!({"input": {"i": i}}))
                        .await;
                }
            })
            .buffer_unordered(CLIENTS)
            .collect::<Vec<()>>()
            .await;
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    /// Wait until no execution of any workflow is running (none are parked yet).
    async fn drain(&self) {
        while self
            .count("SELECT count(*) FROM executions WHERE status = 'running'")
            .await
            > 0
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn chain(length: usize) -> Value {
    let nodes: Vec<Value> = (0..length)
        .map(|i| json!({"id": format!("n{i}"), "type": "core/transform", "config": {"value": i}}))
        .collect();
    let edges: Vec<Value> = (1..length)
        .map(|i| json!({"from": format!("n{}", i - 1), "to": format!("n{i}")}))
        .collect();
    json!({"nodes": nodes, "edges": edges})
}

/// A durable PostgreSQL in a scratch directory (startup blocks on its own runtime).
fn durable_postgres() -> (EmbeddedPostgres, std::path::PathBuf) {
    std::thread::spawn(|| {
        let dir = tempfile::Builder::new()
            .prefix("agenthost-bench-wf-pg-")
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

/// Baseline: p50 of a bare one-row UPDATE transaction, and durable commits per second
/// from `clients` connections.
async fn commit_baselines(url: &str, clients: usize) -> (Duration, f64) {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(clients as u32)
        .connect(url)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE bench_commit (id int PRIMARY KEY, n int NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO bench_commit SELECT g, 0 FROM generate_series(0, 63) g")
        .execute(&pool)
        .await
        .unwrap();
    let mut samples = Vec::new();
    for i in 0..600 {
        let started = Instant::now();
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("UPDATE bench_commit SET n = n + 1 WHERE id = 0")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        if i >= 100 {
            samples.push(started.elapsed());
        }
    }
    let per_client = 300;
    let started = Instant::now();
    futures_util::future::join_all((0..clients).map(|c| {
        let pool = pool.clone();
        async move {
            for _ in 0..per_client {
                let mut tx = pool.begin().await.unwrap();
                sqlx::query("UPDATE bench_commit SET n = n + 1 WHERE id = $1")
                    .bind(c as i32)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
        }
    }))
    .await;
    let rate = (clients * per_client) as f64 / started.elapsed().as_secs_f64();
    pool.close().await;
    (percentile(&mut samples, 0.5), rate)
}

/// Baseline: p50 of one `core/transform` call in a fresh instance on a thread of its
/// own, as the engine calls nodes, without the registry, database or templates.
async fn plugin_call_baseline() -> Duration {
    let engine = Arc::new(WasmEngine::new(&EngineConfig::default()).unwrap());
    let component = runtime::compile(&engine, &plugin_wasm("core")).unwrap();
    let core = Arc::new(
        LoadedPlugin::load(
            &engine,
            &component,
            "core",
            "0.1.0",
            PluginKind::Node,
            Limits::default(),
        )
        .await
        .unwrap(),
    );
    let mut samples = Vec::new();
    for i in 0..2200 {
        let context = CallContext {
            workspace_id: "bench".into(),
            plugin: "core".into(),
            version: "0.1.0".into(),
            request_id: format!("bench/{i}"),
        };
        let started = Instant::now();
        let outcome = core
            .clone()
            .call_node_isolated(
                engine.clone(),
                context,
                CallGrants::default(),
                "transform".into(),
                r#"{"value":1}"#.into(),
                r#"{"input":{},"nodes":{}}"#.into(),
            )
            .await;
        outcome.result.unwrap();
        if i >= 200 {
            samples.push(started.elapsed());
        }
    }
    percentile(&mut samples, 0.5)
}

#[derive(sqlx::FromRow)]
struct Step {
    /// Claim to the start of the completing transaction. The engine claims a successor
    /// in its predecessor's completing commit, so this spans a whole step.
    in_node_ms: f64,
    /// The previous node's completing transaction start to this node's claim (0 when
    /// it was handed over in that transaction).
    gap_ms: Option<f64>,
}

#[tokio::main]
async fn main() {
    let (postgres, pg_data) = durable_postgres();
    postgres.ensure_database("bench").await.unwrap();
    let url = postgres.url("bench");
    let fsync: String = {
        let pool = PgPool::connect(&url).await.unwrap();
        let value = sqlx::query_scalar(
            "SELECT current_setting('fsync') || '/' || current_setting('synchronous_commit')",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        pool.close().await;
        value
    };
    let server_url = url.clone();
    let server = TestServer::start_with(move |config| {
        config.database_url = Some(server_url);
        config.db_max_connections = 24;
        config.plugin_instances = 128;
        config.workflow_max_running = 20_000;
        config.plugin_timeout = Duration::from_secs(10);
    })
    .await;
    let db = PgPool::connect(&url).await.unwrap();
    let (workspace, _) = server.create_workspace("bench").await;
    let (_, admin) = server.create_key(&workspace, "admin").await;
    let manifest = json!({"name": "core", "version": "0.1.0", "kind": "node"});
    let response = server
        .upload_plugin(&manifest, plugin_wasm("core"), true)
        .await;
    assert!(response.status().is_success());
    let bench = Bench { server, db, admin };
    let workers = agenthost::Config::for_data_dir(std::env::temp_dir()).workflow_workers;
    println!(
        "workflow benchmarks: durable embedded PostgreSQL (fsync/synchronous_commit = {fsync}), \
         {workers} workflow workers, server in this process"
    );

    // (c) baselines first, on a quiet server.
    let (commit_p50, commits_per_s) = commit_baselines(&url, 16).await;
    let call_p50 = plugin_call_baseline().await;

    // (a) 40 sequential nodes.
    bench.save("chain40", chain(CHAIN)).await;
    let mut samples = Vec::new();
    let mut ids = Vec::new();
    for run in 0..CHAIN_RUNS + 3 {
        let started = Instant::now();
        let execution = bench
            .send(
                Method::POST,
                "/api/workflows/chain40/executions?wait=30s",
                json!({"input": {}}),
            )
            .await;
        let elapsed = started.elapsed();
        assert_eq!(execution["status"], "succeeded", "{execution}");
        if run >= 3 {
            samples.push(elapsed);
            ids.push(execution["id"].as_str().unwrap().to_string());
        }
    }
    let chain_p50 = percentile(&mut samples, 0.5);
    let chain_p95 = percentile(&mut samples, 0.95);
    let chain_min = samples[0];
    let ids: Vec<uuid::Uuid> = ids.iter().map(|id| id.parse().unwrap()).collect();
    let steps: Vec<Step> = sqlx::query_as(
        "SELECT extract(epoch FROM finished_at - started_at)::float8 * 1000 AS in_node_ms, \
                extract(epoch FROM started_at - lag(finished_at) OVER w)::float8 * 1000 AS gap_ms \
         FROM node_runs WHERE execution_id = ANY($1) \
         WINDOW w AS (PARTITION BY execution_id ORDER BY started_at)",
    )
    .bind(&ids)
    .fetch_all(&bench.db)
    .await
    .unwrap();
    let in_node = steps.iter().map(|s| s.in_node_ms).sum::<f64>() / steps.len() as f64;
    let gaps: Vec<f64> = steps.iter().filter_map(|s| s.gap_ms).collect();
    let gap = gaps.iter().sum::<f64>() / gaps.len() as f64;
    let step = ms(chain_p50) / CHAIN as f64;

    // (b) throughput of a trivial 3-node workflow.
    bench.save("three", chain(3)).await;
    bench.start_many("three", 100).await; // warm-up
    bench.drain().await;
    let started = Instant::now();
    bench.start_many("three", THROUGHPUT_EXECUTIONS).await;
    let started_all = started.elapsed();
    bench.drain().await;
    let throughput_wall = started.elapsed();
    let per_second = THROUGHPUT_EXECUTIONS as f64 / throughput_wall.as_secs_f64();

    // (d) RSS with 10 000 executions waiting on an approval.
    bench
        .save(
            "parked",
            json!({"nodes": [
                {"id": "ask", "type": "core/approval", "config": {"message": "bench"}},
                {"id": "done", "type": "core/transform", "config": {"value": 1}}
            ], "edges": [{"from": "ask", "to": "done", "branch": "approved"}]}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_kib();
    let parking = Instant::now();
    bench.start_many("parked", PARKED).await;
    loop {
        let pending = bench
            .count("SELECT count(*) FROM approvals WHERE status = 'pending'")
            .await;
        if pending as usize >= PARKED {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let parked_in = parking.elapsed();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let rss_parked = rss_kib();
    let running = bench
        .count("SELECT count(*) FROM executions WHERE status = 'waiting'")
        .await;
    let waiting = bench
        .count("SELECT count(*) FROM node_runs WHERE status = 'waiting'")
        .await;

    println!();
    println!(
        "(a) {CHAIN} sequential core/transform nodes, end to end (POST ?wait=), {CHAIN_RUNS} runs"
    );
    println!(
        "    p50 {:.1} ms  p95 {:.1} ms  min {:.1} ms   goal <= 200 ms: {}",
        ms(chain_p50),
        ms(chain_p95),
        ms(chain_min),
        if ms(chain_p50) <= 200.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    println!("    published: Hatchet 1.22 s, Windmill 2.09 s, Temporal 2.97 s");
    println!("(b) 3-node chain, {THROUGHPUT_EXECUTIONS} executions from {CLIENTS} clients");
    println!(
        "    {per_second:.0} executions/s (all started in {:.2} s, all finished in {:.2} s)   goal >= 500/s: {}   n8n publishes 220/s on 2 vCPU",
        started_all.as_secs_f64(),
        throughput_wall.as_secs_f64(),
        if per_second >= 500.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "    baseline: {commits_per_s:.0} durable one-row commits/s from 16 connections; ratio executions/commits {:.3}",
        per_second / commits_per_s
    );
    println!("(c) one step of the chain: {step:.2} ms (p50 end to end / {CHAIN})");
    println!(
        "    claim -> completing transaction (the successor is claimed in its predecessor's commit, so this is a whole step: that commit, outputs read, config rendered, plugin call) {in_node:.2} ms"
    );
    println!(
        "    between a node's completing transaction and its successor's claim {gap:.2} ms (0: handed over in the same commit)"
    );
    println!(
        "    baselines: bare commit (BEGIN; UPDATE 1 row; COMMIT) p50 {:.3} ms, bare core/transform call (fresh instance, own thread) p50 {:.3} ms",
        ms(commit_p50),
        ms(call_p50)
    );
    println!(
        "    ratios: step / commit {:.1}, step / plugin call {:.1}, between / commit {:.1}, in-node / plugin call {:.1}",
        step / ms(commit_p50),
        step / ms(call_p50),
        gap / ms(commit_p50),
        in_node / ms(call_p50)
    );
    println!(
        "(d) {PARKED} executions parked on core/approval ({running} executions waiting, {waiting} node runs waiting, all parked in {:.1} s)",
        parked_in.as_secs_f64()
    );
    println!(
        "    RSS of this process (server in-process) {:.1} MiB before, {:.1} MiB parked: {:+.1} MiB, {:.2} KiB per execution",
        rss_before as f64 / 1024.0,
        rss_parked as f64 / 1024.0,
        (rss_parked as f64 - rss_before as f64) / 1024.0,
        (rss_parked as f64 - rss_before as f64) / PARKED as f64
    );

    bench.server.stop().await;
    drop(postgres);
    let _ = std::fs::remove_dir_all(pg_data);
}
