//! Aura's evaluation (issue 21): twenty requests a person would make of her (build,
//! change, run, schedule, react to events, explain a failure), each judged by what
//! the workspace holds afterwards, not by what she says: a published workflow with the
//! right node types, a schedule with the right time, a rule on the right event, a run
//! of the right workflow, an explanation naming the failed step.
//!
//! Every approval is granted (the person says yes), so a request counts when the model
//! got the tools' contracts right. Each case also carries the calls a correct model
//! makes: with the fake provider they replay as a regression check of the contracts
//! (tests/tests/e2e/aura_eval.rs); with a real model (`eval-aura --llm-base-url`) they
//! are ignored and the score says how well that model uses the tools.

use std::collections::{HashMap, HashSet};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::TestServer;
use crate::fake_openai::Reply;

/// What must be true after a request.
#[derive(Debug, Clone)]
pub enum Check {
    /// A workflow published (new, or a new version) whose definition has these types.
    Publishes(&'static [&'static str]),
    /// Workflow `slug` got a new version whose definition's text contains this.
    Changes(&'static str, &'static str),
    /// A new schedule running `workflow` whose spec passes the test.
    Schedules(&'static str, fn(&Value) -> bool),
    /// A schedule of `workflow` is now paused.
    Pauses(&'static str),
    /// A new rule on this event type with an action of this type.
    Rule(&'static str, &'static str),
    /// A new (not test) execution of this workflow whose input passes the test.
    Runs(&'static str, fn(&Value) -> bool),
    /// The final answer names one of these, and a tool's output holds it.
    Answers(&'static [&'static str]),
    /// A workflow with these types is published and some schedule runs it (a schedule
    /// trigger in its definition, or a scheduled task).
    PublishesScheduled(&'static [&'static str]),
}

/// One request with the calls a correct model makes.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: &'static str,
    pub request: &'static str,
    pub check: Check,
    pub script: Vec<Reply>,
}

/// How one request went.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: &'static str,
    pub passed: bool,
    pub why: String,
    pub tools: Vec<String>,
    pub answer: String,
}

fn call(tool: &str, arguments: Value) -> Reply {
    Reply::ToolCalls(vec![(format!("call_{tool}"), tool.into(), arguments)])
}

fn done() -> Reply {
    Reply::Text("Done.".into())
}

fn node(id: &str, kind: &str, config: Value) -> Value {
    json!({"id": id, "type": kind, "config": config})
}

fn chain(nodes: Vec<Value>) -> Value {
    let edges: Vec<Value> = nodes
        .windows(2)
        .map(|pair| json!({"from": pair[0]["id"], "to": pair[1]["id"]}))
        .collect();
    json!({"nodes": nodes, "edges": edges})
}

fn mail(to: &str, subject: &str, text: &str) -> Value {
    node(
        "mail",
        "email/send",
        json!({"from": SENDER, "to": to, "subject": subject, "text": text}),
    )
}

/// The sender the eval's email node is granted.
pub const SENDER: &str = "aura@acme.test";

/// Draft then publish, then a short answer.
fn build(slug: &str, name: &str, definition: Value) -> Vec<Reply> {
    vec![
        call(
            "save_draft",
            json!({"workflow": slug, "name": name, "definition": definition}),
        ),
        call("publish_workflow", json!({"workflow": slug})),
        done(),
    ]
}

fn cron_is(spec: &Value, minute_hour: &str, weekdays: &[&str], zone: &str) -> bool {
    let cron = spec["cron"].as_str().unwrap_or_default();
    let fields: Vec<&str> = cron.split_whitespace().collect();
    fields.len() == 5
        && format!("{} {}", fields[0], fields[1]) == minute_hour
        && weekdays.contains(&fields[4].to_uppercase().as_str())
        && spec["timezone"].as_str() == Some(zone)
}

/// The twenty requests, on the workspace `seed` prepares.
pub fn cases() -> Vec<Case> {
    let reminder = chain(vec![mail(
        "billing@acme.test",
        "Invoice reminder",
        "Please pay.",
    )]);
    vec![
        Case {
            name: "build: email",
            request: "Create a workflow called invoice-alert that emails finance@acme.test the text 'Invoices are due' with the subject 'Invoices'.",
            check: Check::Publishes(&["email/send"]),
            script: build(
                "invoice-alert",
                "Invoice alert",
                chain(vec![mail(
                    "finance@acme.test",
                    "Invoices",
                    "Invoices are due",
                )]),
            ),
        },
        Case {
            name: "build: agent + email",
            request: "Build a workflow that asks Dexter for last month's revenue and emails his answer to ceo@acme.test.",
            check: Check::Publishes(&["agent/turn", "email/send"]),
            script: build(
                "monthly-revenue",
                "Monthly revenue",
                chain(vec![
                    node(
                        "ask",
                        "agent/turn",
                        json!({"agent": "dexter", "message": "What was last month's revenue?"}),
                    ),
                    mail("ceo@acme.test", "Revenue", "{{ nodes.ask.output.text }}"),
                ]),
            ),
        },
        Case {
            name: "build: http",
            request: "Make a workflow that posts {\"ping\": true} as JSON to https://hooks.acme.test/ping.",
            check: Check::Publishes(&["http/request"]),
            script: build(
                "ping-hook",
                "Ping hook",
                chain(vec![node(
                    "post",
                    "http/request",
                    json!({"url": "https://hooks.acme.test/ping", "method": "POST", "json": {"ping": true}}),
                )]),
            ),
        },
        Case {
            name: "build: approval",
            request: "Create a workflow that waits for a manager's approval and then emails ops@acme.test that it was approved.",
            check: Check::Publishes(&["core/approval", "email/send"]),
            script: {
                let mut definition = chain(vec![
                    node("approve", "core/approval", json!({"message": "Approve?"})),
                    mail("ops@acme.test", "Approved", "It was approved."),
                ]);
                definition["edges"][0]["branch"] = json!("approved");
                build("needs-approval", "Needs approval", definition)
            },
        },
        Case {
            name: "build: ticket",
            request: "Build a workflow that opens a support ticket with the subject from its input for the requester email in its input.",
            check: Check::Publishes(&["tickets/create"]),
            script: build(
                "open-ticket",
                "Open ticket",
                chain(vec![node(
                    "ticket",
                    "tickets/create",
                    json!({"subject": "{{ input.subject }}", "requester": "{{ input.email }}"}),
                )]),
            ),
        },
        Case {
            name: "build: condition",
            request: "Create a workflow that checks whether input.amount is over 1000 and only then emails sales@acme.test.",
            check: Check::Publishes(&["core/condition", "email/send"]),
            script: {
                let mut definition = chain(vec![
                    node(
                        "big",
                        "core/condition",
                        json!({"if": "{{ input.amount > 1000 }}"}),
                    ),
                    mail("sales@acme.test", "Big order", "Amount {{ input.amount }}"),
                ]);
                definition["edges"][0]["branch"] = json!("true");
                build("big-orders", "Big orders", definition)
            },
        },
        Case {
            name: "change: add a recipient",
            request: "Change the invoice-reminder workflow so it also emails cfo@acme.test.",
            check: Check::Changes("invoice-reminder", "cfo@acme.test"),
            script: vec![
                call("show_workflow", json!({"workflow": "invoice-reminder"})),
                call(
                    "save_draft",
                    json!({"workflow": "invoice-reminder", "name": "Invoice reminder",
                    "definition": chain(vec![node("mail", "email/send", json!({"from": SENDER,
                        "to": ["billing@acme.test", "cfo@acme.test"], "subject": "Invoice reminder", "text": "Please pay."}))])}),
                ),
                call("publish_workflow", json!({"workflow": "invoice-reminder"})),
                done(),
            ],
        },
        Case {
            name: "change: add a delay",
            request: "Add a one-hour delay before the email in invoice-reminder.",
            check: Check::Changes("invoice-reminder", "core/delay"),
            script: vec![
                call("show_workflow", json!({"workflow": "invoice-reminder"})),
                call(
                    "save_draft",
                    json!({"workflow": "invoice-reminder", "name": "Invoice reminder",
                    "definition": chain(vec![node("wait", "core/delay", json!({"duration": "1h"})), reminder["nodes"][0].clone()])}),
                ),
                call("publish_workflow", json!({"workflow": "invoice-reminder"})),
                done(),
            ],
        },
        Case {
            name: "run",
            request: "Run the weekly-digest workflow now.",
            check: Check::Runs("weekly-digest", |_| true),
            script: vec![
                call("run_workflow", json!({"workflow": "weekly-digest"})),
                done(),
            ],
        },
        Case {
            name: "run with input",
            request: "Run weekly-digest with the input {\"week\": 49}.",
            check: Check::Runs("weekly-digest", |input| input["week"] == json!(49)),
            script: vec![
                call(
                    "run_workflow",
                    json!({"workflow": "weekly-digest", "input": {"week": 49}}),
                ),
                done(),
            ],
        },
        Case {
            name: "schedule: weekly in Berlin",
            request: "Schedule weekly-digest every Monday at 09:00 Berlin time.",
            check: Check::Schedules("weekly-digest", |s| {
                cron_is(s, "0 9", &["1", "MON"], "Europe/Berlin")
            }),
            script: vec![
                call(
                    "schedule_workflow",
                    json!({"workflow": "weekly-digest", "cron": "0 9 * * MON", "timezone": "Europe/Berlin"}),
                ),
                done(),
            ],
        },
        Case {
            name: "schedule: weekdays in New York",
            request: "Run weekly-digest every weekday at 08:00 New York time.",
            check: Check::Schedules("weekly-digest", |s| {
                cron_is(s, "0 8", &["1-5", "MON-FRI"], "America/New_York")
            }),
            script: vec![
                call(
                    "schedule_workflow",
                    json!({"workflow": "weekly-digest", "cron": "0 8 * * 1-5", "timezone": "America/New_York"}),
                ),
                done(),
            ],
        },
        Case {
            name: "schedule: interval",
            request: "Run weekly-digest every 15 minutes.",
            check: Check::Schedules("weekly-digest", |s| {
                matches!(s["every"].as_str(), Some("15m" | "900s"))
                    || s["cron"].as_str().is_some_and(|c| c.starts_with("*/15 "))
            }),
            script: vec![
                call(
                    "schedule_workflow",
                    json!({"workflow": "weekly-digest", "every": "15m"}),
                ),
                done(),
            ],
        },
        Case {
            name: "schedule: pause",
            request: "Pause the schedule that runs sync-crm.",
            check: Check::Pauses("sync-crm"),
            script: vec![
                call("list_automations", json!({})),
                Reply::Text("PAUSE_FROM_LIST".into()),
                done(),
            ],
        },
        Case {
            name: "rule: deal won",
            request: "When a deal is won, email sales@acme.test the deal's title.",
            check: Check::Rule("deal.won", "send_email"),
            script: vec![
                call(
                    "create_rule",
                    json!({"name": "Deal won", "event": "deal.won",
                "actions": [{"type": "send_email", "from": SENDER, "to": "sales@acme.test", "subject": "Deal won", "text": "{{ input.event.payload.title }}"}]}),
                ),
                done(),
            ],
        },
        Case {
            name: "rule: failed execution",
            request: "Whenever a workflow execution fails, open a ticket for ops@acme.test.",
            check: Check::Rule("workflow.execution.failed", "create_ticket"),
            script: vec![
                call(
                    "create_rule",
                    json!({"name": "Failures to tickets", "event": "workflow.execution.failed",
                "actions": [{"type": "create_ticket", "subject": "A workflow failed", "requester": "ops@acme.test"}]}),
                ),
                done(),
            ],
        },
        Case {
            name: "rule: urgent ticket",
            request: "When a ticket is created with priority urgent, email support-lead@acme.test.",
            check: Check::Rule("ticket.created", "send_email"),
            script: vec![
                call(
                    "create_rule",
                    json!({"name": "Urgent tickets", "event": "ticket.created",
                "filter": "event.payload.priority == 'urgent'",
                "actions": [{"type": "send_email", "from": SENDER, "to": "support-lead@acme.test", "subject": "Urgent ticket", "text": "A ticket is urgent."}]}),
                ),
                done(),
            ],
        },
        Case {
            name: "explain a failure",
            request: "Why did the last run of sync-crm fail?",
            check: Check::Answers(&["fetch", "crm.invalid", "not granted"]),
            script: vec![
                call("list_automations", json!({})),
                Reply::Text("EXPLAIN_LAST_FAILURE".into()),
                Reply::Text(
                    "The step fetch failed: its request to crm.invalid was refused.".into(),
                ),
            ],
        },
        Case {
            name: "daily report",
            request: "Every day at 08:00 Europe/Berlin, email ada@acme.test yesterday's revenue from Dexter.",
            check: Check::PublishesScheduled(&["agent/turn", "email/send"]),
            script: {
                let mut definition = chain(vec![
                    node(
                        "ask",
                        "agent/turn",
                        json!({"agent": "dexter", "message": "What was yesterday's revenue?"}),
                    ),
                    mail(
                        "ada@acme.test",
                        "Yesterday's revenue",
                        "{{ nodes.ask.output.text }}",
                    ),
                ]);
                definition["triggers"] =
                    json!([{"type": "schedule", "cron": "0 8 * * *", "timezone": "Europe/Berlin"}]);
                build("daily-revenue", "Daily revenue", definition)
            },
        },
        Case {
            name: "build: emit event",
            request: "Make a workflow that emits the event custom.order.flagged with the order id from its input.",
            check: Check::Publishes(&["events/emit"]),
            script: build(
                "flag-order",
                "Flag order",
                chain(vec![node(
                    "flag",
                    "events/emit",
                    json!({"type": "custom.order.flagged", "payload": {"order": "{{ input.order_id }}"}}),
                )]),
            ),
        },
    ]
}

/// What the workspace holds, to tell what a request changed.
#[derive(Debug, Default)]
struct Snapshot {
    versions: HashMap<String, i64>,
    schedules: HashMap<String, String>,
    rules: HashSet<String>,
    executions: HashSet<String>,
}

async fn get(server: &TestServer, key: &str, path: &str) -> Value {
    let response = server.send(key, Method::GET, path, None).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap_or(Value::Null)
}

fn list<'a>(value: &'a Value, field: &str) -> impl Iterator<Item = &'a Value> {
    value[field].as_array().into_iter().flatten()
}

async fn snapshot(server: &TestServer, key: &str) -> Snapshot {
    let workflows = get(server, key, "/api/workflows").await;
    let schedules = get(server, key, "/api/schedules").await;
    let rules = get(server, key, "/api/rules").await;
    let executions = get(server, key, "/api/executions?limit=500").await;
    let text = |v: &Value, f: &str| v[f].as_str().unwrap_or_default().to_string();
    Snapshot {
        versions: list(&workflows, "workflows")
            .map(|w| (text(w, "slug"), w["latest_version"].as_i64().unwrap_or(0)))
            .collect(),
        schedules: list(&schedules, "schedules")
            .map(|s| (text(s, "id"), text(s, "status")))
            .collect(),
        rules: list(&rules, "rules").map(|r| text(r, "id")).collect(),
        executions: list(&executions, "executions")
            .map(|e| text(e, "id"))
            .collect(),
    }
}

/// The definitions of workflows published or changed since `before`.
async fn published_since(
    server: &TestServer,
    key: &str,
    before: &Snapshot,
) -> Vec<(String, Value)> {
    let now = snapshot(server, key).await;
    let mut found = Vec::new();
    for (slug, version) in now.versions {
        if before.versions.get(&slug) != Some(&version) {
            let row = get(
                server,
                key,
                &format!("/api/workflows/{slug}/versions/{version}"),
            )
            .await;
            found.push((slug, row["definition"].clone()));
        }
    }
    found
}

fn has_types(definition: &Value, types: &[&str]) -> bool {
    let present: HashSet<&str> = list(definition, "nodes")
        .filter_map(|n| n["type"].as_str())
        .collect();
    types.iter().all(|t| present.contains(t))
}

async fn judge(
    server: &TestServer,
    key: &str,
    check: &Check,
    before: &Snapshot,
    answer: &str,
    tool_outputs: &str,
) -> Result<(), String> {
    let schedules = get(server, key, "/api/schedules").await;
    let new_schedules: Vec<&Value> = list(&schedules, "schedules")
        .filter(|s| {
            !before
                .schedules
                .contains_key(s["id"].as_str().unwrap_or_default())
        })
        .collect();
    match check {
        Check::Publishes(types) => {
            let published = published_since(server, key, before).await;
            published
                .iter()
                .any(|(_, d)| has_types(d, types))
                .then_some(())
                .ok_or_else(|| {
                    format!(
                        "no workflow with {types:?} was published (published: {:?})",
                        published.iter().map(|(s, _)| s).collect::<Vec<_>>()
                    )
                })
        }
        Check::Changes(slug, text) => {
            let published = published_since(server, key, before).await;
            published
                .iter()
                .any(|(s, d)| s == slug && d.to_string().contains(text))
                .then_some(())
                .ok_or_else(|| format!("{slug} has no new version containing {text:?}"))
        }
        Check::Schedules(workflow, test) => new_schedules
            .iter()
            .any(|s| s["workflow"] == *workflow && test(&s["schedule"]))
            .then_some(())
            .ok_or_else(|| {
                format!(
                    "no new schedule of {workflow} with the right time (new: {new_schedules:?})"
                )
            }),
        Check::Pauses(workflow) => list(&schedules, "schedules")
            .any(|s| s["workflow"] == *workflow && s["status"] == "paused")
            .then_some(())
            .ok_or_else(|| format!("no schedule of {workflow} is paused")),
        Check::Rule(event, action) => {
            let rules = get(server, key, "/api/rules").await;
            list(&rules, "rules")
                .filter(|r| !before.rules.contains(r["id"].as_str().unwrap_or_default()))
                .any(|r| {
                    r["trigger"]["event"] == *event
                        && list(r, "actions").any(|a| a["type"] == *action)
                })
                .then_some(())
                .ok_or_else(|| format!("no new rule on {event} doing {action}"))
        }
        Check::Runs(workflow, test) => {
            let executions = get(
                server,
                key,
                &format!("/api/executions?workflow={workflow}&limit=50"),
            )
            .await;
            list(&executions, "executions")
                .filter(|e| {
                    !before
                        .executions
                        .contains(e["id"].as_str().unwrap_or_default())
                })
                .any(|e| test(&e["input"]))
                .then_some(())
                .ok_or_else(|| format!("no new run of {workflow} with the right input"))
        }
        // Named in the answer, and found by a tool (not guessed).
        Check::Answers(words) => {
            let lower = answer.to_lowercase();
            let found = tool_outputs.to_lowercase();
            words
                .iter()
                .any(|w| lower.contains(&w.to_lowercase()) && found.contains(&w.to_lowercase()))
                .then_some(())
                .ok_or_else(|| format!("the answer names none of {words:?}"))
        }
        Check::PublishesScheduled(types) => {
            let published = published_since(server, key, before).await;
            let Some((slug, _)) = published.iter().find(|(_, d)| has_types(d, types)) else {
                return Err(format!("no workflow with {types:?} was published"));
            };
            list(&schedules, "schedules")
                .any(|s| s["workflow"] == slug.as_str() && s["status"] == "active")
                .then_some(())
                .ok_or_else(|| format!("{slug} was published but nothing schedules it"))
        }
    }
}

/// Upload and activate a plugin from its manifest in `plugins/`, granted what it asks
/// plus `extra` (merged into its capabilities) unless `grant` is false.
pub async fn install(server: &TestServer, dir: &str, name: &str, extra: Value, grant: bool) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../plugins/{dir}/manifest.json"));
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    if manifest.get("capabilities").is_none() {
        manifest["capabilities"] = json!({});
    }
    if let (Some(caps), Some(extra)) = (manifest["capabilities"].as_object_mut(), extra.as_object())
    {
        caps.extend(extra.clone());
    }
    let response = server
        .upload_plugin(&manifest, crate::plugin_wasm(name), true)
        .await;
    let status = response.status();
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{name}: {}",
        response.text().await.unwrap_or_default()
    );
    if grant {
        let version = manifest["version"].as_str().unwrap_or_default();
        let response = server
            .request(
                Method::PUT,
                &format!("/api/admin/plugins/{name}/versions/{version}/grants"),
                crate::ADMIN_TOKEN,
            )
            .json(&manifest["capabilities"])
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{}",
            response.text().await.unwrap_or_default()
        );
    }
}

/// A workspace with Aura and every node plugin her cases use, seeded; its admin key.
pub async fn prepare(server: &TestServer) -> String {
    let (workspace, _) = server.create_workspace("aura-eval").await;
    let (_, key) = server.create_key(&workspace, "admin").await;
    install(server, "nodes/core", "core", json!({}), false).await;
    install(
        server,
        "nodes/email",
        "email",
        json!({"email": {"senders": [SENDER]}}),
        true,
    )
    .await;
    install(server, "nodes/agent", "agent", json!({}), true).await;
    // Installed, not granted: sync-crm's request is refused, the seeded failure.
    install(server, "nodes/http", "http", json!({}), false).await;
    install(server, "nodes/events", "events", json!({}), true).await;
    install(server, "nodes/tickets", "tickets", json!({}), true).await;
    server.install_dexter().await;
    install(server, "aura", "aura", json!({}), true).await;
    seed(server, &key).await;
    key
}

/// The workspace every case starts from: three workflows (one whose last run failed),
/// a schedule of `sync-crm`.
pub async fn seed(server: &TestServer, key: &str) {
    let workflows = [
        (
            "invoice-reminder",
            chain(vec![mail(
                "billing@acme.test",
                "Invoice reminder",
                "Please pay.",
            )]),
        ),
        (
            "weekly-digest",
            chain(vec![node(
                "digest",
                "core/output",
                json!({"value": "week {{ input.week | default(0) }}"}),
            )]),
        ),
        (
            "sync-crm",
            chain(vec![node(
                "fetch",
                "http/request",
                json!({"url": "https://crm.invalid/sync"}),
            )]),
        ),
    ];
    for (slug, definition) in workflows {
        let body = json!({"slug": slug, "name": slug, "definition": definition});
        let response = server
            .send(key, Method::POST, "/api/workflows", Some(body))
            .await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "{}",
            response.text().await.unwrap_or_default()
        );
    }
    let response = server
        .send(
            key,
            Method::POST,
            "/api/workflows/sync-crm/executions?wait=20s",
            Some(json!({"input": {}})),
        )
        .await;
    let run: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(run["status"], "failed", "the seeded failure: {run}");
    let schedule = json!({"name": "CRM sync", "schedule": {"every": "1d"},
                          "action": {"type": "run_workflow", "workflow": "sync-crm"}});
    let response = server
        .send(key, Method::POST, "/api/schedules", Some(schedule))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

/// Replies that need this workspace's ids, made when the scripted model reaches them.
pub async fn resolve(server: &TestServer, key: &str, reply: Reply) -> Reply {
    match &reply {
        Reply::Text(marker) if marker == "PAUSE_FROM_LIST" => {
            let schedules = get(server, key, "/api/schedules").await;
            let id = list(&schedules, "schedules")
                .find(|s| s["workflow"] == "sync-crm")
                .map(|s| s["id"].clone())
                .unwrap_or(Value::Null);
            call("pause_schedule", json!({"schedule_id": id}))
        }
        Reply::Text(marker) if marker == "EXPLAIN_LAST_FAILURE" => {
            let runs = get(
                server,
                key,
                "/api/executions?workflow=sync-crm&status=failed&limit=1",
            )
            .await;
            call(
                "explain_execution",
                json!({"execution_id": runs["executions"][0]["id"]}),
            )
        }
        _ => reply,
    }
}

/// Queue a case's scripted calls on the fake provider (ids filled in from the seeded
/// workspace).
pub async fn script(
    fake: &crate::fake_openai::FakeOpenAi,
    server: &TestServer,
    key: &str,
    case: &Case,
) {
    for reply in &case.script {
        fake.reply(resolve(server, key, reply.clone()).await);
    }
}

/// One case as a person would have it: a new conversation, every approval granted
/// (at most six rounds).
pub async fn run_case(server: &TestServer, key: &str, case: &Case) -> Outcome {
    let before = snapshot(server, key).await;
    let mut tools = Vec::new();
    let mut outputs = String::new();
    let response = server
        .send(
            key,
            Method::POST,
            "/api/agents/aura/chat",
            Some(json!({"message": case.request})),
        )
        .await;
    let mut turn: Value = response.json().await.unwrap_or(Value::Null);
    for _ in 0..6 {
        for call in list(&turn, "tool_calls") {
            tools.push(call["tool"].as_str().unwrap_or_default().to_string());
            outputs.push_str(&call["output"].to_string());
        }
        if turn["status"] != "awaiting_approval" {
            break;
        }
        let answers: Vec<Value> = list(&turn, "pending_approvals")
            .map(|p| json!({"id": p["approval_id"], "approved": true}))
            .collect();
        let body = json!({"conversation_id": turn["conversation_id"], "approvals": answers});
        let response = server
            .send(key, Method::POST, "/api/agents/aura/chat", Some(body))
            .await;
        turn = response.json().await.unwrap_or(Value::Null);
    }
    let answer = turn["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let verdict = if turn["error"].is_object() {
        Err(format!("the turn failed: {}", turn["error"]))
    } else {
        judge(server, key, &case.check, &before, &answer, &outputs).await
    };
    Outcome {
        name: case.name,
        passed: verdict.is_ok(),
        why: verdict.err().unwrap_or_default(),
        tools,
        answer,
    }
}
