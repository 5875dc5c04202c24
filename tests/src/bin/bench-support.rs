//! Knowledge-base benchmarks (issue 13, docs/benchmarks.md), against the real server
//! in this process, the local all-MiniLM-L6-v2 and the test cluster:
//!
//! a. retrieval quality on tests/data/support-kb (54 articles, 155 graded queries):
//!    recall@5 and nDCG@10 at article level for full text, vector and hybrid, overall
//!    and per query kind;
//! b. whether answers refuse what the knowledge base does not cover: the best
//!    passage's similarity for answerable and for unanswerable questions, and the
//!    share on the right side of `answer::MIN_SIMILARITY`;
//! c. indexing throughput (articles and chunks per second, embedding included);
//! d. search latency p50/p95 per mode with the collection grown to 10 000 chunks.
//!
//! Run: `cargo run --release -p agenthost-tests --bin bench-support` (`make bench`).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use agenthost_support::answer;
use agenthost_tests::TestServer;
use reqwest::Method;
use serde_json::{Value, json};

const MODES: [&str; 3] = ["full_text", "vector", "hybrid"];
const LATENCY_CHUNKS: i64 = 10_000;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/support-kb")
}

fn read_json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(data_dir().join(name)).unwrap()).unwrap()
}

fn markdown_files() -> Vec<String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(data_dir().join("articles"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

async fn wait_idle(server: &TestServer, key: &str) -> Value {
    loop {
        let body: Value = server
            .send(key, Method::GET, "/api/kb/index", None)
            .await
            .json()
            .await
            .unwrap();
        if body["idle"] == true {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn search(server: &TestServer, key: &str, query: &str, mode: &str, k: u32) -> Vec<Value> {
    let body: Value = server
        .send(
            key,
            Method::POST,
            "/api/kb/search",
            Some(json!({ "query": query, "mode": mode, "k": k })),
        )
        .await
        .json()
        .await
        .unwrap();
    body["results"].as_array().unwrap().clone()
}

fn distinct_slugs(results: &[Value]) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for r in results {
        let slug = r["slug"].as_str().unwrap().to_string();
        if !seen.contains(&slug) {
            seen.push(slug);
        }
    }
    seen
}

/// recall@5 over every judged article (grade >= 1) and nDCG@10 with gains 2^g - 1.
fn judge(ranked: &[String], relevant: &HashMap<String, u64>) -> (f64, f64) {
    let found = ranked
        .iter()
        .take(5)
        .filter(|s| relevant.contains_key(*s))
        .count();
    let recall = found as f64 / relevant.len() as f64;
    let gain = |g: u64| 2f64.powi(g as i32) - 1.0;
    let dcg: f64 = ranked
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, s)| gain(*relevant.get(s).unwrap_or(&0)) / (i as f64 + 2.0).log2())
        .sum();
    let mut ideal: Vec<u64> = relevant.values().copied().collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, g)| gain(*g) / (i as f64 + 2.0).log2())
        .sum();
    (recall, if idcg > 0.0 { dcg / idcg } else { 0.0 })
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let server = TestServer::start_with(|config| config.db_max_connections = 16).await;
    let (_, key) = server.create_workspace("bench-kb").await;

    // c. indexing throughput.
    let files = markdown_files();
    let items: Vec<Value> = files
        .iter()
        .map(|m| json!({ "markdown": m, "status": "published" }))
        .collect();
    let started = Instant::now();
    let response = server
        .send(
            &key,
            Method::POST,
            "/api/kb/import",
            Some(Value::Array(items)),
        )
        .await;
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap()
    );
    let index = wait_idle(&server, &key).await;
    let took = started.elapsed().as_secs_f64();
    let chunks = index["chunks"].as_i64().unwrap();
    println!("== indexing (import, chunk, embed with the local model, write)");
    println!(
        "{} articles, {chunks} chunks in {took:.2} s: {:.1} articles/s, {:.1} chunks/s",
        files.len(),
        files.len() as f64 / took,
        chunks as f64 / took
    );

    // a. retrieval quality.
    let queries = read_json("queries.json");
    let queries = queries.as_array().unwrap();
    let mut totals: HashMap<(&str, String), (f64, f64, usize)> = HashMap::new();
    let mut best_answerable: Vec<f64> = Vec::new();
    for query in queries {
        let text = query["query"].as_str().unwrap();
        let kind = query["kind"].as_str().unwrap().to_string();
        let relevant: HashMap<String, u64> = query["relevant"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .collect();
        for mode in MODES {
            let results = search(&server, &key, text, mode, 30).await;
            let (recall, ndcg) = judge(&distinct_slugs(&results), &relevant);
            for group in [kind.clone(), "all".to_string()] {
                let entry = totals.entry((mode, group)).or_insert((0.0, 0.0, 0));
                entry.0 += recall;
                entry.1 += ndcg;
                entry.2 += 1;
            }
            if mode == "hybrid" {
                let best = results
                    .iter()
                    .filter_map(|r| r["similarity"].as_f64())
                    .fold(f64::MIN, f64::max);
                best_answerable.push(best);
            }
        }
    }
    println!(
        "\n== retrieval quality ({} queries, article level)",
        queries.len()
    );
    println!(
        "{:<12} {:<10} {:>9} {:>9}",
        "kind", "mode", "recall@5", "nDCG@10"
    );
    for group in ["all", "keyword", "paraphrase", "mixed"] {
        for mode in MODES {
            let (recall, ndcg, n) = totals[&(mode, group.to_string())];
            println!(
                "{group:<12} {mode:<10} {:>9.3} {:>9.3}",
                recall / n as f64,
                ndcg / n as f64
            );
        }
    }

    // b. refusing what isn't covered.
    let mut unanswerable: Vec<String> = read_json("unanswerable.json")
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["query"].as_str().unwrap().to_string())
        .collect();
    for group in read_json("gaps.json").as_array().unwrap() {
        unanswerable.extend(
            group
                .as_array()
                .unwrap()
                .iter()
                .map(|q| q.as_str().unwrap().to_string()),
        );
    }
    let mut best_unanswerable = Vec::new();
    for question in &unanswerable {
        let results = search(&server, &key, question, "hybrid", 12).await;
        best_unanswerable.push(
            results
                .iter()
                .filter_map(|r| r["similarity"].as_f64())
                .fold(f64::MIN, f64::max),
        );
    }
    let threshold = f64::from(answer::MIN_SIMILARITY);
    let answered = best_answerable.iter().filter(|s| **s >= threshold).count();
    let refused = best_unanswerable.iter().filter(|s| **s < threshold).count();
    println!("\n== answerability (best passage similarity, hybrid)");
    for (name, samples) in [
        ("answerable", &mut best_answerable),
        ("unanswerable", &mut best_unanswerable),
    ] {
        println!(
            "{name:<13} n={:<4} p10 {:.3}  p50 {:.3}  p90 {:.3}",
            samples.len(),
            percentile(samples, 0.1),
            percentile(samples, 0.5),
            percentile(samples, 0.9)
        );
    }
    println!(
        "at MIN_SIMILARITY {threshold:.2}: {answered}/{} answerable pass, {refused}/{} unanswerable refused",
        best_answerable.len(),
        best_unanswerable.len()
    );
    for t in [0.30, 0.40, 0.45, 0.50] {
        let pass = best_answerable.iter().filter(|s| **s >= t).count();
        let refuse = best_unanswerable.iter().filter(|s| **s < t).count();
        println!("  at {t:.2}: {pass} pass, {refuse} refused");
    }

    // d. latency at 10 000 chunks: copies of the articles under new slugs (same text,
    // so their embeddings come from the cache) until the collection is that big.
    let mut copy = 0;
    let mut total = chunks;
    while total < LATENCY_CHUNKS {
        copy += 1;
        let items: Vec<Value> = files
            .iter()
            .map(|m| {
                let (fields, body) = agenthost::support::kb::front_matter(m);
                let field = |name: &str| {
                    fields
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                        .unwrap_or(Value::Null)
                };
                json!({
                    "title": field("title"),
                    "slug": format!("{}-copy-{copy}", field("slug").as_str().unwrap()),
                    "category": field("category"),
                    "body": body,
                    "status": "published",
                })
            })
            .collect();
        let response = server
            .send(
                &key,
                Method::POST,
                "/api/kb/import",
                Some(Value::Array(items)),
            )
            .await;
        assert!(response.status().is_success());
        total = wait_idle(&server, &key).await["chunks"].as_i64().unwrap();
    }
    println!("\n== search latency at {total} chunks (REST round trip, query embedded each time)");
    for mode in MODES {
        let mut samples = Vec::new();
        for (i, query) in queries.iter().enumerate() {
            // A fresh text each time, so the query embedding is computed, not cached.
            let text = format!("{} {i}{mode}", query["query"].as_str().unwrap());
            let started = Instant::now();
            search(&server, &key, &text, mode, 10).await;
            samples.push(started.elapsed().as_secs_f64() * 1e3);
        }
        println!(
            "{mode:<10} p50 {:.2} ms  p95 {:.2} ms",
            percentile(&mut samples, 0.5),
            percentile(&mut samples, 0.95)
        );
    }
    server.stop().await;
}
