//! NUL characters: PostgreSQL stores them in neither `text` nor `jsonb`, so every
//! endpoint refuses them up front — 422 naming the field for bodies, 400 naming the
//! parameter for paths and query strings — and nothing is written.

use agenthost_tests::{ADMIN_TOKEN, StatusCode, TestServer, error_of, plugin_wasm};
use reqwest::Method;
use serde_json::{Value, json};

enum Body {
    None,
    Json(Value),
    Csv(&'static str),
    /// No content type.
    Raw(&'static str),
}

/// Everything the API can write, as JSON, to compare before and after.
async fn snapshot(pool: &sqlx::PgPool) -> Vec<(String, Value)> {
    let tables = [
        "workspaces",
        "api_keys",
        "agents",
        "conversations",
        "messages",
        "turns",
        "tool_calls",
        "plugins",
        "plugin_versions",
        "plugin_invocations",
        "secrets",
        "audit_log",
        "data.customers",
    ];
    let mut all = Vec::new();
    for table in tables {
        // last_used_at is touched in the background by any authenticated request.
        let sql = format!(
            "SELECT coalesce(jsonb_agg(to_jsonb(t) - 'last_used_at' ORDER BY to_jsonb(t)::text), \
             '[]'::jsonb) FROM {table} t"
        );
        let rows: Value = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(pool)
            .await
            .unwrap();
        all.push((table.to_string(), rows));
    }
    all
}

#[tokio::test]
async fn nul_characters_are_refused_naming_the_field_and_nothing_is_written() {
    let server = TestServer::start().await;
    server.install_dexter().await;
    let (workspace, owner) = server.create_workspace("nul").await;
    let owner = owner.as_str();
    let pool = sqlx::PgPool::connect(&server.database_url).await.unwrap();
    // Let the first use of the owner key be recorded before the snapshot.
    server
        .request(Method::GET, "/api/me", owner)
        .send()
        .await
        .unwrap();
    let before = snapshot(&pool).await;

    let keys_path = format!("/api/admin/workspaces/{workspace}/keys");
    let admin = ADMIN_TOKEN;
    let nul = "a\u{0}b";
    // (method, path, credentials, body, status, what the message must name)
    let cases = [
        // Bodies: 422 naming the JSON path.
        (
            Method::POST,
            "/api/admin/workspaces",
            admin,
            Body::Json(json!({ "slug": "nul-two", "name": nul })),
            422,
            "`name`",
        ),
        (
            Method::POST,
            keys_path.as_str(),
            admin,
            Body::Json(json!({ "name": nul, "role": "member" })),
            422,
            "`name`",
        ),
        (
            Method::POST,
            "/api/keys",
            owner,
            Body::Json(json!({ "name": nul, "role": "member" })),
            422,
            "`name`",
        ),
        (
            Method::POST,
            "/api/agents",
            owner,
            Body::Json(json!({ "slug": "nul-agent", "name": nul })),
            422,
            "`name`",
        ),
        (
            Method::PATCH,
            "/api/agents/dexter",
            owner,
            Body::Json(json!({ "system_prompt": nul })),
            422,
            "`system_prompt`",
        ),
        (
            Method::PATCH,
            "/api/agents/dexter",
            owner,
            Body::Json(json!({ "tools": [{ "plugin": "dexter", "tool": nul }] })),
            422,
            "`tools[0].tool`",
        ),
        (
            Method::POST,
            "/api/agents/dexter/chat",
            owner,
            Body::Json(json!({ "message": nul })),
            422,
            "`message`",
        ),
        (
            Method::POST,
            "/api/data/customers",
            owner,
            Body::Json(json!([
                { "external_id": "c1", "name": "Acme", "created_on": "2025-01-01" },
                { "external_id": "c2", "name": nul, "created_on": "2025-01-01" },
            ])),
            422,
            "`[1].name`",
        ),
        (
            Method::POST,
            "/api/data/customers",
            owner,
            Body::Csv("external_id,name,created_on\nc1,Acme,2025-01-01\nc2,Be\0ta,2025-01-01\n"),
            422,
            "row 2, field `name`",
        ),
        (
            // The import reads a body without a content type as JSON.
            Method::POST,
            "/api/data/customers",
            owner,
            Body::Raw(r#"[{"external_id": "c1", "name": "A\u0000", "created_on": "2025-01-01"}]"#),
            422,
            "`[0].name`",
        ),
        (
            Method::PUT,
            "/api/admin/plugins/dexter/settings",
            admin,
            Body::Json(json!({ "region": nul })),
            422,
            "`region`",
        ),
        (
            Method::PUT,
            "/api/admin/plugins/dexter/settings",
            admin,
            Body::Json(json!({ "nested": { "k\u{0}": 1 } })),
            422,
            "the key `nested.k\\u0000`",
        ),
        (
            Method::PUT,
            "/api/admin/plugins/dexter/versions/0.1.0/grants",
            admin,
            Body::Json(json!({ "secrets": [nul] })),
            422,
            "`secrets[0]`",
        ),
        (
            Method::PUT,
            "/api/admin/secrets/stripe",
            admin,
            Body::Json(json!({ "value": nul })),
            422,
            "`value`",
        ),
        (
            Method::POST,
            "/api/tools/dexter/revenue_analysis",
            owner,
            Body::Json(json!({ "period": nul })),
            422,
            "`period`",
        ),
        // Path parameters: 400 naming the parameter.
        (
            Method::GET,
            "/api/agents/%00",
            owner,
            Body::None,
            400,
            "`agent`",
        ),
        (
            Method::PATCH,
            "/api/agents/dex%00ter",
            owner,
            Body::Json(json!({ "name": "Dexter" })),
            400,
            "`agent`",
        ),
        (
            Method::DELETE,
            "/api/agents/%00",
            owner,
            Body::None,
            400,
            "`agent`",
        ),
        (
            Method::GET,
            "/api/agents/%00/health",
            owner,
            Body::None,
            400,
            "`agent`",
        ),
        (
            Method::POST,
            "/api/agents/%00/chat",
            owner,
            Body::Json(json!({ "message": "hi" })),
            400,
            "`agent`",
        ),
        (
            Method::GET,
            "/api/admin/plugins/%00",
            admin,
            Body::None,
            400,
            "`name`",
        ),
        (
            Method::POST,
            "/api/admin/plugins/dexter%00/disable",
            admin,
            Body::None,
            400,
            "`name`",
        ),
        (
            Method::PUT,
            "/api/admin/plugins/%00/settings",
            admin,
            Body::Json(json!({})),
            400,
            "`name`",
        ),
        (
            Method::POST,
            "/api/admin/plugins/dexter/versions/%00/activate",
            admin,
            Body::None,
            400,
            "`version`",
        ),
        (
            Method::PUT,
            "/api/admin/secrets/%00",
            admin,
            Body::Json(json!({ "value": "v" })),
            400,
            "`name`",
        ),
        (
            Method::GET,
            "/api/data/%00",
            owner,
            Body::None,
            400,
            "`entity`",
        ),
        (
            Method::POST,
            "/api/tools/dexter/%00",
            owner,
            Body::Json(json!({})),
            400,
            "`tool`",
        ),
        // Query strings: 400 naming the parameter.
        (
            Method::GET,
            "/api/conversations?agent=%00",
            owner,
            Body::None,
            400,
            "`agent`",
        ),
        (
            Method::GET,
            "/api/usage?group_by=day%00",
            owner,
            Body::None,
            400,
            "`group_by`",
        ),
    ];
    for (method, path, token, body, status, named) in cases {
        let what = format!("{method} {path}");
        let mut request = server.request(method, path, token);
        request = match body {
            Body::None => request,
            Body::Json(body) => request.json(&body),
            Body::Csv(text) => request.header("content-type", "text/csv").body(text),
            Body::Raw(text) => request.body(text),
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{what}");
        let (code, message) = error_of(response).await;
        let expected_code = if status == 422 {
            "invalid"
        } else {
            "bad_request"
        };
        assert_eq!(code, expected_code, "{what}: {message}");
        assert!(message.contains(named), "{what}: {message}");
        assert!(message.contains("NUL"), "{what}: {message}");
    }

    // A plugin upload whose manifest holds a NUL.
    let mut manifest: Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../plugins/dexter/manifest.json"
        ))
        .unwrap(),
    )
    .unwrap();
    manifest["version"] = json!("0.1.1");
    manifest["description"] = json!(nul);
    let response = server
        .upload_plugin(&manifest, plugin_wasm("dexter"), false)
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (_, message) = error_of(response).await;
    assert!(message.contains("`manifest.description`"), "{message}");

    assert_eq!(snapshot(&pool).await, before, "something was written");
    server.stop().await;
}
