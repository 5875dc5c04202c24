//! Automation rules end to end: a won deal in an import sets off a rule whose email
//! reaches the SMTP sink once (two hosts walking the feed); conditions, cooldown, the
//! hourly limit and priority order; statistics and history; bad rules named by field.

use std::time::Duration;

use agenthost_tests::StatusCode;
use agenthost_tests::smtp::SmtpSink;
use reqwest::Method;
use serde_json::{Value, json};

use super::plugins::json_of;
use super::workflow_nodes::Nodes;

async fn start() -> (Nodes, SmtpSink) {
    let sink = SmtpSink::start().await;
    let smtp = sink.url();
    let nodes = Nodes::start(move |config| config.smtp_url = Some(smtp)).await;
    nodes
        .install(
            "email",
            json!({"email": {"senders": ["bot@acme.test"]}}),
            true,
        )
        .await;
    (nodes, sink)
}

async fn call(
    nodes: &Nodes,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = nodes.server.request(method, path, &nodes.admin);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, json_of(response).await)
}

async fn create(nodes: &Nodes, rule: Value) -> String {
    let (status, body) = call(nodes, Method::POST, "/api/rules", Some(rule)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_string()
}

fn email(subject: &str) -> Value {
    json!({"type": "send_email", "from": "bot@acme.test", "to": "sales@acme.test",
           "subject": subject, "text": "{{ input.event.type }} {{ input.event.id }}"})
}

async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..1500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn a_won_deal_sends_one_email_through_a_rule_with_two_hosts() {
    let (nodes, sink) = start().await;
    let smtp = sink.url();
    let replica = nodes
        .server
        .replica_with(move |config| config.smtp_url = Some(smtp))
        .await;
    let rule = create(
        &nodes,
        json!({
            "name": "Big wins to sales",
            "trigger": {"event": "deal.won"},
            "conditions": {"all": ["event.payload.amount > 1000"]},
            "actions": [email("Won {{ input.event.payload.external_id }}: {{ input.event.payload.amount }}")]
        }),
    )
    .await;
    let deals = json!([
        {"external_id": "d1", "amount": "1200.00", "stage": "closed_won", "won": true, "created_on": "2026-11-02"},
        {"external_id": "d2", "amount": "80.00", "stage": "proposal", "created_on": "2026-11-03"},
        {"external_id": "d3", "amount": "90.00", "stage": "closed_won", "won": true, "created_on": "2026-11-04"}
    ]);
    let (status, body) = nodes.server.import(&nodes.admin, "deals", &deals).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The same rows again: nothing turns won, nothing more is sent.
    nodes.server.import(&nodes.admin, "deals", &deals).await;
    until("the email", || async { !sink.messages().is_empty() }).await;
    until("the run to settle", || async {
        call(&nodes, Method::GET, &format!("/api/rules/{rule}"), None)
            .await
            .1["succeeded"]
            == 1
    })
    .await;
    // Several more passes of both walkers.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let subject = messages[0].header("subject").unwrap();
    assert!(subject.starts_with("Won d1: 1200"), "{subject}");
    let (_, stats) = call(&nodes, Method::GET, &format!("/api/rules/{rule}"), None).await;
    assert_eq!(
        (stats["matched"].clone(), stats["ran"].clone()),
        (json!(1), json!(1)),
        "{stats}"
    );
    let (_, history) = call(
        &nodes,
        Method::GET,
        &format!("/api/rules/{rule}/runs"),
        None,
    )
    .await;
    let runs = history["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["event_type"], "deal.won");
    assert_eq!(runs[0]["status"], "succeeded");
    // The rule's workflow is its own: not in the workflow list.
    let (_, workflows) = call(&nodes, Method::GET, "/api/workflows", None).await;
    assert!(
        workflows["workflows"].as_array().unwrap().is_empty(),
        "{workflows}"
    );
    replica.stop().await;
}

#[tokio::test]
async fn cooldown_hourly_limit_and_priority_decide_which_rules_run() {
    let (nodes, sink) = start().await;
    nodes
        .save(
            "quick",
            json!({"nodes": [{"id": "out", "type": "core/output", "config": {"value": 1}}]}),
        )
        .await;
    let quick = json!({"event": "workflow.execution.succeeded",
                       "filter": "event.payload.workflow == 'quick'"});
    let cooled = create(
        &nodes,
        json!({"name": "cooled", "trigger": quick, "cooldown": "1h", "priority": 1,
               "actions": [email("cooled")]}),
    )
    .await;
    let limited = create(
        &nodes,
        json!({"name": "limited", "trigger": quick, "max_per_hour": 2, "priority": 5,
               "actions": [email("limited")]}),
    )
    .await;
    let paused = create(
        &nodes,
        json!({"name": "paused", "trigger": quick, "priority": 9, "actions": [email("paused")]}),
    )
    .await;
    let (status, _) = call(
        &nodes,
        Method::POST,
        &format!("/api/rules/{paused}/pause"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for _ in 0..3 {
        nodes.run("quick", json!({})).await;
    }
    let stats = |id: String| {
        let nodes = &nodes;
        async move {
            call(nodes, Method::GET, &format!("/api/rules/{id}"), None)
                .await
                .1
        }
    };
    until("three events through both rules", || async {
        stats(cooled.clone()).await["matched"] == 3 && stats(limited.clone()).await["matched"] == 3
    })
    .await;
    let cooled_stats = stats(cooled.clone()).await;
    assert_eq!(
        (
            cooled_stats["ran"].clone(),
            cooled_stats["skipped_cooldown"].clone()
        ),
        (json!(1), json!(2))
    );
    let limited_stats = stats(limited.clone()).await;
    assert_eq!(
        (
            limited_stats["ran"].clone(),
            limited_stats["skipped_limit"].clone()
        ),
        (json!(2), json!(1))
    );
    assert_eq!(stats(paused.clone()).await["matched"], 0);
    until("three emails", || async { sink.messages().len() == 3 }).await;

    // Priority: for the first event both rules ran, the higher one started first.
    let order: Vec<String> = sqlx::query_scalar(
        "SELECT ru.name FROM rule_runs r JOIN rules ru ON ru.id = r.rule_id \
         JOIN executions e ON e.id = r.execution_id \
         WHERE r.event_id = (SELECT event_id FROM rule_runs ORDER BY at LIMIT 1) \
         ORDER BY e.created_at",
    )
    .fetch_all(&nodes.pool)
    .await
    .unwrap();
    assert_eq!(order, ["limited", "cooled"]);
    let (_, list) = call(&nodes, Method::GET, "/api/rules", None).await;
    let names: Vec<&str> = list["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["paused", "limited", "cooled"]);
}

#[tokio::test]
async fn bad_rules_are_named_by_field() {
    let (nodes, _sink) = start().await;
    for (rule, paths) in [
        (
            json!({"name": "x", "trigger": {"event": "Deal Won"}, "actions": [email("x")]}),
            vec!["trigger.event"],
        ),
        (
            json!({"name": "x", "trigger": {"event": "deal.won", "filter": "{{ x =="}, "actions": [email("x")]}),
            vec!["trigger.filter"],
        ),
        (
            json!({"name": "x", "trigger": {"event": "deal.won"}, "conditions": {"any": ["ok", "a =="]},
                "actions": [email("x")]}),
            vec!["conditions.any[1]"],
        ),
        (
            json!({"name": "x", "trigger": {"event": "deal.won"}, "cooldown": "a while", "max_per_hour": 0,
                "actions": [email("x")]}),
            vec!["cooldown", "max_per_hour"],
        ),
        (
            json!({"name": "x", "trigger": {"event": "deal.won"}, "actions": []}),
            vec!["actions"],
        ),
        (
            json!({"name": "x", "trigger": {"event": "deal.won"},
                "actions": [email("x"), {"type": "send_email", "from": "bot@acme.test"}]}),
            vec!["actions[1]"],
        ),
        (
            json!({"trigger": {"event": "deal.won"}}),
            vec!["name", "actions"],
        ),
    ] {
        let (status, body) = call(&nodes, Method::POST, "/api/rules", Some(rule.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{rule}: {body}");
        let found: Vec<&str> = body["error"]["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["path"].as_str().unwrap())
            .collect();
        for path in paths {
            assert!(
                found.iter().any(|f| f.starts_with(path)),
                "{rule}: {path} not in {found:?}"
            );
        }
    }
    let (status, _) = call(
        &nodes,
        Method::GET,
        &format!("/api/rules/{}", uuid::Uuid::new_v4()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let member = nodes
        .server
        .request(Method::POST, "/api/rules", &nodes.member)
        .json(&json!({"name": "x", "trigger": {"event": "deal.won"}, "actions": [email("x")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(member.status(), StatusCode::FORBIDDEN);
}
