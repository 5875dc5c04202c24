//! The real binary's log, read the way a log file or collector reads it: through a
//! pipe. No colour escapes there (colour is for a terminal), and a stateless MCP
//! request adds no info lines of rmcp's (it used to add three, one with the client's
//! whole capabilities); `--log info,rmcp=info` brings them back.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agenthost_tests::{ADMIN_TOKEN, HostProcess, StatusCode};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

/// The binary with stdout and stderr piped; stderr (the log) is collected.
struct LoggedHost {
    child: tokio::process::Child,
    base: String,
    log: Arc<Mutex<Vec<u8>>>,
}

impl LoggedHost {
    async fn start(data_dir: &Path, log_filter: &str) -> LoggedHost {
        let mut child = HostProcess::command(
            data_dir,
            &[
                ("AGENTHOST_LOG", log_filter),
                ("AGENTHOST_ADMIN_TOKEN", ADMIN_TOKEN),
            ],
        )
        // Colour must follow where the log goes, whatever the environment says.
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        tokio::spawn(async move {
            let mut buffer = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut buffer).await {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let address = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(address) = line.strip_prefix("Agenthost listening on ") {
                    return address.to_string();
                }
            }
            panic!("agenthost exited before listening");
        })
        .await
        .expect("agenthost did not start within 60 s");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        LoggedHost {
            child,
            base: address,
            log,
        }
    }

    /// SIGTERM, wait, and return everything it logged.
    async fn stop(mut self) -> String {
        let pid = Pid::from_raw(self.child.id().unwrap() as i32);
        kill(pid, Signal::SIGTERM).unwrap();
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("agenthost did not stop within 30 s")
            .unwrap();
        assert!(status.success(), "agenthost exited with {status}");
        // The reader task sees the end of the pipe right after the exit.
        for _ in 0..100 {
            if Arc::strong_count(&self.log) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        String::from_utf8_lossy(&self.log.lock().unwrap()).into_owned()
    }
}

/// A workspace key, then one stateless (2026-07-28) MCP `tools/list`.
async fn one_stateless_mcp_request(host: &LoggedHost) {
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/api/admin/workspaces", host.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"slug": "logs", "name": "Logs"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let workspace: Value = response.json().await.unwrap();
    let key = workspace["owner_key"]["secret"].as_str().unwrap();
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {"sampling": {}, "roots": {"listChanged": true}},
        "io.modelcontextprotocol/clientInfo": {"name": "log-test", "version": "1.0"},
    });
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta}});
    let response = client
        .post(format!("{}/mcp", host.base))
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/list")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(text.contains("\"tools\""), "{text}");
}

fn rmcp_info_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|line| line.contains("INFO") && line.contains("rmcp"))
        .collect()
}

#[tokio::test]
async fn the_log_through_a_pipe_has_no_colour_and_no_rmcp_chatter() {
    let dir = tempfile::tempdir().unwrap();
    let host = LoggedHost::start(dir.path(), "info").await;
    one_stateless_mcp_request(&host).await;
    let log = host.stop().await;
    assert!(
        log.lines().any(|line| line.contains("INFO")),
        "nothing logged at info: {log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "colour escapes in a piped log: {:?}",
        log.lines().find(|line| line.contains('\u{1b}'))
    );
    assert_eq!(rmcp_info_lines(&log), Vec::<&str>::new());
    assert!(!log.contains("capabilities"), "{log}");
}

/// The control: the same request does make rmcp log when the operator asks for it, so
/// the test above is quiet because of the filter, not because nothing happened.
#[tokio::test]
async fn rmcp_lines_come_back_with_an_explicit_directive() {
    let dir = tempfile::tempdir().unwrap();
    let host = LoggedHost::start(dir.path(), "info,rmcp=info").await;
    one_stateless_mcp_request(&host).await;
    let log = host.stop().await;
    assert!(!rmcp_info_lines(&log).is_empty(), "{log}");
    assert!(!log.contains('\u{1b}'));
}
