//! The plugin registry and tools API over REST, with real built components.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use agenthost_tests::{ADMIN_TOKEN, StatusCode, TestServer, error_of, plugin_wasm};
use reqwest::Method;
use serde_json::{Value, json};

pub(crate) fn manifest(name: &str, version: &str) -> Value {
    json!({ "name": name, "version": version, "kind": "tool", "description": "test plugin" })
}

pub(crate) async fn json_of(response: reqwest::Response) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: {text}"))
}

pub(crate) async fn admin(
    server: &TestServer,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = server.request(method, path, ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// A server with a workspace; returns the server and a member key.
pub(crate) async fn setup(change: impl FnOnce(&mut agenthost::Config)) -> (TestServer, String) {
    let server = TestServer::start_with(change).await;
    let (workspace, _) = server.create_workspace("plugins").await;
    let (_, member) = server.create_key(&workspace, "member").await;
    (server, member)
}

#[tokio::test]
async fn upload_activate_and_invoke_over_rest() {
    let (server, key) = setup(|_| {}).await;
    let response = server
        .upload_plugin(&manifest("hello", "1.0.0"), plugin_wasm("hello"), false)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let version = json_of(response).await;
    assert_eq!(version["active"], false);
    assert_eq!(version["tools"][0]["name"], "greet");
    assert_eq!(version["sha256"].as_str().unwrap().len(), 64);

    // Not active yet: nothing to list or call.
    let tools = json_of(
        server
            .request(Method::GET, "/api/tools", &key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(tools, json!([]));
    let response = server
        .call_tool(&key, "hello", "greet", &json!({"name": "Ada"}))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let response = admin(
        &server,
        Method::POST,
        "/api/admin/plugins/hello/versions/1.0.0/activate",
        None,
    )
    .await;
    assert_eq!(json_of(response).await["active_version"], "1.0.0");
    let tools = json_of(
        server
            .request(Method::GET, "/api/tools", &key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(tools[0]["plugin"], "hello");
    assert_eq!(tools[0]["name"], "greet");
    assert_eq!(tools[0]["input_schema"]["required"], json!(["name"]));

    let response = server
        .call_tool(&key, "hello", "greet", &json!({"name": "Ada"}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let result = json_of(response).await;
    assert_eq!(result["output"]["greeting"], "Hello, Ada!");
    assert_eq!(result["version"], "1.0.0");

    // Every invocation is recorded (written off the request path: poll briefly).
    let pool = sqlx::PgPool::connect(&server.database_url).await.unwrap();
    let mut recorded = 0i64;
    for _ in 0..100 {
        recorded = sqlx::query_scalar("SELECT count(*) FROM plugin_invocations WHERE plugin = 'hello' AND outcome = 'ok' AND workspace_id IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
        if recorded == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(recorded, 1);

    let audit = json_of(admin(&server, Method::GET, "/api/admin/audit", None).await).await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"plugin.install") && actions.contains(&"plugin.activate"),
        "{actions:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn tool_call_errors_have_distinct_statuses() {
    let (server, key) = setup(|_| {}).await;
    let response = server
        .upload_plugin(&manifest("hello", "1.0.0"), plugin_wasm("hello"), true)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    let response = server
        .call_tool(&key, "hello", "greet", &json!({"name": 42}))
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (code, message) = error_of(response).await;
    assert_eq!(code, "invalid_input");
    assert!(message.contains("/name"), "points at the field: {message}");

    let response = server
        .call_tool(&key, "hello", "greet", &json!({"name": "Ada", "extra": 1}))
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let response = server.call_tool(&key, "hello", "nope", &json!({})).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = server.call_tool(&key, "nope", "greet", &json!({})).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn bad_uploads_are_refused_with_reasons() {
    let (server, _) = setup(|_| {}).await;
    let response = server
        .upload_plugin(
            &manifest("junk", "1.0.0"),
            b"not wasm at all".to_vec(),
            false,
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (code, message) = error_of(response).await;
    assert_eq!(code, "invalid_component");
    assert!(message.contains("magic"), "{message}");

    let response = server
        .upload_plugin(&manifest("command", "1.0.0"), plugin_wasm("command"), false)
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (_, message) = error_of(response).await;
    assert!(
        message.contains("agenthost:plugin/tools@0.1.0"),
        "names the missing export: {message}"
    );

    let response = server
        .upload_plugin(&manifest("hello", "one"), plugin_wasm("hello"), false)
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (_, message) = error_of(response).await;
    assert!(message.contains("semantic"), "{message}");

    let form =
        reqwest::multipart::Form::new().text("manifest", manifest("hello", "1.0.0").to_string());
    let response = server
        .request(Method::POST, "/api/admin/plugins", ADMIN_TOKEN)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (_, message) = error_of(response).await;
    assert!(message.contains("component"), "{message}");

    // Nothing half-made was left behind.
    let plugins = json_of(admin(&server, Method::GET, "/api/admin/plugins", None).await).await;
    assert_eq!(plugins, json!([]));

    // A workspace key can't upload.
    let (_, owner) = server.create_workspace("other").await;
    let form = reqwest::multipart::Form::new().text("manifest", "{}");
    let response = server
        .request(Method::POST, "/api/admin/plugins", &owner)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    server.stop().await;
}

#[tokio::test]
async fn versions_activate_roll_back_and_guard_deletion() {
    let (server, key) = setup(|_| {}).await;
    let hello = plugin_wasm("hello");
    assert_eq!(
        server
            .upload_plugin(&manifest("hello", "1.0.0"), hello.clone(), true)
            .await
            .status(),
        StatusCode::CREATED
    );
    let response = server
        .upload_plugin(&manifest("hello", "1.0.0"), hello.clone(), false)
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT, "duplicate version");
    assert_eq!(
        server
            .upload_plugin(&manifest("hello", "1.1.0"), hello.clone(), true)
            .await
            .status(),
        StatusCode::CREATED
    );

    let version_seen = |server: &TestServer| {
        let key = key.clone();
        let base = server.url("/api/tools/hello/greet");
        async move {
            let response = reqwest::Client::new()
                .post(base)
                .bearer_auth(key)
                .json(&json!({"name": "Ada"}))
                .send()
                .await
                .unwrap();
            json_of(response).await["output"]["version"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    assert_eq!(version_seen(&server).await, "1.1.0");

    let plugin = json_of(
        admin(
            &server,
            Method::POST,
            "/api/admin/plugins/hello/rollback",
            None,
        )
        .await,
    )
    .await;
    assert_eq!(plugin["active_version"], "1.0.0");
    assert_eq!(plugin["previous_version"], "1.1.0");
    assert_eq!(version_seen(&server).await, "1.0.0");

    let response = admin(
        &server,
        Method::DELETE,
        "/api/admin/plugins/hello/versions/1.0.0",
        None,
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::CONFLICT,
        "the active version can't be deleted"
    );
    let (_, message) = error_of(response).await;
    assert!(message.contains("active"), "{message}");
    let response = admin(
        &server,
        Method::DELETE,
        "/api/admin/plugins/hello/versions/1.1.0",
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = admin(
        &server,
        Method::POST,
        "/api/admin/plugins/hello/rollback",
        None,
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::CONFLICT,
        "nothing left to roll back to"
    );

    let detail = json_of(admin(&server, Method::GET, "/api/admin/plugins/hello", None).await).await;
    assert_eq!(detail["versions"].as_array().unwrap().len(), 1);
    assert_eq!(detail["versions"][0]["active"], true);

    // Disabled plugins serve nothing; enabling brings the same version back.
    admin(
        &server,
        Method::POST,
        "/api/admin/plugins/hello/disable",
        None,
    )
    .await;
    let response = server
        .call_tool(&key, "hello", "greet", &json!({"name": "Ada"}))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    admin(
        &server,
        Method::POST,
        "/api/admin/plugins/hello/enable",
        None,
    )
    .await;
    assert_eq!(version_seen(&server).await, "1.0.0");
    server.stop().await;
}

#[tokio::test]
async fn secrets_are_readable_only_once_granted() {
    let (server, key) = setup(|_| {}).await;
    let mut faults = manifest("faults", "1.0.0");
    faults["capabilities"] = json!({ "secrets": ["api_key"] });
    assert_eq!(
        server
            .upload_plugin(&faults, plugin_wasm("faults"), true)
            .await
            .status(),
        StatusCode::CREATED
    );
    let response = admin(
        &server,
        Method::PUT,
        "/api/admin/secrets/api_key",
        Some(json!({"value": "s3cr3t"})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let names = json_of(admin(&server, Method::GET, "/api/admin/secrets", None).await).await;
    assert_eq!(names, json!(["api_key"]), "names only, never values");

    let read = json!({"name": "api_key"});
    let response = server.call_tool(&key, "faults", "secret", &read).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (code, message) = error_of(response).await;
    assert_eq!(code, "tool_error");
    assert!(message.contains("denied"), "{message}");

    let grants = "/api/admin/plugins/faults/versions/1.0.0/grants";
    let response = admin(
        &server,
        Method::PUT,
        grants,
        Some(json!({"secrets": ["api_key", "other"]})),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "beyond the manifest's request"
    );
    let response = admin(
        &server,
        Method::PUT,
        grants,
        Some(json!({"secrets": ["api_key"]})),
    )
    .await;
    assert_eq!(
        json_of(response).await["grants"]["secrets"],
        json!(["api_key"])
    );

    let response = server.call_tool(&key, "faults", "secret", &read).await;
    assert_eq!(json_of(response).await["output"]["value"], "s3cr3t");
    server.stop().await;
}

#[tokio::test]
async fn settings_reach_the_plugin_and_follow_the_schema() {
    let (server, key) = setup(|_| {}).await;
    let mut hello = manifest("hello", "1.0.0");
    hello["config_schema"] =
        json!({"type": "object", "properties": {"greeting": {"type": "string"}}});
    assert_eq!(
        server
            .upload_plugin(&hello, plugin_wasm("hello"), true)
            .await
            .status(),
        StatusCode::CREATED
    );

    let path = "/api/admin/plugins/hello/settings";
    let response = admin(&server, Method::PUT, path, Some(json!({"greeting": 5}))).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let response = admin(
        &server,
        Method::PUT,
        path,
        Some(json!({"greeting": "Howdy"})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = server
        .call_tool(&key, "hello", "greet", &json!({"name": "Ada"}))
        .await;
    assert_eq!(json_of(response).await["output"]["greeting"], "Howdy, Ada!");
    server.stop().await;
}

#[tokio::test]
async fn activating_a_version_under_100_concurrent_calls_fails_none() {
    let (server, key) = setup(|config| config.plugin_instances = 160).await;
    let server = Arc::new(server);
    let hello = plugin_wasm("hello");
    assert_eq!(
        server
            .upload_plugin(&manifest("hello", "1.0.0"), hello.clone(), true)
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        server
            .upload_plugin(&manifest("hello", "2.0.0"), hello, false)
            .await
            .status(),
        StatusCode::CREATED
    );

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut callers = Vec::new();
    for _ in 0..100 {
        let (server, key, stop, ok, failed) = (
            server.clone(),
            key.clone(),
            stop.clone(),
            ok.clone(),
            failed.clone(),
        );
        callers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let response = server
                    .call_tool(&key, "hello", "greet", &json!({"name": "Ada"}))
                    .await;
                if response.status() == StatusCode::OK {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let response = admin(
        &server,
        Method::POST,
        "/api/admin/plugins/hello/versions/2.0.0/activate",
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    assert!(
        ok.load(Ordering::Relaxed) >= 100,
        "calls ran during the swap"
    );

    let response = server
        .call_tool(&key, "hello", "greet", &json!({"name": "Ada"}))
        .await;
    assert_eq!(json_of(response).await["output"]["version"], "2.0.0");
    Arc::into_inner(server).unwrap().stop().await;
}

#[tokio::test]
async fn another_host_on_the_same_database_follows_activations() {
    let (first, key) = setup(|_| {}).await;
    let hello = plugin_wasm("hello");
    assert_eq!(
        first
            .upload_plugin(&manifest("hello", "1.0.0"), hello.clone(), true)
            .await
            .status(),
        StatusCode::CREATED
    );
    let second = first.replica().await;
    // Loaded at start from the shared database.
    let response = second
        .call_tool(&key, "hello", "greet", &json!({"name": "Ada"}))
        .await;
    assert_eq!(json_of(response).await["output"]["version"], "1.0.0");

    assert_eq!(
        first
            .upload_plugin(&manifest("hello", "2.0.0"), hello, true)
            .await
            .status(),
        StatusCode::CREATED
    );
    let started = Instant::now();
    loop {
        let response = second
            .call_tool(&key, "hello", "greet", &json!({"name": "Ada"}))
            .await;
        if json_of(response).await["output"]["version"] == "2.0.0" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the replica did not follow within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    second.stop().await;
    first.stop().await;
}

#[tokio::test]
async fn viewers_list_tools_but_only_members_invoke() {
    let server = TestServer::start().await;
    let (workspace, _) = server.create_workspace("roles").await;
    let (_, viewer) = server.create_key(&workspace, "viewer").await;
    assert_eq!(
        server
            .upload_plugin(&manifest("hello", "1.0.0"), plugin_wasm("hello"), true)
            .await
            .status(),
        StatusCode::CREATED
    );
    let response = server
        .request(Method::GET, "/api/tools", &viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = server
        .call_tool(&viewer, "hello", "greet", &json!({"name": "Ada"}))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    server.stop().await;
}

fn write_pair(dir: &std::path::Path, file: &str, manifest: &Value, wasm: &[u8]) {
    // Manifest first: the wasm's arrival is what makes a pair complete.
    std::fs::write(dir.join(format!("{file}.json")), manifest.to_string()).unwrap();
    std::fs::write(dir.join(format!("{file}.wasm")), wasm).unwrap();
}

#[tokio::test]
async fn bundled_plugins_are_installed_at_start_without_overriding_admins() {
    let bundle = tempfile::tempdir().unwrap();
    write_pair(
        bundle.path(),
        "hello",
        &manifest("hello", "0.1.0"),
        &plugin_wasm("hello"),
    );
    write_pair(
        bundle.path(),
        "broken",
        &manifest("broken", "0.1.0"),
        b"not wasm",
    );
    let dir = bundle.path().to_path_buf();
    let (server, key) = setup(move |config| config.bundled_plugins_dir = dir).await;
    let response = server
        .call_tool(&key, "hello", "greet", &json!({"name": "Ada"}))
        .await;
    assert_eq!(json_of(response).await["output"]["version"], "0.1.0");
    let plugins = json_of(admin(&server, Method::GET, "/api/admin/plugins", None).await).await;
    assert_eq!(
        plugins.as_array().unwrap().len(),
        1,
        "the broken bundle was skipped: {plugins}"
    );

    // The admin disables it; a restart (a replica start) does not re-enable it.
    admin(
        &server,
        Method::POST,
        "/api/admin/plugins/hello/disable",
        None,
    )
    .await;
    let again = server.replica().await;
    let response = again
        .call_tool(&key, "hello", "greet", &json!({"name": "Ada"}))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    again.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn the_watched_directory_hot_reloads_rebuilt_plugins() {
    let watched = tempfile::tempdir().unwrap();
    let dir = watched.path().to_path_buf();
    let (server, key) = setup(move |config| config.plugin_dir = Some(dir)).await;
    let wait_for = |want: &'static str| {
        let url = server.url("/api/tools");
        let key = key.clone();
        async move {
            let started = Instant::now();
            loop {
                let tools: Value = reqwest::Client::new()
                    .get(&url)
                    .bearer_auth(&key)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let names: Vec<String> = tools
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| {
                        format!(
                            "{}@{}",
                            t["name"].as_str().unwrap(),
                            t["version"].as_str().unwrap()
                        )
                    })
                    .collect();
                if names.iter().any(|n| n.starts_with(want)) {
                    return names;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "never saw {want}: {names:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    write_pair(
        watched.path(),
        "dev",
        &manifest("dev", "1.0.0"),
        &plugin_wasm("hello"),
    );
    assert_eq!(wait_for("greet@1.0.0").await, ["greet@1.0.0"]);

    // The author rebuilds without bumping the version: a dev build is installed.
    write_pair(
        watched.path(),
        "dev",
        &manifest("dev", "1.0.0"),
        &plugin_wasm("faults"),
    );
    let names = wait_for("spin@1.0.0+dev.").await;
    assert!(names.iter().all(|n| n.contains("+dev.")), "{names:?}");
    let versions = json_of(admin(&server, Method::GET, "/api/admin/plugins/dev", None).await).await;
    assert_eq!(
        versions["versions"].as_array().unwrap().len(),
        2,
        "1.0.0 stays as it was"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_component_that_describes_nothing_for_its_declared_kind_is_refused() {
    let (server, _) = setup(|_| {}).await;
    // A node plugin (built with the SDK's node macro) declared as a tool plugin: the
    // SDK exports both interfaces, so it links, but it describes no tools.
    let response = server
        .upload_plugin(
            &manifest("threshold", "1.0.0"),
            plugin_wasm("threshold"),
            true,
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (code, message) = error_of(response).await;
    assert_eq!(code, "invalid_component");
    assert!(
        message.contains("describes no tools")
            && message.contains("node types (threshold)")
            && message.contains(r#""kind": "node""#),
        "{message}"
    );
    // The reverse: a tool plugin declared as a node plugin.
    let mut hello = manifest("hello", "1.0.0");
    hello["kind"] = json!("node");
    let response = server
        .upload_plugin(&hello, plugin_wasm("hello"), true)
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (code, message) = error_of(response).await;
    assert_eq!(code, "invalid_component");
    assert!(
        message.contains("describes no node types")
            && message.contains("tools (greet)")
            && message.contains(r#""kind": "tool""#),
        "{message}"
    );
    // Nothing was stored...
    let plugins = json_of(admin(&server, Method::GET, "/api/admin/plugins", None).await).await;
    assert_eq!(plugins, json!([]));
    // ...and with the right kinds both install.
    let mut threshold = manifest("threshold", "1.0.0");
    threshold["kind"] = json!("node");
    let response = server
        .upload_plugin(&threshold, plugin_wasm("threshold"), false)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        json_of(response).await["nodes"][0]["node_type"],
        "threshold"
    );
    let response = server
        .upload_plugin(&manifest("hello", "1.0.0"), plugin_wasm("hello"), false)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    server.stop().await;
}
