//! Domain events: written in the transaction of their change, read in commit order
//! (no event ever appears behind a cursor), each matching its type's schema, streamed
//! and resumed without gaps or repeats, and deleted after their retention.

use std::time::Duration;

use agenthost_tests::{StatusCode, TestServer, plugin_wasm};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::plugins::json_of;

pub(super) struct Feed {
    pub(super) server: TestServer,
    pub(super) pool: PgPool,
    workspace: String,
    pub(super) member: String,
    pub(super) viewer: String,
}

impl Feed {
    pub(super) async fn start() -> Feed {
        let server = TestServer::start().await;
        let pool = PgPool::connect(&server.database_url).await.unwrap();
        // Before the workspace, so its feed starts empty (an activation is an event in
        // every workspace there is).
        let manifest = json!({"name": "core", "version": "0.1.0", "kind": "node"});
        let response = server
            .upload_plugin(&manifest, plugin_wasm("core"), true)
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let (workspace, _) = server.create_workspace("feed").await;
        let (_, member) = server.create_key(&workspace, "admin").await;
        let (_, viewer) = server.create_key(&workspace, "viewer").await;
        let feed = Feed {
            server,
            pool,
            workspace,
            member,
            viewer,
        };
        feed.save(
            "quick",
            json!({"nodes": [{"id": "only", "type": "core/output", "config": {"value": 1}}]}),
        )
        .await;
        feed
    }

    pub(super) async fn save(&self, slug: &str, definition: Value) {
        let response = self
            .server
            .send(
                &self.member,
                Method::POST,
                "/api/workflows",
                Some(json!({"slug": slug, "name": slug, "definition": definition})),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    /// Run a workflow to its end; its execution id.
    pub(super) async fn run(&self, slug: &str) -> String {
        let response = self
            .server
            .send(
                &self.member,
                Method::POST,
                &format!("/api/workflows/{slug}/executions?wait=20s"),
                Some(json!({"input": {}})),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        json_of(response).await["id"].as_str().unwrap().to_string()
    }

    pub(super) async fn until_finished(&self, id: &str) {
        for _ in 0..500 {
            let response = self
                .server
                .send(
                    &self.viewer,
                    Method::GET,
                    &format!("/api/executions/{id}"),
                    None,
                )
                .await;
            let status = json_of(response).await["status"].clone();
            if !matches!(status.as_str(), Some("running" | "waiting")) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{id} did not finish");
    }

    async fn page(&self, query: &str) -> (StatusCode, Value) {
        let response = self
            .server
            .send(
                &self.viewer,
                Method::GET,
                &format!("/api/events{query}"),
                None,
            )
            .await;
        let status = response.status();
        (status, json_of(response).await)
    }

    /// Wait until every committed event of the workspace is readable: the feed holds
    /// events back while any older transaction of the cluster is open (other tests'
    /// included), so reads right after a change may not see it yet.
    pub(super) async fn settle(&self) {
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
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the feed never caught up");
    }

    /// The events of `query` once every committed event is readable.
    pub(super) async fn events(&self, query: &str) -> Vec<Value> {
        self.settle().await;
        let (status, page) = self.page(query).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["events"].as_array().unwrap().clone()
    }
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn executions_and_approvals_write_events_that_match_their_schemas() {
    let f = Feed::start().await;
    let id = f.run("quick").await;
    f.save(
        "ask",
        json!({"nodes": [{"id": "ok", "type": "core/approval", "config": {"message": "Ship?"}}]}),
    )
    .await;
    let response = f
        .server
        .send(
            &f.member,
            Method::POST,
            "/api/workflows/ask/executions",
            Some(json!({"input": {}})),
        )
        .await;
    let asked = json_of(response).await["id"].as_str().unwrap().to_string();
    let mut approval = None;
    for _ in 0..500 {
        let found = f.events("?type=approval.requested").await;
        if let Some(event) = found.first() {
            approval = Some(event["subject"].as_str().unwrap().to_string());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let approval = approval.expect("no approval.requested event");
    let response = f
        .server
        .send(
            &f.member,
            Method::POST,
            &format!("/api/approvals/{approval}"),
            Some(json!({"decision": "reject"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    f.until_finished(&asked).await;
    // A second one waits, and is cancelled.
    let response = f
        .server
        .send(
            &f.member,
            Method::POST,
            "/api/workflows/ask/executions",
            Some(json!({"input": {}})),
        )
        .await;
    let cancelled = json_of(response).await["id"].as_str().unwrap().to_string();
    let response = f
        .server
        .send(
            &f.member,
            Method::POST,
            &format!("/api/executions/{cancelled}/cancel"),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let ended = f.events(&format!("?subject={cancelled}")).await;
    assert_eq!(types(&ended).last(), Some(&"workflow.execution.cancelled"));

    let all = f.events("").await;
    let mine: Vec<&Value> = all.iter().filter(|e| e["subject"] == id).collect();
    assert_eq!(
        mine.iter()
            .map(|e| e["type"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["workflow.execution.started", "workflow.execution.succeeded"]
    );
    let member_key: String = sqlx::query_scalar(
        "SELECT 'key:' || id::text FROM api_keys WHERE workspace_id = $1::uuid AND role = 'admin'",
    )
    .bind(&f.workspace)
    .fetch_one(&f.pool)
    .await
    .unwrap();
    assert_eq!(mine[0]["actor"], member_key.as_str());
    assert_eq!(mine[1]["actor"], "system:engine");
    assert_eq!(mine[1]["payload"]["workflow"], "quick");
    let decided: Vec<&Value> = all
        .iter()
        .filter(|e| e["type"] == "approval.decided")
        .collect();
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["payload"]["status"], "rejected");
    assert_eq!(decided[0]["actor"], member_key.as_str());

    assert_schemas(&f, &all).await;

    // Filters: a prefix of whole segments, a subject, and paging by cursor.
    let executions = f.events("?type=workflow.execution.*").await;
    assert!(
        types(&executions)
            .iter()
            .all(|t| t.starts_with("workflow.execution."))
    );
    assert!(f.events("?type=workflow.exec").await.is_empty());
    assert_eq!(f.events(&format!("?subject={id}")).await.len(), 2);
    let first = f.events("?limit=1").await;
    let rest = f
        .events(&format!("?after={}", first[0]["cursor"].as_str().unwrap()))
        .await;
    assert_eq!(rest.len(), all.len() - 1);
    assert_eq!(rest[0], all[1]);

    // Bad filters are 422s naming the field.
    for query in [
        "?after=12",
        "?after=x-1",
        "?type=Workflow",
        "?type=a..b",
        "?limit=0",
    ] {
        let (status, body) = f.page(query).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
    }
}

/// The outbox pitfall: a transaction that took its row first but commits last. Read
/// by sequence alone, a reader would pass over it for good; read in commit order, it
/// is held back until it commits, and nothing behind the cursor is ever missed.
#[tokio::test]
async fn an_event_committed_late_is_not_skipped() {
    let f = Feed::start().await;
    f.run("quick").await;
    f.settle().await;
    let cursor = f.page("").await.1["next"].as_str().unwrap().to_string();

    let mut slow = f.pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO events (workspace_id, type, subject, payload, actor) \
         VALUES ($1::uuid, 'workflow.execution.started', 'slow', '{}', 'system:test')",
    )
    .bind(&f.workspace)
    .execute(&mut *slow)
    .await
    .unwrap();
    let id = f.run("quick").await;
    // The later, committed events wait behind the open transaction.
    let seen = f.page(&format!("?after={cursor}")).await.1["events"].clone();
    let seen = seen.as_array().unwrap();
    assert!(seen.is_empty(), "read past an open transaction: {seen:?}");
    slow.commit().await.unwrap();
    let seen = f.events(&format!("?after={cursor}")).await;
    let subjects: Vec<&str> = seen
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["slow", id.as_str(), id.as_str()]);
}

/// Read SSE events until `count` arrived: their ids (cursors) and subjects.
async fn read_events(response: reqwest::Response, count: usize) -> Vec<(String, String)> {
    let mut response = response;
    let mut text = String::new();
    let mut found = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        while found.len() < count {
            let chunk = response.chunk().await.unwrap().expect("the feed ended");
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let block: String = text.drain(..end + 2).collect();
                let id = block.lines().find_map(|l| l.strip_prefix("id:"));
                let data = block.lines().find_map(|l| l.strip_prefix("data:"));
                if let (Some(id), Some(data)) = (id, data) {
                    let event: Value = serde_json::from_str(data.trim()).unwrap();
                    found.push((
                        id.trim().to_string(),
                        event["subject"].as_str().unwrap_or("").to_string(),
                    ));
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "only {} of {count} events came", found.len());
    found
}

#[tokio::test]
async fn the_stream_resumes_from_last_event_id_without_gaps_or_repeats() {
    let f = Feed::start().await;
    let first = f.run("quick").await;
    let stream = |last: Option<String>| {
        let mut request =
            f.server
                .request(Method::GET, "/api/events/stream?type=workflow", &f.viewer);
        if let Some(last) = last {
            request = request.header("last-event-id", last);
        }
        request.send()
    };
    let response = stream(None).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let before = read_events(response, 2).await;
    assert_eq!(before[0].1, first);
    // The client goes away; more happens; it comes back with its last id.
    let second = f.run("quick").await;
    let third = f.run("quick").await;
    let response = stream(Some(before[1].0.clone())).await.unwrap();
    let after = read_events(response, 4).await;
    let subjects: Vec<&str> = after.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(subjects, [&second, &second, &third, &third]);
    let mut ids: Vec<&String> = before.iter().chain(&after).map(|(id, _)| id).collect();
    let count = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), count, "an event came twice");

    let response = f
        .server
        .request(Method::GET, "/api/events/stream", &f.viewer)
        .header("last-event-id", "nonsense")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // An empty one (EventSource before it saw an id) is the start.
    let response = f
        .server
        .request(Method::GET, "/api/events/stream?type=workflow", &f.viewer)
        .header("last-event-id", "")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(read_events(response, 1).await[0].1, first);
}

#[tokio::test]
async fn events_past_their_retention_are_deleted() {
    let f = Feed::start().await;
    let kept = f.run("quick").await;
    sqlx::query(
        "INSERT INTO events (workspace_id, type, subject, payload, actor, at) \
         VALUES ($1::uuid, 'workflow.execution.started', 'old', '{}', 'system:test', \
                 now() - interval '31 days')",
    )
    .bind(&f.workspace)
    .execute(&f.pool)
    .await
    .unwrap();
    let deleted = agenthost::events::sweep(&f.pool, Duration::from_secs(30 * 86400))
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let subjects: Vec<String> = f
        .events("")
        .await
        .iter()
        .map(|e| e["subject"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(subjects, [kept.clone(), kept]);
}

/// Every payload matches its type's published schema.
async fn assert_schemas(f: &Feed, events: &[Value]) {
    let response = f
        .server
        .send(&f.viewer, Method::GET, "/api/event-types", None)
        .await;
    let catalogue = json_of(response).await;
    for event in events {
        let entry = catalogue["event_types"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == event["type"])
            .unwrap_or_else(|| panic!("{} is not in the catalogue", event["type"]));
        let validator = jsonschema::validator_for(&entry["payload"]).unwrap();
        assert!(
            validator.is_valid(&event["payload"]),
            "{event} vs {}",
            entry["payload"]
        );
    }
}

/// Business data writes its events in the transaction of the change, whoever writes
/// it (database triggers): tickets, deals turning won, imports, articles.
#[tokio::test]
async fn tickets_deals_imports_and_articles_write_their_events() {
    let f = Feed::start().await;
    let f = &f;
    let ask = |method: Method, path: &str, body: Value| {
        let path = path.to_string();
        async move {
            let response = f.server.send(&f.member, method, &path, Some(body)).await;
            let status = response.status();
            (status, json_of(response).await)
        }
    };
    // A deal imported as won, another not yet; importing them again changes nothing.
    let deals = json!([
        {"external_id": "d1", "amount": "1200.00", "stage": "closed_won", "won": true,
         "created_on": "2026-11-02"},
        {"external_id": "d2", "amount": "80.00", "stage": "proposal", "created_on": "2026-11-03"}
    ]);
    let (status, body) = f.server.import(&f.member, "deals", &deals).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    f.server.import(&f.member, "deals", &deals).await;
    // d2 is won by a plain SQL update, as a plugin's query would do it.
    sqlx::query("UPDATE data.deals SET won = true WHERE external_id = 'd2'")
        .execute(&f.pool)
        .await
        .unwrap();
    let won = f.events("?type=deal.won").await;
    let ids: Vec<&str> = won
        .iter()
        .map(|e| e["payload"]["external_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["d1", "d2"]);
    let imported = f.events("?type=data.imported").await;
    assert_eq!(imported.len(), 2);
    assert_eq!(
        imported[0]["payload"],
        json!({"entity": "deals", "received": 2, "inserted": 2, "updated": 0})
    );
    assert_eq!(imported[1]["payload"]["updated"], 2);

    // A ticket's life.
    let (status, ticket) = ask(
        Method::POST,
        "/api/tickets",
        json!({"subject": "Refund", "requester": {"email": "ana@example.com"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    let id = ticket["id"].as_str().unwrap().to_string();
    let (status, _) = ask(
        Method::PATCH,
        &format!("/api/tickets/{id}"),
        json!({"status": "pending", "priority": "high"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = ask(
        Method::POST,
        &format!("/api/tickets/{id}/comments"),
        json!({"body": "We are on it."}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let life = f.events(&format!("?type=ticket&subject={id}")).await;
    assert_eq!(
        types(&life),
        [
            "ticket.created",
            "ticket.updated",
            "ticket.status_changed",
            "ticket.commented"
        ]
    );
    assert_eq!(life[1]["payload"]["changed"], json!(["status", "priority"]));
    assert_eq!(
        (
            life[2]["payload"]["from"].clone(),
            life[2]["payload"]["to"].clone()
        ),
        (json!("open"), json!("pending"))
    );
    assert!(life[0]["actor"].as_str().unwrap().starts_with("key:"));

    // An article goes live, then is archived.
    let (status, article) = ask(
        Method::POST,
        "/api/kb/articles",
        json!({"title": "Lockers", "body": "## Pickup\n\nUse the code from your email."}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{article}");
    let article = article["id"].as_str().unwrap().to_string();
    let (status, _) = ask(
        Method::PATCH,
        &format!("/api/kb/articles/{article}"),
        json!({"status": "in_review"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for step in ["publish", "archive"] {
        let (status, body) = ask(
            Method::POST,
            &format!("/api/kb/articles/{article}/{step}"),
            json!({}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{step}: {body}");
    }
    let kb = f.events("?type=kb.article").await;
    assert_eq!(types(&kb), ["kb.article.published", "kb.article.archived"]);
    assert_eq!(kb[0]["payload"]["slug"], "lockers");
    // A question nothing answered, logged as the answer route (or a plugin) does.
    sqlx::query(
        "INSERT INTO data.kb_gaps (workspace_id, question, reason) \
         VALUES ($1::uuid, 'Where is locker QX-99?', 'no_match')",
    )
    .bind(&f.workspace)
    .execute(&f.pool)
    .await
    .unwrap();
    let gaps = f.events("?type=kb.gap.logged").await;
    assert_eq!(gaps[0]["payload"]["question"], "Where is locker QX-99?");

    assert_schemas(f, &f.events("").await).await;
}

#[tokio::test]
async fn a_plugin_activation_is_an_event_in_every_workspace() {
    let f = Feed::start().await;
    let (other, _) = f.server.create_workspace("other").await;
    let manifest = json!({"name": "core", "version": "0.1.1", "kind": "node"});
    let response = f
        .server
        .upload_plugin(&manifest, plugin_wasm("core"), true)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let activated = f.events("?type=plugin.version.activated").await;
    assert_eq!(activated.len(), 1, "{activated:?}");
    assert_eq!(activated[0]["subject"], "core");
    assert_eq!(
        activated[0]["payload"],
        json!({"plugin": "core", "version": "0.1.1", "previous": "0.1.0"})
    );
    assert_eq!(activated[0]["actor"], "admin");
    assert_schemas(&f, &activated).await;
    let elsewhere: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE workspace_id = $1::uuid \
         AND type = 'plugin.version.activated'",
    )
    .bind(&other)
    .fetch_one(&f.pool)
    .await
    .unwrap();
    assert_eq!(elsewhere, 1);
}

/// Transaction ids gaining a digit (99 → 100): the feed orders them as numbers, not
/// as text, so a page never ends before a smaller one it hasn't delivered.
#[tokio::test]
async fn the_feed_orders_transaction_ids_as_numbers() {
    let f = Feed::start().await;
    sqlx::query(
        "INSERT INTO events (workspace_id, type, subject, payload, actor, tx) \
         SELECT $1::uuid, 'data.imported', n::text, '{}', 'system:test', n::text::xid8 \
         FROM generate_series(95, 104) n",
    )
    .bind(&f.workspace)
    .execute(&f.pool)
    .await
    .unwrap();
    let first = f.events("?limit=5").await;
    let subjects: Vec<&str> = first
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["95", "96", "97", "98", "99"]);
    let rest = f
        .events(&format!("?after={}", first[4]["cursor"].as_str().unwrap()))
        .await;
    let subjects: Vec<&str> = rest
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["100", "101", "102", "103", "104"]);
}
