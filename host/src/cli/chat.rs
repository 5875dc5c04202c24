//! `agenthost agent list` and `agenthost chat AGENT "message"`: the turn is streamed
//! (the UI message stream of docs/chat.md), text deltas printed as they come and each
//! tool call as a `→ tool(input)` line.

use anyhow::{Context, bail};
use futures_util::StreamExt;
use reqwest13::Method;
use serde_json::{Value, json};

use super::client::{Client, print_json};
use super::commands::Output;
use super::out::{out, outln};

pub async fn list_agents(client: &Client) -> anyhow::Result<()> {
    let answer = client.call(Method::GET, "/api/agents").await?;
    if client.output == Output::Json {
        return print_json(&answer);
    }
    let agents = answer["agents"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if agents.is_empty() {
        outln!("no agents in this workspace")?;
    }
    for agent in agents {
        outln!(
            "{}  {}{}  ({})",
            agent["slug"].as_str().unwrap_or("?"),
            agent["name"].as_str().unwrap_or(""),
            if agent["enabled"] == false {
                " [disabled]"
            } else {
                ""
            },
            agent["id"].as_str().unwrap_or("?"),
        )?;
    }
    Ok(())
}

pub async fn chat(
    client: &Client,
    agent: &str,
    message: &str,
    conversation: Option<&str>,
) -> anyhow::Result<()> {
    let path = format!(
        "/api/agents/{}/chat",
        url::form_urlencoded::byte_serialize(agent.as_bytes()).collect::<String>()
    );
    let mut body = json!({ "message": message });
    if let Some(conversation) = conversation {
        body["conversation_id"] = json!(conversation);
    }
    let request = client.request(Method::POST, &path).json(&body);
    if client.output == Output::Json {
        // The whole turn as the server records it (tool calls, usage, ids).
        return print_json(&client.send(request).await?);
    }
    let response = client
        .checked(request.header("accept", "text/event-stream"))
        .await?;
    let mut stream = response.bytes_stream();
    let mut printer = Printer::default();
    let mut buffer: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        buffer.extend_from_slice(&chunk.context("reading the stream")?);
        while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let Some(data) = line.trim_end().strip_prefix("data:") else {
                continue; // blank separators and `:` keep-alives
            };
            let data = data.trim_start();
            if data == "[DONE]" {
                printer.finish()?;
                return printer.result();
            }
            let part: Value = serde_json::from_str(data)
                .with_context(|| format!("a stream part is not JSON: {data}"))?;
            printer.part(&part)?;
        }
    }
    printer.finish()?;
    bail!("the stream ended before [DONE]")
}

/// Turns stream parts into terminal output.
#[derive(Default)]
struct Printer {
    /// Text was printed and its line is not finished yet.
    mid_line: bool,
    conversation_id: Option<String>,
    error: Option<String>,
}

impl Printer {
    fn part(&mut self, part: &Value) -> anyhow::Result<()> {
        match part["type"].as_str().unwrap_or_default() {
            "start" => {
                self.conversation_id = part["messageMetadata"]["conversationId"]
                    .as_str()
                    .map(str::to_string);
            }
            "text-delta" => {
                out!("{}", part["delta"].as_str().unwrap_or_default())?;
                self.mid_line = true;
            }
            "tool-input-available" => {
                self.end_line()?;
                outln!(
                    "→ {}({})",
                    part["toolName"].as_str().unwrap_or("?"),
                    part["input"]
                )?;
            }
            "tool-output-error" => {
                self.end_line()?;
                outln!("  ✗ {}", part["errorText"].as_str().unwrap_or("failed"))?;
            }
            "error" => {
                self.error = Some(
                    part["errorText"]
                        .as_str()
                        .unwrap_or("the turn failed")
                        .to_string(),
                );
            }
            _ => {}
        }
        Ok(())
    }

    fn end_line(&mut self) -> anyhow::Result<()> {
        if self.mid_line {
            self.mid_line = false;
            outln!()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        self.end_line()?;
        if let Some(conversation) = &self.conversation_id {
            eprintln!("(conversation {conversation}: continue with --conversation {conversation})");
        }
        Ok(())
    }

    fn result(&self) -> anyhow::Result<()> {
        match &self.error {
            Some(error) => bail!("{error}"),
            None => Ok(()),
        }
    }
}
