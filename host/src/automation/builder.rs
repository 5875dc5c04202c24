//! The host's side of the `automation` interface (wit/automation.wit), which Aura's
//! tools call: each request is done by the service the REST API uses for the same
//! thing (definition validation, the workflow store, the engine, schedules, rules,
//! approvals), so there is no second implementation. What is new here: drafts (saved
//! definitions that are not live), test runs of a draft, and answers written for a
//! model and a person to read (names, summaries, links; problems as lines with paths).
//!
//! The scope and role checks happened before a request gets here
//! (`capabilities::automation`).

pub mod catalog;
pub mod drafts;
pub mod explain;
mod waiting;

use std::sync::Weak;

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::capabilities::automation::{AutomationService, Caller, Request, ServiceFuture};
use crate::capabilities::workflows::from_api;
use crate::runtime::bindings::Error;
use crate::workflows::Engine;
use crate::workflows::definition::Problem;

/// The real automation service.
#[derive(Debug)]
pub struct Builder {
    pub engine: Weak<Engine>,
    pub pool: PgPool,
}

/// Problems as the model reads them: one line each, with where, and what to do.
pub fn problems_error(what: &str, problems: &[Problem]) -> Error {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| {
            if p.path.is_empty() {
                format!("- {}", p.message)
            } else {
                format!("- {}: {}", p.path, p.message)
            }
        })
        .collect();
    Error::Invalid(format!(
        "{what} has {} problem{}; fix each one and try again (nothing was saved):\n{}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        lines.join("\n")
    ))
}

/// A JSON argument as a typed request body; serde's message names the field.
fn body<T: serde::de::DeserializeOwned>(what: &str, value: Value) -> Result<T, Error> {
    serde_json::from_value(value).map_err(|e| Error::Invalid(format!("{what}: {e}")))
}

impl AutomationService for Builder {
    fn handle<'a>(&'a self, caller: &'a Caller, request: Request) -> ServiceFuture<'a> {
        Box::pin(async move {
            let engine = self
                .engine
                .upgrade()
                .ok_or_else(|| Error::Unavailable("the host is shutting down".into()))?;
            let pool = &self.pool;
            let workspace = caller.workspace;
            match request {
                Request::SearchNodeTypes { query, limit } => {
                    catalog::search(engine.registry(), &query, limit as usize).await
                }
                Request::ListWorkflows => drafts::list_all(pool, workspace).await,
                Request::GetWorkflow { workflow } => drafts::show(pool, workspace, &workflow).await,
                Request::ValidateDefinition { definition } => {
                    let lookup = crate::workflows::store::node_type_lookup(engine.registry());
                    Ok(
                        match crate::workflows::definition::validate(&definition, &lookup) {
                            Ok(_) => json!({"valid": true, "problems": []}),
                            Err(problems) => json!({"valid": false, "problems": problems}),
                        },
                    )
                }
                Request::SaveDraft { workflow, draft } => {
                    drafts::save(&engine, caller, &workflow, draft).await
                }
                Request::TestDraft {
                    workflow,
                    input,
                    wait_ms,
                } => drafts::test(&engine, caller, &workflow, input, wait_ms).await,
                Request::PublishDraft { workflow } => {
                    drafts::publish(&engine, caller, &workflow).await
                }
                Request::RunWorkflow {
                    workflow,
                    input,
                    wait_ms,
                } => {
                    let options = crate::workflows::StartOptions {
                        idempotency_key: None,
                        actor: Some(caller.actor()),
                    };
                    let (execution, _) = engine
                        .start_execution(workspace, &workflow, input, options)
                        .await
                        .map_err(from_api)?;
                    let id = waiting::until_done(&engine, caller, execution.id, wait_ms).await?;
                    explain::execution(pool, workspace, id).await
                }
                Request::GetExecution { execution } => {
                    explain::execution(pool, workspace, execution).await
                }
                Request::ListSchedules => explain::schedules(pool, workspace).await,
                Request::CreateSchedule { schedule } => {
                    let input: crate::automation::schedules::tasks::TaskInput =
                        body("schedule", schedule)?;
                    let created = crate::automation::schedules::tasks::create(
                        pool,
                        engine.registry(),
                        workspace,
                        &caller.actor(),
                        &input,
                    )
                    .await
                    .map_err(|problems| problems_error("the schedule", &problems))?
                    .map_err(from_api)?;
                    audit(pool, caller, "schedule.created", &created.id.to_string()).await;
                    explain::schedule_answer(pool, &created, "Created").await
                }
                Request::SetSchedulePaused { schedule, paused } => {
                    let changed = crate::automation::schedules::store::set_paused(
                        pool, workspace, schedule, paused,
                    )
                    .await
                    .map_err(from_api)?;
                    let action = if paused {
                        "schedule.paused"
                    } else {
                        "schedule.resumed"
                    };
                    audit(pool, caller, action, &schedule.to_string()).await;
                    let verb = if paused { "Paused" } else { "Resumed" };
                    explain::schedule_answer(pool, &changed, verb).await
                }
                Request::ListRules => explain::rules(pool, workspace).await,
                Request::CreateRule { rule } => {
                    let input: crate::automation::rules::def::RuleInput = body("rule", rule)?;
                    let created = crate::automation::rules::store::create(
                        pool,
                        engine.registry(),
                        workspace,
                        &caller.actor(),
                        &input,
                    )
                    .await
                    .map_err(|problems| problems_error("the rule", &problems))?
                    .map_err(from_api)?;
                    audit(pool, caller, "rule.created", &created.id.to_string()).await;
                    Ok(explain::rule_answer(&created, "Created"))
                }
                Request::ListApprovals => explain::approvals(pool, workspace).await,
            }
        })
    }
}

/// One audit row: done by `plugin:<name>` for the person. A failed write is logged,
/// not returned: the change it records has happened.
pub(crate) async fn audit(pool: &PgPool, caller: &Caller, action: &str, target: &str) {
    let details = json!({
        "plugin": caller.plugin,
        "on_behalf_of": caller.on_behalf.as_ref().map(|p| p.actor.clone()),
    });
    let written = sqlx::query(
        "INSERT INTO audit_log (actor, workspace_id, action, target, details, request_id) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(caller.actor())
    .bind(caller.workspace)
    .bind(action)
    .bind(target)
    .bind(details)
    .bind(&caller.request_id)
    .execute(pool)
    .await;
    if let Err(error) = written {
        tracing::warn!(%error, action, "the audit row of an automation change was not written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_read_as_lines_with_their_paths() {
        let error = problems_error(
            "the draft",
            &[
                Problem::at("nodes[1].config.to", "is required"),
                Problem::at("", "expected an object"),
            ],
        );
        let Error::Invalid(text) = error else {
            panic!("not invalid")
        };
        assert!(text.starts_with("the draft has 2 problems"), "{text}");
        assert!(
            text.contains("\n- nodes[1].config.to: is required"),
            "{text}"
        );
        assert!(text.contains("\n- expected an object"), "{text}");
    }
}
