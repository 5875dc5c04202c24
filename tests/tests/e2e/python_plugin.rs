//! The example plugin written in Python (`plugins/examples/python-hello`, built by
//! componentize-py from the same `wit/` as the Rust SDK), installed over the admin API
//! and called over the tools API like any other plugin: its JSON in and out, the
//! `config` import, outbound HTTP through `wasi:http`, and its errors.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use agenthost_tests::{ADMIN_TOKEN, StatusCode, TestServer, error_of};
use reqwest::Method;
use serde_json::{Value, json};

/// The component, built by `scripts/build_python_plugin.py` into the directory where
/// `make plugins` puts it (the script does nothing when it is up to date).
fn pyhello_wasm() -> Vec<u8> {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let path = BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let out_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("plugins/target"))
            .join("wasm32-wasip2/wasm-release");
        let output = std::process::Command::new("python3")
            .arg(root.join("scripts/build_python_plugin.py"))
            .arg(root.join("plugins/examples/python-hello"))
            .arg(&out_dir)
            .output()
            .expect("running scripts/build_python_plugin.py");
        assert!(
            output.status.success(),
            "building the Python plugin failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
    });
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn pyhello_manifest() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/examples/python-hello/manifest.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

async fn json_of(response: reqwest::Response) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: {text}"))
}

/// A server with pyhello installed (with `manifest`) and active; returns it and a
/// member key.
///
/// An upload compiles the component inside the request: for this 18 MB component that
/// is tens of seconds in a debug build of the host, past the request timeout, which is
/// why uploads have their own limit (`--plugin-upload-timeout`); these servers allow
/// even more, for a loaded machine. Uploads take turns, so the second finds the first's
/// compiled artifact in the (shared) cache instead of compiling it again.
async fn with_pyhello(manifest: Value) -> (TestServer, String) {
    static UPLOADING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let server = TestServer::start_with(|config| {
        config.plugin_upload_timeout = Duration::from_secs(600);
    })
    .await;
    let (workspace, _) = server.create_workspace("python").await;
    let (_, member) = server.create_key(&workspace, "member").await;
    let turn = UPLOADING.lock().await;
    let response = server.upload_plugin(&manifest, pyhello_wasm(), true).await;
    drop(turn);
    assert_eq!(response.status(), StatusCode::CREATED);
    let version = json_of(response).await;
    assert_eq!(version["active"], true);
    let names: Vec<&str> = version["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["greet", "word_count", "fetch"]);
    (server, member)
}

#[tokio::test]
async fn python_tools_answer_over_rest_and_read_their_settings() {
    let (server, key) = with_pyhello(pyhello_manifest()).await;

    // The schemas the Python code declares are the ones the tools API serves.
    let tools = json_of(
        server
            .request(Method::GET, "/api/tools", &key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let greet = tools
        .as_array()
        .unwrap()
        .iter()
        .find(|tool| tool["name"] == "greet")
        .unwrap_or_else(|| panic!("no greet in {tools}"));
    assert_eq!(greet["input_schema"]["required"], json!(["name"]));

    let response = server
        .call_tool(&key, "pyhello", "greet", &json!({"name": "Ada"}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_of(response).await;
    assert_eq!(body["plugin"], "pyhello");
    assert_eq!(
        body["output"],
        json!({"greeting": "Hello, Ada!", "version": "0.1.0", "language": "python"})
    );

    // The `config` import: the admin's setting reaches the Python code.
    let response = server
        .request(
            Method::PUT,
            "/api/admin/plugins/pyhello/settings",
            ADMIN_TOKEN,
        )
        .json(&json!({"greeting": "Hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
    let body = json_of(
        server
            .call_tool(&key, "pyhello", "greet", &json!({"name": "Grace"}))
            .await,
    )
    .await;
    assert_eq!(body["output"]["greeting"], "Hi, Grace!");

    let body = json_of(
        server
            .call_tool(
                &key,
                "pyhello",
                "word_count",
                &json!({"text": "The cat saw the other cat. The end!", "top": 2}),
            )
            .await,
    )
    .await;
    assert_eq!(
        body["output"],
        json!({
            "words": 8,
            "unique": 5,
            "top": [{"word": "the", "count": 3}, {"word": "cat", "count": 2}]
        })
    );
}

#[tokio::test]
async fn python_tool_errors_reach_the_caller_in_our_error_shape() {
    let (server, key) = with_pyhello(pyhello_manifest()).await;

    // Passes the schema (minLength 1), fails the tool's own rule: the error the Python
    // code raises is the caller's 400 `tool_error`, its kind and text intact.
    let response = server
        .call_tool(&key, "pyhello", "greet", &json!({"name": "   "}))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (code, message) = error_of(response).await;
    assert_eq!(code, "tool_error");
    assert_eq!(message, "invalid: name must not be blank");

    // Input that breaks the declared schema never reaches the plugin.
    let response = server
        .call_tool(&key, "pyhello", "word_count", &json!({"text": 5}))
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_of(response).await.0, "invalid_input");

    // A tool the plugin doesn't describe is the host's 404, without calling it.
    let response = server.call_tool(&key, "pyhello", "shout", &json!({})).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_of(response).await.0, "not_found");

    // The instance that raised the error is gone; the next call starts clean.
    let response = server
        .call_tool(&key, "pyhello", "greet", &json!({"name": "Ada"}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// `wasi:http/outgoing-handler` from Python: refused until an admin grants the origin
/// (the refusal reaches the caller as the tool's `denied` error), then a real GET
/// against a loopback server.
#[tokio::test]
async fn python_plugin_reaches_a_granted_origin_through_wasi_http() {
    let app = axum::Router::new().route(
        "/hi",
        axum::routing::get(|| async { "hello from loopback" }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    // The manifest asks for the origin (an admin can only grant what is asked for).
    let http = json!({ "origins": [origin], "private_networks": ["127.0.0.0/8"] });
    let mut manifest = pyhello_manifest();
    manifest["capabilities"] = json!({ "http": http });
    let (server, key) = with_pyhello(manifest).await;
    let url = format!("{origin}/hi");

    let response = server
        .call_tool(&key, "pyhello", "fetch", &json!({ "url": url }))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (code, message) = error_of(response).await;
    assert_eq!(code, "tool_error");
    assert!(
        message.starts_with("denied: the host refused the request"),
        "{message}"
    );

    let response = server
        .request(
            Method::PUT,
            "/api/admin/plugins/pyhello/versions/0.1.0/grants",
            ADMIN_TOKEN,
        )
        .json(&json!({ "http": http }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
    let response = server
        .call_tool(&key, "pyhello", "fetch", &json!({ "url": url }))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json_of(response).await["output"],
        json!({ "status": 200, "body": "hello from loopback", "truncated": false })
    );
}
