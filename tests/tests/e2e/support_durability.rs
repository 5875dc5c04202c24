//! The support job queue survives SIGKILL: a host killed while indexing published
//! articles and enriching tickets leaves jobs `running` under its name; the restarted
//! host sees that name's heartbeat stop and runs them again, and the end state is the
//! same as without the kill (every live revision indexed once, every ticket enriched).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use agenthost_tests::{HostProcess, fresh_database, model_dir};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

const ADMIN: &str = "ah_admin_support_durability_test_token_0001";
const TICKETS: usize = 10;
/// Articles imported: enough that indexing is still going when the host is killed.
const ARTICLES: usize = 16;

fn host_env<'a>(database_url: &'a str, model: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("DATABASE_URL", database_url),
        ("AGENTHOST_ADMIN_TOKEN", ADMIN),
        ("AGENTHOST_WORKFLOW_HEARTBEAT", "200ms"),
        ("AGENTHOST_RATE_LIMIT_PER_MINUTE", "0"),
        ("AGENTHOST_EMBEDDING_MODEL_DIR", model),
        (
            "AGENTHOST_BUNDLED_PLUGINS_DIR",
            "/nonexistent/agenthost-no-bundled-plugins",
        ),
    ]
}

fn articles() -> Value {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/support-kb/articles");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    Value::Array(
        paths
            .iter()
            .take(ARTICLES)
            .map(|p| json!({ "markdown": std::fs::read_to_string(p).unwrap(), "status": "published" }))
            .collect(),
    )
}

async fn jobs(db: &PgPool) -> Vec<(String, String, i32)> {
    sqlx::query_as("SELECT kind, status, attempts FROM support_jobs ORDER BY id")
        .fetch_all(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn jobs_cut_short_by_sigkill_run_again_after_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let database_url = fresh_database().await;
    let model = model_dir().display().to_string();
    let env = host_env(&database_url, &model);
    let host = HostProcess::start(data.path(), &env).await;
    let client = reqwest::Client::new();
    let response = client
        .post(host.url("/api/admin/workspaces"))
        .bearer_auth(ADMIN)
        .json(&json!({ "slug": "durable-kb", "name": "Durable" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let key = response.json::<Value>().await.unwrap()["owner_key"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let response = client
        .post(host.url("/api/kb/import"))
        .bearer_auth(&key)
        .json(&articles())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    for i in 0..TICKETS {
        let response = client
            .post(host.url("/api/tickets"))
            .bearer_auth(&key)
            .json(&json!({
                "subject": format!("Charged twice, order {i}"),
                "description": "My card was billed twice for one invoice.",
                "requester": { "email": format!("c{i}@example.com") },
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    // Kill the host while a job is running and some are done.
    let db = PgPool::connect(&database_url).await.unwrap();
    let started = Instant::now();
    loop {
        let jobs = jobs(&db).await;
        let done = jobs.iter().filter(|j| j.1 == "done").count();
        if done >= 3 && jobs.iter().any(|j| j.1 == "running") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{jobs:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    host.crash().await;
    let cut_short = jobs(&db).await.iter().filter(|j| j.1 == "running").count();
    assert!(cut_short >= 1);

    let host = HostProcess::start(data.path(), &env).await;
    let started = Instant::now();
    loop {
        let jobs = jobs(&db).await;
        if jobs.iter().all(|j| j.1 == "done") {
            // The jobs the kill cut short ran a second time.
            assert!(
                jobs.iter().filter(|j| j.2 >= 2).count() >= cut_short,
                "{jobs:?}"
            );
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(180), "{jobs:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    host.stop().await;

    // Every published article's live revision is indexed, and its chunks are exactly
    // those of that revision (a rerun replaced, didn't add).
    let (indexed, published): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE r.index_status = 'indexed'), count(*)
           FROM data.kb_articles a JOIN data.kb_revisions r ON r.id = a.live_revision_id
          WHERE a.status = 'published'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!((indexed, published), (ARTICLES as i64, ARTICLES as i64));
    let (chunks, expected, stray): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM vector_documents),
                (SELECT sum(chunk_count) FROM data.kb_revisions WHERE index_status = 'indexed'),
                (SELECT count(*) FROM vector_documents d
                  WHERE NOT EXISTS (SELECT 1 FROM data.kb_articles a
                                     WHERE a.live_revision_id::text = d.metadata->>'revision_id'))",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(chunks, expected);
    assert_eq!(stray, 0);
    let enriched: i64 =
        sqlx::query_scalar("SELECT count(*) FROM data.tickets WHERE enrichment IS NOT NULL")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(enriched, TICKETS as i64);
}
