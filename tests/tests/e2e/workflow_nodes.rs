//! The bundled node plugins `http`, `email`, `database` and `llm` in real workflows:
//! installed from their shipped manifests (with the instance's origins, senders,
//! tables and models added, as an admin does), against a loopback HTTP site, a
//! loopback SMTP server, the real database and the fake OpenAI provider.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agenthost_tests::fake_openai::{FakeOpenAi, Reply};
use agenthost_tests::smtp::SmtpSink;
use agenthost_tests::{StatusCode, TestServer, plugin_wasm};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::plugins::{admin, json_of};

/// A request the site got: method, path with query, headers (lower-case names), body.
#[derive(Debug, Clone)]
pub(super) struct Hit {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Hit {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A loopback HTTP site: `/deals/{id}` answers JSON, `/hooks` takes POSTs (201),
/// `/flaky` answers 503 once then 200, `/missing` 404, `/slow` after 3 s, `/nul-text`
/// and `/nul-json` a body with a NUL character.
#[derive(Clone, Default)]
pub(super) struct Site {
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Site {
    pub(super) async fn start() -> (Site, String) {
        let site = Site::default();
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(site.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (site, format!("http://127.0.0.1:{port}"))
    }

    pub(super) fn hits(&self, path: &str) -> Vec<Hit> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|hit| hit.path.split('?').next() == Some(path))
            .cloned()
            .collect()
    }
}

async fn answer(State(site): State<Site>, request: Request) -> Response {
    let method = request.method().to_string();
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let headers = request
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = String::from_utf8_lossy(&body).into_owned();
    let earlier = {
        let mut hits = site.hits.lock().unwrap();
        let bare = path.split('?').next().unwrap_or("").to_string();
        let earlier = hits
            .iter()
            .filter(|h| h.path.split('?').next() == Some(bare.as_str()))
            .count();
        hits.push(Hit {
            method,
            path: path.clone(),
            headers,
            body,
        });
        earlier
    };
    let bare = path.split('?').next().unwrap_or("");
    match bare {
        "/hooks" => (
            StatusCode::CREATED,
            axum::Json(json!({"received": true, "n": earlier + 1})),
        )
            .into_response(),
        "/flaky" if earlier == 0 => (StatusCode::SERVICE_UNAVAILABLE, "warming up").into_response(),
        "/flaky" => axum::Json(json!({"ok": true})).into_response(),
        "/missing" => (StatusCode::NOT_FOUND, "no such thing").into_response(),
        // Text and JSON holding a NUL, which PostgreSQL can store in neither.
        "/nul-text" => ([("content-type", "text/plain")], "before\0after").into_response(),
        "/nul-json" => (
            [("content-type", "application/json")],
            r#"{"x": "before\u0000after"}"#,
        )
            .into_response(),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            "late".into_response()
        }
        _ if bare.starts_with("/deals/") => {
            let id = bare.trim_start_matches("/deals/");
            let amount = if id == "big" { 1250.5 } else { 40.0 };
            axum::Json(json!({"id": id, "customer": "Acme", "amount": amount, "stage": "won"}))
                .into_response()
        }
        _ => (StatusCode::NOT_FOUND, "unknown path").into_response(),
    }
}

/// A server with a workspace (admin and member keys), the `core` node plugin and a
/// pool on its database.
pub(super) struct Nodes {
    pub(super) server: TestServer,
    pub(super) pool: PgPool,
    workspace: String,
    pub(super) admin: String,
    pub(super) member: String,
}

/// The shipped manifest of a bundled node plugin, with `capabilities` added to what it
/// requests: how an admin makes origins, senders, tables or models grantable.
fn manifest_with(name: &str, version: &str, capabilities: &Value) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/nodes")
        .join(name)
        .join("manifest.json");
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    manifest["version"] = json!(version);
    if manifest.get("capabilities").is_none() {
        manifest["capabilities"] = json!({});
    }
    for (key, value) in capabilities.as_object().unwrap() {
        match (manifest["capabilities"].get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(extra)) => {
                for (k, v) in extra {
                    match (existing.get_mut(k), v) {
                        (Some(Value::Object(inner)), Value::Object(more)) => {
                            inner.extend(more.clone());
                        }
                        _ => {
                            existing.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            _ => manifest["capabilities"][key] = value.clone(),
        }
    }
    manifest
}

impl Nodes {
    pub(super) async fn start(change: impl FnOnce(&mut agenthost::Config)) -> Nodes {
        let server = TestServer::start_with(change).await;
        let pool = PgPool::connect(&server.database_url).await.unwrap();
        let (workspace, _) = server.create_workspace("nodes").await;
        let (_, admin) = server.create_key(&workspace, "admin").await;
        let (_, member) = server.create_key(&workspace, "member").await;
        let manifest = json!({"name": "core", "version": "0.1.0", "kind": "node"});
        let response = server
            .upload_plugin(&manifest, plugin_wasm("core"), true)
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        Nodes {
            server,
            pool,
            workspace,
            admin,
            member,
        }
    }

    /// Install a node plugin from its shipped manifest plus `extra`, and grant it the
    /// whole request (or nothing, with `grant: false`).
    pub(super) async fn install(&self, name: &str, extra: Value, grant: bool) {
        let manifest = manifest_with(name, "0.1.0", &extra);
        let response = self
            .server
            .upload_plugin(&manifest, plugin_wasm(name), true)
            .await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "{}",
            response.text().await.unwrap()
        );
        if grant {
            let response = admin(
                &self.server,
                Method::PUT,
                &format!("/api/admin/plugins/{name}/versions/0.1.0/grants"),
                Some(manifest["capabilities"].clone()),
            )
            .await;
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "{}",
                response.text().await.unwrap()
            );
        }
    }

    pub(super) async fn save(&self, slug: &str, definition: Value) {
        let response = self
            .server
            .request(Method::POST, "/api/workflows", &self.admin)
            .json(&json!({"slug": slug, "name": slug, "definition": definition}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "{}",
            response.text().await.unwrap()
        );
    }

    /// Run a workflow, wait for it, and return the execution with its node runs.
    pub(super) async fn run(&self, slug: &str, input: Value) -> Value {
        let response = self
            .server
            .request(
                Method::POST,
                &format!("/api/workflows/{slug}/executions?wait=30s"),
                &self.member,
            )
            .json(&json!({ "input": input }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let id = json_of(response).await["id"].as_str().unwrap().to_string();
        json_of(
            self.server
                .request(Method::GET, &format!("/api/executions/{id}"), &self.member)
                .send()
                .await
                .unwrap(),
        )
        .await
    }
}

/// The node runs (attempts) of one node.
pub(super) fn runs<'a>(execution: &'a Value, id: &str) -> Vec<&'a Value> {
    execution["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["node_id"] == id)
        .collect()
}

pub(super) fn last<'a>(execution: &'a Value, id: &str) -> &'a Value {
    runs(execution, id)
        .pop()
        .unwrap_or_else(|| panic!("no run of {id}: {execution:#}"))
}

pub(super) fn http_grant(site: &str) -> Value {
    json!({"http": {"origins": [site], "private_networks": ["127.0.0.1/32"]}})
}

#[tokio::test]
async fn a_workflow_fetches_json_branches_stores_a_row_posts_and_mails_once() {
    let sink = SmtpSink::start().await;
    let smtp = sink.url();
    let (site, base) = Site::start().await;
    let nodes = Nodes::start(move |config| config.smtp_url = Some(smtp)).await;
    nodes.install("http", http_grant(&base), true).await;
    nodes
        .install(
            "email",
            json!({"email": {"senders": ["bot@acme.test"]}}),
            true,
        )
        .await;
    nodes
        .install(
            "database",
            json!({"database": {"tables": {"deals": "write"}}}),
            true,
        )
        .await;
    let definition = json!({
        "input_schema": {"type": "object", "required": ["deal"]},
        "nodes": [
            {"id": "fetch", "type": "http/request", "config": {
                "url": format!("{base}/deals/{{{{ input.deal }}}}"),
                "query": {"source": "workflow"},
                "headers": {"accept": "application/json"}, "timeout": "5s"}},
            {"id": "big", "type": "core/condition",
             "config": {"if": "{{ nodes.fetch.output.body.amount > 1000 }}"}},
            {"id": "store", "type": "database/query", "config": {
                "sql": "INSERT INTO deals (external_id, amount, stage, created_on) \
                        VALUES ($1, $2::numeric, $3, $4::date) RETURNING external_id, amount",
                "params": ["{{ input.deal }}-{{ execution.id }}",
                           {"numeric": "{{ nodes.fetch.output.body.amount }}"},
                           "{{ nodes.fetch.output.body.stage }}", {"date": "2025-03-01"}]}},
            {"id": "notify", "type": "http/request", "config": {
                "method": "POST", "url": format!("{base}/hooks"),
                "json": {"deal": "{{ input.deal }}", "amount": "{{ nodes.store.output.row.amount }}"}}},
            {"id": "mail", "type": "email/send", "config": {
                "from": "Deals Bot <bot@acme.test>", "to": "{{ input.notify }}",
                "subject": "Big deal: {{ nodes.fetch.output.body.customer }}",
                "text": "{{ nodes.fetch.output.body.customer }} closed {{ nodes.store.output.row.amount }} USD."}},
            {"id": "small", "type": "core/transform", "config": {"value": "too small to store"}},
            {"id": "out", "type": "core/output", "config": {"value": {
                "mail": "{{ nodes.mail.output }}", "hook": "{{ nodes.notify.output }}"}}}
        ],
        "edges": [
            {"from": "fetch", "to": "big"},
            {"from": "big", "to": "store", "branch": "true"},
            {"from": "big", "to": "small", "branch": "false"},
            {"from": "store", "to": "notify"}, {"from": "store", "to": "mail"},
            {"from": "notify", "to": "out"}, {"from": "mail", "to": "out"}
        ]
    });
    nodes.save("deals", definition).await;

    let execution = nodes
        .run(
            "deals",
            json!({"deal": "big", "notify": "ada@example.test"}),
        )
        .await;
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let id = execution["id"].as_str().unwrap();

    // http: the GET went out with the query, the JSON body came back parsed.
    let fetch = &last(&execution, "fetch")["output"];
    assert_eq!(fetch["status"], 200);
    assert_eq!(fetch["body"]["amount"], 1250.5);
    assert_eq!(fetch["headers"]["content-type"], "application/json");
    let gets = site.hits("/deals/big");
    assert_eq!(gets.len(), 1);
    assert_eq!(gets[0].path, "/deals/big?source=workflow");
    assert_eq!(gets[0].header("idempotency-key"), None);

    // database: one row in the workspace, its RETURNING row in the output.
    let store = &last(&execution, "store")["output"];
    assert_eq!(store["count"], 1);
    assert_eq!(store["row"]["amount"], 1250.5);
    let stored: Vec<(String, String, String)> =
        sqlx::query_as("SELECT workspace_id::text, external_id, amount::text FROM data.deals")
            .fetch_all(&nodes.pool)
            .await
            .unwrap();
    assert_eq!(
        stored,
        [(
            nodes.workspace.clone(),
            format!("big-{id}"),
            "1250.50".to_string()
        )]
    );
    // The write's once-per-run ledger holds the run's key and its output.
    let (recorded,): (Value,) =
        sqlx::query_as("SELECT output FROM plugin_database.runs WHERE idempotency_key = $1")
            .bind(format!("{id}/store"))
            .fetch_one(&nodes.pool)
            .await
            .unwrap();
    assert_eq!(&recorded, store);

    // http POST: JSON body and the node run's idempotency key.
    let posts = site.hits("/hooks");
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].method, "POST");
    assert_eq!(
        posts[0].header("idempotency-key"),
        Some(format!("{id}/notify").as_str())
    );
    assert_eq!(posts[0].header("content-type"), Some("application/json"));
    let posted: Value = serde_json::from_str(&posts[0].body).unwrap();
    assert_eq!(posted, json!({"deal": "big", "amount": 1250.5}));
    assert_eq!(execution["output"]["hook"]["status"], 201);
    assert_eq!(execution["output"]["hook"]["body"]["received"], true);

    // email: one message over SMTP, its id and recipients in the output, the send
    // recorded in the plugin's ledger under the run's key.
    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].rcpt_to, ["ada@example.test"]);
    assert_eq!(
        messages[0].header("Subject").as_deref(),
        Some("Big deal: Acme")
    );
    assert!(messages[0].data.contains("Acme closed 1250.5 USD."));
    let mail = &execution["output"]["mail"];
    assert_eq!(mail["recipients"], json!(["ada@example.test"]));
    assert_eq!(
        messages[0].header("Message-ID").as_deref(),
        mail["message_id"].as_str()
    );
    let (sent,): (Value,) =
        sqlx::query_as("SELECT output FROM plugin_email.sent WHERE idempotency_key = $1")
            .bind(format!("{id}/mail"))
            .fetch_one(&nodes.pool)
            .await
            .unwrap();
    assert_eq!(&sent, mail);

    // A small deal takes the other branch: nothing stored, posted or mailed.
    let execution = nodes
        .run(
            "deals",
            json!({"deal": "tiny", "notify": "ada@example.test"}),
        )
        .await;
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(last(&execution, "store")["status"], "skipped");
    assert_eq!(last(&execution, "small")["output"], "too small to store");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM data.deals")
        .fetch_one(&nodes.pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
    assert_eq!(site.hits("/hooks").len(), 1);
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn nodes_without_grants_fail_with_a_clear_denied_error() {
    let sink = SmtpSink::start().await;
    let smtp = sink.url();
    let fake = FakeOpenAi::start().await;
    let llm_url = fake.base_url.clone();
    let (site, base) = Site::start().await;
    let nodes = Nodes::start(move |config| {
        config.smtp_url = Some(smtp);
        config.llm_base_url = Some(llm_url);
    })
    .await;
    // Requested but not granted: http, the email sender, the llm model. The database
    // node gets its shipped grant (read-only business tables).
    nodes.install("http", http_grant(&base), false).await;
    nodes
        .install(
            "email",
            json!({"email": {"senders": ["bot@acme.test"]}}),
            false,
        )
        .await;
    nodes
        .install("llm", json!({"llm": {"models": ["fake-model"]}}), false)
        .await;
    nodes.install("database", json!({}), true).await;
    let definition = json!({
        "nodes": [
            {"id": "fetch", "type": "http/request", "on_error": "continue",
             "config": {"url": format!("{base}/deals/big")}},
            {"id": "mail", "type": "email/send", "on_error": "continue",
             "config": {"from": "bot@acme.test", "to": "ada@example.test", "subject": "x", "text": "y"}},
            {"id": "ask", "type": "llm/chat", "on_error": "continue",
             "config": {"model": "fake-model", "prompt": "hello"}},
            {"id": "write", "type": "database/execute", "on_error": "continue",
             "config": {"sql": "DELETE FROM deals"}},
            {"id": "read", "type": "database/query",
             "config": {"sql": "SELECT count(*)::int AS n FROM deals"}},
            {"id": "out", "type": "core/merge"}
        ],
        "edges": [
            {"from": "fetch", "to": "out"}, {"from": "mail", "to": "out"},
            {"from": "ask", "to": "out"}, {"from": "write", "to": "out"},
            {"from": "read", "to": "out"}
        ]
    });
    nodes.save("denied", definition).await;
    let execution = nodes.run("denied", json!({})).await;
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    for (node, needle) in [
        ("fetch", "http grant"),
        ("mail", "not granted"),
        ("ask", "grant"),
        ("write", "deals"),
    ] {
        let run = last(&execution, node);
        assert_eq!(run["status"], "failed", "{node}: {run:#}");
        assert_eq!(run["error_kind"], "denied", "{node}: {run:#}");
        let message = run["error"].as_str().unwrap();
        assert!(message.contains(needle), "{node}: {message}");
        // Downstream read the error as the node's output.
        assert_eq!(
            last(&execution, "out")["output"][node]["error"]["kind"],
            "denied",
            "{node}: {execution:#}"
        );
    }
    // Reading the workspace's own business data is granted out of the box.
    assert_eq!(last(&execution, "read")["output"]["row"], json!({"n": 0}));
    // Nothing left the host.
    assert!(site.hits("/deals/big").is_empty());
    assert!(sink.messages().is_empty());
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn http_statuses_choose_the_error_kind_and_retries_keep_the_idempotency_key() {
    let (site, base) = Site::start().await;
    let nodes = Nodes::start(|_| {}).await;
    nodes.install("http", http_grant(&base), true).await;
    let retry = json!({"max_attempts": 3, "initial_interval": "100ms", "jitter": 0.0});
    let definition = json!({
        "nodes": [
            // 503 once, then 200: retried (unavailable is in the default retry_on).
            {"id": "flaky", "type": "http/request", "retry": retry,
             "config": {"method": "POST", "url": format!("{base}/flaky"), "json": {"n": 1}}},
            // 404: invalid, not retried by the default retry_on.
            {"id": "missing", "type": "http/request", "retry": retry, "on_error": "continue",
             "config": {"url": format!("{base}/missing")}},
            // The same 404 as output, to branch on.
            {"id": "lenient", "type": "http/request",
             "config": {"url": format!("{base}/missing"), "fail_on_status": false}},
            // The node's own request timeout.
            {"id": "slow", "type": "http/request", "on_error": "continue",
             "config": {"url": format!("{base}/slow"), "timeout": "300ms"}},
            {"id": "out", "type": "core/merge"}
        ],
        "edges": [
            {"from": "flaky", "to": "out"}, {"from": "missing", "to": "out"},
            {"from": "lenient", "to": "out"}, {"from": "slow", "to": "out"}
        ]
    });
    nodes.save("statuses", definition).await;
    let execution = nodes.run("statuses", json!({})).await;
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let id = execution["id"].as_str().unwrap();

    let flaky = runs(&execution, "flaky");
    assert_eq!(flaky.len(), 2, "{execution:#}");
    assert_eq!(flaky[0]["error_kind"], "unavailable");
    assert!(flaky[0]["error"].as_str().unwrap().contains("HTTP 503"));
    assert_eq!(flaky[1]["output"]["body"], json!({"ok": true}));
    // Both attempts carried the same key, so the server can apply the POST once.
    let keys: Vec<Option<String>> = site
        .hits("/flaky")
        .iter()
        .map(|hit| hit.header("idempotency-key").map(str::to_string))
        .collect();
    let key = format!("{id}/flaky");
    assert_eq!(keys, [Some(key.clone()), Some(key)]);

    let missing = runs(&execution, "missing");
    assert_eq!(missing.len(), 1, "{execution:#}");
    assert_eq!(missing[0]["error_kind"], "invalid");
    assert!(
        missing[0]["error"]
            .as_str()
            .unwrap()
            .contains("HTTP 404: no such thing")
    );
    let lenient = &last(&execution, "lenient")["output"];
    assert_eq!(lenient["status"], 404);
    assert_eq!(lenient["body"], "no such thing");

    let slow = last(&execution, "slow");
    assert_eq!(slow["error_kind"], "unavailable", "{slow:#}");
    assert!(
        slow["error"].as_str().unwrap().contains("timed out"),
        "{slow:#}"
    );
    let started =
        chrono::DateTime::parse_from_rfc3339(slow["started_at"].as_str().unwrap()).unwrap();
    let finished =
        chrono::DateTime::parse_from_rfc3339(slow["finished_at"].as_str().unwrap()).unwrap();
    assert!(
        (finished - started).num_milliseconds() < 2500,
        "the timeout did not cut the request short: {slow:#}"
    );
}

#[tokio::test]
async fn an_llm_node_classifies_as_json_and_a_switch_routes_on_it() {
    let fake = FakeOpenAi::start().await;
    let llm_url = fake.base_url.clone();
    let nodes = Nodes::start(move |config| {
        config.llm_base_url = Some(llm_url);
        config.llm_backoff = Duration::from_millis(10);
    })
    .await;
    nodes
        .install("llm", json!({"llm": {"models": ["fake-model"]}}), true)
        .await;
    let definition = json!({
        "nodes": [
            {"id": "classify", "type": "llm/chat", "config": {
                "model": "fake-model", "system": "You label sales leads.",
                "prompt": "Label this lead as hot or cold, as JSON {\"label\": ...}: {{ input.lead }}",
                "temperature": 0, "max_tokens": 50, "json": true}},
            {"id": "route", "type": "core/switch",
             "config": {"value": "{{ nodes.classify.output.json.label }}", "cases": ["hot", "cold"]}},
            {"id": "hot", "type": "core/transform", "config": {"value": "call them now"}},
            {"id": "cold", "type": "core/transform", "config": {"value": "newsletter"}},
            {"id": "summary", "type": "llm/chat", "config": {
                "model": "fake-model", "messages": [{"role": "user", "content": "Summarise {{ input.lead }}"}]}}
        ],
        "edges": [
            {"from": "classify", "to": "route"},
            {"from": "route", "to": "hot", "branch": "hot"},
            {"from": "route", "to": "cold", "branch": "cold"},
            {"from": "classify", "to": "summary"}
        ]
    });
    nodes.save("leads", definition).await;
    fake.reply(Reply::Text(
        r#"{"label": "hot", "why": "budget approved"}"#.into(),
    ));
    let execution = nodes
        .run("leads", json!({"lead": "Acme, budget approved"}))
        .await;
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let classify = &last(&execution, "classify")["output"];
    assert_eq!(classify["json"]["label"], "hot");
    assert_eq!(classify["model"], "fake-model");
    assert!(classify["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(last(&execution, "hot")["output"], "call them now");
    assert_eq!(last(&execution, "cold")["status"], "skipped");
    let summary = &last(&execution, "summary")["output"];
    assert_eq!(summary["text"], "echo: Summarise Acme, budget approved");
    assert!(summary.get("json").is_none());

    // What the provider got: the conversation, the JSON response format, the
    // sampling settings.
    let requests = fake.requests();
    let sent = requests
        .iter()
        .map(|(_, body)| body)
        .find(|body| body["response_format"]["type"] == "json_object")
        .unwrap_or_else(|| panic!("no JSON request: {requests:#?}"));
    assert_eq!(sent["model"], "fake-model");
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "You label sales leads."})
    );
    assert_eq!(
        sent["messages"][1]["content"],
        "Label this lead as hot or cold, as JSON {\"label\": ...}: Acme, budget approved"
    );
    assert_eq!(sent["temperature"], 0.0);
    // Usage is recorded per plugin, as for any llm call.
    let plugins: Vec<String> = sqlx::query_scalar("SELECT plugin FROM llm_usage")
        .fetch_all(&nodes.pool)
        .await
        .unwrap();
    assert_eq!(plugins, ["llm", "llm"]);

    // An answer that is not JSON fails the node as `unavailable` (retryable).
    fake.reply(Reply::Text("hot, I think".into()));
    let execution = nodes.run("leads", json!({"lead": "Beta"})).await;
    assert_eq!(execution["status"], "failed");
    let classify = last(&execution, "classify");
    assert_eq!(classify["error_kind"], "unavailable");
    assert!(
        classify["error"].as_str().unwrap().contains("not JSON"),
        "{classify:#}"
    );
}
