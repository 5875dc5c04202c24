//! Aura, the automation agent (issue 21): a chat against the fake OpenAI-protocol
//! provider whose scripted tool calls drive the real `aura` plugin through the real
//! `automation` interface: node-type search, a draft refused with problems and fixed,
//! a test run (Dexter asked through the agent node, an email to the loopback SMTP
//! server), publishing and scheduling behind the chat's approvals, a schedule that
//! fires, and the refusals: a member cannot publish, a viewer cannot chat, a plugin
//! without the grant is denied, bad input leaves nothing behind.

use std::time::Duration;

use agenthost_tests::aura_eval::install;
use agenthost_tests::fake_openai::{FakeOpenAi, Reply};
use agenthost_tests::smtp::SmtpSink;
use agenthost_tests::{StatusCode, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

const SENDER: &str = "reports@acme.test";
const ME: &str = "ada@acme.test";

struct Fixture {
    server: TestServer,
    fake: FakeOpenAi,
    smtp: SmtpSink,
    admin_key: String,
    workspace: String,
}

async fn fixture(grant_aura: bool) -> Fixture {
    let fake = FakeOpenAi::start().await;
    let smtp = SmtpSink::start().await;
    let (base, smtp_url) = (fake.base_url.clone(), smtp.url());
    let server = TestServer::start_with(move |config| {
        config.llm_base_url = Some(base);
        config.llm_max_retries = 0;
        config.smtp_url = Some(smtp_url);
    })
    .await;
    let (workspace, _) = server.create_workspace("automate").await;
    let (_, admin_key) = server.create_key(&workspace, "admin").await;
    install(&server, "nodes/core", "core", json!({}), false).await;
    install(
        &server,
        "nodes/email",
        "email",
        json!({"email": {"senders": [SENDER]}}),
        true,
    )
    .await;
    install(&server, "nodes/agent", "agent", json!({}), true).await;
    server.install_dexter().await;
    install(&server, "aura", "aura", json!({}), grant_aura).await;
    Fixture {
        server,
        fake,
        smtp,
        admin_key,
        workspace,
    }
}

fn call(id: &str, tool: &str, arguments: Value) -> Reply {
    Reply::ToolCalls(vec![(id.into(), tool.into(), arguments)])
}

impl Fixture {
    async fn chat(&self, key: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .server
            .send(key, Method::POST, "/api/agents/aura/chat", Some(body))
            .await;
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Approve every pending call of a paused turn and return the continued turn.
    async fn approve(&self, key: &str, paused: &Value) -> Value {
        assert_eq!(paused["status"], "awaiting_approval", "{paused}");
        let answers: Vec<Value> = paused["pending_approvals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| json!({"id": p["approval_id"], "approved": true}))
            .collect();
        let (status, done) = self
            .chat(
                key,
                json!({"conversation_id": paused["conversation_id"], "approvals": answers}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{done}");
        done
    }

    async fn get(&self, path: &str) -> Value {
        let response = self
            .server
            .send(&self.admin_key, Method::GET, path, None)
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.json().await.unwrap()
    }
}

/// The report: Dexter asked through the agent node, his answer emailed. `subject`
/// left out gives the draft a problem to fix.
fn report(with_subject: bool) -> Value {
    let mut mail = json!({"from": SENDER, "to": ME, "text": "{{ nodes.revenue.output.text }}"});
    if with_subject {
        mail["subject"] = json!("Yesterday's revenue");
    }
    json!({
        "nodes": [
            {"id": "revenue", "type": "agent/turn",
             "config": {"agent": "dexter", "message": "What was yesterday's revenue?"}},
            {"id": "mail", "type": "email/send", "config": mail}
        ],
        "edges": [{"from": "revenue", "to": "mail"}]
    })
}

/// The tool calls of a turn's answer: (tool, outcome, output).
fn calls(turn: &Value) -> Vec<(String, String, Value)> {
    turn["tool_calls"]
        .as_array()
        .map(|calls| {
            calls
                .iter()
                .map(|c| {
                    (
                        c["tool"].as_str().unwrap_or_default().to_string(),
                        c["outcome"].as_str().unwrap_or_default().to_string(),
                        c["output"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn aura_builds_tests_publishes_and_schedules_a_daily_report_from_a_chat() {
    let f = fixture(true).await;
    let slug = "daily-revenue-report";
    // Step by step, as a model would: search, a draft with a problem, the fix, a test
    // run (in which Dexter's own turn takes the next two replies), then publish.
    f.fake.reply(Reply::ToolCalls(vec![
        (
            "c1".into(),
            "find_node_types".into(),
            json!({"query": "send email"}),
        ),
        (
            "c2".into(),
            "find_node_types".into(),
            json!({"query": "ask an agent for revenue"}),
        ),
    ]));
    f.fake.reply(call(
        "c3",
        "save_draft",
        json!({"workflow": slug, "name": "Daily revenue report", "definition": report(false)}),
    ));
    f.fake.reply(call(
        "c4",
        "save_draft",
        json!({"workflow": slug, "name": "Daily revenue report", "definition": report(true)}),
    ));
    f.fake
        .reply(call("c5", "test_draft", json!({"workflow": slug})));
    f.fake
        .reply(call("d1", "revenue_analysis", json!({"period": "2025-Q4"})));
    f.fake
        .reply(Reply::Text("Revenue yesterday: 1234 EUR.".into()));
    f.fake
        .reply(call("c6", "publish_workflow", json!({"workflow": slug})));
    let message = "Schedule a daily revenue report at 08:00 Europe/Berlin and email it to me";
    let (status, paused) = f.chat(&f.admin_key, json!({"message": message})).await;
    assert_eq!(status, StatusCode::OK, "{paused}");

    let steps = calls(&paused);
    let tools: Vec<&str> = steps.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(
        tools,
        [
            "find_node_types",
            "find_node_types",
            "save_draft",
            "save_draft",
            "test_draft"
        ]
    );
    // The search found the exact types with their config schemas.
    let found = |i: usize| {
        steps[i].2["node_types"][0]["type"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        (found(0).as_str(), found(1).as_str()),
        ("email/send", "agent/turn")
    );
    assert!(steps[0].2["node_types"][0]["config_schema"]["properties"]["subject"].is_object());
    // The first draft had a problem, told as a line with its path; nothing was saved.
    let refused = &steps[2].2;
    assert_eq!(refused["ok"], false, "{refused}");
    let problems = refused["problems"].as_str().unwrap();
    assert!(problems.contains("nodes[1].config"), "{problems}");
    assert!(problems.contains("subject"), "{problems}");
    // The fix was saved, summarised, with a link.
    let saved = &steps[3].2;
    assert_eq!(saved["ok"], true, "{saved}");
    assert!(
        saved["summary"]
            .as_str()
            .unwrap()
            .contains("emails ada@acme.test"),
        "{saved}"
    );
    assert_eq!(saved["link"], format!("/api/workflow-drafts/{slug}"));
    // The test run really ran: Dexter's figure went out by email; it is a test.
    let tested = &steps[4].2;
    assert_eq!(
        (tested["status"].as_str(), tested["test"].as_bool()),
        (Some("succeeded"), Some(true)),
        "{tested}"
    );
    assert_eq!(tested["workflow"], slug);
    let mails = f.smtp.messages();
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].data.contains("Revenue yesterday: 1234 EUR."),
        "{}",
        mails[0].data
    );
    // Not live yet: nothing published, no schedule; the chat waits for a person.
    let workflows = f.get("/api/workflows").await;
    assert_eq!(
        workflows["workflows"].as_array().unwrap().len(),
        0,
        "{workflows}"
    );
    assert_eq!(paused["pending_approvals"][0]["tool"], "publish_workflow");

    // Approved: the draft becomes version 1; then Aura schedules it (approved too).
    f.fake.reply(call(
        "c7",
        "schedule_workflow",
        json!({"workflow": slug, "cron": "0 8 * * *", "timezone": "Europe/Berlin",
               "name": "Daily revenue report"}),
    ));
    let published = f.approve(&f.admin_key, &paused).await;
    let publish = &calls(&published)[0];
    assert_eq!(
        (publish.0.as_str(), publish.1.as_str()),
        ("publish_workflow", "ok"),
        "{published}"
    );
    assert_eq!(publish.2["version"], 1);
    assert_eq!(publish.2["link"], format!("/api/workflows/{slug}"));
    f.fake.reply(Reply::Text(
        "Done: it runs every day at 08:00 Berlin time.".into(),
    ));
    let done = f.approve(&f.admin_key, &published).await;
    let scheduled = &calls(&done)[0];
    assert_eq!(scheduled.1, "ok", "{done}");
    let next = scheduled.2["next_runs"][0].as_str().unwrap();
    // December in Berlin is CET: 08:00 there is 07:00 UTC.
    assert!(next.contains("08:00 CET (07:00 UTC)"), "{next}");
    assert_eq!(done["status"], "completed");
    let drafts = f.get("/api/workflow-drafts").await;
    assert_eq!(
        drafts["drafts"].as_array().unwrap().len(),
        0,
        "published drafts are gone"
    );
    let schedule_id = scheduled.2["id"].as_str().unwrap().to_string();
    let schedule = f.get(&format!("/api/schedules/{schedule_id}")).await;
    assert_eq!(schedule["workflow"], slug);
    assert_eq!(
        schedule["created_by"].as_str().unwrap().split(' ').next(),
        Some("plugin:aura")
    );
    let audit: Vec<(String, String)> = sqlx::query_as(
        "SELECT actor, action FROM audit_log WHERE workspace_id = $1::uuid AND actor LIKE 'plugin:aura%' ORDER BY id",
    )
    .bind(&f.workspace)
    .fetch_all(&sqlx::PgPool::connect(&f.server.database_url).await.unwrap())
    .await
    .unwrap();
    let actions: Vec<&str> = audit.iter().map(|(_, a)| a.as_str()).collect();
    assert_eq!(actions, ["workflow.published", "schedule.created"]);
    assert!(audit[0].0.starts_with("plugin:aura for key:"), "{audit:?}");

    // Across the March change: the same wall time moves from CET to CEST.
    f.fake.reply(call(
        "c8",
        "schedule_workflow",
        json!({"workflow": slug, "cron": "0 8 26-29 3 *", "timezone": "Europe/Berlin"}),
    ));
    let (_, paused) = f
        .chat(&f.admin_key, json!({"message": "And in late March?"}))
        .await;
    f.fake.reply(Reply::Text("Scheduled.".into()));
    let done = f.approve(&f.admin_key, &paused).await;
    let runs = calls(&done)[0].2["next_runs"].clone();
    assert_eq!(
        runs,
        json!([
            "Fri 2027-03-26 08:00 CET (07:00 UTC)",
            "Sat 2027-03-27 08:00 CET (07:00 UTC)",
            "Sun 2027-03-28 08:00 CEST (06:00 UTC)"
        ])
    );
}

#[tokio::test]
async fn a_schedule_aura_made_fires_and_sends_the_report() {
    let f = fixture(true).await;
    let slug = "quick-report";
    // Published by an admin directly; Aura schedules it every second.
    let response = f
        .server
        .send(
            &f.admin_key,
            Method::POST,
            "/api/workflows",
            Some(json!({"slug": slug, "name": "Quick report", "definition": report(true)})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    f.fake.reply(call(
        "s1",
        "schedule_workflow",
        json!({"workflow": slug, "every": "1s"}),
    ));
    let (_, paused) = f
        .chat(&f.admin_key, json!({"message": "Send it every second"}))
        .await;
    f.fake.reply(Reply::Text("Scheduled.".into()));
    let done = f.approve(&f.admin_key, &paused).await;
    let schedule_id = calls(&done)[0].2["id"].as_str().unwrap().to_string();
    // Unscripted model requests (Dexter's, in each run) get an echo; the email goes out.
    let mut waited = 0;
    while f.smtp.messages().is_empty() {
        assert!(waited < 300, "no email from the schedule after 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(
        f.smtp.messages()[0].header("Subject").as_deref(),
        Some("Yesterday's revenue")
    );
    // Aura pauses it; a member may pause.
    f.fake.reply(call(
        "s2",
        "pause_schedule",
        json!({"schedule_id": schedule_id}),
    ));
    f.fake.reply(Reply::Text("Paused.".into()));
    let (_, paused) = f.chat(&f.admin_key, json!({"message": "Stop it"})).await;
    assert_eq!(calls(&paused)[0].1, "ok", "{paused}");
    let schedule = f.get(&format!("/api/schedules/{schedule_id}")).await;
    assert_eq!(schedule["status"], "paused");
}

#[tokio::test]
async fn a_member_cannot_publish_a_viewer_cannot_chat_and_an_ungranted_plugin_is_denied() {
    let f = fixture(true).await;
    let (_, member) = f.server.create_key(&f.workspace, "member").await;
    let (_, viewer) = f.server.create_key(&f.workspace, "viewer").await;
    let slug = "member-draft";
    let simple = json!({"nodes": [{"id": "out", "type": "core/output", "config": {"value": 1}}]});
    f.fake.reply(call(
        "m1",
        "save_draft",
        json!({"workflow": slug, "name": "Mine", "definition": simple}),
    ));
    f.fake
        .reply(call("m2", "publish_workflow", json!({"workflow": slug})));
    let (status, paused) = f
        .chat(&member, json!({"message": "Build and publish it"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    // A member may draft…
    assert_eq!(calls(&paused)[0].2["ok"], true, "{paused}");
    // …and approve her own call, but publishing needs an admin: a clear refusal.
    f.fake.reply(Reply::Text("I could not publish it.".into()));
    let done = f.approve(&member, &paused).await;
    let (tool, outcome, _) = &calls(&done)[0];
    assert_eq!(
        (tool.as_str(), outcome.as_str()),
        ("publish_workflow", "tool_error"),
        "{done}"
    );
    let error = done["tool_calls"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("needs an admin key") && error.contains("a member"),
        "{error}"
    );
    let workflows = f.get("/api/workflows").await;
    assert_eq!(workflows["workflows"].as_array().unwrap().len(), 0);
    // A viewer's chat is refused before any tool (chat needs a member).
    let (status, _) = f.chat(&viewer, json!({"message": "publish it"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A plugin version without the automation grant: every call is denied.
    let g = fixture(false).await;
    let response = g
        .server
        .send(
            &g.admin_key,
            Method::POST,
            "/api/tools/aura/list_automations",
            Some(json!({})),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_client_error(), "{status} {body}");
    assert!(
        body.to_string()
            .contains("automation capability is not granted"),
        "{body}"
    );
}

#[tokio::test]
async fn every_wrong_argument_is_an_answer_to_fix_and_nothing_half_made_stays() {
    let f = fixture(true).await;
    let tool = |name: &str, input: Value| {
        let f = &f;
        let name = name.to_string();
        async move {
            let response = f
                .server
                .send(
                    &f.admin_key,
                    Method::POST,
                    &format!("/api/tools/aura/{name}"),
                    Some(input),
                )
                .await;
            let status = response.status();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let unknown = json!({"nodes": [{"id": "x", "type": "acme/teleport", "config": {}}]});
    let big = json!({"nodes": [{"id": "x", "type": "core/output",
                                "config": {"value": "x".repeat(300 * 1024)}}]});
    for (name, input, says) in [
        (
            "save_draft",
            json!({"workflow": "w", "name": "W", "definition": unknown}),
            "acme/teleport",
        ),
        (
            "save_draft",
            json!({"workflow": "w", "name": "W", "definition": big}),
            "262144",
        ),
        (
            "schedule_workflow",
            json!({"workflow": "nope", "cron": "0 8 * * *"}),
            "action.workflow",
        ),
        (
            "schedule_workflow",
            json!({"workflow": "nope", "cron": "61 25 * * *"}),
            "schedule",
        ),
        (
            "create_rule",
            json!({"name": "r", "event": "deal.won", "actions": [{"type": "send_email"}]}),
            "actions[0]",
        ),
    ] {
        let (status, answer) = tool(name, input).await;
        assert_eq!(status, StatusCode::OK, "{name}: {answer}");
        let output = &answer["output"];
        assert_eq!(output["ok"], false, "{name}: {output}");
        assert!(
            output["problems"].as_str().unwrap().contains(says),
            "{name}: {output}"
        );
    }
    // 10 MB of config: the REST body limit refuses it before the plugin sees it.
    let huge = json!({"workflow": "w", "name": "W", "definition": {"nodes": [{"id": "x",
        "type": "core/output", "config": {"value": "x".repeat(10 << 20)}}]}});
    let (status, _) = tool("save_draft", huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Test-running or publishing a draft that does not exist: not found, in words.
    let (status, answer) = tool("test_draft", json!({"workflow": "w"})).await;
    assert!(status.is_client_error(), "{answer}");
    assert!(answer.to_string().contains("save_draft first"), "{answer}");
    // Another workspace's workflow is not found from this one.
    let (other, _) = f.server.create_workspace("other").await;
    let (_, other_key) = f.server.create_key(&other, "admin").await;
    let response = f
        .server
        .send(
            &other_key,
            Method::POST,
            "/api/workflows",
            Some(json!({"slug": "theirs", "name": "Theirs",
                        "definition": {"nodes": [{"id": "o", "type": "core/output", "config": {"value": 1}}]}})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let (status, answer) = tool("run_workflow", json!({"workflow": "theirs"})).await;
    assert!(status.is_client_error(), "{answer}");
    assert!(answer.to_string().contains("no workflow"), "{answer}");
    // Nothing half-made: no draft, schedule, rule or workflow.
    for (path, field) in [
        ("/api/workflow-drafts", "drafts"),
        ("/api/schedules", "schedules"),
        ("/api/rules", "rules"),
        ("/api/workflows", "workflows"),
    ] {
        let listed = f.get(path).await;
        assert_eq!(
            listed[field].as_array().unwrap().len(),
            0,
            "{path}: {listed}"
        );
    }
}

#[tokio::test]
async fn a_test_run_sets_off_no_rule_and_the_published_run_does() {
    let f = fixture(true).await;
    let watch = "watch@acme.test";
    let rule = json!({"name": "Runs", "trigger": {"event": "workflow.execution.succeeded"},
        "actions": [{"type": "send_email", "from": SENDER, "to": watch,
                     "subject": "A run succeeded", "text": "{{ input.event.payload.workflow }}"}]});
    let response = f
        .server
        .send(&f.admin_key, Method::POST, "/api/rules", Some(rule))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let tool = |name: &'static str, input: Value| {
        let f = &f;
        async move {
            let response = f
                .server
                .send(
                    &f.admin_key,
                    Method::POST,
                    &format!("/api/tools/aura/{name}"),
                    Some(input),
                )
                .await;
            assert_eq!(response.status(), StatusCode::OK, "{name}");
            response.json::<Value>().await.unwrap()["output"].clone()
        }
    };
    let definition =
        json!({"nodes": [{"id": "out", "type": "core/output", "config": {"value": 1}}]});
    let saved = tool(
        "save_draft",
        json!({"workflow": "tiny", "name": "Tiny", "definition": definition}),
    )
    .await;
    assert_eq!(saved["ok"], true, "{saved}");
    let tested = tool("test_draft", json!({"workflow": "tiny"})).await;
    assert_eq!(
        (tested["status"].as_str(), tested["test"].as_bool()),
        (Some("succeeded"), Some(true))
    );
    assert_eq!(
        tool("publish_workflow", json!({"workflow": "tiny"})).await["version"],
        1
    );
    let ran = tool("run_workflow", json!({"workflow": "tiny"})).await;
    assert_eq!(
        (ran["status"].as_str(), ran["test"].as_bool()),
        (Some("succeeded"), Some(false))
    );
    // The rule walks events in order: once the published run's email is out, the test
    // run's earlier event has been judged, and passed over.
    let mut waited = 0;
    while f.smtp.messages().is_empty() {
        assert!(
            waited < 300,
            "the rule sent nothing for the published run in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mails = f.smtp.messages();
    assert_eq!(mails.len(), 1, "only the published run set the rule off");
    assert!(mails[0].data.contains("tiny"), "{}", mails[0].data);
}
