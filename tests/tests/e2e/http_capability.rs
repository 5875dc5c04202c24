//! Outbound HTTP through `wasi:http` (guest `httpprobe`) against real servers on
//! loopback: origin grants, the address rule on resolved names, redirects, forged Host
//! headers, the response size cap, the timeout and the in-flight cap.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agenthost_tests::{StatusCode, TestServer, error_of, plugin_wasm};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use reqwest::Method;
use serde_json::{Value, json};

use super::plugins::{admin, json_of, setup};

/// Path and headers of one request a [`Site`] got.
type Hit = (String, HashMap<String, String>);

/// A loopback HTTP server that records every request it gets.
#[derive(Clone, Default)]
struct Site {
    hits: Arc<Mutex<Vec<Hit>>>,
    in_flight: Arc<AtomicUsize>,
    most_in_flight: Arc<AtomicUsize>,
    /// Where `/redirect` points.
    redirect_to: Arc<Mutex<String>>,
}

impl Site {
    async fn start() -> (Site, u16) {
        let site = Site::default();
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(site.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (site, port)
    }

    fn paths(&self) -> Vec<String> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .map(|(path, _)| path.clone())
            .collect()
    }

    fn host_headers(&self) -> Vec<String> {
        let hits = self.hits.lock().unwrap();
        hits.iter()
            .map(|(_, headers)| headers["host"].clone())
            .collect()
    }
}

async fn answer(State(site): State<Site>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let headers = request
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    site.hits.lock().unwrap().push((path.clone(), headers));
    match path.as_str() {
        "/redirect" => {
            let to = site.redirect_to.lock().unwrap().clone();
            (StatusCode::FOUND, [("location", to)]).into_response()
        }
        "/big" => {
            // Streamed without a content length, so the cap has to cut it mid-body.
            let chunks = (0..50).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 100]));
            axum::body::Body::from_stream(futures_util::stream::iter(chunks)).into_response()
        }
        "/big-declared" => vec![b'y'; 5000].into_response(),
        "/slow" => {
            let now = site.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            site.most_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(150)).await;
            site.in_flight.fetch_sub(1, Ordering::SeqCst);
            "slow".into_response()
        }
        "/hang" => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            "late".into_response()
        }
        _ => format!("hello from {path}").into_response(),
    }
}

fn manifest(origins: &[&str], networks: &[&str]) -> Value {
    json!({
        "name": "httpprobe", "version": "1.0.0", "kind": "tool",
        "capabilities": { "http": { "origins": origins, "private_networks": networks } }
    })
}

/// A server running `httpprobe` granted exactly what its manifest asks.
async fn start(
    origins: &[&str],
    networks: &[&str],
    change: impl FnOnce(&mut agenthost::Config),
) -> (TestServer, String) {
    let (server, key) = setup(change).await;
    let manifest = manifest(origins, networks);
    let response = server
        .upload_plugin(&manifest, plugin_wasm("httpprobe"), true)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    grant(&server, manifest["capabilities"].clone()).await;
    (server, key)
}

async fn grant(server: &TestServer, grants: Value) {
    let response = admin(
        server,
        Method::PUT,
        "/api/admin/plugins/httpprobe/versions/1.0.0/grants",
        Some(grants),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

async fn fetch(server: &TestServer, key: &str, input: Value) -> Result<Value, String> {
    let response = server.call_tool(key, "httpprobe", "fetch", &input).await;
    match response.status() {
        StatusCode::OK => Ok(json_of(response).await["output"].clone()),
        StatusCode::BAD_REQUEST => Err(error_of(response).await.1),
        other => panic!("{other}: {}", response.text().await.unwrap()),
    }
}

const LOOPBACK: &[&str] = &["127.0.0.0/8", "::1/128"];

#[tokio::test]
async fn a_granted_origin_is_reachable_and_any_other_is_denied() {
    let (allowed, a) = Site::start().await;
    let (denied, b) = Site::start().await;
    let origin = format!("http://127.0.0.1:{a}");
    let (server, key) = start(&[&origin], LOOPBACK, |_| {}).await;

    let output = fetch(
        &server,
        &key,
        json!({ "url": format!("{origin}/hello?x=1") }),
    )
    .await
    .unwrap();
    assert_eq!(output["status"], 200);
    assert_eq!(output["body"], "hello from /hello");
    assert_eq!(allowed.host_headers(), [format!("127.0.0.1:{a}")]);

    let error = fetch(
        &server,
        &key,
        json!({ "url": format!("http://127.0.0.1:{b}/x") }),
    )
    .await
    .unwrap_err();
    assert!(
        error.contains("not in this plugin version's http grant"),
        "{error}"
    );
    // Same host, other port, other scheme: all different origins.
    let error = fetch(
        &server,
        &key,
        json!({ "url": format!("https://127.0.0.1:{a}/x") }),
    )
    .await
    .unwrap_err();
    assert!(
        error.contains("not in this plugin version's http grant"),
        "{error}"
    );
    assert!(denied.paths().is_empty());
    assert_eq!(allowed.paths(), ["/hello"]);
}

#[tokio::test]
async fn without_a_grant_every_request_is_denied() {
    let (site, a) = Site::start().await;
    let origin = format!("http://127.0.0.1:{a}");
    let (server, key) = setup(|_| {}).await;
    let response = server
        .upload_plugin(
            &manifest(&[&origin], LOOPBACK),
            plugin_wasm("httpprobe"),
            true,
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let error = fetch(&server, &key, json!({ "url": format!("{origin}/x") }))
        .await
        .unwrap_err();
    assert!(
        error.contains("not in this plugin version's http grant"),
        "{error}"
    );
    assert!(site.paths().is_empty());
}

#[tokio::test]
async fn a_redirect_to_a_denied_origin_is_refused() {
    let (allowed, a) = Site::start().await;
    let (denied, b) = Site::start().await;
    let origin = format!("http://127.0.0.1:{a}");
    let (server, key) = start(&[&origin], LOOPBACK, |_| {}).await;

    // A redirect within the granted origin is followed.
    *allowed.redirect_to.lock().unwrap() = "/landing".into();
    let output = fetch(
        &server,
        &key,
        json!({ "url": format!("{origin}/redirect") }),
    )
    .await
    .unwrap();
    assert_eq!(output["body"], "hello from /landing");
    assert_eq!(output["url"], format!("{origin}/landing"));

    // One to another origin is refused when the guest follows it.
    *allowed.redirect_to.lock().unwrap() = format!("http://127.0.0.1:{b}/secret");
    let error = fetch(
        &server,
        &key,
        json!({ "url": format!("{origin}/redirect") }),
    )
    .await
    .unwrap_err();
    assert!(error.contains(&format!("127.0.0.1:{b}/secret")), "{error}");
    assert!(
        error.contains("not in this plugin version's http grant"),
        "{error}"
    );
    assert!(denied.paths().is_empty());

    // The host itself never follows redirects: with following off the 302 comes back.
    let output = fetch(
        &server,
        &key,
        json!({ "url": format!("{origin}/redirect"), "max_redirects": 0 }),
    )
    .await
    .unwrap();
    assert_eq!(output["status"], 302);
    assert!(denied.paths().is_empty());
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_unless_loopback_is_granted() {
    let (site, a) = Site::start().await;
    let by_name = format!("http://localhost:{a}");
    let by_address = format!("http://127.0.0.1:{a}");
    let (server, key) = start(
        &[&by_name, &by_address, "http://169.254.169.254"],
        &[],
        |_| {},
    )
    .await;

    for url in [format!("{by_name}/x"), format!("{by_address}/x")] {
        let error = fetch(&server, &key, json!({ "url": url }))
            .await
            .unwrap_err();
        assert!(error.contains("non-public address"), "{url}: {error}");
    }
    // Cloud metadata stays refused even with its origin granted.
    let error = fetch(
        &server,
        &key,
        json!({ "url": "http://169.254.169.254/latest/meta-data" }),
    )
    .await
    .unwrap_err();
    assert!(error.contains("non-public address"), "{error}");
    assert!(site.paths().is_empty());

    // An admin grants loopback (the manifest asks for it) and the same names work.
    let response = server
        .upload_plugin(
            &json!({
                "name": "httpprobe", "version": "1.0.1", "kind": "tool",
                "capabilities": { "http": { "origins": [by_name], "private_networks": LOOPBACK } }
            }),
            plugin_wasm("httpprobe"),
            true,
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = admin(
        &server,
        Method::PUT,
        "/api/admin/plugins/httpprobe/versions/1.0.1/grants",
        Some(json!({ "http": { "origins": [by_name], "private_networks": LOOPBACK } })),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let output = fetch(&server, &key, json!({ "url": format!("{by_name}/ok") }))
        .await
        .unwrap();
    assert_eq!(output["body"], "hello from /ok");
    assert_eq!(site.paths(), ["/ok"]);
}

#[tokio::test]
async fn a_forged_host_header_or_user_info_does_not_reach_a_denied_host() {
    let (allowed, a) = Site::start().await;
    let (denied, b) = Site::start().await;
    let origin = format!("http://127.0.0.1:{a}");
    let (server, key) = start(&[&origin], LOOPBACK, |_| {}).await;

    let forged = json!({
        "url": format!("{origin}/x"),
        "headers": [["Host", format!("127.0.0.1:{b}")]],
    });
    let error = fetch(&server, &key, forged).await.unwrap_err();
    assert!(error.contains("may not set Host"), "{error}");
    // `allowed@denied`: the part before `@` is user info, the host is the denied one.
    let tricky = json!({ "url": format!("http://127.0.0.1:{a}@127.0.0.1:{b}/x") });
    let error = fetch(&server, &key, tricky).await.unwrap_err();
    assert!(
        error.contains("not allowed") || error.contains("not in this plugin"),
        "{error}"
    );
    assert!(denied.paths().is_empty());
    assert!(allowed.paths().is_empty());
}

#[tokio::test]
async fn an_oversized_response_is_cut_off_with_an_error() {
    let (site, a) = Site::start().await;
    let origin = format!("http://127.0.0.1:{a}");
    let (server, key) = start(&[&origin], LOOPBACK, |config| {
        config.http_max_body_bytes = 1000;
    })
    .await;
    for path in ["/big", "/big-declared"] {
        let error = fetch(&server, &key, json!({ "url": format!("{origin}{path}") }))
            .await
            .unwrap_err();
        assert!(
            error.contains("larger than the host's cap of 1000 bytes"),
            "{path}: {error}"
        );
    }
    // Under the cap is fine, and so is the next call.
    let output = fetch(&server, &key, json!({ "url": format!("{origin}/small") }))
        .await
        .unwrap();
    assert_eq!(output["status"], 200);
    assert_eq!(site.paths(), ["/big", "/big-declared", "/small"]);
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let (_site, a) = Site::start().await;
    let origin = format!("http://127.0.0.1:{a}");
    let (server, key) = start(&[&origin], LOOPBACK, |config| {
        config.http_timeout = Duration::from_millis(300);
    })
    .await;
    let started = std::time::Instant::now();
    let error = fetch(&server, &key, json!({ "url": format!("{origin}/hang") }))
        .await
        .unwrap_err();
    assert!(error.contains("timed out"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn requests_in_flight_are_capped_per_plugin() {
    let (site, a) = Site::start().await;
    let origin = format!("http://127.0.0.1:{a}");
    let (server, key) = start(&[&origin], LOOPBACK, |config| {
        config.http_max_concurrent = 2;
    })
    .await;
    let requests: Vec<Value> = (0..6)
        .map(|_| json!({ "url": format!("{origin}/slow") }))
        .collect();
    let response = server
        .call_tool(
            &key,
            "httpprobe",
            "fetch_all",
            &json!({ "requests": requests }),
        )
        .await;
    let output = json_of(response).await["output"].clone();
    let results = output["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    assert!(results.iter().all(|r| r["status"] == 200), "{output}");
    // All six ran, never more than two at once, and they did overlap.
    assert_eq!(site.paths().len(), 6);
    assert_eq!(site.most_in_flight.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn http_grants_are_checked_against_the_manifest() {
    let (server, _key) = setup(|_| {}).await;
    let bad = json!({
        "name": "httpprobe", "version": "1.0.0", "kind": "tool",
        "capabilities": { "http": { "origins": ["https://example.com/path"] } }
    });
    let response = server
        .upload_plugin(&bad, plugin_wasm("httpprobe"), false)
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_of(response).await.1.contains("without a path"));

    let response = server
        .upload_plugin(
            &manifest(&["https://api.example.com"], &[]),
            plugin_wasm("httpprobe"),
            false,
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = admin(
        &server,
        Method::PUT,
        "/api/admin/plugins/httpprobe/versions/1.0.0/grants",
        Some(json!({ "http": { "origins": ["https://api.example.com"], "private_networks": ["10.0.0.0/8"] } })),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        error_of(response)
            .await
            .1
            .contains("http private network \"10.0.0.0/8\"")
    );
}

#[tokio::test]
async fn numeric_spellings_of_loopback_are_judged_as_loopback() {
    let (site, a) = Site::start().await;
    // The grant names loopback in a numeric spelling; no private network is granted.
    let (server, key) = start(&[&format!("http://2130706433:{a}")], &[], |_| {}).await;
    for host in [
        "127.1",
        "2130706433",
        "0x7f000001",
        "017700000001",
        "127.0.1",
        "0177.0.0.1",
        "127.0.0.1",
    ] {
        let url = format!("http://{host}:{a}/x");
        let error = fetch(&server, &key, json!({ "url": url }))
            .await
            .unwrap_err();
        assert!(error.contains("non-public address"), "{url}: {error}");
    }
    // `0` is 0.0.0.0 to the URL parser (and reaches loopback on Linux); not granted.
    let error = fetch(&server, &key, json!({ "url": format!("http://0:{a}/x") }))
        .await
        .unwrap_err();
    assert!(
        error.contains("non-public address") || error.contains("not in this plugin"),
        "{error}"
    );
    assert!(site.paths().is_empty(), "{:?}", site.paths());

    // Once loopback is granted, every spelling means the granted 127.0.0.1 origin.
    let (server, key) = start(&[&format!("http://2130706433:{a}")], LOOPBACK, |_| {}).await;
    for host in ["127.1", "0x7f000001", "127.0.0.1"] {
        let output = fetch(
            &server,
            &key,
            json!({ "url": format!("http://{host}:{a}/{host}") }),
        )
        .await
        .unwrap();
        assert_eq!(output["status"], 200);
    }
    assert_eq!(site.paths(), ["/127.1", "/0x7f000001", "/127.0.0.1"]);
    assert!(
        site.host_headers()
            .iter()
            .all(|host| *host == format!("127.0.0.1:{a}"))
    );
}
