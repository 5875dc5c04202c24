//! Plugin log lines: what a real plugin writes with `log.write` is stored with its
//! plugin, version, level and request id, and `GET /api/admin/plugins/{name}/logs`
//! filters, pages and stays within the retention limits; only the instance admin reads it.
//!
//! The example `hello` plugin logs `greeting NAME` at info on every call; lines at other
//! levels (and with fields) are queued through the same `LogSink` the host gives its
//! plugins, into the server's database.

use std::collections::BTreeMap;
use std::time::Duration;

use agenthost::plugin_logs::{Level, LogSink, NewLine, Retention};
use agenthost_tests::{ADMIN_TOKEN, StatusCode, TestServer, error_of, plugin_wasm};
use reqwest::Method;
use serde_json::{Value, json};

fn hello(version: &str) -> Value {
    json!({"name": "hello", "version": version, "kind": "tool"})
}

async fn install_hello(server: &TestServer, version: &str) {
    let response = server
        .upload_plugin(&hello(version), plugin_wasm("hello"), true)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

async fn greet(server: &TestServer, key: &str, name: &str, request_id: &str) {
    let response = server
        .request(Method::POST, "/api/tools/hello/greet", key)
        .header("x-request-id", request_id)
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn logs(server: &TestServer, query: &str) -> Value {
    let response = server
        .request(
            Method::GET,
            &format!("/api/admin/plugins/hello/logs?{query}"),
            ADMIN_TOKEN,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    response.json().await.unwrap()
}

/// The lines are written by a background task: ask until `done` holds (or give up).
async fn logs_until(server: &TestServer, query: &str, done: impl Fn(&[Value]) -> bool) -> Value {
    for _ in 0..200 {
        let page = logs(server, query).await;
        if done(page["lines"].as_array().unwrap()) {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the log lines never matched: {}", logs(server, query).await);
}

fn messages(page: &Value) -> Vec<&str> {
    page["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["message"].as_str().unwrap())
        .collect()
}

fn line(version: &str, level: Level, message: &str) -> NewLine {
    NewLine {
        plugin: "hello".into(),
        version: version.into(),
        level,
        message: message.into(),
        fields: BTreeMap::new(),
        request_id: None,
        workspace_id: None,
        logged_at: chrono::Utc::now(),
    }
}

async fn pool(server: &TestServer) -> sqlx::PgPool {
    sqlx::PgPool::connect(&server.database_url).await.unwrap()
}

#[tokio::test]
async fn a_plugins_lines_are_stored_and_filtered_by_version_level_and_request() {
    let server = TestServer::start().await;
    let (workspace, key) = server.create_workspace("logs").await;
    install_hello(&server, "1.0.0").await;
    greet(&server, &key, "Ada", "logs-ada").await;
    install_hello(&server, "1.1.0").await;
    greet(&server, &key, "Bob", "logs-bob").await;

    let page = logs_until(&server, "", |lines| lines.len() == 2).await;
    assert_eq!(
        messages(&page),
        ["greeting Bob", "greeting Ada"],
        "newest first"
    );
    let bob = &page["lines"][0];
    assert_eq!(bob["plugin"], "hello");
    assert_eq!(bob["version"], "1.1.0");
    assert_eq!(bob["level"], "info");
    assert_eq!(bob["request_id"], "logs-bob");
    assert_eq!(bob["workspace_id"], workspace.as_str());
    assert_eq!(bob["fields"], json!({}));
    assert!(bob["logged_at"].as_str().unwrap().starts_with("20"));
    assert!(page["next_before"].is_null());

    let old = logs(&server, "version=1.0.0").await;
    assert_eq!(messages(&old), ["greeting Ada"]);
    assert_eq!(old["lines"][0]["request_id"], "logs-ada");
    let by_request = logs(&server, "request_id=logs-bob").await;
    assert_eq!(messages(&by_request), ["greeting Bob"]);

    // Lines at the other levels, through the sink the host hands its plugins.
    let sink = LogSink::start(pool(&server).await, Retention::default());
    let mut warn = line("1.1.0", Level::Warn, "slow upstream");
    warn.fields = [("ms".to_string(), "900".to_string())].into();
    sink.send(warn);
    sink.send(line("1.1.0", Level::Error, "upstream down"));
    sink.send(line("1.1.0", Level::Debug, "details"));
    logs_until(&server, "", |lines| lines.len() == 5).await;

    let severe = logs(&server, "level=warn").await;
    assert_eq!(messages(&severe), ["upstream down", "slow upstream"]);
    assert_eq!(severe["lines"][1]["fields"], json!({"ms": "900"}));
    assert_eq!(
        messages(&logs(&server, "level=error").await),
        ["upstream down"]
    );
    assert_eq!(
        logs(&server, "level=info").await["lines"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        messages(&logs(&server, "level=warn&version=1.0.0").await),
        Vec::<&str>::new()
    );
    // `since` in the future: nothing yet.
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let later = later.replace('+', "%2B");
    assert!(
        logs(&server, &format!("since={later}")).await["lines"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Times PostgreSQL cannot hold are still answered.
    assert_eq!(
        logs(&server, "since=%2B200000-01-01T00:00:00Z").await["lines"],
        json!([])
    );
    assert_eq!(
        logs(&server, "since=-200000-01-01T00:00:00Z").await["lines"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(sink.dropped(), 0);

    // Bad queries are refused with what is wrong; an unknown plugin is a 404.
    for (query, status) in [
        ("level=loud", StatusCode::BAD_REQUEST),
        ("since=yesterday", StatusCode::BAD_REQUEST),
        ("limit=ten", StatusCode::BAD_REQUEST),
        ("colour=red", StatusCode::BAD_REQUEST),
        ("limit=0", StatusCode::UNPROCESSABLE_ENTITY),
        ("limit=1001", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let response = server
            .request(
                Method::GET,
                &format!("/api/admin/plugins/hello/logs?{query}"),
                ADMIN_TOKEN,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{query}");
        let (_, message) = error_of(response).await;
        assert!(!message.is_empty(), "{query}");
    }
    let response = server
        .request(Method::GET, "/api/admin/plugins/nope/logs", ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // Only the instance admin: a workspace owner is refused, no token is a 401.
    let response = server
        .request(Method::GET, "/api/admin/plugins/hello/logs", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = server
        .client
        .get(server.url("/api/admin/plugins/hello/logs"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;
}

#[tokio::test]
async fn pages_go_back_with_next_before_and_the_retention_limits_hold() {
    let server = TestServer::start().await;
    install_hello(&server, "1.0.0").await;
    let pool = pool(&server).await;

    // Keep the newest 5 lines of a plugin: 12 written, the last 5 stay.
    let retention = Retention {
        keep_per_plugin: 5,
        max_age: Duration::from_secs(24 * 3600),
    };
    let sink = LogSink::start(pool.clone(), retention);
    for n in 1..=12 {
        sink.send(line("1.0.0", Level::Info, &format!("line {n}")));
    }
    let expected = ["line 12", "line 11", "line 10", "line 9", "line 8"];
    let page = logs_until(&server, "", |lines| {
        lines.len() == 5 && lines[0]["message"] == "line 12"
    })
    .await;
    assert_eq!(messages(&page), expected);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM plugin_logs WHERE plugin = 'hello'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 5);

    // Paging: two lines at a time, each page older than the last, nothing twice.
    let mut seen = Vec::new();
    let mut query = "limit=2".to_string();
    loop {
        let page = logs(&server, &query).await;
        let lines = page["lines"].as_array().unwrap();
        assert!(lines.len() <= 2);
        seen.extend(
            lines
                .iter()
                .map(|l| l["message"].as_str().unwrap().to_string()),
        );
        match page["next_before"].as_i64() {
            Some(before) => {
                assert_eq!(before, lines.last().unwrap()["id"].as_i64().unwrap());
                query = format!("limit=2&before={before}");
            }
            None => break,
        }
    }
    assert_eq!(seen, expected);
    // `after`: only what came after a line.
    let newest = page["lines"][1]["id"].as_i64().unwrap();
    assert_eq!(
        messages(&logs(&server, &format!("after={newest}")).await),
        ["line 12"]
    );

    // The age limit: a line older than `max_age` goes in the sweep, newer ones stay.
    let mut old = line("1.0.0", Level::Info, "from last month");
    old.logged_at = chrono::Utc::now() - chrono::Duration::days(30);
    let other = LogSink::start(pool.clone(), Retention::default());
    other.send(old);
    logs_until(&server, "", |lines| {
        lines.iter().any(|l| l["message"] == "from last month")
    })
    .await;
    let deleted = agenthost::plugin_logs::prune(&pool, retention)
        .await
        .unwrap();
    assert!(deleted >= 1);
    let page = logs(&server, "").await;
    assert!(!messages(&page).contains(&"from last month"));
    assert!(messages(&page).contains(&"line 12"));
    server.stop().await;
}
