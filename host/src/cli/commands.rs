//! The client commands' arguments (clap) and their dispatch.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::client::{Client, Credentials};
use crate::config::Config;

/// Commands that talk to a running server (or, for `plugin new|build|test`, only to
/// cargo on this machine).
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Write, build, test, upload and manage plugins (the admin API; instance admin token).
    Plugin(PluginArgs),
    /// The agents of a workspace (workspace API key).
    Agent(AgentArgs),
    /// One chat turn with an agent, the answer streamed as it comes (workspace API key).
    Chat(ChatArgs),
    /// The workspace's workflows: list, show, run (workspace API key).
    Workflow(WorkflowArgs),
    /// Workflow executions: show one, or watch it to the end (workspace API key).
    Execution(ExecutionArgs),
    /// Scheduled tasks and workflows' schedule triggers (workspace API key).
    Schedule(super::schedule::ScheduleArgs),
    /// Outbound webhooks and their delivery logs (admin workspace API key).
    Webhook(super::webhook::WebhookArgs),
    /// Automation rules and their history (workspace API key).
    Rule(super::rule::RuleArgs),
    /// The workspace's activity feed: `events tail` follows it (workspace API key).
    Events(super::events::EventsArgs),
}

/// Where the server is, who we are, and how to print answers. Global: accepted before
/// or after the subcommand (`agenthost plugin list --output json`).
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// The server's base URL. Else `server` in the config file, else http://127.0.0.1:8080.
    #[arg(long, global = true, env = "AGENTHOST_SERVER")]
    pub server: Option<String>,

    /// Bearer token: the instance admin token for `plugin`, a workspace API key for
    /// `agent`, `chat`, `workflow` and `execution`. Else `admin_token` (for `plugin`) or `token` in the config
    /// file `~/.config/agenthost/config.toml`; for `plugin`, else AGENTHOST_ADMIN_TOKEN.
    #[arg(long, global = true, env = "AGENTHOST_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// `text` for people; `json` prints the server's JSON answer unchanged.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct PluginArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: PluginCommand,
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Create a plugin crate (Cargo.toml, manifest.json, small-stack .cargo/config.toml,
    /// src/lib.rs with a native test) that builds and passes its test as generated.
    New {
        /// The plugin's name: lowercase letters, digits, '_' or '-', starting with a letter.
        name: String,
        #[arg(long, value_enum, default_value_t = Kind::Tool)]
        kind: Kind,
        /// Directory to create (must not exist or be empty). Default: ./NAME.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Depend on the SDK at this path (a clone's `sdk/` directory).
        #[arg(long, conflicts_with = "sdk_git")]
        sdk_path: Option<PathBuf>,
        /// Depend on the SDK from this git repository (pin it with --sdk-rev).
        #[arg(long)]
        sdk_git: Option<String>,
        /// The commit of --sdk-git to build against (match your host's).
        #[arg(long, requires = "sdk_git")]
        sdk_rev: Option<String>,
    },
    /// `cargo build --target wasm32-wasip2 --release` in the crate; prints the .wasm path and size.
    Build(CrateDir),
    /// `cargo test` in the crate (natively, against the SDK's TestHost).
    Test(CrateDir),
    /// Build, then upload manifest.json and the component as a new version.
    Push {
        #[command(flatten)]
        dir: CrateDir,
        /// Make the new version the active one.
        #[arg(long)]
        activate: bool,
        /// Upload this component instead of building the crate.
        #[arg(long)]
        wasm: Option<PathBuf>,
    },
    /// The installed plugins.
    List,
    /// A plugin with all its versions.
    Show { name: String },
    /// Make VERSION the active version.
    Activate { name: String, version: String },
    /// Activate the previously active version again.
    Rollback { name: String },
    /// Enable a disabled plugin.
    Enable { name: String },
    /// Disable a plugin: its tools and nodes refuse calls until enabled.
    Disable { name: String },
    /// Delete one (inactive) version.
    Delete { name: String, version: String },
    /// Set the capabilities granted to VERSION from a JSON file (the manifest's
    /// `capabilities` shape).
    Grant {
        name: String,
        version: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// The plugin's stored log lines, oldest of the page first (`--output json`: the
    /// server's page, newest first; with `--follow`, one JSON line per log line).
    Logs(LogsArgs),
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    pub name: String,
    /// Only lines of this version.
    #[arg(long)]
    pub version: Option<String>,
    /// Only lines at this level or a more severe one.
    #[arg(long, value_enum)]
    pub level: Option<LogLevel>,
    /// Only lines since this time: RFC 3339 (`2026-12-01T10:00:00Z`) or a duration back
    /// from now (`90s`, `10m`, `2h`, `7d`).
    #[arg(long)]
    pub since: Option<String>,
    /// Only lines of this request id.
    #[arg(long)]
    pub request_id: Option<String>,
    /// How many lines (1-1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=1000))]
    pub limit: i64,
    /// Keep polling for new lines (every --interval) until interrupted.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// How often `--follow` asks for new lines.
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    pub interval: std::time::Duration,
}

fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    crate::config::parse_duration(text)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Tool,
    Node,
}

#[derive(Debug, Clone, Args)]
pub struct CrateDir {
    /// The plugin crate's directory (holding Cargo.toml and manifest.json).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: AgentCommand,
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// The workspace's agents.
    List,
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// The agent's id or slug.
    pub agent: String,
    pub message: String,
    /// Continue this conversation (its id is printed after each turn).
    #[arg(long)]
    pub conversation: Option<String>,
}

#[derive(Debug, Args)]
pub struct WorkflowArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: WorkflowCommand,
}

#[derive(Debug, Subcommand)]
pub enum WorkflowCommand {
    /// The workspace's workflows.
    List,
    /// A workflow with its latest definition.
    Show {
        /// The workflow's id or slug.
        workflow: String,
    },
    /// Start an execution of the workflow's latest version.
    Run {
        /// The workflow's id or slug.
        workflow: String,
        /// The execution's input: JSON, or `@FILE` to read it from a file.
        #[arg(long)]
        input: Option<String>,
        /// Follow the execution to its end (as `execution watch`); a failed execution
        /// exits non-zero.
        #[arg(long)]
        wait: bool,
        /// Sent as `Idempotency-Key`: running again with the same key returns the
        /// first execution instead of starting another.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct ExecutionArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: ExecutionCommand,
}

#[derive(Debug, Subcommand)]
pub enum ExecutionCommand {
    /// An execution with every node run.
    Show { id: String },
    /// Print the execution's events as they happen, until it finishes; exits non-zero
    /// when it failed or was cancelled (`--output json`: one JSON line per event).
    Watch { id: String },
}

pub async fn run(command: ClientCommand, config: &Config) -> anyhow::Result<()> {
    match command {
        ClientCommand::Plugin(args) => {
            let client = || {
                Client::new(
                    &args.connection,
                    Credentials::Admin(config.admin_token.as_deref()),
                )
            };
            super::plugin::run(args.command, args.connection.output, client).await
        }
        ClientCommand::Agent(args) => {
            let client = Client::new(&args.connection, Credentials::Workspace)?;
            match args.command {
                AgentCommand::List => super::chat::list_agents(&client).await,
            }
        }
        ClientCommand::Chat(args) => {
            let client = Client::new(&args.connection, Credentials::Workspace)?;
            super::chat::chat(
                &client,
                &args.agent,
                &args.message,
                args.conversation.as_deref(),
            )
            .await
        }
        ClientCommand::Workflow(args) => {
            let client = Client::new(&args.connection, Credentials::Workspace)?;
            super::workflow::run_workflow(&client, args.command).await
        }
        ClientCommand::Execution(args) => {
            let client = Client::new(&args.connection, Credentials::Workspace)?;
            super::workflow::run_execution(&client, args.command).await
        }
        ClientCommand::Schedule(args) => super::schedule::run(args).await,
        ClientCommand::Webhook(args) => super::webhook::run(args).await,
        ClientCommand::Rule(args) => super::rule::run(args).await,
        ClientCommand::Events(args) => super::events::run(args).await,
    }
}
