//! `agenthost rule list|show|create|pause|resume|runs|delete`: automation rules
//! (`/api/rules`, docs/automation.md). A rule is JSON (trigger, conditions, actions):
//! `create` reads it from a file or standard input.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use reqwest13::Method;
use serde_json::{Value, json};

use super::automation::{cell, items, read_json, with_query};
use super::client::{Client, Credentials, print_json};
use super::commands::{Connection, Output};
use super::out::outln;
use super::plugin::segment;

#[derive(Debug, Args)]
pub struct RuleArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: RuleCommand,
}

#[derive(Debug, Subcommand)]
pub enum RuleCommand {
    /// The workspace's rules, in the order they run for one event (priority first).
    List,
    /// One rule with its statistics.
    Show { id: String },
    /// A rule from JSON (`{"name", "trigger": {"event", "filter"?}, "conditions"?,
    /// "actions": [...], "cooldown"?, "max_per_hour"?, "priority"?}`).
    Create {
        /// The rule's JSON; `-` reads standard input.
        #[arg(long, short = 'f')]
        file: PathBuf,
    },
    /// Stop acting on events (events meanwhile are passed over, not kept for later).
    Pause { id: String },
    /// Act on events again, from now on.
    Resume { id: String },
    /// The events the rule matched, newest first: started (with the execution), skipped
    /// by cooldown or hourly limit, or failed to start.
    Runs {
        id: String,
        /// How many (1-500).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=500))]
        limit: i64,
    },
    /// Delete a rule and its history.
    Delete { id: String },
}

pub async fn run(args: RuleArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.connection, Credentials::Workspace)?;
    let one = |id: &str| format!("/api/rules/{}", segment(id));
    match args.command {
        RuleCommand::List => {
            let answer = client.call(Method::GET, "/api/rules").await?;
            if client.output == Output::Json {
                return print_json(&answer);
            }
            let rules = items(&answer, "rules");
            if rules.is_empty() {
                outln!("no rules in this workspace")?;
            }
            for rule in rules {
                outln!("{}", rule_line(rule))?;
            }
            Ok(())
        }
        RuleCommand::Show { id } => {
            let rule = client.call(Method::GET, &one(&id)).await?;
            print_rule(&client, &rule)
        }
        RuleCommand::Create { file } => {
            let body = read_json(&file)?;
            let request = client.request(Method::POST, "/api/rules").json(&body);
            let rule = client.send(request).await?;
            print_rule(&client, &rule)
        }
        RuleCommand::Pause { id } => {
            let rule = client
                .call(Method::POST, &format!("{}/pause", one(&id)))
                .await?;
            print_rule(&client, &rule)
        }
        RuleCommand::Resume { id } => {
            let rule = client
                .call(Method::POST, &format!("{}/resume", one(&id)))
                .await?;
            print_rule(&client, &rule)
        }
        RuleCommand::Runs { id, limit } => {
            let path = with_query(
                &format!("{}/runs", one(&id)),
                &[("limit", Some(limit.to_string()))],
            );
            let answer = client.call(Method::GET, &path).await?;
            if client.output == Output::Json {
                return print_json(&answer);
            }
            let runs = items(&answer, "runs");
            if runs.is_empty() {
                outln!("rule {id} has matched no event yet")?;
            }
            for run in runs {
                outln!("{}", run_line(run))?;
            }
            Ok(())
        }
        RuleCommand::Delete { id } => {
            client.call(Method::DELETE, &one(&id)).await?;
            match client.output {
                Output::Json => print_json(&json!({ "deleted": id })),
                Output::Text => outln!("deleted rule {id}"),
            }
        }
    }
}

fn print_rule(client: &Client, rule: &Value) -> anyhow::Result<()> {
    match client.output {
        Output::Json => print_json(rule),
        Output::Text => outln!("{}", rule_line(rule)),
    }
}

fn rule_line(rule: &Value) -> String {
    let trigger = &rule["trigger"];
    let filter = trigger["filter"]
        .as_str()
        .map(|f| format!(" if {f}"))
        .unwrap_or_default();
    format!(
        "{}  {}  on {}{filter}  {}  priority {}  matched {}, ran {}, succeeded {}, failed {}, \
         skipped {} (cooldown) {} (limit)",
        cell(&rule["id"]),
        cell(&rule["name"]),
        cell(&trigger["event"]),
        if rule["active"] == true {
            "active"
        } else {
            "paused"
        },
        rule["priority"],
        rule["matched"],
        rule["ran"],
        rule["succeeded"],
        rule["failed"],
        rule["skipped_cooldown"],
        rule["skipped_limit"],
    )
}

fn run_line(run: &Value) -> String {
    let mut line = format!(
        "{}  {}  event {}  {}",
        cell(&run["at"]),
        cell(&run["event_type"]),
        cell(&run["event_id"]),
        cell(&run["outcome"])
    );
    if let Some(execution) = run["execution_id"].as_str() {
        line.push_str(&format!("  execution {execution} {}", cell(&run["status"])));
    }
    if let Some(note) = run["note"].as_str() {
        line.push_str(&format!("  ({note})"));
    }
    line
}
