//! Business-data import (`/api/data/{entity}`): JSON and CSV, upsert by external id,
//! all-or-nothing with row-numbered errors, references, isolation; the demo seed.

use agenthost_tests::{StatusCode, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

async fn rows(server: &TestServer, key: &str, entity: &str) -> Value {
    let response = server
        .request(Method::GET, &format!("/api/data/{entity}?limit=1000"), key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn json_rows_are_upserted_by_external_id() {
    let server = TestServer::start().await;
    let (_, key) = server.create_workspace("imports").await;
    let customers = json!([
        { "external_id": "c1", "name": "Acme", "segment": "Enterprise", "created_on": "2025-01-02" },
        { "external_id": "c2", "name": "Beta", "segment": "SMB", "created_on": "2025-02-03" },
    ]);
    let (status, body) = server.import(&key, "customers", &customers).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({ "entity": "customers", "received": 2, "inserted": 2, "updated": 0 })
    );

    // The same external id again replaces the row instead of adding one.
    let changed = json!([{ "external_id": "c1", "name": "Acme Corp", "segment": "Mid-Market", "created_on": "2025-01-02" }]);
    let (status, body) = server.import(&key, "customers", &changed).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["inserted"].clone(), body["updated"].clone()),
        (json!(0), json!(1))
    );
    let listed = rows(&server, &key, "customers").await;
    assert_eq!(listed["total"], 2);
    assert_eq!(listed["rows"][0]["name"], "Acme Corp");
    assert_eq!(listed["rows"][0]["segment"], "Mid-Market");

    // Deals refer to customers and people by their external ids.
    let (status, _) = server
        .import(
            &key,
            "people",
            &json!([{ "external_id": "p1", "name": "Ana", "monthly_quota": 1000 }]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let deals = json!([{ "external_id": "d1", "customer": "c2", "owner": "p1", "amount": "1234.56",
                         "stage": "closed_won", "won": true, "created_on": "2025-02-03",
                         "actual_close": "2025-03-01" }]);
    let (status, body) = server.import(&key, "deals", &deals).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let deal = &rows(&server, &key, "deals").await["rows"][0];
    assert_eq!(deal["amount"], 1234.56);
    assert_eq!(deal["currency"], "USD");
    assert!(deal["customer_id"].is_string() && deal["owner_id"].is_string());
    server.stop().await;
}

#[tokio::test]
async fn one_bad_row_imports_nothing_and_every_problem_has_its_row() {
    let server = TestServer::start().await;
    let (_, key) = server.create_workspace("strict").await;
    let transactions = json!([
        { "external_id": "t1", "type": "expense", "category": "COGS", "amount": 10, "transaction_date": "2025-01-31" },
        { "external_id": "t2", "type": "refund", "category": "COGS", "amount": "ten", "transaction_date": "2025-02-30" },
        { "external_id": "t1", "type": "expense", "category": "OpEx", "amount": 5, "transaction_date": "2025-01-31", "colour": "red" },
        { "external_id": "t4", "type": "expense", "category": "OpEx", "amount": 5, "transaction_date": "2025-01-31", "fiscal_period": 14 },
    ]);
    let (status, body) = server.import(&key, "transactions", &transactions).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "invalid_rows");
    let problems: Vec<(u64, String)> = body["error"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap(),
                e["field"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for expected in [
        (2, "type"),
        (2, "amount"),
        (2, "transaction_date"),
        (3, "colour"),
        (3, "external_id"),
        (4, "fiscal_period"),
    ] {
        assert!(
            problems.contains(&(expected.0, expected.1.to_string())),
            "{expected:?} not in {problems:?}"
        );
    }
    assert!(!problems.iter().any(|(row, _)| *row == 1), "row 1 is fine");
    assert_eq!(rows(&server, &key, "transactions").await["total"], 0);

    // A reference to a row that doesn't exist fails the whole request too.
    let deals = json!([
        { "external_id": "d1", "amount": 1, "stage": "open", "created_on": "2025-01-01" },
        { "external_id": "d2", "customer": "nobody", "amount": 1, "stage": "open", "created_on": "2025-01-01" },
    ]);
    let (status, body) = server.import(&key, "deals", &deals).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["rows"][0]["row"], 2);
    assert_eq!(body["error"]["rows"][0]["field"], "customer");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing was imported")
    );
    assert_eq!(rows(&server, &key, "deals").await["total"], 0);

    // More rows than one request may carry.
    let many: Vec<Value> = (0..10_001)
        .map(|i| json!({ "external_id": format!("p{i}"), "name": "x" }))
        .collect();
    let (status, body) = server.import(&key, "people", &Value::Array(many)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than 10000"),
        "{body}"
    );

    // Not an array, not JSON, an unknown entity, and dates out of order.
    let (status, _) = server
        .import(&key, "deals", &json!({ "external_id": "x" }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = server.import(&key, "invoices", &json!([])).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cost_allocation_rules")
    );
    let (status, body) = server
        .import(&key, "customers", &json!([{ "external_id": "c", "name": "C", "created_on": "2025-05-01", "churned_on": "2025-04-01" }]))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["rows"][0]["field"], "churned_on");
    server.stop().await;
}

#[tokio::test]
async fn csv_is_imported_with_a_header_line_and_roles_are_checked() {
    let server = TestServer::start().await;
    let (workspace, key) = server.create_workspace("csv").await;
    let csv = "external_id,name,segment,acquisition_channel,created_on,churned_on\n\
               c1,Acme,Enterprise,Outbound,2025-01-02,\n\
               c2,\"Beta, Inc\",SMB,Inbound,2025-02-03,2025-09-30\n";
    let response = server
        .request(Method::POST, "/api/data/customers", &key)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let listed = rows(&server, &key, "customers").await;
    assert_eq!(listed["rows"][1]["name"], "Beta, Inc");
    assert_eq!(listed["rows"][1]["churned_on"], "2025-09-30");
    assert_eq!(listed["rows"][0]["churned_on"], Value::Null);

    // CSV errors are numbered by record (row 1 = the line after the header).
    let bad = "external_id,name,created_on\nc3,Gamma,2025-01-01\nc4,Delta,yesterday\n";
    let response = server
        .request(Method::POST, "/api/data/customers", &key)
        .header("content-type", "text/csv")
        .body(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["rows"][0]["row"], 2);
    assert_eq!(body["error"]["rows"][0]["field"], "created_on");

    // Members can read but not import; other workspaces see nothing.
    let (_, member) = server.create_key(&workspace, "member").await;
    let (status, _) = server.import(&member, "customers", &json!([])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(rows(&server, &member, "customers").await["total"], 2);
    let (_, other) = server.create_workspace("other").await;
    assert_eq!(rows(&server, &other, "customers").await["total"], 0);
    server.stop().await;
}

#[tokio::test]
async fn the_demo_seed_is_deterministic_and_idempotent() {
    let first = agenthost::data::demo::dataset();
    let second = agenthost::data::demo::dataset();
    assert_eq!(first, second);
    let count = |name: &str| first.iter().find(|(n, _)| *n == name).unwrap().1.len();
    assert_eq!(count("people"), 6);
    assert!(count("customers") > 100 && count("deals") > count("customers"));
    assert!(count("transactions") > 200);

    let server = TestServer::start().await;
    let pool = sqlx::PgPool::connect(&server.database_url).await.unwrap();
    let seeded = agenthost::data::demo::seed(&pool, "demo").await.unwrap();
    assert!(seeded.owner_secret.is_some());
    assert!(
        seeded
            .rows
            .iter()
            .all(|r| r.updated == 0 && r.inserted == r.received)
    );
    let again = agenthost::data::demo::seed(&pool, "demo").await.unwrap();
    assert!(again.owner_secret.is_none(), "the workspace exists already");
    assert!(
        again
            .rows
            .iter()
            .all(|r| r.inserted == 0 && r.updated == r.received)
    );
    let key = seeded.owner_secret.unwrap();
    assert_eq!(
        rows(&server, &key, "customers").await["total"],
        count("customers")
    );
    server.stop().await;
}
