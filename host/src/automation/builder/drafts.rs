//! Drafts: a workflow definition saved but not live, one per workflow slug, as Zapier
//! and n8n keep an editable copy beside the published version. A draft is validated
//! when saved (an invalid one is not stored), test-run through a hidden workflow owned
//! by `draft:<slug>` with its triggers left out, and published as the workflow's next
//! version by a person with the REST API's role for it.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::{audit, explain, problems_error, waiting};
use crate::capabilities::automation::Caller;
use crate::capabilities::workflows::from_api;
use crate::runtime::bindings::Error;
use crate::workflows::definition::{self, Definition};
use crate::workflows::store::{self as workflows, WorkflowInput};
use crate::workflows::{Engine, StartOptions};

/// A saved draft.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = WorkflowDraft)]
pub struct Draft {
    pub slug: String,
    pub name: String,
    pub description: String,
    #[schema(value_type = Object)]
    pub definition: Value,
    pub updated_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    #[serde(skip)]
    #[schema(ignore)]
    pub test_workflow_id: Option<Uuid>,
}

/// What `save-draft` takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DraftInput {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    definition: Value,
}

const COLUMNS: &str =
    "slug, name, description, definition, updated_by, created_at, updated_at, test_workflow_id";

pub async fn get(pool: &PgPool, workspace: Uuid, slug: &str) -> sqlx::Result<Option<Draft>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM workflow_drafts WHERE workspace_id = $1 AND slug = $2"
    )))
    .bind(workspace)
    .bind(slug)
    .fetch_optional(pool)
    .await
}

pub async fn list(pool: &PgPool, workspace: Uuid) -> sqlx::Result<Vec<Draft>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM workflow_drafts WHERE workspace_id = $1 ORDER BY updated_at DESC"
    )))
    .bind(workspace)
    .fetch_all(pool)
    .await
}

/// Discard a draft; whether there was one.
pub async fn delete(pool: &PgPool, workspace: Uuid, slug: &str) -> sqlx::Result<bool> {
    let deleted = sqlx::query("DELETE FROM workflow_drafts WHERE workspace_id = $1 AND slug = $2")
        .bind(workspace)
        .bind(slug)
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected() > 0)
}

fn db(error: sqlx::Error) -> Error {
    from_api(error.into())
}

fn is_slug(text: &str) -> bool {
    (1..=63).contains(&text.len())
        && text.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn link(slug: &str) -> String {
    format!("/api/workflows/{slug}")
}

fn draft_link(slug: &str) -> String {
    format!("/api/workflow-drafts/{slug}")
}

/// The published workflow `slug`, unless it is a schedule's or rule's own.
async fn published(
    pool: &PgPool,
    workspace: Uuid,
    slug: &str,
) -> Result<Option<workflows::Workflow>, Error> {
    let owner: Option<Option<String>> =
        sqlx::query_scalar("SELECT owner FROM workflows WHERE workspace_id = $1 AND slug = $2")
            .bind(workspace)
            .bind(slug)
            .fetch_optional(pool)
            .await
            .map_err(db)?;
    match owner {
        None => Ok(None),
        Some(Some(_)) => Err(Error::Invalid(format!(
            "{slug:?} is the internal workflow of a schedule or rule; choose another slug"
        ))),
        Some(None) => workflows::get_workflow(pool, workspace, slug)
            .await
            .map(Some)
            .map_err(from_api),
    }
}

/// `list-workflows`: what is live and what is drafted.
pub async fn list_all(pool: &PgPool, workspace: Uuid) -> Result<Value, Error> {
    let live = workflows::list_workflows(pool, workspace)
        .await
        .map_err(from_api)?;
    let drafted = list(pool, workspace).await.map_err(db)?;
    Ok(json!({
        "workflows": live.iter().take(100).map(|w| json!({
            "slug": w.slug, "name": w.name, "version": w.latest_version, "enabled": w.enabled,
            "link": link(&w.slug),
        })).collect::<Vec<_>>(),
        "drafts": drafted.iter().take(100).map(|d| json!({
            "slug": d.slug, "name": d.name, "updated_at": d.updated_at, "link": draft_link(&d.slug),
        })).collect::<Vec<_>>(),
    }))
}

/// `get-workflow`: the draft and the published version side by side.
pub async fn show(pool: &PgPool, workspace: Uuid, slug: &str) -> Result<Value, Error> {
    let draft = get(pool, workspace, slug).await.map_err(db)?;
    let live = if is_slug(slug) || Uuid::parse_str(slug).is_ok() {
        match workflows::get_workflow(pool, workspace, slug).await {
            Ok(found) => Some(found),
            Err(crate::error::ApiError::NotFound(_)) => None,
            Err(other) => return Err(from_api(other)),
        }
    } else {
        None
    };
    if draft.is_none() && live.is_none() {
        return Err(Error::NotFound(format!(
            "there is no workflow or draft {slug:?}; list_automations shows what exists"
        )));
    }
    let published = match &live {
        Some(workflow) => {
            let version = workflows::get_version(pool, workflow.id, workflow.latest_version)
                .await
                .map_err(from_api)?;
            json!({
                "name": workflow.name,
                "version": workflow.latest_version,
                "enabled": workflow.enabled,
                "definition": version.definition,
                "link": link(&workflow.slug),
            })
        }
        None => Value::Null,
    };
    let draft = draft.map(|d| {
        json!({
            "name": d.name,
            "description": d.description,
            "definition": d.definition,
            "updated_at": d.updated_at,
            "summary": explain::definition_summary(&d.definition),
            "link": draft_link(&d.slug),
        })
    });
    Ok(json!({"slug": slug, "draft": draft, "published": published}))
}

/// `save-draft`: validate, then store; an invalid draft stores nothing.
pub async fn save(
    engine: &Engine,
    caller: &Caller,
    slug: &str,
    draft: Value,
) -> Result<Value, Error> {
    if !is_slug(slug) {
        return Err(Error::Invalid(format!(
            "workflow {slug:?} is not a slug: use 1-63 lowercase letters, digits and `-` \
             (e.g. daily-revenue-report)"
        )));
    }
    let input: DraftInput = serde_json::from_value(draft).map_err(|e| {
        Error::Invalid(format!(
            "the draft must be {{\"name\", \"description\"?, \"definition\"}}: {e}"
        ))
    })?;
    let pool = engine.pool();
    let existing = published(pool, caller.workspace, slug).await?;
    let lookup = workflows::node_type_lookup(engine.registry());
    if let Err(problems) = definition::validate(&input.definition, &lookup) {
        return Err(problems_error("the draft", &problems));
    }
    let name = input
        .name
        .filter(|n| !n.trim().is_empty())
        .or_else(|| existing.as_ref().map(|w| w.name.clone()))
        .unwrap_or_else(|| slug.replace('-', " "));
    if name.chars().count() > 200 {
        return Err(Error::Invalid("name must be at most 200 characters".into()));
    }
    let description = input
        .description
        .or_else(|| existing.as_ref().map(|w| w.description.clone()))
        .unwrap_or_default();
    sqlx::query(
        "INSERT INTO workflow_drafts (workspace_id, slug, name, description, definition, updated_by) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (workspace_id, slug) DO UPDATE SET name = EXCLUDED.name, \
             description = EXCLUDED.description, definition = EXCLUDED.definition, \
             updated_by = EXCLUDED.updated_by, updated_at = now()",
    )
    .bind(caller.workspace)
    .bind(slug)
    .bind(&name)
    .bind(&description)
    .bind(&input.definition)
    .bind(caller.actor())
    .execute(pool)
    .await
    .map_err(db)?;
    let next = match &existing {
        Some(w) => format!(
            "publishing makes it version {} of {:?}",
            w.latest_version + 1,
            w.name
        ),
        None => "publishing creates the workflow".to_string(),
    };
    Ok(json!({
        "slug": slug,
        "saved": true,
        "summary": format!(
            "Draft {name:?} saved (not live). {} Test it with test_draft; {next}.",
            explain::definition_summary(&input.definition)
        ),
        "link": draft_link(slug),
    }))
}

async fn saved(pool: &PgPool, workspace: Uuid, slug: &str) -> Result<Draft, Error> {
    get(pool, workspace, slug)
        .await
        .map_err(db)?
        .ok_or_else(|| {
            Error::NotFound(format!(
                "there is no draft {slug:?}: save one with save_draft first"
            ))
        })
}

/// The draft's definition checked against the node types active now.
fn checked(engine: &Engine, raw: &Value) -> Result<Definition, Error> {
    let lookup = workflows::node_type_lookup(engine.registry());
    definition::validate(raw, &lookup).map_err(|problems| problems_error("the draft", &problems))
}

/// `test-draft`: run the draft once, triggers left out, as a hidden workflow's
/// execution, and wait a little for it.
pub async fn test(
    engine: &Engine,
    caller: &Caller,
    slug: &str,
    input: Value,
    wait_ms: u32,
) -> Result<Value, Error> {
    let pool = engine.pool();
    let draft = saved(pool, caller.workspace, slug).await?;
    let mut raw = draft.definition.clone();
    if let Some(object) = raw.as_object_mut() {
        // A test run must not schedule, subscribe or open a webhook.
        object.remove("triggers");
    }
    let definition = checked(engine, &raw)?;
    let mut tx = pool.begin().await.map_err(db)?;
    let existing: Option<Uuid> = match draft.test_workflow_id {
        Some(id) => sqlx::query_scalar("SELECT id FROM workflows WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?,
        None => None,
    };
    let test_name = format!("Test of draft {}", draft.name);
    let workflow = match existing {
        Some(id) => {
            workflows::save_owned_version(&mut tx, id, &test_name, &definition)
                .await
                .map_err(from_api)?;
            id
        }
        None => {
            let owner = format!("draft:{slug}");
            let id =
                workflows::save_owned(&mut tx, caller.workspace, &owner, &test_name, &definition)
                    .await
                    .map_err(from_api)?;
            sqlx::query(
                "UPDATE workflow_drafts SET test_workflow_id = $3 WHERE workspace_id = $1 AND slug = $2",
            )
            .bind(caller.workspace)
            .bind(slug)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            id
        }
    };
    tx.commit().await.map_err(db)?;
    let options = StartOptions {
        idempotency_key: None,
        actor: Some(caller.actor()),
    };
    let (execution, _) = engine
        .start_execution(caller.workspace, &workflow.to_string(), input, options)
        .await
        .map_err(from_api)?;
    let id = waiting::until_done(engine, caller, execution.id, wait_ms).await?;
    explain::execution(pool, caller.workspace, id).await
}

/// `publish-draft`: the draft becomes the workflow's next version (or version 1), its
/// triggers live; the draft is dropped.
pub async fn publish(engine: &Engine, caller: &Caller, slug: &str) -> Result<Value, Error> {
    let pool = engine.pool();
    let draft = saved(pool, caller.workspace, slug).await?;
    let definition = checked(engine, &draft.definition)?;
    let key = caller.on_behalf.as_ref().and_then(|p| p.key_id);
    let input = WorkflowInput {
        slug: Some(slug.to_string()),
        name: Some(draft.name.clone()),
        description: Some(draft.description.clone()),
        enabled: None,
        definition: Some(draft.definition.clone()),
    };
    let workflow = match published(pool, caller.workspace, slug).await? {
        Some(_) => {
            let changes = WorkflowInput {
                slug: None,
                ..input
            };
            workflows::update_workflow(
                pool,
                caller.workspace,
                slug,
                key,
                &changes,
                Some(&definition),
            )
            .await
        }
        None => workflows::create_workflow(pool, caller.workspace, key, &input, &definition).await,
    }
    .map_err(from_api)?;
    delete(pool, caller.workspace, slug).await.map_err(db)?;
    audit(pool, caller, "workflow.published", slug).await;
    let schedules =
        crate::automation::schedules::store::list(pool, caller.workspace, Some(workflow.id))
            .await
            .map_err(from_api)?;
    let next_runs: Vec<Value> = schedules
        .iter()
        .filter(|s| s.kind == "trigger")
        .filter_map(|s| {
            s.next_run_at
                .map(|at| explain::when(at, s.schedule.timezone.as_deref()))
        })
        .map(Value::String)
        .collect();
    let when = match next_runs.first() {
        Some(first) => format!(
            " Its schedule next runs {}.",
            first.as_str().unwrap_or_default()
        ),
        None => String::new(),
    };
    Ok(json!({
        "slug": workflow.slug,
        "version": workflow.latest_version,
        "summary": format!(
            "Published {:?} as version {}: it is live now.{when} {}",
            workflow.name,
            workflow.latest_version,
            explain::definition_summary(&draft.definition)
        ),
        "next_runs": next_runs,
        "link": link(&workflow.slug),
    }))
}
