//! Plugin limits over REST: deadline, memory cap, traps, upload size, the instance
//! pool, and fairness towards other requests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agenthost_tests::{StatusCode, error_of, plugin_wasm};
use reqwest::Method;
use serde_json::json;

use super::plugins::{admin, json_of, manifest, setup};

#[tokio::test]
async fn faulty_plugins_fail_their_own_calls_and_nothing_else() {
    let (server, key) = setup(|_| {}).await;
    let mut faults = manifest("faults", "1.0.0");
    faults["limits"] = json!({ "timeout_ms": 300, "memory_mb": 16 });
    assert_eq!(
        server
            .upload_plugin(&faults, plugin_wasm("faults"), true)
            .await
            .status(),
        StatusCode::CREATED
    );

    let started = Instant::now();
    let response = server.call_tool(&key, "faults", "spin", &json!({})).await;
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(error_of(response).await.0, "plugin_timeout");
    assert!(started.elapsed() < Duration::from_secs(3));

    let response = server
        .call_tool(&key, "faults", "allocate", &json!({}))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let (code, message) = error_of(response).await;
    assert_eq!(code, "plugin_fault");
    assert!(message.contains("cap"), "{message}");

    let response = server.call_tool(&key, "faults", "trap", &json!({})).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);

    let response = server.call_tool(&key, "faults", "ok", &json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let metrics = admin(&server, Method::GET, "/api/admin/metrics", None)
        .await
        .text()
        .await
        .unwrap();
    for (outcome, count) in [("timeout", 1), ("memory_limit", 1), ("trap", 1), ("ok", 1)] {
        let line = format!(
            "agenthost_plugin_calls_total{{plugin=\"faults\",outcome=\"{outcome}\"}} {count}\n"
        );
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
    let health = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn uploads_over_the_upload_limit_get_413() {
    let (server, _) = setup(|config| config.plugin_upload_limit = 16 * 1024).await;
    let response = server
        .upload_plugin(&manifest("hello", "1.0.0"), plugin_wasm("hello"), false)
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (code, _) = error_of(response).await;
    assert_eq!(code, "payload_too_large");
    let plugins = json_of(admin(&server, Method::GET, "/api/admin/plugins", None).await).await;
    assert_eq!(plugins, json!([]));
    server.stop().await;
}

#[tokio::test]
async fn calls_beyond_the_instance_pool_get_503_and_the_rest_run() {
    let (server, key) = setup(|config| config.plugin_instances = 2).await;
    let mut faults = manifest("faults", "1.0.0");
    faults["limits"] = json!({ "timeout_ms": 1500 });
    assert_eq!(
        server
            .upload_plugin(&faults, plugin_wasm("faults"), true)
            .await
            .status(),
        StatusCode::CREATED
    );
    let server = Arc::new(server);
    // Four spinning calls hold the pool's two slots for 1.5 s each.
    let mut calls = Vec::new();
    for _ in 0..4 {
        let (server, key) = (server.clone(), key.clone());
        calls.push(tokio::spawn(async move {
            let response = server.call_tool(&key, "faults", "spin", &json!({})).await;
            let status = response.status();
            (status, error_of(response).await.0)
        }));
    }
    let mut outcomes = Vec::new();
    for call in calls {
        outcomes.push(call.await.unwrap());
    }
    let timeouts = outcomes
        .iter()
        .filter(|(s, _)| *s == StatusCode::GATEWAY_TIMEOUT)
        .count();
    let refused = outcomes
        .iter()
        .filter(|(s, c)| *s == StatusCode::SERVICE_UNAVAILABLE && c == "unavailable")
        .count();
    assert_eq!((timeouts, refused), (2, 2), "{outcomes:?}");
    // Slots come back: the next call runs.
    let response = server.call_tool(&key, "faults", "ok", &json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    Arc::into_inner(server).unwrap().stop().await;
}

#[tokio::test]
async fn spinning_plugins_do_not_starve_other_requests() {
    // The test server shares this test's single executor thread with the spinning
    // calls, the harshest case: without yielding, /healthz would wait for them.
    let (server, key) = setup(|_| {}).await;
    let mut faults = manifest("faults", "1.0.0");
    faults["limits"] = json!({ "timeout_ms": 3000 });
    assert_eq!(
        server
            .upload_plugin(&faults, plugin_wasm("faults"), true)
            .await
            .status(),
        StatusCode::CREATED
    );
    let server = Arc::new(server);
    let spins: Vec<_> = (0..2)
        .map(|_| {
            let (server, key) = (server.clone(), key.clone());
            tokio::spawn(async move {
                server
                    .call_tool(&key, "faults", "spin", &json!({}))
                    .await
                    .status()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let health = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "health waited {:?}",
        started.elapsed()
    );
    for spin in spins {
        assert_eq!(spin.await.unwrap(), StatusCode::GATEWAY_TIMEOUT);
    }
    Arc::into_inner(server).unwrap().stop().await;
}
