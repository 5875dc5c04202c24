//! Aura, the automation agent. Her tools are thin: each one is a call of the host's
//! `automation` interface (the same services the REST API uses), shaped for a model as
//! published tool-design advice says (docs/aura.md): few tools with exact schemas, a
//! search instead of a catalog dump, answers with names, a summary and a link, and
//! problems a model can fix returned as an answer (`ok: false` with one problem per
//! line) rather than a failure. Nothing goes live without a person: the agent marks
//! `publish_workflow`, `schedule_workflow` and `create_rule` as needing approval, and
//! the host checks the approving person's role.

mod schemas;

use std::time::Duration;

use agenthost_sdk::serde_json::{Value, json};
use agenthost_sdk::{CallContext, Error, ToolPlugin, ToolSpec, automation};

struct Aura;

/// How long a test or a run is waited for before answering "still running".
const WAIT: Duration = Duration::from_secs(15);

/// A request the model got wrong comes back as an answer it can act on; anything
/// else (denied, not found, the host unavailable) stays an error.
fn fixable(result: Result<Value, Error>) -> Result<Value, Error> {
    match result {
        Err(Error::Invalid(problems)) => Ok(json!({
            "ok": false,
            "problems": problems,
            "next": "Nothing was changed. Fix each problem named above and call the tool again.",
        })),
        Ok(mut answer) => {
            if let Some(object) = answer.as_object_mut() {
                object.entry("ok").or_insert(json!(true));
            }
            Ok(answer)
        }
        Err(other) => Err(other),
    }
}

fn text<'a>(input: &'a Value, field: &str) -> Result<&'a str, Error> {
    input[field]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::invalid(format!("{field} is required")))
}

fn input_of(input: &Value) -> Value {
    match &input["input"] {
        Value::Null => json!({}),
        other => other.clone(),
    }
}

/// `schedule_workflow`'s arguments as a scheduled task that runs the workflow.
fn schedule_body(input: &Value) -> Result<Value, Error> {
    let workflow = text(input, "workflow")?;
    let mut schedule = json!({});
    for field in ["cron", "every", "timezone", "at"] {
        if let Some(value) = input[field].as_str() {
            schedule[field] = json!(value);
        }
    }
    let name = input["name"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("Run {workflow}"));
    Ok(json!({
        "name": name,
        "schedule": schedule,
        "action": {"type": "run_workflow", "workflow": workflow, "input": input_of(input)},
    }))
}

/// `create_rule`'s arguments as the REST API's rule.
fn rule_body(input: &Value) -> Result<Value, Error> {
    let mut trigger = json!({"event": text(input, "event")?});
    if let Some(filter) = input["filter"].as_str() {
        trigger["filter"] = json!(filter);
    }
    let mut rule = json!({
        "name": text(input, "name")?,
        "trigger": trigger,
        "actions": input["actions"].clone(),
    });
    for field in ["cooldown", "max_per_hour", "conditions"] {
        if !input[field].is_null() {
            rule[field] = input[field].clone();
        }
    }
    Ok(rule)
}

impl ToolPlugin for Aura {
    fn tools() -> Vec<ToolSpec> {
        schemas::tools()
    }

    fn invoke(_: &CallContext, tool: &str, input: Value) -> Result<Value, Error> {
        match tool {
            "find_node_types" => {
                let limit = input["limit"].as_u64().unwrap_or(5).clamp(1, 20) as u32;
                automation::search_node_types(text(&input, "query")?, limit)
            }
            "show_workflow" => match input["workflow"].as_str() {
                Some(workflow) if !workflow.is_empty() => automation::get_workflow(workflow),
                _ => automation::list_workflows(),
            },
            "save_draft" => {
                let mut draft = json!({"definition": input["definition"].clone()});
                for field in ["name", "description"] {
                    if let Some(value) = input[field].as_str() {
                        draft[field] = json!(value);
                    }
                }
                fixable(automation::save_draft(text(&input, "workflow")?, &draft))
            }
            "test_draft" => fixable(automation::test_draft(
                text(&input, "workflow")?,
                &input_of(&input),
                WAIT,
            )),
            "publish_workflow" => fixable(automation::publish_draft(text(&input, "workflow")?)),
            "run_workflow" => fixable(automation::run_workflow(
                text(&input, "workflow")?,
                &input_of(&input),
                WAIT,
            )),
            "explain_execution" => automation::get_execution(text(&input, "execution_id")?),
            "schedule_workflow" => fixable(automation::create_schedule(&schedule_body(&input)?)),
            "pause_schedule" => {
                let resume = input["resume"].as_bool().unwrap_or(false);
                automation::set_schedule_paused(text(&input, "schedule_id")?, !resume)
            }
            "create_rule" => fixable(automation::create_rule(&rule_body(&input)?)),
            "list_automations" => Ok(json!({
                "workflows": automation::list_workflows()?,
                "schedules": automation::list_schedules()?["schedules"],
                "rules": automation::list_rules()?["rules"],
                "pending_approvals": automation::list_approvals()?["approvals"],
            })),
            other => Err(Error::NotFound(format!("Aura has no tool {other}"))),
        }
    }
}

agenthost_sdk::export_tool_plugin!(Aura);

#[cfg(test)]
mod tests;
