//! The ways in (issue 19, item 13): the `/docs` page makes no outside request, and the
//! OpenAPI text tells the truth about keys without naming our modules.
//!
//! Swagger UI calls validator.swagger.io when `validatorUrl` is unset and the page is
//! not on localhost; `"none"` turns the badge, and its request, off. The page is run
//! with its own scripts in jsdom (tests/node/docs_page.cjs: no browser is installed for
//! one page), opened by a host name, and every request it makes is recorded; the served
//! configuration and assets are checked as well.

use std::path::Path;

use agenthost_tests::{StatusCode, TestServer, node_modules};
use serde_json::Value;

async fn get_text(server: &TestServer, path: &str) -> String {
    let response = server.client.get(server.url(path)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.text().await.unwrap()
}

#[tokio::test]
async fn the_docs_page_turns_the_outside_validator_off_and_loads_only_its_own_assets() {
    let server = TestServer::start().await;
    let initializer = get_text(&server, "/docs/swagger-initializer.js").await;
    assert!(
        initializer.contains(r#""validatorUrl": "none""#),
        "{initializer}"
    );
    assert!(
        initializer.contains(r#""url": "/openapi.json""#),
        "{initializer}"
    );
    for outside in ["http://", "https://", "validator.swagger.io"] {
        assert!(!initializer.contains(outside), "{outside} in {initializer}");
    }

    // The page itself: every script, style and icon is one of ours (relative).
    let page = get_text(&server, "/docs/").await;
    let mut references = 0;
    for attribute in ["src=\"", "href=\""] {
        for (at, _) in page.match_indices(attribute) {
            let value = &page[at + attribute.len()..];
            let value = &value[..value.find('"').unwrap()];
            references += 1;
            assert!(
                !value.contains("//"),
                "the page loads {value} from elsewhere"
            );
            let path = format!("/docs/{}", value.trim_start_matches("./"));
            let response = server.client.get(server.url(&path)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
        }
    }
    assert!(references >= 3, "{page}");
    server.stop().await;
}

#[tokio::test]
async fn the_docs_page_run_by_its_own_scripts_asks_only_its_own_server() {
    let modules = node_modules();
    assert!(
        modules.join("jsdom/package.json").is_file(),
        "the jsdom npm package is not in {} (run `make nodeclients`)",
        modules.display()
    );
    let server = TestServer::start().await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("node/docs_page.cjs");
    let output = tokio::process::Command::new("node")
        .arg(&script)
        .arg(&server.base)
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
    let page: Value = serde_json::from_str(&stdout).unwrap();
    // It rendered: the spec was fetched and its operations laid out.
    assert!(page["operations"].as_u64().unwrap() > 50, "{page}");
    let requested: Vec<&str> = page["requested"]
        .as_array()
        .unwrap()
        .iter()
        .map(|url| url.as_str().unwrap())
        .collect();
    assert!(
        requested.iter().any(|url| url.ends_with("/openapi.json")),
        "{page}"
    );
    assert_eq!(page["outside"], serde_json::json!([]), "{page}");
    server.stop().await;
}

/// Every `description` and `summary` in the document, with where it is.
fn texts<'a>(value: &'a Value, at: String, found: &mut Vec<(String, &'a str)>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                if let ("description" | "summary", Value::String(text)) = (key.as_str(), value) {
                    found.push((at.clone(), text));
                }
                texts(value, format!("{at}/{key}"), found);
            }
        }
        Value::Array(items) => {
            for (index, value) in items.iter().enumerate() {
                texts(value, format!("{at}/{index}"), found);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn the_openapi_text_shows_real_key_prefixes_and_no_module_paths() {
    let server = TestServer::start().await;
    let document: Value = serde_json::from_str(&get_text(&server, "/openapi.json").await).unwrap();
    let intro = document["info"]["description"].as_str().unwrap();
    assert!(intro.contains("Bearer ahk_"), "{intro}");
    assert!(intro.contains("aha_"), "{intro}");
    // Not utoipa-axum's author, which its router puts there by default.
    assert!(
        document["info"]["contact"].is_null(),
        "{}",
        document["info"]
    );
    let mut found = Vec::new();
    texts(&document, String::new(), &mut found);
    assert!(found.len() > 100, "only {} texts", found.len());
    let wrong: Vec<_> = found
        .iter()
        .filter(|(_, text)| text.contains("Bearer ah_") || text.contains("::"))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
    server.stop().await;
}
