//! Event triggers: a workflow whose latest version declares `{"type": "event"}` starts
//! once for each accepted event after that version was saved, on one host or two, and
//! never for its own executions, an older version's trigger, or while disabled.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::events::Feed;
use super::plugins::json_of;

/// `follow`: started by the successes of `quick`; outputs the id of the execution.
fn follower(filter: &str) -> Value {
    json!({
        "triggers": [{"type": "event", "event": "workflow.execution", "filter": filter}],
        "nodes": [{"id": "out", "type": "core/output",
                   "config": {"value": "{{ input.payload.execution_id }}"}}]
    })
}

const QUICK_SUCCEEDED: &str =
    "{{ event.type == 'workflow.execution.succeeded' and event.payload.workflow == 'quick' }}";

/// The outputs of `follow`'s executions, once `count` have finished (or after 20 s).
async fn followed(f: &Feed, count: usize) -> Vec<String> {
    let mut outputs = Vec::new();
    for _ in 0..1000 {
        let response = f
            .server
            .send(
                &f.viewer,
                Method::GET,
                "/api/executions?workflow=follow",
                None,
            )
            .await;
        let list = json_of(response).await;
        let done: Vec<&Value> = list["executions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["status"] == "succeeded")
            .collect();
        outputs = done
            .iter()
            .map(|e| e["output"].as_str().unwrap_or_default().to_string())
            .collect();
        if outputs.len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    outputs.sort();
    outputs
}

#[tokio::test]
async fn an_event_starts_its_workflow_once_even_with_two_hosts() {
    let f = Feed::start().await;
    let before = f.run("quick").await;
    f.save("follow", follower(QUICK_SUCCEEDED)).await;
    let saved_at: String =
        sqlx::query_scalar("SELECT tx::text || '-' || seq::text FROM event_trigger_cursors")
            .fetch_one(&f.pool)
            .await
            .unwrap();
    let replica = f.server.replica().await;
    let mut expected = Vec::new();
    for _ in 0..4 {
        expected.push(f.run("quick").await);
    }
    expected.sort();
    let outputs = followed(&f, 4).await;
    assert_eq!(
        outputs, expected,
        "the event before the trigger was saved: {before}"
    );

    // Every event delivered again (as after a host died before moving the cursor):
    // the executions' idempotency keys are the event ids, so nothing starts twice.
    let (tx, seq) = saved_at.split_once('-').unwrap();
    let head: String = sqlx::query_scalar(
        "UPDATE event_trigger_cursors c SET tx = $1::text::xid8, seq = $2::bigint \
         FROM event_trigger_cursors old WHERE old.workflow_id = c.workflow_id \
         RETURNING old.tx::text || '-' || old.seq::text",
    )
    .bind(tx)
    .bind(seq)
    .fetch_one(&f.pool)
    .await
    .unwrap();
    for _ in 0..1000 {
        let now: String =
            sqlx::query_scalar("SELECT tx::text || '-' || seq::text FROM event_trigger_cursors")
                .fetch_one(&f.pool)
                .await
                .unwrap();
        if now != saved_at {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let response = f
        .server
        .send(
            &f.viewer,
            Method::GET,
            "/api/executions?workflow=follow",
            None,
        )
        .await;
    let all = json_of(response).await["executions"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        all, 4,
        "redelivered events started executions again (cursor was {head})"
    );
    replica.stop().await;
}

#[tokio::test]
async fn only_the_latest_enabled_version_fires_and_bad_triggers_are_named() {
    let f = Feed::start().await;
    // Every execution's success, its own included: it must not feed itself.
    f.save(
        "follow",
        follower("{{ event.type == 'workflow.execution.succeeded' }}"),
    )
    .await;
    let first = f.run("quick").await;
    assert_eq!(followed(&f, 1).await, [first]);

    // A new version without the trigger: the old one never fires again.
    let response = f
        .server
        .send(
            &f.member,
            Method::PATCH,
            "/api/workflows/follow",
            Some(
                json!({"definition": {"nodes": [{"id": "out", "type": "core/output",
                                                   "config": {"value": 0}}]}}),
            ),
        )
        .await;
    assert_eq!(
        response.status(),
        reqwest::StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
    f.run("quick").await;
    // The trigger back, but the workflow disabled: nothing either.
    let response = f
        .server
        .send(
            &f.member,
            Method::PATCH,
            "/api/workflows/follow",
            Some(json!({"enabled": false,
                        "definition": follower("{{ event.type == 'workflow.execution.succeeded' }}")})),
        )
        .await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    f.run("quick").await;
    // Time for several passes of the dispatcher.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let response = f
        .server
        .send(
            &f.viewer,
            Method::GET,
            "/api/executions?workflow=follow",
            None,
        )
        .await;
    let all = json_of(response).await["executions"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(all, 1, "a replaced or disabled trigger fired");

    // Bad triggers are 422s naming the field.
    for (trigger, path) in [
        (
            json!({"type": "event", "event": "Ticket"}),
            "triggers[0].event",
        ),
        (
            json!({"type": "event", "event": "ticket", "filter": "{{ x == "}),
            "triggers[0].filter",
        ),
    ] {
        let response = f
            .server
            .send(
                &f.member,
                Method::POST,
                "/api/workflows",
                Some(json!({"slug": "bad", "name": "bad", "definition": {
                    "triggers": [trigger],
                    "nodes": [{"id": "out", "type": "core/output", "config": {"value": 1}}]}})),
            )
            .await;
        assert_eq!(response.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
        let body = json_of(response).await;
        assert!(body.to_string().contains(path), "{body}");
    }
    let response = f
        .server
        .send(
            &f.member,
            Method::POST,
            "/api/workflows",
            Some(json!({"slug": "bad", "name": "bad", "definition": {
                "triggers": [{"type": "cron", "at": "* * * * *"}],
                "nodes": [{"id": "out", "type": "core/output", "config": {"value": 1}}]}})),
        )
        .await;
    assert_eq!(response.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
}

/// An event committed just before its host is SIGKILLed, and not yet delivered (the
/// test holds the trigger's cursor, so no host can walk it), is delivered by the next
/// host, once.
#[tokio::test]
async fn an_event_committed_before_a_sigkill_is_delivered_after_it_once() {
    use super::workflow_durability::{Api, start_host};
    let database_url = agenthost_tests::fresh_database().await;
    let data = tempfile::tempdir().unwrap();
    let host = start_host(data.path(), &database_url, "200ms").await;
    let api = Api::new(&host.base);
    let key = api.workspace("killed").await;
    api.install(
        &json!({"name": "core", "version": "0.1.0", "kind": "node"}),
        agenthost_tests::plugin_wasm("core"),
    )
    .await;
    api.save(
        &key,
        "quick",
        json!({"nodes": [{"id": "only", "type": "core/output", "config": {"value": 1}}]}),
    )
    .await;
    api.save(&key, "follow", follower(QUICK_SUCCEEDED)).await;

    let pool = sqlx::PgPool::connect(&database_url).await.unwrap();
    let mut hold = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM event_trigger_cursors FOR UPDATE")
        .execute(&mut *hold)
        .await
        .unwrap();
    let quick = api.start(&key, "quick", json!({})).await;
    let committed = |kind: &'static str| {
        let pool = pool.clone();
        let quick = quick.clone();
        async move {
            for _ in 0..1000 {
                let found: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM events WHERE type = $1 AND subject = $2)",
                )
                .bind(kind)
                .bind(&quick)
                .fetch_one(&pool)
                .await
                .unwrap();
                if found {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("no {kind} event for {quick}");
        }
    };
    committed("workflow.execution.succeeded").await;
    host.crash().await;
    hold.rollback().await.unwrap();
    let follows = || async {
        sqlx::query_scalar::<_, Option<Value>>(
            "SELECT e.output FROM executions e JOIN workflows w ON w.id = e.workflow_id \
             WHERE w.slug = 'follow'",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    assert!(
        follows().await.is_empty(),
        "delivered while its cursor was held"
    );

    let restarted = start_host(data.path(), &database_url, "200ms").await;
    for _ in 0..1000 {
        if follows().await.iter().any(Option::is_some) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // More passes of the dispatcher: still one.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let outputs = follows().await;
    assert_eq!(outputs, [Some(json!(quick))]);
    restarted.stop().await;
}
