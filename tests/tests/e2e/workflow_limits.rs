//! Limits of the workflow engine, each proven to hold: node timeouts (with retries),
//! cancel stopping a running node, the node output cap, nodes per workflow, running
//! executions per workspace; and the SSE progress stream resuming with Last-Event-ID.

use std::time::{Duration, Instant};

use agenthost_tests::{StatusCode, TestServer, plugin_wasm};
use reqwest::Method;
use serde_json::{Value, json};

use super::plugins::{admin, json_of};

struct Limits {
    server: TestServer,
    key: String,
}

/// The sideeffect test plugin sleeps `config.sleep_ms` in the host (WASI clock), then
/// records its effect in its own table: a node that takes as long as we like.
const MIGRATIONS: [&str; 2] = [
    "CREATE TABLE effects (workspace_id uuid NOT NULL, key text NOT NULL, \
     made_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (workspace_id, key))",
    "CREATE TABLE attempts (id bigserial PRIMARY KEY, workspace_id uuid NOT NULL, \
     key text NOT NULL, attempt integer, applied boolean NOT NULL, \
     at timestamptz NOT NULL DEFAULT now())",
];

impl Limits {
    async fn start(change: impl FnOnce(&mut agenthost::Config)) -> Limits {
        let server = TestServer::start_with(change).await;
        let (workspace, _) = server.create_workspace("limits").await;
        let (_, key) = server.create_key(&workspace, "admin").await;
        let core = json!({"name": "core", "version": "0.1.0", "kind": "node"});
        assert_eq!(
            server
                .upload_plugin(&core, plugin_wasm("core"), true)
                .await
                .status(),
            StatusCode::CREATED
        );
        let sleepy = json!({"name": "sideeffect", "version": "1.0.0", "kind": "node",
            "capabilities": {"database": {}}, "migrations": MIGRATIONS,
            "limits": {"timeout_ms": 60000}});
        let response = server
            .upload_plugin(&sleepy, plugin_wasm("sideeffect"), false)
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let path = "/api/admin/plugins/sideeffect/versions/1.0.0";
        let response = admin(
            &server,
            Method::PUT,
            &format!("{path}/grants"),
            Some(json!({"database": {}})),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let response = admin(&server, Method::POST, &format!("{path}/activate"), None).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{}",
            response.text().await.unwrap()
        );
        Limits { server, key }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
        self.server.send(&self.key, method, path, body).await
    }

    async fn save(&self, slug: &str, definition: Value) -> reqwest::Response {
        self.send(
            Method::POST,
            "/api/workflows",
            Some(json!({"slug": slug, "name": slug, "definition": definition})),
        )
        .await
    }

    async fn begin(&self, slug: &str) -> reqwest::Response {
        self.send(
            Method::POST,
            &format!("/api/workflows/{slug}/executions"),
            Some(json!({"input": {}})),
        )
        .await
    }

    async fn until_done(&self, id: &str) -> Value {
        for _ in 0..1000 {
            let execution = json_of(
                self.send(Method::GET, &format!("/api/executions/{id}"), None)
                    .await,
            )
            .await;
            if !matches!(execution["status"].as_str(), Some("running" | "waiting")) {
                return execution;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{id} did not finish");
    }
}

fn sleeper(id: &str, ms: u64) -> Value {
    json!({"id": id, "type": "sideeffect/effect", "config": {"sleep_ms": ms}})
}

#[tokio::test]
async fn a_node_past_its_timeout_fails_and_its_retries_time_out_too() {
    let l = Limits::start(|_| {}).await;
    let mut slow = sleeper("slow", 5_000);
    slow["timeout"] = json!("300ms");
    slow["retry"] = json!({"max_attempts": 2, "initial_interval": "100ms", "jitter": 0.0});
    let definition = json!({"nodes": [slow, {"id": "after", "type": "core/output", "config": {"value": 1}}],
                            "edges": [{"from": "slow", "to": "after"}]});
    assert_eq!(
        l.save("slow", definition).await.status(),
        StatusCode::CREATED
    );
    let started = Instant::now();
    let execution = json_of(l.begin("slow").await).await;
    let done = l.until_done(execution["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "failed");
    let attempts: Vec<&Value> = done["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["node_id"] == "slow")
        .collect();
    assert_eq!(attempts.len(), 2, "{done:#}");
    for attempt in &attempts {
        assert_eq!(attempt["error_kind"], "timeout");
    }
    // Two 300 ms attempts and a 100 ms backoff, not two 5 s sleeps.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn cancel_stops_the_running_node_and_nothing_after_it_runs() {
    let l = Limits::start(|_| {}).await;
    let definition = json!({"nodes": [sleeper("slow", 20_000), {"id": "after", "type": "core/output", "config": {"value": 1}}],
                            "edges": [{"from": "slow", "to": "after"}]});
    assert_eq!(
        l.save("long", definition).await.status(),
        StatusCode::CREATED
    );
    let id = json_of(l.begin("long").await).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Wait until the node is running, then cancel.
    loop {
        let execution = json_of(
            l.send(Method::GET, &format!("/api/executions/{id}"), None)
                .await,
        )
        .await;
        if execution["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["status"] == "running")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let response = l
        .send(Method::POST, &format!("/api/executions/{id}/cancel"), None)
        .await;
    assert_eq!(json_of(response).await["status"], "cancelled");
    // The running node stops well before its 20 s sleep would have ended.
    let mut slow = Value::Null;
    for _ in 0..250 {
        let execution = json_of(
            l.send(Method::GET, &format!("/api/executions/{id}"), None)
                .await,
        )
        .await;
        slow = execution["nodes"][0].clone();
        if slow["status"] == "cancelled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(slow["status"], "cancelled", "{slow}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let execution = json_of(
        l.send(Method::GET, &format!("/api/executions/{id}"), None)
            .await,
    )
    .await;
    assert_eq!(
        execution["nodes"].as_array().unwrap().len(),
        1,
        "{execution:#}"
    );
}

#[tokio::test]
async fn outputs_nodes_and_running_executions_are_capped() {
    let l = Limits::start(|config| {
        config.workflow_max_output_bytes = 100;
        config.workflow_max_running = 1;
    })
    .await;
    // A node output over the cap fails the node with a clear reason.
    let big = json!({"nodes": [{"id": "big", "type": "core/transform", "config": {"value": "x".repeat(200)}}]});
    assert_eq!(l.save("big", big).await.status(), StatusCode::CREATED);
    let execution = json_of(l.begin("big").await).await;
    let done = l.until_done(execution["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "failed");
    assert!(
        done["error"]
            .as_str()
            .unwrap()
            .contains("more than the 100"),
        "{done}"
    );

    // More nodes than a workflow may have.
    let nodes: Vec<Value> = (0..201)
        .map(|i| json!({"id": format!("n{i}"), "type": "core/transform", "config": {"value": i}}))
        .collect();
    let response = l.save("huge", json!({"nodes": nodes})).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        json_of(response).await["error"]["message"]
            .as_str()
            .unwrap()
            .contains("200")
    );

    // One execution running is the workspace's limit here: the next is refused.
    let definition = json!({"nodes": [sleeper("slow", 1_500)]});
    assert_eq!(
        l.save("one", definition).await.status(),
        StatusCode::CREATED
    );
    let first = l.begin("one").await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let second = l.begin("one").await;
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    let body = json_of(second).await;
    assert_eq!(body["error"]["code"], "execution_limit");
    l.until_done(json_of(first).await["id"].as_str().unwrap())
        .await;
    assert_eq!(l.begin("one").await.status(), StatusCode::CREATED);
}

/// The SSE events of an execution, parsed into (id, event, data).
async fn events(l: &Limits, id: &str, after: Option<&str>) -> Vec<(String, String, Value)> {
    let mut request =
        l.server
            .request(Method::GET, &format!("/api/executions/{id}/events"), &l.key);
    if let Some(after) = after {
        request = request.header("Last-Event-ID", after);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // The stream ends after `finished`.
    let body = tokio::time::timeout(Duration::from_secs(10), response.text())
        .await
        .unwrap()
        .unwrap();
    body.split("\n\n")
        .filter(|block| block.contains("data:"))
        .map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|line| line.strip_prefix(&format!("{name}:")))
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            };
            (
                field("id"),
                field("event"),
                serde_json::from_str(&field("data")).unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn progress_streams_as_sse_and_resumes_after_the_last_event() {
    let l = Limits::start(|_| {}).await;
    let definition = json!({
        "nodes": [
            {"id": "check", "type": "core/condition", "config": {"if": false}},
            {"id": "yes", "type": "core/transform", "config": {"value": 1}},
            sleeper("no", 200)
        ],
        "edges": [{"from": "check", "to": "yes", "branch": "true"}, {"from": "check", "to": "no", "branch": "false"}]
    });
    assert_eq!(
        l.save("streamed", definition).await.status(),
        StatusCode::CREATED
    );
    let id = json_of(l.begin("streamed").await).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let all = events(&l, &id, None).await;
    let kinds: Vec<(&str, &str)> = all
        .iter()
        .map(|(_, kind, data)| (kind.as_str(), data["node"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        kinds,
        [
            ("started", ""),
            ("node_completed", "check"),
            ("node_skipped", "yes"),
            ("node_completed", "no"),
            ("finished", "")
        ]
    );
    assert_eq!(all.last().unwrap().2["data"]["status"], "succeeded");
    // Reconnecting with the id of the second event gets the rest, and nothing twice.
    let rest = events(&l, &id, Some(&all[1].0)).await;
    assert_eq!(rest.len(), 3);
    assert_eq!(rest[0].0, all[2].0);
}
