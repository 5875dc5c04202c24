//! The client commands of the real binary (`agenthost-e2e` is a build of the same
//! `main`) against a real server: a plugin's life cycle from `plugin new` to
//! `plugin rollback`; `agent list` and a streamed `chat` with a tool call; `plugin logs`
//! (filters and `--follow`); `workflow list|show|run` and `execution show|watch`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use agenthost_tests::fake_openai::{FakeOpenAi, Reply};
use agenthost_tests::{ADMIN_TOKEN, StatusCode, TestServer, host_binary, plugin_wasm};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

/// Runs the binary the way a user would: the server from AGENTHOST_SERVER, the admin
/// token from the config file, cargo's target directory shared between runs.
pub(super) struct Cli {
    server: String,
    config_home: PathBuf,
    target_dir: PathBuf,
}

impl Cli {
    pub(super) fn new(server: &TestServer, home: &Path) -> Cli {
        let config_home = home.join("config");
        std::fs::create_dir_all(config_home.join("agenthost")).unwrap();
        std::fs::write(
            config_home.join("agenthost/config.toml"),
            format!("admin_token = \"{ADMIN_TOKEN}\"\n"),
        )
        .unwrap();
        // The generated crates build into one directory next to the tests' own target,
        // kept between runs: the SDK and its dependencies compile once (natively and
        // for wasm32-wasip2), later runs only compile the plugin. Not the plugins
        // workspace's directory: that one builds the `wasm-release` profile, so
        // nothing would be shared, and `make plugins` could hold its lock.
        let target_dir = host_binary()
            .parent()
            .and_then(Path::parent)
            .unwrap()
            .join("cli-plugins");
        Cli {
            server: server.base.clone(),
            config_home,
            target_dir,
        }
    }

    /// Run `agenthost ARGS`; returns stdout, panicking with stderr when it failed.
    async fn run(&self, args: &[&str]) -> String {
        self.run_as(None, args).await
    }

    /// `agenthost ARGS` with AGENTHOST_TOKEN set to `token` (a workspace key), else
    /// the config file's token.
    pub(super) fn command(&self, token: Option<&str>, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(host_binary());
        command
            .args(args)
            .env("AGENTHOST_SERVER", &self.server)
            .env("XDG_CONFIG_HOME", &self.config_home)
            .env("CARGO_TARGET_DIR", &self.target_dir)
            .env_remove("AGENTHOST_TOKEN")
            .env_remove("AGENTHOST_ADMIN_TOKEN");
        if let Some(token) = token {
            command.env("AGENTHOST_TOKEN", token);
        }
        command
    }

    /// Run a command that must fail; returns (stdout, stderr).
    pub(super) async fn run_failing(&self, token: Option<&str>, args: &[&str]) -> (String, String) {
        let output = self.command(token, args).output().await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            !output.status.success(),
            "agenthost {args:?} succeeded:\n{stdout}\n{stderr}"
        );
        (stdout, stderr)
    }

    /// Run with AGENTHOST_TOKEN set to `token` (a workspace key), else the config file's.
    async fn run_as(&self, token: Option<&str>, args: &[&str]) -> String {
        let started = Instant::now();
        let output = self.command(token, args).output().await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "agenthost {args:?} failed ({}):\n{stdout}\n{stderr}",
            output.status
        );
        eprintln!("agenthost {args:?}: {:.1?}", started.elapsed());
        stdout
    }

    async fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        let stdout = self.run(&args).await;
        serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("not JSON: {stdout}"))
    }
}

fn sdk_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk")
}

/// Pin the generated crate's dependencies to the versions the plugins workspace
/// builds with (cargo drops the entries it does not need): no registry look-up, and
/// the same SDK dependencies on every run.
fn pin_dependencies(dir: &Path) {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/Cargo.lock");
    std::fs::copy(lock, dir.join("Cargo.lock")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_life_cycle_from_new_to_rollback() {
    let started = Instant::now();
    let server = TestServer::start().await;
    let (_, key) = server.create_workspace("cli").await;
    let home = tempfile::tempdir().unwrap();
    let cli = Cli::new(&server, home.path());
    let dir = home.path().join("greeter");
    let dir_arg = dir.to_str().unwrap();
    let sdk = sdk_path();

    let created = cli
        .json(&[
            "plugin",
            "new",
            "greeter",
            "--dir",
            dir_arg,
            "--sdk-path",
            sdk.to_str().unwrap(),
        ])
        .await;
    assert_eq!(created["name"], "greeter");
    for file in [
        "Cargo.toml",
        "manifest.json",
        ".cargo/config.toml",
        "src/lib.rs",
    ] {
        assert!(dir.join(file).is_file(), "{file} was not generated");
    }
    pin_dependencies(&dir);

    let tested = cli.run(&["plugin", "test", "--dir", dir_arg]).await;
    assert!(tested.contains("tests passed"), "{tested}");

    let built = cli.json(&["plugin", "build", "--dir", dir_arg]).await;
    let wasm = PathBuf::from(built["wasm"].as_str().unwrap());
    assert!(wasm.starts_with(&cli.target_dir), "{}", wasm.display());
    assert_eq!(
        built["size_bytes"].as_u64().unwrap(),
        std::fs::metadata(&wasm).unwrap().len()
    );

    // Text output, as a user sees it (no TTY here, so no progress bar).
    let pushed = cli
        .run(&["plugin", "push", "--dir", dir_arg, "--activate"])
        .await;
    assert!(pushed.contains("uploaded greeter 0.1.0"), "{pushed}");
    assert!(pushed.contains(", active"), "{pushed}");

    let response = server
        .call_tool(&key, "greeter", "greet", &json!({"name": "Ada"}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let result: Value = response.json().await.unwrap();
    assert_eq!(result["output"]["greeting"], "Hello, Ada!");
    assert_eq!(result["version"], "0.1.0");

    // A new version: only the manifest changes, the component is rebuilt as is.
    let manifest_path = dir.join("manifest.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    manifest["version"] = json!("0.2.0");
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let pushed = cli
        .json(&["plugin", "push", "--dir", dir_arg, "--activate"])
        .await;
    assert_eq!(pushed["version"], "0.2.0");
    assert_eq!(pushed["active"], true);

    let plugins = cli.json(&["plugin", "list"]).await;
    let greeter = plugins
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "greeter")
        .unwrap_or_else(|| panic!("greeter not listed: {plugins}"));
    assert_eq!(greeter["active_version"], "0.2.0");
    assert_eq!(greeter["previous_version"], "0.1.0");
    let shown = cli.json(&["plugin", "show", "greeter"]).await;
    let mut versions: Vec<&str> = shown["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    versions.sort();
    assert_eq!(versions, ["0.1.0", "0.2.0"]);
    let listed = cli.run(&["plugin", "list"]).await;
    assert!(
        listed.contains("greeter: tool active 0.2.0, previous 0.1.0"),
        "{listed}"
    );

    let rolled_back = cli.run(&["plugin", "rollback", "greeter"]).await;
    assert!(rolled_back.contains("active 0.1.0"), "{rolled_back}");
    let shown = cli.json(&["plugin", "show", "greeter"]).await;
    assert_eq!(shown["active_version"], "0.1.0");
    let result: Value = server
        .call_tool(&key, "greeter", "greet", &json!({"name": "Ada"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(result["version"], "0.1.0");

    server.stop().await;
    eprintln!("plugin life cycle: {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_commands_report_server_errors_and_refuse_bad_names() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let cli = Cli::new(&server, home.path());

    let output = tokio::process::Command::new(host_binary())
        .args(["plugin", "show", "nope"])
        .env("AGENTHOST_SERVER", &cli.server)
        .env("XDG_CONFIG_HOME", &cli.config_home)
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("404 Not Found not_found"), "{stderr}");

    // Without any token the server's 401 says where a token comes from.
    let output = tokio::process::Command::new(host_binary())
        .args(["plugin", "list", "--server", &cli.server])
        .env("XDG_CONFIG_HOME", home.path().join("empty"))
        .env_remove("AGENTHOST_TOKEN")
        .env_remove("AGENTHOST_ADMIN_TOKEN")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("AGENTHOST_TOKEN"), "{stderr}");

    let output = tokio::process::Command::new(host_binary())
        .args(["plugin", "new", "Bad Name", "--sdk-path"])
        .arg(sdk_path())
        .current_dir(home.path())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(!home.path().join("Bad Name").exists());

    let workspace = cli.json(&["plugin", "list"]).await;
    assert_eq!(workspace, json!([]));
    server.stop().await;
}

/// Spawning cargo in a missing directory fails with ENOENT, which used to be reported
/// as "running cargo ...: No such file or directory", as if cargo were missing.
#[tokio::test]
async fn plugin_build_names_a_missing_or_foreign_directory_not_cargo() {
    let home = tempfile::tempdir().unwrap();
    let missing = home.path().join("nonexistent");
    let output = tokio::process::Command::new(host_binary())
        .args(["plugin", "build", "--dir"])
        .arg(&missing)
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{} does not exist", missing.display())),
        "{stderr}"
    );
    assert!(!stderr.contains("running cargo"), "{stderr}");

    // A directory that is there but holds no crate.
    let output = tokio::process::Command::new(host_binary())
        .args(["plugin", "test", "--dir"])
        .arg(home.path())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("has no Cargo.toml"), "{stderr}");

    // With the directory right, a missing cargo is named as such.
    let dir = home.path().join("crate");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
    let output = tokio::process::Command::new(host_binary())
        .args(["plugin", "build", "--dir"])
        .arg(&dir)
        .env("CARGO", home.path().join("no-cargo-here"))
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no-cargo-here not found"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_new_node_builds_and_passes_its_test() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let cli = Cli::new(&server, home.path());
    let dir = home.path().join("router");
    let dir_arg = dir.to_str().unwrap();
    cli.run(&[
        "plugin",
        "new",
        "router",
        "--kind",
        "node",
        "--dir",
        dir_arg,
        "--sdk-path",
        sdk_path().to_str().unwrap(),
    ])
    .await;
    pin_dependencies(&dir);
    cli.run(&["plugin", "test", "--dir", dir_arg]).await;
    let pushed = cli.json(&["plugin", "push", "--dir", dir_arg]).await;
    assert_eq!(pushed["plugin"], "router");
    assert_eq!(pushed["active"], false);
    assert_eq!(pushed["nodes"][0]["node_type"], "threshold", "{pushed}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_list_and_chat_stream_the_answer_and_show_tool_calls() {
    let fake = FakeOpenAi::start().await;
    let base = fake.base_url.clone();
    let f = super::dexter::fixture_with(move |config| {
        config.llm_base_url = Some(base);
        config.llm_max_retries = 0;
    })
    .await;
    let home = tempfile::tempdir().unwrap();
    let cli = Cli::new(&f.server, home.path());

    let agents = cli.run_as(Some(&f.key), &["agent", "list"]).await;
    assert!(
        agents
            .lines()
            .any(|line| line.starts_with("dexter  Dexter  (")),
        "{agents}"
    );
    let agents: Value = serde_json::from_str(
        &cli.run_as(Some(&f.key), &["agent", "list", "--output", "json"])
            .await,
    )
    .unwrap();
    assert!(
        agents["agents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|agent| agent["slug"] == "dexter"),
        "{agents}"
    );

    fake.reply(Reply::ToolCalls(vec![(
        "call_1".into(),
        "revenue_analysis".into(),
        json!({ "period": "2025-Q4" }),
    )]));
    fake.reply(Reply::Text("Q4 2025 revenue was 30000 USD.".into()));
    let answer = cli
        .run_as(Some(&f.key), &["chat", "dexter", "Analyse Q4 revenue"])
        .await;
    assert_eq!(
        answer,
        "→ revenue_analysis({\"period\":\"2025-Q4\"})\nQ4 2025 revenue was 30000 USD.\n"
    );

    // --output json: the recorded turn as the server answers it without streaming.
    fake.reply(Reply::Text("Still 30000 USD.".into()));
    let turn: Value = serde_json::from_str(
        &cli.run_as(
            Some(&f.key),
            &["chat", "dexter", "And again?", "--output", "json"],
        )
        .await,
    )
    .unwrap();
    assert_eq!(turn["message"]["content"], "Still 30000 USD.");
    f.server.stop().await;
}

/// One JSON document per line (`--follow` and `execution watch` with `--output json`).
fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect()
}

pub(super) async fn greet(server: &TestServer, key: &str, name: &str, request_id: &str) {
    let response = server
        .request(reqwest::Method::POST, "/api/tools/hello/greet", key)
        .header("x-request-id", request_id)
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_logs_filters_pages_and_follows_new_lines() {
    let server = TestServer::start().await;
    let (_, key) = server.create_workspace("cli-logs").await;
    let home = tempfile::tempdir().unwrap();
    let cli = Cli::new(&server, home.path());
    for version in ["1.0.0", "1.1.0"] {
        let manifest = json!({"name": "hello", "version": version, "kind": "tool"});
        let response = server
            .upload_plugin(&manifest, plugin_wasm("hello"), true)
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let name = if version == "1.0.0" { "Ada" } else { "Bob" };
        greet(&server, &key, name, &format!("cli-{name}")).await;
    }

    // Stored by a background task: ask until both lines are there.
    let mut page = Value::Null;
    for _ in 0..100 {
        page = cli.json(&["plugin", "logs", "hello"]).await;
        if page["lines"].as_array().unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let lines = page["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{page}");
    assert_eq!(lines[0]["message"], "greeting Bob");
    assert_eq!(lines[0]["version"], "1.1.0");
    assert_eq!(lines[0]["request_id"], "cli-Bob");
    assert_eq!(lines[1]["message"], "greeting Ada");

    let old = cli
        .json(&[
            "plugin",
            "logs",
            "hello",
            "--version",
            "1.0.0",
            "--since",
            "1h",
        ])
        .await;
    assert_eq!(old["lines"].as_array().unwrap().len(), 1);
    assert_eq!(old["lines"][0]["request_id"], "cli-Ada");
    let severe = cli
        .json(&["plugin", "logs", "hello", "--level", "warn"])
        .await;
    assert_eq!(severe["lines"], json!([]));
    let newest = cli.json(&["plugin", "logs", "hello", "--limit", "1"]).await;
    assert_eq!(newest["lines"][0]["message"], "greeting Bob");
    assert_eq!(newest["next_before"], lines[0]["id"]);

    // Text: oldest first, like a log file.
    let text = cli.run(&["plugin", "logs", "hello"]).await;
    let text: Vec<&str> = text.lines().collect();
    assert_eq!(text.len(), 2, "{text:?}");
    assert!(
        text[0].contains("INFO  1.0.0 greeting Ada  (request cli-Ada)"),
        "{text:?}"
    );
    assert!(text[1].contains("1.1.0 greeting Bob"), "{text:?}");

    // --follow: the page, then each new line as it is stored (JSON: one per line).
    let mut follower = cli
        .command(
            None,
            &[
                "plugin",
                "logs",
                "hello",
                "--follow",
                "--interval",
                "100ms",
                "--output",
                "json",
            ],
        )
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = tokio::io::BufReader::new(follower.stdout.take().unwrap()).lines();
    let mut next_line = async || -> Value {
        let line = tokio::time::timeout(std::time::Duration::from_secs(30), out.next_line())
            .await
            .expect("no line from plugin logs --follow")
            .unwrap()
            .expect("plugin logs --follow ended");
        serde_json::from_str(&line).unwrap()
    };
    assert_eq!(next_line().await["message"], "greeting Ada");
    assert_eq!(next_line().await["message"], "greeting Bob");
    greet(&server, &key, "Cid", "cli-Cid").await;
    let followed = next_line().await;
    assert_eq!(followed["message"], "greeting Cid");
    assert_eq!(followed["request_id"], "cli-Cid");
    follower.kill().await.unwrap();

    let (_, stderr) = cli
        .run_failing(None, &["plugin", "logs", "hello", "--since", "yesterday"])
        .await;
    assert!(stderr.contains("--since"), "{stderr}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_and_execution_commands_run_show_and_watch() {
    let server = TestServer::start().await;
    let (_, key) = server.create_workspace("cli-flows").await;
    let manifest = json!({"name": "core", "version": "0.1.0", "kind": "node"});
    let response = server
        .upload_plugin(&manifest, plugin_wasm("core"), true)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    for (slug, value) in [
        ("double", "{{ input.n * 2 }}"),
        ("broken", "{{ input.missing }}"),
    ] {
        let definition = json!({
            "nodes": [
                {"id": "a", "type": "core/transform", "config": {"value": value}},
                {"id": "out", "type": "core/output", "config": {"value": "{{ nodes.a.output }}"}}
            ],
            "edges": [{"from": "a", "to": "out"}]
        });
        let response = server
            .send(
                &key,
                reqwest::Method::POST,
                "/api/workflows",
                Some(json!({"slug": slug, "name": format!("The {slug} flow"), "definition": definition})),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let home = tempfile::tempdir().unwrap();
    let cli = Cli::new(&server, home.path());
    let key = Some(key.as_str());

    let listed = cli
        .run_as(key, &["workflow", "list", "--output", "json"])
        .await;
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let mut slugs: Vec<&str> = listed["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["slug"].as_str().unwrap())
        .collect();
    slugs.sort();
    assert_eq!(slugs, ["broken", "double"]);
    let text = cli.run_as(key, &["workflow", "list"]).await;
    assert!(
        text.contains("double  The double flow  version 1"),
        "{text}"
    );

    let shown: Value = serde_json::from_str(
        &cli.run_as(key, &["workflow", "show", "double", "--output", "json"])
            .await,
    )
    .unwrap();
    assert_eq!(shown["slug"], "double");
    assert_eq!(shown["definition"]["nodes"][0]["type"], "core/transform");
    let text = cli.run_as(key, &["workflow", "show", "double"]).await;
    assert!(text.contains("  a  core/transform"), "{text}");
    assert!(text.contains("  a -> out"), "{text}");

    // run --wait: follows the execution, prints it finished.
    let finished: Value = serde_json::from_str(
        &cli.run_as(
            key,
            &[
                "workflow",
                "run",
                "double",
                "--input",
                r#"{"n": 21}"#,
                "--wait",
                "--output",
                "json",
            ],
        )
        .await,
    )
    .unwrap();
    assert_eq!(finished["status"], "succeeded", "{finished}");
    assert_eq!(finished["output"], 42);
    assert_eq!(finished["nodes"].as_array().unwrap().len(), 2);

    // Input from a file, without waiting; then watch it and show it.
    let input = home.path().join("input.json");
    std::fs::write(&input, r#"{"n": 4}"#).unwrap();
    let at_input = format!("@{}", input.display());
    let started: Value = serde_json::from_str(
        &cli.run_as(
            key,
            &[
                "workflow", "run", "double", "--input", &at_input, "--output", "json",
            ],
        )
        .await,
    )
    .unwrap();
    assert_eq!(started["input"], json!({"n": 4}));
    let id = started["id"].as_str().unwrap();
    let events = json_lines(
        &cli.run_as(key, &["execution", "watch", id, "--output", "json"])
            .await,
    );
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"started"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"finished"), "{kinds:?}");
    let completed: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "node_completed")
        .map(|e| e["node"].as_str().unwrap())
        .collect();
    assert_eq!(completed, ["a", "out"]);
    assert_eq!(events.last().unwrap()["data"]["status"], "succeeded");
    assert!(
        events
            .windows(2)
            .all(|w| w[0]["id"].as_i64() < w[1]["id"].as_i64())
    );
    let watched = cli.run_as(key, &["execution", "watch", id]).await;
    assert!(
        watched.contains("node_completed a (attempt 1)"),
        "{watched}"
    );
    assert!(
        watched.contains(&format!("execution {id}: succeeded\noutput: 8")),
        "{watched}"
    );

    let shown: Value = serde_json::from_str(
        &cli.run_as(key, &["execution", "show", id, "--output", "json"])
            .await,
    )
    .unwrap();
    assert_eq!(shown["output"], 8);
    assert!(
        shown["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["status"] == "succeeded")
    );
    let text = cli.run_as(key, &["execution", "show", id]).await;
    assert!(
        text.contains("  a  succeeded  attempt 1  core 0.1.0"),
        "{text}"
    );

    // A failed execution makes run --wait and watch exit non-zero, saying why.
    let (stdout, stderr) = cli
        .run_failing(
            key,
            &["workflow", "run", "broken", "--wait", "--output", "json"],
        )
        .await;
    let failed: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(failed["status"], "failed");
    let failed_id = failed["id"].as_str().unwrap();
    assert!(
        stderr.contains(&format!("execution {failed_id} failed")),
        "{stderr}"
    );
    let (stdout, stderr) = cli
        .run_failing(key, &["execution", "watch", failed_id])
        .await;
    assert!(stdout.contains("node_failed a: invalid"), "{stdout}");
    assert!(stderr.contains("failed"), "{stderr}");

    let (_, stderr) = cli
        .run_failing(key, &["workflow", "run", "double", "--input", "{not json"])
        .await;
    assert!(stderr.contains("--input is not JSON"), "{stderr}");
    server.stop().await;
}
