//! Events forwarded to NATS JetStream: Debian's `nats-server` (2.9, `-js`) started by
//! the test; every event is in the stream once, with its id as `Nats-Msg-Id`, and
//! events made while NATS is down arrive after it is back, without repeats.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use agenthost_tests::{StatusCode, TestServer};
use async_nats::jetstream;
use reqwest::Method;
use serde_json::{Value, json};

/// `nats-server`, from PATH or where Debian's package puts it (`make setup` installs it).
fn nats_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("nats-server"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([
            PathBuf::from("/usr/sbin/nats-server"),
            PathBuf::from("/usr/bin/nats-server"),
        ])
        .find(|candidate| candidate.is_file())
        .expect("nats-server is not installed: run `make setup` (Debian's nats-server package)")
}

/// A JetStream server on a fixed port and store, so it can be killed and restarted.
struct Nats {
    port: u16,
    store: PathBuf,
    child: tokio::process::Child,
}

impl Nats {
    async fn start(port: u16, store: &Path) -> Nats {
        let child = tokio::process::Command::new(nats_binary())
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let nats = Nats {
            port,
            store: store.to_path_buf(),
            child,
        };
        for _ in 0..500 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return nats;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("nats-server did not listen on {port}");
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, as an outage: nothing is flushed or said goodbye.
    async fn kill(mut self) -> (u16, PathBuf) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
        (self.port, self.store)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Every message of the stream: (subject, Nats-Msg-Id, the event's id in the body).
async fn stream_messages(url: &str, at_least: usize) -> Vec<(String, String, String)> {
    let client = async_nats::connect(url).await.unwrap();
    let js = jetstream::new(client);
    let mut last = 0;
    for _ in 0..750 {
        if let Ok(mut stream) = js.get_stream("AGENTHOST").await
            && let Ok(info) = stream.info().await
        {
            last = info.state.messages as usize;
            if last >= at_least {
                let mut found = Vec::new();
                for sequence in info.state.first_sequence..=info.state.last_sequence {
                    let message = stream.get_raw_message(sequence).await.unwrap();
                    let id = message
                        .headers
                        .get("Nats-Msg-Id")
                        .unwrap()
                        .as_str()
                        .to_string();
                    let body: Value = serde_json::from_slice(&message.payload).unwrap();
                    found.push((
                        message.subject.to_string(),
                        id,
                        body["id"].as_str().unwrap().to_string(),
                    ));
                }
                return found;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the stream has {last} messages, not {at_least}");
}

async fn ticket(server: &TestServer, key: &str, subject: &str) {
    let response = server
        .send(
            key,
            Method::POST,
            "/api/tickets",
            Some(json!({"subject": subject, "requester": {"email": "ana@example.com"}})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

/// The workspace's event ids, oldest first, once there are `count`.
async fn event_ids(server: &TestServer, key: &str, count: usize) -> Vec<String> {
    for _ in 0..500 {
        let page: Value = server
            .send(key, Method::GET, "/api/events?limit=1000", None)
            .await
            .json()
            .await
            .unwrap();
        let ids: Vec<String> = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        if ids.len() >= count {
            return ids;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("fewer than {count} events");
}

/// A host publishing to `url`, on `database` when given (a replica).
async fn host(url: &str, database: Option<String>) -> TestServer {
    let url = url.to_string();
    TestServer::start_with(move |config| {
        config.nats_url = Some(url);
        config.nats_ack_timeout = Duration::from_millis(500);
        if let Some(database) = database {
            config.database_url = Some(database);
        }
    })
    .await
}

#[tokio::test]
async fn events_reach_jetstream_once_and_survive_a_nats_outage() {
    let store = tempfile::tempdir().unwrap();
    let nats = Nats::start(free_port(), store.path()).await;
    let url = nats.url();
    let server = host(&url, None).await;
    // A second host on the same database: one of them publishes at a time.
    let database = server.database_url.clone();
    let other = host(&url, Some(database.clone())).await;
    let (_, key) = server.create_workspace("natsy").await;
    for subject in ["Refund", "Invoice", "Login"] {
        ticket(&server, &key, subject).await;
    }
    let ids = event_ids(&server, &key, 3).await;
    let published = stream_messages(&url, ids.len()).await;
    assert_eq!(published.len(), ids.len(), "{published:?}");
    for ((subject, msg_id, body_id), id) in published.iter().zip(&ids) {
        assert_eq!(subject, "agenthost.natsy.ticket.created");
        assert_eq!((msg_id, body_id), (id, id));
    }

    // NATS goes away; events keep being made; NATS comes back on the same store.
    let (port, store_path) = nats.kill().await;
    for subject in ["Outage", "Still down"] {
        ticket(&other, &key, subject).await;
    }
    let during = event_ids(&server, &key, ids.len() + 2).await;
    // Time for the hosts' publishes to time out (500 ms) while NATS is down.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let nats = Nats::start(port, &store_path).await;
    let published = stream_messages(&url, during.len()).await;
    let in_stream: Vec<&String> = published.iter().map(|(_, id, _)| id).collect();
    assert_eq!(
        in_stream,
        during.iter().collect::<Vec<_>>(),
        "each event once, in order"
    );

    // Down again, and this time every host stops before NATS is back: what the
    // publishers held in memory is gone, so a new host must start from the cursor.
    let (port, store_path) = nats.kill().await;
    ticket(&server, &key, "Nobody publishing").await;
    let after = event_ids(&server, &key, during.len() + 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    other.stop().await;
    server.stop().await;
    let nats = Nats::start(port, &store_path).await;
    let server = host(&url, Some(database)).await;
    let published = stream_messages(&url, after.len()).await;
    let in_stream: Vec<&String> = published.iter().map(|(_, id, _)| id).collect();
    assert_eq!(
        in_stream,
        after.iter().collect::<Vec<_>>(),
        "each event once, in order"
    );

    // The cursor reached the last event, so nothing is left to publish again.
    let pool = sqlx::PgPool::connect(&server.database_url).await.unwrap();
    let last = after.last().unwrap();
    let mut reached = false;
    for _ in 0..500 {
        let at: Option<String> = sqlx::query_scalar(
            "SELECT e.id::text FROM nats_cursors c JOIN events e ON (e.tx, e.seq) = (c.tx, c.seq) \
             WHERE c.stream = 'AGENTHOST'",
        )
        .fetch_optional(&pool)
        .await
        .unwrap();
        if at.as_ref() == Some(last) {
            reached = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reached, "the cursor never reached the last event");
    assert_eq!(stream_messages(&url, after.len()).await.len(), after.len());
    server.stop().await;
    drop(nats);
}
