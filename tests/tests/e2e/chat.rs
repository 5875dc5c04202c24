//! Agents and chat end to end: the fake OpenAI server scripts the model, Dexter runs in
//! its plugin against PostgreSQL, and everything that happened is recorded.

use std::time::{Duration, Instant};

use agenthost_tests::fake_openai::{FakeOpenAi, Reply};
use agenthost_tests::{StatusCode, TestServer, plugin_wasm};
use reqwest::Method;
use serde_json::{Value, json};

use super::dexter::{Fixture, fixture_with};

async fn dexter_with_llm(
    change: impl FnOnce(&mut agenthost::Config) + 'static,
) -> (Fixture, FakeOpenAi) {
    let fake = FakeOpenAi::start().await;
    let base = fake.base_url.clone();
    let fixture = fixture_with(move |config| {
        config.llm_base_url = Some(base);
        config.llm_max_retries = 0;
        config.llm_prices = r#"{"gpt-4o-mini": {"prompt": 0.15, "completion": 0.6}}"#.into();
        change(config);
    })
    .await;
    (fixture, fake)
}

async fn send(
    server: &TestServer,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = server.request(method, path, key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn tool_call(id: &str, name: &str, arguments: Value) -> (String, String, Value) {
    (id.to_string(), name.to_string(), arguments)
}

#[tokio::test]
async fn dexter_answers_q4_revenue_with_its_plugin_and_the_turn_is_recorded() {
    let (f, fake) = dexter_with_llm(|_| {}).await;
    fake.reply(Reply::ToolCalls(vec![tool_call(
        "call_1",
        "revenue_analysis",
        json!({ "period": "2025-Q4" }),
    )]));
    fake.reply(Reply::Text(
        "Q4 2025 revenue was 30000 USD, up 275% on Q3.".into(),
    ));
    let (status, body) = send(
        &f.server,
        Method::POST,
        "/api/agents/dexter/chat",
        &f.key,
        Some(json!({ "message": "Analyse Q4 revenue" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "completed");
    assert_eq!(
        body["message"]["content"],
        "Q4 2025 revenue was 30000 USD, up 275% on Q3."
    );
    let call = &body["tool_calls"][0];
    assert_eq!(
        (
            call["plugin"].as_str(),
            call["tool"].as_str(),
            call["outcome"].as_str()
        ),
        (Some("dexter"), Some("revenue_analysis"), Some("ok"))
    );
    assert_eq!(call["input"]["period"], "2025-Q4");
    assert_eq!(call["output"]["total_revenue"], 30000.0);
    assert!(call["duration_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(body["steps"], 2);
    assert!(body["usage"]["total_tokens"].as_i64().unwrap() > 0);

    // The model got Dexter's system prompt and every tool with its schema; the second
    // request carried the tool's result.
    let requests = fake.requests();
    let first = &requests[0].1;
    assert_eq!(first["messages"][0]["role"], "system");
    assert!(
        first["messages"][0]["content"]
            .as_str()
            .unwrap()
            .starts_with("You are Dexter")
    );
    assert_eq!(
        first["messages"][1],
        json!({ "role": "user", "content": "Analyse Q4 revenue" })
    );
    let names: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    for tool in [
        "revenue_analysis",
        "profit_and_loss",
        "sales_rep_performance",
        "customer_analytics",
        "forecast_revenue",
        "roi",
        "break_even",
        "cash_flow",
        "balance_sheet",
    ] {
        assert!(names.contains(&tool), "{tool} not offered: {names:?}");
    }
    assert_eq!(
        first["tools"][0]["function"]["parameters"]["required"],
        json!(["period"])
    );
    let second = &requests[1].1["messages"];
    let tool_message = second
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap();
    assert_eq!(tool_message["tool_call_id"], "call_1");
    let result: Value = serde_json::from_str(tool_message["content"].as_str().unwrap()).unwrap();
    assert_eq!(result["total_revenue"], 30000.0);

    // The conversation is persisted with its messages, turn and tool call.
    let id = body["conversation_id"].as_str().unwrap();
    let (status, conversation) = send(
        &f.server,
        Method::GET,
        &format!("/api/conversations/{id}"),
        &f.key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let roles: Vec<&str> = conversation["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant"]);
    assert_eq!(conversation["agent_slug"], "dexter");
    assert_eq!(conversation["title"], "Analyse Q4 revenue");
    let turn = &conversation["turns"][0];
    assert_eq!(turn["status"], "completed");
    assert_eq!(turn["tool_calls"][0]["output"]["total_revenue"], 30000.0);

    // Usage and health count the turn, its two model calls and its tool call.
    let (_, usage) = send(
        &f.server,
        Method::GET,
        "/api/usage?group_by=agent",
        &f.key,
        None,
    )
    .await;
    let group = &usage["groups"][0];
    assert_eq!(group["key"], "dexter");
    assert_eq!(group["llm_calls"], 2);
    assert!(group["cost_usd"].as_f64().unwrap() > 0.0, "{usage}");
    assert_eq!(usage["tool_calls"][0]["tool_calls"], 1);
    let (_, by_model) = send(
        &f.server,
        Method::GET,
        "/api/usage?group_by=model",
        &f.key,
        None,
    )
    .await;
    assert_eq!(by_model["groups"][0]["key"], "gpt-4o-mini");
    let (status, _) = send(
        &f.server,
        Method::GET,
        "/api/usage?group_by=plugin",
        &f.key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, health) = send(
        &f.server,
        Method::GET,
        "/api/agents/dexter/health",
        &f.key,
        None,
    )
    .await;
    assert_eq!(health["turns"]["requests"], 1);
    assert_eq!(health["turns"]["success_rate"], 1.0);
    assert!(health["turns"]["p95_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(health["tools"]["calls"], 1);
    assert_eq!(health["tools"]["success_rate"], 1.0);
    f.server.stop().await;
}

/// The status and error of the test's only turn once it has stopped running (or after
/// 30 s, so a turn stuck in `running` fails the assertion that follows).
async fn turn_after_it_ends(pool: &sqlx::PgPool) -> (String, Option<String>) {
    let started = Instant::now();
    loop {
        let (status, error): (String, Option<String>) =
            sqlx::query_as("SELECT status, error FROM turns")
                .fetch_one(pool)
                .await
                .unwrap();
        if status != "running" || started.elapsed() > Duration::from_secs(30) {
            return (status, error);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `data:` payloads of an SSE body, in order.
fn sse_parts(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn a_streamed_turn_follows_the_ui_message_stream_protocol() {
    let (f, fake) = dexter_with_llm(|_| {}).await;
    fake.reply(Reply::ToolCalls(vec![tool_call(
        "call_1",
        "revenue_analysis",
        json!({ "period": "2025-Q4" }),
    )]));
    fake.reply(Reply::Text("Revenue was 30000 USD.".into()));
    let response = f
        .server
        .request(Method::POST, "/api/agents/dexter/chat", &f.key)
        .header("accept", "text/event-stream")
        .json(&json!({ "message": "Analyse Q4 revenue" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-vercel-ai-ui-message-stream"], "v1");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let parts = sse_parts(&response.text().await.unwrap());
    assert_eq!(parts.last().unwrap(), "[DONE]");
    let parts: Vec<Value> = parts[..parts.len() - 1]
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .collect();
    let types: Vec<&str> = parts.iter().map(|p| p["type"].as_str().unwrap()).collect();
    let text_deltas = types.iter().filter(|t| **t == "text-delta").count();
    let mut expected = vec![
        "start",
        "start-step",
        "tool-input-start",
        "tool-input-available",
        "tool-output-available",
        "finish-step",
        "start-step",
        "text-start",
    ];
    expected.extend(std::iter::repeat_n("text-delta", text_deltas));
    expected.extend(["text-end", "finish-step", "finish"]);
    assert_eq!(types, expected);
    assert!(
        text_deltas >= 2,
        "the text arrives in pieces as the model streams it"
    );
    let text: String = parts
        .iter()
        .filter(|p| p["type"] == "text-delta")
        .map(|p| p["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Revenue was 30000 USD.");
    assert_eq!(parts[3]["toolName"], "revenue_analysis");
    assert_eq!(parts[3]["input"]["period"], "2025-Q4");
    assert_eq!(parts[4]["toolCallId"], "call_1");
    assert_eq!(parts[4]["output"]["total_revenue"], 30000.0);
    // Text parts share an id; the start carries the conversation to continue.
    assert_eq!(parts[7]["id"], parts[8]["id"]);
    let conversation = parts[0]["messageMetadata"]["conversationId"]
        .as_str()
        .unwrap();
    let (status, record) = send(
        &f.server,
        Method::GET,
        &format!("/api/conversations/{conversation}"),
        &f.key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(record["turns"][0]["status"], "completed");
    assert_eq!(record["messages"].as_array().unwrap().len(), 4);
    f.server.stop().await;
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_the_turn() {
    let (f, fake) = dexter_with_llm(|_| {}).await;
    fake.reply(Reply::ToolCalls(vec![tool_call(
        "call_1",
        "roi",
        json!({ "investment": 1, "returns": 2 }),
    )]));
    // The second model call never answers in time: the client leaves meanwhile.
    fake.reply(Reply::After(
        Duration::from_secs(120),
        Box::new(Reply::Text("too late".into())),
    ));
    let response = f
        .server
        .request(Method::POST, "/api/agents/dexter/chat", &f.key)
        .header("accept", "text/event-stream")
        .json(&json!({ "message": "What is my ROI?" }))
        .send()
        .await
        .unwrap();
    let mut response = response;
    let mut seen = String::new();
    while !seen.contains("tool-output-available") {
        let chunk = response.chunk().await.unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(response);
    let pool = sqlx::PgPool::connect(&f.server.database_url).await.unwrap();
    let status = turn_after_it_ends(&pool).await;
    assert_eq!(status.0, "cancelled");
    assert!(status.1.unwrap().contains("disconnected"));
    // What did happen is kept: the user's message and the finished tool call.
    let calls: i64 = sqlx::query_scalar("SELECT count(*) FROM tool_calls WHERE outcome = 'ok'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(calls, 1);
    let (_, health) = send(
        &f.server,
        Method::GET,
        "/api/agents/dexter/health",
        &f.key,
        None,
    )
    .await;
    assert_eq!(health["turns"]["cancelled"], 1);
    assert_eq!(health["turns"]["running"], 0);
    f.server.stop().await;
}

#[tokio::test]
async fn a_json_client_that_gives_up_cancels_the_turn_too() {
    let (f, fake) = dexter_with_llm(|_| {}).await;
    fake.reply(Reply::After(
        Duration::from_secs(120),
        Box::new(Reply::Text("too late".into())),
    ));
    let request = f
        .server
        .request(Method::POST, "/api/agents/dexter/chat", &f.key)
        .timeout(Duration::from_millis(500))
        .json(&json!({ "message": "slow one" }));
    assert!(request.send().await.unwrap_err().is_timeout());
    let pool = sqlx::PgPool::connect(&f.server.database_url).await.unwrap();
    let (status, _) = turn_after_it_ends(&pool).await;
    assert_eq!(status, "cancelled");
    f.server.stop().await;
}

#[tokio::test]
async fn a_turn_that_outlives_its_limit_is_failed_with_a_reason() {
    let (f, fake) =
        dexter_with_llm(|config| config.chat_turn_timeout = Duration::from_millis(700)).await;
    fake.reply(Reply::After(
        Duration::from_secs(30),
        Box::new(Reply::Text("too late".into())),
    ));
    let (status, body) = send(
        &f.server,
        Method::POST,
        "/api/agents/dexter/chat",
        &f.key,
        Some(json!({ "message": "slow" })),
    )
    .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(body["error"]["code"], "turn_timeout");
    // Streamed: an error part, then the end of the stream.
    fake.reply(Reply::After(
        Duration::from_secs(30),
        Box::new(Reply::Text("too late".into())),
    ));
    let response = f
        .server
        .request(Method::POST, "/api/agents/dexter/chat", &f.key)
        .header("accept", "text/event-stream")
        .json(&json!({ "message": "slow again" }))
        .send()
        .await
        .unwrap();
    let parts = sse_parts(&response.text().await.unwrap());
    assert_eq!(parts.last().unwrap(), "[DONE]");
    assert!(
        parts[parts.len() - 2].contains("took longer than"),
        "{parts:?}"
    );
    let pool = sqlx::PgPool::connect(&f.server.database_url).await.unwrap();
    let statuses: Vec<(String, String)> =
        sqlx::query_as("SELECT status, error FROM turns ORDER BY started_at")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(statuses.len(), 2);
    assert!(
        statuses
            .iter()
            .all(|(s, e)| s == "failed" && e.contains("took longer than")),
        "{statuses:?}"
    );
    f.server.stop().await;
}

#[tokio::test]
async fn tools_run_in_parallel_and_their_failures_go_back_to_the_model() {
    let (f, fake) =
        dexter_with_llm(|config| config.chat_tool_timeout = Duration::from_secs(1)).await;
    let mut faults = json!({ "name": "faults", "version": "1.0.0", "kind": "tool",
                             "limits": { "timeout_ms": 10000 } });
    faults["description"] = json!("test faults");
    assert_eq!(
        f.server
            .upload_plugin(&faults, plugin_wasm("faults"), true)
            .await
            .status(),
        StatusCode::CREATED
    );
    let agent = json!({ "slug": "tester", "name": "Tester", "tools": [
        { "plugin": "faults", "tool": "spin" }, { "plugin": "dexter", "tool": "break_even" },
        { "plugin": "dexter", "tool": "roi" } ] });
    let (status, _) = send(&f.server, Method::POST, "/api/agents", &f.key, Some(agent)).await;
    assert_eq!(status, StatusCode::CREATED);
    fake.reply(Reply::ToolCalls(vec![
        tool_call("a", "spin", json!({})),
        tool_call("b", "spin", json!({})),
        tool_call(
            "c",
            "break_even",
            json!({ "fixed_costs": 1, "price_per_unit": 1, "variable_cost_per_unit": 2 }),
        ),
        tool_call("d", "roi", json!({ "investment": "lots" })),
        tool_call("e", "forecast_revenue", json!({ "horizon_months": 1 })),
    ]));
    fake.reply(Reply::Text("Some tools failed.".into()));
    let started = Instant::now();
    let (status, body) = send(
        &f.server,
        Method::POST,
        "/api/agents/tester/chat",
        &f.key,
        Some(json!({ "message": "try everything" })),
    )
    .await;
    let elapsed = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{body}");
    let outcomes: Vec<&str> = body["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["outcome"].as_str().unwrap())
        .collect();
    // Two spins hit the 1 s per-tool limit; a plugin error, a schema error, and a tool
    // this agent doesn't have.
    assert_eq!(
        outcomes,
        [
            "timeout",
            "timeout",
            "tool_error",
            "invalid_input",
            "not_found"
        ]
    );
    // Both 1 s timeouts passed within one turn well under 2 s: they ran at the same time.
    assert!(elapsed < Duration::from_millis(1900), "{elapsed:?}");
    let second = &fake.requests()[1].1["messages"];
    let results: Vec<Value> = second
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| serde_json::from_str(m["content"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(results.len(), 5);
    assert!(
        results[2]["error"]
            .as_str()
            .unwrap()
            .contains("no break-even point")
    );
    assert!(
        results[4]["error"]
            .as_str()
            .unwrap()
            .contains("no tool named")
    );
    assert_eq!(body["message"]["content"], "Some tools failed.");
    f.server.stop().await;
}

#[tokio::test]
async fn a_tool_output_too_big_for_the_model_is_replaced_by_an_error() {
    let (f, fake) = dexter_with_llm(|_| {}).await;
    let manifest = json!({ "name": "sqlprobe", "version": "1.0.0", "kind": "tool",
        "capabilities": { "database": { "tables": {} } } });
    assert_eq!(
        f.server
            .upload_plugin(&manifest, plugin_wasm("sqlprobe"), true)
            .await
            .status(),
        StatusCode::CREATED
    );
    let grant = f
        .server
        .request(
            Method::PUT,
            "/api/admin/plugins/sqlprobe/versions/1.0.0/grants",
            agenthost_tests::ADMIN_TOKEN,
        )
        .json(&manifest["capabilities"])
        .send()
        .await
        .unwrap();
    assert_eq!(grant.status(), StatusCode::OK);
    let agent =
        json!({ "slug": "sql", "name": "SQL", "tools": [{ "plugin": "sqlprobe", "tool": "run" }] });
    assert_eq!(
        send(&f.server, Method::POST, "/api/agents", &f.key, Some(agent))
            .await
            .0,
        StatusCode::CREATED
    );
    // 40 000 characters of output: more than the 32 KiB passed back to the model.
    let big = json!({ "statements": [{ "sql": "SELECT repeat('x', 40000) AS big" }] });
    fake.reply(Reply::ToolCalls(vec![tool_call("big", "run", big)]));
    fake.reply(Reply::Text("it was too big".into()));
    let (status, body) = send(
        &f.server,
        Method::POST,
        "/api/agents/sql/chat",
        &f.key,
        Some(json!({ "message": "go" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The record keeps the whole output; the model gets an error instead.
    assert_eq!(body["tool_calls"][0]["outcome"], "ok");
    let tool_message = fake.requests()[1].1["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap()
        .clone();
    let content = tool_message["content"].as_str().unwrap();
    assert!(
        content.len() < 1000 && content.contains("more than the 32768"),
        "{}",
        &content[..200.min(content.len())]
    );
    f.server.stop().await;
}

#[tokio::test]
async fn the_step_limit_ends_a_turn_that_keeps_calling_tools() {
    let (f, fake) = dexter_with_llm(|_| {}).await;
    let (status, _) = send(
        &f.server,
        Method::PATCH,
        "/api/agents/dexter",
        &f.key,
        Some(json!({ "max_steps": 2 })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for id in ["1", "2"] {
        fake.reply(Reply::ToolCalls(vec![tool_call(
            id,
            "roi",
            json!({ "investment": 1, "returns": 2 }),
        )]));
    }
    let (status, body) = send(
        &f.server,
        Method::POST,
        "/api/agents/dexter/chat",
        &f.key,
        Some(json!({ "message": "loop" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["steps"], 2);
    assert_eq!(body["stopped"], "step_limit");
    assert_eq!(body["tool_calls"].as_array().unwrap().len(), 1);
    // The last step asks the model to answer without tools.
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].1.get("tool_choice"), None);
    assert_eq!(requests[1].1["tool_choice"], "none");

    // A tool pinned to a version that isn't installed is not offered, and the agent
    // says why.
    let pinned = json!({ "tools": [{ "plugin": "dexter", "tool": "roi", "version": "0.0.9" }] });
    let (status, agent) = send(
        &f.server,
        Method::PATCH,
        "/api/agents/dexter",
        &f.key,
        Some(pinned),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(agent["tool_status"][0]["available"], false);
    let problem = agent["tool_status"][0]["problem"].as_str().unwrap();
    assert!(
        problem.contains("dexter 0.0.9 is not installed"),
        "{problem}"
    );
    fake.reply(Reply::Text("no tools".into()));
    let (status, _) = send(
        &f.server,
        Method::POST,
        "/api/agents/dexter/chat",
        &f.key,
        Some(json!({ "message": "anything?" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fake.requests()[2].1.get("tools"), None);

    // Pinned to a version that is installed but no longer active: offered, and the
    // call runs on that version.
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dexter/manifest.json");
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let old_version = manifest["version"].as_str().unwrap().to_string();
    manifest["version"] = json!("9.0.0");
    let response = f
        .server
        .upload_plugin(&manifest, agenthost_tests::plugin_wasm("dexter"), true)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let pinned =
        json!({ "tools": [{ "plugin": "dexter", "tool": "roi", "version": old_version }] });
    let (status, agent) = send(
        &f.server,
        Method::PATCH,
        "/api/agents/dexter",
        &f.key,
        Some(pinned),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(agent["tool_status"][0]["available"], true, "{agent}");
    fake.reply(Reply::ToolCalls(vec![tool_call(
        "p1",
        "roi",
        json!({ "investment": 100, "returns": 150 }),
    )]));
    fake.reply(Reply::Text("50% ROI".into()));
    let (status, body) = send(
        &f.server,
        Method::POST,
        "/api/agents/dexter/chat",
        &f.key,
        Some(json!({ "message": "roi?" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let call = &body["tool_calls"][0];
    assert_eq!(
        (call["version"].clone(), call["outcome"].clone()),
        (json!(old_version), json!("ok")),
        "{body}"
    );
    f.server.stop().await;
}

#[tokio::test]
async fn llm_failures_are_clear_and_recorded() {
    // No provider at all: 503 naming the settings, and nothing is recorded.
    let server = TestServer::start().await;
    let (_, key) = server.create_workspace("nollm").await;
    let (status, body) = send(
        &server,
        Method::POST,
        "/api/agents/dexter/chat",
        &key,
        Some(json!({ "message": "hi" })),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("AGENTHOST_LLM_BASE_URL") && message.contains("--llm-base-url"),
        "{message}"
    );
    let (_, list) = send(&server, Method::GET, "/api/conversations", &key, None).await;
    assert_eq!(list["conversations"], json!([]));
    server.stop().await;

    let (f, fake) = dexter_with_llm(|_| {}).await;
    fake.reply(Reply::Status(400, "model not found".into()));
    let (status, body) = send(
        &f.server,
        Method::POST,
        "/api/agents/dexter/chat",
        &f.key,
        Some(json!({ "message": "first" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(body["error"]["code"], "llm_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("model not found")
    );
    let id = body["error"]["conversation_id"].as_str().unwrap();
    let (_, record) = send(
        &f.server,
        Method::GET,
        &format!("/api/conversations/{id}"),
        &f.key,
        None,
    )
    .await;
    assert_eq!(record["messages"][0]["content"], "first");
    assert_eq!(record["turns"][0]["status"], "failed");
    assert!(
        record["turns"][0]["error"]
            .as_str()
            .unwrap()
            .contains("model not found")
    );

    fake.reply(Reply::Status(500, "overloaded".into()));
    let (status, body) = send(
        &f.server,
        Method::POST,
        "/api/agents/dexter/chat",
        &f.key,
        Some(json!({ "message": "second", "conversation_id": id })),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "llm_unavailable");

    // Streamed, the failure is an error part, then the stream ends.
    fake.reply(Reply::Status(500, "overloaded".into()));
    let response = f
        .server
        .request(Method::POST, "/api/agents/dexter/chat", &f.key)
        .header("accept", "text/event-stream")
        .json(&json!({ "message": "third", "conversation_id": id }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let parts = sse_parts(&response.text().await.unwrap());
    let error: Value = serde_json::from_str(&parts[parts.len() - 2]).unwrap();
    assert_eq!(error["type"], "error");
    assert!(error["errorText"].as_str().unwrap().contains("overloaded"));
    assert_eq!(parts.last().unwrap(), "[DONE]");
    let (_, health) = send(
        &f.server,
        Method::GET,
        "/api/agents/dexter/health",
        &f.key,
        None,
    )
    .await;
    assert_eq!(health["turns"]["failed"], 3);
    assert_eq!(health["turns"]["success_rate"], 0.0);
    f.server.stop().await;
}

#[tokio::test]
async fn conversations_continue_within_a_window_and_can_be_deleted() {
    let (f, fake) = dexter_with_llm(|config| config.chat_context_messages = 3).await;
    let chat = |message: &str, conversation: Option<&str>| {
        let mut body = json!({ "message": message });
        if let Some(id) = conversation {
            body["conversation_id"] = json!(id);
        }
        send(
            &f.server,
            Method::POST,
            "/api/agents/dexter/chat",
            &f.key,
            Some(body),
        )
    };
    let (_, first) = chat("one", None).await;
    let id = first["conversation_id"].as_str().unwrap().to_string();
    chat("two", Some(&id)).await;
    let (status, third) = chat("three", Some(&id)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(third["message"]["content"], "echo: three");
    // Window of 3: the system prompt, then "two", its answer, "three".
    let messages = &fake.requests()[2].1["messages"];
    let contents: Vec<&str> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(contents.len(), 4, "{contents:?}");
    assert_eq!(&contents[1..], ["two", "echo: two", "three"]);

    // Another agent can't continue Dexter's conversation; unknown ids are 404.
    let (status, _) = send(
        &f.server,
        Method::POST,
        "/api/agents/cassie/chat",
        &f.key,
        Some(json!({ "message": "hi", "conversation_id": id })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = chat("x", Some("00000000-0000-0000-0000-000000000000")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = chat("   ", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = chat(&"x".repeat(40 * 1024), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Another workspace can't read or continue it.
    let (_, stranger) = f.server.create_workspace("stranger").await;
    let (status, _) = send(
        &f.server,
        Method::GET,
        &format!("/api/conversations/{id}"),
        &stranger,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(
        &f.server,
        Method::POST,
        "/api/agents/dexter/chat",
        &stranger,
        Some(json!({ "message": "hi", "conversation_id": id })),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, usage) = send(
        &f.server,
        Method::GET,
        "/api/usage?from=yesterday",
        &f.key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{usage}");
    let (_, usage) = send(
        &f.server,
        Method::GET,
        "/api/usage?from=2020-01-01&group_by=day",
        &f.key,
        None,
    )
    .await;
    assert_eq!(
        usage["groups"].as_array().unwrap().len(),
        1,
        "three turns today: {usage}"
    );
    assert_eq!(usage["groups"][0]["llm_calls"], 3);

    let (_, list) = send(
        &f.server,
        Method::GET,
        "/api/conversations?agent=dexter",
        &f.key,
        None,
    )
    .await;
    assert_eq!(list["conversations"].as_array().unwrap().len(), 1);
    let (status, _) = send(
        &f.server,
        Method::DELETE,
        &format!("/api/conversations/{id}"),
        &f.key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(
        &f.server,
        Method::GET,
        &format!("/api/conversations/{id}"),
        &f.key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    f.server.stop().await;
}

#[tokio::test]
async fn agents_exist_by_default_and_admins_manage_them() {
    let server = TestServer::start().await;
    let (workspace, key) = server.create_workspace("agents").await;
    let (_, list) = send(&server, Method::GET, "/api/agents", &key, None).await;
    let slugs: Vec<&str> = list["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["slug"].as_str().unwrap())
        .collect();
    // Created together, so listed by slug.
    assert_eq!(slugs, ["aura", "cassie", "dexter"]);
    // Dexter's tools are named, but its plugin isn't installed on this server.
    let dexter = &list["agents"][2];
    assert_eq!(dexter["tools"].as_array().unwrap().len(), 9);
    assert_eq!(dexter["tool_status"][0]["available"], false);
    assert!(
        dexter["tool_status"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("no active plugin dexter")
    );

    let (_, member) = server.create_key(&workspace, "member").await;
    let new = json!({ "slug": "analyst", "name": "Analyst", "system_prompt": "Be terse.", "temperature": 0.2,
                      "tools": [{ "plugin": "dexter", "tool": "roi", "version": "9.9.9" }] });
    let (status, _) = send(
        &server,
        Method::POST,
        "/api/agents",
        &member,
        Some(new.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, created) = send(
        &server,
        Method::POST,
        "/api/agents",
        &key,
        Some(new.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["tools"][0]["version"], "9.9.9");
    let (status, _) = send(&server, Method::POST, "/api/agents", &key, Some(new)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = send(
        &server,
        Method::POST,
        "/api/agents",
        &key,
        Some(json!({ "slug": "x", "name": "X", "temperature": 3 })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let two = json!({ "slug": "y", "name": "Y", "tools": [{ "plugin": "a", "tool": "t" }, { "plugin": "b", "tool": "t" }] });
    let (status, _) = send(&server, Method::POST, "/api/agents", &key, Some(two)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // By id or slug; updates keep what they don't mention; null clears the model.
    let id = created["id"].as_str().unwrap();
    let (status, updated) = send(
        &server,
        Method::PATCH,
        &format!("/api/agents/{id}"),
        &key,
        Some(json!({ "model": "gpt-4.1", "enabled": false })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (updated["model"].as_str(), updated["system_prompt"].as_str()),
        (Some("gpt-4.1"), Some("Be terse."))
    );
    let (_, cleared) = send(
        &server,
        Method::PATCH,
        "/api/agents/analyst",
        &key,
        Some(json!({ "model": null })),
    )
    .await;
    assert_eq!(cleared["model"], Value::Null);
    let (status, body) = send(
        &server,
        Method::POST,
        "/api/agents/analyst/chat",
        &key,
        Some(json!({ "message": "hi" })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = send(&server, Method::DELETE, "/api/agents/analyst", &key, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(
        &server,
        Method::GET,
        &format!("/api/agents/{id}"),
        &key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Another workspace has its own three.
    let (_, other) = server.create_workspace("agents-2").await;
    let (_, list) = send(&server, Method::GET, "/api/agents", &other, None).await;
    assert_eq!(list["agents"].as_array().unwrap().len(), 3);
    server.stop().await;
}

/// The types of a stream's parts, `[DONE]` included.
fn part_types(body: &str) -> Vec<String> {
    sse_parts(body)
        .iter()
        .map(|part| match serde_json::from_str::<Value>(part) {
            Ok(part) => part["type"].as_str().unwrap_or_default().to_string(),
            Err(_) => part.clone(),
        })
        .collect()
}

#[tokio::test]
async fn a_step_the_provider_fails_is_closed_like_every_other_step() {
    let (f, fake) = dexter_with_llm(|_| {}).await;
    let stream = |message: &'static str| {
        f.server
            .request(Method::POST, "/api/agents/dexter/chat", &f.key)
            .header("accept", "text/event-stream")
            .json(&json!({ "message": message }))
            .send()
    };

    // The provider refuses the first step.
    fake.reply(Reply::Status(400, "model not found".into()));
    let body = stream("first").await.unwrap().text().await.unwrap();
    assert_eq!(
        part_types(&body),
        ["start", "start-step", "finish-step", "error", "[DONE]"],
        "{body}"
    );

    // A tool step, then the provider fails the second step.
    fake.reply(Reply::ToolCalls(vec![tool_call(
        "call_1",
        "revenue_analysis",
        json!({ "period": "2025-Q4" }),
    )]));
    fake.reply(Reply::Status(400, "context too long".into()));
    let body = stream("second").await.unwrap().text().await.unwrap();
    assert_eq!(
        part_types(&body),
        [
            "start",
            "start-step",
            "tool-input-start",
            "tool-input-available",
            "tool-output-available",
            "finish-step",
            "start-step",
            "finish-step",
            "error",
            "[DONE]"
        ],
        "{body}"
    );
    let parts = sse_parts(&body);
    let error: Value = serde_json::from_str(&parts[parts.len() - 2]).unwrap();
    assert!(
        error["errorText"]
            .as_str()
            .unwrap()
            .contains("context too long"),
        "{error}"
    );
    f.server.stop().await;
}

/// A model may write NUL (in its text or a tool call's arguments), which the database
/// can't store: the turn completes, and what is stored and shown holds U+FFFD instead.
#[tokio::test]
async fn a_nul_from_the_model_is_stored_as_a_replacement_character() {
    let (f, fake) = dexter_with_llm(|_| {}).await;
    fake.reply(Reply::ToolCalls(vec![tool_call(
        "call_1",
        "revenue_analysis",
        json!({ "period": "2025-Q4", "note": "a\u{0}b" }),
    )]));
    fake.reply(Reply::Text("Revenue\u{0} was 30000 USD.".into()));
    let (status, body) = send(
        &f.server,
        Method::POST,
        "/api/agents/dexter/chat",
        &f.key,
        Some(json!({ "message": "Analyse Q4 revenue" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "completed", "{body}");
    let conversation = body["conversation_id"].as_str().unwrap().to_string();
    let (status, detail) = send(
        &f.server,
        Method::GET,
        &format!("/api/conversations/{conversation}"),
        &f.key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    let messages = detail["messages"].as_array().unwrap();
    assert_eq!(
        messages.last().unwrap()["content"],
        "Revenue\u{FFFD} was 30000 USD.",
        "{detail}"
    );
    // The call's arguments, as the model wrote them (JSON text), and as parsed.
    let call = &detail["turns"][0]["tool_calls"][0];
    assert_eq!(call["input"]["note"], "a\u{FFFD}b", "{detail}");
}

/// A turn that ends is the workspace's `agent.turn.completed` (or `.failed`) event.
#[tokio::test]
async fn an_ended_turn_is_an_event() {
    let (f, fake) = dexter_with_llm(|_| {}).await;
    fake.reply(Reply::Text("Hello.".into()));
    fake.reply(Reply::Status(500, "the model is down".into()));
    for message in ["Hi", "Again"] {
        send(
            &f.server,
            Method::POST,
            "/api/agents/dexter/chat",
            &f.key,
            Some(json!({ "message": message })),
        )
        .await;
    }
    let mut found = Vec::new();
    for _ in 0..500 {
        let (status, page) = send(
            &f.server,
            Method::GET,
            "/api/events?type=agent.turn",
            &f.key,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        found = page["events"].as_array().unwrap().clone();
        if found.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let types: Vec<&str> = found.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["agent.turn.completed", "agent.turn.failed"],
        "{found:?}"
    );
    assert_eq!(found[0]["payload"]["agent"], "dexter");
    assert_eq!(found[0]["subject"], found[0]["payload"]["turn_id"]);
    assert!(found[0]["actor"].as_str().unwrap().starts_with("key:"));
}
