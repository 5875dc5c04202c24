//! Webhook triggers: `POST /hooks/{workflow}/{token}` starts the workflow's latest
//! version with the request as its input. Signatures are made with the openssl command
//! exactly as docs/automation.md shows, so the recipe is tested too. Every refused
//! request (bad or old signature, too large, wrong type, over the rate, disabled, an
//! old token, a version without the trigger) starts nothing, as the executions list
//! shows.

use std::io::Write;
use std::process::{Command, Stdio};

use agenthost_tests::{StatusCode, TestServer, error_of, plugin_wasm};
use reqwest::Method;
use serde_json::{Value, json};

use super::plugins::json_of;

struct Hooks {
    server: TestServer,
    admin: String,
    member: String,
    viewer: String,
}

impl Hooks {
    async fn start() -> Hooks {
        let server = TestServer::start().await;
        let (workspace, _) = server.create_workspace("hooks").await;
        let (_, admin) = server.create_key(&workspace, "admin").await;
        let (_, member) = server.create_key(&workspace, "member").await;
        let (_, viewer) = server.create_key(&workspace, "viewer").await;
        let manifest = json!({"name": "core", "version": "0.1.0", "kind": "node"});
        let response = server
            .upload_plugin(&manifest, plugin_wasm("core"), true)
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        Hooks {
            server,
            admin,
            member,
            viewer,
        }
    }

    /// A new workflow with `trigger` and one output node of `value`.
    async fn save(&self, slug: &str, trigger: Value, value: Value) {
        let definition = json!({"triggers": [trigger],
            "nodes": [{"id": "out", "type": "core/output", "config": {"value": value}}]});
        self.save_definition(slug, definition).await;
    }

    async fn save_definition(&self, slug: &str, definition: Value) {
        let response = self
            .server
            .send(
                &self.admin,
                Method::POST,
                "/api/workflows",
                Some(json!({"slug": slug, "name": slug, "definition": definition})),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "{}",
            response.text().await.unwrap()
        );
    }

    /// `POST …/hook/rotate` as the admin; the response.
    async fn rotate(&self, slug: &str, body: Option<Value>) -> Value {
        let response = self
            .server
            .send(
                &self.admin,
                Method::POST,
                &format!("/api/workflows/{slug}/hook/rotate"),
                body,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        json_of(response).await
    }

    /// A request to a hook URL, without API credentials.
    fn hook(&self, url_path: &str) -> reqwest::RequestBuilder {
        self.server.client.post(self.server.url(url_path))
    }

    /// The status of an empty `POST` to a hook URL.
    async fn status(&self, url_path: &str) -> StatusCode {
        self.hook(url_path).send().await.unwrap().status()
    }

    async fn executions(&self, slug: &str) -> Vec<Value> {
        let response = self
            .server
            .send(
                &self.viewer,
                Method::GET,
                &format!("/api/executions?workflow={slug}"),
                None,
            )
            .await;
        json_of(response).await["executions"]
            .as_array()
            .unwrap()
            .clone()
    }

    async fn patch(&self, slug: &str, body: Value) -> reqwest::Response {
        self.server
            .send(
                &self.admin,
                Method::PATCH,
                &format!("/api/workflows/{slug}"),
                Some(body),
            )
            .await
    }
}

/// `sh` running `script` with `body` on stdin and `vars` in the environment; its
/// output, trimmed.
fn shell(script: &str, vars: &[(&str, &str)], body: &[u8]) -> String {
    let mut child = Command::new("sh")
        .args(["-c", script])
        .envs(vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{script}");
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// `X-Webhook-Signature` as docs/automation.md computes it with openssl.
fn hmac_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    let hex = shell(
        r#"openssl dgst -sha256 -hmac "$SECRET" | sed 's/^.* //'"#,
        &[("SECRET", secret)],
        &message,
    );
    format!("sha256={hex}")
}

/// `webhook-signature` of the Standard Webhooks spec, with openssl as the docs show.
fn standard_signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut message = format!("{id}.{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    let signature = shell(
        r#"KEY=$(printf %s "${SECRET#whsec_}" | openssl base64 -d -A | od -An -tx1 | tr -d ' \n')
           openssl dgst -sha256 -mac HMAC -macopt "hexkey:$KEY" -binary | openssl base64 -A"#,
        &[("SECRET", secret)],
        &message,
    );
    format!("v1,{signature}")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A request signed with `hmac_sha256` at `timestamp`.
fn signed(
    request: reqwest::RequestBuilder,
    secret: &str,
    timestamp: i64,
    content_type: &str,
    body: &[u8],
) -> reqwest::RequestBuilder {
    request
        .header("content-type", content_type)
        .header("x-webhook-timestamp", timestamp.to_string())
        .header(
            "x-webhook-signature",
            hmac_signature(secret, timestamp, body),
        )
        .body(body.to_vec())
}

async fn code_of(response: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    error_of(response).await.0
}

#[tokio::test]
async fn a_signed_request_starts_one_execution_and_every_refusal_starts_none() {
    let h = Hooks::start().await;
    h.save(
        "orders",
        json!({"type": "webhook", "signature": {}, "max_body": 1024}),
        json!(1),
    )
    .await;
    // Saved, but no token issued yet: nothing to call.
    let response = h
        .server
        .send(&h.member, Method::GET, "/api/workflows/orders/hook", None)
        .await;
    let hook = json_of(response).await;
    assert_eq!(
        (hook["issued"].clone(), hook["active"].clone()),
        (json!(false), json!(false))
    );
    let issued = h.rotate("orders", None).await;
    let url = issued["url_path"].as_str().unwrap().to_string();
    let secret = issued["secret"].as_str().unwrap().to_string();
    assert!(url.starts_with("/hooks/orders/whk_"), "{url}");
    assert_eq!(issued["signed"], true);

    let body = br#"{"order": 7, "items": ["a", "b"]}"#;
    let first = signed(
        h.hook(&format!("{url}?source=shop&tag=a&tag=b")),
        &secret,
        now(),
        "application/json",
        body,
    )
    .header("authorization", "Bearer not-for-the-workflow")
    .header("x-api-key", "neither")
    .header("idempotency-key", "delivery-1")
    .send()
    .await
    .unwrap();
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let header_id = first.headers()["x-execution-id"]
        .to_str()
        .unwrap()
        .to_string();
    let accepted = json_of(first).await;
    let id = accepted["execution_id"].as_str().unwrap().to_string();
    assert_eq!(header_id, id);
    let executions = h.executions("orders").await;
    assert_eq!(executions.len(), 1);
    let input = &executions[0]["input"];
    assert_eq!(input["method"], "POST");
    assert_eq!(input["body"], json!({"order": 7, "items": ["a", "b"]}));
    assert_eq!(input["query"], json!({"source": "shop", "tag": ["a", "b"]}));
    assert_eq!(input["headers"]["content-type"], "application/json");
    assert_eq!(input["headers"]["idempotency-key"], "delivery-1");
    for secret_header in ["authorization", "x-api-key", "x-webhook-signature"] {
        assert!(
            input["headers"].get(secret_header).is_none(),
            "{secret_header} in {input}"
        );
    }
    assert_eq!(executions[0]["idempotency_key"], "webhook:delivery-1");

    // The sender retries the delivery: the same execution, nothing new.
    let retried = signed(h.hook(&url), &secret, now(), "application/json", body)
        .header("idempotency-key", "delivery-1")
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), StatusCode::ACCEPTED);
    assert_eq!(json_of(retried).await["execution_id"], id.as_str());

    // Refusals, each naming why; none starts anything.
    let unsigned = h
        .hook(&url)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        code_of(unsigned, StatusCode::UNAUTHORIZED).await,
        "unauthorized"
    );
    let wrong_secret = signed(h.hook(&url), "whsec_guess", now(), "application/json", body);
    let response = wrong_secret.send().await.unwrap();
    assert_eq!(
        code_of(response, StatusCode::UNAUTHORIZED).await,
        "unauthorized"
    );
    // A signature of another body.
    let response = signed(h.hook(&url), &secret, now(), "application/json", b"{}")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // A correctly signed request replayed ten minutes later.
    let response = signed(h.hook(&url), &secret, now() - 600, "application/json", body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (_, message) = error_of(response).await;
    assert!(message.contains("from the server's clock"), "{message}");
    let big = format!(r#"{{"pad": "{}"}}"#, "x".repeat(1100));
    let response = signed(
        h.hook(&url),
        &secret,
        now(),
        "application/json",
        big.as_bytes(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(
        code_of(response, StatusCode::PAYLOAD_TOO_LARGE).await,
        "payload_too_large"
    );
    let response = signed(h.hook(&url), &secret, now(), "application/xml", b"<order/>")
        .send()
        .await
        .unwrap();
    assert_eq!(
        code_of(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await,
        "unsupported_media_type"
    );
    let response = signed(
        h.hook(&url),
        &secret,
        now(),
        "application/json",
        b"{\"order\":",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(
        code_of(response, StatusCode::BAD_REQUEST).await,
        "bad_request"
    );
    let wrong_token = format!("{}x", &url[..url.len() - 1]);
    let response = signed(
        h.hook(&wrong_token),
        &secret,
        now(),
        "application/json",
        body,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(code_of(response, StatusCode::NOT_FOUND).await, "not_found");
    assert_eq!(
        h.executions("orders").await.len(),
        1,
        "a refused request started"
    );

    // Form fields and text are read too.
    let response = signed(
        h.hook(&url),
        &secret,
        now(),
        "application/x-www-form-urlencoded",
        b"name=Ada+L&tag=1&tag=2",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let response = signed(
        h.hook(&url),
        &secret,
        now(),
        "text/plain; charset=utf-8",
        b"hi",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let mut bodies: Vec<Value> = h
        .executions("orders")
        .await
        .iter()
        .map(|e| e["input"]["body"].clone())
        .collect();
    bodies.sort_by_key(|b| b.to_string());
    assert_eq!(
        bodies,
        [
            json!("hi"),
            json!({"order": 7, "items": ["a", "b"]}),
            json!({"name": "Ada L", "tag": ["1", "2"]})
        ]
    );

    // A rate limit of 2 a minute: the third request is 429 with Retry-After.
    h.save(
        "limited",
        json!({"type": "webhook", "rate_limit_per_minute": 2}),
        json!(1),
    )
    .await;
    let url = h.rotate("limited", None).await["url_path"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..2 {
        let response = h.hook(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    let response = h.hook(&url).send().await.unwrap();
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    assert_eq!(
        code_of(response, StatusCode::TOO_MANY_REQUESTS).await,
        "rate_limited"
    );
    assert_eq!(h.executions("limited").await.len(), 2);
}

#[tokio::test]
async fn standard_webhooks_senders_are_verified_and_their_message_id_is_the_key() {
    let h = Hooks::start().await;
    h.save(
        "inbox",
        json!({"type": "webhook", "signature": {"scheme": "standard_webhooks", "tolerance": "1m"}}),
        json!(1),
    )
    .await;
    let issued = h.rotate("inbox", None).await;
    let url = issued["url_path"].as_str().unwrap().to_string();
    let secret = issued["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let body = br#"{"type": "invoice.paid"}"#;
    let send = |id: &'static str, timestamp: i64, signature: String| {
        h.hook(&url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_vec())
            .send()
    };
    let at = now();
    // A sender rotating its key signs with both; one matching signature is enough.
    let both = format!(
        "v1,Zm9yZ2VkLXNpZ25hdHVyZS0wMDAwMDAwMDAwMDA= {}",
        standard_signature(&secret, "msg_1", at, body)
    );
    let response = send("msg_1", at, both.clone()).await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let id = json_of(response).await["execution_id"].clone();
    // Redelivered with the same message id: the same execution.
    let response = send("msg_1", at, both).await.unwrap();
    assert_eq!(json_of(response).await["execution_id"], id);
    // The id is signed: another id with the same signature is refused.
    let response = send("msg_2", at, standard_signature(&secret, "msg_1", at, body))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Older than the trigger's one-minute tolerance.
    let old = at - 90;
    let response = send(
        "msg_3",
        old,
        standard_signature(&secret, "msg_3", old, body),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let executions = h.executions("inbox").await;
    assert_eq!(executions.len(), 1);
    assert_eq!(executions[0]["idempotency_key"], "webhook:msg_1");
    assert!(
        executions[0]["input"]["headers"]
            .get("webhook-signature")
            .is_none()
    );
}

#[tokio::test]
async fn on_output_answers_with_the_output_and_never_hangs() {
    let h = Hooks::start().await;
    h.save(
        "echo",
        json!({"type": "webhook", "respond": "on_output"}),
        json!({"hello": "{{ input.body.name }}"}),
    )
    .await;
    let url = h.rotate("echo", None).await["url_path"]
        .as_str()
        .unwrap()
        .to_string();
    let response = h
        .hook(&url)
        .json(&json!({"name": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let id = response.headers()["x-execution-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(json_of(response).await, json!({"hello": "Ada"}));
    assert_eq!(h.executions("echo").await[0]["id"], id.as_str());

    // An approval no one gives: after `respond_timeout` the caller gets 202 and the id.
    h.save_definition(
        "approve",
        json!({"triggers": [{"type": "webhook", "respond": "on_output", "respond_timeout": "1s"}],
               "nodes": [{"id": "ask", "type": "core/approval", "config": {"message": "ok?"}},
                         {"id": "out", "type": "core/output", "config": {"value": 1}}],
               "edges": [{"from": "ask", "to": "out", "branch": "approved"}]}),
    )
    .await;
    let url = h.rotate("approve", None).await["url_path"]
        .as_str()
        .unwrap()
        .to_string();
    let response = h.hook(&url).json(&json!({})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let accepted = json_of(response).await;
    assert_eq!(accepted["status"], "waiting");
    assert_eq!(
        h.executions("approve").await[0]["id"],
        accepted["execution_id"]
    );

    // A failed execution is a 502 naming it, not a 200.
    h.save_definition(
        "fails",
        json!({"triggers": [{"type": "webhook", "respond": "on_output"}],
               "nodes": [{"id": "wait", "type": "core/delay",
                          "config": {"duration": "{{ input.body.wait }}"}}]}),
    )
    .await;
    let url = h.rotate("fails", None).await["url_path"]
        .as_str()
        .unwrap()
        .to_string();
    let response = h
        .hook(&url)
        .json(&json!({"wait": "soon"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body = json_of(response).await;
    assert_eq!(body["error"]["code"], "execution_failed");
    assert_eq!(
        h.executions("fails").await[0]["id"],
        body["error"]["execution_id"]
    );
}

#[tokio::test]
async fn rotation_versions_and_the_enabled_flag_decide_whether_the_url_answers() {
    let h = Hooks::start().await;
    h.save("flow", json!({"type": "webhook"}), json!(1)).await;
    let first = h.rotate("flow", None).await;
    let t1 = first["url_path"].as_str().unwrap().to_string();
    assert!(
        first["secret"].is_string(),
        "the first issue shows the secret"
    );
    assert_eq!(h.status(&t1).await, StatusCode::ACCEPTED);

    // Members see the hook without credentials; only admins rotate; viewers see nothing.
    let response = h
        .server
        .send(&h.member, Method::GET, "/api/workflows/flow/hook", None)
        .await;
    let hook = json_of(response).await;
    assert_eq!(hook["path"], "/hooks/flow/{token}");
    assert_eq!(
        (hook["issued"].clone(), hook["active"].clone()),
        (json!(true), json!(true))
    );
    assert!(
        hook.get("token").is_none() && hook.get("secret").is_none(),
        "{hook}"
    );
    assert!(!hook.to_string().contains(&t1[12..]), "{hook}");
    let response = h
        .server
        .send(&h.viewer, Method::GET, "/api/workflows/flow/hook", None)
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = h
        .server
        .send(
            &h.member,
            Method::POST,
            "/api/workflows/flow/hook/rotate",
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // Rotated: the old token stops at once.
    let t2 = h.rotate("flow", None).await["url_path"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(h.status(&t1).await, StatusCode::NOT_FOUND);
    assert_eq!(h.status(&t2).await, StatusCode::ACCEPTED);
    // With a grace period both work until it ends.
    let rotated = h.rotate("flow", Some(json!({"grace": "1h"}))).await;
    let t3 = rotated["url_path"].as_str().unwrap().to_string();
    assert!(rotated["previous_valid_until"].is_string());
    assert!(
        rotated.get("secret").is_none(),
        "the secret was not rotated"
    );
    assert_eq!(h.status(&t2).await, StatusCode::ACCEPTED);
    assert_eq!(h.status(&t3).await, StatusCode::ACCEPTED);
    // Replacing nothing ends the grace period now.
    let rotated = h
        .rotate("flow", Some(json!({"token": false, "secret": false})))
        .await;
    assert!(rotated.get("token").is_none() && rotated.get("secret").is_none());
    assert_eq!(h.status(&t2).await, StatusCode::NOT_FOUND);
    assert_eq!(h.status(&t3).await, StatusCode::ACCEPTED);
    // A new secret alone keeps the token.
    let rotated = h
        .rotate("flow", Some(json!({"token": false, "secret": true})))
        .await;
    assert!(rotated["secret"].as_str().unwrap().starts_with("whsec_"));
    assert!(rotated.get("token").is_none());
    assert_eq!(h.status(&t3).await, StatusCode::ACCEPTED);
    // A grace period is at most 7 days.
    let rotated = h.rotate("flow", Some(json!({"grace": "30d"}))).await;
    let t4 = rotated["url_path"].as_str().unwrap().to_string();
    let until: chrono::DateTime<chrono::Utc> = rotated["previous_valid_until"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let week = chrono::Utc::now() + chrono::Duration::days(7);
    assert!(
        until <= week && until > week - chrono::Duration::hours(1),
        "{until}"
    );
    let response = h
        .server
        .send(
            &h.admin,
            Method::POST,
            "/api/workflows/flow/hook/rotate",
            Some(json!({"grace": "soon"})),
        )
        .await;
    assert_eq!(
        code_of(response, StatusCode::UNPROCESSABLE_ENTITY).await,
        "invalid"
    );
    let executions = h.executions("flow").await.len();
    assert_eq!(executions, 6);

    // A version without the trigger: 404; the trigger back: the same URL works again.
    let plain = json!({"nodes": [{"id": "out", "type": "core/output", "config": {"value": 2}}]});
    assert_eq!(
        h.patch("flow", json!({"definition": plain})).await.status(),
        StatusCode::OK
    );
    let response = h.hook(&t4).send().await.unwrap();
    assert_eq!(code_of(response, StatusCode::NOT_FOUND).await, "not_found");
    let with_trigger = json!({"triggers": [{"type": "webhook"}],
        "nodes": [{"id": "out", "type": "core/output", "config": {"value": 3}}]});
    let response = h.patch("flow", json!({"definition": with_trigger})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = h.hook(&t4).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let id = json_of(response).await["execution_id"].clone();
    let latest = h.executions("flow").await;
    let started = latest.iter().find(|e| e["id"] == id).unwrap();
    assert_eq!(started["version"], 3, "the latest version runs");

    // Disabled: 409, nothing starts.
    assert_eq!(
        h.patch("flow", json!({"enabled": false})).await.status(),
        StatusCode::OK
    );
    let response = h.hook(&t4).send().await.unwrap();
    assert_eq!(
        code_of(response, StatusCode::CONFLICT).await,
        "workflow_disabled"
    );
    assert_eq!(h.executions("flow").await.len(), executions + 1);

    // Bad triggers are 422s naming the field.
    for (triggers, path) in [
        (
            json!([{"type": "webhook"}, {"type": "webhook"}]),
            "triggers[1]",
        ),
        (
            json!([{"type": "webhook", "respond": "on_output", "respond_timeout": "10m"}]),
            "triggers[0].respond_timeout",
        ),
        (
            json!([{"type": "webhook", "max_body": 0}]),
            "triggers[0].max_body",
        ),
        (
            json!([{"type": "webhook", "signature": {"tolerance": "2h"}}]),
            "triggers[0].signature.tolerance",
        ),
    ] {
        let definition = json!({"triggers": triggers,
            "nodes": [{"id": "out", "type": "core/output", "config": {"value": 1}}]});
        let response = h.patch("flow", json!({"definition": definition})).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = json_of(response).await;
        let paths: Vec<&str> = body["error"]["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths, [path], "{body}");
    }
    // A secret in the definition is refused: definitions are readable by viewers.
    let definition = json!({"triggers": [{"type": "webhook", "secret": "s3cret"}],
        "nodes": [{"id": "out", "type": "core/output", "config": {"value": 1}}]});
    let response = h.patch("flow", json!({"definition": definition})).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = response.text().await.unwrap();
    assert!(text.contains("secret"), "{text}");
}
