//! Cassie's plugin against a real server: tickets written through the database
//! capability (numbered, signed and queued for enrichment by the triggers), the Cassie
//! agent calling her tools in a chat scripted by the fake OpenAI server, and answers
//! from a published article with citations, or a knowledge gap.

use std::path::Path;
use std::time::{Duration, Instant};

use agenthost_tests::fake_openai::{FakeOpenAi, Reply};
use agenthost_tests::{ADMIN_TOKEN, StatusCode, TestServer, plugin_wasm};
use reqwest::Method;
use serde_json::{Value, json};

struct Fixture {
    server: TestServer,
    key: String,
    fake: FakeOpenAi,
}

/// A server with the fake LLM, Cassie installed and granted as `make plugins`
/// bundles her, and a workspace (its owner key).
async fn fixture(slug: &str) -> Fixture {
    fixture_with(slug, |_| {}).await
}

async fn fixture_with(slug: &str, change: impl FnOnce(&mut agenthost::Config)) -> Fixture {
    let fake = FakeOpenAi::start().await;
    let base = fake.base_url.clone();
    let server = TestServer::start_with(move |config| {
        config.llm_base_url = Some(base);
        config.llm_max_retries = 0;
        change(config);
    })
    .await;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/cassie/manifest.json");
    let manifest: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let response = server
        .upload_plugin(&manifest, plugin_wasm("cassie"), true)
        .await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        response.text().await.unwrap()
    );
    let version = manifest["version"].as_str().unwrap();
    let response = server
        .send(
            ADMIN_TOKEN,
            Method::PUT,
            &format!("/api/admin/plugins/cassie/versions/{version}/grants"),
            Some(manifest["capabilities"].clone()),
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
    let (_, key) = server.create_workspace(slug).await;
    Fixture { server, key, fake }
}

impl Fixture {
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let response = self.server.send(&self.key, method, path, body).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A tool call through the tools API: (status, body).
    async fn tool(&self, tool: &str, input: Value) -> (StatusCode, Value) {
        let response = self
            .server
            .call_tool(&self.key, "cassie", tool, &input)
            .await;
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The output of a tool call that must succeed.
    async fn output(&self, tool: &str, input: Value) -> Value {
        let (status, body) = self.tool(tool, input.clone()).await;
        assert_eq!(status, StatusCode::OK, "{tool} {input}: {body}");
        body["output"].clone()
    }

    async fn chat(&self, message: &str) -> Value {
        let (status, body) = self
            .send(
                Method::POST,
                "/api/agents/cassie/chat",
                Some(json!({ "message": message })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "completed", "{body}");
        body
    }

    /// Publish an article and wait until it is indexed.
    async fn publish(&self, article: Value) {
        let (status, body) = self
            .send(Method::POST, "/api/kb/articles", Some(article))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["status"], "published", "{body}");
        let started = Instant::now();
        loop {
            let (_, index) = self.send(Method::GET, "/api/kb/index", None).await;
            if index["idle"] == true {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "indexing did not finish: {index}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn pool(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.server.database_url)
            .await
            .unwrap()
    }
}

fn refund_article() -> Value {
    json!({
        "title": "Refunds",
        "slug": "refunds",
        "category": "billing",
        "status": "published",
        "body": "## Requesting a refund\n\nTo get a refund, open Billing > Orders, choose the order and press Request refund. \
                 Refunds can be requested within 30 days of purchase.\n\n\
                 ## When the money arrives\n\nRefunds reach your card within 5 to 10 business days.",
    })
}

/// Poll until the ticket's enrichment job is no longer queued or running.
async fn wait_enriched(pool: &sqlx::PgPool, ticket: &str) {
    let started = Instant::now();
    loop {
        let pending: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM support_jobs WHERE target = $1::text::uuid AND status IN ('queued', 'running')",
        )
        .bind(ticket)
        .fetch_one(pool)
        .await
        .unwrap();
        if pending == 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "enrichment did not finish"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Granting database, vector and llm at once sets up the plugin's database sandbox
/// (roles, schema, migrations) and changes its privileges. That once happened inside
/// the grant's transaction, which held one pooled connection while the set-up waited
/// for another: with the two the registry's and the workflow engine's LISTEN keep, a
/// pool of 3 left none, and the PUT answered 500 after the 10 s acquire timeout.
#[tokio::test]
async fn granting_her_capabilities_needs_one_free_pooled_connection() {
    let started = Instant::now();
    let f = fixture_with("cassie-small-pool", |config| config.db_max_connections = 3).await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the set-up took {:?}",
        started.elapsed()
    );
    let created = f
        .output(
            "create_ticket",
            json!({ "subject": "Small pool", "requester_email": "dana@example.com" }),
        )
        .await;
    assert_eq!(created["number"], 1, "{created}");
    f.server.stop().await;
}

#[tokio::test]
async fn cassie_creates_tickets_the_triggers_number_sign_and_queue() {
    let f = fixture("cassie-tickets").await;
    let created = f
        .output(
            "create_ticket",
            json!({ "subject": "Charged twice", "description": "My card was charged twice for order 1234.",
                    "requester_email": "dana@example.com", "requester_name": "Dana",
                    "tags": ["Billing", "billing"] }),
        )
        .await;
    assert_eq!(created["number"], 1, "{created}");
    assert_eq!(created["status"], "open");
    assert_eq!(created["priority"], "normal");
    assert!(created["sla_due_at"].is_string(), "{created}");
    let id = created["id"].as_str().unwrap().to_string();

    let pool = f.pool().await;
    let (number, channel, tags, updated_by): (i64, String, Vec<String>, Option<String>) =
        sqlx::query_as(
            "SELECT number, channel, tags, updated_by FROM data.tickets WHERE id = $1::text::uuid",
        )
        .bind(&id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        (number, channel.as_str(), tags),
        (1, "chat", vec!["billing".to_string()])
    );
    let jobs: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM support_jobs WHERE target = $1::text::uuid")
            .bind(&id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(jobs, ["enrich_ticket"]);
    // The history names the plugin, whoever the plugin claims to be.
    let (_, shown) = f.send(Method::GET, "/api/tickets/1", None).await;
    assert_eq!(shown["events"][0]["kind"], "created", "{shown}");
    assert_eq!(shown["events"][0]["actor"], "plugin:cassie");
    // Enrichment signs its own update; until it runs the row is Cassie's.
    if updated_by.as_deref() != Some("system:enrichment") {
        assert_eq!(updated_by.as_deref(), Some("plugin:cassie"));
    }

    // Cassie's next write is hers again, and the history records it.
    wait_enriched(&pool, &id).await;
    let updated = f
        .output(
            "update_ticket",
            json!({ "ticket": "#1", "priority": "high", "status": "pending" }),
        )
        .await;
    assert_eq!(
        (updated["priority"].as_str(), updated["status"].as_str()),
        (Some("high"), Some("pending"))
    );
    assert_eq!(updated["updated_by"], "plugin:cassie", "{updated}");
    assert_eq!(updated["last_change"]["actor"], "plugin:cassie");
    assert_eq!(
        updated["last_change"]["changes"]["priority"],
        json!({ "from": "normal", "to": "high" })
    );
    let updated_by: Option<String> =
        sqlx::query_scalar("SELECT updated_by FROM data.tickets WHERE id = $1::text::uuid")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(updated_by.as_deref(), Some("plugin:cassie"));

    // A move the trigger refuses comes back with its reason, for the model to read.
    let (status, body) = f
        .tool("update_ticket", json!({ "ticket": 1, "status": "closed" }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("cannot go from pending to closed"),
        "{message}"
    );
    let (status, body) = f
        .tool("update_ticket", json!({ "ticket": 99, "status": "solved" }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("find_tickets"),
        "{body}"
    );

    let comment = f
        .output(
            "comment_on_ticket",
            json!({ "ticket": 1, "body": "We're refunding the second charge." }),
        )
        .await;
    assert_eq!(
        (comment["author"].as_str(), comment["public"].as_bool()),
        (Some("plugin:cassie"), Some(true))
    );
    let found = f
        .output("find_tickets", json!({ "query": "charged twice" }))
        .await;
    assert_eq!(found["count"], 1, "{found}");
    assert_eq!(found["tickets"][0]["number"], 1);
    assert_eq!(found["tickets"][0]["requester_email"], "dana@example.com");
    let none = f
        .output("find_tickets", json!({ "status": "solved" }))
        .await;
    assert_eq!(none["count"], 0);
    pool.close().await;
    f.server.stop().await;
}

#[tokio::test]
async fn the_cassie_agent_opens_a_ticket_when_asked() {
    let f = fixture("cassie-chat").await;
    f.fake.reply(Reply::ToolCalls(vec![(
        "call_1".into(),
        "create_ticket".into(),
        json!({ "subject": "Billing issue", "description": "The customer was billed for a cancelled plan.",
                "requester_email": "sam@example.com", "priority": "high" }),
    )]));
    // What the model says after the tool is not scripted (the ticket's enrichment may
    // ask the fake model too, and must not take a scripted reply).
    let turn = f.chat("Create a ticket for a billing issue").await;
    let call = &turn["tool_calls"][0];
    assert_eq!(
        (call["plugin"].as_str(), call["tool"].as_str()),
        (Some("cassie"), Some("create_ticket"))
    );
    assert_eq!(call["outcome"], "ok", "{call}");
    let number = call["output"]["number"].as_i64().unwrap();
    let (status, ticket) = f
        .send(Method::GET, &format!("/api/tickets/{number}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{ticket}");
    assert_eq!(ticket["subject"], "Billing issue");
    assert_eq!(ticket["priority"], "high");
    assert_eq!(ticket["channel"], "chat");
    assert_eq!(ticket["requester"]["email"], "sam@example.com");

    // Cassie's prompt and her eight tools went to the model.
    let first = &f.fake.requests()[0].1;
    let prompt = first["messages"][0]["content"].as_str().unwrap();
    assert!(
        prompt.starts_with("You are Cassie") && prompt.contains("answer_question"),
        "{prompt}"
    );
    let mut names: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "analyse_sentiment",
            "answer_question",
            "comment_on_ticket",
            "create_ticket",
            "find_tickets",
            "search_knowledge_base",
            "suggest_reply",
            "update_ticket"
        ]
    );
    f.server.stop().await;
}

#[tokio::test]
async fn the_cassie_agent_answers_from_a_published_article_with_its_citation() {
    let f = fixture("cassie-kb").await;
    f.publish(refund_article()).await;
    f.fake.reply(Reply::ToolCalls(vec![(
        "call_1".into(),
        "answer_question".into(),
        json!({ "question": "How do I get a refund?" }),
    )]));
    // The tool's own model call, then the agent's answer.
    f.fake.reply(Reply::Text(
        "Open Billing > Orders, choose the order and press Request refund, within 30 days [1]."
            .into(),
    ));
    f.fake.reply(Reply::Text(
        "You can request a refund under Billing > Orders within 30 days of purchase [1].".into(),
    ));
    let turn = f.chat("How do I get a refund?").await;
    let call = &turn["tool_calls"][0];
    assert_eq!(call["tool"], "answer_question");
    assert_eq!(call["outcome"], "ok", "{call}");
    let output = &call["output"];
    assert_eq!(output["answered"], true, "{output}");
    assert_eq!(output["mode"], "llm");
    assert_eq!(output["citations"][0]["n"], 1);
    assert_eq!(output["citations"][0]["slug"], "refunds", "{output}");
    assert!(
        output["citations"][0]["heading_path"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h == "Requesting a refund"),
        "{output}"
    );
    let content = turn["message"]["content"].as_str().unwrap();
    assert!(content.contains("[1]"), "{content}");

    // The tool asked the model with the shared answer prompt and the article as source [1].
    let requests = f.fake.requests();
    let asked = &requests[1].1["messages"];
    assert!(
        asked[0]["content"]
            .as_str()
            .unwrap()
            .contains("using ONLY the numbered sources"),
        "{asked}"
    );
    let sources = asked[1]["content"].as_str().unwrap();
    assert!(
        sources.contains("[1] Refunds > Requesting a refund"),
        "{sources}"
    );
    assert!(
        sources.ends_with("Question: How do I get a refund?"),
        "{sources}"
    );

    // The same search through search_knowledge_base.
    let found = f
        .output(
            "search_knowledge_base",
            json!({ "query": "refund money card", "k": 2 }),
        )
        .await;
    assert_eq!(found["results"][0]["slug"], "refunds", "{found}");
    f.server.stop().await;
}

#[tokio::test]
async fn an_unrelated_question_is_not_answered_and_becomes_a_gap() {
    let f = fixture("cassie-gaps").await;
    // Nothing published: no collection yet, still a clean "not answered".
    let empty = f
        .output("search_knowledge_base", json!({ "query": "refund" }))
        .await;
    assert_eq!(empty, json!({ "results": [] }));
    f.publish(refund_article()).await;
    let question = "What is the airspeed velocity of an unladen swallow?";
    let answer = f
        .output("answer_question", json!({ "question": question }))
        .await;
    assert_eq!(answer["answered"], false, "{answer}");
    assert_eq!(answer["reason"], "no_match");
    assert!(answer["citations"].as_array().unwrap().is_empty());
    assert!(
        answer["suggestion"].as_str().unwrap().contains("ticket"),
        "{answer}"
    );
    // Nothing relevant: the model was not asked.
    assert!(f.fake.requests().is_empty(), "{:?}", f.fake.requests());

    let (status, gaps) = f.send(Method::GET, "/api/kb/gaps", None).await;
    assert_eq!(status, StatusCode::OK, "{gaps}");
    let group = gaps["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["question"] == question)
        .unwrap_or_else(|| panic!("the question is not a gap: {gaps}"));
    assert_eq!(group["count"], 1);
    assert_eq!(group["reasons"]["no_match"], 1);
    let pool = f.pool().await;
    let source: String = sqlx::query_scalar("SELECT source FROM data.kb_gaps WHERE question = $1")
        .bind(question)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(source, "cassie");
    pool.close().await;
    f.server.stop().await;
}
