//! Executions that wait: approvals (approve, reject, quorum, roles, single use,
//! timeouts), durable delays, resuming on another host or after a restart, execution
//! timeouts, cancel, retry from the failed node, and version pinning while waiting.

use std::time::Duration;

use agenthost_tests::{StatusCode, TestServer, plugin_wasm};
use reqwest::Method;
use serde_json::{Value, json};

use super::plugins::json_of;

/// A server with the `core` node plugin, an admin, a second admin and a member key.
struct Waits {
    server: TestServer,
    admin: String,
    admin2: String,
    member: String,
}

const CORE: &str = r#"{"name": "core", "version": "0.1.0", "kind": "node"}"#;

async fn install_core(server: &TestServer, version: &str) {
    let mut manifest: Value = serde_json::from_str(CORE).unwrap();
    manifest["version"] = json!(version);
    let response = server
        .upload_plugin(&manifest, plugin_wasm("core"), true)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

fn fast(config: &mut agenthost::Config) {
    config.workflow_heartbeat = Duration::from_millis(100);
}

impl Waits {
    async fn start() -> Waits {
        let server = TestServer::start_with(fast).await;
        let (workspace, _) = server.create_workspace("waits").await;
        let (_, admin) = server.create_key(&workspace, "admin").await;
        let (_, admin2) = server.create_key(&workspace, "admin").await;
        let (_, member) = server.create_key(&workspace, "member").await;
        install_core(&server, "0.1.0").await;
        Waits {
            server,
            admin,
            admin2,
            member,
        }
    }

    /// The same workspace and keys, served by `server` (another host, same database).
    fn on(&self, server: TestServer) -> Waits {
        Waits {
            server,
            admin: self.admin.clone(),
            admin2: self.admin2.clone(),
            member: self.member.clone(),
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

    async fn save(&self, slug: &str, definition: Value) {
        let response = self
            .send(
                &self.admin,
                Method::POST,
                "/api/workflows",
                Some(json!({"slug": slug, "name": slug, "definition": definition})),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "{}",
            response.text().await.unwrap()
        );
    }

    async fn begin(&self, slug: &str) -> String {
        let response = self
            .send(
                &self.member,
                Method::POST,
                &format!("/api/workflows/{slug}/executions"),
                Some(json!({"input": {"amount": 120}})),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        json_of(response).await["id"].as_str().unwrap().to_string()
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

    /// Poll until the execution has `status` (or fail after 10 s).
    async fn until(&self, id: &str, status: &str) -> Value {
        for _ in 0..500 {
            let execution = self.execution(id).await;
            if execution["status"] == status {
                return execution;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{id} never became {status}: {:#}", self.execution(id).await);
    }

    async fn pending(&self) -> Vec<Value> {
        let list = json_of(
            self.send(
                &self.member,
                Method::GET,
                "/api/approvals?status=pending",
                None,
            )
            .await,
        )
        .await;
        list["approvals"].as_array().unwrap().clone()
    }

    async fn decide(&self, key: &str, approval: &str, decision: &str) -> reqwest::Response {
        self.send(
            key,
            Method::POST,
            &format!("/api/approvals/{approval}"),
            Some(json!({"decision": decision, "comment": "looked at it"})),
        )
        .await
    }
}

fn runs_of<'a>(execution: &'a Value, node: &str) -> Vec<&'a Value> {
    execution["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["node_id"] == node)
        .collect()
}

/// prepare -> approval (admins; `config`) -> approved: yes / rejected: no
fn approval_flow(config: Value) -> Value {
    json!({
        "nodes": [
            {"id": "prepare", "type": "core/transform", "config": {"value": "{{ input.amount }}"}},
            {"id": "approve", "type": "core/approval", "config": config},
            {"id": "yes", "type": "core/output", "config": {"value": "paid {{ nodes.prepare.output }}"}},
            {"id": "no", "type": "core/output", "config": {"value": "refused"}}
        ],
        "edges": [
            {"from": "prepare", "to": "approve"},
            {"from": "approve", "to": "yes", "branch": "approved"},
            {"from": "approve", "to": "no", "branch": "rejected"}
        ]
    })
}

#[tokio::test]
async fn an_approval_suspends_and_resumes_at_its_successors() {
    let w = Waits::start().await;
    w.save(
        "payout",
        approval_flow(json!({"message": "Pay out?", "role": "admin"})),
    )
    .await;
    let id = w.begin("payout").await;
    let waiting = w.until(&id, "waiting").await;
    assert_eq!(runs_of(&waiting, "approve")[0]["status"], "waiting");
    let pending = w.pending().await;
    assert_eq!(pending.len(), 1);
    let approval = pending[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        (pending[0]["message"].clone(), pending[0]["role"].clone()),
        (json!("Pay out?"), json!("admin"))
    );

    // Only by POST, only an admin or higher, only once.
    let response = w.decide(&w.member, &approval, "approve").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = w
        .send(
            &w.admin,
            Method::GET,
            &format!("/api/approvals/{approval}"),
            None,
        )
        .await;
    assert_eq!(json_of(response).await["status"], "pending");
    let response = w.decide(&w.admin, &approval, "approve").await;
    assert_eq!(response.status(), StatusCode::OK);
    let decided = json_of(response).await;
    assert_eq!(decided["status"], "approved");
    assert_eq!(decided["decisions"][0]["comment"], "looked at it");
    let response = w.decide(&w.admin2, &approval, "reject").await;
    assert_eq!(response.status(), StatusCode::CONFLICT);

    let done = w.until(&id, "succeeded").await;
    assert_eq!(done["output"], "paid 120");
    // The earlier node ran once; the approval node once; the other branch was skipped.
    assert_eq!(runs_of(&done, "prepare").len(), 1);
    assert_eq!(runs_of(&done, "approve").len(), 1);
    assert_eq!(runs_of(&done, "no")[0]["status"], "skipped");

    // A rejection takes the other branch.
    let id = w.begin("payout").await;
    w.until(&id, "waiting").await;
    let approval = w.pending().await[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        w.decide(&w.admin, &approval, "reject").await.status(),
        StatusCode::OK
    );
    assert_eq!(w.until(&id, "succeeded").await["output"], "refused");
    let response = w.decide(&w.admin, &approval, "maybe").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_quorum_needs_distinct_keys() {
    let w = Waits::start().await;
    w.save("two", approval_flow(json!({"approvals": 2}))).await;
    let id = w.begin("two").await;
    w.until(&id, "waiting").await;
    let approval = w.pending().await[0]["id"].as_str().unwrap().to_string();
    let first = json_of(w.decide(&w.admin, &approval, "approve").await).await;
    assert_eq!(
        (first["status"].clone(), first["approvals"].clone()),
        (json!("pending"), json!(1))
    );
    // The same key can't approve twice to reach the quorum alone.
    assert_eq!(
        w.decide(&w.admin, &approval, "approve").await.status(),
        StatusCode::CONFLICT
    );
    assert_eq!(w.execution(&id).await["status"], "waiting");
    assert_eq!(
        w.decide(&w.member, &approval, "approve").await.status(),
        StatusCode::OK
    );
    assert_eq!(w.until(&id, "succeeded").await["output"], "paid 120");
}

#[tokio::test]
async fn an_approval_timeout_decides_by_its_rule() {
    let w = Waits::start().await;
    w.save(
        "lapse",
        approval_flow(json!({"timeout": "300ms", "on_timeout": "approve"})),
    )
    .await;
    w.save(
        "strict",
        approval_flow(json!({"timeout": "300ms", "on_timeout": "fail"})),
    )
    .await;
    let lapse = w.begin("lapse").await;
    let strict = w.begin("strict").await;
    assert_eq!(w.until(&lapse, "succeeded").await["output"], "paid 120");
    let failed = w.until(&strict, "failed").await;
    assert!(
        failed["error"].as_str().unwrap().contains("timed out"),
        "{failed}"
    );
    let list = json_of(
        w.send(
            &w.member,
            Method::GET,
            "/api/approvals?status=timed_out",
            None,
        )
        .await,
    )
    .await;
    assert_eq!(list["approvals"].as_array().unwrap().len(), 2);
    // A decision after the timeout is refused.
    let approval = list["approvals"][0]["id"].as_str().unwrap();
    assert_eq!(
        w.decide(&w.admin, approval, "approve").await.status(),
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn waits_survive_their_host_and_a_timeout_missed_while_down_fires_at_start() {
    let a = Waits::start().await;
    a.save("payout", approval_flow(json!({"role": "admin"})))
        .await;
    a.save(
        "lapse",
        approval_flow(json!({"timeout": "400ms", "on_timeout": "reject"})),
    )
    .await;
    a.save(
        "sleepy",
        json!({
            "nodes": [
                {"id": "before", "type": "core/transform", "config": {"value": 1}},
                {"id": "nap", "type": "core/delay", "config": {"duration": "700ms"}},
                {"id": "after", "type": "core/output", "config": {"value": "woke"}}
            ],
            "edges": [{"from": "before", "to": "nap"}, {"from": "nap", "to": "after"}]
        }),
    )
    .await;
    let payout = a.begin("payout").await;
    let lapse = a.begin("lapse").await;
    let sleepy = a.begin("sleepy").await;
    a.until(&payout, "waiting").await;
    a.until(&lapse, "waiting").await;
    a.until(&sleepy, "waiting").await;
    let url = a.server.database_url.clone();
    a.server.stop().await;
    // Nobody runs while the timeout and the delay pass.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let server = TestServer::start_with(|config| {
        fast(config);
        config.database_url = Some(url);
    })
    .await;
    let b = Waits {
        server,
        admin: a.admin,
        admin2: a.admin2,
        member: a.member,
    };
    let b = b.on(b.server.replica().await);
    assert_eq!(b.until(&lapse, "succeeded").await["output"], "refused");
    let woke = b.until(&sleepy, "succeeded").await;
    assert_eq!(woke["output"], "woke");
    assert_eq!(runs_of(&woke, "before").len(), 1);
    let approval = b.pending().await[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        b.decide(&b.admin, &approval, "approve").await.status(),
        StatusCode::OK
    );
    let done = b.until(&payout, "succeeded").await;
    assert_eq!(done["output"], "paid 120");
    assert_eq!(runs_of(&done, "prepare").len(), 1);
}

#[tokio::test]
async fn execution_timeouts_cancel_and_retry_from_the_failed_node() {
    let w = Waits::start().await;
    w.save(
        "slow",
        json!({
            "settings": {"execution_timeout": "300ms"},
            "nodes": [
                {"id": "nap", "type": "core/delay", "config": {"duration": "30s"}},
                {"id": "after", "type": "core/output", "config": {"value": 1}}
            ],
            "edges": [{"from": "nap", "to": "after"}]
        }),
    )
    .await;
    let slow = w.begin("slow").await;
    let failed = w.until(&slow, "failed").await;
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("execution timeout"),
        "{failed}"
    );
    assert_eq!(runs_of(&failed, "nap")[0]["status"], "cancelled");
    assert!(runs_of(&failed, "after").is_empty());

    // Cancel a waiting execution: its approval is cancelled, nothing after it runs.
    w.save("payout", approval_flow(json!({}))).await;
    let id = w.begin("payout").await;
    w.until(&id, "waiting").await;
    let response = w
        .send(
            &w.member,
            Method::POST,
            &format!("/api/executions/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(json_of(response).await["status"], "cancelled");
    assert!(w.pending().await.is_empty());
    let response = w
        .send(
            &w.member,
            Method::POST,
            &format!("/api/executions/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);

    // Retry: the completed node is reused, the execution runs again from the
    // approval, which is asked for anew.
    let response = w
        .send(
            &w.member,
            Method::POST,
            &format!("/api/executions/{id}/retry"),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let retry = json_of(response).await;
    assert_eq!(retry["retry_of"], id.as_str());
    let retry_id = retry["id"].as_str().unwrap().to_string();
    w.until(&retry_id, "waiting").await;
    let approval = w.pending().await[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        w.decide(&w.admin, &approval, "approve").await.status(),
        StatusCode::OK
    );
    let done = w.until(&retry_id, "succeeded").await;
    assert_eq!(done["output"], "paid 120");
    let prepare = runs_of(&done, "prepare");
    assert_eq!(prepare.len(), 1);
    assert_eq!(prepare[0]["reused_from"], id.as_str());
    // A succeeded execution can't be retried.
    let response = w
        .send(
            &w.member,
            Method::POST,
            &format!("/api/executions/{retry_id}/retry"),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn an_execution_keeps_its_versions_while_the_workflow_and_its_plugins_change() {
    let w = Waits::start().await;
    let version = |label: &str| {
        json!({
            "nodes": [
                {"id": "nap", "type": "core/delay", "config": {"duration": "600ms"}},
                {"id": "out", "type": "core/output", "config": {"value": label}}
            ],
            "edges": [{"from": "nap", "to": "out"}]
        })
    };
    w.save("pinned", version("v1")).await;
    let id = w.begin("pinned").await;
    w.until(&id, "waiting").await;
    // While it waits: a new workflow version, and a new active version of `core`.
    let response = w
        .send(
            &w.admin,
            Method::PATCH,
            "/api/workflows/pinned",
            Some(json!({"definition": version("v2")})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    install_core(&w.server, "0.2.0").await;
    let done = w.until(&id, "succeeded").await;
    assert_eq!(
        (done["version"].clone(), done["output"].clone()),
        (json!(1), json!("v1"))
    );
    // The node after the wait ran on the pinned, no longer active, plugin version.
    assert_eq!(runs_of(&done, "out")[0]["version"], "0.1.0");
    assert_eq!(done["node_plugins"], json!({"core": "0.1.0"}));
    // A new execution takes the new versions.
    let id = w.begin("pinned").await;
    let done = w.until(&id, "succeeded").await;
    assert_eq!(
        (done["version"].clone(), done["output"].clone()),
        (json!(2), json!("v2"))
    );
    assert_eq!(runs_of(&done, "out")[0]["version"], "0.2.0");
}

/// A timeout is recorded on the approval in one commit and the node completed in the
/// next; a host that dies between the two leaves the approval `timed_out` with its node
/// still waiting. The state is made here as that host would leave it (the approval
/// marked, the run due), and the next worker must apply `on_timeout`, not fail the node.
#[tokio::test]
async fn a_timeout_recorded_before_the_host_died_still_applies_its_rule() {
    let w = Waits::start().await;
    let pool = sqlx::PgPool::connect(&w.server.database_url).await.unwrap();
    w.save(
        "late",
        approval_flow(json!({"timeout": "1h", "on_timeout": "approve"})),
    )
    .await;
    let id = w.begin("late").await;
    w.until(&id, "waiting").await;
    let approval = w.pending().await[0]["id"].as_str().unwrap().to_string();
    let marked = sqlx::query(
        "UPDATE approvals SET status = 'timed_out', decided_at = now() WHERE id = $1::uuid",
    )
    .bind(&approval)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(marked.rows_affected(), 1);
    sqlx::query("UPDATE node_runs SET run_at = now() WHERE status = 'waiting'")
        .execute(&pool)
        .await
        .unwrap();
    let done = w.until(&id, "succeeded").await;
    assert_eq!(done["output"], "paid 120");
    let approve = runs_of(&done, "approve");
    assert_eq!(approve.len(), 1);
    assert_eq!(approve[0]["status"], "succeeded");
    assert_eq!(approve[0]["output"]["timed_out"], true);
}

/// Read an event stream to its end: the `id`s of its events, and whether the
/// server closed it (a stream that stays open is cut after `patience`).
async fn read_stream(response: reqwest::Response, patience: Duration) -> (Vec<i64>, bool) {
    let mut response = response;
    let mut ids = Vec::new();
    let mut text = String::new();
    let ended = tokio::time::timeout(patience, async {
        while let Some(chunk) = response.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .is_ok();
    for line in text.lines() {
        if let Some(id) = line.strip_prefix("id:") {
            ids.push(id.trim().parse().unwrap());
        }
    }
    (ids, ended)
}

/// A browser's `EventSource` reconnects after a stream ends, sending the last `id` it
/// saw as `Last-Event-ID`; it stops only on a 204. A finished execution's stream ends,
/// and the reconnect gets the 204 instead of an open stream that polls forever.
#[tokio::test]
async fn a_finished_executions_stream_ends_and_the_reconnect_is_told_to_stop() {
    let w = Waits::start().await;
    w.save(
        "quick",
        json!({"nodes": [{"id": "only", "type": "core/output", "config": {"value": 1}}]}),
    )
    .await;
    let id = w.begin("quick").await;
    w.until(&id, "succeeded").await;
    let events = |last: Option<i64>| {
        let mut request = w
            .server
            .request(
                Method::GET,
                &format!("/api/executions/{id}/events"),
                &w.member,
            )
            .header("accept", "text/event-stream");
        if let Some(last) = last {
            request = request.header("last-event-id", last.to_string());
        }
        request.send()
    };
    let patience = Duration::from_secs(10);

    let response = events(None).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (ids, ended) = read_stream(response, patience).await;
    assert!(ended, "the stream of a finished execution stayed open");
    let last = *ids.last().unwrap();
    assert!(ids.len() >= 3, "started, node events, finished: {ids:?}");

    // What EventSource does next: reconnect with the last id.
    let response = events(Some(last)).await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = events(Some(last + 1000)).await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    // Resuming one before the end replays what is left, then ends.
    let before = ids[ids.len() - 2];
    let response = events(Some(before)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (rest, ended) = read_stream(response, patience).await;
    assert!(
        ended,
        "a resumed stream of a finished execution stayed open"
    );
    assert_eq!(rest, vec![last]);
}
