//! The MCP server at `/mcp` with real clients: the official Python SDK (PyPI `mcp`) in
//! both of its modes, the stateless 2026-07-28 protocol and the 2025-11-25 session
//! protocol, and the npm conformance runner's scenarios that apply to a tools-only
//! server. Also, on the wire: the 401 challenge, roles, and the Host/Origin guard.

use std::path::Path;

use agenthost_tests::fake_openai::{FakeOpenAi, Reply};
use agenthost_tests::{
    ADMIN_TOKEN, StatusCode, TestServer, node_modules, plugin_wasm, pyclients_dir,
};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

/// A server with hello and faults active, a workspace with member and viewer keys, and
/// an agent `greeter` that may call `hello.greet`.
struct Fixture {
    server: TestServer,
    member: String,
    viewer: String,
}

async fn fixture(change: impl FnOnce(&mut agenthost::Config)) -> Fixture {
    let server = TestServer::start_with(change).await;
    for name in ["hello", "faults"] {
        let manifest = json!({ "name": name, "version": "1.0.0", "kind": "tool",
                               "description": format!("{name} for the MCP tests") });
        let response = server
            .upload_plugin(&manifest, plugin_wasm(name), true)
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let (workspace, owner) = server.create_workspace("mcp").await;
    let (_, member) = server.create_key(&workspace, "member").await;
    let (_, viewer) = server.create_key(&workspace, "viewer").await;
    let agent = json!({ "slug": "greeter", "name": "Greeter", "role": "greets people",
                        "tools": [{ "plugin": "hello", "tool": "greet" }] });
    let response = server
        .send(&owner, Method::POST, "/api/agents", Some(agent))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    Fixture {
        server,
        member,
        viewer,
    }
}

async fn fixture_with_llm() -> (Fixture, FakeOpenAi) {
    let fake = FakeOpenAi::start().await;
    let base = fake.base_url.clone();
    let f = fixture(move |config| {
        config.llm_base_url = Some(base);
        config.llm_max_retries = 0;
    })
    .await;
    (f, fake)
}

/// Run tests/python/mcp_client.py in `mode`; returns its report.
async fn python_client(f: &Fixture, mode: &str) -> Value {
    let dir = pyclients_dir();
    assert!(
        dir.join("mcp").is_dir(),
        "the mcp package is not in {} (run `make pyclients`)",
        dir.display()
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/mcp_client.py");
    let output = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(f.server.url("/mcp"))
        .arg(&f.member)
        .arg(&f.viewer)
        .arg(mode)
        .arg("agent__greeter")
        .env("PYTHONPATH", &dir)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("not JSON: {stdout}"))
}

/// What `POST /api/tools/hello/greet` answers for Ada: the MCP result must equal it.
async fn greet_over_rest(f: &Fixture) -> Value {
    let response = f
        .server
        .call_tool(&f.member, "hello", "greet", &json!({ "name": "Ada" }))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["output"].clone()
}

/// The agent turn: the model calls `greet`, then answers.
fn script_agent_turn(fake: &FakeOpenAi, answer: &str) {
    fake.reply(Reply::ToolCalls(vec![(
        "call_1".into(),
        "greet".into(),
        json!({ "name": "Ada" }),
    )]));
    fake.reply(Reply::Text(answer.into()));
}

/// Everything the Python client saw as a member, viewer and anonymous caller, common
/// to both modes.
async fn assert_client_report(f: &Fixture, report: &Value, answer: &str) {
    let member = &report["member"];
    assert_eq!(member["server_name"], "agenthost", "{member}");

    // Listing: plugin tools as plugin__tool with the manifest's schemas, agents after.
    let tools = member["tools"].as_object().unwrap();
    let greet = &tools["hello__greet"];
    assert_eq!(greet["description"], "Greets a person by name.");
    assert_eq!(
        greet["input_schema"],
        json!({ "type": "object", "properties": { "name": { "type": "string", "minLength": 1 } },
                "required": ["name"], "additionalProperties": false })
    );
    assert_eq!(
        greet["output_schema"]["properties"]["greeting"]["type"],
        "string"
    );
    for name in [
        "faults__secret",
        "faults__ok",
        "agent__greeter",
        "agent__dexter",
        // Aura is in every workspace: MCP lists her with no setup (issue 21).
        "agent__aura",
    ] {
        assert!(tools.contains_key(name), "{name} not in {tools:?}");
    }
    let agent_tool = &tools["agent__greeter"];
    assert_eq!(agent_tool["input_schema"]["required"], json!(["message"]));
    assert_eq!(
        agent_tool["output_schema"]["properties"]["answer"]["type"],
        "string"
    );

    // A call: structuredContent is the tool's output, and the text is a copy of it.
    let greeted = &member["greet"];
    assert_eq!(greeted["is_error"], false, "{greeted}");
    assert_eq!(greeted["structured"], greet_over_rest(f).await);
    let text: Value = serde_json::from_str(greeted["text"][0].as_str().unwrap()).unwrap();
    assert_eq!(text, greeted["structured"]);

    // The tool ran and failed (no grant for the secret): isError with the message.
    let failing = &member["failing"];
    assert_eq!(failing["is_error"], true, "{failing}");
    assert!(
        failing["text"][0].as_str().unwrap().contains("denied"),
        "{failing}"
    );
    // Input that breaks the schema is a tool error too (the model can fix it).
    let invalid = &member["invalid"];
    assert_eq!(invalid["is_error"], true, "{invalid}");
    assert!(
        invalid["text"][0]
            .as_str()
            .unwrap()
            .contains("input schema"),
        "{invalid}"
    );

    // The agent ran a turn on our side, its own tool call included.
    let agent = &member["agent"];
    assert_eq!(agent["is_error"], false, "{agent}");
    let turn = &agent["structured"];
    assert_eq!(turn["answer"], answer, "{turn}");
    assert_eq!(turn["status"], "completed", "{turn}");
    assert_eq!(
        turn["tool_calls"],
        json!([{ "plugin": "hello", "tool": "greet", "outcome": "ok" }])
    );
    let conversation = turn["conversation_id"].as_str().unwrap();
    let response = f
        .server
        .send(
            &f.member,
            Method::GET,
            &format!("/api/conversations/{conversation}"),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK, "the turn was recorded");
    assert!(Uuid::parse_str(turn["turn_id"].as_str().unwrap()).is_ok());

    // A name that isn't a tool is a protocol error (invalid params).
    assert_eq!(member["unknown"]["code"], -32602, "{member}");

    // Viewers may list but not call.
    let viewer = &report["viewer"];
    assert!(viewer["listed"].as_u64().unwrap() >= 4, "{viewer}");
    assert_eq!(viewer["call"]["code"], -32600, "{viewer}");
    assert!(
        viewer["call"]["message"]
            .as_str()
            .unwrap()
            .contains("member role"),
        "{viewer}"
    );

    // No key: the client can't connect; the server said 401 with a challenge.
    let anonymous = &report["anonymous"];
    assert_eq!(anonymous["refused"], true, "{anonymous}");
    // (In auto mode the SDK tries `server/discover`, then `initialize`: two 401s.)
    let statuses = anonymous["statuses"].as_array().unwrap();
    assert!(
        !statuses.is_empty() && statuses.iter().all(|s| s == 401),
        "{anonymous}"
    );
    assert_eq!(
        anonymous["challenges"],
        json!([r#"Bearer realm="agenthost""#]),
        "{anonymous}"
    );
}

#[tokio::test]
async fn the_python_sdk_uses_tools_and_agents_over_the_stateless_protocol() {
    let (f, fake) = fixture_with_llm().await;
    script_agent_turn(&fake, "Hello, Ada! (stateless)");
    let report = python_client(&f, "auto").await;
    let member = &report["member"];
    assert_eq!(member["protocol_version"], "2026-07-28", "{member}");
    let wire = &member["wire"];
    assert_eq!(wire["session_ids"], 0, "no session in 2026-07-28: {wire}");
    let methods = wire["methods"].as_array().unwrap();
    assert!(methods.contains(&json!("server/discover")), "{wire}");
    assert!(!methods.contains(&json!("initialize")), "{wire}");
    assert_client_report(&f, &report, "Hello, Ada! (stateless)").await;
    f.server.stop().await;
}

#[tokio::test]
async fn the_python_sdk_uses_tools_and_agents_in_a_2025_11_25_session() {
    let (f, fake) = fixture_with_llm().await;
    script_agent_turn(&fake, "Hello, Ada! (session)");
    let report = python_client(&f, "legacy").await;
    let member = &report["member"];
    assert_eq!(member["protocol_version"], "2025-11-25", "{member}");
    let wire = &member["wire"];
    assert_eq!(wire["session_ids"], 1, "one session: {wire}");
    assert_eq!(wire["methods"][0], "initialize", "{wire}");
    assert_eq!(wire["protocol_versions"], json!(["2025-11-25"]), "{wire}");
    assert_client_report(&f, &report, "Hello, Ada! (session)").await;
    f.server.stop().await;
}

/// An `initialize` request as a 2025-11-25 client sends it.
fn initialize() -> Value {
    json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": { "name": "raw", "version": "0" } } })
}

fn post_mcp(server: &TestServer, key: Option<&str>, body: &Value) -> reqwest::RequestBuilder {
    let mut request = server
        .client
        .post(server.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request
}

#[tokio::test]
async fn missing_or_wrong_credentials_get_a_bearer_challenge() {
    let f = fixture(|_| {}).await;
    let response = post_mcp(&f.server, None, &initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert_eq!(challenge, r#"Bearer realm="agenthost""#);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");

    let response = post_mcp(&f.server, Some("ahk_not_a_key"), &initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with(r#"Bearer realm="agenthost", error="invalid_token""#),
        "{challenge}"
    );

    // The admin token is valid but has no workspace.
    let response = post_mcp(&f.server, Some(ADMIN_TOKEN), &initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let response = post_mcp(&f.server, Some(&f.member), &initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("mcp-session-id"));
    f.server.stop().await;
}

#[tokio::test]
async fn foreign_hosts_and_origins_are_refused_and_configured_ones_pass() {
    let f = fixture(|config| {
        config.mcp_allowed_origins = vec!["https://console.example.com:443".into()];
        config.mcp_allowed_hosts = vec!["127.0.0.1".into(), "mcp.example.com".into()];
    })
    .await;
    let send = |host: Option<&str>, origin: Option<&str>| {
        let mut request = post_mcp(&f.server, Some(&f.member), &initialize());
        if let Some(host) = host {
            request = request.header("host", host);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        async move { request.send().await.unwrap() }
    };
    let refused = send(None, Some("https://evil.example.com")).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Origin"),
        "{body}"
    );
    assert_eq!(
        send(Some("evil.example.com"), None).await.status(),
        StatusCode::FORBIDDEN,
        "a rebound name"
    );
    assert_eq!(
        send(None, Some("https://console.example.com"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        send(Some("mcp.example.com"), None).await.status(),
        StatusCode::OK
    );
    // No Origin at all (not a browser): passes.
    assert_eq!(send(None, None).await.status(), StatusCode::OK);
    f.server.stop().await;
}

#[tokio::test]
async fn a_stateless_call_whose_mcp_name_header_disagrees_with_its_body_is_refused() {
    let f = fixture(|_| {}).await;
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let call = |header_name: &str| {
        let body = json!({ "jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
            "name": "hello__greet", "arguments": { "name": "Ada" }, "_meta": meta } });
        post_mcp(&f.server, Some(&f.member), &body)
            .header("x-request-id", format!("mcp-{header_name}"))
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", header_name)
            .send()
    };
    let mismatched = call("faults__ok").await.unwrap();
    assert_eq!(mismatched.status(), StatusCode::BAD_REQUEST);

    let response = call("hello__greet").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        !response.headers().contains_key("mcp-session-id"),
        "stateless: no session"
    );
    let text = response.text().await.unwrap();
    // JSON, or one SSE event carrying the JSON-RPC response.
    let json_text = text
        .lines()
        .find_map(|line| line.strip_prefix("data: ").filter(|d| d.starts_with('{')))
        .unwrap_or(&text);
    let answer: Value = serde_json::from_str(json_text).unwrap();
    assert_eq!(
        answer["result"]["structuredContent"],
        greet_over_rest(&f).await
    );
    assert_eq!(answer["result"]["resultType"], "complete");

    // Recorded like a REST call, under the HTTP request's id (written off the request
    // path: poll until it lands). The refused call never ran.
    let pool = sqlx::PgPool::connect(&f.server.database_url).await.unwrap();
    let recorded = |request_id: &'static str| {
        let pool = pool.clone();
        async move {
            let query = "SELECT count(*) FROM plugin_invocations \
                         WHERE request_id = $1 AND tool = 'greet' AND outcome = 'ok'";
            let count: i64 = sqlx::query_scalar(query)
                .bind(request_id)
                .fetch_one(&pool)
                .await
                .unwrap();
            count
        }
    };
    let mut count = 0;
    for _ in 0..250 {
        count = recorded("mcp-hello__greet").await;
        if count > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(count, 1);
    assert_eq!(recorded("mcp-faults__ok").await, 0);
    f.server.stop().await;
}

/// The conformance scenarios a tools-only server answers; the others need the
/// reference server's `test_*` tools, prompts or resources and are the expected
/// failures in tests/node/mcp_conformance_baseline.yml.
const APPLICABLE_SCENARIOS: [&str; 5] = [
    "server-initialize",
    "ping",
    "tools-list",
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
];

#[tokio::test]
async fn the_conformance_runner_passes_the_scenarios_that_apply_to_a_tools_server() {
    let modules = node_modules();
    assert!(
        modules.join("@modelcontextprotocol/conformance").is_dir(),
        "the conformance runner is not in {} (run `make nodeclients`)",
        modules.display()
    );
    let f = fixture(|_| {}).await;
    let node = Path::new(env!("CARGO_MANIFEST_DIR")).join("node");
    let output_dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new("node")
        .arg(node.join("mcp_conformance.mjs"))
        .arg(f.server.url("/mcp"))
        .arg(&f.member)
        .arg(output_dir.path())
        .env("AGENTHOST_NODE_MODULES", &modules)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|_| panic!("not JSON: {stdout}\n{stderr}"));
    let scenarios = report["scenarios"].as_object().unwrap();
    let runner_output = report["runner_output"].as_str().unwrap_or_default();
    // The runner's own baseline check: every failure is listed, nothing listed passes.
    assert_eq!(report["runner_exit"], 0, "{runner_output}\n{scenarios:#?}");
    for scenario in APPLICABLE_SCENARIOS {
        let result = &scenarios[scenario];
        assert!(
            result["passed"].as_u64().unwrap() >= 1,
            "{scenario}: {result}"
        );
        assert_eq!(result["failed"], 0, "{scenario}: {result}");
        assert_eq!(result["warnings"], 0, "{scenario}: {result}");
    }
    f.server.stop().await;
}

/// A client that keeps a session's event stream open and never closes the session
/// must not hold up the server's graceful shutdown: the stream ends with it.
#[tokio::test]
async fn an_open_session_stream_does_not_hold_up_shutdown() {
    let f = fixture(|_| {}).await;
    let response = post_mcp(&f.server, Some(&f.member), &initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let _ = response.bytes().await.unwrap();
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    let response = post_mcp(&f.server, Some(&f.member), &initialized)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let stream = f
        .server
        .client
        .get(f.server.url("/mcp"))
        .bearer_auth(&f.member)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    // Held open (not read, not closed) while the server stops. Without the shutdown
    // signal reaching the session, this waits for the 5-minute idle timeout.
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(60), f.server.stop()).await;
    assert!(stopped.is_ok(), "shutdown waited for the open MCP stream");
    drop(stream);
}
