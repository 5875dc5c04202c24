//! The local LLM provider end to end: Dexter answers a revenue question through the real
//! Qwen2.5-Coder-1.5B model `make setup` installs, in-process, with no API key. One turn
//! takes seconds on 2 cores, so this module keeps to one such turn; every other chat
//! test scripts the fake OpenAI server.

use agenthost_tests::{StatusCode, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

use super::dexter::fixture_with;

use agenthost_tests::local_model_file as model_file;

async fn chat(server: &TestServer, key: &str, message: &str) -> (StatusCode, Value) {
    let response = server
        .request(Method::POST, "/api/agents/dexter/chat", key)
        .json(&json!({ "message": message }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

// It keeps both cores busy for minutes: `make test` runs it alone, after the rest of
// the suite (`-- --ignored local_model::`), so the other tests' waits never share the
// machine with it.
#[tokio::test]
#[ignore = "run alone by `make test`, after the suite"]
async fn dexter_answers_a_revenue_question_with_the_local_model() {
    let file = model_file();
    let f = fixture_with(move |config| {
        config.llm = "local".into();
        config.llm_model_file = file;
        // A turn takes tens of seconds on 2 idle cores, minutes on busy ones: no time
        // limit of the usual size may cut it.
        config.request_timeout = std::time::Duration::from_secs(1800);
        config.chat_turn_timeout = std::time::Duration::from_secs(1800);
    })
    .await;
    // The model loads on the first call, not at start.
    let ready = f
        .server
        .client
        .get(f.server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    let (status, body) = chat(&f.server, &f.key, "What was our revenue in Q4 2025?").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "completed", "{body}");
    let call = &body["tool_calls"][0];
    assert_eq!(call["tool"], "revenue_analysis", "{body}");
    assert_eq!(call["input"]["period"], "2025-Q4", "{body}");
    assert_eq!(call["outcome"], "ok", "{body}");
    assert_eq!(call["output"]["total_revenue"], 30000.0, "{body}");
    // An answer in prose that carries the tool's figure (30,000 / 30000 / $30,000.00).
    let answer = body["message"]["content"].as_str().unwrap();
    assert!(
        !answer.trim_start().starts_with(['{', '[', '`']),
        "{answer}"
    );
    assert!(answer.replace(',', "").contains("30000"), "{answer}");
    assert_eq!(body["steps"], 2, "{body}");
    assert!(
        body["usage"]["prompt_tokens"].as_i64().unwrap() > 100,
        "{body}"
    );

    // Usage is recorded under the local model's name.
    let usage = f
        .server
        .send(&f.key, Method::GET, "/api/usage?group_by=model", None)
        .await;
    let usage: Value = usage.json().await.unwrap();
    assert!(
        usage.to_string().contains("qwen2.5-coder-1.5b-instruct"),
        "{usage}"
    );

    // One message longer than the model's context: refused, not cut.
    let long = "Revenue by quarter and by segment, please. ".repeat(700);
    let (status, body) = chat(&f.server, &f.key, &long).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "context_length_exceeded", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("4096"),
        "{body}"
    );
    f.server.stop().await;
}

#[tokio::test]
async fn a_missing_or_broken_model_file_or_llm_off_leaves_chat_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.gguf");
    let garbage = dir.path().join("garbage.gguf");
    std::fs::write(&garbage, b"this is not a model").unwrap();
    // A download cut short: the header is whole, the tensors are not.
    let truncated = dir.path().join("truncated.gguf");
    let mut head = vec![0; 16 << 20];
    let mut real = std::fs::File::open(model_file()).unwrap();
    std::io::Read::read_exact(&mut real, &mut head).unwrap();
    std::fs::write(&truncated, head).unwrap();
    let cases = [
        ("local", missing.clone(), "missing.gguf"),
        ("local", garbage, "not a readable GGUF"),
        ("local", truncated, "cut short"),
        ("off", model_file(), "AGENTHOST_LLM_BASE_URL"),
        // `auto` with no file is the plain "nothing configured".
        ("auto", missing, "make setup"),
    ];
    for (mode, file, says) in cases {
        let server = TestServer::start_with(move |config| {
            config.llm = mode.into();
            config.llm_model_file = file;
        })
        .await;
        let (_, key) = server.create_workspace("nollm").await;
        let (status, body) = chat(&server, &key, "hi").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{mode}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{mode} {says}: {message}");
        let ready = server
            .client
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), StatusCode::OK, "{mode} {says}");
        server.stop().await;
    }
}
