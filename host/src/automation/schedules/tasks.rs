//! Scheduled tasks: a schedule plus one action. `run_workflow` starts that workflow;
//! every other action runs as a node in a workflow of the task's own (crate::automation
//! ::actions), so a task's runs are executions like any other.

use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::spec::ScheduleSpec;
use super::store::{self, Schedule};
use crate::automation::actions::{self, NodeSettings};
use crate::error::{ApiError, ApiResult};
use crate::registry::Registry;
use crate::workflows::definition::Problem;
use crate::workflows::store as workflows;

/// A scheduled task as created or changed.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskInput {
    /// 1-200 characters; required to create.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// When it runs; required to create.
    #[serde(default)]
    pub schedule: Option<ScheduleSpec>,
    /// What it does: `{"type": "run_workflow", "workflow", "input"?}`, `send_email`,
    /// `call_url`, `message_agent`, `emit_event`, `create_ticket`, `update_ticket`
    /// (docs/automation.md, Actions); required to create.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub action: Option<Value>,
    /// Retries of a failed action (the engine's policy: `max_attempts`,
    /// `initial_interval`, `backoff_coefficient`…); default 3 attempts from 10 s.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub retry: Option<Value>,
}

/// The action's target: a workflow of the user's, or a definition to own.
enum Target {
    Workflow { id: Uuid, input: Value },
    Own(crate::workflows::definition::Definition),
}

fn default_retry() -> Value {
    json!({"max_attempts": 3, "initial_interval": "10s", "backoff_coefficient": 3.0})
}

async fn target(
    pool: &PgPool,
    registry: &Registry,
    workspace: Uuid,
    action: &Value,
    retry: Option<&Value>,
) -> Result<Target, Vec<Problem>> {
    let kind = action
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if actions::canonical(kind) == Some("trigger_workflow") {
        let workflow = action
            .get("workflow")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let input = action.get("input").cloned().unwrap_or_else(|| json!({}));
        if !input.is_object() {
            return Err(vec![Problem::at("action.input", "must be a JSON object")]);
        }
        return match workflows::get_workflow(pool, workspace, workflow).await {
            Ok(found) => Ok(Target::Workflow {
                id: found.id,
                input,
            }),
            Err(_) => Err(vec![Problem::at(
                "action.workflow",
                format!("no workflow {workflow:?} in this workspace"),
            )]),
        };
    }
    let settings = NodeSettings {
        retry: Some(retry.cloned().unwrap_or_else(default_retry)),
        ..Default::default()
    };
    let lookup = workflows::node_type_lookup(registry);
    let definition = actions::compile(std::slice::from_ref(action), "action", &settings, &lookup)
        .map_err(|problems| {
        // One action: `action[0].to` reads better as `action.to`.
        problems
            .into_iter()
            .map(|p| Problem::at(p.path.replacen("action[0]", "action", 1), p.message))
            .collect::<Vec<_>>()
    })?;
    Ok(Target::Own(definition))
}

fn required<'a, T>(
    value: &'a Option<T>,
    field: &str,
    problems: &mut Vec<Problem>,
) -> Option<&'a T> {
    if value.is_none() {
        problems.push(Problem::at(field, "is required"));
    }
    value.as_ref()
}

/// A new task; `Err` carries every problem at once.
pub async fn create(
    pool: &PgPool,
    registry: &Registry,
    workspace: Uuid,
    actor: &str,
    input: &TaskInput,
) -> Result<ApiResult<Schedule>, Vec<Problem>> {
    let mut problems = Vec::new();
    let name = required(&input.name, "name", &mut problems);
    let spec = required(&input.schedule, "schedule", &mut problems);
    let action = required(&input.action, "action", &mut problems);
    check_text(input, &mut problems);
    if let Some(spec) = spec {
        check_spec(spec, &mut problems);
    }
    let target = match action {
        Some(action) => match target(pool, registry, workspace, action, input.retry.as_ref()).await
        {
            Ok(target) => Some(target),
            Err(found) => {
                problems.extend(found);
                None
            }
        },
        None => None,
    };
    let (Some(name), Some(spec), Some(action), Some(target), true) =
        (name, spec, action, target, problems.is_empty())
    else {
        return Err(problems);
    };
    Ok(insert(pool, workspace, actor, name, input, spec, action, target).await)
}

#[allow(clippy::too_many_arguments)]
async fn insert(
    pool: &PgPool,
    workspace: Uuid,
    actor: &str,
    name: &str,
    input: &TaskInput,
    spec: &ScheduleSpec,
    action: &Value,
    target: Target,
) -> ApiResult<Schedule> {
    let id = Uuid::new_v4();
    let mut tx = pool.begin().await?;
    let (workflow, run_input) = match target {
        Target::Workflow { id, input } => (id, input),
        Target::Own(definition) => {
            let owner = format!("schedule:{id}");
            let workflow =
                workflows::save_owned(&mut tx, workspace, &owner, name, &definition).await?;
            (workflow, json!({}))
        }
    };
    let description = input.description.as_deref().unwrap_or_default();
    store::insert_task(
        &mut tx,
        id,
        workspace,
        workflow,
        name,
        description,
        spec,
        action,
        &run_input,
        actor,
    )
    .await?;
    tx.commit().await?;
    store::get(pool, workspace, id).await
}

fn check_text(input: &TaskInput, problems: &mut Vec<Problem>) {
    if input
        .name
        .as_ref()
        .is_some_and(|n| n.trim().is_empty() || n.chars().count() > 200)
    {
        problems.push(Problem::at("name", "must be 1-200 characters"));
    }
    if input
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 2000)
    {
        problems.push(Problem::at(
            "description",
            "must be at most 2000 characters",
        ));
    }
}

fn check_spec(spec: &ScheduleSpec, problems: &mut Vec<Problem>) {
    if let Err(found) = spec.check("schedule") {
        problems.extend(found);
    }
    if spec.input.is_some() {
        problems.push(Problem::at(
            "schedule.input",
            "a task's input goes in its action (`action.input` of `run_workflow`)",
        ));
    }
}

/// Change a task's name, schedule or action. A workflow's trigger is changed in the
/// workflow's definition.
pub async fn update(
    pool: &PgPool,
    registry: &Registry,
    workspace: Uuid,
    id: Uuid,
    input: &TaskInput,
) -> ApiResult<Result<Schedule, Vec<Problem>>> {
    let current = store::get(pool, workspace, id).await?;
    if current.kind == "trigger" {
        return Err(ApiError::Conflict(format!(
            "this schedule is a trigger of workflow {:?}: change it in the workflow's definition",
            current.workflow
        )));
    }
    let mut problems = Vec::new();
    check_text(input, &mut problems);
    if let Some(spec) = &input.schedule {
        check_spec(spec, &mut problems);
    }
    let name = input.name.clone().unwrap_or(current.name.clone());
    let action = input
        .action
        .clone()
        .or(current.action.clone())
        .unwrap_or_default();
    let target = if input.action.is_some() || input.retry.is_some() {
        match target(pool, registry, workspace, &action, input.retry.as_ref()).await {
            Ok(target) => Some(target),
            Err(found) => {
                problems.extend(found);
                None
            }
        }
    } else {
        None
    };
    if !problems.is_empty() {
        return Ok(Err(problems));
    }
    let owner = format!("schedule:{id}");
    let mut tx = pool.begin().await?;
    let owned: Option<Uuid> = sqlx::query_scalar(
        "SELECT w.id FROM schedules s JOIN workflows w ON w.id = s.workflow_id \
         WHERE s.id = $1 AND w.owner = $2 FOR NO KEY UPDATE OF s",
    )
    .bind(id)
    .bind(&owner)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(target) = target {
        let (workflow, run_input) = match (target, owned) {
            (Target::Workflow { id, input }, _) => (id, input),
            (Target::Own(definition), Some(workflow)) => {
                workflows::save_owned_version(&mut tx, workflow, &name, &definition).await?;
                (workflow, json!({}))
            }
            (Target::Own(definition), None) => {
                let workflow =
                    workflows::save_owned(&mut tx, workspace, &owner, &name, &definition).await?;
                (workflow, json!({}))
            }
        };
        sqlx::query("UPDATE schedules SET workflow_id = $2, input = $3, action = $4 WHERE id = $1")
            .bind(id)
            .bind(workflow)
            .bind(&run_input)
            .bind(&action)
            .execute(&mut *tx)
            .await?;
        if let Some(old) = owned.filter(|old| *old != workflow) {
            sqlx::query("DELETE FROM workflows WHERE id = $1")
                .bind(old)
                .execute(&mut *tx)
                .await?;
        }
    }
    if let Some(spec) = &input.schedule {
        store::respec(&mut tx, id, spec).await?;
    }
    sqlx::query(
        "UPDATE schedules SET name = $2, description = coalesce($3, description), updated_at = now() \
         WHERE id = $1",
    )
    .bind(id)
    .bind(&name)
    .bind(&input.description)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Ok(store::get(pool, workspace, id).await?))
}

/// Delete a task (and the workflow its action ran as; its executions go with it).
pub async fn delete(pool: &PgPool, workspace: Uuid, id: Uuid) -> ApiResult<()> {
    let current = store::get(pool, workspace, id).await?;
    if current.kind == "trigger" {
        return Err(ApiError::Conflict(format!(
            "this schedule is a trigger of workflow {:?}: remove it from the workflow's definition",
            current.workflow
        )));
    }
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM schedules WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM workflows WHERE id = $1 AND owner = $2")
        .bind(current.workflow_id)
        .bind(format!("schedule:{id}"))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
