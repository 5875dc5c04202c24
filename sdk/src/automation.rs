//! Build, test, run and schedule the calling workspace's workflows (the WIT
//! `automation` interface; Aura's tools are written on it). Granted by scope:
//! `"capabilities": {"automation": {"scopes": ["read", "draft", "run", "publish"]}}`.
//! Beyond `read`, the host also checks the role of the person whose chat made the call
//! (a member may draft and run, only an admin publishes or schedules).
//!
//! Every answer is the host's JSON; a request with problems (an unknown node type, a
//! bad cron expression) is [`Error::Invalid`] whose text lists each problem on a line
//! with its path, ready to hand to a model.
//!
//! ```
//! use agenthost_sdk::{automation, testing::TestHost, Error};
//! use serde_json::json;
//! let _host = TestHost::new()
//!     .automation(&["read", "draft"], |function, args| match function {
//!         "save-draft" if args["draft"]["definition"]["nodes"].as_array().is_some_and(|n| n.is_empty()) =>
//!             Err(Error::Invalid("the draft has 1 problem:\n- nodes: a workflow needs at least one node".into())),
//!         "save-draft" => Ok(json!({"slug": args["workflow"], "summary": "Draft saved"})),
//!         _ => Ok(json!({})),
//!     })
//!     .install();
//! let empty = json!({"name": "Report", "definition": {"nodes": []}});
//! assert!(matches!(automation::save_draft("report", &empty), Err(Error::Invalid(m)) if m.contains("- nodes:")));
//! // Publishing needs the `publish` scope, which this host did not grant.
//! assert!(matches!(automation::publish_draft("report"), Err(Error::Denied(_))));
//! ```

use std::time::Duration;

use serde_json::{Value, json};

use crate::Error;

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn parse(text: &str) -> Result<Value, Error> {
    serde_json::from_str(text)
        .map_err(|e| Error::Internal(format!("the host's answer is not JSON: {e}")))
}

fn millis(wait: Duration) -> u32 {
    u32::try_from(wait.as_millis()).unwrap_or(u32::MAX)
}

/// One call: through the component's import, or the test host in a native build.
/// `args` names the arguments as the WIT does (the test host's handler gets them).
macro_rules! call {
    ($function:literal, $args:expr, |$raw:ident| $wasm:expr) => {{
        #[cfg(target_arch = "wasm32")]
        {
            #[allow(unused_imports)]
            use crate::__private::bindings::agenthost::plugin::automation as $raw;
            let _ = &$args;
            let text: Result<String, _> = $wasm;
            parse(&text.map_err(Error::from)?)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            crate::testing::run_automation($function, &$args)
        }
    }};
}

/// Node types matching `query` (a few words), best first, at most `limit` (1-20):
/// `{"node_types": [{"type", "description", "config_schema", "branches"}], ...}`.
pub fn search_node_types(query: &str, limit: u32) -> Result<Value, Error> {
    call!(
        "search-node-types",
        json!({"query": query, "limit": limit}),
        |raw| { raw::search_node_types(query, limit) }
    )
}

/// The published workflows and the unpublished drafts.
pub fn list_workflows() -> Result<Value, Error> {
    call!("list-workflows", json!({}), |raw| raw::list_workflows())
}

/// A workflow's draft and published version side by side.
pub fn get_workflow(workflow: &str) -> Result<Value, Error> {
    call!("get-workflow", json!({"workflow": workflow}), |raw| {
        raw::get_workflow(workflow)
    })
}

/// Check a definition without saving it: `{"valid", "problems"}`.
pub fn validate_definition(definition: &Value) -> Result<Value, Error> {
    call!(
        "validate-definition",
        json!({"definition": definition}),
        |raw| { raw::validate_definition(&definition.to_string()) }
    )
}

/// Save the draft `{"name", "description"?, "definition"}` of workflow `workflow` (a
/// slug). A draft with problems is not saved.
pub fn save_draft(workflow: &str, draft: &Value) -> Result<Value, Error> {
    call!(
        "save-draft",
        json!({"workflow": workflow, "draft": draft}),
        |raw| { raw::save_draft(workflow, &draft.to_string()) }
    )
}

/// Run the saved draft once as a test (no triggers), waiting up to `wait`.
pub fn test_draft(workflow: &str, input: &Value, wait: Duration) -> Result<Value, Error> {
    call!(
        "test-draft",
        json!({"workflow": workflow, "input": input, "wait_ms": millis(wait)}),
        |raw| { raw::test_draft(workflow, &input.to_string(), millis(wait)) }
    )
}

/// Make the saved draft live as the workflow's next version.
pub fn publish_draft(workflow: &str) -> Result<Value, Error> {
    call!("publish-draft", json!({"workflow": workflow}), |raw| {
        raw::publish_draft(workflow)
    })
}

/// Start the published workflow, waiting up to `wait` for it to finish.
pub fn run_workflow(workflow: &str, input: &Value, wait: Duration) -> Result<Value, Error> {
    call!(
        "run-workflow",
        json!({"workflow": workflow, "input": input, "wait_ms": millis(wait)}),
        |raw| { raw::run_workflow(workflow, &input.to_string(), millis(wait)) }
    )
}

/// An execution with its node runs summarised.
pub fn get_execution(execution_id: &str) -> Result<Value, Error> {
    call!(
        "get-execution",
        json!({"execution_id": execution_id}),
        |raw| { raw::get_execution(execution_id) }
    )
}

/// The workspace's schedules with their next runs.
pub fn list_schedules() -> Result<Value, Error> {
    call!("list-schedules", json!({}), |raw| raw::list_schedules())
}

/// A scheduled task, as `POST /api/schedules` takes it.
pub fn create_schedule(schedule: &Value) -> Result<Value, Error> {
    call!("create-schedule", json!({"schedule": schedule}), |raw| {
        raw::create_schedule(&schedule.to_string())
    })
}

/// Pause (`true`) or resume a schedule by id.
pub fn set_schedule_paused(schedule_id: &str, paused: bool) -> Result<Value, Error> {
    call!(
        "set-schedule-paused",
        json!({"schedule_id": schedule_id, "paused": paused}),
        |raw| { raw::set_schedule_paused(schedule_id, paused) }
    )
}

/// The workspace's rules.
pub fn list_rules() -> Result<Value, Error> {
    call!("list-rules", json!({}), |raw| raw::list_rules())
}

/// A rule, as `POST /api/rules` takes it.
pub fn create_rule(rule: &Value) -> Result<Value, Error> {
    call!(
        "create-rule",
        json!({"rule": rule}),
        |raw| raw::create_rule(&rule.to_string())
    )
}

/// Approvals of executions waiting for a person.
pub fn list_approvals() -> Result<Value, Error> {
    call!("list-approvals", json!({}), |raw| raw::list_approvals())
}

/// The scope the host asks for `function` (as `wit/automation.wit` says).
pub fn scope_of(function: &str, args: &Value) -> &'static str {
    match function {
        "save-draft" => "draft",
        "test-draft" | "run-workflow" => "run",
        "set-schedule-paused" if args["paused"] == json!(true) => "run",
        "publish-draft" | "create-schedule" | "create-rule" | "set-schedule-paused" => "publish",
        _ => "read",
    }
}
