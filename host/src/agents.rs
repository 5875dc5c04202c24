//! Agents: a system prompt, a model and a set of plugin tools, per workspace.
//! Dexter, Cassie and Aura are created with every workspace (migration 0007).

pub mod ai_sdk;
pub mod approvals;
pub mod chat;
pub mod conversations;
pub mod openai_compat;
pub mod runner;
pub mod stream;
pub mod usage;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgExecutor;
use sqlx::types::Json;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::registry::{Registry, ToolInfo};

/// A plugin tool an agent may call, optionally pinned to one version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolRef {
    pub plugin: String,
    pub tool: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// A call of this tool pauses the turn until a person approves or denies it
    /// (docs/ai-sdk.md, "Approvals").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requires_approval: bool,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Agent {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub slug: String,
    pub name: String,
    pub role: String,
    pub system_prompt: String,
    pub model: Option<String>,
    pub temperature: Option<f32>,
    pub tools: Json<Vec<ToolRef>>,
    pub max_steps: Option<i32>,
    pub enabled: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// Fields of a create or update; absent fields keep their value on update.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentChanges {
    /// 1-63 lowercase letters, digits or `-`, not starting with `-`.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,62}$")]
    pub slug: Option<String>,
    /// 1-200 characters, not only spaces.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: Option<String>,
    pub role: Option<String>,
    /// Up to 32 768 characters.
    #[schema(max_length = 32768)]
    pub system_prompt: Option<String>,
    /// `null` clears it (back to the host default).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub model: Option<Option<String>>,
    /// 0 to 2; `null` resets it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<f32>, minimum = 0.0, maximum = 2.0)]
    pub temperature: Option<Option<f32>>,
    /// Up to 64, each with its own `tool` name.
    #[schema(max_items = 64)]
    pub tools: Option<Vec<ToolRef>>,
    /// 1 to 50; `null` resets it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 50)]
    pub max_steps: Option<Option<i32>>,
    pub enabled: Option<bool>,
}

/// Tells "absent" (outer None) from "null" (Some(None)).
fn nullable<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

const MAX_PROMPT: usize = 32 * 1024;
const MAX_TOOLS: usize = 64;

impl AgentChanges {
    pub fn validate(&self) -> ApiResult<()> {
        let invalid = |m: String| Err(ApiError::Invalid(m));
        if let Some(slug) = &self.slug
            && !crate::workspaces::is_valid_slug(slug)
        {
            return invalid(format!(
                "slug {slug:?} must be 1-63 lowercase letters, digits or '-', not starting with '-'"
            ));
        }
        if let Some(name) = &self.name
            && (name.trim().is_empty() || name.chars().count() > 200)
        {
            return invalid("name must be 1-200 characters".into());
        }
        if self
            .system_prompt
            .as_ref()
            .is_some_and(|p| p.chars().count() > MAX_PROMPT)
        {
            return invalid(format!(
                "system_prompt is longer than {MAX_PROMPT} characters"
            ));
        }
        if let Some(Some(t)) = self.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return invalid(format!("temperature {t} must be between 0 and 2"));
        }
        if let Some(Some(steps)) = self.max_steps
            && !(1..=50).contains(&steps)
        {
            return invalid(format!("max_steps {steps} must be between 1 and 50"));
        }
        if let Some(tools) = &self.tools {
            if tools.len() > MAX_TOOLS {
                return invalid(format!("an agent may have at most {MAX_TOOLS} tools"));
            }
            let mut names = std::collections::HashSet::new();
            for tool in tools {
                // The model sees tools by name, so two with one name would be ambiguous.
                if !names.insert(&tool.tool) {
                    return invalid(format!("two tools are named {:?}", tool.tool));
                }
            }
        }
        Ok(())
    }
}

macro_rules! agent_columns {
    () => {
        "id, workspace_id, slug, name, role, system_prompt, model, temperature, tools, \
         max_steps, enabled, created_at, updated_at"
    };
}

/// An agent by id or slug.
pub async fn get<'e>(
    db: impl PgExecutor<'e>,
    workspace: Uuid,
    id_or_slug: &str,
) -> ApiResult<Agent> {
    let id = Uuid::parse_str(id_or_slug).ok();
    sqlx::query_as(concat!(
        "SELECT ",
        agent_columns!(),
        " FROM agents WHERE workspace_id = $1 AND (id = $2 OR slug = $3)"
    ))
    .bind(workspace)
    .bind(id)
    .bind(id_or_slug)
    .fetch_optional(db)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no agent {id_or_slug:?} in this workspace")))
}

pub async fn list<'e>(db: impl PgExecutor<'e>, workspace: Uuid) -> sqlx::Result<Vec<Agent>> {
    sqlx::query_as(concat!(
        "SELECT ",
        agent_columns!(),
        " FROM agents WHERE workspace_id = $1 ORDER BY created_at, slug"
    ))
    .bind(workspace)
    .fetch_all(db)
    .await
}

pub async fn create<'e>(
    db: impl PgExecutor<'e>,
    workspace: Uuid,
    new: &AgentChanges,
) -> ApiResult<Agent> {
    new.validate()?;
    let (Some(slug), Some(name)) = (&new.slug, &new.name) else {
        return Err(ApiError::Invalid("slug and name are required".into()));
    };
    let result = sqlx::query_as(concat!(
        "INSERT INTO agents (workspace_id, slug, name, role, system_prompt, model, temperature, \
         tools, max_steps, enabled) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ",
        agent_columns!()
    ))
    .bind(workspace)
    .bind(slug)
    .bind(name.trim())
    .bind(new.role.clone().unwrap_or_default())
    .bind(new.system_prompt.clone().unwrap_or_default())
    .bind(new.model.clone().flatten())
    .bind(new.temperature.flatten())
    .bind(Json(new.tools.clone().unwrap_or_default()))
    .bind(new.max_steps.flatten())
    .bind(new.enabled.unwrap_or(true))
    .fetch_one(db)
    .await;
    match result {
        Err(sqlx::Error::Database(err)) if err.is_unique_violation() => Err(ApiError::Conflict(
            format!("an agent with slug {slug:?} already exists"),
        )),
        other => Ok(other?),
    }
}

pub async fn update<'e>(
    db: impl PgExecutor<'e>,
    agent: &Agent,
    changes: &AgentChanges,
) -> ApiResult<Agent> {
    changes.validate()?;
    let result = sqlx::query_as(concat!(
        "UPDATE agents SET slug = $2, name = $3, role = $4, system_prompt = $5, model = $6, \
         temperature = $7, tools = $8, max_steps = $9, enabled = $10, updated_at = now() \
         WHERE id = $1 RETURNING ",
        agent_columns!()
    ))
    .bind(agent.id)
    .bind(changes.slug.as_ref().unwrap_or(&agent.slug))
    .bind(
        changes
            .name
            .as_deref()
            .map(str::trim)
            .unwrap_or(&agent.name),
    )
    .bind(changes.role.as_ref().unwrap_or(&agent.role))
    .bind(
        changes
            .system_prompt
            .as_ref()
            .unwrap_or(&agent.system_prompt),
    )
    .bind(changes.model.clone().unwrap_or(agent.model.clone()))
    .bind(changes.temperature.unwrap_or(agent.temperature))
    .bind(Json(changes.tools.clone().unwrap_or(agent.tools.0.clone())))
    .bind(changes.max_steps.unwrap_or(agent.max_steps))
    .bind(changes.enabled.unwrap_or(agent.enabled))
    .fetch_one(db)
    .await;
    match result {
        Err(sqlx::Error::Database(err)) if err.is_unique_violation() => Err(ApiError::Conflict(
            "another agent already has that slug".into(),
        )),
        other => Ok(other?),
    }
}

/// Whether each of an agent's tools can be called now, and if not, why.
#[derive(Debug, Clone, Serialize)]
pub struct ToolStatus {
    #[serde(flatten)]
    pub reference: ToolRef,
    pub available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    #[serde(skip)]
    pub info: Option<ToolInfo>,
}

/// Match an agent's tool references with the plugins' tools: the active version's, or
/// for a tool pinned to a version, that version's (loaded on demand when it is not the
/// active one). A tool that is missing is not offered.
pub async fn resolve_tools(registry: &Registry, tools: &[ToolRef]) -> Vec<ToolStatus> {
    let mut statuses = Vec::with_capacity(tools.len());
    for reference in tools {
        let found = registry
            .tool_info_at(
                &reference.plugin,
                &reference.tool,
                reference.version.as_deref(),
            )
            .await;
        let (info, problem) = match found {
            Ok(info) => (Some(info), None),
            Err(problem) => (None, Some(problem)),
        };
        statuses.push(ToolStatus {
            reference: reference.clone(),
            available: problem.is_none(),
            problem,
            info,
        });
    }
    statuses
}

/// An agent as the API shows it: its row plus whether its tools are available.
pub async fn view(agent: &Agent, registry: &Registry) -> Value {
    let mut value = serde_json::to_value(agent).unwrap_or_default();
    value["tool_status"] =
        serde_json::to_value(resolve_tools(registry, &agent.tools.0).await).unwrap_or_default();
    value
}
