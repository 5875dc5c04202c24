//! The knowledge base through the REST API: revisions, publish and archive
//! visibility, chunk sizes, hybrid search, answers with citations, knowledge gaps.
//! Articles come from tests/data/support-kb (our own help centre). Ticket enrichment
//! is in ticket_enrichment.rs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use agenthost::support::chunking::TokenCounter;
use agenthost_tests::fake_openai::{FakeOpenAi, Reply};
use agenthost_tests::{TestServer, error_of, model_dir};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/support-kb")
}

/// Articles of the test set as import items, published.
fn articles(slugs: &[&str]) -> Value {
    let items: Vec<Value> = slugs
        .iter()
        .map(|slug| {
            let path = data_dir().join("articles").join(format!("{slug}.md"));
            let markdown = std::fs::read_to_string(&path).unwrap();
            json!({ "markdown": markdown, "status": "published" })
        })
        .collect();
    Value::Array(items)
}

pub(crate) async fn import(server: &TestServer, key: &str, slugs: &[&str]) {
    let response = server
        .send(key, Method::POST, "/api/kb/import", Some(articles(slugs)))
        .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
    wait_indexed(server, key).await;
}

/// Poll the index until no indexing job is queued or running.
pub(crate) async fn wait_indexed(server: &TestServer, key: &str) -> Value {
    let started = Instant::now();
    loop {
        let response = server.send(key, Method::GET, "/api/kb/index", None).await;
        let body: Value = response.json().await.unwrap();
        if body["idle"] == true {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "indexing did not finish: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn search(
    server: &TestServer,
    key: &str,
    query: &str,
    mode: &str,
    k: u32,
) -> Vec<Value> {
    let response = server
        .send(
            key,
            Method::POST,
            "/api/kb/search",
            Some(json!({ "query": query, "mode": mode, "k": k })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["results"].as_array().unwrap().clone()
}

/// Distinct article slugs of search results, in rank order.
pub(crate) fn slugs(results: &[Value]) -> Vec<String> {
    let mut seen = Vec::new();
    for result in results {
        let slug = result["slug"].as_str().unwrap().to_string();
        if !seen.contains(&slug) {
            seen.push(slug);
        }
    }
    seen
}

pub(crate) async fn post(
    server: &TestServer,
    key: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let response = server.send(key, Method::POST, path, Some(body)).await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn only_the_live_revision_of_a_published_article_is_found() {
    let server = TestServer::start().await;
    let (_, owner) = server.create_workspace("kb-live").await;
    let (status, article) = post(
        &server,
        &owner,
        "/api/kb/articles",
        json!({
            "title": "Parcel lockers",
            "category": "shipping",
            "tags": ["Shipping", "lockers", "shipping"],
            "body": "## Pickup\n\nCollect parcels from locker bank QX-77 with the six digit code from your email.",
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{article}");
    assert_eq!(article["status"], "draft");
    assert_eq!(article["slug"], "parcel-lockers");
    assert_eq!(article["tags"], json!(["shipping", "lockers"]));
    let id = article["id"].as_str().unwrap().to_string();
    assert!(
        search(&server, &owner, "QX-77 locker", "hybrid", 5)
            .await
            .is_empty()
    );

    // draft -> published skips review: refused, and the message says the way.
    let (status, body) = post(
        &server,
        &owner,
        &format!("/api/kb/articles/{id}/publish"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("in_review")
    );

    let response = server
        .send(
            &owner,
            Method::PATCH,
            &format!("/api/kb/articles/{id}"),
            Some(json!({ "status": "in_review" })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // serde would read `[]` as a request with every field left out; it is no object,
    // so it is refused (and publishes nothing), here and for every JSON body.
    for (method, path) in [
        (Method::POST, format!("/api/kb/articles/{id}/publish")),
        (Method::PATCH, format!("/api/kb/articles/{id}")),
    ] {
        let response = server.send(&owner, method, &path, Some(json!([]))).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}"
        );
        let (code, message) = error_of(response).await;
        assert_eq!(code, "invalid", "{path}");
        assert!(message.contains("JSON object"), "{message}");
    }
    let (status, body) = post(
        &server,
        &owner,
        &format!("/api/kb/articles/{id}/publish"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "published");
    assert_eq!(body["live_version"], 1);
    wait_indexed(&server, &owner).await;
    let found = search(&server, &owner, "QX-77 locker", "hybrid", 5).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["version"], 1);
    assert_eq!(
        found[0]["heading_path"],
        json!(["Parcel lockers", "Pickup"])
    );

    // A new revision is not live until it is published.
    let (status, revision) = post(
        &server,
        &owner,
        &format!("/api/kb/articles/{id}/revisions"),
        json!({ "body": "## Pickup\n\nLocker bank QX-78 replaced QX-77 in March; use the code from the app." }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{revision}");
    assert_eq!(revision["version"], 2);
    assert_eq!(revision["checksum"].as_str().unwrap().len(), 64);
    let found = search(&server, &owner, "QX-78", "full_text", 5).await;
    assert!(
        found.is_empty(),
        "an unpublished revision is searchable: {found:?}"
    );

    let (status, _) = post(
        &server,
        &owner,
        &format!("/api/kb/articles/{id}/publish"),
        json!({ "version": 2 }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    wait_indexed(&server, &owner).await;
    let found = search(&server, &owner, "locker bank code", "hybrid", 10).await;
    assert!(!found.is_empty());
    assert!(found.iter().all(|hit| hit["version"] == 2), "{found:?}");
    assert_eq!(found[0]["revision_id"], revision["id"]);

    // Archiving takes it out of search at once, without waiting for any job.
    let (status, body) = post(
        &server,
        &owner,
        &format!("/api/kb/articles/{id}/archive"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "archived");
    assert!(
        search(&server, &owner, "locker bank code", "hybrid", 10)
            .await
            .is_empty()
    );

    // archived -> in_review is not a move the workflow allows.
    let response = server
        .send(
            &owner,
            Method::PATCH,
            &format!("/api/kb/articles/{id}"),
            Some(json!({ "status": "in_review" })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (_, message) = error_of(response).await;
    assert!(
        message.contains("cannot go from archived to in_review"),
        "{message}"
    );

    // Revisions are immutable, even for the host's own connection.
    let pool = sqlx::PgPool::connect(&server.database_url).await.unwrap();
    let changed =
        sqlx::query("UPDATE data.kb_revisions SET body = 'changed' WHERE article_id = $1::uuid")
            .bind(&id)
            .execute(&pool)
            .await;
    assert!(
        changed
            .unwrap_err()
            .to_string()
            .contains("a revision cannot change")
    );
    server.stop().await;
}

#[tokio::test]
async fn roles_and_workspaces_bound_the_knowledge_base() {
    let server = TestServer::start().await;
    let (workspace, owner) = server.create_workspace("kb-roles").await;
    let (_, viewer) = server.create_key(&workspace, "viewer").await;
    let (_, member) = server.create_key(&workspace, "member").await;
    let body = json!({ "title": "Roles", "body": "Who may do what." });
    let (status, _) = post(&server, &viewer, "/api/kb/articles", body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, article) = post(&server, &member, "/api/kb/articles", body).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = article["id"].as_str().unwrap();
    let (status, _) = post(
        &server,
        &member,
        &format!("/api/kb/articles/{id}/publish"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "publishing is for admins");
    let (status, _) = post(
        &server,
        &member,
        "/api/kb/import",
        articles(&["how-refunds-work"]),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    import(&server, &owner, &["how-refunds-work"]).await;
    assert!(
        !search(&server, &viewer, "refund", "hybrid", 5)
            .await
            .is_empty()
    );
    let (_, other) = server.create_workspace("kb-roles-other").await;
    assert!(
        search(&server, &other, "refund", "hybrid", 5)
            .await
            .is_empty()
    );
    let response = server
        .send(&other, Method::GET, &format!("/api/kb/articles/{id}"), None)
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn chunks_fit_the_embedding_model_and_keep_their_headings() {
    let server = TestServer::start().await;
    let (_, owner) = server.create_workspace("kb-chunks").await;
    // A long article: every section of the test set's articles, one after another.
    let mut body = String::new();
    for slug in [
        "api-errors-reference",
        "nw-4410-error-codes-and-leds",
        "sso-troubleshooting",
    ] {
        let text = std::fs::read_to_string(data_dir().join(format!("articles/{slug}.md"))).unwrap();
        body.push_str(agenthost::support::kb::front_matter(&text).1);
        body.push_str("\n\n");
    }
    let long = body.repeat(3);
    let (status, article) = post(
        &server,
        &owner,
        "/api/kb/articles",
        json!({ "title": "Everything that can go wrong", "body": long, "status": "published" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{article}");
    wait_indexed(&server, &owner).await;

    let pool = sqlx::PgPool::connect(&server.database_url).await.unwrap();
    let chunks: Vec<(String, Value)> = sqlx::query_as(
        "SELECT text, metadata FROM vector_documents ORDER BY (metadata->>'chunk')::int",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(chunks.len() > 20, "{} chunks", chunks.len());
    let counter = TokenCounter::for_model_dir(&model_dir());
    for (text, metadata) in &chunks {
        // + [CLS] and [SEP]: what the model reads must be within its 256 word pieces.
        let pieces = counter.count(text) + 2;
        assert!(pieces <= 256, "a chunk of {pieces} word pieces: {text:?}");
        let heading = metadata["heading"].as_str().unwrap();
        assert!(text.starts_with(&format!("{heading}\n\n")), "{text:?}");
        assert_eq!(metadata["heading_path"][0], "Everything that can go wrong");
    }
    let view: Value = server
        .send(
            &owner,
            Method::GET,
            &format!("/api/kb/articles/{}", article["id"].as_str().unwrap()),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["index_status"], "indexed");
    assert_eq!(view["chunk_count"], chunks.len());
    server.stop().await;
}

#[tokio::test]
async fn hybrid_search_finds_what_either_arm_alone_misses() {
    // The fusion weights were tuned with all-MiniLM-L6-v2, and this test indexes 12
    // articles: with e5 (twice the compute) in a debug build beside the other tests it
    // can outlast the indexing wait.
    let server = TestServer::start_with(|config| {
        config.embedding_model = Some("all-MiniLM-L6-v2".into());
    })
    .await;
    let (_, owner) = server.create_workspace("kb-hybrid").await;
    import(
        &server,
        &owner,
        &[
            "nw-4410-error-codes-and-leds",
            "nw-4410-firmware-update",
            "nw-4410-router-setup",
            "nw-220-hub-offline",
            "nw-220-sensor-hub-setup",
            "nw-220-sensor-pairing-and-batteries",
            "recover-access-lost-2fa-device",
            "enable-two-factor-authentication",
            "reset-password",
            "unexpected-charges",
            "how-refunds-work",
            "mobile-app-sync-issues",
        ],
    )
    .await;
    let top = |results: &[Value], n: usize| slugs(results).into_iter().take(n).collect::<Vec<_>>();

    // An exact error code: full text pins it, the embedding blurs it into another
    // article's error codes.
    let code = "e-1077";
    let by_text = top(&search(&server, &owner, code, "full_text", 10).await, 1);
    let by_vector = top(&search(&server, &owner, code, "vector", 10).await, 1);
    let hybrid = top(&search(&server, &owner, code, "hybrid", 10).await, 1);
    assert_eq!(by_text, ["nw-220-sensor-pairing-and-batteries"]);
    assert_ne!(
        by_vector,
        ["nw-220-sensor-pairing-and-batteries"],
        "the embedding alone found the code"
    );
    assert_eq!(hybrid, ["nw-220-sensor-pairing-and-batteries"]);

    // A paraphrase sharing almost no words with its article: the embedding finds it.
    let paraphrase = "the 6 numbers from my phone never work when I log in";
    let wanted = "enable-two-factor-authentication".to_string();
    let by_text = top(
        &search(&server, &owner, paraphrase, "full_text", 10).await,
        3,
    );
    let by_vector = top(&search(&server, &owner, paraphrase, "vector", 10).await, 3);
    let hybrid = top(&search(&server, &owner, paraphrase, "hybrid", 10).await, 3);
    assert!(!by_text.contains(&wanted), "{by_text:?}");
    assert!(by_vector.contains(&wanted), "{by_vector:?}");
    assert!(hybrid.contains(&wanted), "{hybrid:?}");

    // A short question about a code: far from the error table as a whole (similarity
    // under the threshold), yet the table holds the code, so it is the answer.
    let (_, answer) = post(
        &server,
        &owner,
        "/api/kb/answer",
        json!({ "question": "What does E-2104 mean?" }),
    )
    .await;
    assert_eq!(answer["answered"], true, "{answer}");
    assert_eq!(
        answer["citations"][0]["slug"], "nw-4410-error-codes-and-leds",
        "{answer}"
    );
    assert!(
        answer["answer"].as_str().unwrap().contains("E-2104"),
        "{answer}"
    );
    server.stop().await;
}

#[tokio::test]
async fn answers_cite_their_sources_and_unanswered_questions_become_gaps() {
    // Rankings measured with all-MiniLM-L6-v2; multilingual-e5-small puts
    // cancel-subscription (judged relevant too) before how-refunds-work for "How do I
    // get a refund?" (docs/multilingual.md).
    let server = TestServer::start_with(|config| {
        config.embedding_model = Some("all-MiniLM-L6-v2".into());
    })
    .await;
    let (_, owner) = server.create_workspace("kb-answers").await;
    import(
        &server,
        &owner,
        &[
            "how-refunds-work",
            "cancel-subscription",
            "reset-password",
            "slack-integration",
        ],
    )
    .await;

    let (status, answer) = post(
        &server,
        &owner,
        "/api/kb/answer",
        json!({ "question": "How do I get a refund?" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["answered"], true, "{answer}");
    assert_eq!(answer["mode"], "extractive");
    assert!(answer["answer"].as_str().unwrap().contains("[1]"));
    let citation = &answer["citations"][0];
    assert_eq!(citation["n"], 1);
    assert_eq!(citation["slug"], "how-refunds-work");
    // The citation names the live revision and a section of it.
    let article: Value = server
        .send(
            &owner,
            Method::GET,
            "/api/kb/articles/how-refunds-work",
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(citation["revision_id"], article["live_revision_id"]);
    assert_eq!(citation["heading_path"][0], article["title"]);
    let pool = sqlx::PgPool::connect(&server.database_url).await.unwrap();
    let chunk: String = sqlx::query_scalar("SELECT text FROM vector_documents WHERE id = $1")
        .bind(citation["chunk_id"].as_str().unwrap())
        .fetch_one(&pool)
        .await
        .unwrap();
    let quoted = answer["answer"]
        .as_str()
        .unwrap()
        .lines()
        .nth(3)
        .unwrap_or_default()
        .to_string();
    assert!(
        chunk.contains(quoted.trim_end_matches(" …")),
        "the answer quotes its chunk:\n{quoted}\n{chunk}"
    );

    // Questions nothing in the knowledge base is about: not answered, and grouped.
    let groups = [
        [
            "Does the NW-C5 camera record at night?",
            "night vision on the NW-C5 outdoor camera",
            "can the NW-C5 see in the dark",
        ],
        [
            "Do you ship hardware to Antarctica?",
            "shipping to antarctic research stations",
            "can I get hardware delivered to Antarctica",
        ],
    ];
    for question in groups.iter().flatten() {
        let (_, answer) = post(
            &server,
            &owner,
            "/api/kb/answer",
            json!({ "question": question }),
        )
        .await;
        assert_eq!(answer["answered"], false, "{question}: {answer}");
        assert_eq!(answer["reason"], "no_match");
        assert!(answer["suggestion"].as_str().unwrap().contains("Escalate"));
    }
    let gaps: Value = server
        .send(&owner, Method::GET, "/api/kb/gaps", None)
        .await
        .json()
        .await
        .unwrap();
    let gaps = gaps["gaps"].as_array().unwrap();
    let counts: Vec<u64> = gaps.iter().map(|g| g["count"].as_u64().unwrap()).collect();
    assert_eq!(counts, [3, 3], "{gaps:?}");
    for group in gaps {
        let examples = group["examples"].as_array().unwrap();
        assert!(
            groups
                .iter()
                .any(|g| examples.iter().all(|e| g.contains(&e.as_str().unwrap()))),
            "a group mixes different questions: {group}"
        );
        assert_eq!(group["reasons"]["no_match"], 3);
    }
    server.stop().await;
}

#[tokio::test]
async fn with_an_llm_answers_are_written_from_numbered_sources() {
    let fake = FakeOpenAi::start().await;
    let base = fake.base_url.clone();
    // Rankings measured with all-MiniLM-L6-v2, as above.
    let server = TestServer::start_with(|config| {
        config.llm_base_url = Some(base);
        config.embedding_model = Some("all-MiniLM-L6-v2".into());
    })
    .await;
    let (_, owner) = server.create_workspace("kb-llm").await;
    import(
        &server,
        &owner,
        &["how-refunds-work", "cancel-subscription"],
    )
    .await;

    fake.reply(Reply::Text(
        "Ask within 30 days from Billing > Invoices [1].".into(),
    ));
    let (_, answer) = post(
        &server,
        &owner,
        "/api/kb/answer",
        json!({ "question": "How do I get a refund?" }),
    )
    .await;
    assert_eq!(answer["answered"], true, "{answer}");
    assert_eq!(answer["mode"], "llm");
    assert_eq!(answer["citations"][0]["slug"], "how-refunds-work");
    let (_, request) = fake
        .requests()
        .into_iter()
        .rev()
        .find(|(path, _)| path.contains("chat"))
        .unwrap();
    let prompt = request["messages"][1]["content"].as_str().unwrap();
    assert!(
        prompt.starts_with("Sources:\n\n[1] How refunds work"),
        "{prompt}"
    );
    assert!(
        request["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("NOT_COVERED")
    );

    // The model says the sources don't cover it: not answered, a gap.
    fake.reply(Reply::Text("NOT_COVERED".into()));
    let (_, answer) = post(
        &server,
        &owner,
        "/api/kb/answer",
        json!({ "question": "Can I get a refund in bitcoin?" }),
    )
    .await;
    assert_eq!(answer["answered"], false);
    assert_eq!(answer["reason"], "not_covered");
    let gaps: Value = server
        .send(&owner, Method::GET, "/api/kb/gaps", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        gaps["gaps"][0]["question"],
        "Can I get a refund in bitcoin?"
    );
    assert_eq!(gaps["gaps"][0]["reasons"]["not_covered"], 1);
    server.stop().await;
}

#[tokio::test]
async fn sentiment_is_scored_offline() {
    let server = TestServer::start().await;
    let (_, owner) = server.create_workspace("kb-sentiment").await;
    let (_, happy) = post(
        &server,
        &owner,
        "/api/sentiment",
        json!({ "text": "Thanks, the support was GREAT!!" }),
    )
    .await;
    let (_, sad) = post(
        &server,
        &owner,
        "/api/sentiment",
        json!({ "text": "The app is not good at all, it keeps crashing." }),
    )
    .await;
    assert_eq!(happy["label"], "positive", "{happy}");
    assert_eq!(sad["label"], "negative", "{sad}");
    assert_eq!(happy["method"], "lexicon");
    assert_eq!(
        happy["lexicon"]["compound"].as_f64().unwrap(),
        agenthost_support::sentiment::score("Thanks, the support was GREAT!!").compound
    );
    server.stop().await;
}
