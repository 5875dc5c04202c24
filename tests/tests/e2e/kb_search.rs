//! Knowledge-base search (issue 19): bounded input (a length cap, repeated words
//! counted once, at most `MAX_TERMS` words searched), BM25 ranking of the full-text arm
//! with statistics the database keeps as chunks come and go, and knowledge gaps
//! grouped by what is asked rather than by the names in the questions.

use agenthost::vector::MAX_TERMS;
use agenthost_tests::{TestServer, error_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use super::knowledge_base::{import, post, search, slugs};

/// Publish articles given as (slug, body); each gets the title "<slug> note".
async fn publish(server: &TestServer, key: &str, articles: &[(&str, &str)]) {
    let items: Vec<Value> = articles
        .iter()
        .map(|(slug, body)| {
            json!({ "slug": slug, "title": format!("{slug} note"), "body": body, "status": "published" })
        })
        .collect();
    let response = server
        .send(
            key,
            Method::POST,
            "/api/kb/import",
            Some(Value::Array(items)),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    super::knowledge_base::wait_indexed(server, key).await;
}

#[tokio::test]
async fn search_queries_are_capped_and_their_words_bounded() {
    let server = TestServer::start().await;
    let (_, owner) = server.create_workspace("kb-bounded").await;
    import(
        &server,
        &owner,
        &[
            "nw-220-sensor-pairing-and-batteries",
            "nw-220-hub-offline",
            "how-refunds-work",
            "reset-password",
        ],
    )
    .await;

    // Over 4000 characters: refused before any work, with a message that says why.
    for query in ["x".repeat(4001), "refund ".repeat(15_000)] {
        for mode in ["full_text", "vector", "hybrid"] {
            let response = server
                .send(
                    &owner,
                    Method::POST,
                    "/api/kb/search",
                    Some(json!({ "query": query, "mode": mode })),
                )
                .await;
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
            let (code, message) = error_of(response).await;
            assert_eq!(code, "invalid");
            assert!(message.contains("at most 4000 characters"), "{message}");
        }
    }

    // A word repeated a thousand times is one word: the code still decides.
    let repeated = format!("{} e-1077", "battery ".repeat(480));
    assert!(repeated.chars().count() <= 4000);
    for mode in ["full_text", "hybrid"] {
        let found = search(&server, &owner, &repeated, mode, 5).await;
        assert_eq!(
            slugs(&found)[0],
            "nw-220-sensor-pairing-and-batteries",
            "{mode}"
        );
    }

    // Hundreds of different words that are all in the articles: at most MAX_TERMS are
    // searched, the rarest first, so the code (in one chunk) is among them.
    let pool = PgPool::connect(&server.database_url).await.unwrap();
    let (collection, chunks): (i64, i64) =
        sqlx::query_as("SELECT collection_id, count(*) FROM vector_documents GROUP BY 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    let texts: Vec<String> = sqlx::query_scalar("SELECT text FROM vector_documents")
        .fetch_all(&pool)
        .await
        .unwrap();
    let mut words: Vec<&str> = texts
        .iter()
        .flat_map(|t| t.split(|c: char| !c.is_alphabetic()))
        .filter(|w| w.len() > 3)
        .collect();
    words.sort_unstable();
    words.dedup();
    let mut many: String = words
        .iter()
        .take(400)
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    many.truncate(3900);
    many.push_str(" E-1077");
    let terms: Vec<(String, i64)> =
        sqlx::query_as("SELECT lexeme, documents FROM vector_query_terms($1, $2, $3)")
            .bind(collection)
            .bind(&many)
            .bind(MAX_TERMS)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(terms.len(), MAX_TERMS as usize, "{terms:?}");
    assert!(
        terms.iter().any(|(lexeme, _)| lexeme == "-1077"),
        "{terms:?}"
    );
    let searched_max = terms.iter().map(|(_, n)| *n).max().unwrap();
    let rarest_left_out: Option<i64> = sqlx::query_scalar(
        "SELECT min(s.documents) FROM vector_term_stats s
          WHERE s.collection_id = $1
            AND s.lexeme IN (SELECT lexeme FROM unnest(to_tsvector('english', $2)))
            AND s.lexeme <> ALL ($3)",
    )
    .bind(collection)
    .bind(&many)
    .bind(terms.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        rarest_left_out.unwrap() >= searched_max,
        "a commoner word was searched before a rarer one"
    );
    assert!(searched_max < chunks);
    for mode in ["full_text", "vector", "hybrid"] {
        let found = search(&server, &owner, &many, mode, 10).await;
        assert!(!found.is_empty(), "{mode}");
    }
    let found = search(&server, &owner, &many, "full_text", 10).await;
    assert!(
        slugs(&found).contains(&"nw-220-sensor-pairing-and-batteries".to_string()),
        "{:?}",
        slugs(&found)
    );

    // A long question to answer is bounded the same way: answered, and cited.
    let question = format!(
        "What does E-1077 mean? {}",
        "Please tell me what this code on my sensor means. ".repeat(79)
    );
    assert!((3900..=4000).contains(&question.chars().count()));
    let (status, answer) = post(
        &server,
        &owner,
        "/api/kb/answer",
        json!({ "question": question }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["citations"][0]["slug"], "nw-220-sensor-pairing-and-batteries",
        "{answer}"
    );
    server.stop().await;
}

#[tokio::test]
async fn full_text_ranks_by_bm25_with_statistics_kept_by_the_database() {
    let server = TestServer::start().await;
    let (_, owner) = server.create_workspace("kb-bm25").await;
    publish(
        &server,
        &owner,
        &[
            ("alpha", "The pump hums. The pump starts. The pump stops."),
            ("beta", "The pump leaks at the gasket."),
            ("gamma", "The pump needs power."),
            ("delta", "The pump is blue."),
            ("epsilon", "Close the valve."),
            (
                "zeta",
                "Close the valve, then write down the serial number, the date, the \
                 meter reading, the outside temperature, the colour of the casing, the \
                 name of the installer and anything else printed on the sticker.",
            ),
        ],
    )
    .await;

    // A rare word counts more than a common one said three times.
    let found = slugs(&search(&server, &owner, "pump gasket", "full_text", 10).await);
    assert_eq!(found[0], "beta", "{found:?}");
    assert_eq!(found.len(), 4, "every pump matches: {found:?}");

    // The same word once: in the short document it weighs more.
    let found = slugs(&search(&server, &owner, "valve", "full_text", 10).await);
    assert_eq!(found, ["epsilon", "zeta"]);

    // `-word` leaves out documents holding it.
    let found = slugs(&search(&server, &owner, "pump -gasket", "full_text", 10).await);
    assert!(!found.contains(&"beta".to_string()), "{found:?}");
    assert_eq!(found.len(), 3, "{found:?}");

    // The statistics follow the chunks: counts per word and per collection.
    let pool = PgPool::connect(&server.database_url).await.unwrap();
    let documents_with = |lexeme: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT coalesce(sum(documents), 0)::bigint FROM vector_term_stats WHERE lexeme = $1",
            )
            .bind(lexeme)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(documents_with("pump").await, 4);
    assert_eq!(documents_with("gasket").await, 1);
    let consistent = || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, bool>(
                "SELECT (s.documents, s.total_length) = (SELECT count(*), sum(vector_tsv_length(d.tsv))
                                                           FROM vector_documents d
                                                          WHERE d.collection_id = s.collection_id)
                   FROM vector_text_stats s",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert!(consistent().await);
    let (status, body) = post(&server, &owner, "/api/kb/articles/beta/archive", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(documents_with("gasket").await, 0);
    assert_eq!(documents_with("pump").await, 3);
    assert!(consistent().await);
    // A new revision replaces the article's chunks: the old words leave the counts.
    let (status, body) = post(
        &server,
        &owner,
        "/api/kb/articles/alpha/revisions",
        json!({ "body": "The gasket is new." }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = post(
        &server,
        &owner,
        "/api/kb/articles/alpha/publish",
        json!({ "version": 2 }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    super::knowledge_base::wait_indexed(&server, &owner).await;
    assert_eq!(documents_with("gasket").await, 1);
    assert_eq!(documents_with("pump").await, 2);
    assert!(consistent().await);
    server.stop().await;
}

/// Ten topics asked about thirty times, each city named in questions of three topics.
const CITY_QUESTIONS: [[&str; 3]; 10] = [
    [
        "Do you have an office in Tbilisi?",
        "is there a Northwind office in Lisbon I can visit",
        "where is your office in Nairobi located",
    ],
    [
        "How many people live in Tbilisi?",
        "what is the population of Osaka",
        "how big is Nairobi, how many inhabitants",
    ],
    [
        "What's the weather like in Lisbon in winter?",
        "will it rain in Osaka next week",
        "how cold does Montreal get in January",
    ],
    [
        "How long does shipping to Montreal take?",
        "delivery time for a router sent to Tbilisi",
        "when will my order arrive in Lima",
    ],
    [
        "Is there a support phone number for customers in Lima?",
        "what number do I call for help from Krakow",
        "can I phone your support line from Osaka",
    ],
    [
        "Are you hiring engineers in Krakow?",
        "any open jobs at Northwind in Lisbon",
        "do you have vacancies in Montreal",
    ],
    [
        "Is there a data center near Nairobi for lower latency?",
        "do you host servers in Krakow",
        "which region is closest to Lima for hosting my data",
    ],
    [
        "Will you hold a user meetup in Osaka this year?",
        "is there a Northwind conference in Tbilisi",
        "any community events planned in Krakow",
    ],
    [
        "Can I pay in the local currency in Lima?",
        "do you bill in Kenyan shillings for customers in Nairobi",
        "can invoices for Montreal be in Canadian dollars",
    ],
    [
        "Can I pick up my router at a store in Lisbon?",
        "is there a shop in Montreal where I can collect my order",
        "click and collect in Nairobi?",
    ],
];

#[tokio::test]
async fn knowledge_gaps_are_grouped_by_what_is_asked_not_by_the_city_named() {
    let server = TestServer::start().await;
    let (_, owner) = server.create_workspace("kb-gap-cities").await;
    // As people would ask them: one question of each topic, then the next round.
    for round in 0..3 {
        for topic in &CITY_QUESTIONS {
            let (status, answer) = post(
                &server,
                &owner,
                "/api/kb/answer",
                json!({ "question": topic[round] }),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            assert_eq!(answer["answered"], false);
        }
    }
    let gaps: Value = server
        .send(&owner, Method::GET, "/api/kb/gaps", None)
        .await
        .json()
        .await
        .unwrap();
    let gaps = gaps["gaps"].as_array().unwrap();
    let topic_of = |question: &str| {
        CITY_QUESTIONS
            .iter()
            .position(|t| t.contains(&question))
            .unwrap()
    };
    let mut counted = 0;
    for group in gaps {
        let examples: Vec<&str> = group["examples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        let topic = topic_of(examples[0]);
        assert!(
            examples.iter().all(|e| topic_of(e) == topic),
            "a group mixes topics because they name the same city: {examples:?}"
        );
        counted += group["count"].as_u64().unwrap();
    }
    assert_eq!(counted, 30);
    // The same question about different cities is one gap.
    for topic in [0, 1, 4] {
        assert!(
            gaps.iter().any(|g| g["count"] == 3
                && g["examples"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|e| topic_of(e.as_str().unwrap()) == topic)),
            "{:?} are not one group: {gaps:?}",
            CITY_QUESTIONS[topic]
        );
    }
    server.stop().await;
}
