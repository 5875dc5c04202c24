//! The end-to-end test harness.
//!
//! One embedded PostgreSQL per test process, started on first use and stopped when the
//! process exits; every test gets a fresh database in it and a real server on
//! `127.0.0.1:0`. Tests that need a host's whole life cycle (restart, crash, stale
//! pid file) start the real binary as a process with its own data directory.
#![allow(unsafe_code)] // only for `atexit`, see `stop_cluster_at_exit`
#![allow(clippy::unwrap_used)] // test support: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use agenthost::Config;
use agenthost::db::embedded::{EmbeddedOptions, EmbeddedPostgres};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

pub mod aura_eval;
pub mod fake_openai;
pub mod smtp;

pub use reqwest::StatusCode;

/// The admin token every in-process test server is configured with.
pub const ADMIN_TOKEN: &str = "aha_test-admin-token";

/// Where `make setup` installs PostgreSQL; `AGENTHOST_PG_DIR` overrides it.
pub fn pg_dir() -> PathBuf {
    std::env::var_os("AGENTHOST_PG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.agenthost/postgres"))
}

/// Where `make setup` installs the embedding model; `AGENTHOST_EMBEDDING_MODEL_DIR`
/// overrides it.
pub fn model_dir() -> PathBuf {
    std::env::var_os("AGENTHOST_EMBEDDING_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../.agenthost/models/all-MiniLM-L6-v2")
        })
}

/// The local chat model's GGUF as `make setup` installs it; `AGENTHOST_LOCAL_MODEL_DIR`
/// overrides the directory.
pub fn local_model_file() -> PathBuf {
    std::env::var_os("AGENTHOST_LOCAL_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../.agenthost/models/qwen2.5-coder-1.5b-instruct-q4_k_m")
        })
        .join("model.gguf")
}

/// Where `make setup` installs multilingual-e5-small, the default embedding model;
/// `AGENTHOST_MULTILINGUAL_MODEL_DIR` overrides it.
pub fn multilingual_model_dir() -> PathBuf {
    std::env::var_os("AGENTHOST_MULTILINGUAL_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../.agenthost/models/multilingual-e5-small")
        })
}

/// Where `make pyclients` installs the official Python clients (openai, mcp,
/// schemathesis, componentize-py); `AGENTHOST_PYCLIENTS_DIR` overrides it.
pub fn pyclients_dir() -> PathBuf {
    std::env::var_os("AGENTHOST_PYCLIENTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.agenthost/pyclients"))
}

/// The `node_modules` that `make nodeclients` installs (the AI SDK, the MCP conformance
/// runner); `AGENTHOST_NODECLIENTS_DIR` overrides its parent.
pub fn node_modules() -> PathBuf {
    std::env::var_os("AGENTHOST_NODECLIENTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.agenthost/nodeclients"))
        .join("node_modules")
}

struct Cluster {
    server: EmbeddedPostgres,
    // Kept for the process's life; removed by the atexit hook.
    dir: PathBuf,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        // Start outside the caller's async runtime: startup blocks on its own runtime.
        std::thread::spawn(|| {
            let dir = tempfile::Builder::new()
                .prefix("agenthost-test-pg-")
                .tempdir()
                .unwrap()
                .keep();
            let server = EmbeddedPostgres::start_blocking(&EmbeddedOptions {
                install_dir: pg_dir(),
                data_dir: dir.clone(),
                run_as_when_root: "agenthost-pg".into(),
                unsafe_fast: true,
            })
            .unwrap_or_else(|err| panic!("starting the test PostgreSQL: {err:#}"));
            stop_cluster_at_exit();
            Cluster { server, dir }
        })
        .join()
        .unwrap()
    })
}

/// Statics are never dropped, so stop the shared server when the test process exits.
fn stop_cluster_at_exit() {
    extern "C" fn stop() {
        if let Some(cluster) = CLUSTER.get() {
            if let Some(pid) = cluster.server.pid() {
                let pid = Pid::from_raw(pid as i32);
                let _ = kill(pid, Signal::SIGQUIT);
                for _ in 0..200 {
                    match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                        Ok(nix::sys::wait::WaitStatus::StillAlive) => {
                            std::thread::sleep(Duration::from_millis(10))
                        }
                        _ => break,
                    }
                }
            }
            let _ = std::fs::remove_dir_all(&cluster.dir);
        }
    }
    // SAFETY: `stop` is a plain function that only touches a static that is fully
    // initialised before it can run.
    unsafe {
        nix::libc::atexit(stop);
    }
}

/// A fresh, empty database in the shared test cluster; returns its URL.
pub async fn fresh_database() -> String {
    let cluster = cluster();
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    cluster.server.ensure_database(&name).await.unwrap();
    cluster.server.url(&name)
}

/// A test configuration: a fresh database, a free port, a known admin token.
pub async fn test_config() -> Config {
    let mut config = Config::for_data_dir(std::env::temp_dir().join("agenthost-unused"));
    config.database_url = Some(fresh_database().await);
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.admin_token = Some(ADMIN_TOKEN.into());
    config.rate_limit_per_minute = 0;
    config.db_max_connections = 4;
    // Small pools: many test servers share one machine's address space.
    config.plugin_instances = 32;
    config.plugin_timeout = Duration::from_secs(5);
    config.bundled_plugins_dir = std::env::temp_dir().join("agenthost-no-bundled-plugins");
    config.embedding_model_dir = model_dir();
    config.multilingual_model_dir = multilingual_model_dir();
    // No outbound webhooks: a test that creates webhooks with public URLs (schemathesis
    // does) must send nothing off this machine. Tests of webhooks turn them on.
    config.webhook_workers = 0;
    config
}

/// A real server on 127.0.0.1:0, in this process, with an HTTP client.
pub struct TestServer {
    pub base: String,
    pub database_url: String,
    pub client: reqwest::Client,
    server: Option<agenthost::Server>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Start with a changed configuration (limits, tokens...).
    pub async fn start_with(change: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = test_config().await;
        change(&mut config);
        Self::start_config(config).await
    }

    /// A second host on the same database as `self` (a replica).
    pub async fn replica(&self) -> TestServer {
        self.replica_with(|_| {}).await
    }

    /// A replica with a changed configuration (the same SMTP server as the first...).
    pub async fn replica_with(&self, change: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = test_config().await;
        change(&mut config);
        config.database_url = Some(self.database_url.clone());
        Self::start_config(config).await
    }

    async fn start_config(config: Config) -> TestServer {
        let database_url = config.database_url.clone().unwrap();
        let server = agenthost::Server::start(config).await.unwrap();
        TestServer {
            database_url,
            base: format!("http://{}", server.addr),
            client: reqwest::Client::new(),
            server: Some(server),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with `token` as bearer credentials.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    /// Create a workspace as the admin; returns (workspace id, owner key secret).
    /// Send a request with `token`, with `body` as JSON when given.
    pub async fn send(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self.request(method, path, token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    pub async fn create_workspace(&self, slug: &str) -> (String, String) {
        let response = self
            .request(reqwest::Method::POST, "/api/admin/workspaces", ADMIN_TOKEN)
            .json(&json!({ "slug": slug, "name": format!("Workspace {slug}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        (
            body["id"].as_str().unwrap().to_string(),
            body["owner_key"]["secret"].as_str().unwrap().to_string(),
        )
    }

    /// Create a key with `role` in a workspace as the admin; returns (key id, secret).
    pub async fn create_key(&self, workspace_id: &str, role: &str) -> (String, String) {
        let response = self
            .request(
                reqwest::Method::POST,
                &format!("/api/admin/workspaces/{workspace_id}/keys"),
                ADMIN_TOKEN,
            )
            .json(&json!({ "name": format!("{role} key"), "role": role }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        (
            body["id"].as_str().unwrap().to_string(),
            body["secret"].as_str().unwrap().to_string(),
        )
    }

    /// Upload a plugin as the admin; returns the response.
    pub async fn upload_plugin(
        &self,
        manifest: &Value,
        component: Vec<u8>,
        activate: bool,
    ) -> reqwest::Response {
        let form = reqwest::multipart::Form::new()
            .text("manifest", manifest.to_string())
            .part(
                "component",
                reqwest::multipart::Part::bytes(component).file_name("plugin.wasm"),
            );
        let path = if activate {
            "/api/admin/plugins?activate=true"
        } else {
            "/api/admin/plugins"
        };
        self.request(reqwest::Method::POST, path, ADMIN_TOKEN)
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    /// Install, activate and grant the Dexter plugin as `make plugins` bundles it.
    pub async fn install_dexter(&self) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dexter/manifest.json");
        let manifest: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let response = self
            .upload_plugin(&manifest, plugin_wasm("dexter"), true)
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let version = manifest["version"].as_str().unwrap();
        let response = self
            .request(
                reqwest::Method::PUT,
                &format!("/api/admin/plugins/dexter/versions/{version}/grants"),
                ADMIN_TOKEN,
            )
            .json(&manifest["capabilities"])
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{}",
            response.text().await.unwrap()
        );
    }

    /// Import rows of a business-data entity as JSON; returns (status, body).
    pub async fn import(&self, key: &str, entity: &str, rows: &Value) -> (StatusCode, Value) {
        let response = self
            .request(reqwest::Method::POST, &format!("/api/data/{entity}"), key)
            .json(rows)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    /// Call a tool with a workspace key.
    pub async fn call_tool(
        &self,
        key: &str,
        plugin: &str,
        tool: &str,
        input: &Value,
    ) -> reqwest::Response {
        self.request(
            reqwest::Method::POST,
            &format!("/api/tools/{plugin}/{tool}"),
            key,
        )
        .json(input)
        .send()
        .await
        .unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.unwrap();
        }
    }
}

/// Read a JSON error body and check its shape; returns (code, message).
pub async fn error_of(response: reqwest::Response) -> (String, String) {
    let text = response.text().await.unwrap();
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("error body is not JSON: {text:?}"));
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code in {body}"));
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message in {body}"));
    assert!(!message.is_empty());
    (code.to_string(), message.to_string())
}

/// The `agenthost-e2e` binary of this crate. Cargo builds a package's binaries before
/// its integration tests and puts them one level above the test executables
/// (`target/<profile>/deps/e2e-*` -> `target/<profile>/agenthost-e2e`).
pub fn host_binary() -> PathBuf {
    let test_exe = std::env::current_exe().unwrap();
    let profile_dir = test_exe.parent().and_then(Path::parent).unwrap();
    let binary = profile_dir.join("agenthost-e2e");
    assert!(
        binary.is_file(),
        "{} is missing: build with `cargo test -p agenthost-tests`",
        binary.display()
    );
    binary
}

/// The real binary as a process, with its own data directory and embedded PostgreSQL.
pub struct HostProcess {
    pub child: tokio::process::Child,
    pub base: String,
    /// Lines the process printed to stdout before it reported its address.
    pub stdout: Vec<String>,
}

impl HostProcess {
    /// Start `agenthost` on `data_dir`; waits until it prints its address.
    pub async fn start(data_dir: &Path, extra_env: &[(&str, &str)]) -> HostProcess {
        let mut child = Self::command(data_dir, extra_env)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stdout = Vec::new();
        let wait_for_address = async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(addr) = line.strip_prefix("Agenthost listening on ") {
                    return addr.to_string();
                }
                stdout.push(line);
            }
            panic!("agenthost exited before listening; stdout: {stdout:?}");
        };
        let base = tokio::time::timeout(Duration::from_secs(60), wait_for_address)
            .await
            .expect("agenthost did not start within 60 s");
        // Keep draining stdout so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        HostProcess {
            child,
            base,
            stdout,
        }
    }

    /// The command that runs the binary; `output()` it to test failed starts.
    pub fn command(data_dir: &Path, extra_env: &[(&str, &str)]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(host_binary());
        command
            .env_remove("DATABASE_URL")
            .env_remove("AGENTHOST_ADMIN_TOKEN")
            .env("AGENTHOST_DATA_DIR", data_dir)
            .env("AGENTHOST_PG_DIR", pg_dir())
            .env("AGENTHOST_MULTILINGUAL_MODEL_DIR", multilingual_model_dir())
            .env("AGENTHOST_PG_UNSAFE_FAST", "true")
            .env("AGENTHOST_LISTEN", "127.0.0.1:0")
            .env("AGENTHOST_LOG", "warn")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        for (name, value) in extra_env {
            command.env(name, value);
        }
        command
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGTERM and wait: the graceful path.
    pub async fn stop(mut self) {
        let pid = Pid::from_raw(self.child.id().unwrap() as i32);
        kill(pid, Signal::SIGTERM).unwrap();
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("agenthost did not stop within 30 s after SIGTERM")
            .unwrap();
        assert!(status.success(), "agenthost exited with {status}");
    }

    /// SIGKILL: the host gets no chance to clean up.
    pub async fn crash(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }
}

/// The guest components, built once per test process with the plugins workspace's own
/// cargo build (incremental: ~0.3 s when nothing changed). Same output directory as
/// `make plugins`.
pub fn plugin_wasm(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let manifest = root.join("plugins/Cargo.toml");
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("plugins/target"));
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "--target",
                "wasm32-wasip2",
                "--profile",
                "wasm-release",
            ])
            .arg("--manifest-path")
            .arg(&manifest)
            .env("CARGO_TARGET_DIR", &target_dir)
            .status()
            .expect("running cargo to build the plugins");
        assert!(status.success(), "building the plugins failed (see above)");
        target_dir.join("wasm32-wasip2/wasm-release")
    });
    let path = dir.join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}
