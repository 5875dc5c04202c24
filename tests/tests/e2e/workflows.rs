//! The workflow engine against the real database and the built `core` node plugin:
//! data flow and templates, fan-out and fan-in, branches and skips, every 422 rule,
//! retries with their backoff, error modes, idempotent starts, waiting, versions.

use agenthost_tests::{StatusCode, TestServer, plugin_wasm};
use reqwest::Method;
use serde_json::{Value, json};

use super::plugins::json_of;

struct Flow {
    server: TestServer,
    /// An admin key (saves workflows) and a member key (runs them).
    admin: String,
    member: String,
}

impl Flow {
    async fn start() -> Flow {
        let server = TestServer::start().await;
        let (workspace, _) = server.create_workspace("flows").await;
        let (_, admin) = server.create_key(&workspace, "admin").await;
        let (_, member) = server.create_key(&workspace, "member").await;
        let manifest = json!({"name": "core", "version": "0.1.0", "kind": "node"});
        let response = server
            .upload_plugin(&manifest, plugin_wasm("core"), true)
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        Flow {
            server,
            admin,
            member,
        }
    }

    async fn send(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        self.server.send(key, method, path, body).await
    }

    async fn save(&self, slug: &str, definition: Value) -> reqwest::Response {
        self.send(
            &self.admin,
            Method::POST,
            "/api/workflows",
            Some(json!({"slug": slug, "name": slug, "definition": definition})),
        )
        .await
    }

    /// Run the workflow and wait for its result.
    async fn run(&self, slug: &str, input: Value) -> Value {
        let response = self
            .send(
                &self.member,
                Method::POST,
                &format!("/api/workflows/{slug}/executions?wait=20s"),
                Some(json!({ "input": input })),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let execution = json_of(response).await;
        self.execution(execution["id"].as_str().unwrap()).await
    }

    async fn execution(&self, id: &str) -> Value {
        json_of(
            self.send(
                &self.member,
                Method::GET,
                &format!("/api/executions/{id}"),
                None,
            )
            .await,
        )
        .await
    }
}

fn node_status(execution: &Value, id: &str) -> Vec<String> {
    execution["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["node_id"] == id)
        .map(|n| n["status"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn data_flows_through_templates_branches_and_a_join() {
    let flow = Flow::start().await;
    // start -> (a, b) in parallel -> check -> true: big / false: small -> join -> out
    let definition = json!({
        "input_schema": {"type": "object", "required": ["n"], "properties": {"n": {"type": "number"}}},
        "nodes": [
            {"id": "start", "type": "core/transform", "config": {"value": {"n": "{{ input.n }}"}}},
            {"id": "a", "type": "core/transform", "config": {"value": "{{ nodes.start.output.n * 2 }}"}},
            {"id": "b", "type": "core/transform", "config": {"value": "{{ nodes.start.output.n + 1 }}"}},
            {"id": "check", "type": "core/condition", "config": {"if": "{{ nodes.a.output + nodes.b.output > 10 }}"}},
            {"id": "big", "type": "core/transform", "config": {"value": "big {{ nodes.a.output }}"}},
            {"id": "small", "type": "core/transform", "config": {"value": "small"}},
            {"id": "after_small", "type": "core/transform", "config": {"value": 1}},
            {"id": "join", "type": "core/merge"},
            {"id": "out", "type": "core/output", "config": {"value": {
                "merged": "{{ nodes.join.output }}", "sum": "{{ nodes.a.output + nodes.b.output }}"
            }}}
        ],
        "edges": [
            {"from": "start", "to": "a"}, {"from": "start", "to": "b"},
            {"from": "a", "to": "check"}, {"from": "b", "to": "check"},
            {"from": "check", "to": "big", "branch": "true"},
            {"from": "check", "to": "small", "branch": "false"},
            {"from": "small", "to": "after_small"},
            {"from": "big", "to": "join"}, {"from": "after_small", "to": "join"},
            {"from": "join", "to": "out"}
        ]
    });
    let response = flow.save("numbers", definition).await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        response.text().await.unwrap()
    );

    let execution = flow.run("numbers", json!({"n": 5})).await;
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(
        execution["output"],
        json!({"merged": {"big": "big 10"}, "sum": 16})
    );
    assert_eq!(node_status(&execution, "small"), ["skipped"]);
    // The skip propagated to the untaken branch's successor, and the join still ran.
    assert_eq!(node_status(&execution, "after_small"), ["skipped"]);
    assert_eq!(node_status(&execution, "join"), ["succeeded"]);
    // Every node ran once, in dependency order.
    let order: Vec<&str> = execution["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["status"] == "succeeded")
        .map(|n| n["node_id"].as_str().unwrap())
        .collect();
    assert_eq!(order.len(), 7);
    let at = |id| order.iter().position(|n| *n == id).unwrap();
    assert!(at("start") < at("a") && at("start") < at("b"));
    assert!(at("a") < at("check") && at("b") < at("check"));
    assert!(at("check") < at("big") && at("big") < at("join") && at("join") < at("out"));

    // The other branch with a small input.
    let execution = flow.run("numbers", json!({"n": 1})).await;
    assert_eq!(execution["output"]["merged"], json!({"after_small": 1}));
    assert_eq!(node_status(&execution, "big"), ["skipped"]);

    // Input that fails the input schema is refused before anything runs.
    let response = flow
        .send(
            &flow.member,
            Method::POST,
            "/api/workflows/numbers/executions",
            Some(json!({"input": {"n": "five"}})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn saving_lists_every_problem_of_a_definition() {
    let flow = Flow::start().await;
    let response = flow
        .save(
            "broken",
            json!({
                "nodes": [
                    {"id": "a", "type": "core/transform", "config": {"value": "{{ input.x "}},
                    {"id": "b", "type": "core/nothing"},
                    {"id": "c", "type": "core/transform", "config": {"wrong": 1}},
                    {"id": "d", "type": "core/condition", "config": {"if": true}},
                    {"id": "e", "type": "core/transform", "config": {"value": 1}},
                    {"id": "f", "type": "core/transform", "config": {"value": 1}}
                ],
                "edges": [
                    {"from": "a", "to": "ghost"},
                    {"from": "d", "to": "e", "branch": "perhaps"},
                    {"from": "e", "to": "f"}, {"from": "f", "to": "e"}
                ],
                "input_schema": {"type": 12}
            }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = json_of(response).await;
    assert_eq!(body["error"]["code"], "invalid_definition");
    let paths: Vec<&str> = body["error"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    for expected in [
        "nodes[0].config.value",
        "nodes[1].type",
        "nodes[2].config",
        "edges[0].to",
        "edges[1].branch",
        "edges",
        "input_schema",
    ] {
        assert!(paths.contains(&expected), "{expected} not in {paths:?}");
    }
    // Nothing was saved.
    let list = json_of(
        flow.send(&flow.member, Method::GET, "/api/workflows", None)
            .await,
    )
    .await;
    assert_eq!(list["workflows"], json!([]));
    // Saving needs an admin key.
    let response = flow
        .send(
            &flow.member,
            Method::POST,
            "/api/workflows",
            Some(json!({"slug": "x", "name": "x", "definition": {"nodes": []}})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn retries_back_off_then_the_error_mode_decides() {
    let flow = Flow::start().await;
    // `input.missing` fails every attempt with an `invalid` error.
    let failing = |on_error: &str| {
        json!({"id": "flaky", "type": "core/transform", "config": {"value": "{{ input.missing }}"},
               "on_error": on_error,
               "retry": {"max_attempts": 3, "initial_interval": "200ms", "backoff_coefficient": 2.0,
                         "jitter": 0.1, "retry_on": ["invalid"]}})
    };
    let definition = json!({
        "nodes": [failing("fail"), {"id": "next", "type": "core/transform", "config": {"value": 1}}],
        "edges": [{"from": "flaky", "to": "next"}]
    });
    assert_eq!(
        flow.save("fails", definition).await.status(),
        StatusCode::CREATED
    );
    let execution = flow.run("fails", json!({})).await;
    assert_eq!(execution["status"], "failed");
    assert!(
        execution["error"].as_str().unwrap().contains("flaky"),
        "{execution}"
    );
    let attempts: Vec<&Value> = execution["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["node_id"] == "flaky")
        .collect();
    assert_eq!(attempts.len(), 3);
    let started = |n: usize| {
        chrono::DateTime::parse_from_rfc3339(attempts[n]["started_at"].as_str().unwrap()).unwrap()
    };
    let gaps = [
        (started(1) - started(0)).num_milliseconds(),
        (started(2) - started(1)).num_milliseconds(),
    ];
    // 200 ms then 400 ms, each within its 10% jitter (plus dispatch time, at most
    // the poller's pace).
    assert!((180..=420).contains(&gaps[0]), "{gaps:?}");
    assert!((360..=640).contains(&gaps[1]), "{gaps:?}");
    assert!(node_status(&execution, "next").is_empty());

    // continue: downstream runs and sees the error.
    let definition = json!({
        "nodes": [
            {"id": "flaky", "type": "core/transform", "config": {"value": "{{ input.missing }}"}, "on_error": "continue"},
            {"id": "next", "type": "core/output", "config": {"value": "{{ nodes.flaky.output }}"}}
        ],
        "edges": [{"from": "flaky", "to": "next"}]
    });
    assert_eq!(
        flow.save("continues", definition).await.status(),
        StatusCode::CREATED
    );
    let execution = flow.run("continues", json!({})).await;
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(node_status(&execution, "next"), ["succeeded"]);

    // error branch: only the error edge fires.
    let definition = json!({
        "nodes": [
            {"id": "flaky", "type": "core/transform", "config": {"value": "{{ input.missing }}"}, "on_error": "error_branch"},
            {"id": "ok", "type": "core/transform", "config": {"value": "fine"}},
            {"id": "handler", "type": "core/transform", "config": {"value": "handled"}}
        ],
        "edges": [{"from": "flaky", "to": "ok"}, {"from": "flaky", "to": "handler", "branch": "error"}]
    });
    assert_eq!(
        flow.save("branches", definition).await.status(),
        StatusCode::CREATED
    );
    let execution = flow.run("branches", json!({})).await;
    assert_eq!(execution["status"], "succeeded");
    assert_eq!(node_status(&execution, "ok"), ["skipped"]);
    assert_eq!(execution["output"], json!({"handler": "handled"}));
}

#[tokio::test]
async fn an_idempotency_key_starts_one_execution_and_versions_are_kept() {
    let flow = Flow::start().await;
    let v1 = json!({"nodes": [{"id": "out", "type": "core/output", "config": {"value": "v1"}}]});
    assert_eq!(
        flow.save("versioned", v1).await.status(),
        StatusCode::CREATED
    );
    let start = |key: &'static str| {
        flow.server
            .request(
                Method::POST,
                "/api/workflows/versioned/executions",
                &flow.member,
            )
            .header("Idempotency-Key", key)
            .json(&json!({"input": {}}))
            .send()
    };
    let first = start("order-1").await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first = json_of(first).await;
    let again = start("order-1").await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(json_of(again).await["id"], first["id"]);

    // Saving makes version 2; the first execution stays on version 1.
    let v2 = json!({"definition": {"nodes": [{"id": "out", "type": "core/output", "config": {"value": "v2"}}]}});
    let response = flow
        .send(
            &flow.admin,
            Method::PATCH,
            "/api/workflows/versioned",
            Some(v2),
        )
        .await;
    assert_eq!(json_of(response).await["latest_version"], 2);
    let execution = flow.run("versioned", json!({})).await;
    assert_eq!(
        (execution["version"].clone(), execution["output"].clone()),
        (json!(2), json!("v2"))
    );
    let first = flow.execution(first["id"].as_str().unwrap()).await;
    assert_eq!(first["version"], 1);
    let versions = json_of(
        flow.send(
            &flow.member,
            Method::GET,
            "/api/workflows/versioned/versions",
            None,
        )
        .await,
    )
    .await;
    assert_eq!(versions["versions"].as_array().unwrap().len(), 2);
    let listed = json_of(
        flow.send(
            &flow.member,
            Method::GET,
            "/api/executions?workflow=versioned&status=succeeded",
            None,
        )
        .await,
    )
    .await;
    assert_eq!(listed["executions"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_custom_node_plugin_uploaded_at_runtime_is_usable_in_the_next_version() {
    let flow = Flow::start().await;
    let definition = json!({
        "nodes": [
            {"id": "route", "type": "threshold/threshold", "config": {"limit": 10, "value": "{{ input.n }}"}},
            {"id": "high", "type": "core/output", "config": {"value": "high {{ input.n }}"}},
            {"id": "low", "type": "core/output", "config": {"value": "low"}}
        ],
        "edges": [
            {"from": "route", "to": "high", "branch": "high"},
            {"from": "route", "to": "low", "branch": "low"}
        ]
    });
    // Before the upload, the node type does not exist.
    let response = flow.save("custom", definition.clone()).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let manifest = json!({"name": "threshold", "version": "1.0.0", "kind": "node"});
    let response = flow
        .server
        .upload_plugin(&manifest, plugin_wasm("threshold"), true)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = flow.save("custom", definition).await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        response.text().await.unwrap()
    );
    let execution = flow.run("custom", json!({"n": 12})).await;
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(execution["output"], json!("high 12"));
    assert_eq!(node_status(&execution, "low"), ["skipped"]);
    // The execution pinned the versions it ran with.
    assert_eq!(
        execution["node_plugins"],
        json!({"core": "0.1.0", "threshold": "1.0.0"})
    );
}
