//! The test host's `events` and `workflows`: it checks what the real host checks that
//! a plugin can get wrong (grant, type syntax, payload shape and size, the host's
//! namespaces), records what was emitted and started, and answers a repeated
//! idempotency key with the first execution, as the host does.
#![cfg_attr(target_arch = "wasm32", allow(dead_code))]

use serde_json::{Value, json};

use super::{HOST, TestHost};
use crate::Error;
use crate::events::{Event, MAX_PAYLOAD_BYTES, MAX_SUBJECT_CHARS};

/// First segments of the host's own event types when this SDK was made (its catalogue
/// plus the names it keeps); the host's list is the one that counts.
const HOST_NAMESPACES: &[&str] = &[
    "agent",
    "agenthost",
    "approval",
    "automation",
    "data",
    "deal",
    "event",
    "events",
    "host",
    "kb",
    "llm",
    "plugin",
    "rule",
    "schedule",
    "system",
    "ticket",
    "webhook",
    "workflow",
];

/// Grants and records of the two interfaces.
#[derive(Debug, Clone, Default)]
pub(super) struct Automation {
    event_grant: Option<Vec<String>>,
    emitted: Vec<Event>,
    workflow_grant: Option<Vec<String>>,
    started: Vec<StartedWorkflow>,
}

/// A start the test host recorded ([`super::started_workflows`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StartedWorkflow {
    /// The execution id the test host made up (`test-execution-1`, ...).
    pub execution_id: String,
    /// The workflow as the plugin named it.
    pub workflow: String,
    /// The input.
    pub input: Value,
    /// The idempotency key, if one was given.
    pub idempotency_key: Option<String>,
}

impl TestHost {
    /// Grant `events.emit` for these types or prefixes (`acme.invoice`, `custom.*`,
    /// `*`), as `capabilities.events.types` does. Without it, emitting is `denied`.
    /// Emitted events are in [`super::emitted_events`].
    pub fn events(mut self, types: &[&str]) -> Self {
        self.automation.event_grant = Some(types.iter().map(|t| t.to_string()).collect());
        self
    }

    /// Grant `workflows.start` for these workflow slugs (or `*`), as
    /// `capabilities.workflows.workflows` does. Without it, starting is `denied`.
    /// Starts are in [`super::started_workflows`]; every granted workflow exists.
    pub fn workflows(mut self, slugs: &[&str]) -> Self {
        self.automation.workflow_grant = Some(slugs.iter().map(|s| s.to_string()).collect());
        self
    }
}

fn with_automation<R>(f: impl FnOnce(&mut Automation) -> Result<R, Error>) -> Result<R, Error> {
    HOST.with(|host| {
        let mut host = host.borrow_mut();
        let host = host
            .as_mut()
            .ok_or_else(|| Error::Unavailable("no TestHost installed on this thread".into()))?;
        f(&mut host.automation)
    })
}

/// A type or a prefix of whole segments selects `kind`, as the host matches them.
fn selects(pattern: &str, kind: &str) -> bool {
    let bare = pattern.strip_suffix(".*").unwrap_or(pattern);
    pattern == "*"
        || kind == bare
        || kind
            .strip_prefix(bare)
            .is_some_and(|rest| rest.starts_with('.'))
}

fn is_event_type(kind: &str) -> bool {
    kind.len() <= 200
        && kind.contains('.')
        && kind.split('.').all(|part| {
            part.starts_with(|c: char| c.is_ascii_lowercase())
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
}

pub(crate) fn record_event(
    kind: &str,
    payload: &Value,
    subject: Option<&str>,
) -> Result<(), Error> {
    with_automation(|automation| {
        let grant = automation.event_grant.as_ref().ok_or_else(|| {
            Error::Denied("the TestHost grants no event types (TestHost::events)".into())
        })?;
        if !is_event_type(kind) {
            return Err(Error::Invalid(format!(
                "event type {kind:?} must be at least two dot-separated segments of lower-case \
                 letters, digits and '_', each starting with a letter"
            )));
        }
        let root = kind.split('.').next().unwrap_or(kind);
        if HOST_NAMESPACES.contains(&root) {
            return Err(Error::Denied(format!(
                "event type {kind:?} is in the host's own namespace {root:?}"
            )));
        }
        if !grant.iter().any(|pattern| selects(pattern, kind)) {
            return Err(Error::Denied(format!(
                "event type {kind:?} is not granted (granted: {})",
                grant.join(", ")
            )));
        }
        if !payload.is_object() {
            return Err(Error::Invalid("the payload must be a JSON object".into()));
        }
        let size = payload.to_string().len();
        if size > MAX_PAYLOAD_BYTES {
            return Err(Error::Invalid(format!(
                "the payload is {size} bytes of JSON, more than the {MAX_PAYLOAD_BYTES} an event may carry"
            )));
        }
        if subject.is_some_and(|s| s.chars().count() > MAX_SUBJECT_CHARS) {
            return Err(Error::Invalid(format!(
                "the subject is longer than {MAX_SUBJECT_CHARS} characters"
            )));
        }
        automation.emitted.push(Event {
            event_type: kind.to_string(),
            payload: payload.clone(),
            subject: subject.map(str::to_string),
        });
        Ok(())
    })
}

pub(crate) fn start_workflow(
    workflow: &str,
    input: &Value,
    key: Option<&str>,
) -> Result<Value, Error> {
    with_automation(|automation| {
        let grant = automation.workflow_grant.as_ref().ok_or_else(|| {
            Error::Denied("the TestHost grants no workflows (TestHost::workflows)".into())
        })?;
        if !grant.iter().any(|w| w == "*" || w == workflow) {
            return Err(Error::Denied(format!(
                "workflow {workflow:?} is not granted (granted: {})",
                grant.join(", ")
            )));
        }
        if let Some(key) = key
            && let Some(first) = automation
                .started
                .iter()
                .find(|s| s.workflow == workflow && s.idempotency_key.as_deref() == Some(key))
        {
            return Ok(
                json!({"execution_id": first.execution_id, "status": "running", "new": false}),
            );
        }
        let execution_id = format!("test-execution-{}", automation.started.len() + 1);
        automation.started.push(StartedWorkflow {
            execution_id: execution_id.clone(),
            workflow: workflow.to_string(),
            input: input.clone(),
            idempotency_key: key.map(str::to_string),
        });
        Ok(json!({"execution_id": execution_id, "status": "running", "new": true}))
    })
}

/// Events emitted so far on this thread.
pub fn emitted_events() -> Vec<Event> {
    with_automation(|automation| Ok(automation.emitted.clone())).unwrap_or_default()
}

/// Workflows started so far on this thread (a repeated key is not a new start).
pub fn started_workflows() -> Vec<StartedWorkflow> {
    with_automation(|automation| Ok(automation.started.clone())).unwrap_or_default()
}
