//! Prometheus `/metrics`: who may scrape it, and that requests, plugin calls and chat
//! turns move their series with bounded labels. The recorder is process-wide and other
//! tests run in the same process, so counters are compared before and after, by label.

use std::collections::BTreeMap;
use std::time::Duration;

use agenthost_tests::fake_openai::{FakeOpenAi, Reply};
use agenthost_tests::{ADMIN_TOKEN, HostProcess, StatusCode, TestServer, plugin_wasm, test_config};
use reqwest::Method;
use serde_json::json;

use super::dexter::fixture_with;
use super::plugins::{manifest, setup};

/// One sample of the text format: `name{label="value",...} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("name and value");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.strip_suffix('}').expect("closing brace")),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once("=\"").expect("label=\"value\"");
                    (key.to_string(), value.trim_end_matches('"').to_string())
                })
                .collect();
            Sample {
                name: name.to_string(),
                labels,
                value: value.parse().expect("a number"),
            }
        })
        .collect()
}

/// The sum of the series named `name` that carry all of `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(v))
        })
        .map(|s| s.value)
        .sum()
}

async fn scrape(server: &TestServer) -> Vec<Sample> {
    let response = server
        .send(ADMIN_TOKEN, Method::GET, "/metrics", None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    parse(&response.text().await.unwrap())
}

#[tokio::test]
async fn metrics_need_the_instance_admin_token() {
    let (server, member) = setup(|_| {}).await;
    let anonymous = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let response = server.send(&member, Method::GET, "/metrics", None).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let samples = scrape(&server).await;
    // Sampled from this server at the scrape.
    assert_eq!(value(&samples, "db_client_connection_max", &[]), 4.0);
    assert_eq!(value(&samples, "agenthost_plugin_instances_max", &[]), 32.0);
    for name in [
        "agenthost_workflow_queue_depth",
        "agenthost_workflow_queue_lag_seconds",
    ] {
        assert!(samples.iter().any(|s| s.name == name), "{name}");
    }
    let queued = |s: &Sample| s.labels.get("status").is_some_and(|v| v == "queued");
    assert!(
        samples
            .iter()
            .any(|s| s.name == "agenthost_support_jobs" && queued(s))
    );
    server.stop().await;
}

#[tokio::test]
async fn requests_and_plugin_calls_move_their_series() {
    let (server, member) = setup(|_| {}).await;
    let response = server
        .upload_plugin(&manifest("hello", "1.0.0"), plugin_wasm("hello"), true)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let before = scrape(&server).await;

    let agent = uuid::Uuid::new_v4().to_string();
    let path = format!("/api/agents/{agent}");
    let mut status = StatusCode::OK;
    for _ in 0..3 {
        status = server
            .send(&member, Method::GET, &path, None)
            .await
            .status();
    }
    let unknown = server
        .send(&member, Method::GET, "/api/no/such/route", None)
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    for _ in 0..2 {
        let response = server
            .call_tool(&member, "hello", "greet", &json!({"name": "Ada"}))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let after = scrape(&server).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };

    let status = status.as_u16().to_string();
    let agents = [
        ("method", "GET"),
        ("route", "/api/agents/{agent}"),
        ("status", status.as_str()),
    ];
    assert!(moved("http_server_request_duration_seconds_count", &agents) >= 3.0);
    let le = [agents.as_slice(), &[("le", "+Inf")]].concat();
    assert!(moved("http_server_request_duration_seconds_bucket", &le) >= 3.0);
    let unmatched = [("route", "unmatched"), ("status", "404")];
    assert!(moved("http_server_request_duration_seconds_count", &unmatched) >= 1.0);
    let tools = [("route", "/api/tools/{plugin}/{tool}"), ("status", "200")];
    assert!(moved("http_server_request_duration_seconds_count", &tools) >= 2.0);
    // Raw paths never become labels.
    for sample in &after {
        for label in sample.labels.values() {
            assert!(
                !label.contains(&agent) && !label.contains("/no/such"),
                "{sample:?}"
            );
        }
    }
    let buckets: Vec<&str> = after
        .iter()
        .filter(|s| s.name == "http_server_request_duration_seconds_bucket")
        .filter_map(|s| s.labels.get("le").map(String::as_str))
        .collect();
    assert!(
        buckets.contains(&"0.005") && buckets.contains(&"10"),
        "{buckets:?}"
    );

    let hello = [("plugin", "hello"), ("version", "1.0.0"), ("outcome", "ok")];
    assert!(moved("agenthost_plugin_calls_total", &hello) >= 2.0);
    assert!(moved("agenthost_plugin_call_duration_seconds_count", &hello) >= 2.0);
    assert!(moved("agenthost_plugin_call_duration_seconds_sum", &hello) > 0.0);
    assert!(
        after
            .iter()
            .any(|s| s.name == "agenthost_plugin_instances_in_use")
    );
    server.stop().await;
}

#[tokio::test]
async fn chat_turns_count_their_outcome_tokens_and_cost() {
    let fake = FakeOpenAi::start().await;
    let base = fake.base_url.clone();
    let f = fixture_with(move |config| {
        config.llm_base_url = Some(base);
        config.llm_max_retries = 0;
        config.llm_prices = r#"{"gpt-4o-mini": {"prompt": 0.15, "completion": 0.6}}"#.into();
    })
    .await;
    // The label is the agent's slug; other tests' agents share the process-wide
    // recorder, so this agent's slug is unique to this run.
    let agent = format!(
        "metrics-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let body = json!({ "slug": agent, "name": "Metrics", "role": "counts" });
    let created = f
        .server
        .send(&f.key, Method::POST, "/api/agents", Some(body))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let agent_id = created.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = scrape(&f.server).await;

    fake.reply(Reply::Text("Revenue was fine.".into()));
    let body = json!({ "message": "How was revenue?" });
    let path = format!("/api/agents/{agent}/chat");
    let response = f.server.send(&f.key, Method::POST, &path, Some(body)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let usage = response.json::<serde_json::Value>().await.unwrap()["usage"].clone();

    let after = scrape(&f.server).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    assert!(moved("agenthost_chat_turns_total", &[("outcome", "completed")]) >= 1.0);
    let input = [("agent", agent.as_str()), ("type", "input")];
    assert_eq!(moved("gen_ai_client_token_usage_count", &input), 1.0);
    assert_eq!(
        moved("gen_ai_client_token_usage_sum", &input),
        usage["prompt_tokens"].as_f64().unwrap()
    );
    let output = [("agent", agent.as_str()), ("type", "output")];
    assert_eq!(
        moved("gen_ai_client_token_usage_sum", &output),
        usage["completion_tokens"].as_f64().unwrap()
    );
    let cost = [("agent", agent.as_str()), ("model", "gpt-4o-mini")];
    assert_eq!(moved("agenthost_llm_cost_usd_count", &cost), 1.0);
    assert!(moved("agenthost_llm_cost_usd_sum", &cost) > 0.0);
    // Never the id, which a person can't read and dashboards don't expect.
    assert!(
        !after
            .iter()
            .any(|s| s.labels.get("agent") == Some(&agent_id)),
        "a series is labelled with the agent's id"
    );
    f.server.stop().await;
}

#[tokio::test]
async fn the_metrics_address_serves_the_same_without_credentials() {
    let mut config = test_config().await;
    config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let server = agenthost::Server::start(config).await.unwrap();
    let metrics_addr = server.metrics_addr.expect("a metrics address");
    assert_ne!(metrics_addr, server.addr);
    let client = reqwest::Client::new();
    let main = format!("http://{}", server.addr);
    let health = client.get(format!("{main}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    let response = client
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let samples = parse(&response.text().await.unwrap());
    let healthz = [("route", "/healthz"), ("status", "200")];
    assert!(
        value(
            &samples,
            "http_server_request_duration_seconds_count",
            &healthz
        ) >= 1.0
    );
    assert_eq!(value(&samples, "db_client_connection_max", &[]), 4.0);
    // Only /metrics there; the main address still wants the admin token.
    let other = client
        .get(format!("http://{metrics_addr}/api/admin/workspaces"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    let main_metrics = client.get(format!("{main}/metrics")).send().await.unwrap();
    assert_eq!(main_metrics.status(), StatusCode::UNAUTHORIZED);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn finished_executions_and_node_runs_are_counted_by_status() {
    let (server, _) = setup(|_| {}).await;
    let (_, key) = server.create_workspace("metrics-flows").await;
    let manifest = json!({"name": "core", "version": "0.1.0", "kind": "node"});
    let response = server
        .upload_plugin(&manifest, plugin_wasm("core"), true)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    for (slug, value) in [
        ("double", "{{ input.n * 2 }}"),
        ("broken", "{{ input.missing }}"),
    ] {
        let definition = json!({
            "nodes": [{"id": "a", "type": "core/transform", "config": {"value": value}}],
            "edges": []
        });
        let body = json!({"slug": slug, "name": slug, "definition": definition});
        let response = server
            .send(&key, Method::POST, "/api/workflows", Some(body))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let finished =
        |samples: &[Sample], name: &str, status: &str| value(samples, name, &[("status", status)]);
    let executions = "agenthost_workflow_executions_finished_total";
    let runs = "agenthost_workflow_node_runs_finished_total";
    let before = scrape(&server).await;
    // The recorder is process-wide: other tests' executions add up, so count deltas
    // that only this test's runs can explain as lower bounds.
    for (slug, expected) in [
        ("double", "succeeded"),
        ("double", "succeeded"),
        ("broken", "failed"),
    ] {
        let path = format!("/api/workflows/{slug}/executions?wait=20s");
        let response = server
            .send(&key, Method::POST, &path, Some(json!({"input": {"n": 2}})))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let execution: serde_json::Value = response.json().await.unwrap();
        assert_eq!(execution["status"], expected, "{execution}");
    }
    let after = scrape(&server).await;
    let delta =
        |name: &str, status: &str| finished(&after, name, status) - finished(&before, name, status);
    assert!(delta(executions, "succeeded") >= 2.0);
    assert!(delta(executions, "failed") >= 1.0);
    assert!(delta(runs, "succeeded") >= 2.0);
    assert!(delta(runs, "failed") >= 1.0);
    server.stop().await;
}

/// Every label's value comes from a set the operator controls (routes, agents, models,
/// plugins) or a fixed list, whatever clients send: unknown paths and methods, ids in
/// paths. Its own process, so the recorder holds only this host's series.
#[tokio::test]
async fn every_label_comes_from_a_bounded_set() {
    let fake = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let host = HostProcess::start(
        dir.path(),
        &[
            ("AGENTHOST_ADMIN_TOKEN", ADMIN_TOKEN),
            ("AGENTHOST_LLM_BASE_URL", &fake.base_url),
            ("AGENTHOST_LLM_MAX_RETRIES", "0"),
            ("AGENTHOST_RATE_LIMIT_PER_MINUTE", "0"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let send = |method: Method, path: &str, token: &str, body: Option<serde_json::Value>| {
        let mut request = client.request(method, host.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    let response = send(
        Method::POST,
        "/api/admin/workspaces",
        ADMIN_TOKEN,
        Some(json!({"slug": "labels", "name": "Labels"})),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let workspace: serde_json::Value = response.json().await.unwrap();
    let key = workspace["owner_key"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    for (slug, model) in [("first", "model-a"), ("second", "model-b")] {
        let body = json!({"slug": slug, "name": slug, "role": "answers", "model": model});
        let response = send(Method::POST, "/api/agents", &key, Some(body))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        for _ in 0..2 {
            fake.reply(Reply::Text("Fine.".into()));
            let body = json!({"message": "How are things?"});
            let path = format!("/api/agents/{slug}/chat");
            let response = send(Method::POST, &path, &key, Some(body)).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
    }
    // What a client can vary at will: paths, ids in paths, methods.
    for _ in 0..20 {
        let id = uuid::Uuid::new_v4();
        send(Method::GET, &format!("/nope/{id}"), &key, None)
            .await
            .unwrap();
        send(Method::GET, &format!("/api/agents/{id}"), &key, None)
            .await
            .unwrap();
        let method = Method::from_bytes(format!("X{}", id.simple()).as_bytes()).unwrap();
        send(method, "/healthz", &key, None).await.unwrap();
    }

    let response = send(Method::GET, "/metrics", ADMIN_TOKEN, None)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let samples = parse(&response.text().await.unwrap());
    let response = client.get(host.url("/openapi.json")).send().await.unwrap();
    let document: serde_json::Value = response.json().await.unwrap();
    let mut routes: Vec<String> = document["paths"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    // Served outside the document: the MCP endpoint and the docs page.
    routes.extend(["unmatched", "/mcp", "/docs", "/docs/", "/docs/{*rest}"].map(String::from));
    let agents = ["first", "second", "none"];
    let models = ["model-a", "model-b"];
    let allowed = |label: &str, value: &str| -> bool {
        match label {
            "method" => [
                "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "_OTHER",
            ]
            .contains(&value),
            "route" => routes.iter().any(|route| route == value),
            "status" => {
                value.len() == 3 && value.bytes().all(|b| b.is_ascii_digit())
                    || [
                        "running",
                        "waiting",
                        "ready",
                        "queued",
                        "succeeded",
                        "failed",
                        "cancelled",
                        "timed_out",
                    ]
                    .contains(&value)
            }
            "agent" => agents.contains(&value),
            "model" => models.contains(&value),
            "type" => ["input", "output"].contains(&value),
            "outcome" => [
                "completed",
                "failed",
                "cancelled",
                "ok",
                "tool_error",
                "timeout",
                "trap",
                "memory_limit",
                "fuel_exhausted",
                "no_capacity",
                "bad_output",
                "started",
                "skipped_cooldown",
                "skipped_limit",
            ]
            .contains(&value),
            "state" => ["idle", "used"].contains(&value),
            "subscriber" => ["event_trigger", "webhook", "rule", "nats"].contains(&value),
            "le" | "quantile" => value == "+Inf" || value.parse::<f64>().is_ok(),
            // No plugin was installed here; a new label must say what bounds it.
            _ => false,
        }
    };
    let mut unbounded = Vec::new();
    for sample in &samples {
        for (label, value) in &sample.labels {
            if !allowed(label, value) {
                unbounded.push(format!("{}{{{label}=\"{value}\"}}", sample.name));
            }
        }
    }
    assert_eq!(unbounded, Vec::<String>::new());
    let labelled = |label: &str, value: &str| {
        samples
            .iter()
            .any(|s| s.labels.get(label).map(String::as_str) == Some(value))
    };
    // The sets were exercised, so the check above had something to check.
    for (label, value) in [
        ("agent", "first"),
        ("agent", "second"),
        ("model", "model-b"),
        ("route", "unmatched"),
        ("route", "/api/agents/{agent}"),
        ("method", "_OTHER"),
    ] {
        assert!(labelled(label, value), "no series with {label}={value:?}");
    }
    host.stop().await;
}

/// The automation series: event lag per kind of subscriber (held back by an open
/// transaction, as readers stop below the oldest one, then back to 0 once delivered)
/// and schedule tick lateness (one sample per on-time tick).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_lag_and_tick_lateness_follow_the_subscribers_and_schedules() {
    let f = super::events::Feed::start().await;
    let server = &f.server;
    let follow = json!({
        "triggers": [{"type": "event", "event": "workflow.execution.succeeded",
                      "filter": "{{ event.payload.workflow == 'quick' }}"}],
        "nodes": [{"id": "out", "type": "core/output", "config": {"value": 1}}]
    });
    f.save("follow", follow).await;
    let lag = |samples: &[Sample]| {
        value(
            samples,
            "agenthost_event_lag_seconds",
            &[("subscriber", "event_trigger")],
        )
    };

    // An open transaction that has an id holds every reader of the feed below it.
    let mut held = f.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *held)
        .await
        .unwrap();
    let response = server
        .send(
            &f.member,
            Method::POST,
            "/api/workflows/quick/executions",
            Some(json!({"input": {}})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let mut behind = 0.0;
    for _ in 0..600 {
        behind = lag(&scrape(server).await);
        if behind >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(behind >= 1.0, "the lag stayed at {behind}");
    held.rollback().await.unwrap();
    // Delivered: `follow` starts, and its cursor passes every event.
    let mut caught_up = f64::MAX;
    for _ in 0..1200 {
        caught_up = lag(&scrape(server).await);
        if caught_up == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(caught_up, 0.0);
    let response = server
        .send(
            &f.viewer,
            Method::GET,
            "/api/executions?workflow=follow",
            None,
        )
        .await;
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["executions"].as_array().unwrap().len(), 1, "{body}");

    // A one-second schedule: each on-time tick adds a lateness sample.
    let ticks = |samples: &[Sample]| {
        value(
            samples,
            "agenthost_schedule_tick_lateness_seconds_count",
            &[],
        )
    };
    let before = ticks(&scrape(server).await);
    let task = json!({"name": "Every second", "schedule": {"every": "1s"},
        "action": {"type": "run_workflow", "workflow": "quick"}});
    let response = server
        .send(&f.member, Method::POST, "/api/schedules", Some(task))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let id = response.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut scheduled = 0;
    for _ in 0..600 {
        let response = server
            .send(
                &f.viewer,
                Method::GET,
                &format!("/api/schedules/{id}/runs"),
                None,
            )
            .await;
        let runs: serde_json::Value = response.json().await.unwrap();
        scheduled = runs["runs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["kind"] == "scheduled" && r["outcome"] == "started")
            .count();
        if scheduled >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(scheduled >= 2, "{scheduled} ticks started");
    let after = ticks(&scrape(server).await);
    assert!(after >= before + 2.0, "{before} -> {after}");
    let samples = scrape(server).await;
    for subscriber in ["event_trigger", "webhook", "nats"] {
        assert!(
            samples
                .iter()
                .any(|s| s.name == "agenthost_event_lag_seconds"
                    && s.labels.get("subscriber").map(String::as_str) == Some(subscriber)),
            "{subscriber}"
        );
    }
    f.server.stop().await;
}
