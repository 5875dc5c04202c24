//! Agent health alerts: two hosts judge each agent's recent turns; a change of health
//! is one `agent.health.degraded` or `agent.health.recovered` event, never two.

use std::time::Duration;

use agenthost_tests::fake_openai::{FakeOpenAi, Reply};
use agenthost_tests::{StatusCode, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

use super::budgets::{assert_schemas, events_of};

/// Thresholds small enough to cross with a few turns.
fn judged(min_success: f64, max_p95: Duration) -> impl Fn(&mut agenthost::Config) + Clone {
    move |config| {
        config.agent_health_interval = Duration::from_millis(100);
        config.agent_health_window = Duration::from_secs(600);
        config.agent_health_min_success = min_success;
        config.agent_health_max_p95 = max_p95;
        config.agent_health_min_turns = 3;
    }
}

/// A host with the fake LLM and a second one on its database (judging only).
async fn hosts(
    judge: impl Fn(&mut agenthost::Config) + Clone,
) -> (TestServer, TestServer, FakeOpenAi) {
    let fake = FakeOpenAi::start().await;
    let base = fake.base_url.clone();
    let first = judge.clone();
    let server = TestServer::start_with(move |config| {
        config.llm_base_url = Some(base);
        config.llm_max_retries = 0;
        first(config);
    })
    .await;
    let url = server.database_url.clone();
    let other = TestServer::start_with(move |config| {
        config.database_url = Some(url);
        judge(config);
    })
    .await;
    (server, other, fake)
}

async fn workspace_with_agent(server: &TestServer) -> String {
    let (_, key) = server.create_workspace("health").await;
    let response = server
        .send(
            &key,
            Method::POST,
            "/api/agents",
            Some(json!({"slug": "helper", "name": "Helper"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    key
}

async fn turn(server: &TestServer, key: &str) -> StatusCode {
    server
        .send(
            key,
            Method::POST,
            "/api/agents/helper/chat",
            Some(json!({"message": "Hi"})),
        )
        .await
        .status()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn failing_turns_degrade_an_agent_once_and_successes_recover_it_once() {
    let (server, other, fake) = hosts(judged(0.5, Duration::from_secs(60))).await;
    let key = workspace_with_agent(&server).await;
    for _ in 0..3 {
        fake.reply(Reply::Status(500, "the model is down".into()));
        assert_eq!(turn(&server, &key).await, StatusCode::SERVICE_UNAVAILABLE);
    }
    let health = events_of(&server, &key, "agent.health", 1).await;
    assert_eq!(kinds(&health), ["agent.health.degraded"]);
    let degraded = &health[0]["payload"];
    assert_eq!(
        (degraded["agent"].as_str(), degraded["turns"].as_i64()),
        (Some("helper"), Some(3))
    );
    assert_eq!(degraded["success_rate"].as_f64(), Some(0.0));
    assert_eq!(degraded["reasons"], json!(["success_rate"]));
    assert_eq!(degraded["thresholds"]["min_turns"], 3);
    assert_eq!(health[0]["subject"], degraded["agent_id"]);
    assert_eq!(health[0]["actor"], "system:health");

    // 3 of 6 completed: back at the threshold (0.5 is not below it).
    for _ in 0..3 {
        assert_eq!(turn(&server, &key).await, StatusCode::OK);
    }
    let health = events_of(&server, &key, "agent.health", 2).await;
    assert_eq!(
        kinds(&health),
        ["agent.health.degraded", "agent.health.recovered"]
    );
    let recovered = &health[1]["payload"];
    assert_eq!(
        (
            recovered["turns"].as_i64(),
            recovered["success_rate"].as_f64()
        ),
        (Some(6), Some(0.5))
    );
    assert_eq!(recovered["reasons"], json!([]));

    // The hosts kept judging all along, and each change was written once: one more
    // failure (3 of 7) degrades it again, after exactly one of each.
    fake.reply(Reply::Status(500, "the model is down again".into()));
    assert_eq!(turn(&server, &key).await, StatusCode::SERVICE_UNAVAILABLE);
    let health = events_of(&server, &key, "agent.health", 3).await;
    assert_eq!(
        kinds(&health),
        [
            "agent.health.degraded",
            "agent.health.recovered",
            "agent.health.degraded"
        ]
    );
    assert_schemas(&server, &key, &health).await;
    other.stop().await;
}

/// Slow turns degrade an agent whose turns all succeed: its p95 is over the limit.
#[tokio::test]
async fn slow_turns_degrade_an_agent_by_their_p95() {
    let (server, other, fake) = hosts(judged(0.0, Duration::from_millis(100))).await;
    let key = workspace_with_agent(&server).await;
    for _ in 0..3 {
        // Each turn waits for the model at least this long.
        fake.reply(Reply::After(
            Duration::from_millis(300),
            Box::new(Reply::Text("Slowly.".into())),
        ));
        assert_eq!(turn(&server, &key).await, StatusCode::OK);
    }
    let health = events_of(&server, &key, "agent.health", 1).await;
    assert_eq!(kinds(&health), ["agent.health.degraded"]);
    let payload = &health[0]["payload"];
    assert_eq!(payload["reasons"], json!(["p95"]));
    assert!(payload["p95_ms"].as_f64().unwrap() >= 300.0, "{payload}");
    assert_eq!(payload["success_rate"].as_f64(), Some(1.0));
    other.stop().await;
}
