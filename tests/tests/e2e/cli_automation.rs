//! The automation commands of the real binary against a real server: `schedule`,
//! `webhook`, `rule` and `events tail`. Refusals come back in words with the field
//! they name; `events tail` prints each event once, in order, across a dropped
//! connection, and ends quietly when its reader leaves.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use agenthost_tests::{StatusCode, TestServer, plugin_wasm};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, ChildStdout};

use super::cli::Cli;
use super::events::Feed;

/// Run `agenthost ARGS` with the workspace key `key`; stdout, or a panic with stderr.
async fn run(cli: &Cli, key: &str, args: &[&str]) -> String {
    let output = cli.command(Some(key), args).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "agenthost {args:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `run` with `--output json`, parsed.
async fn json(cli: &Cli, key: &str, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["--output", "json"]);
    let stdout = run(cli, key, &args).await;
    serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("not JSON: {stdout}"))
}

/// A command that must fail; its stderr.
async fn refused(cli: &Cli, key: &str, args: &[&str]) -> String {
    cli.run_failing(Some(key), args).await.1
}

/// `agenthost ARGS` with `stdin` as its standard input.
async fn run_with_stdin(cli: &Cli, key: &str, args: &[&str], stdin: &str) -> String {
    let mut child = cli
        .command(Some(key), args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let output = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "agenthost {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A server with the `core` plugin and a one-node workflow `digest`; its owner key.
async fn with_digest(change: impl FnOnce(&mut agenthost::Config)) -> (TestServer, String) {
    let server = TestServer::start_with(change).await;
    let (_, owner) = server.create_workspace("cli-automation").await;
    let manifest = json!({"name": "core", "version": "0.1.0", "kind": "node"});
    let response = server
        .upload_plugin(&manifest, plugin_wasm("core"), true)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let definition =
        json!({"nodes": [{"id": "out", "type": "core/output", "config": {"value": 1}}]});
    let response = server
        .send(
            &owner,
            Method::POST,
            "/api/workflows",
            Some(json!({"slug": "digest", "name": "Digest", "definition": definition})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    (server, owner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_commands_create_pause_resume_run_and_list_runs() {
    let (server, owner) = with_digest(|_| {}).await;
    let home = tempfile::tempdir().unwrap();
    let cli = Cli::new(&server, home.path());
    let key = owner.as_str();

    // From flags: 08:00 in Berlin is 07:00 UTC in winter (the clock is in December or
    // later; 06:00 UTC in summer).
    let created = json(
        &cli,
        key,
        &[
            "schedule",
            "create",
            "--name",
            "Morning digest",
            "--cron",
            "0 8 * * *",
            "--timezone",
            "Europe/Berlin",
            "--workflow",
            "digest",
            "--input",
            r#"{"n": 1}"#,
            "--overlap",
            "buffer-one",
        ],
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["kind"], "task");
    assert_eq!(created["status"], "active");
    assert_eq!(created["schedule"]["cron"], "0 8 * * *");
    assert_eq!(created["schedule"]["timezone"], "Europe/Berlin");
    assert_eq!(created["schedule"]["overlap"], "buffer_one");
    assert_eq!(created["action"]["workflow"], "digest");
    assert_eq!(created["action"]["input"], json!({"n": 1}));
    let next = created["next_run_at"].as_str().unwrap();
    assert!(
        next.contains("T07:00:00") || next.contains("T06:00:00"),
        "{next}"
    );

    // From standard input, the whole task as JSON.
    let task = json!({"name": "Hourly", "schedule": {"every": "1h"},
        "action": {"type": "run_workflow", "workflow": "digest"}});
    let text = run_with_stdin(
        &cli,
        key,
        &["schedule", "create", "--file", "-"],
        &task.to_string(),
    )
    .await;
    assert!(
        text.contains("  Hourly  task  active  every 1h  next "),
        "{text}"
    );

    // Refusals in words, each problem on its own line at its field.
    let stderr = refused(
        &cli,
        key,
        &[
            "schedule",
            "create",
            "--name",
            "Bad",
            "--cron",
            "61 * * * *",
            "--timezone",
            "Mars/Olympus",
            "--workflow",
            "nope",
        ],
    )
    .await;
    assert!(
        stderr.contains("422 Unprocessable Entity invalid:"),
        "{stderr}"
    );
    for field in ["schedule.cron", "schedule.timezone", "action.workflow"] {
        assert!(
            stderr.contains(&format!("\n  {field}: ")),
            "{field}: {stderr}"
        );
    }
    assert!(
        stderr.contains("\"Mars/Olympus\" is not an IANA time zone"),
        "{stderr}"
    );
    let stderr = refused(&cli, key, &["schedule", "create", "--name", "No workflow"]).await;
    assert!(stderr.contains("needs --name and --workflow"), "{stderr}");
    let stderr = refused(
        &cli,
        key,
        &["schedule", "create", "--file", "-", "--name", "Both"],
    )
    .await;
    assert!(stderr.contains("cannot be used with"), "{stderr}");

    let listed = json(&cli, key, &["schedule", "list"]).await;
    let names: Vec<&str> = listed["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Morning digest", "Hourly"]);
    let text = run(&cli, key, &["schedule", "list"]).await;
    assert!(
        text.contains(&format!(
            "{id}  Morning digest  task  active  cron '0 8 * * *' Europe/Berlin  next "
        )),
        "{text}"
    );

    let paused = json(&cli, key, &["schedule", "pause", &id]).await;
    assert_eq!(paused["status"], "paused");
    let text = run(&cli, key, &["schedule", "show", &id]).await;
    assert!(text.contains("  Morning digest  task  paused  "), "{text}");
    let resumed = json(&cli, key, &["schedule", "resume", &id]).await;
    assert_eq!(resumed["status"], "active");

    // Run now: a manual run, in the history with its execution.
    let ran = json(&cli, key, &["schedule", "run", &id]).await;
    assert_eq!(ran["kind"], "manual");
    assert_eq!(ran["outcome"], "started");
    let execution = ran["execution_id"].as_str().unwrap().to_string();
    let runs = json(&cli, key, &["schedule", "runs", &id]).await;
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["execution_id"], execution.as_str());
    let text = run(&cli, key, &["schedule", "runs", &id, "--limit", "5"]).await;
    assert!(
        text.contains(&format!("  manual  started  execution {execution} ")),
        "{text}"
    );
    let stderr = refused(&cli, key, &["schedule", "runs", &id, "--limit", "501"]).await;
    assert!(stderr.contains("501 is not in 1..=500"), "{stderr}");

    run(&cli, key, &["schedule", "delete", &id]).await;
    let stderr = refused(&cli, key, &["schedule", "show", &id]).await;
    assert!(stderr.contains("404 Not Found"), "{stderr}");
    server.stop().await;
}

/// A webhook receiver on loopback: answers every POST with 204, counts them.
async fn receiver() -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let app = axum::Router::new().fallback(move || {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            StatusCode::NO_CONTENT
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_commands_create_disable_enable_and_show_deliveries() {
    let (server, owner) = with_digest(|config| {
        config.webhook_workers = 2;
        config.webhook_allow_private_networks =
            vec![agenthost::capabilities::http::Network::parse("127.0.0.0/8").unwrap()];
    })
    .await;
    let home = tempfile::tempdir().unwrap();
    let cli = Cli::new(&server, home.path());
    let key = owner.as_str();
    let (url, received) = receiver().await;

    let text = run(
        &cli,
        key,
        &[
            "webhook",
            "create",
            "--url",
            &url,
            "--event-type",
            "workflow.execution.succeeded",
            "--event-type",
            "ticket",
            "--description",
            "CI",
        ],
    )
    .await;
    assert!(
        text.contains(&format!(
            "  {url}  workflow.execution.succeeded,ticket  enabled\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("signing secret (shown once, store it now): whsec_"),
        "{text}"
    );
    let listed = json(&cli, key, &["webhook", "list"]).await;
    let id = listed["webhooks"][0]["id"].as_str().unwrap().to_string();
    assert!(listed["webhooks"][0].get("secret").is_none());

    // Refusals name their field.
    let stderr = refused(
        &cli,
        key,
        &[
            "webhook",
            "create",
            "--url",
            "ftp://example.com/x",
            "--event-type",
            "ticket",
        ],
    )
    .await;
    assert!(
        stderr.contains("422 Unprocessable Entity invalid: url"),
        "{stderr}"
    );
    let stderr = refused(
        &cli,
        key,
        &[
            "webhook",
            "create",
            "--url",
            &url,
            "--event-type",
            "no.such.type",
        ],
    )
    .await;
    assert!(stderr.contains("event_types[0]"), "{stderr}");
    let stderr = refused(&cli, key, &["webhook", "create", "--url", &url]).await;
    assert!(stderr.contains("--event-type"), "{stderr}");

    // An execution's `succeeded` event is delivered; the log shows it.
    let response = server
        .send(
            key,
            Method::POST,
            "/api/workflows/digest/executions?wait=20s",
            Some(json!({"input": {}})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut deliveries = Value::Null;
    for _ in 0..1500 {
        deliveries = json(
            &cli,
            key,
            &["webhook", "deliveries", &id, "--status", "succeeded"],
        )
        .await;
        if !deliveries["deliveries"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = deliveries["deliveries"].as_array().unwrap();
    assert_eq!(delivered.len(), 1, "{deliveries}");
    assert_eq!(delivered[0]["event_type"], "workflow.execution.succeeded");
    assert_eq!(received.load(Ordering::SeqCst), 1);
    let text = run(&cli, key, &["webhook", "deliveries", &id]).await;
    assert!(
        text.contains("  workflow.execution.succeeded  succeeded  event ")
            && text.contains("  attempts 1  HTTP 204"),
        "{text}"
    );
    let none = run(
        &cli,
        key,
        &["webhook", "deliveries", &id, "--status", "failed"],
    )
    .await;
    assert_eq!(none, format!("no deliveries to webhook {id}\n"));

    let text = run(&cli, key, &["webhook", "disable", &id]).await;
    assert!(text.contains("  disabled (disabled by key:"), "{text}");
    let listed = json(&cli, key, &["webhook", "list"]).await;
    assert_eq!(listed["webhooks"][0]["enabled"], false);
    let enabled = json(&cli, key, &["webhook", "enable", &id]).await;
    assert_eq!(enabled["enabled"], true);
    run(&cli, key, &["webhook", "delete", &id]).await;
    let text = run(&cli, key, &["webhook", "list"]).await;
    assert_eq!(text, "no webhooks in this workspace\n");
    server.stop().await;
}

/// A TCP proxy on loopback in front of a server, whose open connections can be cut
/// (as a load balancer or a restarting host does) while it keeps accepting new ones.
struct Proxy {
    base: String,
    cut: tokio::sync::broadcast::Sender<()>,
    accepted: Arc<AtomicUsize>,
}

impl Proxy {
    async fn start(upstream: &str) -> Proxy {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (cut, _) = tokio::sync::broadcast::channel::<()>(4);
        let accepted = Arc::new(AtomicUsize::new(0));
        let (cuts, count) = (cut.clone(), accepted.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let mut cut = cuts.subscribe();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let mut server = TcpStream::connect(&upstream).await.unwrap();
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.recv() => {}
                    }
                });
            }
        });
        Proxy {
            base,
            cut,
            accepted,
        }
    }

    fn cut(&self) {
        let _ = self.cut.send(());
    }
}

/// The next line of a command's output, within 60 s.
async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("no line within 60 s")
        .unwrap()
        .expect("the command ended")
}

fn spawn(cli: &Cli, key: &str, server: &str, args: &[&str]) -> Child {
    cli.command(Some(key), args)
        .env("AGENTHOST_SERVER", server)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_tail_starts_now_filters_and_resumes_after_a_dropped_connection() {
    let feed = Feed::start().await;
    let home = tempfile::tempdir().unwrap();
    let cli = Cli::new(&feed.server, home.path());
    let key = feed.member.as_str();
    let proxy = Proxy::start(&feed.server.base).await;
    // Before the tail starts: never printed. Its `succeeded` event may commit just after
    // the run answers: wait for it, so everything later sorts after it.
    let before = feed.run("quick").await;
    let succeeded = format!("?type=workflow.execution.succeeded&subject={before}");
    let mut seen = false;
    for _ in 0..1000 {
        seen = !feed.events(&succeeded).await.is_empty();
        if seen {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(seen, "{before} succeeded, but no event says so");

    let args = [
        "events",
        "tail",
        "--type",
        "workflow.execution",
        "--output",
        "json",
    ];
    let mut child = spawn(&cli, key, &proxy.base, &args);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Until the tail is connected, executions may fall before its start: run until one
    // is printed, then every later one must be, exactly once.
    let mut printed = Vec::new();
    let first = loop {
        let id = feed.run("quick").await;
        if let Ok(line) =
            tokio::time::timeout(Duration::from_millis(1500), next_line(&mut lines)).await
        {
            printed.push(serde_json::from_str::<Value>(&line).unwrap());
            break id;
        }
    };
    let mut ran = vec![first];
    // Cut the stream; run while the tail reconnects (their events are committed while
    // it has no connection) and after.
    let connections = proxy.accepted.load(Ordering::SeqCst);
    proxy.cut();
    for _ in 0..3 {
        ran.push(feed.run("quick").await);
    }
    // Events come in commit order: the last execution's `succeeded` comes last.
    while printed.last().unwrap()["subject"] != ran.last().unwrap().as_str()
        || printed.last().unwrap()["type"] != "workflow.execution.succeeded"
    {
        printed.push(serde_json::from_str(&next_line(&mut lines).await).unwrap());
    }
    assert!(
        proxy.accepted.load(Ordering::SeqCst) > connections,
        "the tail did not reconnect"
    );
    let ids: Vec<&str> = printed.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        ids.len(),
        "an event printed twice: {printed:?}"
    );
    assert!(printed.iter().all(|e| e["subject"] != before.as_str()));
    let seen: Vec<(&str, &str)> = printed
        .iter()
        .map(|e| (e["subject"].as_str().unwrap(), e["type"].as_str().unwrap()))
        .collect();
    for id in &ran[1..] {
        let of: Vec<&str> = seen.iter().filter(|s| s.0 == id).map(|s| s.1).collect();
        assert_eq!(
            of,
            ["workflow.execution.started", "workflow.execution.succeeded"],
            "{id}: {seen:?}"
        );
    }
    // In commit order: cursors increase.
    let cursors: Vec<(u64, u64)> = printed
        .iter()
        .map(|e| {
            let (tx, seq) = e["cursor"].as_str().unwrap().split_once('-').unwrap();
            (tx.parse().unwrap(), seq.parse().unwrap())
        })
        .collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");
    drop(lines);
    child.kill().await.unwrap();

    // Text, from the start, one type: the reader leaves after one line; the command
    // then ends quietly, with success, at its next write.
    let args = [
        "events",
        "tail",
        "--from-start",
        "--type",
        "workflow.execution.succeeded",
    ];
    let mut child = spawn(&cli, key, &feed.server.base, &args);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = next_line(&mut lines).await;
    assert!(
        line.contains(&format!(
            "  workflow.execution.succeeded  {before}  system:engine  {{\"error\":null"
        )),
        "{line}"
    );
    drop(lines);
    let mut stderr = child.stderr.take().unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            tokio::select! {
                status = child.wait() => return status.unwrap(),
                _ = feed.run("quick") => {}
            }
        }
    })
    .await
    .expect("events tail kept running after its reader left");
    let mut text = String::new();
    stderr.read_to_string(&mut text).await.unwrap();
    assert_eq!(status.code(), Some(0), "{status}: {text}");
    assert!(!text.contains("panicked"), "{text}");

    // A filter the server refuses ends the command with its words.
    let stderr = refused(&cli, key, &["events", "tail", "--type", "Not A Type"]).await;
    assert!(
        stderr.contains("422 Unprocessable Entity invalid: type \"Not A Type\""),
        "{stderr}"
    );
    feed.server.stop().await;
}

/// The shipped node plugins as `make plugins` bundles them: a rule's actions run as
/// their nodes (`trigger_workflow` is `workflow/start`).
fn bundle() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/nodes");
    for name in ["core", "events", "workflow", "tickets"] {
        std::fs::write(dir.path().join(format!("{name}.wasm")), plugin_wasm(name)).unwrap();
        let manifest = std::fs::read(root.join(name).join("manifest.json")).unwrap_or_else(|_| {
            json!({"name": name, "version": "0.1.0", "kind": "node"})
                .to_string()
                .into_bytes()
        });
        std::fs::write(dir.path().join(format!("{name}.json")), manifest).unwrap();
    }
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_commands_create_list_pause_resume_and_show_runs() {
    let plugins = bundle();
    let bundled = plugins.path().to_path_buf();
    let server = TestServer::start_with(move |config| config.bundled_plugins_dir = bundled).await;
    let (_, owner) = server.create_workspace("cli-rules").await;
    let key = owner.as_str();
    let one = json!({"nodes": [{"id": "out", "type": "core/output", "config": {"value": 1}}]});
    for slug in ["source", "sink"] {
        let response = server
            .send(
                key,
                Method::POST,
                "/api/workflows",
                Some(json!({"slug": slug, "name": slug, "definition": one})),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let home = tempfile::tempdir().unwrap();
    let cli = Cli::new(&server, home.path());

    let rule = json!({"name": "Source done", "priority": 5,
        "trigger": {"event": "workflow.execution.succeeded",
                    "filter": "{{ event.payload.workflow == 'source' }}"},
        "actions": [{"type": "trigger_workflow", "workflow": "sink"}]});
    let file = home.path().join("rule.json");
    std::fs::write(&file, rule.to_string()).unwrap();
    let text = run(
        &cli,
        key,
        &["rule", "create", "--file", file.to_str().unwrap()],
    )
    .await;
    let id = text.split("  ").next().unwrap().to_string();
    assert!(
        text.contains(
            "  Source done  on workflow.execution.succeeded if {{ event.payload.workflow == \
             'source' }}  active  priority 5  matched 0, ran 0"
        ),
        "{text}"
    );

    // Every problem at its field, from standard input.
    let bad = json!({"name": "", "trigger": {"event": "Not.A.Type"}, "actions": [],
        "cooldown": "soon"});
    let mut child = cli
        .command(Some(key), &["rule", "create", "--file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(bad.to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("422 Unprocessable Entity invalid:"),
        "{stderr}"
    );
    for field in ["name", "trigger.event", "actions", "cooldown"] {
        assert!(
            stderr.contains(&format!("\n  {field}: ")),
            "{field}: {stderr}"
        );
    }

    // An event the rule matches: its run, with the execution its actions run as.
    let response = server
        .send(
            key,
            Method::POST,
            "/api/workflows/source/executions?wait=20s",
            Some(json!({"input": {}})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut runs = Value::Null;
    for _ in 0..1500 {
        runs = json(&cli, key, &["rule", "runs", &id]).await;
        if !runs["runs"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let listed = runs["runs"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{runs}");
    assert_eq!(listed[0]["outcome"], "started");
    let execution = listed[0]["execution_id"].as_str().unwrap();
    let text = run(&cli, key, &["rule", "runs", &id, "--limit", "10"]).await;
    assert!(
        text.contains("  workflow.execution.succeeded  event ")
            && text.contains(&format!("  started  execution {execution} ")),
        "{text}"
    );
    let text = run(&cli, key, &["rule", "list"]).await;
    assert!(text.contains("  matched 1, ran 1, "), "{text}");

    let paused = json(&cli, key, &["rule", "pause", &id]).await;
    assert_eq!(paused["active"], false);
    let text = run(&cli, key, &["rule", "show", &id]).await;
    assert!(text.contains("  paused  priority 5  "), "{text}");
    let resumed = json(&cli, key, &["rule", "resume", &id]).await;
    assert_eq!(resumed["active"], true);
    run(&cli, key, &["rule", "delete", &id]).await;
    let text = run(&cli, key, &["rule", "list"]).await;
    assert_eq!(text, "no rules in this workspace\n");
    server.stop().await;
    drop(plugins);
}
