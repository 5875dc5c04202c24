//! The node plugins automation actions run as (`events/emit`, `workflow/start`,
//! `tickets/create`, `tickets/update`), installed the way `make plugins` ships them:
//! from a bundled-plugins directory, granted their manifests' requests at start. Real
//! workflows against the real host: the event in the feed and starting an event
//! trigger, the host's types and ungranted ones refused, tickets with their own
//! events, and each side effect once when the engine runs a node run again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use agenthost_tests::{StatusCode, TestServer, plugin_wasm};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::plugins::{admin, json_of};
use super::workflow_nodes::{last, runs};

struct Fixture {
    server: TestServer,
    pool: PgPool,
    workspace: String,
    key: String,
    _bundle: tempfile::TempDir,
}

/// The shipped components and manifests, laid out as `make plugins` bundles them.
fn bundle() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/nodes");
    for name in ["core", "events", "workflow", "tickets"] {
        std::fs::write(dir.path().join(format!("{name}.wasm")), plugin_wasm(name)).unwrap();
        let manifest: PathBuf = root.join(name).join("manifest.json");
        let manifest = if manifest.exists() {
            std::fs::read(manifest).unwrap()
        } else {
            json!({"name": name, "version": "0.1.0", "kind": "node"})
                .to_string()
                .into_bytes()
        };
        std::fs::write(dir.path().join(format!("{name}.json")), manifest).unwrap();
    }
    dir
}

impl Fixture {
    async fn start(change: impl FnOnce(&mut agenthost::Config)) -> Fixture {
        let bundle = bundle();
        let dir = bundle.path().to_path_buf();
        let server = TestServer::start_with(move |config| {
            config.bundled_plugins_dir = dir;
            change(config);
        })
        .await;
        let pool = PgPool::connect(&server.database_url).await.unwrap();
        let (workspace, _) = server.create_workspace("automation").await;
        let (_, key) = server.create_key(&workspace, "admin").await;
        let people = json!([{"external_id": "p1", "name": "Ana", "email": "ana@example.com"}]);
        let (status, body) = server.import(&key, "people", &people).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        Fixture {
            server,
            pool,
            workspace,
            key,
            _bundle: bundle,
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let response = self.server.send(&self.key, method, path, body).await;
        (response.status(), json_of(response).await)
    }

    async fn save(&self, slug: &str, definition: Value) {
        let body = json!({"slug": slug, "name": slug, "definition": definition});
        let (status, body) = self.send(Method::POST, "/api/workflows", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    /// Run a one-node workflow of `node` to its end; the execution with its node runs.
    async fn run_node(&self, slug: &str, node: Value, input: Value) -> Value {
        self.save(slug, json!({"nodes": [node]})).await;
        self.run(slug, input).await
    }

    async fn run(&self, slug: &str, input: Value) -> Value {
        let path = format!("/api/workflows/{slug}/executions?wait=20s");
        let (status, execution) = self
            .send(Method::POST, &path, Some(json!({"input": input})))
            .await;
        assert_eq!(status, StatusCode::OK, "{execution}");
        let id = execution["id"].as_str().unwrap();
        self.send(Method::GET, &format!("/api/executions/{id}"), None)
            .await
            .1
    }

    /// The workspace's events of `query` once every committed event is readable (the
    /// feed holds events back while an older transaction of the cluster is open).
    async fn events(&self, query: &str) -> Vec<Value> {
        for _ in 0..1000 {
            let behind: bool = sqlx::query_scalar(
                "SELECT coalesce(max(tx) >= pg_snapshot_xmin(pg_current_snapshot()), false) \
                 FROM events WHERE workspace_id = $1::uuid",
            )
            .bind(&self.workspace)
            .fetch_one(&self.pool)
            .await
            .unwrap();
            if !behind {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (status, page) = self
            .send(Method::GET, &format!("/api/events{query}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["events"].as_array().unwrap().clone()
    }

    /// The executions of `workflow`, once `count` have finished (or after 20 s).
    async fn finished(&self, workflow: &str, count: usize) -> Vec<Value> {
        let mut done = Vec::new();
        let mut refused = None;
        for _ in 0..1000 {
            let path = format!("/api/executions?workflow={workflow}");
            let (status, list) = self.send(Method::GET, &path, None).await;
            // On a loaded machine a poll may be cut short (503): poll again, and say
            // so if every poll was.
            let Some(executions) = list["executions"].as_array() else {
                refused = Some(format!("{status} {list}"));
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            refused = None;
            done = executions
                .iter()
                .filter(|e| !matches!(e["status"].as_str(), Some("running" | "waiting")))
                .cloned()
                .collect();
            if done.len() >= count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(refused.is_none(), "listing executions: {refused:?}");
        done
    }
}

fn error_of(execution: &Value) -> String {
    assert_eq!(execution["status"], "failed", "{execution:#}");
    execution["error"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn an_emitted_event_enters_the_feed_and_starts_an_event_trigger() {
    let f = Fixture::start(|_| {}).await;
    // Waits for the custom type; its input is the event.
    f.save(
        "listener",
        json!({
            "triggers": [{"type": "event", "event": "custom.escalated"}],
            "nodes": [{"id": "out", "type": "core/output", "config": {"value": {
                "ticket": "{{ input.payload.ticket }}", "actor": "{{ input.actor }}"}}}]
        }),
    )
    .await;
    let emit = json!({"id": "emit", "type": "events/emit", "config": {
        "type": "custom.escalated", "payload": {"ticket": "{{ input.ticket }}", "why": "vip"},
        "subject": "{{ input.ticket }}"}});
    let execution = f
        .run_node("escalate", emit, json!({"ticket": "T-42"}))
        .await;
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(
        last(&execution, "emit")["output"],
        json!({"type": "custom.escalated", "subject": "T-42"})
    );

    let events = f.events("?type=custom").await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["type"], "custom.escalated");
    assert_eq!(events[0]["actor"], "plugin:events");
    assert_eq!(events[0]["subject"], "T-42");
    assert_eq!(
        events[0]["payload"],
        json!({"ticket": "T-42", "why": "vip"})
    );

    // The trigger saw it like any other event.
    let started = f.finished("listener", 1).await;
    assert_eq!(started.len(), 1, "{started:#?}");
    assert_eq!(started[0]["status"], "succeeded");
    assert_eq!(
        started[0]["output"],
        json!({"ticket": "T-42", "actor": "plugin:events"})
    );
    // The event types list has no schema for custom types.
    let (_, types) = f.send(Method::GET, "/api/event-types", None).await;
    assert!(!types.to_string().contains("custom.escalated"));
}

#[tokio::test]
async fn host_types_ungranted_types_and_oversized_payloads_are_refused() {
    let f = Fixture::start(|_| {}).await;
    let node = |kind: &str, payload: Value| {
        json!({"id": "emit", "type": "events/emit",
               "config": {"type": kind, "payload": payload}})
    };
    // No spoofing: a ticket event from a workflow, even with every type granted.
    let spoof = f
        .run_node(
            "spoof",
            node("ticket.created", json!({"ticket_id": "x"})),
            json!({}),
        )
        .await;
    let error = error_of(&spoof);
    assert!(error.contains("host's own namespace \"ticket\""), "{error}");
    assert_eq!(last(&spoof, "emit")["error_kind"], "denied", "{spoof:#}");
    // The bundled grant is the prefix `custom`.
    let other = f
        .run_node("other", node("acme.invoice.paid", json!({})), json!({}))
        .await;
    let error = error_of(&other);
    assert!(error.contains("is not granted"), "{error}");
    // 64 KiB of payload at most.
    let big = json!({"blob": "x".repeat(64 * 1024)});
    let error = error_of(&f.run_node("big", node("custom.big", big), json!({})).await);
    assert!(error.contains("more than the 65536"), "{error}");
    let plugin_events = f.events("?type=custom").await.len()
        + f.events("?type=ticket").await.len()
        + f.events("?type=acme").await.len();
    assert_eq!(plugin_events, 0);
    // An admin can grant a version more; the host's namespaces stay refused at upload.
    let manifest = json!({"name": "events", "version": "0.2.0", "kind": "node",
                          "capabilities": {"events": {"types": ["ticket"]}}});
    let response = f
        .server
        .upload_plugin(&manifest, plugin_wasm("events"), false)
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = json_of(response).await;
    assert!(
        body.to_string().contains("capabilities.events.types"),
        "{body}"
    );
}

#[tokio::test]
async fn workflow_start_starts_the_workflow_as_the_plugin_within_its_grant() {
    let f = Fixture::start(|_| {}).await;
    f.save(
        "target",
        json!({"nodes": [{"id": "out", "type": "core/output",
                          "config": {"value": "{{ input.n }}"}}]}),
    )
    .await;
    let start = |workflow: &str| {
        json!({"id": "kick", "type": "workflow/start",
               "config": {"workflow": workflow, "input": {"n": "{{ input.n }}"}}})
    };
    let execution = f.run_node("kick", start("target"), json!({"n": 7})).await;
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let output = &last(&execution, "kick")["output"];
    assert_eq!(output["new"], true);
    let started = output["execution_id"].as_str().unwrap();
    let kick_id = execution["id"].as_str().unwrap();

    let done = f.finished("target", 1).await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["id"], started);
    assert_eq!(done[0]["output"], 7);
    assert_eq!(
        done[0]["idempotency_key"],
        format!("plugin:workflow:{kick_id}/kick")
    );
    let events = f.events(&format!("?subject={started}")).await;
    let start_event = events
        .iter()
        .find(|e| e["type"] == "workflow.execution.started")
        .unwrap();
    assert_eq!(start_event["actor"], "plugin:workflow");

    // Unknown workflow with every workflow granted: not found.
    let missing = f
        .run_node("missing", start("nowhere"), json!({"n": 1}))
        .await;
    let error = error_of(&missing);
    assert!(error.contains("no workflow \"nowhere\""), "{error}");
    assert_eq!(
        last(&missing, "kick")["error_kind"],
        "not_found",
        "{missing:#}"
    );
    // Granted fewer: the others are denied, existing or not.
    let grant = json!({"workflows": {"workflows": ["other"]}});
    let response = admin(
        &f.server,
        Method::PUT,
        "/api/admin/plugins/workflow/versions/0.1.0/grants",
        Some(grant),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    for (slug, workflow) in [("narrow", "target"), ("narrow-missing", "nowhere")] {
        let denied = f.run_node(slug, start(workflow), json!({"n": 1})).await;
        let error = error_of(&denied);
        assert!(error.contains("is not granted"), "{error}");
    }
    assert_eq!(f.finished("target", 1).await.len(), 1);
}

#[tokio::test]
async fn tickets_are_created_and_moved_with_their_own_events() {
    let f = Fixture::start(|_| {}).await;
    f.save(
        "support",
        json!({
            "nodes": [
                {"id": "open", "type": "tickets/create", "config": {
                    "subject": "{{ input.subject }}", "priority": "high", "tags": ["VIP"],
                    "requester": {"email": "{{ input.email }}", "name": "Bo"}}},
                {"id": "move", "type": "tickets/update", "config": {
                    "ticket": "{{ nodes.open.output.number }}", "status": "pending",
                    "assignee": "ana@example.com", "comment": "Escalated by a rule"}}
            ],
            "edges": [{"from": "open", "to": "move"}]
        }),
    )
    .await;
    let execution = f
        .run(
            "support",
            json!({"subject": "Printer on fire", "email": "bo@example.com"}),
        )
        .await;
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let created = &last(&execution, "open")["output"];
    assert_eq!(created["number"], 1);
    assert_eq!(created["status"], "open");
    assert_eq!(created["tags"], json!(["vip"]));
    let id = created["id"].as_str().unwrap();
    let moved = &last(&execution, "move")["output"];
    assert_eq!(moved["status"], "pending");
    assert_eq!(moved["assignee"]["name"], "Ana");
    assert_eq!(moved["comment"]["public"], false);

    // The REST API agrees; the history names the plugin.
    let (status, ticket) = f
        .send(Method::GET, &format!("/api/tickets/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{ticket}");
    assert_eq!(ticket["status"], "pending");
    assert_eq!(ticket["priority"], "high");
    assert_eq!(ticket["requester"]["email"], "bo@example.com");
    assert_eq!(ticket["assignee"]["email"], "ana@example.com");

    let events = f.events(&format!("?subject={id}")).await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    for kind in [
        "ticket.created",
        "ticket.status_changed",
        "ticket.commented",
    ] {
        assert!(kinds.contains(&kind), "{kinds:?}");
    }
    assert!(
        events.iter().all(|e| e["actor"] == "plugin:tickets"),
        "{events:#?}"
    );
    let moved_event = events
        .iter()
        .find(|e| e["type"] == "ticket.status_changed")
        .unwrap();
    assert_eq!(moved_event["payload"]["from"], "open");
    assert_eq!(moved_event["payload"]["to"], "pending");

    // A move the tickets' trigger refuses fails the node with its sentence.
    let close = json!({"id": "close", "type": "tickets/update",
                       "config": {"ticket": id, "status": "closed"}});
    let error = error_of(&f.run_node("close", close, json!({})).await);
    assert!(
        error.contains("cannot go from pending to closed"),
        "{error}"
    );
    // A config the node can't take names the field.
    let bad = json!({"id": "bad", "type": "tickets/create",
                     "config": {"subject": "x", "requester": {"email": "nobody"}}});
    let error = error_of(&f.run_node("bad", bad, json!({})).await);
    assert!(error.contains("config.requester.email"), "{error}");
}

/// With a node output cap smaller than any of these nodes' outputs, every attempt's
/// output is refused after the plugin returned, and `retry_on: ["invalid"]` makes the
/// engine run the same node run again, with the same idempotency key, as after a host
/// died mid-node: the side effect happens on the first attempt only.
#[tokio::test]
async fn a_node_run_that_runs_again_starts_emits_and_creates_once() {
    let f = Fixture::start(|config| config.workflow_max_output_bytes = 16).await;
    f.save(
        "target",
        json!({"nodes": [{"id": "out", "type": "core/output", "config": {"value": 1}}]}),
    )
    .await;
    let retry = json!({"max_attempts": 3, "initial_interval": "10ms", "jitter": 0,
                       "retry_on": ["invalid"]});
    let node = |id: &str, kind: &str, config: Value| json!({"id": id, "type": kind, "config": config, "retry": retry});
    // One workflow each: the first failed node would end a shared execution.
    for (id, kind, config) in [
        ("kick", "workflow/start", json!({"workflow": "target"})),
        (
            "emit",
            "events/emit",
            json!({"type": "custom.rerun", "subject": "s"}),
        ),
        (
            "open",
            "tickets/create",
            json!({"subject": "Once", "requester": "bo@example.com"}),
        ),
    ] {
        let execution = f.run_node(id, node(id, kind, config), json!({})).await;
        assert_eq!(execution["status"], "failed", "{execution:#}");
        let attempts = runs(&execution, id);
        assert_eq!(attempts.len(), 3, "{id}: {execution:#}");
        for attempt in attempts {
            let error = attempt["error"].as_str().unwrap_or_default();
            assert!(error.contains("more than the 16"), "{id}: {attempt:#}");
        }
    }
    assert_eq!(f.finished("target", 1).await.len(), 1);
    let (count,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM executions e \
         JOIN workflows w ON w.id = e.workflow_id WHERE w.slug = 'target'",
    )
    .fetch_one(&f.pool)
    .await
    .unwrap();
    assert_eq!(count, 1);
    assert_eq!(f.events("?type=custom.rerun").await.len(), 1);
    let tickets: i64 = sqlx::query_scalar("SELECT count(*) FROM data.tickets")
        .fetch_one(&f.pool)
        .await
        .unwrap();
    assert_eq!(tickets, 1);
    assert_eq!(f.events("?type=ticket.created").await.len(), 1);
}

/// A workflow whose event trigger listens to the type its own node emits, and a rule
/// whose action emits the event it listens to, each run once per outside event: their
/// own runs' events (`execution_id` names the emitting execution) don't set them off.
#[tokio::test]
async fn a_workflow_or_rule_that_emits_what_it_listens_to_does_not_loop() {
    let f = Fixture::start(|_| {}).await;
    f.save(
        "echo",
        json!({
            "triggers": [{"type": "event", "event": "custom.ping"}],
            "nodes": [{"id": "emit", "type": "events/emit",
                       "config": {"type": "custom.ping", "payload": {"from": "echo"}}}]
        }),
    )
    .await;
    let (status, rule) = f
        .send(
            Method::POST,
            "/api/rules",
            Some(
                json!({"name": "echo rule", "trigger": {"event": "custom.ping"},
                        "actions": [{"type": "emit_event", "event": "custom.ping",
                                     "payload": {"from": "rule"}}]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rule}");
    let rule = rule["id"].as_str().unwrap().to_string();
    f.run_node(
        "ping",
        json!({"id": "emit", "type": "events/emit", "config": {"type": "custom.ping"}}),
        json!({}),
    )
    .await;
    // The outside ping starts `echo` and the rule. Neither is set off by its own ping,
    // but each by the other's: a ping-pong, which stops after MAX_CHAIN (8) steps.
    f.finished("echo", 1).await;
    let count = || async { f.events("?type=custom.ping&limit=1000").await.len() };
    // Both answer the outside ping, so there are at least 3; then wait until no new one
    // came for 3 s. On a loaded machine a step took 10 s to follow its event (CI): the
    // bounds below are upper ones, so a wait cut short can't pass a loop off as done.
    let (mut seen, mut unchanged) = (0, 0);
    for _ in 0..240 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = count().await;
        unchanged = if now == seen && now >= 3 {
            unchanged + 1
        } else {
            0
        };
        if unchanged >= 6 {
            break;
        }
        seen = now;
    }
    let pings = f.events("?type=custom.ping&limit=1000").await;
    // 1 outside + 2 chains (echo→rule→echo…, rule→echo→rule…) of at most 8 steps each.
    assert!(pings.len() <= 17, "a loop: {} pings", pings.len());
    assert!(pings.len() >= 3, "{pings:?}");
    assert!(
        pings.iter().skip(1).all(|p| p["execution_id"].is_string()),
        "{pings:?}"
    );
    let runs = f
        .send(Method::GET, &format!("/api/rules/{rule}"), None)
        .await
        .1;
    assert!(runs["ran"].as_i64().unwrap() <= 9, "{runs}");
}
