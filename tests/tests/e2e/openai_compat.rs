//! The OpenAI-compatible endpoint: the official `openai` Python library chats with
//! Dexter (tools run on our side, the turn is recorded like any chat), and every error
//! is in OpenAI's shape.

use std::path::Path;

use agenthost_tests::fake_openai::{FakeOpenAi, Reply};
use agenthost_tests::{StatusCode, TestServer, pyclients_dir};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use super::dexter::{Fixture, fixture_with};

async fn dexter_with_llm() -> (Fixture, FakeOpenAi) {
    let fake = FakeOpenAi::start().await;
    let base = fake.base_url.clone();
    let fixture = fixture_with(move |config| {
        config.llm_base_url = Some(base);
        config.llm_max_retries = 0;
    })
    .await;
    (fixture, fake)
}

fn call(id: &str, tool: &str, arguments: Value) -> Reply {
    Reply::ToolCalls(vec![(id.into(), tool.into(), arguments)])
}

/// The (status, body) of a request to the endpoint.
async fn send(
    server: &TestServer,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = server.client.request(method, server.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(json!(text)))
}

/// An error in OpenAI's shape; returns (type, code, message).
fn openai_error(body: &Value) -> (String, String, String) {
    let error = &body["error"];
    let text = |field: &str| {
        error[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} in {body}"))
            .to_string()
    };
    assert!(error.get("param").is_some(), "{body}");
    (text("type"), text("code"), text("message"))
}

#[tokio::test]
async fn the_openai_python_client_chats_with_dexter_and_its_tools_run_on_our_side() {
    let dir = pyclients_dir();
    assert!(
        dir.join("openai").is_dir(),
        "the openai package is not in {} (run `make pyclients`)",
        dir.display()
    );
    let (f, fake) = dexter_with_llm().await;
    // Not streamed: a tool call, then the answer.
    fake.reply(call(
        "call_1",
        "revenue_analysis",
        json!({ "period": "2025-Q4" }),
    ));
    fake.reply(Reply::Text("Q4 2025 revenue was 30000 USD.".into()));
    // Streamed: the same, for another quarter.
    fake.reply(call(
        "call_2",
        "revenue_analysis",
        json!({ "period": "2025-Q3" }),
    ));
    fake.reply(Reply::Text(
        "Streamed: Q3 2025 revenue was 8000 USD.".into(),
    ));
    // The two continued conversations; the stateless turn gets the fake's echo.
    fake.reply(Reply::Text("Q4 is well up on Q3.".into()));
    fake.reply(Reply::Text("You are welcome.".into()));

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/openai_client.py");
    let output = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(f.server.url("/v1"))
        .arg(&f.key)
        .env("PYTHONPATH", &dir)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_str(&stdout).unwrap();

    for agent in ["dexter", "cassie", "aura"] {
        assert!(
            out["models"].as_array().unwrap().contains(&json!(agent)),
            "{out}"
        );
    }

    let plain = &out["plain"];
    assert_eq!(plain["object"], "chat.completion");
    assert_eq!(plain["model"], "dexter");
    assert_eq!(plain["role"], "assistant");
    assert_eq!(plain["content"], "Q4 2025 revenue was 30000 USD.");
    assert_eq!(plain["finish_reason"], "stop");
    assert!(plain["tool_calls"].is_null(), "{plain}");
    let usage = &plain["usage"];
    assert!(usage["prompt_tokens"].as_i64().unwrap() > 0);
    assert_eq!(
        usage["total_tokens"].as_i64().unwrap(),
        usage["prompt_tokens"].as_i64().unwrap() + usage["completion_tokens"].as_i64().unwrap()
    );

    let streamed = &out["streamed"];
    assert_eq!(streamed["objects"], json!(["chat.completion.chunk"]));
    assert_eq!(streamed["first_role"], "assistant");
    assert_eq!(
        streamed["content"],
        "Streamed: Q3 2025 revenue was 8000 USD."
    );
    assert_eq!(
        streamed["tool_call_deltas"], 0,
        "our tools are not the client's"
    );
    assert_eq!(streamed["finish_reasons"], json!(["stop"]));
    assert!(streamed["usage"]["total_tokens"].as_i64().unwrap() > 0);

    // The tools ran here, recorded with their turns, whose tokens are the usage answered.
    let pool = sqlx::PgPool::connect(&f.server.database_url).await.unwrap();
    let conversation = |v: &Value| Uuid::parse_str(v["conversation_id"].as_str().unwrap()).unwrap();
    for (result, period, turns) in [(plain, "2025-Q4", 2), (streamed, "2025-Q3", 2)] {
        let id = conversation(result);
        let calls: Vec<(String, String, Value, Value)> = sqlx::query_as(
            "SELECT c.tool, c.outcome, c.input, c.output FROM tool_calls c \
             JOIN turns t ON t.id = c.turn_id WHERE t.conversation_id = $1",
        )
        .bind(id)
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert_eq!(
            (calls[0].0.as_str(), calls[0].1.as_str()),
            ("revenue_analysis", "ok")
        );
        assert_eq!(calls[0].2["period"], period);
        assert!(calls[0].3["total_revenue"].as_f64().unwrap() > 0.0);
        let recorded: Vec<(String, i32, i32)> = sqlx::query_as(
            "SELECT status, prompt_tokens, completion_tokens FROM turns \
             WHERE conversation_id = $1 ORDER BY started_at",
        )
        .bind(id)
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(recorded.len(), turns, "{recorded:?}");
        assert!(recorded.iter().all(|t| t.0 == "completed"));
        assert_eq!(
            i64::from(recorded[0].1 + recorded[0].2),
            result["usage"]["total_tokens"].as_i64().unwrap()
        );
    }
    let usage_rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM llm_usage WHERE agent IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        usage_rows, 7,
        "every model call of the five turns is recorded"
    );

    // Continued by id: the model got the stored history, tool exchange included.
    assert_eq!(out["continued"]["content"], "Q4 is well up on Q3.");
    let requests = fake.requests();
    let chats: Vec<&Value> = requests
        .iter()
        .filter(|(path, _)| path == "/chat/completions")
        .map(|(_, body)| body)
        .collect();
    assert_eq!(chats.len(), 7);
    // The client's temperature overrides the agent's for that turn.
    assert!((chats[0]["temperature"].as_f64().unwrap() - 0.2).abs() < 1e-6);
    let roles = |request: &Value| -> Vec<String> {
        request["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        roles(chats[4]),
        ["system", "user", "assistant", "tool", "assistant", "user"]
    );
    assert_eq!(chats[4]["messages"][1]["content"], "Analyse Q4 revenue");
    assert_eq!(
        chats[4]["messages"][5]["content"],
        "And how does that compare with Q3?"
    );
    assert_eq!(
        out["continued_by_metadata"]["conversation_id"],
        streamed["conversation_id"]
    );
    assert_eq!(out["continued_by_metadata"]["content"], "You are welcome.");

    // Stateless: the client's user and assistant messages are the history (its system
    // message is not: the agent's prompt is), in a new conversation.
    let stateless = &out["stateless"];
    assert_eq!(stateless["content"], "echo: What is my name?");
    assert_ne!(stateless["conversation_id"], plain["conversation_id"]);
    assert_eq!(roles(chats[6]), ["system", "user", "assistant", "user"]);
    assert!(
        chats[6]["messages"][0]["content"]
            .as_str()
            .unwrap()
            .starts_with("You are Dexter")
    );
    assert_eq!(chats[6]["messages"][1]["content"], "My name is Ana.");
    assert_eq!(chats[6]["messages"][2]["content"], "Hello Ana!");
    let (_, record) = send(
        &f.server,
        Method::GET,
        &format!("/api/conversations/{}", conversation(stateless)),
        Some(&f.key),
        None,
    )
    .await;
    assert_eq!(record["messages"].as_array().unwrap().len(), 4, "{record}");

    // The client raises the errors as its own typed exceptions.
    let errors = &out["errors"];
    let unknown = &errors["unknown_model"];
    assert_eq!(
        (&unknown["status"], &unknown["class"], &unknown["code"]),
        (
            &json!(404),
            &json!("NotFoundError"),
            &json!("model_not_found")
        )
    );
    assert!(unknown["message"].as_str().unwrap().contains("dexter"));
    // models.retrieve: GET /v1/models/{model}, the same object the list holds.
    let model = &out["model"];
    assert_eq!(model["id"], "dexter", "{model}");
    assert_eq!(model["object"], "model");
    assert_eq!(model["owned_by"], "agenthost");
    assert!(model["created"].as_i64().unwrap() > 0, "{model}");
    let retrieve_unknown = &errors["retrieve_unknown_model"];
    assert_eq!(
        (
            &retrieve_unknown["status"],
            &retrieve_unknown["class"],
            &retrieve_unknown["code"]
        ),
        (
            &json!(404),
            &json!("NotFoundError"),
            &json!("model_not_found")
        ),
        "{retrieve_unknown}"
    );
    assert_eq!(errors["bad_key"]["status"], 401);
    assert_eq!(errors["bad_key"]["class"], "AuthenticationError");
    assert_eq!(errors["no_user_message"]["status"], 400);
    assert_eq!(errors["no_user_message"]["class"], "BadRequestError");
    f.server.stop().await;
}

#[tokio::test]
async fn errors_are_in_openai_shape_with_the_right_status() {
    let (f, fake) = dexter_with_llm().await;
    let server = &f.server;
    let chat =
        |model: &str| json!({ "model": model, "messages": [{ "role": "user", "content": "Hi" }] });

    let (status, body) = send(server, Method::GET, "/v1/models", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (kind, code, _) = openai_error(&body);
    assert_eq!(
        (kind.as_str(), code.as_str()),
        ("authentication_error", "invalid_api_key")
    );

    let (status, body) = send(
        server,
        Method::POST,
        "/v1/chat/completions",
        Some(&f.key),
        Some(chat("gpt-4o")),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (kind, code, message) = openai_error(&body);
    assert_eq!(
        (kind.as_str(), code.as_str()),
        ("invalid_request_error", "model_not_found")
    );
    assert!(
        message.contains("dexter, cassie, aura") || message.contains("dexter"),
        "{message}"
    );

    // Bad bodies are 400s: not JSON, the wrong shape, nothing to answer, n > 1, a bad id.
    let not_json = server
        .client
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(&f.key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    let body: Value = not_json.json().await.unwrap();
    assert_eq!(openai_error(&body).0, "invalid_request_error");
    let bad_request = [
        json!({ "model": "dexter" }),
        json!({ "model": "dexter", "messages": [] }),
        json!({ "model": "dexter", "messages": [{ "role": "user", "content": "  " }] }),
        json!({ "model": "dexter", "messages": [{ "role": "user", "content": "Hi" }], "n": 2 }),
        json!({ "model": "dexter", "messages": [{ "role": "user", "content": "Hi" }],
                "temperature": 3 }),
        json!({ "model": "dexter", "messages": [{ "role": "user", "content": "Hi" }],
                "metadata": { "conversation_id": "nope" } }),
    ];
    for body in bad_request {
        let (status, answer) = send(
            server,
            Method::POST,
            "/v1/chat/completions",
            Some(&f.key),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {answer}");
        assert_eq!(openai_error(&answer).0, "invalid_request_error", "{answer}");
    }
    let unknown_conversation = server
        .client
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(&f.key)
        .header("x-conversation-id", Uuid::new_v4().to_string())
        .json(&chat("dexter"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_conversation.status(), StatusCode::NOT_FOUND);

    // Viewers list models but may not chat.
    let (workspace, _) = server.create_workspace("viewers").await;
    let (_, viewer) = server.create_key(&workspace, "viewer").await;
    let (status, body) = send(server, Method::GET, "/v1/models", Some(&viewer), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"][0]["object"], "model");
    assert_eq!(body["data"][0]["owned_by"], "agenthost");
    assert!(body["data"][0]["created"].as_i64().unwrap() > 0);
    let (status, body) = send(
        server,
        Method::POST,
        "/v1/chat/completions",
        Some(&viewer),
        Some(chat("dexter")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(openai_error(&body).0, "permission_error");

    // A disabled agent is no model.
    let (status, _) = send(
        server,
        Method::PATCH,
        "/api/agents/aura",
        Some(&f.key),
        Some(json!({ "enabled": false })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, models) = send(server, Method::GET, "/v1/models", Some(&f.key), None).await;
    assert!(!models.to_string().contains("\"aura\""), "{models}");
    let (status, _) = send(
        server,
        Method::POST,
        "/v1/chat/completions",
        Some(&f.key),
        Some(chat("aura")),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The provider refusing the request: 502 when not streamed; streamed, an error
    // event the client raises, then [DONE]. Both turns are recorded as failed.
    fake.reply(Reply::Status(400, "bad request".into()));
    let (status, body) = send(
        server,
        Method::POST,
        "/v1/chat/completions",
        Some(&f.key),
        Some(chat("dexter")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(openai_error(&body).1, "llm_error");
    fake.reply(Reply::Status(400, "bad request".into()));
    let mut streamed = chat("dexter");
    streamed["stream"] = json!(true);
    let (status, body) = send(
        server,
        Method::POST,
        "/v1/chat/completions",
        Some(&f.key),
        Some(streamed),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let text = body.as_str().unwrap();
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"), "{text}");
    let error: Value = serde_json::from_str(events[events.len() - 2]).unwrap();
    assert_eq!(openai_error(&error).0, "server_error");
    let pool = sqlx::PgPool::connect(&server.database_url).await.unwrap();
    let failed: i64 = sqlx::query_scalar("SELECT count(*) FROM turns WHERE status = 'failed'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(failed, 2);
    f.server.stop().await;
}

#[tokio::test]
async fn without_a_provider_the_answer_is_503_and_no_conversation_is_left() {
    let server = TestServer::start().await;
    let (_, key) = server.create_workspace("nollm").await;
    let body = json!({ "model": "dexter", "messages": [
        { "role": "user", "content": "Hi" },
        { "role": "assistant", "content": "Hello" },
        { "role": "user", "content": "Q4?" },
    ]});
    let (status, answer) = send(
        &server,
        Method::POST,
        "/v1/chat/completions",
        Some(&key),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (kind, _, message) = openai_error(&answer);
    assert_eq!(kind, "server_error");
    assert!(message.contains("AGENTHOST_LLM_BASE_URL"), "{message}");
    let (_, list) = send(&server, Method::GET, "/api/conversations", Some(&key), None).await;
    assert_eq!(list["conversations"], json!([]));
    server.stop().await;
}
