//! The HTTP client of the CLI: server URL and token resolution (flag, environment,
//! config file), and the server's error shape turned into a readable error.

use std::path::PathBuf;

use anyhow::{Context, bail};
use reqwest13::{Method, RequestBuilder, Response};
use serde::Deserialize;
use serde_json::Value;

use super::commands::{Connection, Output};

const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// Which token a command needs, for the fallbacks after `--token` / AGENTHOST_TOKEN.
pub enum Credentials<'a> {
    /// The instance admin token: config file `admin_token`, then `token`, then the
    /// server's own AGENTHOST_ADMIN_TOKEN when set in this shell.
    Admin(Option<&'a str>),
    /// A workspace API key: config file `token`.
    Workspace,
}

/// `~/.config/agenthost/config.toml` (or under `$XDG_CONFIG_HOME`), all keys optional:
/// `server = "https://agents.example.com"`, `token = "ahk_..."`, `admin_token = "aha_..."`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    server: Option<String>,
    token: Option<String>,
    admin_token: Option<String>,
}

fn config_file_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("agenthost").join("config.toml"))
}

fn read_config_file() -> anyhow::Result<ConfigFile> {
    let Some(path) = config_file_path() else {
        return Ok(ConfigFile::default());
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("reading {}", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest13::Client,
    pub output: Output,
}

impl Client {
    pub fn new(connection: &Connection, credentials: Credentials<'_>) -> anyhow::Result<Client> {
        let file = read_config_file()?;
        let base = connection
            .server
            .clone()
            .or(file.server)
            .unwrap_or_else(|| DEFAULT_SERVER.into());
        let token = connection.token.clone().or(match credentials {
            Credentials::Admin(from_env) => file
                .admin_token
                .or(file.token)
                .or(from_env.map(str::to_string)),
            Credentials::Workspace => file.token,
        });
        // reqwest is built without a default crypto provider (the host picks ring).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest13::Client::builder()
            .user_agent(concat!("agenthost-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
            output: connection.output,
        })
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Send a request and read its JSON answer (`null` for an empty one).
    pub async fn send(&self, request: RequestBuilder) -> anyhow::Result<Value> {
        let response = self.checked(request).await?;
        let bytes = response.bytes().await.context("reading the answer")?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).context("the server's answer is not JSON")
    }

    pub async fn call(&self, method: Method, path: &str) -> anyhow::Result<Value> {
        self.send(self.request(method, path)).await
    }

    /// Send a request; a non-2xx answer becomes an error with the server's code and message.
    pub async fn checked(&self, request: RequestBuilder) -> anyhow::Result<Response> {
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", self.base))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let error = &body["error"];
        let mut message = match (error["code"].as_str(), error["message"].as_str()) {
            (Some(code), Some(message)) => format!("{status} {code}: {message}"),
            _ => format!("{status}: {}", text.trim()),
        };
        // A 422 with every problem at its field (`schedule.cron`, `actions[1].to`): one
        // line each, the message above only joins them.
        let problems = error["problems"].as_array().map(Vec::as_slice);
        if let Some(problems) = problems.filter(|p| !p.is_empty()) {
            message = format!("{status} {}:", error["code"].as_str().unwrap_or("invalid"));
            for problem in problems {
                message.push_str(&format!(
                    "\n  {}: {}",
                    problem["path"].as_str().unwrap_or("?"),
                    problem["message"].as_str().unwrap_or("?")
                ));
            }
        }
        if status == reqwest13::StatusCode::UNAUTHORIZED && self.token.is_none() {
            message.push_str(&format!(
                " (no token: set AGENTHOST_TOKEN, pass --token, or put it in {})",
                config_file_path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "~/.config/agenthost/config.toml".into())
            ));
        }
        bail!("{message}")
    }
}

/// Print a JSON value the way `--output json` does: pretty, on stdout.
pub fn print_json(value: &Value) -> anyhow::Result<()> {
    super::out::outln!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    )
}
