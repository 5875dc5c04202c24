//! Capability benchmarks against the real server and the embedded PostgreSQL, each
//! reported with a baseline measured in the same run (docs/benchmarks.md):
//!
//! 1. database capability round trip vs the same query issued by the host;
//! 2. vector search p50 and recall@10 over 100k x 384 vs exact search;
//! 3. local embedding throughput, batched vs one text at a time.
//!
//! Run: `cargo run --release -p agenthost-tests --bin bench-capabilities` (`make bench`).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use agenthost::embeddings::minilm::MiniLm;
use agenthost::embeddings::{Embeddings, Provider};
use agenthost::llm::UsageKey;
use agenthost::vector::{CollectionKey, Document, Query, VectorStore};
use agenthost_tests::{ADMIN_TOKEN, TestServer, model_dir, plugin_wasm};
use rand::{Rng, SeedableRng};
use serde_json::json;
use sqlx::PgPool;

#[tokio::main]
async fn main() {
    let only: Option<String> = std::env::args().nth(1);
    let wants = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if wants("database") {
        database().await;
    }
    if wants("vector") {
        vector().await;
    }
    if wants("embedding") {
        embedding();
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

async fn time_n<F, Fut>(n: usize, mut f: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        f().await;
        samples.push(started.elapsed());
    }
    samples
}

async fn database() {
    let server = TestServer::start().await;
    let (workspace, _) = server.create_workspace("bench").await;
    let (_, key) = server.create_key(&workspace, "member").await;
    let manifest = json!({
        "name": "sqlprobe", "version": "1.0.0", "kind": "tool",
        "capabilities": { "database": { "tables": { "customers": "read" } } },
    });
    let response = server
        .upload_plugin(&manifest, plugin_wasm("sqlprobe"), true)
        .await;
    assert!(response.status().is_success());
    let response = server
        .request(
            reqwest::Method::PUT,
            "/api/admin/plugins/sqlprobe/versions/1.0.0/grants",
            ADMIN_TOKEN,
        )
        .json(&manifest["capabilities"])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let pool = PgPool::connect(&server.database_url).await.unwrap();
    let workspace_id: uuid::Uuid = workspace.parse().unwrap();
    for i in 0..200 {
        sqlx::query(
            "INSERT INTO data.customers (workspace_id, external_id, name, segment, created_on)
             VALUES ($1, $2, $3, $4, DATE '2026-01-01')",
        )
        .bind(workspace_id)
        .bind(format!("c{i:03}"))
        .bind(format!("Customer {i}"))
        .bind(["smb", "mid", "enterprise"][i % 3])
        .execute(&pool)
        .await
        .unwrap();
    }
    let sql = "SELECT external_id, name, segment FROM data.customers ORDER BY external_id LIMIT 10";
    let host_sql = "SELECT external_id, name, segment FROM data.customers WHERE workspace_id = $1 ORDER BY external_id LIMIT 10";
    let (n, warmup) = (2000, 200);

    let direct = || async {
        let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(host_sql)
            .bind(workspace_id)
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(rows.len(), 10);
    };
    let through_plugin = |statements: serde_json::Value| {
        let server = &server;
        let key = &key;
        async move {
            let input = json!({ "statements": statements });
            let response = server.call_tool(key, "sqlprobe", "run", &input).await;
            assert!(response.status().is_success());
            response.bytes().await.unwrap();
        }
    };
    let query = json!([{ "sql": sql }]);
    time_n(warmup, direct).await;
    time_n(warmup, || through_plugin(query.clone())).await;
    time_n(warmup, || through_plugin(json!([]))).await;
    let mut host = time_n(n, direct).await;
    let mut plugin = time_n(n, || through_plugin(query.clone())).await;
    let mut empty = time_n(n, || through_plugin(json!([]))).await;

    let host_p50 = micros(percentile(&mut host, 0.5));
    let plugin_p50 = micros(percentile(&mut plugin, 0.5));
    let empty_p50 = micros(percentile(&mut empty, 0.5));
    let capability = plugin_p50 - empty_p50;
    println!("== database capability ({n} sequential calls each, p50 / p95)");
    println!(
        "host query (sqlx, same SELECT, explicit workspace filter): {host_p50:.1} us / {:.1} us",
        micros(percentile(&mut host, 0.95))
    );
    println!(
        "REST tool call running that SELECT through the capability: {plugin_p50:.1} us / {:.1} us",
        micros(percentile(&mut plugin, 0.95))
    );
    println!(
        "REST tool call with no statement (HTTP + auth + instance): {empty_p50:.1} us / {:.1} us",
        micros(percentile(&mut empty, 0.95))
    );
    println!(
        "capability round trip = difference: {capability:.1} us; ratio to the host query: {:.2}",
        capability / host_p50
    );
    drop(pool);
    server.stop().await;
}

/// Clustered unit vectors, closer to real embeddings than uniform noise (which has no
/// neighbourhood structure for HNSW to exploit).
fn clustered_vectors(rng: &mut rand::rngs::StdRng, n: usize, dims: usize) -> Vec<Vec<f32>> {
    let centers: Vec<Vec<f32>> = (0..1000)
        .map(|_| (0..dims).map(|_| rng.random_range(-1.0f32..1.0)).collect())
        .collect();
    (0..n)
        .map(|_| {
            let center = &centers[rng.random_range(0..centers.len())];
            unit(
                center
                    .iter()
                    .map(|c| c + rng.random_range(-0.6f32..0.6))
                    .collect(),
            )
        })
        .collect()
}

fn unit(v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

async fn vector() {
    const N: usize = 100_000;
    const DIMS: usize = 384;
    const QUERIES: usize = 200;
    let server = TestServer::start().await;
    let (workspace, _) = server.create_workspace("bench").await;
    let pool = PgPool::connect(&server.database_url).await.unwrap();
    let llm = Arc::new(
        agenthost::llm::Llm::from_config(&agenthost_tests::test_config().await, pool.clone())
            .unwrap(),
    );
    let embeddings = Arc::new(Embeddings::new(
        Provider::Local {
            model: agenthost::embeddings::LocalModel::MiniLm,
            model_dir: model_dir(),
        },
        llm,
        pool.clone(),
    ));
    let store = VectorStore::new(pool.clone(), embeddings);
    let key = CollectionKey {
        workspace: workspace.parse().unwrap(),
        namespace: "bench".into(),
        name: "docs".into(),
    };
    let usage = UsageKey {
        workspace: None,
        plugin: None,
        agent: None,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let vectors = clustered_vectors(&mut rng, N, DIMS);

    // Bulk load without the index, then build it once (how one would load 100k). The
    // first upsert creates the collection (and the index, if missing): drop it after.
    let started = Instant::now();
    for (batch, chunk) in vectors.chunks(256).enumerate() {
        if batch == 1 {
            sqlx::query("DROP INDEX vector_documents_hnsw_384")
                .execute(&pool)
                .await
                .unwrap();
        }
        let documents = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| Document {
                id: format!("d{}", batch * 256 + i),
                text: None,
                vector: Some(v.clone()),
                metadata: json!({}),
            })
            .collect();
        store.upsert(&usage, &key, documents).await.unwrap();
    }
    let load = started.elapsed();
    let started = Instant::now();
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET maintenance_work_mem = '1GB'")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query(
        "CREATE INDEX vector_documents_hnsw_384 ON vector_documents
           USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE dims = 384",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query("ANALYZE vector_documents")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    let build = started.elapsed();

    let queries: Vec<Vec<f32>> = (0..QUERIES)
        .map(|_| {
            let base = &vectors[rng.random_range(0..N)];
            unit(
                base.iter()
                    .map(|x| x + rng.random_range(-0.05f32..0.05))
                    .collect(),
            )
        })
        .collect();
    let search = |q: &Vec<f32>| {
        store.search(
            &usage,
            &key,
            Query {
                vector: Some(q.clone()),
                k: 10,
                ..Query::default()
            },
        )
    };
    for q in queries.iter().take(20) {
        search(q).await.unwrap();
    }
    let mut hnsw = Vec::new();
    let mut recall_hits = 0;
    for q in &queries {
        let started = Instant::now();
        let found = search(q).await.unwrap();
        hnsw.push(started.elapsed());
        let exact = exact_top10(&vectors, q);
        recall_hits += found
            .iter()
            .filter(|m| exact.contains(&m.id[1..].parse::<usize>().unwrap()))
            .count();
    }
    // Baseline: the same query as an exact scan in PostgreSQL (index off).
    let mut exact_pg = Vec::new();
    for q in queries.iter().take(30) {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("SET LOCAL enable_indexscan = off")
            .execute(&mut *tx)
            .await
            .unwrap();
        let started = Instant::now();
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM vector_documents WHERE dims = 384
              ORDER BY embedding::vector(384) <=> $1::vector(384) LIMIT 10",
        )
        .bind(pgvector::Vector::from(q.clone()))
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        exact_pg.push(started.elapsed());
        assert_eq!(rows.len(), 10);
    }
    let recall = recall_hits as f64 / (QUERIES * 10) as f64;
    let hnsw_p50 = percentile(&mut hnsw, 0.5);
    let exact_p50 = percentile(&mut exact_pg, 0.5);
    println!("== vector search ({N} x {DIMS}, clustered synthetic unit vectors, k = 10)");
    println!(
        "load {N} via VectorStore::upsert (256/batch, no index): {:.1} s; HNSW build (m 16, ef_construction 64): {:.1} s",
        load.as_secs_f64(),
        build.as_secs_f64()
    );
    println!(
        "HNSW search through VectorStore::search, {QUERIES} queries: p50 {:.2} ms, p95 {:.2} ms, recall@10 {recall:.3}",
        hnsw_p50.as_secs_f64() * 1e3,
        percentile(&mut hnsw, 0.95).as_secs_f64() * 1e3
    );
    println!(
        "baseline exact scan in PostgreSQL: p50 {:.1} ms; ratio HNSW / exact: {:.3}",
        exact_p50.as_secs_f64() * 1e3,
        hnsw_p50.as_secs_f64() / exact_p50.as_secs_f64()
    );
    drop(pool);
    server.stop().await;
}

fn exact_top10(vectors: &[Vec<f32>], q: &[f32]) -> Vec<usize> {
    let mut scored: Vec<(f32, usize)> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| (v.iter().zip(q).map(|(a, b)| a * b).sum::<f32>(), i))
        .collect();
    scored.select_nth_unstable_by(10, |a, b| b.0.total_cmp(&a.0));
    scored.truncate(10);
    scored.into_iter().map(|(_, i)| i).collect()
}

fn embedding() {
    let model = MiniLm::load(&model_dir()).unwrap();
    let subjects = [
        "my order",
        "the invoice",
        "a refund",
        "the password",
        "my parcel",
        "the subscription",
    ];
    let problems = [
        "has not arrived yet",
        "was charged twice this month and I would like to understand why",
        "is wrong",
        "cannot be changed from the settings page even after I log out and in again",
        "needs to be cancelled",
    ];
    let texts: Vec<String> = (0..480)
        .map(|i| {
            format!(
                "Hello, {} {} (ticket {i})",
                subjects[i % 6],
                problems[i % 5]
            )
        })
        .collect();
    model.embed(&texts[..32]).unwrap();
    let started = Instant::now();
    model.embed(&texts).unwrap();
    let batched = texts.len() as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for text in &texts[..120] {
        model.embed(std::slice::from_ref(text)).unwrap();
    }
    let single = 120.0 / started.elapsed().as_secs_f64();
    println!("== local embeddings (all-MiniLM-L6-v2, candle, CPU, 8-25 words per text)");
    println!("batched (32 per pass): {batched:.0} texts/s");
    println!(
        "baseline one text per pass: {single:.0} texts/s; ratio {:.2}",
        batched / single
    );
}
