//! `agenthost plugin logs NAME`: a page of the plugin's stored log lines
//! (`GET /api/admin/plugins/{name}/logs`), printed oldest first like a log file;
//! `--follow` then polls for lines newer than the newest one seen.

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use reqwest13::Method;
use serde_json::Value;

use super::client::{Client, print_json};
use super::commands::{LogLevel, LogsArgs, Output};
use super::out::outln;
use super::plugin::segment;

/// The server's largest page: what `--follow` asks for.
const MAX_PAGE: i64 = 1000;

pub async fn run(client: &Client, args: LogsArgs) -> anyhow::Result<()> {
    let filters = Filters {
        version: args.version.clone(),
        level: args.level,
        since: args.since.as_deref().map(parse_since).transpose()?,
        request_id: args.request_id.clone(),
    };
    let page = fetch(client, &args.name, &filters, None, None, args.limit).await?;
    if !args.follow && client.output == Output::Json {
        return print_json(&page);
    }
    let mut lines = lines_of(&page);
    lines.reverse();
    if lines.is_empty() && !args.follow {
        outln!("no log lines of {} match", args.name)?;
    }
    let mut newest = print_lines(client.output, &lines)?.unwrap_or(0);
    if !args.follow {
        return Ok(());
    }
    loop {
        tokio::time::sleep(args.interval).await;
        let lines = newer_than(client, &args.name, &filters, newest).await?;
        if let Some(id) = print_lines(client.output, &lines)? {
            newest = id;
        }
    }
}

struct Filters {
    version: Option<String>,
    level: Option<LogLevel>,
    since: Option<DateTime<Utc>>,
    request_id: Option<String>,
}

async fn fetch(
    client: &Client,
    name: &str,
    filters: &Filters,
    before: Option<i64>,
    after: Option<i64>,
    limit: i64,
) -> anyhow::Result<Value> {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(version) = &filters.version {
        query.append_pair("version", version);
    }
    if let Some(level) = filters.level {
        query.append_pair("level", level_name(level));
    }
    if let Some(since) = filters.since {
        query.append_pair("since", &since.to_rfc3339());
    }
    if let Some(request_id) = &filters.request_id {
        query.append_pair("request_id", request_id);
    }
    if let Some(before) = before {
        query.append_pair("before", &before.to_string());
    }
    if let Some(after) = after {
        query.append_pair("after", &after.to_string());
    }
    query.append_pair("limit", &limit.to_string());
    let path = format!(
        "/api/admin/plugins/{}/logs?{}",
        segment(name),
        query.finish()
    );
    client.call(Method::GET, &path).await
}

/// Every line newer than `newest`, oldest first: pages back from the newest until the
/// server says there is nothing older (a burst between two polls can pass a page).
async fn newer_than(
    client: &Client,
    name: &str,
    filters: &Filters,
    newest: i64,
) -> anyhow::Result<Vec<Value>> {
    let mut lines = Vec::new();
    let mut before = None;
    loop {
        let page = fetch(client, name, filters, before, Some(newest), MAX_PAGE).await?;
        lines.extend(lines_of(&page));
        match page["next_before"].as_i64() {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    lines.reverse();
    Ok(lines)
}

fn lines_of(page: &Value) -> Vec<Value> {
    page["lines"].as_array().cloned().unwrap_or_default()
}

/// Print lines (oldest first); returns the newest id printed.
fn print_lines(output: Output, lines: &[Value]) -> anyhow::Result<Option<i64>> {
    for line in lines {
        match output {
            // One line per log line, so a follower can read them as they come.
            Output::Json => outln!("{line}")?,
            Output::Text => outln!("{}", text_line(line))?,
        }
    }
    Ok(lines.iter().filter_map(|line| line["id"].as_i64()).max())
}

fn text_line(line: &Value) -> String {
    let mut text = format!(
        "{} {:<5} {} {}",
        line["logged_at"].as_str().unwrap_or("?"),
        line["level"].as_str().unwrap_or("?").to_uppercase(),
        line["version"].as_str().unwrap_or("?"),
        line["message"].as_str().unwrap_or(""),
    );
    if let Some(fields) = line["fields"].as_object() {
        for (key, value) in fields {
            text.push_str(&format!("  {key}={}", value.as_str().unwrap_or("")));
        }
    }
    if let Some(request_id) = line["request_id"].as_str() {
        text.push_str(&format!("  (request {request_id})"));
    }
    text
}

fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    }
}

/// An RFC 3339 time, or a duration back from now: `90s`, `10m`, `2h`, `7d`.
fn parse_since(text: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .context("--since needs a unit: 90s, 10m, 2h, 7d (or an RFC 3339 time)")?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().with_context(|| {
        format!("--since {text:?} is neither an RFC 3339 time nor a duration like 10m")
    })?;
    let back = match unit {
        "s" => chrono::Duration::try_seconds(number),
        "m" => chrono::Duration::try_minutes(number),
        "h" => chrono::Duration::try_hours(number),
        "d" => chrono::Duration::try_days(number),
        other => bail!("--since: unknown unit {other:?}; use s, m, h or d"),
    }
    .context("--since is too far back")?;
    Ok(Utc::now() - back)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_time_or_a_duration_back() {
        let time = parse_since("2026-12-01T10:00:00+01:00").unwrap();
        assert_eq!(time.to_rfc3339(), "2026-12-01T09:00:00+00:00");
        let ten_minutes_ago = parse_since("10m").unwrap();
        let age = Utc::now() - ten_minutes_ago;
        assert!(age >= chrono::Duration::minutes(10) && age < chrono::Duration::minutes(11));
        assert!(parse_since("10").is_err());
        assert!(parse_since("10w").is_err());
        assert!(parse_since("yesterday").is_err());
    }
}
