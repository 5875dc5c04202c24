//! The `agent/turn` node: a workflow asks one of the workspace's agents, through the
//! `agents` host interface, against the fake OpenAI-protocol provider.

use agenthost_tests::fake_openai::{FakeOpenAi, Reply};
use agenthost_tests::{StatusCode, TestServer, plugin_wasm};
use reqwest::Method;
use serde_json::{Value, json};

use super::plugins::{admin, json_of};

async fn install(server: &TestServer, name: &str, grant: Option<Value>) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../plugins/nodes/{name}/manifest.json"));
    let manifest: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let response = server
        .upload_plugin(&manifest, plugin_wasm(name), true)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    if let Some(grant) = grant {
        let version = manifest["version"].as_str().unwrap();
        let response = admin(
            server,
            Method::PUT,
            &format!("/api/admin/plugins/{name}/versions/{version}/grants"),
            Some(grant),
        )
        .await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{}",
            response.text().await.unwrap()
        );
    }
}

#[tokio::test]
async fn a_workflow_asks_an_agent_and_uses_its_answer() {
    let fake = FakeOpenAi::start().await;
    let base = fake.base_url.clone();
    let server = TestServer::start_with(move |config| {
        config.llm_base_url = Some(base);
        config.llm_max_retries = 0;
    })
    .await;
    let (workspace, _) = server.create_workspace("asks").await;
    let (_, key) = server.create_key(&workspace, "admin").await;
    install(&server, "core", None).await;
    // Granted Cassie only (the manifest asks for every agent).
    install(
        &server,
        "agent",
        Some(json!({"agents": {"agents": ["cassie"]}})),
    )
    .await;
    let definition = |agent: &str| {
        json!({
            "nodes": [
                {"id": "ask", "type": "agent/turn",
                 "config": {"agent": agent, "message": "Summarise ticket {{ input.ticket }}"}},
                {"id": "out", "type": "core/output", "config": {"value": "{{ nodes.ask.output.text }}"}}
            ],
            "edges": [{"from": "ask", "to": "out"}]
        })
    };
    for (slug, agent) in [("support", "cassie"), ("finance", "dexter")] {
        let response = server
            .request(Method::POST, "/api/workflows", &key)
            .json(&json!({"slug": slug, "name": slug, "definition": definition(agent)}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    fake.reply(Reply::Text("The customer wants a refund.".into()));
    let run = |slug: &'static str| {
        server
            .request(
                Method::POST,
                &format!("/api/workflows/{slug}/executions?wait=20s"),
                &key,
            )
            .json(&json!({"input": {"ticket": 42}}))
            .send()
    };
    let execution = json_of(run("support").await.unwrap()).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    assert_eq!(execution["output"], "The customer wants a refund.");
    // The model got Cassie's prompt and the rendered message.
    let (_, request) = fake.requests().pop().unwrap();
    let text = request["messages"].to_string();
    assert!(text.contains("Summarise ticket 42"), "{text}");
    // The turn is recorded like any other, made by the plugin.
    let conversations = json_of(
        server
            .request(Method::GET, "/api/conversations?agent=cassie", &key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        conversations["conversations"].as_array().unwrap().len(),
        1,
        "{conversations}"
    );

    // An agent outside the grant: the node fails with the refusal.
    let execution = json_of(run("finance").await.unwrap()).await;
    assert_eq!(execution["status"], "failed");
    let error = execution["error"].as_str().unwrap();
    assert!(error.contains("\"dexter\" is not granted"), "{error}");
}
