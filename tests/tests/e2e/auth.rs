//! Credentials, roles, revocation, rate limits and the audit trail.

use agenthost_tests::{ADMIN_TOKEN, StatusCode, TestServer, error_of};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn missing_malformed_and_unknown_credentials_get_401() {
    let server = TestServer::start().await;
    let response = server
        .client
        .get(server.url("/api/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (code, message) = error_of(response).await;
    assert_eq!(code, "unauthorized");
    assert!(message.contains("Bearer"), "{message}");

    let response = server
        .client
        .get(server.url("/api/me"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    for token in [
        "ahk_doesnotexist0000000000000000000",
        "aha_wrong",
        "garbage",
    ] {
        let response = server
            .request(Method::GET, "/api/me", token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token}");
        let response = server
            .request(Method::GET, "/api/admin/workspaces", token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token}");
    }
    server.stop().await;
}

async fn status_of(
    server: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> StatusCode {
    let mut request = server.request(method, path, token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().status()
}

#[tokio::test]
async fn each_role_gets_exactly_its_rights() {
    let server = TestServer::start().await;
    let (workspace, owner) = server.create_workspace("roles").await;
    let (_, admin) = server.create_key(&workspace, "admin").await;
    let (_, member) = server.create_key(&workspace, "member").await;
    let (_, viewer) = server.create_key(&workspace, "viewer").await;
    let new_key = |role: &str| Some(json!({ "name": "k", "role": role }));

    // (key, GET /api/me, GET /api/keys, POST member key, POST owner key, GET /api/audit)
    let expectations = [
        (&owner, 200, 200, 201, 201, 200),
        (&admin, 200, 200, 201, 403, 200),
        (&member, 200, 403, 403, 403, 403),
        (&viewer, 200, 403, 403, 403, 403),
    ];
    for (key, me, list, create_member, create_owner, audit) in expectations {
        let got = [
            status_of(&server, Method::GET, "/api/me", key, None).await,
            status_of(&server, Method::GET, "/api/keys", key, None).await,
            status_of(&server, Method::POST, "/api/keys", key, new_key("member")).await,
            status_of(&server, Method::POST, "/api/keys", key, new_key("owner")).await,
            status_of(&server, Method::GET, "/api/audit", key, None).await,
        ];
        let want = [me, list, create_member, create_owner, audit]
            .map(|s| StatusCode::from_u16(s).unwrap());
        assert_eq!(got, want, "key {}", &key[..12]);
    }

    let me: Value = server
        .request(Method::GET, "/api/me", &viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "viewer");
    assert_eq!(me["workspace"]["id"], workspace.as_str());

    // A 403 explains itself.
    let response = server
        .request(Method::GET, "/api/keys", &member)
        .send()
        .await
        .unwrap();
    let (code, message) = error_of(response).await;
    assert_eq!(code, "forbidden");
    assert!(
        message.contains("admin") && message.contains("member"),
        "{message}"
    );
    server.stop().await;
}

#[tokio::test]
async fn admin_token_and_workspace_keys_stay_in_their_lanes() {
    let server = TestServer::start().await;
    let (_, owner) = server.create_workspace("lanes").await;
    let status = status_of(&server, Method::GET, "/api/admin/workspaces", &owner, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let status = status_of(&server, Method::GET, "/api/me", ADMIN_TOKEN, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    server.stop().await;
}

#[tokio::test]
async fn revoked_keys_stop_working_and_secrets_are_never_listed() {
    let server = TestServer::start().await;
    let (workspace, owner) = server.create_workspace("revoke").await;
    let (member_id, member) = server.create_key(&workspace, "member").await;
    let (admin_id, admin) = server.create_key(&workspace, "admin").await;
    let owner_id = server
        .request(Method::GET, "/api/me", &owner)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["key_id"]
        .as_str()
        .unwrap()
        .to_string();

    assert_eq!(
        status_of(&server, Method::GET, "/api/me", &member, None).await,
        StatusCode::OK
    );
    let path = format!("/api/keys/{member_id}");
    assert_eq!(
        status_of(&server, Method::DELETE, &path, &admin, None).await,
        StatusCode::NO_CONTENT
    );
    let response = server
        .request(Method::GET, "/api/me", &member)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (_, message) = error_of(response).await;
    assert!(message.contains("revoked"), "{message}");

    // An admin cannot revoke an owner; an owner can revoke an admin.
    let owner_path = format!("/api/keys/{owner_id}");
    assert_eq!(
        status_of(&server, Method::DELETE, &owner_path, &admin, None).await,
        StatusCode::FORBIDDEN
    );
    let admin_path = format!("/api/keys/{admin_id}");
    assert_eq!(
        status_of(&server, Method::DELETE, &admin_path, &owner, None).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        status_of(&server, Method::GET, "/api/me", &admin, None).await,
        StatusCode::UNAUTHORIZED
    );

    let keys: Value = server
        .request(Method::GET, "/api/keys", &owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 3);
    for key in keys {
        assert!(
            key.get("secret").is_none() && key.get("secret_sha256").is_none(),
            "{key}"
        );
    }
    let listed_member = keys.iter().find(|k| k["id"] == member_id.as_str()).unwrap();
    assert!(listed_member["revoked_at"].is_string());
    assert!(member.starts_with(listed_member["prefix"].as_str().unwrap()));

    // Keys of another workspace are invisible: 404, not 403.
    let (_, other_owner) = server.create_workspace("other").await;
    let path = format!("/api/keys/{owner_id}");
    assert_eq!(
        status_of(&server, Method::DELETE, &path, &other_owner, None).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status_of(&server, Method::GET, "/api/me", &owner, None).await,
        StatusCode::OK
    );
    server.stop().await;
}

#[tokio::test]
async fn each_key_is_rate_limited_with_retry_after() {
    let server = TestServer::start_with(|config| config.rate_limit_per_minute = 3).await;
    // Workspace creation uses the admin token's own bucket (1 of 3).
    let (workspace, owner) = server.create_workspace("limits").await;
    let (_, other) = server.create_key(&workspace, "viewer").await;
    for _ in 0..3 {
        assert_eq!(
            status_of(&server, Method::GET, "/api/me", &owner, None).await,
            StatusCode::OK
        );
    }
    let response = server
        .request(Method::GET, "/api/me", &owner)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=20).contains(&retry_after),
        "3/min refills one every 20 s: {retry_after}"
    );
    let (code, _) = error_of(response).await;
    assert_eq!(code, "rate_limited");

    // Another key has its own allowance.
    assert_eq!(
        status_of(&server, Method::GET, "/api/me", &other, None).await,
        StatusCode::OK
    );
    server.stop().await;
}

#[tokio::test]
async fn admin_actions_are_audited() {
    let server = TestServer::start().await;
    let (workspace, owner) = server.create_workspace("audited").await;
    let (key_id, _) = server.create_key(&workspace, "member").await;
    let path = format!("/api/keys/{key_id}");
    assert_eq!(
        status_of(&server, Method::DELETE, &path, &owner, None).await,
        StatusCode::NO_CONTENT
    );

    let entries: Value = server
        .request(Method::GET, "/api/audit", &owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["api_key.revoke", "api_key.create", "workspace.create"],
        "newest first"
    );
    let revoke = &entries[0];
    assert!(revoke["actor"].as_str().unwrap().starts_with("key:"));
    assert_eq!(revoke["target"], key_id.as_str());
    assert!(revoke["request_id"].is_string());
    assert_eq!(entries[1]["actor"], "admin");

    let all: Value = server
        .request(Method::GET, "/api/admin/audit", ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all.as_array().unwrap().len(), 3);
    server.stop().await;
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let server = TestServer::start().await;
    let (_, owner) = server.create_workspace("scheme").await;
    // RFC 7235: the auth scheme is a case-insensitive token.
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        for (path, token) in [
            ("/api/me", owner.as_str()),
            ("/api/admin/workspaces", ADMIN_TOKEN),
        ] {
            let response = server
                .client
                .get(server.url(path))
                .header("authorization", format!("{scheme} {token}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{scheme} on {path}");
        }
    }
    // Another scheme, or a scheme with no token, is still refused.
    for header in ["Basic dXNlcjpwYXNz", "bearer", "bearer   ", "Bearerx abc"] {
        let response = server
            .client
            .get(server.url("/api/me"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{header:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn role_refusals_read_as_english() {
    let server = TestServer::start().await;
    let (workspace, owner) = server.create_workspace("grammar").await;
    let (_, admin) = server.create_key(&workspace, "admin").await;
    let (_, member) = server.create_key(&workspace, "member").await;
    let owner_id = server
        .request(Method::GET, "/api/me", &owner)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["key_id"]
        .as_str()
        .unwrap()
        .to_string();

    let response = server
        .request(Method::POST, "/api/keys", &admin)
        .json(&json!({ "name": "k", "role": "owner" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (_, message) = error_of(response).await;
    assert_eq!(message, "an admin key cannot create an owner key");

    let response = server
        .request(Method::DELETE, &format!("/api/keys/{owner_id}"), &admin)
        .send()
        .await
        .unwrap();
    let (_, message) = error_of(response).await;
    assert_eq!(message, "an admin key cannot revoke an owner key");

    let response = server
        .request(Method::GET, "/api/keys", &member)
        .send()
        .await
        .unwrap();
    let (_, message) = error_of(response).await;
    assert_eq!(
        message,
        "this needs the admin role or higher; this key is a member key"
    );
    server.stop().await;
}
