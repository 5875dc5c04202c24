//! Ticket enrichment through the REST API: in the background for every new ticket, on
//! demand (200, or 202 when it outlasts the request), and a person's overrides.

use std::time::{Duration, Instant};

use agenthost_tests::TestServer;
use agenthost_tests::fake_openai::FakeOpenAi;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::knowledge_base::{import, post, slugs};

#[tokio::test]
async fn new_tickets_are_enriched_in_the_background_and_overrides_stay() {
    let server = TestServer::start().await;
    let (_, owner) = server.create_workspace("kb-enrich").await;
    import(
        &server,
        &owner,
        &["unexpected-charges", "how-refunds-work", "reset-password"],
    )
    .await;
    let (status, ticket) = post(
        &server,
        &owner,
        "/api/tickets",
        json!({
            "subject": "Charged twice this month",
            "description": "This is terrible. You billed my card twice for the same invoice and nobody answers. I want my money back!",
            "requester": { "email": "ana@example.com", "name": "Ana" },
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    let number = ticket["number"].as_i64().unwrap();
    let started = Instant::now();
    let enrichment = loop {
        let view: Value = server
            .send(&owner, Method::GET, &format!("/api/tickets/{number}"), None)
            .await
            .json()
            .await
            .unwrap();
        if !view["enrichment"].is_null() {
            break view["enrichment"].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not enriched: {view}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(enrichment["sentiment"]["label"], "negative", "{enrichment}");
    assert!(enrichment["sentiment"]["score"].as_f64().unwrap() < -0.3);
    assert!(
        ["billing", "refund"].contains(&enrichment["intent"]["name"].as_str().unwrap()),
        "{enrichment}"
    );
    assert!(enrichment["intent"]["confidence"].as_f64().unwrap() > 0.0);
    assert_eq!(
        enrichment["suggested_priority"]["priority"], "high",
        "{enrichment}"
    );
    let related = slugs(enrichment["related_articles"].as_array().unwrap());
    assert!(related.len() <= 3);
    assert!(
        related.contains(&"unexpected-charges".to_string()),
        "{related:?}"
    );
    assert_eq!(enrichment["summary"]["method"], "extractive");
    let reply = &enrichment["suggested_reply"];
    assert!(reply["text"].as_str().unwrap().starts_with("Hi Ana,"));
    assert!(!reply["citations"].as_array().unwrap().is_empty());

    // A person overrides the intent; enriching again keeps it.
    let response = server
        .send(
            &owner,
            Method::PUT,
            &format!("/api/tickets/{number}/overrides"),
            Some(json!({ "intent": "refund", "priority": "urgent" })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = server
        .send(
            &owner,
            Method::PUT,
            &format!("/api/tickets/{number}/overrides"),
            Some(json!({ "intent": "shipping_delay" })),
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown intents are refused"
    );
    let (status, again) = post(
        &server,
        &owner,
        &format!("/api/tickets/{number}/enrich"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        again["overrides"],
        json!({ "intent": "refund", "priority": "urgent" })
    );
    assert!(!again["enrichment"].is_null());
    server.stop().await;
}

fn instant(time: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    time.as_str().map(|t| t.parse().unwrap())
}

/// The ticket's `enriched_at` once it differs from `before` (the first enrichment when
/// `before` is null).
async fn enriched_after(server: &TestServer, key: &str, number: i64, before: &Value) -> Value {
    let started = Instant::now();
    loop {
        let view: Value = server
            .send(key, Method::GET, &format!("/api/tickets/{number}"), None)
            .await
            .json()
            .await
            .unwrap();
        if !view["enriched_at"].is_null() && instant(&view["enriched_at"]) != instant(before) {
            return view["enriched_at"].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not enriched again: {view}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn enriching_longer_than_a_request_may_take_answers_202_and_finishes() {
    let fake = FakeOpenAi::start().await;
    let base = fake.base_url.clone();
    let server = TestServer::start_with(move |config| {
        config.llm_base_url = Some(base);
        config.request_timeout = Duration::from_secs(4);
    })
    .await;
    let (_, owner) = server.create_workspace("kb-slow-enrich").await;
    let (status, ticket) = post(
        &server,
        &owner,
        "/api/tickets",
        json!({
            "subject": "Charged twice",
            "description": "You billed my card twice for one invoice.",
            "requester": { "email": "ana@example.com" },
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    let number = ticket["number"].as_i64().unwrap();
    let first = enriched_after(&server, &owner, number, &Value::Null).await;

    // The model now takes 6 s a call and enrichment asks it twice: longer than the
    // request's 4 s. Not a 503: a 202 with what is stored, and the work goes on.
    fake.delay_chat(Duration::from_secs(6));
    let (status, body) = post(
        &server,
        &owner,
        &format!("/api/tickets/{number}/enrich"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(instant(&body["enriched_at"]), instant(&first), "{body}");
    assert!(!body["enrichment"].is_null());
    enriched_after(&server, &owner, number, &first).await;
    server.stop().await;
}
