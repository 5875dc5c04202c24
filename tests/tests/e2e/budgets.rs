//! Monthly LLM budgets: a workspace setting; past it every way into a model (our chat,
//! its stream, the AI SDK's useChat, the OpenAI-compatible route, a workflow's llm
//! node) is refused with 429 `budget_exceeded` and the figures, nothing reaches the
//! provider, and `llm.budget.exceeded` is written once, whichever host saw it.

use agenthost_tests::fake_openai::FakeOpenAi;
use agenthost_tests::{StatusCode, TestServer};
use chrono::{Datelike, TimeZone, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use super::workflow_nodes::{Nodes, last};

fn with_llm(base: String) -> impl FnOnce(&mut agenthost::Config) {
    move |config| {
        config.llm_base_url = Some(base);
        config.llm_max_retries = 0;
        config.llm_prices = r#"{"gpt-4o-mini": {"prompt": 0.15, "completion": 0.6}}"#.into();
    }
}

async fn call(
    server: &TestServer,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let response = server.send(key, method, path, body).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn chat(server: &TestServer, key: &str) -> (StatusCode, Value) {
    call(
        server,
        key,
        Method::POST,
        "/api/agents/helper/chat",
        Some(json!({"message": "Hi"})),
    )
    .await
}

async fn settings(server: &TestServer, key: &str, change: Value) -> (StatusCode, Value) {
    call(
        server,
        key,
        Method::PATCH,
        "/api/workspace/settings",
        Some(change),
    )
    .await
}

/// The workspace's events of `kind` once at least `count` are in the feed.
pub(super) async fn events_of(
    server: &TestServer,
    key: &str,
    kind: &str,
    count: usize,
) -> Vec<Value> {
    let mut found = Vec::new();
    for _ in 0..500 {
        let (status, page) = call(
            server,
            key,
            Method::GET,
            &format!("/api/events?type={kind}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        found = page["events"].as_array().unwrap().clone();
        if found.len() >= count {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    found
}

/// Every payload matches its type's schema in `GET /api/event-types`.
pub(super) async fn assert_schemas(server: &TestServer, key: &str, events: &[Value]) {
    let (_, catalogue) = call(server, key, Method::GET, "/api/event-types", None).await;
    for event in events {
        let entry = catalogue["event_types"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == event["type"])
            .unwrap_or_else(|| panic!("{} is not in the catalogue", event["type"]));
        let validator = jsonschema::validator_for(&entry["payload"]).unwrap();
        assert!(
            validator.is_valid(&event["payload"]),
            "{event} vs {}",
            entry["payload"]
        );
    }
}

/// The start of next month, UTC: when a budget resets.
fn next_month() -> String {
    let now = Utc::now();
    let (year, month) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn assert_refused(status: StatusCode, body: &Value, unit: &str, budget: f64) {
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let error = &body["error"];
    assert_eq!(error["code"], "budget_exceeded", "{body}");
    assert_eq!(error["budget"]["unit"], unit, "{body}");
    assert_eq!(error["budget"]["budget"].as_f64(), Some(budget), "{body}");
    assert!(
        error["budget"]["used"].as_f64().unwrap() >= budget,
        "{body}"
    );
    let resets = error["budget"]["resets_at"].as_str().unwrap();
    assert_eq!(resets, next_month(), "{body}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("monthly LLM budget is spent"),
        "{body}"
    );
}

#[tokio::test]
async fn past_its_budget_a_workspace_gets_429_with_the_figures_and_one_event() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start_with(with_llm(fake.base_url.clone())).await;
    // A second host on the same database: both judge the budget.
    let url = server.database_url.clone();
    let base = fake.base_url.clone();
    let other = TestServer::start_with(move |config| {
        with_llm(base)(config);
        config.database_url = Some(url);
    })
    .await;
    let (workspace, owner) = server.create_workspace("budget").await;
    let (_, member) = server.create_key(&workspace, "member").await;
    let (status, _) = call(
        &server,
        &owner,
        Method::POST,
        "/api/agents",
        Some(json!({"slug": "helper", "name": "Helper"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    // No budget: nothing is limited.
    let (status, current) = call(
        &server,
        &member,
        Method::GET,
        "/api/workspace/settings",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{current}");
    assert_eq!(
        (
            current["monthly_token_budget"].clone(),
            current["exceeded"].clone()
        ),
        (Value::Null, Value::Null)
    );
    assert_eq!(current["month"]["tokens_used"], 0);

    // Bad settings name their field; only admins change them.
    for (change, field) in [
        (json!({"monthly_token_budget": -1}), "monthly_token_budget"),
        (
            json!({"monthly_token_budget": "lots"}),
            "monthly_token_budget",
        ),
        (json!({"monthly_token_budget": 1.5}), "monthly_token_budget"),
        (
            json!({"monthly_token_budget": 1_000_000_000_000_001_i64}),
            "monthly_token_budget",
        ),
        (
            json!({"monthly_cost_budget_usd": -0.01}),
            "monthly_cost_budget_usd",
        ),
        (
            json!({"monthly_cost_budget_usd": "5"}),
            "monthly_cost_budget_usd",
        ),
        (
            json!({"monthly_cost_budget_usd": 1e13}),
            "monthly_cost_budget_usd",
        ),
        (json!({"monthly_budget": 5}), "monthly_budget"),
        (json!([null, null]), "object"),
    ] {
        let (status, body) = settings(&server, &owner, change.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{change} -> {body}"
        );
        assert!(
            body["error"]["message"].as_str().unwrap().contains(field),
            "{change} -> {body}"
        );
    }
    let (status, _) = settings(&server, &member, json!({"monthly_token_budget": 5})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Under budget: chat works and its tokens count.
    let (status, body) =
        settings(&server, &owner, json!({"monthly_token_budget": 1_000_000})).await;
    assert_eq!(
        (status, body["monthly_token_budget"].as_i64()),
        (StatusCode::OK, Some(1_000_000)),
        "{body}"
    );
    let (status, body) = chat(&server, &member).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, current) = call(
        &server,
        &member,
        Method::GET,
        "/api/workspace/settings",
        None,
    )
    .await;
    let used = current["month"]["tokens_used"].as_i64().unwrap();
    assert!(used > 0, "{current}");
    assert!(
        current["month"]["cost_usd_used"].as_f64().unwrap() > 0.0,
        "{current}"
    );

    // A budget one token above the use: the next call runs (and crosses it), the ones
    // after are refused before anything is sent.
    let budget = used + 1;
    let (status, _) = settings(&server, &owner, json!({"monthly_token_budget": budget})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = chat(&server, &member).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sent = fake.requests().len();
    let (status, body) = chat(&server, &member).await;
    assert_refused(status, &body, "tokens", budget as f64);
    let response = server
        .send(
            &member,
            Method::POST,
            "/api/agents/helper/chat",
            Some(json!({"message": "Hi"})),
        )
        .await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);
    // The stream, useChat and the OpenAI-compatible route: a 429, not a stream that fails.
    let streamed = server
        .request(Method::POST, "/api/agents/helper/chat", &member)
        .header("accept", "text/event-stream")
        .json(&json!({"message": "Hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), StatusCode::TOO_MANY_REQUESTS);
    let use_chat = json!({"id": "c1", "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Hi"}]}]});
    let (status, body) = call(
        &server,
        &member,
        Method::POST,
        "/api/agents/helper/chat",
        Some(use_chat),
    )
    .await;
    assert_refused(status, &body, "tokens", budget as f64);
    for stream in [false, true] {
        let request = json!({"model": "helper", "stream": stream, "messages": [{"role": "user", "content": "Hi"}]});
        let (status, body) = call(
            &other,
            &member,
            Method::POST,
            "/v1/chat/completions",
            Some(request),
        )
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(body["error"]["code"], "budget_exceeded", "{body}");
        assert_eq!(
            body["error"]["budget"]["budget"].as_i64(),
            Some(budget),
            "{body}"
        );
    }
    // Both hosts refusing at once still write one event.
    let refusals = (0..8).map(|i| {
        let host = if i % 2 == 0 { &server } else { &other };
        chat(host, &member)
    });
    for (status, body) in futures_util::future::join_all(refusals).await {
        assert_refused(status, &body, "tokens", budget as f64);
    }
    assert_eq!(
        fake.requests().len(),
        sent,
        "a refused call reached the provider"
    );
    let (_, current) = call(
        &other,
        &member,
        Method::GET,
        "/api/workspace/settings",
        None,
    )
    .await;
    assert_eq!(current["exceeded"]["unit"], "tokens", "{current}");

    // Every refusal above had committed its check before it was answered.
    let exceeded = events_of(&server, &member, "llm.budget.exceeded", 1).await;
    assert_eq!(exceeded.len(), 1, "{exceeded:?}");
    let event = &exceeded[0];
    assert_eq!(event["actor"], "system:budget");
    assert_eq!(event["payload"]["unit"], "tokens");
    assert_eq!(event["payload"]["budget"].as_i64(), Some(budget));
    assert_eq!(event["subject"], Utc::now().format("%Y-%m").to_string());
    assert_schemas(&server, &member, &exceeded).await;

    // A raised budget lets chat through again; a new budget that is spent is a new event.
    let (status, body) = settings(
        &server,
        &owner,
        json!({"monthly_token_budget": 1_000_000_000}),
    )
    .await;
    assert_eq!(
        (status, body["exceeded"].clone()),
        (StatusCode::OK, Value::Null),
        "{body}"
    );
    let (status, body) = chat(&other, &member).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = settings(
        &server,
        &owner,
        json!({"monthly_token_budget": null, "monthly_cost_budget_usd": 0.000001}),
    )
    .await;
    assert_eq!(
        (status, body["monthly_token_budget"].clone()),
        (StatusCode::OK, Value::Null),
        "{body}"
    );
    let (status, body) = chat(&other, &member).await;
    assert_refused(status, &body, "usd", 0.000001);
    let exceeded = events_of(&server, &member, "llm.budget.exceeded", 2).await;
    let units: Vec<&str> = exceeded
        .iter()
        .map(|e| e["payload"]["unit"].as_str().unwrap())
        .collect();
    assert_eq!(units, ["tokens", "usd"]);
    assert_schemas(&server, &member, &exceeded).await;
    other.stop().await;
}

/// A workflow's `llm/chat` node (the plugin `llm` interface) is refused too, as
/// `denied`, and the provider never hears of it.
#[tokio::test]
async fn a_workflows_llm_node_is_refused_past_the_budget() {
    let fake = FakeOpenAi::start().await;
    let base = fake.base_url.clone();
    let nodes = Nodes::start(move |config| {
        config.llm_base_url = Some(base);
        config.llm_max_retries = 0;
    })
    .await;
    nodes
        .install("llm", json!({"llm": {"models": ["fake-model"]}}), true)
        .await;
    let (status, body) = settings(
        &nodes.server,
        &nodes.admin,
        json!({"monthly_token_budget": 0}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    nodes
        .save("ask", json!({"nodes": [{"id": "ask", "type": "llm/chat", "config": {"model": "fake-model", "prompt": "hello"}}]}))
        .await;
    let execution = nodes.run("ask", json!({})).await;
    assert_eq!(execution["status"], "failed", "{execution:#}");
    let run = last(&execution, "ask");
    assert_eq!(run["error_kind"], "denied", "{run:#}");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("monthly LLM budget is spent: 0 tokens used of 0 tokens"),
        "{run:#}"
    );
    assert!(fake.requests().is_empty());
    let exceeded = events_of(&nodes.server, &nodes.member, "llm.budget.exceeded", 1).await;
    assert_eq!(exceeded.len(), 1, "{exceeded:?}");
}
