//! Answers for a model and a person: what a definition does, when a schedule runs
//! next in its own time zone, how an execution went node by node, with names and
//! links rather than bare ids, and outputs cut short so an answer stays small.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::automation::rules::store::Rule;
use crate::automation::schedules::store::{self as schedules, Schedule};
use crate::capabilities::workflows::from_api;
use crate::runtime::bindings::Error;

/// The most characters of one output or input an answer carries.
const MAX_VALUE_CHARS: usize = 1500;
/// Upcoming runs shown for a schedule.
const NEXT_RUNS: usize = 3;

/// A value as JSON text, cut to a readable length.
fn short(value: &Value) -> Value {
    let text = value.to_string();
    if text.chars().count() <= MAX_VALUE_CHARS {
        return value.clone();
    }
    let cut: String = text.chars().take(MAX_VALUE_CHARS).collect();
    Value::String(format!(
        "{cut}… (cut; {} characters in all)",
        text.chars().count()
    ))
}

/// `Mon 2027-03-29 08:00 CEST (06:00 UTC)`: the wall time in `timezone` (UTC when
/// none or unknown) and the instant in UTC.
pub fn when(at: DateTime<Utc>, timezone: Option<&str>) -> String {
    let zone: chrono_tz::Tz = timezone
        .and_then(|z| z.parse().ok())
        .unwrap_or(chrono_tz::UTC);
    let local = at.with_timezone(&zone);
    if zone == chrono_tz::UTC {
        return local.format("%a %Y-%m-%d %H:%M UTC").to_string();
    }
    format!(
        "{} ({} UTC)",
        local.format("%a %Y-%m-%d %H:%M %Z"),
        at.format("%H:%M")
    )
}

/// What a node's config says about where it acts: an address, a URL, an agent.
fn node_hint(node: &Value) -> String {
    let config = &node["config"];
    let text = |key: &str| match &config[key] {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        _ => None,
    };
    let kind = node["type"].as_str().unwrap_or_default();
    let hint = match kind {
        "email/send" => text("to").map(|to| format!("emails {to}")),
        "http/request" => text("url")
            .map(|url| format!("{} {url}", text("method").unwrap_or_else(|| "GET".into()))),
        "agent/turn" => text("agent").map(|agent| format!("asks {agent}")),
        "workflow/start" => text("workflow").map(|w| format!("starts {w}")),
        "core/approval" => Some("waits for a person's approval".into()),
        "core/delay" => text("duration").map(|d| format!("waits {d}")),
        _ => None,
    };
    hint.map(|h| format!(" ({h})")).unwrap_or_default()
}

/// One sentence on a definition: its steps in order and its triggers.
pub fn definition_summary(definition: &Value) -> String {
    let steps: Vec<String> = definition["nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .map(|n| {
                    format!(
                        "{} [{}]{}",
                        n["id"].as_str().unwrap_or("?"),
                        n["type"].as_str().unwrap_or("?"),
                        node_hint(n)
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let triggers: Vec<String> = definition["triggers"]
        .as_array()
        .map(|triggers| triggers.iter().map(trigger_summary).collect())
        .unwrap_or_default();
    let mut text = format!("Steps: {}.", steps.join(" → "));
    if !triggers.is_empty() {
        text.push_str(&format!(" Starts {}.", triggers.join("; ")));
    }
    text
}

fn trigger_summary(trigger: &Value) -> String {
    let zone = trigger["timezone"].as_str().unwrap_or("UTC");
    match trigger["type"].as_str().unwrap_or_default() {
        "schedule" => match (trigger["cron"].as_str(), trigger["every"].as_str()) {
            (Some(cron), _) => format!("on the schedule `{cron}` ({zone})"),
            (None, Some(every)) => format!("every {every}"),
            _ => "once, at the time given".into(),
        },
        "event" => format!("on each {} event", trigger["event"].as_str().unwrap_or("?")),
        "webhook" => "when its webhook is called".into(),
        other => format!("on a {other} trigger"),
    }
}

/// An execution, node runs summarised (latest attempt of each node).
pub async fn execution(pool: &PgPool, workspace: Uuid, id: Uuid) -> Result<Value, Error> {
    let row = crate::workflows::store::get_execution(pool, workspace, id)
        .await
        .map_err(from_api)?;
    let (slug, owner): (String, Option<String>) =
        sqlx::query_as("SELECT slug, owner FROM workflows WHERE id = $1")
            .bind(row.workflow_id)
            .fetch_one(pool)
            .await
            .map_err(|e| from_api(e.into()))?;
    let runs = crate::workflows::store::node_runs(pool, id)
        .await
        .map_err(from_api)?;
    let mut nodes: Vec<Value> = Vec::new();
    for run in &runs {
        let entry = json!({
            "node": run.node_id,
            "status": run.status,
            "attempt": run.attempt,
            "error": run.error,
            "output": run.output.as_ref().map(short),
        });
        // Node runs come in order; a later attempt replaces the earlier one.
        match nodes.iter_mut().find(|n| n["node"] == run.node_id.as_str()) {
            Some(existing) => *existing = entry,
            None => nodes.push(entry),
        }
    }
    let test = owner.as_deref().is_some_and(|o| o.starts_with("draft:"));
    let workflow = match (&owner, test) {
        (Some(owner), true) => owner.trim_start_matches("draft:").to_string(),
        _ => slug,
    };
    let failed = nodes
        .iter()
        .find(|n| n["status"] == "failed")
        .map(|n| {
            format!(
                " Node {} failed: {}",
                n["node"].as_str().unwrap_or("?"),
                n["error"].as_str().unwrap_or("no message")
            )
        })
        .unwrap_or_default();
    let summary = format!(
        "{} of {workflow} {}: {} of {} nodes succeeded.{failed}",
        if test { "Test run" } else { "Run" },
        row.status,
        nodes.iter().filter(|n| n["status"] == "succeeded").count(),
        nodes.len(),
    );
    Ok(json!({
        "id": row.id,
        "workflow": workflow,
        "test": test,
        "status": row.status,
        "error": row.error,
        "output": row.output.as_ref().map(short),
        "nodes": nodes,
        "summary": summary,
        "link": format!("/api/executions/{}", row.id),
    }))
}

/// The next few runs of a schedule, in its time zone.
async fn next_runs(pool: &PgPool, schedule: &Schedule) -> Vec<String> {
    let Some(first) = schedule.next_run_at else {
        return Vec::new();
    };
    let zone = schedule.schedule.timezone.as_deref();
    let anchor: DateTime<Utc> = sqlx::query_scalar("SELECT anchor FROM schedules WHERE id = $1")
        .bind(schedule.id)
        .fetch_one(pool)
        .await
        .unwrap_or(schedule.created_at);
    let mut runs = vec![first];
    if let Ok(timing) = schedule.schedule.check("schedule") {
        while runs.len() < NEXT_RUNS {
            let last = *runs.last().unwrap_or(&first);
            match timing.next_after(last, anchor) {
                Some(next) if next > last => runs.push(next),
                _ => break,
            }
        }
    }
    runs.into_iter().map(|at| when(at, zone)).collect()
}

fn spec_summary(schedule: &Schedule) -> String {
    let spec = &schedule.schedule.0;
    let zone = spec.timezone.as_deref().unwrap_or("UTC");
    match (&spec.cron, &spec.every, &spec.at) {
        (Some(cron), _, _) => format!("`{cron}` in {zone}"),
        (None, Some(every), _) => format!("every {every}"),
        (None, None, Some(at)) => format!("once at {}", when(*at, spec.timezone.as_deref())),
        _ => "no time set".into(),
    }
}

fn action_summary(action: &Value) -> String {
    let kind = action["type"].as_str().unwrap_or("?");
    let target = ["workflow", "to", "url", "agent", "event"]
        .iter()
        .find_map(|key| action[*key].as_str().map(|v| format!(" {v}")))
        .unwrap_or_default();
    format!("{kind}{target}")
}

/// The answer to creating, pausing or resuming a schedule.
pub async fn schedule_answer(
    pool: &PgPool,
    schedule: &Schedule,
    verb: &str,
) -> Result<Value, Error> {
    let runs = next_runs(pool, schedule).await;
    let does = match &schedule.action {
        Some(action) => action_summary(action),
        None => format!("run_workflow {}", schedule.workflow),
    };
    let next = match (schedule.status.as_str(), runs.first()) {
        ("paused", _) => "It is paused: nothing runs until it is resumed.".to_string(),
        (_, Some(first)) => format!("Next run: {first}."),
        (_, None) => "No run is due.".to_string(),
    };
    Ok(json!({
        "id": schedule.id,
        "name": schedule.name,
        "status": schedule.status,
        "summary": format!("{verb} schedule {:?}: {does}, {}. {next}", schedule.name, spec_summary(schedule)),
        "next_runs": runs,
        "link": format!("/api/schedules/{}", schedule.id),
    }))
}

pub async fn schedules(pool: &PgPool, workspace: Uuid) -> Result<Value, Error> {
    let all = schedules::list(pool, workspace, None)
        .await
        .map_err(from_api)?;
    let mut listed = Vec::new();
    for schedule in all.iter().take(50) {
        let answer = schedule_answer(pool, schedule, "Schedule").await?;
        listed.push(json!({
            "id": schedule.id,
            "name": schedule.name,
            "workflow": schedule.workflow,
            "kind": schedule.kind,
            "status": schedule.status,
            "next_run": answer["next_runs"].get(0).cloned().unwrap_or(Value::Null),
            "last_status": schedule.last_status,
            "link": answer["link"],
        }));
    }
    Ok(json!({"schedules": listed, "count": all.len()}))
}

pub fn rule_answer(rule: &Rule, verb: &str) -> Value {
    let does: Vec<String> = rule
        .actions
        .as_array()
        .map(|actions| actions.iter().map(action_summary).collect())
        .unwrap_or_default();
    let filter = rule
        .trigger
        .filter
        .as_deref()
        .map(|f| format!(" where {f}"))
        .unwrap_or_default();
    json!({
        "id": rule.id,
        "name": rule.name,
        "active": rule.active,
        "summary": format!(
            "{verb} rule {:?}: on each {} event{filter}, {}.{}",
            rule.name,
            rule.trigger.event,
            does.join(", then "),
            if rule.active { " It is active from now on." } else { " It is paused." }
        ),
        "link": format!("/api/rules/{}", rule.id),
    })
}

pub async fn rules(pool: &PgPool, workspace: Uuid) -> Result<Value, Error> {
    let all = crate::automation::rules::store::list(pool, workspace)
        .await
        .map_err(from_api)?;
    let listed: Vec<Value> = all
        .iter()
        .take(50)
        .map(|rule| {
            let mut answer = rule_answer(rule, "Rule");
            answer["event"] = json!(rule.trigger.event);
            answer["ran"] = json!(rule.ran);
            answer["failed"] = json!(rule.failed);
            answer
        })
        .collect();
    Ok(json!({"rules": listed, "count": all.len()}))
}

pub async fn approvals(pool: &PgPool, workspace: Uuid) -> Result<Value, Error> {
    let pending = crate::workflows::approvals::list(pool, workspace, Some("pending"), 50)
        .await
        .map_err(from_api)?;
    let mut listed = Vec::new();
    for approval in &pending {
        let workflow: String = sqlx::query_scalar("SELECT slug FROM workflows WHERE id = $1")
            .bind(approval.workflow_id)
            .fetch_one(pool)
            .await
            .map_err(|e| from_api(e.into()))?;
        listed.push(json!({
            "id": approval.id,
            "workflow": workflow,
            "execution_id": approval.execution_id,
            "node": approval.node_id,
            "message": approval.message,
            "role": approval.role,
            "created_at": approval.created_at,
            "link": format!("/api/approvals/{}", approval.id),
        }));
    }
    Ok(json!({"approvals": listed, "count": listed.len()}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_in_the_schedule_s_zone_across_the_march_change() {
        let before: DateTime<Utc> = "2027-03-26T07:00:00Z".parse().unwrap();
        let after: DateTime<Utc> = "2027-03-29T06:00:00Z".parse().unwrap();
        assert_eq!(
            when(before, Some("Europe/Berlin")),
            "Fri 2027-03-26 08:00 CET (07:00 UTC)"
        );
        assert_eq!(
            when(after, Some("Europe/Berlin")),
            "Mon 2027-03-29 08:00 CEST (06:00 UTC)"
        );
        assert_eq!(when(after, None), "Mon 2027-03-29 06:00 UTC");
    }

    #[test]
    fn a_definition_reads_as_its_steps_and_triggers() {
        let definition = json!({
            "nodes": [
                {"id": "revenue", "type": "agent/turn", "config": {"agent": "dexter"}},
                {"id": "mail", "type": "email/send", "config": {"to": ["a@example.com"]}}
            ],
            "triggers": [{"type": "schedule", "cron": "0 8 * * *", "timezone": "Europe/Berlin"}]
        });
        let text = definition_summary(&definition);
        assert!(
            text.contains(
                "revenue [agent/turn] (asks dexter) → mail [email/send] (emails a@example.com)"
            ),
            "{text}"
        );
        assert!(text.contains("`0 8 * * *` (Europe/Berlin)"), "{text}");
    }

    #[test]
    fn long_outputs_are_cut() {
        let big = json!({"text": "x".repeat(5000)});
        let cut = short(&big);
        assert!(
            cut.as_str().unwrap().contains("cut; 5011 characters"),
            "{cut}"
        );
        assert_eq!(short(&json!({"n": 1})), json!({"n": 1}));
    }
}
