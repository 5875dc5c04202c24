//! Chat benchmarks against the real server, the embedded PostgreSQL, the Dexter plugin
//! and an instantaneous fake LLM on loopback (docs/benchmarks.md):
//!
//! 1. host overhead of a chat turn with one tool call (model -> roi -> model), p50 and
//!    p95, next to two baselines from the same run: `GET /healthz` and the same tool
//!    called directly with `POST /api/tools/dexter/roi`;
//! 2. 200 concurrent streamed chats: every stream must end with `finish` and `[DONE]`.
//!
//! Run: `cargo run --release -p agenthost-tests --bin bench-chat` (`make bench`).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use agenthost_tests::TestServer;
use agenthost_tests::fake_openai::FakeOpenAi;
use serde_json::{Value, json};

const TURNS: usize = 300;
const CONCURRENT: usize = 200;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn timed<F: Future<Output = ()>>(samples: &mut Vec<Duration>, f: F) {
    let started = Instant::now();
    f.await;
    samples.push(started.elapsed());
}

#[tokio::main]
async fn main() {
    let fake = FakeOpenAi::start().await;
    let roi = json!({ "investment": 1000, "returns": 1250 });
    fake.auto_tool("roi", roi.clone());
    let base = fake.base_url.clone();
    let server = TestServer::start_with(move |config| {
        config.llm_base_url = Some(base);
        config.db_max_connections = 20;
        config.plugin_instances = 64;
        config.chat_turn_timeout = Duration::from_secs(120);
    })
    .await;
    server.install_dexter().await;
    let (_, key) = server.create_workspace("bench").await;
    let chat = |stream: bool| {
        let mut request = server
            .request(reqwest::Method::POST, "/api/agents/dexter/chat", &key)
            .json(&json!({ "message": "What is the ROI of 1000 returning 1250?" }));
        if stream {
            request = request.header("accept", "text/event-stream");
        }
        request
    };

    // Warm up: plugin instance pool, connections, the fake.
    for _ in 0..20 {
        let body: Value = chat(false).send().await.unwrap().json().await.unwrap();
        assert_eq!(body["tool_calls"][0]["outcome"], "ok", "{body}");
    }

    let (mut health, mut tool, mut turn) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..TURNS {
        timed(&mut health, async {
            let response = server
                .client
                .get(server.url("/healthz"))
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success());
        })
        .await;
        timed(&mut tool, async {
            let response = server.call_tool(&key, "dexter", "roi", &roi).await;
            assert!(response.status().is_success());
        })
        .await;
        timed(&mut turn, async {
            let response = chat(false).send().await.unwrap();
            assert!(response.status().is_success());
            let _ = response.bytes().await.unwrap();
        })
        .await;
    }
    let (h50, t50, c50) = (
        percentile(&mut health, 0.5),
        percentile(&mut tool, 0.5),
        percentile(&mut turn, 0.5),
    );
    let (h95, t95, c95) = (
        percentile(&mut health, 0.95),
        percentile(&mut tool, 0.95),
        percentile(&mut turn, 0.95),
    );
    println!("chat turn, one tool call, instantaneous fake LLM ({TURNS} sequential turns)");
    println!(
        "  GET /healthz            p50 {:7.3} ms  p95 {:7.3} ms",
        ms(h50),
        ms(h95)
    );
    println!(
        "  POST /api/tools roi     p50 {:7.3} ms  p95 {:7.3} ms",
        ms(t50),
        ms(t95)
    );
    println!(
        "  POST chat (2 LLM calls) p50 {:7.3} ms  p95 {:7.3} ms",
        ms(c50),
        ms(c95)
    );
    println!(
        "  turn / direct tool call: {:.2} (p50); turn - tool call: {:.3} ms of chat bookkeeping + 2 fake LLM round trips",
        ms(c50) / ms(t50),
        ms(c50) - ms(t50)
    );

    // 200 streamed chats at once.
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENT)
        .map(|_| {
            let request = chat(true);
            tokio::spawn(async move {
                let started = Instant::now();
                let response = request.send().await.map_err(|e| e.to_string())?;
                if !response.status().is_success() {
                    return Err(format!("status {}", response.status()));
                }
                let body = response.text().await.map_err(|e| e.to_string())?;
                let complete = body.contains("\"type\":\"finish\"")
                    && body.contains("tool-output-available")
                    && body.trim_end().ends_with("data: [DONE]");
                if complete {
                    Ok(started.elapsed())
                } else {
                    Err(format!(
                        "incomplete stream: {}",
                        &body[body.len().saturating_sub(200)..]
                    ))
                }
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(latency) => latencies.push(latency),
            Err(error) => errors.push(error),
        }
    }
    let wall = started.elapsed();
    println!("{CONCURRENT} concurrent streamed chats");
    println!(
        "  completed {} errors {} wall {:.0} ms  p50 {:.0} ms  p95 {:.0} ms",
        latencies.len(),
        errors.len(),
        ms(wall),
        ms(percentile(&mut latencies, 0.5)),
        ms(percentile(&mut latencies, 0.95))
    );
    for error in errors.iter().take(5) {
        println!("  error: {error}");
    }
    let pool = sqlx::PgPool::connect(&server.database_url).await.unwrap();
    let (running, completed): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'running'), count(*) FILTER (WHERE status = 'completed') FROM turns",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    println!("  turns recorded: {completed} completed, {running} still running");
    server.stop().await;
    assert!(errors.is_empty(), "{} streamed chats failed", errors.len());
}
