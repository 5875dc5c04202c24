//! What the documents say and what the server does, agreeing (issue 19, item 9): the
//! ticket description limit counts characters as its schema says; every import takes
//! 32 MiB; a bad intent is refused in words, not by constraint name; a workflow without
//! a slug gets one from its name, as its schema says.

use agenthost_tests::{StatusCode, TestServer, plugin_wasm};
use reqwest::Method;
use serde_json::{Value, json};

async fn openapi(server: &TestServer) -> Value {
    let response = server
        .client
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn call(
    server: &TestServer,
    key: &str,
    method: Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let response = server.send(key, method, path, Some(body)).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn the_ticket_description_limit_is_65_536_characters_as_documented() {
    let server = TestServer::start().await;
    let (_, key) = server.create_workspace("truth-desc").await;
    let document = openapi(&server).await;
    for schema in ["TicketInput", "TicketPatchInput"] {
        let description = &document["components"]["schemas"][schema]["properties"]["description"];
        assert_eq!(description["maxLength"], 65536, "{schema}: {description}");
        let text = description["description"].as_str().unwrap_or_default();
        assert!(
            text.contains("65 536 characters"),
            "{schema}: {description}"
        );
    }

    // Two bytes a character: 65 536 of them are 128 KiB, and fit.
    let at_limit = "é".repeat(65_536);
    let ticket = |description: &str| {
        json!({"subject": "Long", "description": description,
               "requester": {"email": "kim@acme.test"}})
    };
    let (status, body) = call(
        &server,
        &key,
        Method::POST,
        "/api/tickets",
        ticket(&at_limit),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{}", message(&body));
    assert_eq!(
        body["description"].as_str().unwrap().chars().count(),
        65_536
    );
    let over = "a".repeat(65_537);
    let (status, body) = call(&server, &key, Method::POST, "/api/tickets", ticket(&over)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        message(&body).contains("65536 characters"),
        "{}",
        message(&body)
    );
    server.stop().await;
}

/// README.md: "imports of business data, tickets and knowledge-base articles 32 MiB".
#[tokio::test]
async fn every_import_takes_32_mib() {
    const LIMIT: usize = 32 << 20;
    let server = TestServer::start().await;
    let (_, key) = server.create_workspace("truth-imports").await;
    let document = openapi(&server).await;
    let imports = [
        "/api/data/{entity}",
        "/api/tickets/import",
        "/api/kb/import",
    ];
    for path in imports {
        let body = &document["paths"][path]["post"]["requestBody"];
        let text = body["description"].as_str().unwrap_or_default();
        assert!(text.contains("(32 MiB)"), "{path}: {body}");
    }

    // Over the old 16 MiB of business-data imports: read, then judged on its rows.
    let big_row = json!([{"external_id": "x", "name": "a".repeat(20 << 20)}]);
    let (status, body) = call(&server, &key, Method::POST, "/api/data/people", big_row).await;
    assert_ne!(status, StatusCode::PAYLOAD_TOO_LARGE, "{}", message(&body));

    for path in ["/api/data/people", "/api/tickets/import", "/api/kb/import"] {
        // A JSON string one byte over the limit, never fully parsed.
        let mut over = Vec::with_capacity(LIMIT + 1);
        over.extend_from_slice(b"[\"");
        over.resize(LIMIT, b'a');
        over.extend_from_slice(b"\"]");
        let response = server
            .request(Method::POST, path, &key)
            .header("content-type", "application/json")
            .body(over)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(
            message(&body).contains(&LIMIT.to_string()),
            "{path}: {body}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_bad_intent_is_refused_in_words_not_by_constraint_name() {
    let server = TestServer::start().await;
    let (_, key) = server.create_workspace("truth-intents").await;
    let intent = |name: &str, examples: Value| json!({"name": name, "examples": examples});
    let cases = [
        (
            json!([
                intent("billing", json!(["charged twice"])),
                intent("Bad Name", json!(["x"]))
            ]),
            vec!["intent 2", "\"Bad Name\"", "a-z, 0-9 and _"],
        ),
        (
            json!([intent("billing", json!([]))]),
            vec!["intent 1", "1 to 50 examples"],
        ),
        (
            json!([
                intent("billing", json!(["a"])),
                intent("billing", json!(["b"]))
            ]),
            vec!["intent 2", "used twice"],
        ),
    ];
    for (intents, expected) in cases {
        let (status, body) = call(
            &server,
            &key,
            Method::PUT,
            "/api/support/intents",
            json!({ "intents": intents }),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["code"], "invalid");
        let text = message(&body);
        for part in expected {
            assert!(text.contains(part), "{part:?} not in {text:?}");
        }
        for internal in ["constraint", "support_intents", "relation", "pkey"] {
            assert!(!text.contains(internal), "{internal:?} in {text:?}");
        }
    }
    // Nothing was replaced: the defaults are still there.
    let response = server
        .send(&key, Method::GET, "/api/support/intents", None)
        .await;
    let intents: Value = response.json().await.unwrap();
    assert!(
        intents["intents"].as_array().unwrap().len() > 1,
        "{intents}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_workflow_without_a_slug_gets_one_from_its_name() {
    let server = TestServer::start().await;
    let (_, key) = server.create_workspace("truth-slugs").await;
    let manifest = json!({"name": "core", "version": "0.1.0", "kind": "node"});
    let response = server
        .upload_plugin(&manifest, plugin_wasm("core"), true)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let document = openapi(&server).await;
    let slug = &document["components"]["schemas"]["WorkflowInput"]["properties"]["slug"];
    let text = slug["description"].as_str().unwrap_or_default();
    assert!(text.contains("made from the name"), "{slug}");

    let definition = json!({
        "nodes": [{"id": "out", "type": "core/output", "config": {"value": "{{ input }}"}}],
        "edges": []
    });
    let create = |name: &str| json!({"name": name, "definition": definition});
    let (status, body) = call(
        &server,
        &key,
        Method::POST,
        "/api/workflows",
        create("  Weekly report: Sales & Ops!"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["slug"], "weekly-report-sales-ops");
    let response = server
        .send(
            &key,
            Method::GET,
            "/api/workflows/weekly-report-sales-ops",
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    // The same name again makes the same slug: a conflict that names it.
    let (status, body) = call(
        &server,
        &key,
        Method::POST,
        "/api/workflows",
        create("Weekly report: sales & ops"),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(message(&body).contains("weekly-report-sales-ops"), "{body}");

    // Long names are cut to the table's 63 characters, never ending in a dash.
    let long = format!("{} end", "word ".repeat(30));
    let (status, body) = call(&server, &key, Method::POST, "/api/workflows", create(&long)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let made = body["slug"].as_str().unwrap();
    assert!(made.len() <= 63 && !made.ends_with('-'), "{made}");

    // Nothing to make a slug from.
    let (status, body) = call(
        &server,
        &key,
        Method::POST,
        "/api/workflows",
        create("¡¿!?"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(message(&body).contains("give a slug"), "{body}");
    server.stop().await;
}
