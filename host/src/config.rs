//! Command line and environment configuration. Every option has an environment
//! variable and a default that works offline on a fresh machine.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser};

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address the HTTP server listens on. Port 0 picks a free port (logged at start).
    #[arg(long, env = "AGENTHOST_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// A second address serving only `GET /metrics`, without credentials: for a
    /// private network that Prometheus scrapes. Unset: `/metrics` on the main address
    /// needs the admin token.
    #[arg(long, env = "AGENTHOST_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Directory for everything Agenthost stores locally: the embedded PostgreSQL
    /// cluster (`pgdata/`), its socket (`run/`) and compiled plugins (`plugin-cache/`).
    #[arg(long, env = "AGENTHOST_DATA_DIR", default_value = ".agenthost")]
    pub data_dir: PathBuf,

    /// An external PostgreSQL (>= 15, with the pgvector, pgcrypto and hstore
    /// extensions available). When unset, the embedded PostgreSQL is used.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Where `make setup` installed the embedded PostgreSQL binaries.
    #[arg(long, env = "AGENTHOST_PG_DIR", default_value = ".agenthost/postgres")]
    pub pg_dir: PathBuf,

    /// System user that runs the embedded PostgreSQL when Agenthost runs as root
    /// (PostgreSQL refuses to run as root). Created if it does not exist.
    #[arg(long, env = "AGENTHOST_PG_USER", default_value = "agenthost-pg")]
    pub pg_user: String,

    /// Trade durability for speed in the embedded PostgreSQL (fsync off). For tests
    /// and throwaway instances only: a machine crash can lose committed data.
    #[arg(long, env = "AGENTHOST_PG_UNSAFE_FAST", default_value_t = false)]
    pub pg_unsafe_fast: bool,

    /// Maximum number of pooled database connections.
    #[arg(long, env = "AGENTHOST_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// Instance admin token. When unset, one is generated on first start, printed once
    /// and stored hashed (`agenthost rotate-admin-token` replaces a lost one).
    #[arg(long, env = "AGENTHOST_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Largest accepted request body, in bytes; larger bodies get 413.
    #[arg(long, env = "AGENTHOST_BODY_LIMIT", default_value_t = 2 * 1024 * 1024)]
    pub body_limit: usize,

    /// How long a request may take before it is answered with 503 (code `unavailable`)
    /// (`30s`, `500ms`, `2m`; a bare number means seconds).
    #[arg(long, env = "AGENTHOST_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Requests per minute allowed for each API key (and the admin token); excess
    /// requests get 429 with Retry-After. 0 disables the limit.
    #[arg(long, env = "AGENTHOST_RATE_LIMIT_PER_MINUTE", default_value_t = 600)]
    pub rate_limit_per_minute: u32,

    /// The largest body any webhook trigger accepts, in bytes: a trigger's `max_body`
    /// (default 1 MiB) is capped by it. Larger bodies get 413.
    #[arg(long, env = "AGENTHOST_WEBHOOK_TRIGGER_MAX_BODY", default_value_t = 16 * 1024 * 1024)]
    pub webhook_trigger_max_body: usize,

    /// Default wall-clock limit of one plugin call (a manifest may ask for another).
    #[arg(long, env = "AGENTHOST_PLUGIN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub plugin_timeout: Duration,

    /// Default memory cap of one plugin call, in MiB (a manifest may ask for another).
    #[arg(long, env = "AGENTHOST_PLUGIN_MEMORY_MB", default_value_t = 64)]
    pub plugin_memory_mb: u64,

    /// The most memory any plugin may ask for, in MiB.
    #[arg(long, env = "AGENTHOST_PLUGIN_MAX_MEMORY_MB", default_value_t = 512)]
    pub plugin_max_memory_mb: u64,

    /// Count fuel and give each plugin call this budget (instructions, roughly);
    /// unset = no fuel metering, only the wall-clock deadline.
    #[arg(long, env = "AGENTHOST_PLUGIN_FUEL")]
    pub plugin_fuel: Option<u64>,

    /// Plugin instances that may run at once across all plugins.
    #[arg(long, env = "AGENTHOST_PLUGIN_INSTANCES", default_value_t = 256)]
    pub plugin_instances: u32,

    /// KiB at the start of each plugin memory slot kept resident between calls, so a
    /// fresh instance doesn't page-fault on its stack and data (see docs/benchmarks.md).
    #[arg(long, env = "AGENTHOST_PLUGIN_KEEP_RESIDENT_KB", default_value_t = 512)]
    pub plugin_keep_resident_kb: usize,

    /// Largest plugin upload (manifest + component), in bytes.
    #[arg(long, env = "AGENTHOST_PLUGIN_UPLOAD_LIMIT", default_value_t = 64 * 1024 * 1024)]
    pub plugin_upload_limit: usize,

    /// Time limit of a plugin upload instead of --request-timeout: the upload compiles
    /// the component before it answers, and a large one (an 18 MB Python component)
    /// takes tens of seconds.
    #[arg(long, env = "AGENTHOST_PLUGIN_UPLOAD_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub plugin_upload_timeout: std::time::Duration,

    /// Statement timeout of plugin SQL (the database capability), per statement.
    #[arg(long, env = "AGENTHOST_PLUGIN_DB_STATEMENT_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub plugin_db_statement_timeout: Duration,

    /// Most rows one plugin query may return; more is an error, not a silent cut.
    #[arg(long, env = "AGENTHOST_PLUGIN_DB_MAX_ROWS", default_value_t = 10_000)]
    pub plugin_db_max_rows: u32,

    /// Most bytes of column values one plugin query may return (text, bytea and JSON
    /// as they come off the wire); more fails the query with `invalid` as soon as it
    /// passes the cap, before the host holds the rest.
    #[arg(long, env = "AGENTHOST_PLUGIN_DB_MAX_RESULT_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub plugin_db_max_result_bytes: u64,

    /// Workflow node runs one host executes at once.
    #[arg(long, env = "AGENTHOST_WORKFLOW_WORKERS", default_value_t = 16)]
    pub workflow_workers: usize,

    /// Default time limit of one workflow node attempt (a node's `timeout` overrides).
    #[arg(long, env = "AGENTHOST_WORKFLOW_NODE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub workflow_node_timeout: Duration,

    /// Default time limit of a whole execution (`settings.execution_timeout` overrides).
    #[arg(long, env = "AGENTHOST_WORKFLOW_EXECUTION_TIMEOUT", default_value = "60m", value_parser = parse_duration)]
    pub workflow_execution_timeout: Duration,

    /// Largest output of one workflow node, in bytes of JSON.
    #[arg(long, env = "AGENTHOST_WORKFLOW_MAX_OUTPUT_BYTES", default_value_t = 1024 * 1024)]
    pub workflow_max_output_bytes: usize,

    /// Executions one workspace may have running at once (429 above).
    #[arg(long, env = "AGENTHOST_WORKFLOW_MAX_RUNNING", default_value_t = 1000)]
    pub workflow_max_running: i64,

    /// How often a host tells the others it is alive; a host silent for five beats has
    /// its running nodes put back for the others.
    #[arg(long, env = "AGENTHOST_WORKFLOW_HEARTBEAT", default_value = "1s", value_parser = parse_duration)]
    pub workflow_heartbeat: Duration,

    /// How long domain events (`GET /api/events`) are kept; older ones are deleted.
    #[arg(long, env = "AGENTHOST_EVENT_RETENTION", default_value = "30d", value_parser = parse_retention)]
    pub event_retention: Duration,

    /// Networks outbound webhooks may reach besides public addresses, comma-separated
    /// (`10.0.0.0/8,127.0.0.1`). Loopback, private, link-local and cloud metadata
    /// addresses are refused otherwise, in the URL and in what its name resolves to.
    #[arg(long, env = "AGENTHOST_WEBHOOK_ALLOW_PRIVATE_NETWORKS", value_delimiter = ',',
        value_parser = crate::net::Network::parse)]
    pub webhook_allow_private_networks: Vec<crate::net::Network>,

    /// How long a webhook endpoint has to answer a delivery.
    #[arg(long, env = "AGENTHOST_WEBHOOK_TIMEOUT", default_value = "15s", value_parser = parse_duration)]
    pub webhook_timeout: Duration,

    /// The wait before each attempt of a webhook delivery, comma-separated: the first
    /// after the event, each next after a failed attempt (plus up to 10 % jitter).
    #[arg(long, env = "AGENTHOST_WEBHOOK_RETRY_SCHEDULE", value_delimiter = ',',
        default_value = "0s,5s,5m,30m,2h,5h,10h,10h", value_parser = parse_retention)]
    pub webhook_retry_schedule: Vec<Duration>,

    /// Disable a webhook after this many deliveries in a row failed every attempt.
    #[arg(long, env = "AGENTHOST_WEBHOOK_DISABLE_AFTER", default_value_t = 5)]
    pub webhook_disable_after: u32,

    /// Webhook deliveries one host sends at once; 0 makes a host that sends none.
    #[arg(long, env = "AGENTHOST_WEBHOOK_WORKERS", default_value_t = 16)]
    pub webhook_workers: usize,

    /// Agent health (alerts): the window of ended turns each agent is judged on.
    #[arg(long, env = "AGENTHOST_AGENT_HEALTH_WINDOW", default_value = "15m", value_parser = parse_duration)]
    pub agent_health_window: Duration,

    /// An agent whose share of completed turns in the window is below this (0-1) is
    /// degraded (`agent.health.degraded`).
    #[arg(long, env = "AGENTHOST_AGENT_HEALTH_MIN_SUCCESS", default_value = "0.95", value_parser = parse_ratio)]
    pub agent_health_min_success: f64,

    /// An agent whose p95 turn duration in the window is longer than this is degraded.
    #[arg(long, env = "AGENTHOST_AGENT_HEALTH_MAX_P95", default_value = "5s", value_parser = parse_duration)]
    pub agent_health_max_p95: Duration,

    /// Fewer ended turns than this in the window is too few to judge: health stays as it was.
    #[arg(long, env = "AGENTHOST_AGENT_HEALTH_MIN_TURNS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub agent_health_min_turns: u32,

    /// How often each host judges agent health; `0` turns the checker off on this host.
    #[arg(long, env = "AGENTHOST_AGENT_HEALTH_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub agent_health_interval: Duration,

    /// Also publish every event to NATS JetStream at this URL (`nats://host:4222`), on
    /// subject `agenthost.<workspace>.<type>` with the event id as `Nats-Msg-Id`.
    #[arg(long, env = "AGENTHOST_NATS_URL", hide_env_values = true)]
    pub nats_url: Option<String>,

    /// The JetStream stream the events go to; created (subjects `agenthost.>`) if missing.
    #[arg(long, env = "AGENTHOST_NATS_STREAM", default_value = "AGENTHOST")]
    pub nats_stream: String,

    /// How long JetStream may take to acknowledge a published event before the batch
    /// is tried again from the first unacknowledged one.
    #[arg(long, env = "AGENTHOST_NATS_ACK_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub nats_ack_timeout: Duration,

    /// Database connections per plugin (each plugin logs in as its own role).
    #[arg(long, env = "AGENTHOST_PLUGIN_DB_CONNECTIONS", default_value_t = 4)]
    pub plugin_db_connections: u32,

    /// Who embeds text for the vector capability: `local` (a model run in-process,
    /// the offline default) or `openai` (the LLM provider's embeddings endpoint).
    #[arg(long, env = "AGENTHOST_EMBEDDING_PROVIDER", default_value = "local")]
    pub embedding_provider: String,

    /// The embedding model. `local`: `multilingual-e5-small` (the default; about 100
    /// languages) or `all-MiniLM-L6-v2` (English). `openai`: the provider's model
    /// (default `text-embedding-3-small`). Stored vectors of another model are not
    /// searched: see docs/multilingual.md for switching.
    #[arg(long, env = "AGENTHOST_EMBEDDING_MODEL")]
    pub embedding_model: Option<String>,

    /// Where `make setup` puts all-MiniLM-L6-v2 (config.json, tokenizer.json,
    /// model.safetensors).
    #[arg(
        long,
        env = "AGENTHOST_EMBEDDING_MODEL_DIR",
        default_value = ".agenthost/models/all-MiniLM-L6-v2"
    )]
    pub embedding_model_dir: PathBuf,

    /// Where `make setup` puts multilingual-e5-small (config.json, tokenizer.json,
    /// model.q4.bin).
    #[arg(
        long,
        env = "AGENTHOST_MULTILINGUAL_MODEL_DIR",
        default_value = ".agenthost/models/multilingual-e5-small"
    )]
    pub multilingual_model_dir: PathBuf,

    /// Timeout of one plugin HTTP request, from connecting to the last body byte.
    #[arg(long, env = "AGENTHOST_HTTP_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub http_timeout: Duration,

    /// Largest response (and request) body of a plugin HTTP request, in bytes; a longer
    /// response is cut off with an error.
    #[arg(long, env = "AGENTHOST_HTTP_MAX_BODY_BYTES", default_value_t = 10 << 20)]
    pub http_max_body_bytes: u64,

    /// HTTP requests one plugin may have in flight at once; more wait for a slot.
    #[arg(long, env = "AGENTHOST_HTTP_MAX_CONCURRENT", default_value_t = 8)]
    pub http_max_concurrent: usize,

    /// Base URL of an OpenAI-compatible API (`https://api.openai.com/v1`, a local
    /// vLLM/Ollama/LiteLLM...). Unset: LLM calls are `unavailable` with this name in
    /// the message.
    #[arg(long, env = "AGENTHOST_LLM_BASE_URL")]
    pub llm_base_url: Option<String>,

    /// API key sent as a bearer token to the LLM provider.
    #[arg(long, env = "AGENTHOST_LLM_API_KEY", hide_env_values = true)]
    pub llm_api_key: Option<String>,

    /// Timeout of one LLM request (each retry gets its own).
    #[arg(long, env = "AGENTHOST_LLM_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub llm_timeout: Duration,

    /// Retries after a 429, a 5xx or a connection error, with exponential backoff.
    #[arg(long, env = "AGENTHOST_LLM_MAX_RETRIES", default_value_t = 3)]
    pub llm_max_retries: u32,

    /// First backoff delay; doubles per retry, with jitter.
    #[arg(long, env = "AGENTHOST_LLM_BACKOFF", default_value = "500ms", value_parser = parse_duration)]
    pub llm_backoff: Duration,

    /// Prices in USD per million tokens, as JSON:
    /// `{"gpt-4o-mini": {"prompt": 0.15, "completion": 0.6}}`. Models not listed are
    /// recorded with no cost.
    #[arg(long, env = "AGENTHOST_LLM_PRICES", default_value = "{}")]
    pub llm_prices: String,

    /// Model used by agents that don't name one.
    #[arg(
        long,
        env = "AGENTHOST_LLM_DEFAULT_MODEL",
        default_value = "gpt-4o-mini"
    )]
    pub llm_default_model: String,

    /// Which LLM answers: `auto` (the OpenAI-compatible API when --llm-base-url is set,
    /// else the local model when its file is there), `local` (the local model even with
    /// a base URL) or `off` (none: LLM calls are `unavailable`).
    #[arg(long, env = "AGENTHOST_LLM", default_value = "auto",
        value_parser = ["auto", "local", "off"])]
    pub llm: String,

    /// The GGUF model the local provider runs (Qwen2 architecture; `make setup` installs
    /// Qwen2.5-Coder-1.5B-Instruct here). See docs/local-model.md.
    #[arg(
        long,
        env = "AGENTHOST_LLM_MODEL_FILE",
        default_value = ".agenthost/models/qwen2.5-coder-1.5b-instruct-q4_k_m/model.gguf"
    )]
    pub llm_model_file: PathBuf,

    /// CPU threads of the in-process models (the local LLM and the embedding model);
    /// unset: one per physical core.
    #[arg(long, env = "AGENTHOST_LLM_THREADS")]
    pub llm_threads: Option<usize>,

    /// Tokens of prompt and answer together for the local model (memory and time grow
    /// with it); longer conversations lose their oldest messages first.
    #[arg(long, env = "AGENTHOST_LLM_CONTEXT_TOKENS", default_value_t = 4096)]
    pub llm_context_tokens: usize,

    /// Calls that may wait for the local model while one runs; more are refused with
    /// 429 and Retry-After.
    #[arg(long, env = "AGENTHOST_LLM_QUEUE", default_value_t = 8)]
    pub llm_queue: usize,

    /// Model calls per chat turn (agents may set fewer or more). On the last one the
    /// model is asked to answer without tools.
    #[arg(long, env = "AGENTHOST_CHAT_MAX_STEPS", default_value_t = 8)]
    pub chat_max_steps: u32,

    /// How long one tool call of an agent may take before it is reported to the model
    /// as timed out.
    #[arg(long, env = "AGENTHOST_CHAT_TOOL_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub chat_tool_timeout: Duration,

    /// How many of a conversation's most recent messages are sent to the model after
    /// the system prompt.
    #[arg(long, env = "AGENTHOST_CHAT_CONTEXT_MESSAGES", default_value_t = 20)]
    pub chat_context_messages: u32,

    /// The longest a whole chat turn may run (a streamed turn outlives the request
    /// timeout, so it needs its own limit).
    #[arg(long, env = "AGENTHOST_CHAT_TURN_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub chat_turn_timeout: Duration,

    /// Fill the workspace `demo` with the demo dataset at start (`agenthost demo seed`).
    #[arg(long, env = "AGENTHOST_SEED_DEMO")]
    pub seed_demo: bool,

    /// SMTP server for plugin email: `smtp://host:25`, `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS) or `smtps://user:pass@host:465` (TLS). Unset: messages are written to
    /// `<data-dir>/outbox/` as .eml files, so nothing is lost offline.
    #[arg(long, env = "AGENTHOST_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// Directory of bundled plugins (`<name>.wasm` + `<name>.json`), installed at
    /// start when missing. `make plugins` fills it.
    #[arg(
        long,
        env = "AGENTHOST_BUNDLED_PLUGINS_DIR",
        default_value = ".agenthost/bundled"
    )]
    pub bundled_plugins_dir: PathBuf,

    /// A directory to watch for plugin authors: dropping in (or rebuilding) a
    /// `<name>.wasm` + `<name>.json` pair installs and activates it.
    #[arg(long, env = "AGENTHOST_PLUGIN_DIR")]
    pub plugin_dir: Option<PathBuf>,

    /// How long a resolved API key is trusted from memory before the database is asked
    /// again. Revocation on the same host is immediate; other replicas follow within
    /// this time. 0 asks the database on every request.
    #[arg(long, env = "AGENTHOST_AUTH_CACHE_TTL", default_value = "5s", value_parser = parse_duration)]
    pub auth_cache_ttl: Duration,

    /// Log filter in `tracing` syntax, e.g. `info` or `agenthost=debug,sqlx=warn`.
    #[arg(long, env = "AGENTHOST_LOG", default_value = "info")]
    pub log: String,

    /// Log format: `text` for people, `json` for log collectors.
    #[arg(long, env = "AGENTHOST_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,

    /// `Host` names (or `host:port`) the MCP server at `/mcp` answers to, comma-separated;
    /// any other is refused with 403, a guard against DNS rebinding. Add the names a
    /// deployment is reached by; `*` accepts every host.
    #[arg(
        long,
        env = "AGENTHOST_MCP_ALLOWED_HOSTS",
        value_delimiter = ',',
        default_value = "localhost,127.0.0.1,::1"
    )]
    pub mcp_allowed_hosts: Vec<String>,

    /// Browser origins allowed to call `/mcp`, comma-separated, e.g.
    /// `https://app.example.com` (`:*` for any port). A request carrying any other
    /// `Origin` is refused with 403 (clients that are not browsers send none); `*` skips
    /// the check. By default pages served from this machine's loopback names.
    #[arg(
        long,
        env = "AGENTHOST_MCP_ALLOWED_ORIGINS",
        value_delimiter = ',',
        default_value = "http://localhost:*,http://127.0.0.1:*,http://[::1]:*"
    )]
    pub mcp_allowed_origins: Vec<String>,
}

impl Config {
    /// A configuration for tests and embedding: defaults everywhere, rooted in `data_dir`.
    pub fn for_data_dir(data_dir: PathBuf) -> Self {
        /// The options alone, without the commands (which are `cli`'s).
        #[derive(Parser)]
        struct Options {
            #[command(flatten)]
            config: Config,
        }
        Config {
            data_dir,
            ..Options::parse_from(["agenthost"]).config
        }
    }
}

/// A share from 0 to 1 (`0.95`).
pub fn parse_ratio(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|r| (0.0..=1.0).contains(r))
        .ok_or_else(|| format!("{text:?} is not a share from 0 to 1, like 0.95"))
}

/// A retention period: `30d`, `12h`, or anything `parse_duration` takes.
pub fn parse_retention(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = match (text.strip_suffix('d'), text.strip_suffix('h')) {
        (Some(days), _) => (days, 86_400.0),
        (None, Some(hours)) => (hours, 3_600.0),
        _ => return parse_duration(text),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a retention like 30d, 12h or 90m"))?;
    Duration::try_from_secs_f64(value * scale).map_err(|err| format!("{text:?}: {err}"))
}

/// `250ms`, `30s`, `2m`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 30s or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?} in {text:?}: use ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|err| format!("{text:?}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_units_and_bare_seconds() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert!(parse_duration("5h").is_err());
        assert_eq!(parse_retention("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_retention("12h"), Ok(Duration::from_secs(12 * 3_600)));
        assert_eq!(parse_retention("90m"), Ok(Duration::from_secs(90 * 60)));
        assert!(parse_retention("xd").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
