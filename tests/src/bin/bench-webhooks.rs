//! Webhook trigger throughput (issue 20, docs/benchmarks.md): requests to a workflow's
//! webhook URL per second against `GET /healthz` in the same run, the real server in
//! this process on a **durable** embedded PostgreSQL (fsync and synchronous_commit on).
//! The workflow is one `core/transform` node, n8n's "Webhook → Set" (n8n publishes
//! 220 executions/s on 2 vCPU for it).
//!
//! a. `GET /healthz`: the HTTP stack alone, the baseline;
//! b. `respond: accepted`: 202 once the execution is committed; the executions/s
//!    counts until the last one finished;
//! c. the same, signed (`hmac_sha256`): what verifying costs;
//! d. `respond: on_output`: 200 with the output, each request waiting for its execution;
//! e. the same workflow started through the API: the engine's share of (b).
//!
//! Run: `cargo run --release -p agenthost-tests --bin bench-webhooks` (`make bench`).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use agenthost::automation::hooks::Scheme;
use agenthost::automation::hooks::verify::sign;
use agenthost::db::embedded::{EmbeddedOptions, EmbeddedPostgres};
use agenthost_tests::{TestServer, pg_dir, plugin_wasm};
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

const REQUESTS: usize = 2000;
const CLIENTS: usize = 32;

/// A durable PostgreSQL in a scratch directory (startup blocks on its own runtime).
fn durable_postgres() -> (EmbeddedPostgres, std::path::PathBuf) {
    std::thread::spawn(|| {
        let dir = tempfile::Builder::new()
            .prefix("agenthost-bench-hooks-pg-")
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

struct Bench {
    server: TestServer,
    db: PgPool,
    admin: String,
}

impl Bench {
    async fn api(&self, method: Method, path: &str, body: Value) -> Value {
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

    /// A "Webhook → Set" workflow with `trigger`; its URL path and secret.
    async fn hook(&self, slug: &str, trigger: Value) -> (String, String) {
        let definition = json!({"triggers": [trigger], "nodes": [
            {"id": "set", "type": "core/transform",
             "config": {"value": {"order": "{{ input.body.order }}", "seen": true}}}]});
        self.api(
            Method::POST,
            "/api/workflows",
            json!({"slug": slug, "name": slug, "definition": definition}),
        )
        .await;
        let issued = self
            .api(
                Method::POST,
                &format!("/api/workflows/{slug}/hook/rotate"),
                json!({}),
            )
            .await;
        (
            issued["url_path"].as_str().unwrap().to_string(),
            issued["secret"].as_str().unwrap().to_string(),
        )
    }

    /// `count` requests made by `request(i)` from `CLIENTS` clients, each answered with
    /// `expected`; the wall time.
    async fn run<F>(&self, count: usize, expected: StatusCode, request: F) -> Duration
    where
        F: Fn(usize) -> reqwest::RequestBuilder,
    {
        let started = Instant::now();
        futures_util::stream::iter(0..count)
            .map(|i| {
                let request = request(i);
                async move {
                    let response = request.send().await.unwrap();
                    let status = response.status();
                    let text = response.text().await.unwrap();
                    assert_eq!(status, expected, "{text}");
                }
            })
            .buffer_unordered(CLIENTS)
            .collect::<Vec<()>>()
            .await;
        started.elapsed()
    }

    async fn unfinished(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM executions WHERE status = 'running'")
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    /// Wait until every execution finished; the time since `since`.
    async fn drained(&self, since: Instant) -> Duration {
        while self.unfinished().await > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        since.elapsed()
    }
}

fn rate(count: usize, wall: Duration) -> f64 {
    count as f64 / wall.as_secs_f64()
}

#[tokio::main]
async fn main() {
    let (postgres, pg_data) = durable_postgres();
    postgres.ensure_database("bench").await.unwrap();
    let url = postgres.url("bench");
    let server_url = url.clone();
    let server = TestServer::start_with(move |config| {
        config.database_url = Some(server_url);
        config.db_max_connections = 24;
        config.plugin_instances = 128;
        config.workflow_max_running = 20_000;
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
    let unlimited = 60_000;
    let (accepted, _) = bench
        .hook(
            "accepted",
            json!({"type": "webhook", "rate_limit_per_minute": unlimited}),
        )
        .await;
    let (signed, secret) = bench
        .hook(
            "signed",
            json!({"type": "webhook", "rate_limit_per_minute": unlimited, "signature": {}}),
        )
        .await;
    let (on_output, _) = bench
        .hook(
            "on-output",
            json!({"type": "webhook", "rate_limit_per_minute": unlimited, "respond": "on_output"}),
        )
        .await;
    let client = &bench.server.client;
    let post = |path: &str, i: usize| {
        client
            .post(bench.server.url(path))
            .header("content-type", "application/json")
            .body(format!(r#"{{"order": {i}}}"#))
    };

    // Warm-up: connections, plugin instances, the definition cache.
    bench
        .run(200, StatusCode::ACCEPTED, |i| post(&accepted, i))
        .await;
    bench.drained(Instant::now()).await;

    // (a) the baseline.
    let healthz = bench
        .run(REQUESTS * 5, StatusCode::OK, |_| {
            client.get(bench.server.url("/healthz"))
        })
        .await;
    let healthz_rate = rate(REQUESTS * 5, healthz);

    // (b) accepted.
    let started = Instant::now();
    let answered = bench
        .run(REQUESTS, StatusCode::ACCEPTED, |i| post(&accepted, i))
        .await;
    let finished = bench.drained(started).await;

    // (c) accepted, signed.
    let started = Instant::now();
    let signed_answered = bench
        .run(REQUESTS, StatusCode::ACCEPTED, |i| {
            let body = format!(r#"{{"order": {i}}}"#);
            let now = chrono::Utc::now().timestamp();
            client
                .post(bench.server.url(&signed))
                .header("content-type", "application/json")
                .header("x-webhook-timestamp", now.to_string())
                .header(
                    "x-webhook-signature",
                    sign(Scheme::HmacSha256, &secret, "", now, body.as_bytes()),
                )
                .body(body)
        })
        .await;
    let signed_finished = bench.drained(started).await;

    // (d) on_output.
    let waited = bench
        .run(REQUESTS, StatusCode::OK, |i| post(&on_output, i))
        .await;

    // (e) the same workflow started through the API: what the webhook layer adds.
    let started = Instant::now();
    let api_answered = bench
        .run(REQUESTS, StatusCode::CREATED, |i| {
            bench
                .server
                .request(
                    Method::POST,
                    "/api/workflows/accepted/executions",
                    &bench.admin,
                )
                .json(&json!({"input": {"body": {"order": i}}}))
        })
        .await;
    let api_finished = bench.drained(started).await;

    let executions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM executions WHERE status = 'succeeded' AND idempotency_key IS NULL",
    )
    .fetch_one(&bench.db)
    .await
    .unwrap();
    println!(
        "webhook trigger benchmarks: durable embedded PostgreSQL, server in this process, \
         {CLIENTS} clients, {REQUESTS} requests per run ({executions} executions succeeded)"
    );
    println!(
        "(a) GET /healthz: {healthz_rate:.0} requests/s (the baseline, {} requests)",
        REQUESTS * 5
    );
    let line = |what: &str, answered: Duration, finished: Option<Duration>| {
        let answered_rate = rate(REQUESTS, answered);
        match finished {
            Some(finished) => println!(
                "{what}: {answered_rate:.0} answered/s, {:.0} executions/s until the last \
                 finished; ratio to /healthz {:.3} (answered), {:.3} (executions)",
                rate(REQUESTS, finished),
                answered_rate / healthz_rate,
                rate(REQUESTS, finished) / healthz_rate
            ),
            None => println!(
                "{what}: {answered_rate:.0} executions/s answered with their output; \
                 ratio to /healthz {:.3}",
                answered_rate / healthz_rate
            ),
        }
    };
    line("(b) respond: accepted (202)", answered, Some(finished));
    line(
        "(c) accepted, hmac_sha256 signed",
        signed_answered,
        Some(signed_finished),
    );
    line("(d) respond: on_output (200)", waited, None);
    line(
        "(e) the same workflow through POST /api/workflows/{w}/executions (201)",
        api_answered,
        Some(api_finished),
    );
    println!("    n8n publishes 220 executions/s on 2 vCPU for Webhook → Set");

    bench.server.stop().await;
    drop(postgres);
    let _ = std::fs::remove_dir_all(pg_data);
}
