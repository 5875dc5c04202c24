//! The test's side of outbound webhooks: a receiver on loopback that records what it
//! is sent and answers from a script, and the official `standardwebhooks` package
//! verifying what it got.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agenthost_tests::pyclients_dir;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::IntoResponse;
use serde_json::{Value, json};

/// What the receiver answers on one path: a status and maybe `Retry-After`.
pub(super) type Answer = (u16, Option<&'static str>);

/// One request the receiver got.
#[derive(Debug, Clone)]
pub(super) struct Captured {
    pub(super) path: String,
    pub(super) headers: BTreeMap<String, String>,
    pub(super) body: String,
}

impl Captured {
    pub(super) fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    pub(super) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// A webhook receiver on loopback: records every request, and answers each path from
/// its script (then its default, then 200).
#[derive(Clone)]
pub(super) struct Receiver {
    captured: Arc<Mutex<Vec<Captured>>>,
    scripts: Arc<Mutex<HashMap<String, VecDeque<Answer>>>>,
    defaults: Arc<Mutex<HashMap<String, Answer>>>,
    /// Paths whose requests are held open until `release`.
    pub(super) held: Arc<Mutex<Vec<String>>>,
    pub(super) release: Arc<tokio::sync::watch::Sender<bool>>,
    /// Per path: requests open now, and the most ever open at once.
    open: Arc<Mutex<HashMap<String, (usize, usize)>>>,
}

/// A held request, open until dropped.
struct OpenRequest(Arc<Mutex<HashMap<String, (usize, usize)>>>, String);

impl Drop for OpenRequest {
    fn drop(&mut self) {
        if let Some((now, _)) = self.0.lock().unwrap().get_mut(&self.1) {
            *now -= 1;
        }
    }
}

async fn receive(
    State(receiver): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let path = uri.path().to_string();
    let headers = headers
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("").to_string()))
        .collect();
    receiver.captured.lock().unwrap().push(Captured {
        path: path.clone(),
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    });
    if receiver.held.lock().unwrap().contains(&path) {
        {
            let mut open = receiver.open.lock().unwrap();
            let (now, most) = open.entry(path.clone()).or_default();
            *now += 1;
            *most = (*most).max(*now);
        }
        // Counted down however the request ends (its sender may hang up first).
        let _open = OpenRequest(receiver.open.clone(), path.clone());
        let mut released = receiver.release.subscribe();
        let _ = released.wait_for(|go| *go).await;
    }
    let scripted = receiver
        .scripts
        .lock()
        .unwrap()
        .get_mut(&path)
        .and_then(VecDeque::pop_front);
    let default = receiver.defaults.lock().unwrap().get(&path).copied();
    let (status, retry_after) = scripted.or(default).unwrap_or((200, None));
    let status = axum::http::StatusCode::from_u16(status).unwrap();
    match retry_after {
        Some(after) => (status, [("retry-after", after)], "busy").into_response(),
        None => (status, "thanks").into_response(),
    }
}

impl Receiver {
    pub(super) async fn start() -> (Receiver, String) {
        let receiver = Receiver {
            captured: Arc::default(),
            scripts: Arc::default(),
            defaults: Arc::default(),
            held: Arc::default(),
            release: Arc::new(tokio::sync::watch::channel(false).0),
            open: Arc::default(),
        };
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, base)
    }

    pub(super) fn script(&self, path: &str, answers: &[Answer]) {
        self.scripts
            .lock()
            .unwrap()
            .insert(path.into(), answers.iter().copied().collect());
    }

    pub(super) fn answer_always(&self, path: &str, answer: Answer) {
        self.defaults.lock().unwrap().insert(path.into(), answer);
    }

    /// (open now, most ever open at once) on a held path.
    pub(super) fn open(&self, path: &str) -> (usize, usize) {
        self.open
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or_default()
    }

    pub(super) fn on(&self, path: &str) -> Vec<Captured> {
        let captured = self.captured.lock().unwrap();
        captured
            .iter()
            .filter(|c| c.path == path)
            .cloned()
            .collect()
    }

    /// The requests on `path`, once there are `count` (or after 60 s).
    pub(super) async fn wait_for(&self, path: &str, count: usize) -> Vec<Captured> {
        for _ in 0..3000 {
            let got = self.on(path);
            if got.len() >= count {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{path} got {} requests, not {count}", self.on(path).len());
    }
}

/// Verify `requests` with each of `secrets` using the `standardwebhooks` package:
/// per request, per secret, `{"ok": true, "payload"}` or `{"ok": false, "error"}`.
pub(super) async fn verify(secrets: &[&str], requests: &[Captured]) -> Vec<Vec<Value>> {
    let dir = pyclients_dir();
    assert!(
        dir.join("standardwebhooks").is_dir(),
        "the standardwebhooks package is not in {} (run `make pyclients`)",
        dir.display()
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/standardwebhooks_verify.py");
    let job = json!({
        "secrets": secrets,
        "requests": requests.iter().map(|r| json!({"headers": r.headers, "body": r.body}))
            .collect::<Vec<_>>(),
    });
    let mut child = tokio::process::Command::new("python3")
        .arg(&script)
        .env("PYTHONPATH", &dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, job.to_string().as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}
