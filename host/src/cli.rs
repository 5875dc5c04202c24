//! The `agenthost` command line: the server's own commands, and the client commands
//! (`plugin`, `agent`, `chat`, `workflow`, `execution`, `schedule`, `webhook`, `rule`,
//! `events`) that talk to a running server over its HTTP API.

mod automation;
mod chat;
mod client;
mod commands;
mod events;
mod logs;
mod out;
mod plugin;
mod rule;
mod scaffold;
mod schedule;
mod sse;
mod webhook;
mod workflow;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::Server;
use crate::config::Config;

pub use commands::ClientCommand;

/// Agenthost: a self-hosted server for AI agents whose tools and workflow steps are
/// WebAssembly components.
///
/// With no DATABASE_URL, Agenthost runs its own private PostgreSQL 18 + pgvector in
/// the data directory (install it once with `make setup`).
#[derive(Debug, Parser)]
#[command(name = "agenthost", version, about, long_about)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the HTTP server (the default when no command is given).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Replace the instance admin token with a new one, print it once and exit.
    /// Use this when the generated token was lost. Has no effect on a token set with
    /// --admin-token / AGENTHOST_ADMIN_TOKEN, which always takes precedence.
    RotateAdminToken,
    /// Demo data.
    #[command(subcommand)]
    Demo(DemoCommand),
    /// Client commands that talk to a running server (plugin, agent, chat).
    #[command(flatten)]
    Client(ClientCommand),
}

#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Create the workspace (if missing) and upsert a deterministic demo dataset into
    /// it: people, customers, deals, transactions and cost allocation rules for 2024-2025.
    Seed {
        #[arg(long, default_value = "demo")]
        workspace: String,
    },
}

/// Parse arguments and environment, run the chosen command, report errors.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before any thread starts: candle reads its thread count from the environment.
    crate::llm::local::use_threads(cli.config.llm_threads);
    crate::telemetry::init(&cli.config.log, &cli.config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // `| head`: the reader had what it wanted.
        Err(err) if out::is_closed_stdout(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let server = Server::start(cli.config).await?;
            if let Some(token) = &server.generated_admin_token {
                print_admin_token(token, "generated on first start");
            }
            println!("Agenthost listening on http://{}", server.addr);
            server.wait().await
        }
        Command::Migrate => {
            crate::server::migrate_only(&cli.config).await?;
            out::outln!("migrations applied")
        }
        Command::Demo(DemoCommand::Seed { workspace }) => {
            let seeded = crate::server::seed_demo(&cli.config, &workspace).await?;
            report_seed(&workspace, &seeded)
        }
        Command::RotateAdminToken => {
            if cli.config.admin_token.is_some() {
                eprintln!(
                    "note: AGENTHOST_ADMIN_TOKEN / --admin-token is set and takes precedence \
                     over the stored token while it stays set"
                );
            }
            let token = crate::server::rotate_admin_token(&cli.config).await?;
            print_admin_token(&token, "rotated");
            Ok(())
        }
        Command::Client(command) => commands::run(command, &cli.config).await,
    }
}

pub(crate) fn report_seed(
    workspace: &str,
    seeded: &crate::data::demo::Seeded,
) -> anyhow::Result<()> {
    for rows in &seeded.rows {
        out::outln!(
            "demo {workspace}: {} {} ({} new, {} updated)",
            rows.received,
            rows.entity,
            rows.inserted,
            rows.updated
        )?;
    }
    if let Some(secret) = &seeded.owner_secret {
        out::outln!("Owner key of workspace {workspace} (shown once, store it now): {secret}")?;
    }
    Ok(())
}

/// The only time the token is shown: it is stored hashed.
fn print_admin_token(token: &str, why: &str) {
    println!("Instance admin token ({why}; shown once, store it now): {token}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_override_defaults() {
        let cli = Cli::parse_from([
            "agenthost",
            "--listen",
            "0.0.0.0:9000",
            "--rate-limit-per-minute",
            "5",
            "migrate",
        ]);
        assert_eq!(cli.config.listen.port(), 9000);
        assert_eq!(cli.config.rate_limit_per_minute, 5);
        assert!(matches!(cli.command, Some(Command::Migrate)));
    }
}
