//! The Vercel AI SDK's chat client unmodified against our chat endpoint: the `ai`
//! package's `AbstractChat` + `DefaultChatTransport` (what `useChat` runs) sends the
//! requests, its parser validates every chunk and assembles the message; continuing a
//! chat id continues our conversation; approvals pause a turn and the client's answer
//! runs the tool or tells the model it was denied. Also the same approvals on our JSON
//! body, and their errors.

use std::path::Path;

use agenthost_tests::fake_openai::{FakeOpenAi, Reply};
use agenthost_tests::{StatusCode, node_modules};
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

fn call(id: &str, tool: &str, arguments: Value) -> (String, String, Value) {
    (id.into(), tool.into(), arguments)
}

/// An admin marks Dexter's `profit_and_loss` as needing approval.
async fn gate_profit_and_loss(f: &Fixture) {
    let agent: Value = f
        .server
        .send(&f.key, Method::GET, "/api/agents/dexter", None)
        .await
        .json()
        .await
        .unwrap();
    let mut tools = agent["tools"].as_array().unwrap().clone();
    for tool in &mut tools {
        if tool["tool"] == "profit_and_loss" {
            tool["requires_approval"] = json!(true);
        }
    }
    let response = f
        .server
        .send(
            &f.key,
            Method::PATCH,
            "/api/agents/dexter",
            Some(json!({ "tools": tools })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let agent: Value = response.json().await.unwrap();
    let gated: Vec<&Value> = agent["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["requires_approval"] == true)
        .collect();
    assert_eq!(gated.len(), 1, "{agent}");
    assert_eq!(gated[0]["tool"], "profit_and_loss");
}

/// The types of an exchange's chunks, a run of `text-delta`s counted as one.
fn chunk_types(exchange: &Value) -> Vec<&str> {
    let mut types: Vec<&str> = exchange["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    types.dedup_by(|a, b| *a == "text-delta" && *b == "text-delta");
    types
}

/// The parts of a UI message other than step boundaries.
fn content_parts(message: &Value) -> Vec<&Value> {
    message["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] != "step-start")
        .collect()
}

fn chat_requests(fake: &FakeOpenAi) -> Vec<Value> {
    fake.requests()
        .into_iter()
        .filter(|(path, _)| path == "/chat/completions")
        .map(|(_, body)| body)
        .collect()
}

#[tokio::test]
async fn the_ai_sdk_chat_client_streams_dexter_continues_chats_and_answers_approvals() {
    let modules = node_modules();
    assert!(
        modules.join("ai/package.json").is_file(),
        "the ai npm package is not in {} (run `make nodeclients`)",
        modules.display()
    );
    let (f, fake) = dexter_with_llm().await;
    gate_profit_and_loss(&f).await;
    let period = json!({ "period": "2025-Q4" });
    // chat-plain: a tool call and the answer, then a second message.
    fake.reply(Reply::ToolCalls(vec![call(
        "call_rev",
        "revenue_analysis",
        period.clone(),
    )]));
    fake.reply(Reply::Text("Q4 2025 revenue was 30000 USD.".into()));
    fake.reply(Reply::Text("Q4 was well up on Q3.".into()));
    // chat-approved and chat-denied: the gated tool, then the answer after the decision.
    fake.reply(Reply::ToolCalls(vec![call(
        "call_pl_1",
        "profit_and_loss",
        period.clone(),
    )]));
    fake.reply(Reply::Text(
        "Q4 2025 operating income was 13500 USD.".into(),
    ));
    fake.reply(Reply::ToolCalls(vec![call(
        "call_pl_2",
        "profit_and_loss",
        period.clone(),
    )]));
    fake.reply(Reply::Text(
        "I did not look the profit up, as you asked.".into(),
    ));

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("node/ai_sdk_chat.cjs");
    let output = tokio::process::Command::new("node")
        .arg(&script)
        .arg(&f.server.base)
        .arg(&f.key)
        .arg("dexter")
        .env("NODE_PATH", &modules)
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
    let pool = sqlx::PgPool::connect(&f.server.database_url).await.unwrap();

    // Every response was the stream (useChat sends no Accept header), and the ai
    // package's schema accepted every chunk of it.
    for chat in ["plain", "approved", "denied"] {
        let result = &out[chat];
        assert_eq!(result["status"], "ready", "{result}");
        assert!(result["error"].is_null(), "{result}");
        for exchange in result["exchanges"].as_array().unwrap() {
            assert_eq!(exchange["status"], 200, "{exchange}");
            assert!(exchange["accept"].is_null(), "{exchange}");
            let content_type = exchange["contentType"].as_str().unwrap();
            assert!(content_type.starts_with("text/event-stream"), "{exchange}");
            assert_eq!(exchange["protocol"], "v1");
            assert_eq!(exchange["invalid"], json!([]), "{exchange}");
            assert_eq!(exchange["request"]["trigger"], "submit-message");
        }
    }

    // The first turn: the transport's body, our chunks, the message it assembled.
    let first = &out["first"]["exchanges"][0];
    assert_eq!(first["request"]["id"], "chat-plain");
    assert_eq!(first["request"]["messages"].as_array().unwrap().len(), 1);
    assert_eq!(
        chunk_types(first),
        [
            "start",
            "start-step",
            "tool-input-start",
            "tool-input-available",
            "tool-output-available",
            "finish-step",
            "start-step",
            "text-start",
            "text-delta",
            "text-end",
            "finish-step",
            "finish"
        ]
    );
    let answer = &out["first"]["messages"][1];
    assert_eq!(answer["role"], "assistant");
    let parts = content_parts(answer);
    assert_eq!(parts.len(), 2, "{answer}");
    assert_eq!(parts[0]["type"], "tool-revenue_analysis");
    assert_eq!(parts[0]["state"], "output-available");
    assert_eq!(parts[0]["input"], period);
    assert_eq!(parts[0]["output"]["total_revenue"], 30000.0);
    assert_eq!(parts[1]["type"], "text");
    assert_eq!(parts[1]["text"], "Q4 2025 revenue was 30000 USD.");
    assert_eq!(parts[1]["state"], "done");
    let conversation_id = answer["metadata"]["conversationId"].as_str().unwrap();

    // The same chat id continues our conversation: the client sent all three
    // messages, the model got our record of the first turn, tool exchange included.
    let plain = &out["plain"];
    let second = &plain["exchanges"][1];
    assert_eq!(second["request"]["id"], "chat-plain");
    assert_eq!(second["request"]["messages"].as_array().unwrap().len(), 3);
    let messages = plain["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4);
    assert_eq!(
        content_parts(&messages[3])[0]["text"],
        "Q4 was well up on Q3."
    );
    assert_eq!(
        messages[3]["metadata"]["conversationId"], conversation_id,
        "one conversation"
    );
    let requests = chat_requests(&fake);
    let roles: Vec<&str> = requests[2]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["system", "user", "assistant", "tool", "assistant", "user"]
    );
    assert_eq!(
        requests[2]["messages"][5]["content"],
        "And compared with Q3?"
    );
    let (id, turns): (Uuid, i64) = sqlx::query_as(
        "SELECT c.id, (SELECT count(*) FROM turns t WHERE t.conversation_id = c.id) \
         FROM conversations c WHERE c.chat_id = 'chat-plain'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(id.to_string(), conversation_id);
    assert_eq!(turns, 2);

    // Approved: the turn paused with the approval request, the chat sent the answer by
    // itself, the tool ran and the same assistant message went on to the answer.
    let approval_id = out["approvalId"].as_str().unwrap();
    let paused = out["paused"].as_array().unwrap();
    let waiting = content_parts(&paused[1]);
    assert_eq!(waiting[0]["type"], "tool-profit_and_loss");
    assert_eq!(waiting[0]["state"], "approval-requested");
    assert_eq!(waiting[0]["toolCallId"], "call_pl_1");
    let approved = &out["approved"];
    let exchanges = approved["exchanges"].as_array().unwrap();
    assert_eq!(exchanges.len(), 2);
    assert_eq!(
        chunk_types(&exchanges[0]),
        [
            "start",
            "start-step",
            "tool-input-start",
            "tool-input-available",
            "tool-approval-request",
            "finish-step",
            "finish"
        ]
    );
    let request = &exchanges[0]["chunks"][4];
    assert_eq!(
        (
            request["approvalId"].as_str(),
            request["toolCallId"].as_str()
        ),
        (Some(approval_id), Some("call_pl_1"))
    );
    assert_eq!(exchanges[0]["chunks"][6]["finishReason"], "tool-calls");
    let answer_sent = exchanges[1]["request"]["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap();
    let answered = content_parts(answer_sent)[0];
    assert_eq!(answered["state"], "approval-responded");
    assert_eq!(answered["approval"]["id"], approval_id);
    assert_eq!(answered["approval"]["approved"], true);
    assert_eq!(
        chunk_types(&exchanges[1]),
        [
            "start",
            "tool-output-available",
            "start-step",
            "text-start",
            "text-delta",
            "text-end",
            "finish-step",
            "finish"
        ]
    );
    let messages = approved["messages"].as_array().unwrap();
    assert_eq!(
        messages.len(),
        2,
        "the paused message went on: {messages:?}"
    );
    let parts = content_parts(&messages[1]);
    assert_eq!(parts[0]["state"], "output-available");
    assert_eq!(parts[0]["output"]["operating_income"], 13500.0);
    assert_eq!(parts[1]["text"], "Q4 2025 operating income was 13500 USD.");

    // Denied: the tool did not run, the model was told, and answered without it.
    let denied = &out["denied"];
    let messages = denied["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    let parts = content_parts(&messages[1]);
    assert_eq!(parts[0]["state"], "output-denied");
    assert_eq!(parts[0]["approval"]["reason"], "not now");
    assert_eq!(
        parts[1]["text"],
        "I did not look the profit up, as you asked."
    );
    assert_eq!(
        chunk_types(&denied["exchanges"][1])[..3],
        ["start", "tool-output-denied", "start-step"]
    );
    let requests = chat_requests(&fake);
    assert_eq!(requests.len(), 7);
    let told = requests[6]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool" && m["tool_call_id"] == "call_pl_2")
        .unwrap();
    let told = told["content"].as_str().unwrap();
    assert!(
        told.contains("denied") && told.contains("not now"),
        "{told}"
    );

    // The record: the approved call ran, the denied one did not; both approvals are
    // answered and both turns completed after their pause.
    let calls: Vec<(String, String, Option<Value>)> = sqlx::query_as(
        "SELECT call_id, outcome, output FROM tool_calls \
         WHERE call_id IN ('call_pl_1', 'call_pl_2') ORDER BY call_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].1, "ok");
    assert_eq!(calls[0].2.as_ref().unwrap()["operating_income"], 13500.0);
    assert_eq!(
        (calls[1].1.as_str(), calls[1].2.is_none()),
        ("denied", true)
    );
    let approvals: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT call_id, status, reason, decided_by FROM tool_approvals ORDER BY call_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(approvals.len(), 2);
    assert_eq!(
        (approvals[0].1.as_str(), approvals[1].1.as_str()),
        ("approved", "denied")
    );
    assert_eq!(approvals[1].2.as_deref(), Some("not now"));
    assert!(approvals.iter().all(|a| a.3.is_some()));
    let turns: Vec<(String, i32)> = sqlx::query_as(
        "SELECT t.status, t.steps FROM turns t JOIN conversations c ON c.id = t.conversation_id \
         WHERE c.chat_id IN ('chat-approved', 'chat-denied')",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(turns, [("completed".into(), 2), ("completed".into(), 2)]);

    // The client's approval request again: that approval is used.
    let reused = f
        .server
        .request(Method::POST, "/api/agents/dexter/chat", &f.key)
        .json(&exchanges[1]["request"])
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status(), StatusCode::CONFLICT);
    let error: Value = reused.json().await.unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already answered"),
        "{error}"
    );
    f.server.stop().await;
}

async fn post(f: &Fixture, key: &str, body: Value) -> (StatusCode, Value) {
    let response = f
        .server
        .send(key, Method::POST, "/api/agents/dexter/chat", Some(body))
        .await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn approvals_on_our_json_body_pause_resume_expire_and_refuse_bad_answers() {
    let (f, fake) = dexter_with_llm().await;
    gate_profit_and_loss(&f).await;
    let period = json!({ "period": "2025-Q4" });
    // One gated call and one free call in the same step: the free one runs at once.
    fake.reply(Reply::ToolCalls(vec![
        call("call_a", "profit_and_loss", period.clone()),
        call("call_b", "revenue_analysis", period.clone()),
    ]));
    let (status, paused) = post(
        &f,
        &f.key,
        json!({ "message": "Profit and revenue for Q4?" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused["status"], "awaiting_approval");
    let pending = paused["pending_approvals"].as_array().unwrap();
    assert_eq!(pending.len(), 1, "{paused}");
    assert_eq!(
        (pending[0]["call_id"].as_str(), pending[0]["tool"].as_str()),
        (Some("call_a"), Some("profit_and_loss"))
    );
    assert_eq!(pending[0]["input"], period);
    assert_eq!(paused["tool_calls"][0]["tool"], "revenue_analysis");
    assert_eq!(paused["tool_calls"][0]["outcome"], "ok");
    let approval = pending[0]["approval_id"].as_str().unwrap().to_string();
    let conversation = paused["conversation_id"].as_str().unwrap().to_string();
    let detail: Value = f
        .server
        .send(
            &f.key,
            Method::GET,
            &format!("/api/conversations/{conversation}"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["pending_approvals"][0]["approval_id"], approval);
    assert_eq!(detail["turns"][0]["status"], "awaiting_approval");
    let health: Value = f
        .server
        .send(&f.key, Method::GET, "/api/agents/dexter/health", None)
        .await
        .json()
        .await
        .unwrap();
    // Paused is neither running nor a failure.
    assert_eq!(health["turns"]["awaiting_approval"], 1, "{health}");
    assert!(health["turns"]["success_rate"].is_null(), "{health}");

    // Bad answers are refused and change nothing.
    let answer = |id: &str, approved: bool| json!([{ "id": id, "approved": approved }]);
    let unknown = Uuid::new_v4().to_string();
    for (body, expected, says) in [
        (
            json!({ "conversation_id": conversation, "approvals": answer(&unknown, true) }),
            StatusCode::NOT_FOUND,
            "no approval",
        ),
        (
            json!({ "conversation_id": conversation, "approvals": [] }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "must not be empty",
        ),
        (
            json!({ "approvals": answer(&approval, true) }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "conversation_id",
        ),
        (
            json!({ "conversation_id": conversation, "message": "hi",
                    "approvals": answer(&approval, true) }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not both",
        ),
    ] {
        let (status, error) = post(&f, &f.key, body).await;
        assert_eq!(status, expected, "{error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }

    // Approved: the tool runs and the turn answers.
    fake.reply(Reply::Text("Profit 13500 USD on revenue 30000 USD.".into()));
    let (status, done) = post(
        &f,
        &f.key,
        json!({ "conversation_id": conversation, "approvals": answer(&approval, true) }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "completed");
    assert_eq!(done["turn_id"], paused["turn_id"], "the same turn went on");
    assert_eq!(
        done["message"]["content"],
        "Profit 13500 USD on revenue 30000 USD."
    );
    assert_eq!(done["tool_calls"][0]["call_id"], "call_a");
    assert_eq!(done["tool_calls"][0]["output"]["operating_income"], 13500.0);
    assert!(done.get("pending_approvals").is_none(), "{done}");
    // Twice: the approval is used.
    let (status, error) = post(
        &f,
        &f.key,
        json!({ "conversation_id": conversation, "approvals": answer(&approval, false) }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    // The model got both results after the request that asked for them.
    let requests = chat_requests(&fake);
    let roles: Vec<&str> = requests[1]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool", "tool"]);

    // A new message while a call waits: the call expires, the model reads why.
    fake.reply(Reply::ToolCalls(vec![call(
        "call_c",
        "profit_and_loss",
        period.clone(),
    )]));
    let (_, paused) = post(
        &f,
        &f.key,
        json!({ "conversation_id": conversation, "message": "And the profit again?" }),
    )
    .await;
    assert_eq!(paused["status"], "awaiting_approval", "{paused}");
    let (status, moved_on) = post(
        &f,
        &f.key,
        json!({ "conversation_id": conversation, "message": "Never mind." }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{moved_on}");
    assert_eq!(moved_on["message"]["content"], "echo: Never mind.");
    let pool = sqlx::PgPool::connect(&f.server.database_url).await.unwrap();
    let (approval_status, outcome, turn_status): (String, String, String) = sqlx::query_as(
        "SELECT a.status, c.outcome, t.status FROM tool_approvals a \
         JOIN tool_calls c ON c.call_id = a.call_id JOIN turns t ON t.id = a.turn_id \
         WHERE a.call_id = 'call_c'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (
            approval_status.as_str(),
            outcome.as_str(),
            turn_status.as_str()
        ),
        ("expired", "expired", "cancelled")
    );
    let last = chat_requests(&fake).pop().unwrap();
    let messages = last["messages"].as_array().unwrap();
    let n = messages.len();
    assert_eq!(messages[n - 2]["tool_call_id"], "call_c");
    assert!(
        messages[n - 2]["content"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    assert_eq!(messages[n - 1]["content"], "Never mind.");

    // An AI SDK body gets the stream without asking; a chat id names a conversation
    // per workspace (here the same id in two workspaces), and our own conversation id
    // as chat id opens that conversation.
    let (_, other_key) = f.server.create_workspace("other").await;
    for key in [&f.key, &other_key] {
        let response = f
            .server
            .request(Method::POST, "/api/agents/dexter/chat", key)
            .json(
                &json!({ "id": "shared", "trigger": "submit-message", "messages": [
                { "id": "u1", "role": "user", "parts": [{ "type": "text", "text": "Hello" }] }] }),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(content_type.starts_with("text/event-stream"));
        let body = response.text().await.unwrap();
        assert!(body.contains(r#""delta":" Hello""#), "{body}");
        assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    }
    let shared: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT workspace_id) FROM conversations WHERE chat_id = 'shared'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(shared, 2);
    let response = f
        .server
        .request(Method::POST, "/api/agents/dexter/chat", &f.key)
        .json(&json!({ "id": conversation, "messages": [
            { "role": "user", "parts": [{ "type": "text", "text": "Still there?" }] }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap();
    let turns: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM turns WHERE conversation_id = $1 AND status = 'completed'",
    )
    .bind(Uuid::parse_str(&conversation).unwrap())
    .fetch_one(&pool)
    .await
    .unwrap();
    // The turn answered after its pause, the one after the expiry, and this one.
    assert_eq!(turns, 3);
    f.server.stop().await;
}
