//! `agenthost events tail`: the workspace's activity feed as it happens, one line per
//! event (`GET /api/events/stream`). A dropped connection (a host restarting, a proxy
//! timing out) is resumed with `Last-Event-ID`, the last event's cursor, so no event is
//! skipped or printed twice; the command runs until interrupted or its reader leaves.

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use reqwest13::Method;
use serde_json::Value;

use super::automation::{cell, items, with_query};
use super::client::{Client, Credentials};
use super::commands::{Connection, Output};
use super::out::outln;
use super::sse::Frames;

/// Pause before reconnecting after the stream dropped.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);
/// The page size used to find the feed's head (the server's largest).
const PAGE: usize = 1000;

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: EventsCommand,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Follow the feed: events committed from now on (or after --after, or every
    /// retained one with --from-start), one line each (`--output json`: the event as
    /// one JSON line, with its `cursor`).
    Tail(TailArgs),
}

#[derive(Debug, Args)]
pub struct TailArgs {
    /// Only this type, or a prefix of whole segments (`ticket`, `workflow.execution.*`).
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Only events about this subject (an execution, ticket or article id...).
    #[arg(long)]
    pub subject: Option<String>,
    /// Start after this event's cursor (as printed with `--output json`).
    #[arg(long, conflicts_with = "from_start")]
    pub after: Option<String>,
    /// Start with the oldest retained event.
    #[arg(long)]
    pub from_start: bool,
}

pub async fn run(args: EventsArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.connection, Credentials::Workspace)?;
    match args.command {
        EventsCommand::Tail(tail) => follow(&client, &tail).await,
    }
}

fn filters(tail: &TailArgs) -> Vec<(&'static str, Option<String>)> {
    vec![
        ("type", tail.kind.clone()),
        ("subject", tail.subject.clone()),
    ]
}

/// The cursor of the newest matching event: where "from now on" starts. Read forward
/// page by page (the feed has no reverse order); retention bounds the walk.
async fn head(client: &Client, tail: &TailArgs) -> anyhow::Result<String> {
    let mut after = "0-0".to_string();
    loop {
        let mut pairs = filters(tail);
        pairs.push(("after", Some(after.clone())));
        pairs.push(("limit", Some(PAGE.to_string())));
        let page = client
            .call(Method::GET, &with_query("/api/events", &pairs))
            .await?;
        let count = items(&page, "events").len();
        after = page["next"]
            .as_str()
            .context("the server's page has no `next` cursor")?
            .to_string();
        if count < PAGE {
            return Ok(after);
        }
    }
}

/// Whether `err` is the connection failing (worth a reconnect) rather than the server
/// refusing the request (a bad filter, a revoked key: reported and the end).
fn is_transport(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| cause.is::<reqwest13::Error>())
}

async fn follow(client: &Client, tail: &TailArgs) -> anyhow::Result<()> {
    let mut cursor = match (&tail.after, tail.from_start) {
        (Some(after), _) => after.clone(),
        (None, true) => "0-0".to_string(),
        (None, false) => head(client, tail).await?,
    };
    let path = with_query("/api/events/stream", &filters(tail));
    let mut connected_once = false;
    loop {
        let request = client
            .request(Method::GET, &path)
            .header("accept", "text/event-stream")
            .header("last-event-id", &cursor);
        let response = match client.checked(request).await {
            Ok(response) => response,
            // The first connection failing is an answer; later, a host may be restarting.
            Err(err) if connected_once && is_transport(&err) => {
                tokio::time::sleep(RECONNECT_AFTER).await;
                continue;
            }
            Err(err) => return Err(err),
        };
        connected_once = true;
        let mut frames = Frames::new(response.bytes_stream());
        loop {
            let frame = match frames.next().await {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(err) => {
                    eprintln!("the event stream dropped ({err:#}); resuming after {cursor}");
                    break;
                }
            };
            let Some(id) = frame.id else { continue };
            let event: Value = serde_json::from_str(&frame.data)
                .with_context(|| format!("event {id} is not JSON"))?;
            match client.output {
                Output::Json => outln!("{event}")?,
                Output::Text => outln!("{}", event_line(&event))?,
            }
            cursor = id;
        }
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}

fn event_line(event: &Value) -> String {
    let payload = match &event["payload"] {
        Value::Object(map) if map.is_empty() => String::new(),
        payload => format!("  {payload}"),
    };
    format!(
        "{}  {}  {}  {}{payload}",
        cell(&event["at"]),
        cell(&event["type"]),
        cell(&event["subject"]),
        cell(&event["actor"]),
    )
}
