//! Workflow durability (issue 12): the real binary killed with SIGKILL mid-run and
//! restarted, two hosts sharing one database, and parallel fan-out timing.
//!
//! The nodes are `sideeffect/effect` (plugins/testing/sideeffect): each attempt asks an
//! attempt counter in this test process which attempt it is (outside the host and its
//! database, so attempts cut short by a kill are counted too: the database capability
//! commits a call's statements only when the call returns), sleeps, then makes its side
//! effect with `INSERT ... ON CONFLICT DO NOTHING` keyed by its idempotency key
//! (`<execution id>/<node id>`) and records the attempt. Everything is checked in the
//! host's database and the counter.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agenthost_tests::{HostProcess, StatusCode, TestServer, fresh_database, plugin_wasm};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::plugins::json_of;

const ADMIN: &str = "aha_durability-admin";
const EXECUTIONS: usize = 100;
const DIAMOND_NODES: [&str; 5] = ["a", "b", "c", "d", "e"];

const MIGRATIONS: [&str; 2] = [
    "CREATE TABLE effects (workspace_id uuid NOT NULL, key text NOT NULL, \
     made_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (workspace_id, key))",
    "CREATE TABLE attempts (id bigserial PRIMARY KEY, workspace_id uuid NOT NULL, \
     key text NOT NULL, attempt integer, applied boolean NOT NULL, \
     at timestamptz NOT NULL DEFAULT now())",
];

/// The sideeffect plugin's manifest; with a counter, HTTP to it on loopback.
fn sideeffect_manifest(counter_origin: Option<&str>) -> Value {
    let mut capabilities = json!({ "database": {} });
    if let Some(origin) = counter_origin {
        capabilities["http"] = json!({ "origins": [origin], "private_networks": ["127.0.0.0/8"] });
    }
    json!({
        "name": "sideeffect", "version": "1.0.0", "kind": "node",
        "capabilities": capabilities, "migrations": MIGRATIONS,
    })
}

/// Counts the attempts of each idempotency key, as the plugin reports them.
#[derive(Clone, Default)]
struct Counter {
    hits: Arc<Mutex<HashMap<String, i64>>>,
    origin: String,
}

impl Counter {
    async fn start() -> Counter {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let counter = Counter {
            hits: Arc::default(),
            origin,
        };
        let hits = counter.hits.clone();
        let app = axum::Router::new().route(
            "/attempt",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let hits = hits.clone();
                async move {
                    let key = body["key"].as_str().unwrap_or_default().to_string();
                    let mut hits = hits.lock().unwrap();
                    let count = hits.entry(key).or_insert(0);
                    *count += 1;
                    axum::Json(json!({ "attempt": *count }))
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        counter
    }

    fn url(&self) -> String {
        format!("{}/attempt", self.origin)
    }

    fn hits(&self) -> HashMap<String, i64> {
        self.hits.lock().unwrap().clone()
    }
}

/// REST calls to one host (process or in-process server).
pub(super) struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    pub(super) fn new(base: &str) -> Api {
        Api {
            base: base.to_string(),
            client: reqwest::Client::new(),
        }
    }

    pub(super) async fn send(&self, method: Method, path: &str, token: &str, body: Value) -> Value {
        let response = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// A workspace; returns its owner key.
    pub(super) async fn workspace(&self, slug: &str) -> String {
        let body = self
            .send(
                Method::POST,
                "/api/admin/workspaces",
                ADMIN,
                json!({ "slug": slug, "name": slug }),
            )
            .await;
        body["owner_key"]["secret"].as_str().unwrap().to_string()
    }

    /// Upload and activate a plugin, then grant what its manifest asks.
    pub(super) async fn install(&self, manifest: &Value, component: Vec<u8>) {
        let form = reqwest::multipart::Form::new()
            .text("manifest", manifest.to_string())
            .part(
                "component",
                reqwest::multipart::Part::bytes(component).file_name("plugin.wasm"),
            );
        let response = self
            .client
            .post(format!("{}/api/admin/plugins?activate=true", self.base))
            .bearer_auth(ADMIN)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "{}",
            response.text().await.unwrap()
        );
        if let Some(capabilities) = manifest.get("capabilities") {
            let (name, version) = (&manifest["name"], &manifest["version"]);
            let path = format!(
                "/api/admin/plugins/{}/versions/{}/grants",
                name.as_str().unwrap(),
                version.as_str().unwrap()
            );
            self.send(Method::PUT, &path, ADMIN, capabilities.clone())
                .await;
        }
    }

    pub(super) async fn save(&self, key: &str, slug: &str, definition: Value) {
        self.send(
            Method::POST,
            "/api/workflows",
            key,
            json!({ "slug": slug, "name": slug, "definition": definition }),
        )
        .await;
    }

    /// Start an execution (no waiting); returns its id.
    pub(super) async fn start(&self, key: &str, slug: &str, input: Value) -> String {
        let body = self
            .send(
                Method::POST,
                &format!("/api/workflows/{slug}/executions"),
                key,
                json!({ "input": input }),
            )
            .await;
        body["id"].as_str().unwrap().to_string()
    }
}

/// a -> (b, c) -> d -> e, every node a sideeffect that sleeps `sleep_ms` and reports its
/// attempts to the counter.
fn diamond(sleep_ms: u64, counter: &Counter) -> Value {
    let node = |id: &str| {
        json!({"id": id, "type": "sideeffect/effect",
               "config": {"sleep_ms": sleep_ms, "count_url": counter.url()}})
    };
    json!({
        "nodes": DIAMOND_NODES.map(node),
        "edges": [
            {"from": "a", "to": "b"}, {"from": "a", "to": "c"},
            {"from": "b", "to": "d"}, {"from": "c", "to": "d"},
            {"from": "d", "to": "e"}
        ]
    })
}

fn host_env<'a>(database_url: &'a str, heartbeat: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("DATABASE_URL", database_url),
        ("AGENTHOST_ADMIN_TOKEN", ADMIN),
        ("AGENTHOST_WORKFLOW_HEARTBEAT", heartbeat),
        ("AGENTHOST_RATE_LIMIT_PER_MINUTE", "0"),
        ("AGENTHOST_DB_MAX_CONNECTIONS", "12"),
        ("AGENTHOST_PLUGIN_INSTANCES", "64"),
        (
            "AGENTHOST_BUNDLED_PLUGINS_DIR",
            "/nonexistent/agenthost-no-bundled-plugins",
        ),
    ]
}

pub(super) async fn start_host(data: &Path, database_url: &str, heartbeat: &str) -> HostProcess {
    HostProcess::start(data, &host_env(database_url, heartbeat)).await
}

/// (succeeded, running) node runs, the latter only those claimed by a worker not in
/// `not_by`.
async fn progress(db: &PgPool, not_by: &BTreeSet<String>) -> (i64, i64) {
    let not_by: Vec<String> = not_by.iter().cloned().collect();
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'succeeded'), \
                count(*) FILTER (WHERE status = 'running' AND NOT (worker = ANY($1))) \
         FROM node_runs",
    )
    .bind(&not_by)
    .fetch_one(db)
    .await
    .unwrap()
}

/// Wait until at least `succeeded` node runs succeeded and `running` are running on a
/// worker not in `not_by`.
async fn wait_for_progress(
    db: &PgPool,
    succeeded: i64,
    running: i64,
    not_by: &BTreeSet<String>,
) -> (i64, i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = progress(db, not_by).await;
        if now.0 >= succeeded && now.1 >= running {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "no progress to {succeeded} succeeded / {running} running: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn workers(db: &PgPool) -> BTreeSet<String> {
    sqlx::query_scalar("SELECT DISTINCT worker FROM node_runs WHERE worker IS NOT NULL")
        .fetch_all(db)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// Keys of the node runs in state `running` now.
async fn running_keys(db: &PgPool) -> BTreeSet<String> {
    sqlx::query_scalar(
        "SELECT execution_id::text || '/' || node_id FROM node_runs WHERE status = 'running'",
    )
    .fetch_all(db)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

async fn wait_until_finished(db: &PgPool, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let running: i64 =
            sqlx::query_scalar("SELECT count(*) FROM executions WHERE status = 'running'")
                .fetch_one(db)
                .await
                .unwrap();
        if running == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{running} executions still running after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(Debug, sqlx::FromRow)]
struct RunRow {
    key: String,
    status: String,
    attempt: i32,
    output: Option<Value>,
}

/// What every test of this file checks at the end: every execution succeeded, each
/// (execution, node) has exactly one node run and it succeeded, its side effect exists
/// exactly once and was made by exactly one attempt, and no attempt started after the
/// one whose result was committed (so a completed node never ran again). Returns the
/// counter's attempts per key.
async fn assert_every_node_once(db: &PgPool, counter: &Counter, executions: &[String]) {
    let statuses: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM executions GROUP BY status")
            .fetch_all(db)
            .await
            .unwrap();
    assert_eq!(
        statuses,
        [("succeeded".to_string(), executions.len() as i64)],
        "every execution succeeded"
    );
    let expected: BTreeSet<String> = executions
        .iter()
        .flat_map(|id| DIAMOND_NODES.map(|node| format!("{id}/{node}")))
        .collect();

    let runs: Vec<RunRow> = sqlx::query_as(
        "SELECT execution_id::text || '/' || node_id AS key, status, attempt, output \
         FROM node_runs ORDER BY key",
    )
    .fetch_all(db)
    .await
    .unwrap();
    let mut by_key: BTreeMap<&str, Vec<&RunRow>> = BTreeMap::new();
    for run in &runs {
        by_key.entry(&run.key).or_default().push(run);
    }
    assert_eq!(
        by_key
            .keys()
            .map(|k| k.to_string())
            .collect::<BTreeSet<_>>(),
        expected,
        "a node run for every (execution, node)"
    );
    for (key, runs) in &by_key {
        assert!(
            matches!(runs.as_slice(), [run] if run.status == "succeeded" && run.attempt == 1),
            "{key}: exactly one node run, succeeded on engine attempt 1: {runs:?}"
        );
    }

    let effects: Vec<(String, i64)> = sqlx::query_as(
        "SELECT key, count(*) FROM plugin_sideeffect.effects GROUP BY key ORDER BY key",
    )
    .fetch_all(db)
    .await
    .unwrap();
    assert_eq!(effects.len(), expected.len(), "a side effect per node");
    for (key, count) in &effects {
        assert!(expected.contains(key), "an effect for an unknown key {key}");
        assert_eq!(*count, 1, "{key}: the side effect was made once");
    }
    let applied: Vec<(String, i64)> = sqlx::query_as(
        "SELECT key, count(*) FROM plugin_sideeffect.attempts WHERE applied GROUP BY key",
    )
    .fetch_all(db)
    .await
    .unwrap();
    assert_eq!(applied.len(), expected.len());
    assert!(
        applied.iter().all(|(_, n)| *n == 1),
        "exactly one attempt per node made its side effect"
    );

    // The attempt whose result the engine committed is the last one that started.
    let hits = counter.hits();
    for run in &runs {
        let committed = run.output.as_ref().unwrap()["attempt"].as_i64();
        assert_eq!(
            committed,
            hits.get(&run.key).copied(),
            "{}: no attempt started after the one whose result was committed",
            run.key
        );
    }
}

/// 100 executions of a 5-node diamond; the host is killed with SIGKILL twice while
/// nodes are running and started again each time. Every execution succeeds, every side
/// effect happens exactly once, completed nodes never run again, and the nodes that
/// were running at a kill ran again (at least one attempt counted twice).
#[tokio::test]
async fn a_host_killed_twice_mid_run_finishes_every_execution_with_each_side_effect_once() {
    let data = tempfile::tempdir().unwrap();
    let database_url = fresh_database().await;
    let counter = Counter::start().await;
    let host = start_host(data.path(), &database_url, "200ms").await;
    let db = PgPool::connect(&database_url).await.unwrap();
    let api = Api::new(&host.base);
    let key = api.workspace("durable").await;
    api.install(
        &sideeffect_manifest(Some(&counter.origin)),
        plugin_wasm("sideeffect"),
    )
    .await;
    api.save(&key, "diamond", diamond(80, &counter)).await;
    let mut executions = Vec::new();
    for i in 0..EXECUTIONS {
        executions.push(api.start(&key, "diamond", json!({ "i": i })).await);
    }

    // Kill 1: some nodes done, several running.
    let none = BTreeSet::new();
    let (done, _) = wait_for_progress(&db, 40, 4, &none).await;
    host.crash().await;
    let mut cut_short = running_keys(&db).await;
    assert!(!cut_short.is_empty());
    let old_workers = workers(&db).await;

    // Kill 2: the restarted host made progress and has nodes of its own running.
    let host = start_host(data.path(), &database_url, "200ms").await;
    wait_for_progress(&db, done + 80, 4, &old_workers).await;
    host.crash().await;
    let running = running_keys(&db).await;
    cut_short.extend(running);

    let host = start_host(data.path(), &database_url, "200ms").await;
    wait_until_finished(&db, Duration::from_secs(90)).await;
    host.stop().await;

    assert_every_node_once(&db, &counter, &executions).await;
    let hits = counter.hits();
    let rerun: Vec<(&String, &i64)> = hits.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        !rerun.is_empty(),
        "some node ran again after a kill (running at the kills: {})",
        cut_short.len()
    );
    // Only nodes that were running at a kill ran more than once.
    for (key, count) in &rerun {
        assert!(
            cut_short.contains(*key),
            "{key} ran {count} times but was not running at a kill"
        );
    }
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM plugin_sideeffect.attempts")
        .fetch_one(&db)
        .await
        .unwrap();
    eprintln!(
        "crash test: {} node runs cut short by the kills, {} nodes ran again, {} attempts \
         started, {attempts} reached their commit",
        cut_short.len(),
        rerun.len(),
        hits.values().sum::<i64>()
    );
}

/// Two hosts (two processes of the binary) on one database share the queue: every node
/// of 100 executions runs exactly once, and both hosts run nodes.
#[tokio::test]
async fn two_hosts_on_one_database_run_every_node_once_and_share_the_work() {
    let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let database_url = fresh_database().await;
    let counter = Counter::start().await;
    let host_a = start_host(data_a.path(), &database_url, "1s").await;
    let api_a = Api::new(&host_a.base);
    let key = api_a.workspace("shared").await;
    api_a
        .install(
            &sideeffect_manifest(Some(&counter.origin)),
            plugin_wasm("sideeffect"),
        )
        .await;
    api_a.save(&key, "diamond", diamond(20, &counter)).await;
    let host_b = start_host(data_b.path(), &database_url, "1s").await;
    let api_b = Api::new(&host_b.base);
    let db = PgPool::connect(&database_url).await.unwrap();

    let mut executions = Vec::new();
    for i in 0..EXECUTIONS {
        let api = if i % 2 == 0 { &api_a } else { &api_b };
        executions.push(api.start(&key, "diamond", json!({ "i": i })).await);
    }
    wait_until_finished(&db, Duration::from_secs(60)).await;
    host_a.stop().await;
    host_b.stop().await;

    assert_every_node_once(&db, &counter, &executions).await;
    assert!(
        counter.hits().values().all(|n| *n == 1),
        "every node ran exactly once"
    );
    let per_worker: Vec<(String, i64)> =
        sqlx::query_as("SELECT worker, count(*) FROM node_runs GROUP BY worker ORDER BY worker")
            .fetch_all(&db)
            .await
            .unwrap();
    assert!(
        per_worker.len() >= 2,
        "both hosts ran nodes: {per_worker:?}"
    );
}

/// Two 1 s nodes after a root run in parallel: the execution takes under 1.9 s.
#[tokio::test]
async fn two_one_second_nodes_after_a_root_run_in_parallel() {
    let server = TestServer::start().await;
    let (workspace, _) = server.create_workspace("parallel").await;
    let (_, admin) = server.create_key(&workspace, "admin").await;
    let core = json!({"name": "core", "version": "0.1.0", "kind": "node"});
    let response = server.upload_plugin(&core, plugin_wasm("core"), true).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let manifest = sideeffect_manifest(None);
    let response = server
        .upload_plugin(&manifest, plugin_wasm("sideeffect"), true)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = server
        .request(
            Method::PUT,
            "/api/admin/plugins/sideeffect/versions/1.0.0/grants",
            agenthost_tests::ADMIN_TOKEN,
        )
        .json(&manifest["capabilities"])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let slow = json!({"type": "sideeffect/effect", "config": {"sleep_ms": 1000}});
    let mut left = slow.clone();
    left["id"] = json!("left");
    let mut right = slow;
    right["id"] = json!("right");
    let definition = json!({
        "nodes": [
            {"id": "root", "type": "core/transform", "config": {"value": 1}},
            left, right
        ],
        "edges": [{"from": "root", "to": "left"}, {"from": "root", "to": "right"}]
    });
    let response = server
        .request(Method::POST, "/api/workflows", &admin)
        .json(&json!({"slug": "parallel", "name": "parallel", "definition": definition}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);

    let started = Instant::now();
    let response = server
        .request(
            Method::POST,
            "/api/workflows/parallel/executions?wait=10s",
            &admin,
        )
        .json(&json!({"input": {}}))
        .send()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(response.status(), StatusCode::OK);
    let execution = json_of(response).await;
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert!(
        elapsed < Duration::from_millis(1900),
        "two 1 s nodes in parallel took {elapsed:?} end to end"
    );
    // Both really slept: neither finished in less than a second.
    let db = PgPool::connect(&server.database_url).await.unwrap();
    let slept: Vec<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM finished_at - started_at)::float8 FROM node_runs \
         WHERE node_id IN ('left', 'right')",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(slept.len(), 2);
    assert!(slept.iter().all(|s| *s >= 1.0), "{slept:?}");
    server.stop().await;
}

/// A host that was only paused (SIGSTOP for longer than five beats: a VM pause, a long
/// GC-like stall, a network partition) comes back while the other host re-runs its
/// node. The paused host's late result must not be committed over the run the other
/// host now owns: the node ends `succeeded` once, with one `node_completed` (found
/// failing before completions were fenced by owner: the late result was committed and
/// the re-run's commit then marked the succeeded node `cancelled`).
#[tokio::test]
async fn a_paused_host_that_resumes_does_not_commit_a_run_another_host_took_over() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let database_url = fresh_database().await;
    let counter = Counter::start().await;
    let host_a = start_host(data_a.path(), &database_url, "200ms").await;
    let api_a = Api::new(&host_a.base);
    let key = api_a.workspace("paused").await;
    api_a
        .install(
            &sideeffect_manifest(Some(&counter.origin)),
            plugin_wasm("sideeffect"),
        )
        .await;
    let definition = json!({"nodes": [{"id": "a", "type": "sideeffect/effect",
        "config": {"sleep_ms": 1500, "count_url": counter.url()}}], "edges": []});
    api_a.save(&key, "slow", definition).await;
    let db = PgPool::connect(&database_url).await.unwrap();
    let execution = api_a.start(&key, "slow", json!({})).await;
    let key_of_a = format!("{execution}/a");
    // Host A is running the node; pause it, then start host B.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !counter.hits().contains_key(&key_of_a) {
        assert!(Instant::now() < deadline, "host A never ran the node");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid_a = Pid::from_raw(host_a.child.id().unwrap() as i32);
    kill(pid_a, Signal::SIGSTOP).unwrap();
    let host_b = start_host(data_b.path(), &database_url, "200ms").await;
    // B puts the run back after five missed beats and runs it again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter.hits().get(&key_of_a) != Some(&2) {
        assert!(Instant::now() < deadline, "host B never re-ran the node");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A resumes while B's attempt is still sleeping.
    kill(pid_a, Signal::SIGCONT).unwrap();
    wait_until_finished(&db, Duration::from_secs(20)).await;
    // Let B's attempt end too.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    host_a.stop().await;
    host_b.stop().await;

    let runs: Vec<(String, i32)> =
        sqlx::query_as("SELECT status, attempt FROM node_runs WHERE node_id = 'a'")
            .fetch_all(&db)
            .await
            .unwrap();
    let completed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM execution_events WHERE kind = 'node_completed' AND node_id = 'a'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    let effects: i64 = sqlx::query_scalar("SELECT count(*) FROM plugin_sideeffect.effects")
        .fetch_one(&db)
        .await
        .unwrap();
    eprintln!(
        "paused host: node runs {runs:?}, {completed} node_completed events, attempts {:?}",
        counter.hits().get(&key_of_a)
    );
    assert_eq!(effects, 1, "the side effect was made once");
    assert_eq!(
        runs,
        [("succeeded".to_string(), 1)],
        "the node ended succeeded, once"
    );
    assert_eq!(completed, 1, "one node_completed event");
}
