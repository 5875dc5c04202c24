//! Bad input gets a clear 4xx in the one JSON error shape; never a 500.

use agenthost_tests::{ADMIN_TOKEN, StatusCode, TestServer, error_of};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn oversized_bodies_get_413() {
    let server = TestServer::start_with(|config| config.body_limit = 1024).await;
    let name = "x".repeat(4096);
    let response = server
        .request(Method::POST, "/api/admin/workspaces", ADMIN_TOKEN)
        .json(&json!({ "slug": "big", "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (code, message) = error_of(response).await;
    assert_eq!(code, "payload_too_large");
    assert!(message.contains("limit of 1024 bytes"), "{message}");

    // Nothing was created, and a body under the limit still works.
    let (_, _) = server.create_workspace("small").await;
    let list: serde_json::Value = server
        .request(Method::GET, "/api/admin/workspaces", ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn malformed_json_gets_a_readable_400() {
    let server = TestServer::start().await;
    let response = server
        .request(Method::POST, "/api/admin/workspaces", ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(r#"{"slug": "a", "name": "#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (code, message) = error_of(response).await;
    assert_eq!(code, "bad_request");
    assert!(
        message.contains("EOF") || message.contains("parse"),
        "{message}"
    );
    server.stop().await;
}

#[tokio::test]
async fn wrong_content_type_gets_415_and_wrong_fields_get_422() {
    let server = TestServer::start().await;
    let response = server
        .request(Method::POST, "/api/admin/workspaces", ADMIN_TOKEN)
        .body(r#"{"slug": "a", "name": "A"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (code, message) = error_of(response).await;
    assert_eq!(code, "unsupported_media_type");
    assert!(message.contains("application/json"), "{message}");

    let response = server
        .request(Method::POST, "/api/admin/workspaces", ADMIN_TOKEN)
        .json(&json!({ "slug": 42, "name": "A" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (_, message) = error_of(response).await;
    assert!(message.contains("slug"), "names the field: {message}");

    let response = server
        .request(Method::POST, "/api/admin/workspaces", ADMIN_TOKEN)
        .json(&json!({ "slug": "ok", "name": "A", "colour": "red" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (_, message) = error_of(response).await;
    assert!(
        message.contains("colour"),
        "names the unknown field: {message}"
    );
    server.stop().await;
}

#[tokio::test]
async fn rule_violations_get_422_and_duplicates_409() {
    let server = TestServer::start().await;
    for (slug, name) in [("Not Valid", "A"), ("-dash", "A"), ("ok", "")] {
        let response = server
            .request(Method::POST, "/api/admin/workspaces", ADMIN_TOKEN)
            .json(&json!({ "slug": slug, "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{slug:?}/{name:?}"
        );
        let (code, _) = error_of(response).await;
        assert_eq!(code, "invalid");
    }

    server.create_workspace("acme").await;
    let response = server
        .request(Method::POST, "/api/admin/workspaces", ADMIN_TOKEN)
        .json(&json!({ "slug": "acme", "name": "Acme again" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let (code, message) = error_of(response).await;
    assert_eq!(code, "conflict");
    assert!(message.contains("acme"), "{message}");
    server.stop().await;
}

#[tokio::test]
async fn unknown_routes_methods_and_ids_get_json_errors() {
    let server = TestServer::start().await;
    // Under the API's prefixes an unknown path is a JSON 404; elsewhere a GET is the
    // web console's page (its client-side routes), tested in `console`.
    let response = server
        .client
        .get(server.url("/api/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let (code, message) = error_of(response).await;
    assert_eq!(code, "not_found");
    assert!(message.contains("/api/no/such/route"), "{message}");

    let response = server
        .client
        .delete(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(response.headers().contains_key("allow"));
    let (code, _) = error_of(response).await;
    assert_eq!(code, "method_not_allowed");

    let response = server
        .request(Method::GET, "/api/admin/workspaces/not-a-uuid", ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (_, message) = error_of(response).await;
    assert!(message.to_lowercase().contains("uuid"), "{message}");

    let missing = uuid::Uuid::new_v4();
    let response = server
        .request(
            Method::GET,
            &format!("/api/admin/workspaces/{missing}"),
            ADMIN_TOKEN,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let (_, message) = error_of(response).await;
    assert!(message.contains(&missing.to_string()), "{message}");

    let response = server
        .request(Method::GET, "/api/admin/audit?limit=lots", ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    error_of(response).await;
    server.stop().await;
}

#[tokio::test]
async fn each_413_names_the_limit_of_its_route() {
    let server = TestServer::start_with(|config| {
        config.body_limit = 1024;
        config.plugin_upload_limit = 4096;
    })
    .await;
    // A plugin upload has its own limit.
    let manifest = json!({ "name": "big", "version": "0.1.0", "kind": "tool" });
    let response = server.upload_plugin(&manifest, vec![0; 8192], false).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (code, message) = error_of(response).await;
    assert_eq!(code, "payload_too_large");
    assert!(message.contains("limit of 4096 bytes"), "{message}");

    // So does a data import (32 MiB, every import's limit), above the general limit.
    let (_, key) = server.create_workspace("limits").await;
    let rows: Vec<_> = (0..100)
        .map(|i| json!({ "external_id": format!("c{i}"), "name": "x".repeat(50), "created_on": "2025-01-01" }))
        .collect();
    let (status, body) = server.import(&key, "customers", &json!(rows)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response = server
        .request(Method::POST, "/api/data/customers", &key)
        .header("content-type", "text/csv")
        .body(vec![b'x'; (32 << 20) + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (_, message) = error_of(response).await;
    assert!(
        message.contains(&format!("limit of {} bytes", 32 << 20)),
        "{message}"
    );
    server.stop().await;
}

/// A refusal the client can't have caused, raised by the database on two routes: one
/// answered 500 (`ApiError::Internal`), one 503 (an error that travelled as a string,
/// the way the vector store's did when a 100 KB search query blew PostgreSQL's stack).
const DATABASE_SECRET: &str = "secret-database-detail";

async fn assert_database_error_hidden(response: reqwest::Response, status: StatusCode) {
    assert_eq!(response.status(), status);
    let header = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .expect("x-request-id header");
    let text = response.text().await.unwrap();
    assert!(
        !text.contains(DATABASE_SECRET),
        "database text leaked: {text}"
    );
    assert!(
        !text.contains("from database"),
        "database text leaked: {text}"
    );
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["request_id"], header.as_str(), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&header) && message.contains("server log"),
        "the message names the request id for the log: {message}"
    );
}

#[tokio::test]
async fn database_errors_go_to_the_log_and_the_client_gets_the_request_id() {
    let server = TestServer::start().await;
    let (_, owner) = server.create_workspace("db-errors").await;
    let ticket = server
        .send(
            &owner,
            Method::POST,
            "/api/tickets",
            Some(json!({ "subject": "Refund", "requester": { "email": "ana@example.com" } })),
        )
        .await;
    assert_eq!(ticket.status(), StatusCode::CREATED);
    let ticket: serde_json::Value = ticket.json().await.unwrap();

    let db = sqlx::PgPool::connect(&server.database_url).await.unwrap();
    // The exception's text is DATABASE_SECRET's.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_for_test() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'secret-database-detail in relation internals'; END $$;
         CREATE TRIGGER refuse_agents BEFORE INSERT ON agents
           FOR EACH ROW EXECUTE FUNCTION refuse_for_test();
         CREATE TRIGGER refuse_enrichment BEFORE UPDATE OF enrichment ON data.tickets
           FOR EACH ROW EXECUTE FUNCTION refuse_for_test();
         CREATE TRIGGER refuse_conversations BEFORE INSERT ON conversations
           FOR EACH ROW EXECUTE FUNCTION refuse_for_test();",
    )
    .execute(&db)
    .await
    .unwrap();

    let response = server
        .request(Method::POST, "/api/agents", &owner)
        .json(&json!({ "slug": "refused", "name": "Refused" }))
        .send()
        .await
        .unwrap();
    assert_database_error_hidden(response, StatusCode::INTERNAL_SERVER_ERROR).await;

    let path = format!("/api/tickets/{}/enrich", ticket["id"].as_str().unwrap());
    let response = server
        .request(Method::POST, &path, &owner)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_database_error_hidden(response, StatusCode::SERVICE_UNAVAILABLE).await;

    // The OpenAI-compatible route answers in OpenAI's shape, with the id passed through
    // (history makes it store a conversation before any LLM is asked).
    let messages = json!([
        { "role": "user", "content": "Hi" },
        { "role": "assistant", "content": "Hello" },
        { "role": "user", "content": "Which deals closed?" },
    ]);
    let response = server
        .request(Method::POST, "/v1/chat/completions", &owner)
        .json(&json!({ "model": "dexter", "messages": messages }))
        .send()
        .await
        .unwrap();
    assert_database_error_hidden(response, StatusCode::INTERNAL_SERVER_ERROR).await;

    // A client's own mistake is no server error: no request id to look up.
    let response = server
        .request(Method::POST, "/api/agents", &owner)
        .json(&json!({ "slug": "Not A Slug", "name": "X" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"].get("request_id").is_none(), "{body}");
    db.close().await;
    server.stop().await;
}

/// The JSON API takes the types its schema documents: a number or boolean where the
/// schema says string is a 422 naming the field, not quietly stored as text. CSV cells
/// are text, so a CSV import still reads `5` as the subject "5".
#[tokio::test]
async fn ticket_fields_refuse_values_of_another_json_type() {
    let server = TestServer::start().await;
    let (_, owner) = server.create_workspace("strict-types").await;
    let requester = json!({ "email": "ana@example.com" });
    let refused = [
        (json!({ "subject": 5, "requester": requester }), "subject"),
        (
            json!({ "subject": "Hi", "description": true, "requester": requester }),
            "description",
        ),
        (
            json!({ "subject": "Hi", "requester": { "email": 42 } }),
            "requester.email",
        ),
        (
            json!({ "subject": "Hi", "requester": { "email": "a@b.c", "name": 7 } }),
            "requester.name",
        ),
        (
            json!({ "subject": "Hi", "requester": requester, "assignee": false }),
            "assignee",
        ),
        (
            json!({ "subject": "Hi", "requester": requester, "tags": "a;b" }),
            "tags",
        ),
    ];
    for (body, field) in refused {
        let response = server
            .send(&owner, Method::POST, "/api/tickets", Some(body.clone()))
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
        let (_, message) = error_of(response).await;
        assert!(message.contains(&format!("{field}: must be")), "{message}");
    }

    let response = server
        .send(
            &owner,
            Method::POST,
            "/api/tickets",
            Some(json!({ "subject": "Hi", "requester": requester })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let ticket: serde_json::Value = response.json().await.unwrap();
    let path = format!("/api/tickets/{}", ticket["id"].as_str().unwrap());
    for (body, field) in [
        (json!({ "subject": 5 }), "subject"),
        (json!({ "description": 1.5 }), "description"),
        (json!({ "requester": { "email": true } }), "requester.email"),
        (json!({ "status": 1 }), "status"),
    ] {
        let response = server
            .send(&owner, Method::PATCH, &path, Some(body.clone()))
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
        let (_, message) = error_of(response).await;
        assert!(message.contains(&format!("{field}: must be")), "{message}");
    }
    let shown: serde_json::Value = server
        .send(&owner, Method::GET, &path, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["subject"], "Hi", "nothing was changed");

    // An import's JSON rows follow the same rule; its CSV cells are text.
    let response = server
        .send(
            &owner,
            Method::POST,
            "/api/tickets/import",
            Some(json!([{ "external_id": "t1", "subject": 5, "requester_email": "a@b.c" }])),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["rows"][0]["field"], "subject", "{body}");
    let response = server
        .request(Method::POST, "/api/tickets/import", &owner)
        .header("content-type", "text/csv")
        .body("external_id,subject,requester_email\nt1,5,a@b.c\n")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // JSON Schema's integer includes 60.0, so the SLA policy takes it.
    let response = server
        .send(
            &owner,
            Method::PUT,
            "/api/tickets/sla",
            Some(json!({ "low": 60.0, "normal": 120, "high": 240, "urgent": 480 })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    server.stop().await;
}

/// A refusal the client caused is a 4xx in words: our triggers' own sentences pass
/// through, PostgreSQL's text about relations and constraints never does.
#[tokio::test]
async fn constraint_refusals_name_no_database_internals() {
    let server = TestServer::start().await;
    let (_, owner) = server.create_workspace("refusals").await;
    // A table rule only the database knows (as an operator might add one).
    let db = sqlx::PgPool::connect(&server.database_url).await.unwrap();
    sqlx::raw_sql(
        "ALTER TABLE agents ADD CONSTRAINT agents_name_not_reserved CHECK (name <> 'Reserved')",
    )
    .execute(&db)
    .await
    .unwrap();
    db.close().await;
    let response = server
        .request(Method::POST, "/api/agents", &owner)
        .json(&json!({ "slug": "reserved", "name": "Reserved" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (code, message) = error_of(response).await;
    assert_eq!(code, "invalid");
    for internal in ["violates", "constraint", "agents_name", "relation"] {
        assert!(!message.contains(internal), "{message}");
    }

    // A status move the tickets' trigger refuses: its sentence is the message.
    let ticket: serde_json::Value = server
        .send(
            &owner,
            Method::POST,
            "/api/tickets",
            Some(json!({ "subject": "Hi", "requester": { "email": "a@b.c" } })),
        )
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/api/tickets/{}", ticket["id"].as_str().unwrap());
    let response = server
        .send(
            &owner,
            Method::PATCH,
            &path,
            Some(json!({ "status": "closed" })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (_, message) = error_of(response).await;
    assert!(
        message.contains("a ticket cannot go from open to closed"),
        "{message}"
    );
    server.stop().await;
}
