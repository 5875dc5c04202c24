//! Outbound webhooks: events POSTed to a real receiver on loopback, signed as Standard
//! Webhooks says and verified by the spec's own Python library; retries keep the
//! `webhook-id`; 410 and repeated failures disable the webhook with an event; secrets
//! rotate with both signing; the egress rule refuses private addresses, in the URL and
//! in what a name resolves to; two hosts send each event once.

mod receiver;

use std::time::Duration;

use agenthost::Config;
use agenthost::capabilities::http::Network;
use agenthost_tests::{StatusCode, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

use receiver::{Receiver, verify};

fn loopback() -> Vec<Network> {
    vec![Network::parse("127.0.0.0/8").unwrap()]
}

/// A host that sends webhooks to loopback, quickly: attempts at once, after 1.1 s (a
/// new `webhook-timestamp` second), after 0.2 s; disabled after two exhausted in a row.
fn delivering(config: &mut Config) {
    config.webhook_workers = 4;
    config.webhook_allow_private_networks = loopback();
    config.webhook_retry_schedule = vec![
        Duration::ZERO,
        Duration::from_millis(1100),
        Duration::from_millis(200),
    ];
    config.webhook_disable_after = 2;
}

struct Hooks {
    server: TestServer,
    workspace: String,
    owner: String,
    receiver: Receiver,
    base: String,
}

impl Hooks {
    async fn start(change: impl FnOnce(&mut Config)) -> Hooks {
        let server = TestServer::start_with(change).await;
        let (workspace, owner) = server.create_workspace("hooks").await;
        let (receiver, base) = Receiver::start().await;
        Hooks {
            server,
            workspace,
            owner,
            receiver,
            base,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let response = self.server.send(&self.owner, method, path, body).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, body)
    }

    /// A webhook to `path` on the receiver; its (id, secret).
    async fn webhook(&self, path: &str, types: &[&str], secret: Option<&str>) -> (String, String) {
        let mut body = json!({"url": format!("{}{path}", self.base), "event_types": types});
        if let Some(secret) = secret {
            body["secret"] = json!(secret);
        }
        let (status, created) = self.call(Method::POST, "/api/webhooks", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        (
            created["id"].as_str().unwrap().to_string(),
            created["secret"].as_str().unwrap().to_string(),
        )
    }

    /// A ticket, so a `ticket.created` event; the ticket's id.
    async fn ticket(&self, subject: &str) -> String {
        let body = json!({"subject": subject, "requester": {"email": "ada@example.com"}});
        let (status, ticket) = self.call(Method::POST, "/api/tickets", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{ticket}");
        ticket["id"].as_str().unwrap().to_string()
    }

    async fn deliveries(&self, webhook: &str) -> Vec<Value> {
        let path = format!("/api/webhooks/{webhook}/deliveries");
        let (status, page) = self.call(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["deliveries"].as_array().unwrap().clone()
    }

    /// The webhook's deliveries once `done` says they are settled (or after 60 s).
    async fn deliveries_until(&self, webhook: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        for _ in 0..3000 {
            let deliveries = self.deliveries(webhook).await;
            if done(&deliveries) {
                return deliveries;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "deliveries never settled: {:?}",
            self.deliveries(webhook).await
        );
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

fn all_finished(deliveries: &[Value], count: usize) -> bool {
    deliveries.len() >= count && deliveries.iter().all(|d| d["status"] != "pending")
}

#[tokio::test]
async fn deliveries_are_signed_as_standard_webhooks_and_verified_by_the_official_library() {
    let h = Hooks::start(delivering).await;
    let (id, secret) = h.webhook("/in", &["ticket.created"], None).await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    let shown = h.get(&format!("/api/webhooks/{id}")).await;
    assert!(
        shown.get("secret").is_none(),
        "the secret is shown once: {shown}"
    );
    let tickets = [h.ticket("First").await, h.ticket("Second").await];

    let requests = h.receiver.wait_for("/in", 2).await;
    let results = verify(&[&secret], &requests).await;
    for (request, result) in requests.iter().zip(&results) {
        assert_eq!(result[0]["ok"], true, "{result:?}");
        let event = &result[0]["payload"];
        assert_eq!(event["type"], "ticket.created");
        assert_eq!(request.header("webhook-id"), event["id"].as_str().unwrap());
        assert_eq!(request.header("content-type"), "application/json");
        assert!(tickets.contains(&event["subject"].as_str().unwrap().to_string()));
    }
    // A body changed on the way, or another key, does not verify.
    let mut tampered = requests[0].clone();
    tampered.body = tampered.body.replace("First", "Forged");
    let other = format!("whsec_{}", "A".repeat(43) + "=");
    let refused = verify(&[&secret, &other], &[tampered, requests[1].clone()]).await;
    assert_eq!(refused[0][0]["error"], "No matching signature found");
    assert_eq!(refused[1][1]["error"], "No matching signature found");

    let deliveries = h.deliveries_until(&id, |d| all_finished(d, 2)).await;
    for delivery in &deliveries {
        assert_eq!(delivery["status"], "succeeded", "{delivery}");
        assert_eq!(delivery["attempts"], 1);
        assert_eq!(delivery["response_status"], 200);
        assert_eq!(delivery["event_type"], "ticket.created");
        assert!(delivery["next_attempt_at"].is_null());
    }
    assert_eq!(h.receiver.on("/in").len(), 2, "sent once each");
    // Counted by outcome (process-wide counters: other tests' attempts add up too).
    let metrics = h
        .server
        .send(agenthost_tests::ADMIN_TOKEN, Method::GET, "/metrics", None)
        .await
        .text()
        .await
        .unwrap();
    let succeeded: f64 = metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix("agenthost_webhook_attempts_total{outcome=\"succeeded\"} ")
        })
        .expect("the attempts counter")
        .parse()
        .unwrap();
    assert!(succeeded >= 2.0, "{succeeded}");
}

#[tokio::test]
async fn a_failed_attempt_is_retried_with_the_same_webhook_id_and_a_new_timestamp() {
    let h = Hooks::start(delivering).await;
    h.receiver.script("/flaky", &[(500, None)]);
    let (id, secret) = h.webhook("/flaky", &["ticket"], None).await;
    h.ticket("Retried").await;

    let requests = h.receiver.wait_for("/flaky", 2).await;
    let (first, second) = (&requests[0], &requests[1]);
    assert_eq!(first.header("webhook-id"), second.header("webhook-id"));
    assert_eq!(
        first.body, second.body,
        "every attempt sends the same bytes"
    );
    assert_ne!(
        first.header("webhook-timestamp"),
        second.header("webhook-timestamp")
    );
    let results = verify(&[&secret], &requests).await;
    assert!(results.iter().all(|r| r[0]["ok"] == true), "{results:?}");

    let deliveries = h.deliveries_until(&id, |d| all_finished(d, 1)).await;
    assert_eq!(deliveries[0]["status"], "succeeded");
    assert_eq!(deliveries[0]["attempts"], 2);
    let detail = h
        .get(&format!(
            "/api/webhooks/{id}/deliveries/{}",
            deliveries[0]["id"].as_str().unwrap()
        ))
        .await;
    let log = detail["attempt_log"].as_array().unwrap();
    assert_eq!(log[0]["response_status"], 500);
    assert_eq!(
        log[0]["error"],
        "the endpoint answered 500 Internal Server Error"
    );
    assert_eq!(log[0]["response_excerpt"], "thanks");
    assert_eq!(log[1]["response_status"], 200);
    assert!(log[1]["error"].is_null());
    assert_eq!(detail["body"].as_str().unwrap(), first.body);
}

#[tokio::test]
async fn retry_after_on_429_and_503_puts_the_next_attempt_that_far_out() {
    let h = Hooks::start(delivering).await;
    h.receiver.answer_always("/busy", (503, Some("120")));
    h.receiver.answer_always("/slow-down", (429, Some("90")));
    let (busy, _) = h.webhook("/busy", &["ticket.created"], None).await;
    let (slow, _) = h.webhook("/slow-down", &["ticket.created"], None).await;
    h.ticket("Later").await;
    for (webhook, asked) in [(busy, 120), (slow, 90)] {
        let deliveries = h
            .deliveries_until(&webhook, |d| d.first().is_some_and(|d| d["attempts"] == 1))
            .await;
        let delivery = &deliveries[0];
        assert_eq!(delivery["status"], "pending");
        let at = |field: &str| {
            chrono::DateTime::parse_from_rfc3339(delivery[field].as_str().unwrap()).unwrap()
        };
        let wait = at("next_attempt_at") - at("last_attempt_at");
        assert!(wait.num_seconds() >= asked, "{delivery}");
        assert!(wait.num_seconds() < asked + 60, "{delivery}");
    }
}

#[tokio::test]
async fn a_410_disables_the_webhook_and_another_webhook_hears_of_it() {
    let h = Hooks::start(delivering).await;
    h.receiver.answer_always("/gone", (410, None));
    let (gone, _) = h.webhook("/gone", &["ticket.created"], None).await;
    let (_, watcher_secret) = h.webhook("/watch", &["webhook"], None).await;
    h.ticket("Nobody home").await;

    let heard = h.receiver.wait_for("/watch", 2).await;
    let results = verify(&[&watcher_secret], &heard).await;
    let mut events: Vec<Value> = results.iter().map(|r| r[0]["payload"].clone()).collect();
    events.sort_by_key(|e| e["type"].as_str().unwrap().to_string());
    assert_eq!(events[0]["type"], "webhook.delivery.failed");
    assert_eq!(events[0]["payload"]["response_status"], 410);
    assert_eq!(events[1]["type"], "webhook.disabled");
    assert_eq!(events[1]["payload"]["webhook_id"], gone.as_str());
    assert_eq!(
        events[1]["payload"]["reason"],
        "the endpoint answered 410 Gone"
    );
    assert_eq!(events[1]["actor"], "system:webhooks");
    // Each payload matches its type's published schema.
    let catalogue = h.get("/api/event-types").await;
    for event in &events {
        let entry = catalogue["event_types"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == event["type"])
            .unwrap();
        let validator = jsonschema::validator_for(&entry["payload"]).unwrap();
        assert!(validator.is_valid(&event["payload"]), "{event}");
    }

    let webhook = h.get(&format!("/api/webhooks/{gone}")).await;
    assert_eq!(webhook["enabled"], false);
    assert_eq!(webhook["disabled_reason"], "the endpoint answered 410 Gone");
    let deliveries = h.deliveries(&gone).await;
    assert_eq!(
        (deliveries.len(), &deliveries[0]["status"]),
        (1, &json!("failed"))
    );
    assert_eq!(deliveries[0]["attempts"], 1, "410 is not retried");
    // A disabled webhook is sent nothing more (by the time a webhook walked in the same
    // pass has the next event), and was not told about itself.
    h.webhook("/all", &["ticket.created"], None).await;
    h.ticket("Still nobody").await;
    h.receiver.wait_for("/all", 1).await;
    let sent = h.receiver.on("/gone");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].json()["type"], "ticket.created");
}

#[tokio::test]
async fn deliveries_failing_every_attempt_disable_the_webhook_after_two_in_a_row() {
    let h = Hooks::start(delivering).await;
    h.receiver.answer_always("/down", (500, None));
    let (id, _) = h.webhook("/down", &["ticket.created"], None).await;
    h.ticket("One").await;
    h.ticket("Two").await;

    let deliveries = h.deliveries_until(&id, |d| all_finished(d, 2)).await;
    for delivery in &deliveries {
        assert_eq!(delivery["status"], "failed", "{delivery}");
        assert_eq!(delivery["attempts"], 3, "the whole schedule: {delivery}");
    }
    let webhook = h.get(&format!("/api/webhooks/{id}")).await;
    assert_eq!(webhook["enabled"], false);
    assert_eq!(
        webhook["disabled_reason"],
        "2 deliveries in a row failed every attempt"
    );
    // The feed shows events once older transactions of the cluster end: wait for them.
    let mut types = Vec::new();
    for _ in 0..3000 {
        let events = h.get("/api/events?type=webhook").await;
        types = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect();
        if types.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Two transactions that ran at once: the feed orders them by transaction id.
    types.sort();
    assert_eq!(
        types,
        [
            "webhook.delivery.failed",
            "webhook.delivery.failed",
            "webhook.disabled"
        ]
    );

    // A retry by hand waits for the webhook to be enabled, and then gets one attempt.
    let first = deliveries[1]["id"].as_str().unwrap();
    let retry = format!("/api/webhooks/{id}/deliveries/{first}/retry");
    let (status, _) = h.call(Method::POST, &retry, None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    h.ticket("While disabled").await;
    h.receiver.answer_always("/down", (200, None));
    let patch = Some(json!({"enabled": true}));
    let (status, webhook) = h
        .call(Method::PATCH, &format!("/api/webhooks/{id}"), patch)
        .await;
    assert_eq!(
        (status, &webhook["enabled"]),
        (StatusCode::OK, &json!(true))
    );
    assert!(webhook["disabled_reason"].is_null());
    let (status, queued) = h.call(Method::POST, &retry, None).await;
    assert_eq!(
        (status, &queued["status"]),
        (StatusCode::ACCEPTED, &json!("pending"))
    );
    let retried = h
        .deliveries_until(&id, |d| d.iter().any(|d| d["status"] == "succeeded"))
        .await;
    let retried = retried.iter().find(|d| d["id"] == first).unwrap();
    assert_eq!(
        (&retried["status"], &retried["attempts"]),
        (&json!("succeeded"), &json!(4))
    );

    // Enabled again, it is sent what happens from then on, not what it missed.
    h.ticket("After").await;
    let deliveries = h
        .deliveries_until(&id, |d| d.len() >= 3 && all_finished(d, 3))
        .await;
    assert_eq!(deliveries.len(), 3, "{deliveries:?}");
    let newest = h.receiver.on("/down").last().unwrap().json();
    assert_eq!(newest["payload"]["subject"], "After");
}

#[tokio::test]
async fn a_rotated_secret_and_the_old_one_both_sign_for_a_day() {
    let h = Hooks::start(delivering).await;
    let own = format!("whsec_{}", "S2V5S2V5S2V5S2V5S2V5S2V5S2V5S2V5S2V5S2V5S2V5");
    let (id, secret) = h
        .webhook("/rotating", &["ticket.created"], Some(&own))
        .await;
    assert_eq!(secret, own, "a secret given is the one used");
    h.ticket("Before").await;
    h.receiver.wait_for("/rotating", 1).await;

    let path = format!("/api/webhooks/{id}/rotate-secret");
    let (status, rotated) = h.call(Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new, own);
    let until =
        chrono::DateTime::parse_from_rfc3339(rotated["previous_secret_until"].as_str().unwrap())
            .unwrap();
    let hours = (until.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes();
    assert!((23 * 60..=24 * 60).contains(&hours), "{rotated}");
    h.ticket("After").await;

    let requests = h.receiver.wait_for("/rotating", 2).await;
    assert_eq!(
        requests[0].header("webhook-signature").split(' ').count(),
        1
    );
    assert_eq!(
        requests[1].header("webhook-signature").split(' ').count(),
        2
    );
    let results = verify(&[&own, &new], &requests).await;
    assert_eq!(results[0][0]["ok"], true);
    assert_eq!(
        results[0][1]["ok"], false,
        "the new secret didn't sign before"
    );
    assert_eq!(results[1][0]["ok"], true, "the old secret still signs");
    assert_eq!(results[1][1]["ok"], true, "and the new one does");
}

#[tokio::test]
async fn private_urls_and_bad_input_are_refused_naming_the_field() {
    let h = Hooks::start(|_| {}).await;
    let post = |body: Value| h.call(Method::POST, "/api/webhooks", Some(body));
    let ok_types = json!(["ticket.created"]);
    for url in [
        "http://127.0.0.1:9/in",
        "http://localhost:9/in",
        "http://10.1.2.3/in",
        "http://169.254.169.254/latest",
        "http://[::1]/in",
        "http://2130706433/in",
    ] {
        let (status, body) = post(json!({"url": url, "event_types": ok_types})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("url: "), "{message}");
        assert!(
            message.contains("--webhook-allow-private-networks"),
            "{message}"
        );
    }
    let cases = [
        (
            json!({"url": "not a url", "event_types": ok_types}),
            "url: ",
        ),
        (
            json!({"url": "ftp://example.com/", "event_types": ok_types}),
            "url: ",
        ),
        (
            json!({"url": "https://u:p@example.com/", "event_types": ok_types}),
            "url: ",
        ),
        (
            json!({"url": "https://example.com/", "event_types": ["ticket.exploded"]}),
            "event_types[0]: ",
        ),
        (
            json!({"url": "https://example.com/", "event_types": []}),
            "event_types: ",
        ),
        (
            json!({"url": "https://example.com/", "event_types": ["kb", "kb"]}),
            "event_types[1]: ",
        ),
        (
            json!({"url": "https://example.com/", "event_types": ok_types, "secret": "whsec_c2hvcnQ="}),
            "secret: ",
        ),
        (
            json!({"url": "https://example.com/", "event_types": ok_types, "secret": "hunter2"}),
            "secret: ",
        ),
        (
            json!({"url": "https://example.com/", "event_types": ok_types, "description": "x".repeat(501)}),
            "description: ",
        ),
        (
            json!({"url": "https://example.com/", "event_types": ok_types, "secret": null}),
            "secret",
        ),
        (json!({"url": "https://example.com/"}), "event_types"),
        (
            json!({"url": "https://example.com/", "event_types": ok_types, "urls": []}),
            "urls",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = post(body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{body}: {message}");
    }

    // A public URL is fine (nothing is sent: this host sends no webhooks).
    let good = json!({"url": "https://hooks.example.com/in", "event_types": ["*"],
        "description": "x".repeat(500)});
    let (status, created) = post(good.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    let (status, body) = h
        .call(
            Method::PATCH,
            &format!("/api/webhooks/{id}"),
            Some(json!({"url": "http://10.0.0.1/"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let path = format!("/api/webhooks/{id}/deliveries?limit=101");
    assert_eq!(
        h.call(Method::GET, &path, None).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let unknown = format!("/api/webhooks/{}", uuid::Uuid::new_v4());
    assert_eq!(
        h.call(Method::GET, &unknown, None).await.0,
        StatusCode::NOT_FOUND
    );

    // Admins only, reading too.
    for role in ["member", "viewer"] {
        let (_, key) = h.server.create_key(&h.workspace, role).await;
        for method in [Method::GET, Method::POST] {
            let response = h
                .server
                .send(&key, method, "/api/webhooks", Some(good.clone()))
                .await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{role}");
        }
    }

    // At most 50 a workspace.
    for _ in 1..50 {
        assert_eq!(post(good.clone()).await.0, StatusCode::CREATED);
    }
    let (status, body) = post(good.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("50"));
    assert_eq!(
        h.get("/api/webhooks").await["webhooks"]
            .as_array()
            .unwrap()
            .len(),
        50
    );
    let (status, _) = h
        .call(Method::DELETE, &format!("/api/webhooks/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(post(good).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused_when_sent() {
    // Created where loopback is allowed; sent by a host that allows no private network
    // (as after an admin removed the flag): the check runs on the resolved address.
    let h = Hooks::start(|config| {
        config.webhook_allow_private_networks = vec![
            Network::parse("127.0.0.0/8").unwrap(),
            Network::parse("::1").unwrap(),
        ];
    })
    .await;
    let url = h.server.database_url.clone();
    let sender = TestServer::start_with(move |config| {
        config.database_url = Some(url);
        config.webhook_workers = 2;
    })
    .await;
    let (id, _) = h.webhook("/by-name", &["ticket.created"], None).await;
    let by_name = h.base.replace("127.0.0.1", "localhost");
    let body = json!({"url": format!("{by_name}/by-name")});
    let (status, _) = h
        .call(Method::PATCH, &format!("/api/webhooks/{id}"), Some(body))
        .await;
    assert_eq!(status, StatusCode::OK);
    h.ticket("Rebound").await;

    let deliveries = h
        .deliveries_until(&id, |d| d.first().is_some_and(|d| d["attempts"] == 1))
        .await;
    let error = deliveries[0]["error"].as_str().unwrap();
    assert!(
        error.starts_with("refused by the egress policy (localhost resolves to "),
        "{error}"
    );
    assert!(error.contains("loopback address"), "{error}");
    assert!(deliveries[0]["response_status"].is_null());
    assert!(
        h.receiver.on("/by-name").is_empty(),
        "nothing reached the receiver"
    );
    sender.stop().await;
}

#[tokio::test]
async fn two_hosts_send_each_event_once() {
    let h = Hooks::start(delivering).await;
    let url = h.server.database_url.clone();
    let replica = TestServer::start_with(move |config| {
        delivering(config);
        config.database_url = Some(url);
    })
    .await;
    let (id, _) = h.webhook("/both", &["ticket.created"], None).await;
    for n in 0..8 {
        h.ticket(&format!("Ticket {n}")).await;
    }
    let deliveries = h.deliveries_until(&id, |d| all_finished(d, 8)).await;
    assert!(
        deliveries
            .iter()
            .all(|d| d["status"] == "succeeded" && d["attempts"] == 1)
    );
    let requests = h.receiver.on("/both");
    let mut ids: Vec<&str> = requests.iter().map(|r| r.header("webhook-id")).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((requests.len(), ids.len()), (8, 8));
    replica.stop().await;
}

#[tokio::test]
async fn a_hanging_endpoint_holds_at_most_four_workers_and_the_others_go_on() {
    let h = Hooks::start(|config| {
        delivering(config);
        config.webhook_workers = 6;
    })
    .await;
    h.receiver.held.lock().unwrap().push("/hanging".into());
    let (hanging, _) = h.webhook("/hanging", &["ticket.created"], None).await;
    let (healthy, _) = h.webhook("/healthy", &["ticket.created"], None).await;
    for n in 0..8 {
        h.ticket(&format!("Ticket {n}")).await;
    }
    // Every delivery to the healthy endpoint goes through while four requests hang.
    h.deliveries_until(&healthy, |d| {
        all_finished(d, 8) && d.iter().all(|d| d["status"] == "succeeded")
    })
    .await;
    for _ in 0..3000 {
        if h.receiver.open("/hanging").0 == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(h.receiver.open("/hanging"), (4, 4));
    h.receiver.release.send_replace(true);
    let deliveries = h.deliveries_until(&hanging, |d| all_finished(d, 8)).await;
    assert!(
        deliveries.iter().all(|d| d["status"] == "succeeded"),
        "{deliveries:?}"
    );
    assert_eq!(
        h.receiver.open("/hanging").1,
        4,
        "never more than four at once"
    );
}

/// A host SIGKILLed while its attempt waits for an answer: once the lease ends (2 × the
/// 1 s timeout + 5 s), another host sends the delivery again, with the same
/// `webhook-id`, and records it.
#[tokio::test]
async fn an_attempt_cut_short_by_a_sigkill_is_sent_again_by_another_host() {
    let database_url = agenthost_tests::fresh_database().await;
    let data = tempfile::tempdir().unwrap();
    let admin = "aha_outbound-webhooks-admin";
    let host = agenthost_tests::HostProcess::start(
        data.path(),
        &[
            ("DATABASE_URL", database_url.as_str()),
            ("AGENTHOST_ADMIN_TOKEN", admin),
            ("AGENTHOST_RATE_LIMIT_PER_MINUTE", "0"),
            (
                "AGENTHOST_BUNDLED_PLUGINS_DIR",
                "/nonexistent/agenthost-no-bundled-plugins",
            ),
            ("AGENTHOST_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "127.0.0.0/8"),
            ("AGENTHOST_WEBHOOK_TIMEOUT", "1s"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let call = |token: &str, path: &str, body: Value| {
        client
            .post(host.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let response = call(
        admin,
        "/api/admin/workspaces",
        json!({"slug": "crash", "name": "Crash"}),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let owner = response.json::<Value>().await.unwrap()["owner_key"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let (receiver, base) = Receiver::start().await;
    receiver.held.lock().unwrap().push("/crash".into());
    let body = json!({"url": format!("{base}/crash"), "event_types": ["ticket.created"]});
    let response = call(&owner, "/api/webhooks", body).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let webhook = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ticket = json!({"subject": "Cut short", "requester": {"email": "ada@example.com"}});
    let response = call(&owner, "/api/tickets", ticket).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    for _ in 0..3000 {
        if receiver.open("/crash").0 == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(receiver.open("/crash").0, 1, "the first attempt is waiting");
    host.crash().await;
    receiver.release.send_replace(true);

    let url = database_url.clone();
    let next = TestServer::start_with(move |config| {
        delivering(config);
        config.webhook_timeout = Duration::from_secs(1);
        config.database_url = Some(url);
    })
    .await;
    let path = format!("/api/webhooks/{webhook}/deliveries");
    let mut delivery = Value::Null;
    for _ in 0..3000 {
        let response = next.send(&owner, Method::GET, &path, None).await;
        delivery = response.json::<Value>().await.unwrap()["deliveries"][0].clone();
        if delivery["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(delivery["status"], "succeeded", "{delivery}");
    assert_eq!(
        delivery["attempts"], 1,
        "the cut attempt was never recorded"
    );
    let sent = receiver.on("/crash");
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].header("webhook-id"), sent[1].header("webhook-id"));
    assert_eq!(sent[0].body, sent[1].body);
    next.stop().await;
}
