//! `agenthost workflow list|show|run` and `agenthost execution show|watch`: the
//! workflow API of docs/workflows.md. `watch` (and `run --wait`) follow the execution's
//! event stream, resuming with `Last-Event-ID` if the connection drops, until its
//! `finished` event; an execution that did not succeed makes the command fail.

use std::time::Duration;

use anyhow::{Context, bail};
use reqwest13::Method;
use serde_json::{Value, json};

use super::client::{Client, print_json};
use super::commands::{ExecutionCommand, Output, WorkflowCommand};
use super::out::outln;
use super::plugin::segment;
use super::sse::Frames;

/// Pause before reconnecting to an event stream that ended before `finished`.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);

pub async fn run_workflow(client: &Client, command: WorkflowCommand) -> anyhow::Result<()> {
    match command {
        WorkflowCommand::List => {
            let answer = client.call(Method::GET, "/api/workflows").await?;
            match client.output {
                Output::Json => print_json(&answer),
                Output::Text => print_workflows(&answer),
            }
        }
        WorkflowCommand::Show { workflow } => {
            let path = format!("/api/workflows/{}", segment(&workflow));
            let answer = client.call(Method::GET, &path).await?;
            match client.output {
                Output::Json => print_json(&answer),
                Output::Text => print_workflow(&answer),
            }
        }
        WorkflowCommand::Run {
            workflow,
            input,
            wait,
            idempotency_key,
        } => {
            let input = match input {
                Some(text) => read_input(&text)?,
                None => json!({}),
            };
            let path = format!("/api/workflows/{}/executions", segment(&workflow));
            let mut request = client
                .request(Method::POST, &path)
                .json(&json!({ "input": input }));
            if let Some(key) = idempotency_key {
                request = request.header("idempotency-key", key);
            }
            let execution = client.send(request).await?;
            let id = execution["id"]
                .as_str()
                .context("the server's answer has no execution id")?
                .to_string();
            if !wait {
                return match client.output {
                    Output::Json => print_json(&execution),
                    Output::Text => outln!(
                        "execution {id} of {workflow} (version {}): {}",
                        execution["version"],
                        execution["status"].as_str().unwrap_or("?")
                    ),
                };
            }
            if client.output == Output::Text {
                outln!("execution {id} of {workflow} started")?;
            }
            // JSON: only the finished execution, one document.
            let print_events = client.output == Output::Text;
            watch(client, &id, print_events).await?;
            finish(client, &id).await
        }
    }
}

pub async fn run_execution(client: &Client, command: ExecutionCommand) -> anyhow::Result<()> {
    match command {
        ExecutionCommand::Show { id } => {
            let execution = show(client, &id).await?;
            match client.output {
                Output::Json => print_json(&execution),
                Output::Text => print_execution(&execution),
            }
        }
        ExecutionCommand::Watch { id } => {
            let status = watch(client, &id, true).await?;
            if client.output == Output::Text {
                let execution = show(client, &id).await?;
                print_result(&execution)?;
            }
            fail_unless_succeeded(&id, &status)
        }
    }
}

async fn show(client: &Client, id: &str) -> anyhow::Result<Value> {
    client
        .call(Method::GET, &format!("/api/executions/{}", segment(id)))
        .await
}

/// After `run --wait`: print the execution (text: its result; JSON: all of it).
async fn finish(client: &Client, id: &str) -> anyhow::Result<()> {
    let execution = show(client, id).await?;
    match client.output {
        Output::Json => print_json(&execution)?,
        Output::Text => print_result(&execution)?,
    }
    let status = execution["status"].as_str().unwrap_or("?").to_string();
    fail_unless_succeeded(
        id,
        &json!({ "status": status, "error": execution["error"] }),
    )
}

fn fail_unless_succeeded(id: &str, finished: &Value) -> anyhow::Result<()> {
    match finished["status"].as_str() {
        Some("succeeded") => Ok(()),
        status => bail!(
            "execution {id} {}{}",
            status.unwrap_or("ended without a status"),
            finished["error"]
                .as_str()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ),
    }
}

/// Follow the event stream to the `finished` event; returns that event's data
/// (`{"status", "error"}`). Prints each event when `print_events`.
async fn watch(client: &Client, id: &str, print_events: bool) -> anyhow::Result<Value> {
    let path = format!("/api/executions/{}/events", segment(id));
    let mut last_event: Option<String> = None;
    loop {
        let mut request = client
            .request(Method::GET, &path)
            .header("accept", "text/event-stream");
        if let Some(last) = &last_event {
            request = request.header("last-event-id", last);
        }
        let response = client.checked(request).await?;
        let mut frames = Frames::new(response.bytes_stream());
        while let Some(frame) = frames.next().await? {
            if frame.id.is_some() {
                last_event = frame.id.clone();
            }
            let event: Value =
                serde_json::from_str(&frame.data).unwrap_or(Value::String(frame.data));
            if print_events {
                match client.output {
                    Output::Json => {
                        let mut line = event.clone();
                        if let (Some(object), Some(id)) = (line.as_object_mut(), &frame.id) {
                            object.insert(
                                "id".into(),
                                id.parse::<i64>().map_or(json!(id), |n| json!(n)),
                            );
                        }
                        outln!("{line}")?;
                    }
                    Output::Text => outln!("{}", event_line(&event))?,
                }
            }
            if frame.event.as_deref() == Some("finished") || event["type"] == "finished" {
                return Ok(event["data"].clone());
            }
        }
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}

/// `--input '{"n": 5}'` or `--input @input.json`.
fn read_input(text: &str) -> anyhow::Result<Value> {
    let (json, from) = match text.strip_prefix('@') {
        Some(file) => (
            std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?,
            file.to_string(),
        ),
        None => (text.to_string(), "--input".to_string()),
    };
    serde_json::from_str(&json).with_context(|| format!("{from} is not JSON"))
}

fn event_line(event: &Value) -> String {
    let kind = event["type"].as_str().unwrap_or("?");
    let node = event["node"]
        .as_str()
        .map(|n| format!(" {n}"))
        .unwrap_or_default();
    let data = &event["data"];
    let detail = match kind {
        "node_completed" => format!(" (attempt {})", data["attempt"]),
        "node_failed" => format!(
            ": {}: {} (attempt {}){}",
            data["kind"].as_str().unwrap_or("?"),
            data["error"].as_str().unwrap_or(""),
            data["attempt"],
            data["retry_in_ms"]
                .as_u64()
                .map(|ms| format!(", retry in {ms} ms"))
                .unwrap_or_default()
        ),
        "finished" => format!(
            ": {}{}",
            data["status"].as_str().unwrap_or("?"),
            data["error"]
                .as_str()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ),
        _ if data.as_object().is_some_and(|d| !d.is_empty()) => format!(" {data}"),
        _ => String::new(),
    };
    format!(
        "{}  {kind}{node}{detail}",
        event["at"].as_str().unwrap_or("")
    )
}

fn print_workflows(answer: &Value) -> anyhow::Result<()> {
    let workflows = answer["workflows"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if workflows.is_empty() {
        outln!("no workflows in this workspace")?;
    }
    for workflow in workflows {
        outln!(
            "{}  {}  version {}{}  ({})",
            workflow["slug"].as_str().unwrap_or("?"),
            workflow["name"].as_str().unwrap_or(""),
            workflow["latest_version"],
            if workflow["enabled"] == false {
                " [disabled]"
            } else {
                ""
            },
            workflow["id"].as_str().unwrap_or("?"),
        )?;
    }
    Ok(())
}

fn print_workflow(workflow: &Value) -> anyhow::Result<()> {
    outln!(
        "{}: {} (version {}{})",
        workflow["slug"].as_str().unwrap_or("?"),
        workflow["name"].as_str().unwrap_or(""),
        workflow["latest_version"],
        if workflow["enabled"] == false {
            ", disabled"
        } else {
            ""
        },
    )?;
    if let Some(description) = workflow["description"].as_str().filter(|d| !d.is_empty()) {
        outln!("  {description}")?;
    }
    let definition = &workflow["definition"];
    outln!("nodes:")?;
    for node in definition["nodes"].as_array().into_iter().flatten() {
        outln!(
            "  {}  {}",
            node["id"].as_str().unwrap_or("?"),
            node["type"].as_str().unwrap_or("?")
        )?;
    }
    let edges = definition["edges"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if !edges.is_empty() {
        outln!("edges:")?;
    }
    for edge in edges {
        outln!(
            "  {} -> {}{}",
            edge["from"].as_str().unwrap_or("?"),
            edge["to"].as_str().unwrap_or("?"),
            edge["branch"]
                .as_str()
                .map(|b| format!(" [{b}]"))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}

fn print_result(execution: &Value) -> anyhow::Result<()> {
    outln!(
        "execution {}: {}",
        execution["id"].as_str().unwrap_or("?"),
        execution["status"].as_str().unwrap_or("?")
    )?;
    if let Some(error) = execution["error"].as_str() {
        outln!("error: {error}")?;
    } else if !execution["output"].is_null() {
        outln!("output: {}", execution["output"])?;
    }
    Ok(())
}

fn print_execution(execution: &Value) -> anyhow::Result<()> {
    print_result(execution)?;
    outln!(
        "  workflow {} version {}, created {}{}",
        execution["workflow_id"].as_str().unwrap_or("?"),
        execution["version"],
        execution["created_at"].as_str().unwrap_or("?"),
        execution["finished_at"]
            .as_str()
            .map(|t| format!(", finished {t}"))
            .unwrap_or_default()
    )?;
    let nodes = execution["nodes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if !nodes.is_empty() {
        outln!("nodes:")?;
    }
    for node in nodes {
        outln!(
            "  {}  {}  attempt {}{}{}",
            node["node_id"].as_str().unwrap_or("?"),
            node["status"].as_str().unwrap_or("?"),
            node["attempt"],
            match (node["plugin"].as_str(), node["version"].as_str()) {
                (Some(plugin), Some(version)) => format!("  {plugin} {version}"),
                _ => String::new(),
            },
            node["error"]
                .as_str()
                .map(|e| format!("  error: {e}"))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}
