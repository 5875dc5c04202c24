//! The OpenAPI document: it lists exactly the routes the server answers, is valid
//! OpenAPI 3.1 (openapi-spec-validator, PyPI) with unique operationIds and typed
//! responses, `/docs` renders from assets in the binary, and schemathesis (PyPI) finds
//! no server error, no response that breaks its documented schema, no schema-valid
//! request refused and no schema-violating one accepted, with a key of each role.

use std::collections::BTreeSet;
use std::path::Path;

use agenthost_tests::fake_openai::FakeOpenAi;
use agenthost_tests::{ADMIN_TOKEN, StatusCode, TestServer, pyclients_dir};
use reqwest::Method;
use serde_json::Value;

use super::dexter::fixture_with;

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

async fn spec(server: &TestServer) -> Value {
    let response = server
        .client
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// A concrete path for a template: each `{param}` becomes a well-formed value that
/// names nothing (a nil uuid where the schema says uuid, a number, or a word).
fn concrete(template: &str, operation: &Value) -> String {
    let mut path = template.to_string();
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        if parameter["in"] != "path" {
            continue;
        }
        let name = parameter["name"].as_str().unwrap();
        let schema = &parameter["schema"];
        let value = match (schema["type"].as_str(), schema["format"].as_str()) {
            (_, Some("uuid")) => "00000000-0000-0000-0000-000000000000",
            (Some("integer"), _) => "1",
            _ => "nothing-here",
        };
        path = path.replace(&format!("{{{name}}}"), value);
    }
    assert!(
        !path.contains('{'),
        "{template}: undocumented path parameter"
    );
    path
}

/// The routes registered outside `routes!` (so outside the document), each for a
/// reason: `/mcp` speaks JSON-RPC with its own discovery, `/docs` and
/// `/openapi.json` are the document itself, and `/metrics` on `--metrics-listen` is
/// a second app (the main one documents its `/metrics`).
const UNDOCUMENTED: &[&str] = &["/mcp", "/metrics"];

/// Every `.route(`, `.route_service(`, `.nest(` and `.nest_service(` call in the host's
/// non-test code, with its path. With utoipa-axum, routes!() is the only other way
/// to add a route, and it always adds the document entry.
fn hand_registered_routes() -> BTreeSet<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/src");
    let mut found = BTreeSet::new();
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Unit tests build routers of their own.
            let code = text.split("#[cfg(test)]").next().unwrap();
            let compact: String = code.split_whitespace().collect();
            for call in [
                ".route(\"",
                ".route_service(\"",
                ".nest(\"",
                ".nest_service(\"",
            ] {
                for piece in compact.split(call).skip(1) {
                    let route = piece.split('"').next().unwrap();
                    found.insert(route.to_string());
                }
            }
        }
    }
    found
}

#[tokio::test]
async fn the_document_lists_exactly_the_routes_the_server_answers() {
    let server = TestServer::start().await;
    let document = spec(&server).await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 60, "only {} paths", paths.len());

    // Each documented operation reaches a handler: a request to it is never the
    // router's "no route" 404 or a 405.
    let mut operations = 0;
    for (template, item) in paths {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            operations += 1;
            let path = concrete(template, operation);
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = server
                .request(method.clone(), &path, ADMIN_TOKEN)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(
                !body.contains("no route for"),
                "{method} {path} is documented but not routed: {body}"
            );
            // Every operation documents its errors, with the error schema.
            let responses = operation["responses"].as_object().unwrap();
            assert!(responses.contains_key("404"), "{method} {template}");
            // Public: health, and webhook URLs (their token is the credential).
            if !["/healthz", "/readyz", "/hooks/"]
                .iter()
                .any(|public| template.starts_with(public))
            {
                assert!(responses.contains_key("401"), "{method} {template}");
                assert_eq!(
                    operation["security"][0]["bearer"],
                    serde_json::json!([]),
                    "{method} {template}"
                );
            }
        }
    }
    assert!(operations >= 75, "only {operations} operations");

    // And no route exists outside the document, but the listed exceptions.
    let extra: Vec<String> = hand_registered_routes()
        .into_iter()
        .filter(|route| !UNDOCUMENTED.contains(&route.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "routes added without an OpenAPI entry (use routes!): {extra:?}"
    );
}

#[tokio::test]
async fn the_docs_page_renders_from_assets_in_the_binary() {
    let server = TestServer::start().await;
    let page = server
        .client
        .get(server.url("/docs/"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    // Every script and stylesheet is ours: relative URLs, nothing from a CDN.
    for asset in html
        .split(['"', '\''])
        .filter(|s| s.ends_with(".js") || s.ends_with(".css"))
    {
        assert!(!asset.contains("://"), "external asset {asset}");
        let url = server.url(&format!("/docs/{}", asset.trim_start_matches("./")));
        let response = server.client.get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert!(!response.bytes().await.unwrap().is_empty(), "{asset}");
    }
    let initializer = server
        .client
        .get(server.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(initializer.contains("/openapi.json"), "{initializer}");
}

/// The schemas a 2xx JSON response says nothing with: an object with no properties
/// (utoipa's `Object`), or an array of them. A client generator makes `Any` of these,
/// and schemathesis checks nothing in them.
fn untyped(schema: &Value) -> bool {
    let bare_object = |s: &Value| {
        s.as_object().is_some_and(|o| {
            o.get("type") == Some(&Value::from("object"))
                && ![
                    "properties",
                    "additionalProperties",
                    "$ref",
                    "allOf",
                    "oneOf",
                    "anyOf",
                ]
                .iter()
                .any(|k| o.contains_key(*k))
        })
    };
    bare_object(schema) || (schema["type"] == "array" && bare_object(&schema["items"]))
}

#[tokio::test]
async fn the_document_is_valid_openapi_with_unique_ids_and_typed_responses() {
    let server = TestServer::start().await;
    let document = spec(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&document).unwrap()).unwrap();

    // The validator code generators rely on (PyPI `openapi-spec-validator`).
    let pyclients = pyclients_dir();
    let output = tokio::process::Command::new(pyclients.join("bin/openapi-spec-validator"))
        .env("PYTHONPATH", &pyclients)
        .args([
            "--subschema-errors",
            "best-match",
            "--validation-errors",
            "all",
        ])
        .arg(&file)
        .output()
        .await
        .unwrap_or_else(|e| panic!("openapi-spec-validator (run `make pyclients`): {e}"));
    // It prints the whole document with each error; the start says what is wrong.
    let said = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .chars()
            .take(3000)
            .collect::<String>()
    };
    assert!(
        output.status.success(),
        "openapi-spec-validator refuses /openapi.json:\n{}\n{}",
        said(&output.stdout),
        said(&output.stderr)
    );

    let mut ids = BTreeSet::new();
    let mut problems = Vec::new();
    for (template, item) in document["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let id = operation["operationId"].as_str().unwrap_or_default();
            if !ids.insert(id.to_string()) {
                problems.push(format!(
                    "{method} {template}: operationId {id:?} is used twice"
                ));
            }
            for (status, response) in operation["responses"].as_object().unwrap() {
                if response["description"].as_str().is_none_or(str::is_empty) {
                    problems.push(format!("{method} {template} {status}: no description"));
                }
                let schema = &response["content"]["application/json"]["schema"];
                if status.starts_with('2') && untyped(schema) {
                    problems.push(format!("{method} {template} {status}: untyped {schema}"));
                }
                // A body is documented (a 202 or 204 may have none).
                if (status == "200" || status == "201") && response["content"].is_null() {
                    problems.push(format!("{method} {template} {status}: no content"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// One bounded schemathesis run with `token`; returns its JSON report.
async fn schemathesis(server: &TestServer, token: &str, report: &Path) -> (bool, String, Value) {
    let dir = pyclients_dir();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemathesis/schemathesis.toml");
    let output = tokio::process::Command::new(dir.join("bin/schemathesis"))
        .env("PYTHONPATH", &dir)
        .arg("--config-file")
        .arg(&config)
        .args(["run", &server.url("/openapi.json")])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "all", "--max-examples", "25", "--seed", "2026"])
        // Not the stateful phase: with no links in the document it infers its own, and
        // feeds a null `workspace_id` of an audit entry into a path as `None`.
        .args(["--phases", "examples,coverage,fuzzing"])
        // One worker: CPython 3.11's `ast` miscounts recursion when threads parse at
        // once, which hypothesis hits describing its strategies (a Runtime Error).
        .args(["--workers", "1", "--no-color"])
        // Debug build, whole suite at once on 2 cores: `GET /api/kb/gaps` embeds every
        // logged question again and can take more than schemathesis's default 10 s.
        // schemathesis also always checks response time (10 s by default); speed is for
        // the benchmarks, so the limit here is only the request timeout: a hang.
        .args(["--request-timeout", "60", "--max-response-time", "60"])
        // PostgreSQL text can't hold NUL; the API refuses it with a 400 everywhere.
        .args(["--generation-allow-x00", "false", "--warnings", "off"])
        .args(["--report", "json", "--report-json-path"])
        .arg(report)
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "schemathesis in {} (run `make pyclients`): {e}",
                dir.display()
            )
        });
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report = std::fs::read(report)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null);
    (output.status.success(), text, report)
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_or_schema_violation_for_any_role() {
    // A workspace with data, Dexter's tools and an LLM, so the routes do real work.
    // The fake LLM echoes unscripted requests.
    let fake = FakeOpenAi::start().await;
    let base = fake.base_url.clone();
    let fixture = fixture_with(move |config| {
        config.llm_base_url = Some(base);
        config.llm_max_retries = 0;
    })
    .await;
    let server = &fixture.server;
    let me: Value = server
        .send(&fixture.key, Method::GET, "/api/me", None)
        .await
        .json()
        .await
        .unwrap();
    let workspace = me["workspace"]["id"].as_str().unwrap().to_string();
    let mut tokens = vec![("admin token".to_string(), ADMIN_TOKEN.to_string())];
    for role in ["viewer", "member", "admin", "owner"] {
        let (_, secret) = server.create_key(&workspace, role).await;
        tokens.push((format!("{role} key"), secret));
    }
    let reports = tempfile::tempdir().unwrap();
    // One run per credential, all at once (each single-threaded, see `schemathesis`).
    let runs = tokens.iter().map(|(who, token)| {
        let report = reports
            .path()
            .join(format!("{}.json", who.replace(' ', "-")));
        async move { (who, schemathesis(server, token, &report).await) }
    });
    let mut failures = Vec::new();
    for (who, (passed, output, report)) in futures_util::future::join_all(runs).await {
        eprintln!("schemathesis with the {who}: {}", summary(&report));
        let errors = report["errors"].as_array().map_or(0, Vec::len);
        if !passed || errors > 0 {
            failures.push(format!("with the {who}:\n{output}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// "N operations, M test cases" from a JSON report, for the log.
fn summary(report: &Value) -> String {
    if report.is_null() {
        return "no report".into();
    }
    let cases = &report["test_cases"];
    format!(
        "{} operations tested, {} test cases generated, {} with failures, {} errors",
        report["operations"]["tested"],
        cases["generated"],
        cases["with_failures"],
        report["errors"].as_array().map_or(0, Vec::len)
    )
}
