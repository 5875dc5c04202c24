//! The llm capability through a real plugin (`llmprobe`) against a fake provider that
//! speaks the OpenAI wire protocol: grants, budgets, retries, usage and cost records.

use std::time::Duration;

use agenthost_tests::fake_openai::{FakeOpenAi, Reply, fake_vector};
use agenthost_tests::{StatusCode, TestServer, error_of, plugin_wasm};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::plugins::{admin, json_of, setup};

fn manifest() -> Value {
    json!({
        "name": "llmprobe", "version": "1.0.0", "kind": "tool",
        "capabilities": { "llm": { "models": ["fake-model", "other-model"] } }
    })
}

async fn start(fake: Option<&FakeOpenAi>, grant: Value) -> (TestServer, String) {
    let base = fake.map(|f| f.base_url.clone());
    let (server, key) = setup(move |config| {
        config.llm_base_url = base;
        config.llm_backoff = Duration::from_millis(10);
        config.llm_max_retries = 2;
        config.llm_prices = r#"{"fake-model": {"prompt": 2.0, "completion": 10.0}}"#.into();
    })
    .await;
    let response = server
        .upload_plugin(&manifest(), plugin_wasm("llmprobe"), true)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = admin(
        &server,
        Method::PUT,
        "/api/admin/plugins/llmprobe/versions/1.0.0/grants",
        Some(grant),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    (server, key)
}

fn chat_input(model: &str, text: &str) -> Value {
    json!({ "model": model, "messages": [{ "role": "user", "content": text }] })
}

/// The plugin's error text for a failed call.
async fn tool_error(response: reqwest::Response) -> String {
    if response.status() != StatusCode::BAD_REQUEST {
        panic!("{}: {}", response.status(), response.text().await.unwrap());
    }
    error_of(response).await.1
}

#[tokio::test]
async fn chat_and_embeddings_reach_the_provider_and_usage_is_recorded() {
    let fake = FakeOpenAi::start().await;
    let (server, key) = start(Some(&fake), json!({ "llm": { "models": ["fake-model"] } })).await;

    let input = json!({
        "model": "fake-model",
        "messages": [{ "role": "system", "content": "be brief" }, { "role": "user", "content": "hello" }],
        "tools": [{ "name": "lookup", "description": "Looks up", "parameters": "{\"type\":\"object\"}" }],
        "json_response": true, "temperature": 0.2, "max_tokens": 50,
    });
    let response = server.call_tool(&key, "llmprobe", "chat", &input).await;
    let output = json_of(response).await["output"].clone();
    assert_eq!(output["content"], "echo: hello");
    assert_eq!(output["finish_reason"], "stop");
    assert!(output["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let (path, sent) = fake.requests()[0].clone();
    assert_eq!(path, "/chat/completions");
    assert_eq!(sent["model"], "fake-model");
    assert_eq!(
        sent["messages"][0],
        json!({ "role": "system", "content": "be brief" })
    );
    assert_eq!(sent["tools"][0]["function"]["name"], "lookup");
    assert_eq!(
        sent["tools"][0]["function"]["parameters"],
        json!({ "type": "object" })
    );
    assert_eq!(sent["response_format"], json!({ "type": "json_object" }));
    assert_eq!(sent["max_tokens"], 50);
    assert!((sent["temperature"].as_f64().unwrap() - 0.2).abs() < 1e-6);

    // Tool calls come back as such.
    fake.reply(Reply::ToolCalls(vec![(
        "call_1".into(),
        "lookup".into(),
        json!({ "q": "x" }),
    )]));
    let response = server
        .call_tool(&key, "llmprobe", "chat", &chat_input("fake-model", "go"))
        .await;
    let output = json_of(response).await["output"].clone();
    assert_eq!(output["finish_reason"], "tool_calls");
    assert_eq!(output["tool_calls"][0]["name"], "lookup");
    assert_eq!(output["tool_calls"][0]["arguments"], r#"{"q":"x"}"#);

    let input =
        json!({ "model": "fake-model", "texts": ["refund my payment", "reset my password"] });
    let response = server.call_tool(&key, "llmprobe", "embed", &input).await;
    let output = json_of(response).await["output"].clone();
    assert_eq!(
        output["vectors"][0],
        json!(fake_vector("refund my payment"))
    );
    assert_eq!(
        output["vectors"][1],
        json!(fake_vector("reset my password"))
    );

    // Three calls recorded for the workspace and plugin, priced per million tokens.
    let pool = PgPool::connect(&server.database_url).await.unwrap();
    let rows: Vec<(String, String, i32, i32, Option<f64>)> = sqlx::query_as(
        "SELECT plugin, operation, prompt_tokens, completion_tokens, cost_usd::float8 \
         FROM llm_usage WHERE workspace_id IS NOT NULL ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2].1, "embedding");
    assert_eq!(rows[2].2, 6, "six words embedded");
    for (plugin, _, prompt, completion, cost) in &rows {
        assert_eq!(plugin, "llmprobe");
        let expected = (f64::from(*prompt) * 2.0 + f64::from(*completion) * 10.0) / 1e6;
        assert!(
            (cost.unwrap() - expected).abs() < 1e-6,
            "{cost:?} vs {expected}"
        );
    }
}

#[tokio::test]
async fn a_429_then_success_is_retried() {
    let fake = FakeOpenAi::start().await;
    let (server, key) = start(Some(&fake), json!({ "llm": { "models": ["fake-model"] } })).await;
    fake.reply(Reply::Status(429, "slow down".into()));
    fake.reply(Reply::Text("made it".into()));
    let response = server
        .call_tool(&key, "llmprobe", "chat", &chat_input("fake-model", "hi"))
        .await;
    assert_eq!(json_of(response).await["output"]["content"], "made it");
    assert_eq!(fake.requests().len(), 2);

    fake.fail_embeddings(503, "warming up");
    let input = json!({ "model": "fake-model", "texts": ["a"] });
    let response = server.call_tool(&key, "llmprobe", "embed", &input).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(fake.requests().len(), 4);
}

#[tokio::test]
async fn failures_after_retries_and_refusals_are_clear_errors() {
    let fake = FakeOpenAi::start().await;
    let (server, key) = start(Some(&fake), json!({ "llm": { "models": ["fake-model"] } })).await;
    for _ in 0..3 {
        fake.reply(Reply::Status(500, "boom".into()));
    }
    let response = server
        .call_tool(&key, "llmprobe", "chat", &chat_input("fake-model", "hi"))
        .await;
    let text = tool_error(response).await;
    assert!(
        text.contains("unavailable") && text.contains("after 3 attempt(s)"),
        "{text}"
    );
    assert_eq!(fake.requests().len(), 3, "one try and two retries");

    // A 400 is the request's fault: not retried, reported as invalid.
    fake.reply(Reply::Status(400, "bad messages".into()));
    let response = server
        .call_tool(&key, "llmprobe", "chat", &chat_input("fake-model", "hi"))
        .await;
    let text = tool_error(response).await;
    assert!(
        text.contains("invalid") && text.contains("bad messages"),
        "{text}"
    );
    assert_eq!(fake.requests().len(), 4);
}

#[tokio::test]
async fn models_outside_the_grant_and_a_spent_budget_are_denied() {
    let fake = FakeOpenAi::start().await;
    let grant = json!({ "llm": { "models": ["fake-model"], "daily_token_budget": 2 } });
    let (server, key) = start(Some(&fake), grant).await;
    let response = server
        .call_tool(&key, "llmprobe", "chat", &chat_input("other-model", "hi"))
        .await;
    let text = tool_error(response).await;
    assert!(
        text.contains("denied") && text.contains("\"other-model\" is not granted"),
        "{text}"
    );
    assert!(fake.requests().is_empty(), "nothing reached the provider");

    // The first call spends the budget (it is checked before each call).
    let response = server
        .call_tool(&key, "llmprobe", "chat", &chat_input("fake-model", "hi"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = server
        .call_tool(&key, "llmprobe", "chat", &chat_input("fake-model", "hi"))
        .await;
    let text = tool_error(response).await;
    assert!(
        text.contains("daily token budget of 2 tokens is spent"),
        "{text}"
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn without_a_provider_calls_are_unavailable_naming_the_setting() {
    let (server, key) = start(None, json!({ "llm": { "models": ["fake-model"] } })).await;
    let response = server
        .call_tool(&key, "llmprobe", "chat", &chat_input("fake-model", "hi"))
        .await;
    let text = tool_error(response).await;
    assert!(
        text.contains("unavailable") && text.contains("AGENTHOST_LLM_BASE_URL"),
        "{text}"
    );
}
