//! The streaming client commands through a pipe whose reader goes away, as with
//! `agenthost ... | head -1`: the command ends quietly with success (exit 0, nothing on
//! stderr), never the "failed printing to stdout: Broken pipe" panic (exit 101).
//!
//! Each test reads one line, closes the pipe, then makes the server send more, so the
//! command writes after the reader has gone: that write is the one that used to panic.

use std::process::Stdio;
use std::time::Duration;

use agenthost_tests::fake_openai::{FakeOpenAi, Reply};
use agenthost_tests::{StatusCode, TestServer, plugin_wasm};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Child;

use super::cli::{Cli, greet};

/// Spawn `args` with stdout and stderr piped; read one line of stdout and close it.
async fn read_one_line_and_close(cli: &Cli, token: Option<&str>, args: &[&str]) -> Child {
    let mut child = cli
        .command(token, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("no line from agenthost {args:?} within 60 s"))
        .unwrap();
    assert!(first.is_some(), "agenthost {args:?} printed nothing");
    drop(lines); // the reader goes away, as `head -1` does
    child
}

/// Wait for the command to end while `more` makes the server send something new every
/// half second; then check it ended quietly with success.
async fn ends_quietly(mut child: Child, args: &[&str], mut more: impl AsyncFnMut()) {
    let mut stderr = child.stderr.take().unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            tokio::select! {
                status = child.wait() => return status.unwrap(),
                () = tokio::time::sleep(Duration::from_millis(500)) => more().await,
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("agenthost {args:?} kept running after its reader left"));
    let mut text = String::new();
    stderr.read_to_string(&mut text).await.unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "agenthost {args:?} ended with {status}: {text}"
    );
    assert!(!text.contains("panicked"), "{text}");
    assert!(!text.contains("Broken pipe"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_logs_follow_ends_quietly_when_its_reader_leaves() {
    let server = TestServer::start().await;
    let (_, key) = server.create_workspace("pipe-logs").await;
    let manifest = json!({"name": "hello", "version": "1.0.0", "kind": "tool"});
    let response = server
        .upload_plugin(&manifest, plugin_wasm("hello"), true)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let home = tempfile::tempdir().unwrap();
    let cli = Cli::new(&server, home.path());
    let mut greeted = 0;
    for output in ["json", "text"] {
        greeted += 1;
        greet(&server, &key, "Ada", &format!("pipe-{greeted}")).await;
        let args = [
            "plugin",
            "logs",
            "hello",
            "--follow",
            "--interval",
            "100ms",
            "--output",
            output,
        ];
        // The first line is the stored one (or a newer one): the follower then waits.
        let child = read_one_line_and_close(&cli, None, &args).await;
        ends_quietly(child, &args, async || {
            greeted += 1;
            greet(&server, &key, "Bob", &format!("pipe-{greeted}")).await;
        })
        .await;
    }
    server.stop().await;
}

/// A workflow that waits for an approval between its first events and its last.
async fn gated_workflow(server: &TestServer, key: &str) {
    let manifest = json!({"name": "core", "version": "0.1.0", "kind": "node"});
    let response = server
        .upload_plugin(&manifest, plugin_wasm("core"), true)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let definition = json!({
        "nodes": [
            {"id": "gate", "type": "core/approval", "config": {"message": "Go on?"}},
            {"id": "out", "type": "core/output", "config": {"value": "{{ nodes.gate.output.decision }}"}}
        ],
        "edges": [{"from": "gate", "to": "out", "branch": "approved"}]
    });
    let body = json!({"slug": "gated", "name": "Gated", "definition": definition});
    let response = server
        .send(key, Method::POST, "/api/workflows", Some(body))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

/// Approve every pending approval (each is decided once; a decided one is 409).
async fn approve_pending(server: &TestServer, key: &str) {
    let response = server
        .send(key, Method::GET, "/api/approvals?status=pending", None)
        .await;
    let list: Value = response.json().await.unwrap();
    for approval in list["approvals"].as_array().unwrap() {
        let path = format!("/api/approvals/{}", approval["id"].as_str().unwrap());
        let body = json!({"decision": "approve"});
        server.send(key, Method::POST, &path, Some(body)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_watch_and_run_wait_end_quietly_when_their_reader_leaves() {
    let server = TestServer::start().await;
    let (_, key) = server.create_workspace("pipe-flows").await;
    gated_workflow(&server, &key).await;
    let home = tempfile::tempdir().unwrap();
    let cli = Cli::new(&server, home.path());

    for output in ["json", "text"] {
        let response = server
            .send(
                &key,
                Method::POST,
                "/api/workflows/gated/executions",
                Some(json!({"input": {}})),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let execution: Value = response.json().await.unwrap();
        let id = execution["id"].as_str().unwrap();
        let args = ["execution", "watch", id, "--output", output];
        let child = read_one_line_and_close(&cli, Some(&key), &args).await;
        ends_quietly(child, &args, async || approve_pending(&server, &key).await).await;
    }

    // `run --wait` prints the events as text (JSON prints only the end, in one go).
    let args = ["workflow", "run", "gated", "--wait"];
    let child = read_one_line_and_close(&cli, Some(&key), &args).await;
    ends_quietly(child, &args, async || approve_pending(&server, &key).await).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_chat_ends_quietly_when_its_reader_leaves() {
    let fake = FakeOpenAi::start().await;
    let base = fake.base_url.clone();
    let f = super::dexter::fixture_with(move |config| {
        config.llm_base_url = Some(base);
        config.llm_max_retries = 0;
    })
    .await;
    let home = tempfile::tempdir().unwrap();
    let cli = Cli::new(&f.server, home.path());
    // The tool call's line comes first; the answer after the reader has gone.
    fake.reply(Reply::ToolCalls(vec![(
        "call_1".into(),
        "revenue_analysis".into(),
        json!({ "period": "2025-Q4" }),
    )]));
    fake.reply(Reply::After(
        Duration::from_secs(1),
        Box::new(Reply::Text("Q4 2025 revenue was 30000 USD.".into())),
    ));
    let args = ["chat", "dexter", "Analyse Q4 revenue"];
    let child = read_one_line_and_close(&cli, Some(&f.key), &args).await;
    ends_quietly(child, &args, async || {}).await;
    f.server.stop().await;
}
