//! Every way out of a node attempt ends committed: a result the database refuses fails
//! the node (so `on_error` and retries apply), a completion whose connection dies
//! mid-commit is committed again, and one node type's flood leaves a worker for the
//! others. Faults come from the real database: a NUL in a plugin's output, and
//! triggers that kill the committing connection or refuse the row.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::plugins::json_of;
use super::workflow_nodes::{Nodes, Site, http_grant, last, runs};

/// get (http/request, `on_error`) -> out (core/output).
fn fetch_then_output(url: &str, on_error: &str) -> Value {
    json!({
        "nodes": [
            {"id": "get", "type": "http/request", "on_error": on_error, "config": {"url": url}},
            {"id": "out", "type": "core/output", "config": {"value": "{{ nodes.get.output }}"}}
        ],
        "edges": [{"from": "get", "to": "out"}]
    })
}

#[tokio::test]
async fn a_nul_in_a_nodes_output_fails_the_node_with_where_it_is() {
    let (_site, base) = Site::start().await;
    let nodes = Nodes::start(|_| {}).await;
    nodes.install("http", http_grant(&base), true).await;
    for (path, place) in [("/nul-text", "`body`"), ("/nul-json", "`body.x`")] {
        // The default `on_error: fail` ends the execution with the node's error.
        let slug = format!("strict{}", path.replace('/', "-"));
        nodes
            .save(&slug, fetch_then_output(&format!("{base}{path}"), "fail"))
            .await;
        let execution = nodes.run(&slug, json!({})).await;
        assert_eq!(execution["status"], "failed", "{execution:#}");
        let get = last(&execution, "get");
        assert_eq!(get["status"], "failed");
        assert_eq!(get["error_kind"], "invalid");
        let error = get["error"].as_str().unwrap();
        assert!(error.contains("NUL") && error.contains(place), "{error}");
        assert!(runs(&execution, "out").is_empty());

        // With `on_error: continue` the next node reads the error as the output.
        let slug = format!("lenient{}", path.replace('/', "-"));
        nodes
            .save(
                &slug,
                fetch_then_output(&format!("{base}{path}"), "continue"),
            )
            .await;
        let execution = nodes.run(&slug, json!({})).await;
        assert_eq!(execution["status"], "succeeded", "{execution:#}");
        assert_eq!(execution["output"]["error"]["kind"], "invalid");
    }
}

/// a (core/transform) -> out (core/output).
fn two_steps() -> Value {
    json!({
        "nodes": [
            {"id": "a", "type": "core/transform", "config": {"value": 41}},
            {"id": "out", "type": "core/output", "config": {"value": "{{ nodes.a.output + 1 }}"}}
        ],
        "edges": [{"from": "a", "to": "out"}]
    })
}

#[tokio::test]
async fn a_completion_whose_connection_dies_mid_commit_is_committed_again() {
    let nodes = Nodes::start(|_| {}).await;
    nodes.save("steps", two_steps()).await;
    // The first time node `a` is completed, its connection is terminated inside the
    // transaction. The sequence counts outside the transaction, so it fires once.
    sqlx::raw_sql(
        "CREATE SEQUENCE kill_once; \
         CREATE FUNCTION kill_completion() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN \
           IF nextval('kill_once') = 1 THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF; \
           RETURN NEW; \
         END $$; \
         CREATE TRIGGER kill_completion BEFORE UPDATE ON node_runs FOR EACH ROW \
         WHEN (NEW.node_id = 'a' AND NEW.status = 'succeeded') EXECUTE FUNCTION kill_completion();",
    )
    .execute(&nodes.pool)
    .await
    .unwrap();
    let execution = nodes.run("steps", json!({})).await;
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(execution["output"], 42);
    // The kill happened, and the node ran once: its result was committed again.
    let fired: i64 = sqlx::query_scalar("SELECT last_value FROM kill_once")
        .fetch_one(&nodes.pool)
        .await
        .unwrap();
    assert!(fired >= 2, "the trigger fired {fired} times");
    let a = runs(&execution, "a");
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["attempt"], 1);
}

#[tokio::test]
async fn a_result_the_database_refuses_fails_the_node_without_its_text() {
    let nodes = Nodes::start(|_| {}).await;
    let mut definition = two_steps();
    definition["nodes"][0]["on_error"] = json!("continue");
    definition["nodes"][1]["config"]["value"] = json!("{{ nodes.a.output }}");
    nodes.save("refused", definition).await;
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_completion() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'secret internal detail' USING ERRCODE = '22023'; END $$; \
         CREATE TRIGGER refuse_completion BEFORE UPDATE ON node_runs FOR EACH ROW \
         WHEN (NEW.node_id = 'a' AND NEW.status = 'succeeded') EXECUTE FUNCTION refuse_completion();",
    )
    .execute(&nodes.pool)
    .await
    .unwrap();
    let execution = nodes.run("refused", json!({})).await;
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let a = last(&execution, "a");
    assert_eq!(a["status"], "failed");
    assert_eq!(a["error_kind"], "invalid");
    let error = a["error"].as_str().unwrap();
    assert!(error.contains("22023"), "{error}");
    assert!(
        !error.contains("secret"),
        "database text reached the client: {error}"
    );
    assert_eq!(execution["output"]["error"]["kind"], "invalid");
}

#[tokio::test]
async fn a_flood_of_slow_http_nodes_leaves_a_worker_for_other_nodes() {
    let (site, base) = Site::start().await;
    let nodes = Nodes::start(|config| {
        config.workflow_workers = 3;
        config.http_max_concurrent = 1;
    })
    .await;
    nodes.install("http", http_grant(&base), true).await;
    // Each takes 3 s and only one may be in flight: the six hold the queue ~18 s.
    nodes
        .save(
            "slow",
            json!({"nodes": [{"id": "get", "type": "http/request",
                              "config": {"url": format!("{base}/slow"), "timeout": "10s"}}]}),
        )
        .await;
    nodes.save("steps", two_steps()).await;
    let mut flood = Vec::new();
    for _ in 0..6 {
        let response = nodes
            .server
            .request(
                Method::POST,
                "/api/workflows/slow/executions",
                &nodes.member,
            )
            .json(&json!({"input": {}}))
            .send()
            .await
            .unwrap();
        flood.push(json_of(response).await["id"].as_str().unwrap().to_string());
    }
    // Wait until the flood holds workers: the first request reached the site.
    for _ in 0..500 {
        if !site.hits("/slow").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!site.hits("/slow").is_empty());
    let execution = nodes.run("steps", json!({})).await;
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    // The core nodes ran beside the flood, not after it: when they were done, at most
    // the first slow request could have finished (each of the others waits its turn
    // for the one HTTP slot), where workers all held by the flood would have made them
    // wait for the sixth.
    let mut finished = 0;
    for id in &flood {
        let response = nodes
            .server
            .request(Method::GET, &format!("/api/executions/{id}"), &nodes.member)
            .send()
            .await
            .unwrap();
        // Succeeded, or failed on the plugin's call limit while waiting for the slot.
        if !matches!(
            json_of(response).await["status"].as_str(),
            Some("queued" | "running")
        ) {
            finished += 1;
        }
    }
    assert!(finished <= 1, "{finished} slow executions finished first");
}
