//! `agenthost webhook list|create|disable|enable|deliveries|delete`: outbound webhooks
//! (`/api/webhooks`, an admin key; docs/automation.md).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use reqwest13::Method;
use serde_json::{Value, json};

use super::automation::{cell, items, read_json, with_query};
use super::client::{Client, Credentials, print_json};
use super::commands::{Connection, Output};
use super::out::outln;
use super::plugin::segment;

#[derive(Debug, Args)]
pub struct WebhookArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: WebhookCommand,
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// The workspace's webhooks (never their secrets).
    List,
    /// A webhook, sent the events committed from now on. Prints its signing secret,
    /// shown this once.
    Create {
        /// The webhook as JSON (`{"url", "event_types", "secret"?, "description"?}`);
        /// `-` reads standard input.
        #[arg(long, short = 'f', conflicts_with_all = ["url", "event_type", "description", "secret"])]
        file: Option<PathBuf>,
        /// Where to POST the events.
        #[arg(long, required_unless_present = "file")]
        url: Option<String>,
        /// An event type, a prefix (`ticket`, `workflow.execution.*`) or `*`; repeat
        /// for more.
        #[arg(long = "event-type", required_unless_present = "file")]
        event_type: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        /// `whsec_` + base64 of 24-64 random bytes; generated when absent.
        #[arg(long)]
        secret: Option<String>,
    },
    /// Stop sending it events; its pending deliveries are cancelled.
    Disable { id: String },
    /// Send it the events committed from now on (not those it missed).
    Enable { id: String },
    /// The delivery log, newest first: each event, its state, attempts and last answer.
    Deliveries {
        id: String,
        #[arg(long, value_enum)]
        status: Option<DeliveryStatus>,
        /// How many (1-100).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=100))]
        limit: i64,
    },
    /// Delete a webhook and its delivery log.
    Delete { id: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
    Cancelled,
}

pub async fn run(args: WebhookArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.connection, Credentials::Workspace)?;
    let one = |id: &str| format!("/api/webhooks/{}", segment(id));
    match args.command {
        WebhookCommand::List => {
            let answer = client.call(Method::GET, "/api/webhooks").await?;
            if client.output == Output::Json {
                return print_json(&answer);
            }
            let webhooks = items(&answer, "webhooks");
            if webhooks.is_empty() {
                outln!("no webhooks in this workspace")?;
            }
            for webhook in webhooks {
                outln!("{}", webhook_line(webhook))?;
            }
            Ok(())
        }
        WebhookCommand::Create {
            file,
            url,
            event_type,
            description,
            secret,
        } => {
            let body = match file {
                Some(file) => read_json(&file)?,
                None => {
                    let mut body = json!({"url": url, "event_types": event_type});
                    if let Some(description) = description {
                        body["description"] = json!(description);
                    }
                    if let Some(secret) = secret {
                        body["secret"] = json!(secret);
                    }
                    body
                }
            };
            let request = client.request(Method::POST, "/api/webhooks").json(&body);
            let webhook = client.send(request).await?;
            match client.output {
                Output::Json => print_json(&webhook),
                Output::Text => {
                    outln!("{}", webhook_line(&webhook))?;
                    outln!(
                        "signing secret (shown once, store it now): {}",
                        cell(&webhook["secret"])
                    )
                }
            }
        }
        WebhookCommand::Disable { id } => set_enabled(&client, &one(&id), false).await,
        WebhookCommand::Enable { id } => set_enabled(&client, &one(&id), true).await,
        WebhookCommand::Deliveries { id, status, limit } => {
            let status = status
                .and_then(|s| s.to_possible_value())
                .map(|v| v.get_name().to_string());
            let path = with_query(
                &format!("{}/deliveries", one(&id)),
                &[("status", status), ("limit", Some(limit.to_string()))],
            );
            let answer = client.call(Method::GET, &path).await?;
            if client.output == Output::Json {
                return print_json(&answer);
            }
            let deliveries = items(&answer, "deliveries");
            if deliveries.is_empty() {
                outln!("no deliveries to webhook {id}")?;
            }
            for delivery in deliveries {
                outln!("{}", delivery_line(delivery))?;
            }
            Ok(())
        }
        WebhookCommand::Delete { id } => {
            client.call(Method::DELETE, &one(&id)).await?;
            match client.output {
                Output::Json => print_json(&json!({ "deleted": id })),
                Output::Text => outln!("deleted webhook {id}"),
            }
        }
    }
}

async fn set_enabled(client: &Client, path: &str, enabled: bool) -> anyhow::Result<()> {
    let request = client
        .request(Method::PATCH, path)
        .json(&json!({ "enabled": enabled }));
    let webhook = client.send(request).await?;
    match client.output {
        Output::Json => print_json(&webhook),
        Output::Text => outln!("{}", webhook_line(&webhook)),
    }
}

fn webhook_line(webhook: &Value) -> String {
    let types = webhook["event_types"]
        .as_array()
        .map(|types| {
            types
                .iter()
                .map(|t| t.as_str().unwrap_or("?"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let state = if webhook["enabled"] == true {
        "enabled".to_string()
    } else {
        match webhook["disabled_reason"].as_str() {
            Some(why) => format!("disabled ({why})"),
            None => "disabled".to_string(),
        }
    };
    format!(
        "{}  {}  {types}  {state}",
        cell(&webhook["id"]),
        cell(&webhook["url"])
    )
}

fn delivery_line(delivery: &Value) -> String {
    let mut line = format!(
        "{}  {}  {}  event {}  attempts {}",
        cell(&delivery["created_at"]),
        cell(&delivery["event_type"]),
        cell(&delivery["status"]),
        cell(&delivery["event_id"]),
        delivery["attempts"],
    );
    if let Some(status) = delivery["response_status"].as_i64() {
        line.push_str(&format!("  HTTP {status}"));
    }
    if let Some(error) = delivery["error"].as_str() {
        line.push_str(&format!("  ({error})"));
    }
    if let Some(next) = delivery["next_attempt_at"].as_str() {
        line.push_str(&format!("  next attempt {next}"));
    }
    line
}
