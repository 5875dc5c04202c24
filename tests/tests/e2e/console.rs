//! The web console: served by the binary at `/` (cache headers, gzip, the app's page
//! for its own routes, the API's JSON 404s untouched), the node-type catalog its graph
//! editor reads, and the whole console in a real browser (console/tests/console.test.mjs:
//! Debian's Chromium driven by playwright-core, every page checked with axe-core at two
//! widths), against this server with the fake LLM.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agenthost_tests::fake_openai::{FakeOpenAi, Reply};
use agenthost_tests::{ADMIN_TOKEN, StatusCode, TestServer, plugin_wasm};
use reqwest::Method;
use reqwest::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH,
};
use serde_json::{Value, json};

use super::dexter::fixture_with;
use super::knowledge_base::{import, wait_indexed};
use super::plugins::manifest;

fn console_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../console")
}

/// The page `/` serves; fails with what to do when this binary holds no built console.
async fn index(server: &TestServer) -> (reqwest::Response, String) {
    let response = server.client.get(server.url("/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await.unwrap();
    assert!(
        !html.contains("The console is not built"),
        "the binary was built before console/dist existed: run `make console` (or `make setup`), then the tests again"
    );
    let again = server.client.get(server.url("/")).send().await.unwrap();
    assert_eq!(again.headers()[ETAG], headers[ETAG]);
    (again, html)
}

#[tokio::test]
async fn the_console_is_served_with_cache_headers_gzip_and_the_apps_routes() {
    let server = TestServer::start().await;
    let (response, html) = index(&server).await;
    let headers = response.headers();
    assert_eq!(headers[CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(headers[CACHE_CONTROL], "no-cache");
    let csp = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    let etag = headers[ETAG].clone();

    // Revalidation: the same ETag is a 304 without a body.
    let response = server
        .client
        .get(server.url("/"))
        .header(IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert!(response.bytes().await.unwrap().is_empty());

    // The app's own routes get the same page (the browser routes), at any depth.
    for path in ["/chat", "/workflows/numbers", "/executions/1234"] {
        let response = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()[ETAG], etag, "{path}");
    }

    // The entry script: hashed, immutable, gzipped when asked, smaller than itself.
    let script = html
        .split("src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page loads a script");
    assert!(script.starts_with("/assets/"), "{script}");
    let plain = server.client.get(server.url(script)).send().await.unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
    assert_eq!(
        plain.headers()[CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(
        plain.headers()[CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert!(plain.headers().get(CONTENT_ENCODING).is_none());
    let plain = plain.bytes().await.unwrap();
    let packed = server
        .client
        .get(server.url(script))
        .header(ACCEPT_ENCODING, "br, gzip;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(packed.headers()[CONTENT_ENCODING], "gzip");
    let packed = packed.bytes().await.unwrap();
    assert_eq!(&packed[..2], &[0x1f, 0x8b], "a gzip stream");
    assert!(
        packed.len() * 2 < plain.len(),
        "{} of {}",
        packed.len(),
        plain.len()
    );
    let refused = server
        .client
        .get(server.url(script))
        .header(ACCEPT_ENCODING, "gzip;q=0")
        .send()
        .await
        .unwrap();
    assert!(refused.headers().get(CONTENT_ENCODING).is_none());

    // A missing hashed file is a 404, not the page (a script tag would run HTML).
    let missing = server
        .client
        .get(server.url("/assets/index-gone.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // The API keeps its JSON 404s, and other methods never reach the console.
    for (method, path) in [
        (Method::GET, "/api/nope"),
        (Method::GET, "/v1/nope"),
        (Method::GET, "/docs/nope/deeper"),
        (Method::POST, "/chat"),
    ] {
        let response = server
            .client
            .request(method.clone(), server.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{method} {path}");
    }
}

#[tokio::test]
async fn the_node_type_catalog_lists_active_node_types_with_schemas_and_branches() {
    let server = TestServer::start().await;
    let (_, key) = server.create_workspace("catalog").await;
    let empty: Value = server
        .send(&key, Method::GET, "/api/node-types", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(empty, json!({"node_types": []}));
    let core = json!({"name": "core", "version": "0.1.0", "kind": "node"});
    let response = server.upload_plugin(&core, plugin_wasm("core"), true).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let catalog: Value = server
        .send(&key, Method::GET, "/api/node-types", None)
        .await
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = catalog["node_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "core/approval",
            "core/condition",
            "core/delay",
            "core/merge",
            "core/output",
            "core/switch",
            "core/transform"
        ]
    );
    let condition = &catalog["node_types"][1];
    assert_eq!(condition["branches"], json!(["true", "false"]));
    assert_eq!(condition["version"], "0.1.0");
    assert_eq!(condition["config_schema"]["required"], json!(["if"]));
    // A disabled plugin's node types are not offered.
    let response = server
        .request(Method::POST, "/api/admin/plugins/core/disable", ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let after: Value = server
        .send(&key, Method::GET, "/api/node-types", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after, json!({"node_types": []}));
}

fn call(id: &str, tool: &str, arguments: Value) -> (String, String, Value) {
    (id.into(), tool.into(), arguments)
}

#[tokio::test]
async fn the_console_works_in_a_real_browser() {
    let console = console_dir();
    assert!(
        console
            .join("node_modules/playwright-core/package.json")
            .is_file(),
        "console/node_modules is missing: run `make console` (or `make setup`)"
    );
    let chromium = std::env::var("AGENTHOST_CHROMIUM").unwrap_or("/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).is_file(),
        "{chromium} is missing: `make console` installs Debian's chromium"
    );
    let fake = FakeOpenAi::start().await;
    let base = fake.base_url.clone();
    let f = fixture_with(move |config| {
        config.llm_base_url = Some(base);
        config.llm_max_retries = 0;
    })
    .await;
    index(&f.server).await;
    let server = &f.server;

    // Dexter's profit_and_loss needs approval (an admin's setting).
    let agent: Value = server
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
    let response = server
        .send(
            &f.key,
            Method::PATCH,
            "/api/agents/dexter",
            Some(json!({ "tools": tools })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // Workflows: the core nodes, and a workflow that waits for an approval.
    let core = json!({"name": "core", "version": "0.1.0", "kind": "node"});
    let response = server.upload_plugin(&core, plugin_wasm("core"), true).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let gate = json!({"slug": "gate", "name": "Gate", "definition": {
        "nodes": [
            {"id": "a", "type": "core/transform", "config": {"value": "{{ input.n * 2 }}"}},
            {"id": "ok", "type": "core/approval", "config": {"message": "Pay the invoice?"}},
            {"id": "out", "type": "core/output", "config": {"value": "{{ nodes.a.output }}"}}
        ],
        "edges": [{"from": "a", "to": "ok"}, {"from": "ok", "to": "out", "branch": "approved"}]
    }});
    let response = server
        .send(&f.key, Method::POST, "/api/workflows", Some(gate))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    // Automation: a workflow on a schedule (run now from the page).
    let morning = json!({"slug": "morning", "name": "Morning report", "definition": {
        "triggers": [{"type": "schedule", "cron": "0 8 * * MON-FRI", "timezone": "Europe/Berlin"}],
        "nodes": [{"id": "out", "type": "core/output", "config": {"value": "report"}}]
    }});
    let response = server
        .send(&f.key, Method::POST, "/api/workflows", Some(morning))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    // Support: a published help article, then a ticket its enrichment points at.
    import(server, &f.key, &["how-refunds-work"]).await;
    wait_indexed(server, &f.key).await;
    let ticket = json!({
        "subject": "Charged twice, I want a refund",
        "description": "I was charged twice for my annual plan. This is really frustrating, refund the duplicate payment immediately.",
        "requester": {"email": "maria@example.com", "name": "Maria Lopez"}
    });
    let response = server
        .send(&f.key, Method::POST, "/api/tickets", Some(ticket))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let started = Instant::now();
    while server
        .send(&f.key, Method::GET, "/api/tickets/1", None)
        .await
        .json::<Value>()
        .await
        .unwrap()["enrichment"]
        .is_null()
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "ticket 1 was not enriched"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Plugins: hello 1.0.0 active, 2.0.0 installed, for activate and roll back.
    for (version, activate) in [("1.0.0", true), ("2.0.0", false)] {
        let response = server
            .upload_plugin(&manifest("hello", version), plugin_wasm("hello"), activate)
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    // The model's answers, queued last: the ticket's enrichment above asks the model too.
    let period = json!({ "period": "2025-Q4" });
    fake.reply(Reply::ToolCalls(vec![call(
        "call_rev",
        "revenue_analysis",
        period.clone(),
    )]));
    fake.reply(Reply::Text("Q4 2025 revenue was 30000 USD.".into()));
    fake.reply(Reply::ToolCalls(vec![call(
        "call_pl",
        "profit_and_loss",
        period,
    )]));
    fake.reply(Reply::Text(
        "Q4 2025 operating income was 13500 USD.".into(),
    ));

    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
    let output = tokio::process::Command::new("node")
        .arg(console.join("tests/console.test.mjs"))
        .env("BASE_URL", &server.base)
        .env("KEY", &f.key)
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("CHROMIUM", &chromium)
        .env("ARTIFACTS", &artifacts)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{stdout}\n{stderr}\nscreenshots: {}",
        artifacts.display()
    );
    assert!(stdout.contains("passed: "), "{stdout}");

    // What the browser did is what the server holds.
    let plugin: Value = server
        .request(Method::GET, "/api/admin/plugins/hello", ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(plugin["active_version"], "1.0.0");
    assert_eq!(plugin["previous_version"], "2.0.0");
    let approvals: Value = server
        .send(&f.key, Method::GET, "/api/approvals?status=approved", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(approvals["approvals"].as_array().unwrap().len(), 1);
    let doubler: Value = server
        .send(&f.key, Method::GET, "/api/workflows/doubler", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(doubler["latest_version"], 1, "{doubler}");
    let conversations: Value = server
        .send(&f.key, Method::GET, "/api/conversations", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(conversations["conversations"].as_array().unwrap().len(), 1);
    let ticket: Value = server
        .send(&f.key, Method::GET, "/api/tickets/1", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ticket["status"], "pending", "{ticket}");
    let keys: Value = server
        .send(&f.key, Method::GET, "/api/keys", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .any(|k| k["name"] == "ci robot" && k["role"] == "member"),
        "{keys}"
    );
}
