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
    let response = server
        .client
        .get(server.url("/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let (code, message) = error_of(response).await;
    assert_eq!(code, "not_found");
    assert!(message.contains("/no/such/route"), "{message}");

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

    // So does a data import (16 MiB), above the general limit.
    let (_, key) = server.create_workspace("limits").await;
    let rows: Vec<_> = (0..100)
        .map(|i| json!({ "external_id": format!("c{i}"), "name": "x".repeat(50), "created_on": "2025-01-01" }))
        .collect();
    let (status, body) = server.import(&key, "customers", &json!(rows)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response = server
        .request(Method::POST, "/api/data/customers", &key)
        .header("content-type", "text/csv")
        .body(vec![b'x'; (16 << 20) + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (_, message) = error_of(response).await;
    assert!(
        message.contains(&format!("limit of {} bytes", 16 << 20)),
        "{message}"
    );
    server.stop().await;
}
