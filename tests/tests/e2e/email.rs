//! The email capability through a real plugin: grants, sender rules, validation, the
//! hourly limit, delivery to a real SMTP server on loopback, and the file outbox.

use agenthost_tests::smtp::SmtpSink;
use agenthost_tests::{StatusCode, TestServer, error_of, plugin_wasm};
use reqwest::Method;
use serde_json::{Value, json};

use super::plugins::{admin, json_of, setup};

fn mailer_manifest() -> Value {
    json!({
        "name": "mailer", "version": "1.0.0", "kind": "tool",
        "capabilities": { "email": { "senders": ["bot@acme.test", "*@support.acme.test"] } }
    })
}

async fn grant(server: &TestServer, grants: Value) -> reqwest::Response {
    admin(
        server,
        Method::PUT,
        "/api/admin/plugins/mailer/versions/1.0.0/grants",
        Some(grants),
    )
    .await
}

fn message(from: &str) -> Value {
    json!({
        "from": format!("Acme Bot <{from}>"),
        "to": ["Ada <ada@example.test>"],
        "cc": ["bob@example.test"],
        "bcc": ["audit@example.test"],
        "reply_to": "help@acme.test",
        "subject": "Your ticket",
        "text": "We are on it.",
        "html": "<p>We are on it.</p>"
    })
}

#[tokio::test]
async fn granted_mail_reaches_the_smtp_server_with_the_right_headers() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let (server, key) = setup(move |config| config.smtp_url = Some(url)).await;
    let response = server
        .upload_plugin(&mailer_manifest(), plugin_wasm("mailer"), true)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    // Requested is not granted.
    let response = server
        .call_tool(&key, "mailer", "send", &message("bot@acme.test"))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (code, text) = error_of(response).await;
    assert_eq!(code, "tool_error");
    assert!(
        text.contains("denied") && text.contains("not granted"),
        "{text}"
    );

    // A grant beyond the manifest's request is refused.
    let response = grant(&server, json!({"email": {"senders": ["ceo@acme.test"]}})).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let response = grant(
        &server,
        json!({"email": {"senders": ["bot@acme.test", "*@support.acme.test"], "hourly_limit": 2}}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);

    let response = server
        .call_tool(&key, "mailer", "send", &message("bot@acme.test"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let id = json_of(response).await["output"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let received = sink.messages();
    assert_eq!(received.len(), 1);
    let mail = &received[0];
    assert_eq!(mail.mail_from, "bot@acme.test");
    let mut rcpt = mail.rcpt_to.clone();
    rcpt.sort();
    assert_eq!(
        rcpt,
        ["ada@example.test", "audit@example.test", "bob@example.test"]
    );
    assert_eq!(mail.header("Subject").as_deref(), Some("Your ticket"));
    assert!(mail.header("From").unwrap().contains("bot@acme.test"));
    assert!(mail.header("To").unwrap().contains("ada@example.test"));
    assert!(mail.header("Cc").unwrap().contains("bob@example.test"));
    assert_eq!(mail.header("Reply-To").as_deref(), Some("help@acme.test"));
    assert_eq!(mail.header("Bcc"), None, "Bcc recipients are not shown");
    assert_eq!(mail.header("Message-ID").as_deref(), Some(id.as_str()));
    assert!(mail.data.contains("We are on it.") && mail.data.contains("<p>We are on it.</p>"));

    // Any address of a granted domain works; another sender does not.
    let response = server
        .call_tool(&key, "mailer", "send", &message("desk@support.acme.test"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = server
        .call_tool(&key, "mailer", "send", &message("ceo@acme.test"))
        .await;
    let (_, text) = error_of(response).await;
    assert!(
        text.contains("denied") && text.contains("ceo@acme.test"),
        "{text}"
    );

    // The hourly limit (2) is reached.
    let response = server
        .call_tool(&key, "mailer", "send", &message("bot@acme.test"))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (_, text) = error_of(response).await;
    assert!(
        text.contains("unavailable") && text.contains("hourly"),
        "{text}"
    );
    assert_eq!(sink.messages().len(), 2, "nothing was sent past the limit");
    server.stop().await;
}

#[tokio::test]
async fn malformed_messages_are_invalid_and_nothing_is_sent() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let (server, key) = setup(move |config| config.smtp_url = Some(url)).await;
    server
        .upload_plugin(&mailer_manifest(), plugin_wasm("mailer"), true)
        .await;
    grant(&server, json!({"email": {"senders": ["bot@acme.test"]}})).await;
    let bad = [
        json!({"from": "bot@acme.test", "to": ["not an address"], "subject": "x", "text": "x"}),
        json!({"from": "bot@acme.test", "to": [], "subject": "x", "text": "x"}),
        json!({"from": "bot@acme.test", "to": ["a@example.test"], "subject": "x"}),
        json!({"from": "bot@acme.test", "to": ["a@example.test"], "subject": "x\r\nBcc: evil@x.test", "text": "x"}),
        json!({"from": "nobody", "to": ["a@example.test"], "subject": "x", "text": "x"}),
        // 101 recipients: one over the cap.
        json!({"from": "bot@acme.test", "to": (0..101).map(|i| format!("r{i}@example.test")).collect::<Vec<_>>(), "subject": "x", "text": "x"}),
        json!({"from": "bot@acme.test", "to": ["a@example.test"], "subject": "x".repeat(999), "text": "x"}),
    ];
    for message in bad {
        let response = server.call_tool(&key, "mailer", "send", &message).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{message}");
        let (_, text) = error_of(response).await;
        assert!(text.starts_with("invalid:"), "{message}: {text}");
    }
    assert!(sink.messages().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn without_smtp_mail_lands_in_the_outbox() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_path_buf();
    let (server, key) = setup(move |config| {
        config.smtp_url = None;
        config.data_dir = dir;
    })
    .await;
    server
        .upload_plugin(&mailer_manifest(), plugin_wasm("mailer"), true)
        .await;
    grant(&server, json!({"email": {"senders": ["bot@acme.test"]}})).await;
    let response = server
        .call_tool(&key, "mailer", "send", &message("bot@acme.test"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    let files: Vec<_> = std::fs::read_dir(data.path().join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].extension().unwrap(), "eml");
    let eml = std::fs::read_to_string(&files[0]).unwrap();
    assert!(eml.contains("Subject: Your ticket"), "{eml}");
    assert!(
        eml.contains("To: \"Ada\" <ada@example.test>")
            || eml.contains("To: Ada <ada@example.test>"),
        "{eml}"
    );
    server.stop().await;
}
