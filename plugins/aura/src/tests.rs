use std::cell::RefCell;
use std::rc::Rc;

use agenthost_sdk::serde_json::{Value, json};
use agenthost_sdk::testing::TestHost;
use agenthost_sdk::{CallContext, Error, ToolPlugin};

use super::Aura;

fn call(tool: &str, input: Value) -> Result<Value, Error> {
    Aura::invoke(&CallContext::for_tests("ws"), tool, input)
}

const EVERY_SCOPE: &[&str] = &["read", "draft", "run", "publish"];

#[test]
fn problems_come_back_as_an_answer_to_fix_and_other_errors_stay_errors() {
    let _host = TestHost::new()
        .automation(EVERY_SCOPE, |function, _| match function {
            "save-draft" => Err(Error::Invalid(
                "the draft has 1 problem; fix each one and try again (nothing was saved):\n- nodes[1].config.subject: is required".into(),
            )),
            "publish-draft" => Err(Error::Denied("publishing a workflow needs an admin key".into())),
            _ => Ok(json!({})),
        })
        .install();
    let answer = call(
        "save_draft",
        json!({"workflow": "report", "name": "Report", "definition": {"nodes": [{}]}}),
    )
    .unwrap();
    assert_eq!(answer["ok"], false);
    assert!(
        answer["problems"]
            .as_str()
            .unwrap()
            .contains("nodes[1].config.subject")
    );
    let refused = call("publish_workflow", json!({"workflow": "report"})).unwrap_err();
    assert!(matches!(refused, Error::Denied(m) if m.contains("admin")));
}

#[test]
fn a_schedule_runs_the_workflow_with_the_persons_time_zone() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let record = seen.clone();
    let _host = TestHost::new()
        .automation(EVERY_SCOPE, move |function, args| {
            record
                .borrow_mut()
                .push((function.to_string(), args.clone()));
            Ok(json!({"id": "s1", "summary": "Created"}))
        })
        .install();
    let answer = call(
        "schedule_workflow",
        json!({"workflow": "daily-revenue", "cron": "0 8 * * *", "timezone": "Europe/Berlin"}),
    )
    .unwrap();
    assert_eq!(answer["ok"], true);
    let seen = seen.borrow();
    let (function, args) = &seen[0];
    assert_eq!(function, "create-schedule");
    assert_eq!(
        args["schedule"],
        json!({
            "name": "Run daily-revenue",
            "schedule": {"cron": "0 8 * * *", "timezone": "Europe/Berlin"},
            "action": {"type": "run_workflow", "workflow": "daily-revenue", "input": {}},
        })
    );
}

#[test]
fn a_rule_is_sent_as_the_rest_apis_body_and_scopes_hold() {
    let seen = Rc::new(RefCell::new(Value::Null));
    let record = seen.clone();
    let _host = TestHost::new()
        .automation(&["read"], move |_, args| {
            *record.borrow_mut() = args.clone();
            Ok(json!({"rules": [], "schedules": [], "approvals": [], "workflows": [], "drafts": []}))
        })
        .install();
    // The read scope lists; creating needs `publish`, refused before the host acts.
    assert!(call("list_automations", json!({})).is_ok());
    let refused = call(
        "create_rule",
        json!({"name": "Big deals", "event": "deal.won", "filter": "event.payload.amount > 1000",
               "actions": [{"type": "send_email", "to": "a@example.com", "subject": "Won", "text": "!"}]}),
    )
    .unwrap_err();
    assert!(matches!(refused, Error::Denied(m) if m.contains("publish")));
    let body = super::rule_body(
        &json!({"name": "n", "event": "deal.won", "filter": "x", "actions": [], "cooldown": "1h"}),
    )
    .unwrap();
    assert_eq!(body["trigger"], json!({"event": "deal.won", "filter": "x"}));
    assert_eq!(body["cooldown"], "1h");
}

#[test]
fn every_tool_has_a_closed_object_schema() {
    for tool in Aura::tools() {
        assert_eq!(tool.input_schema["type"], "object", "{}", tool.name);
        assert_eq!(
            tool.input_schema["additionalProperties"], false,
            "{}",
            tool.name
        );
        assert!(tool.description.len() > 40, "{}", tool.name);
    }
    assert_eq!(Aura::tools().len(), 11);
}
