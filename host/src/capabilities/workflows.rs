//! `agenthost:plugin/workflows`: start executions of the calling workspace's workflows,
//! for the workflows the grant names (by slug, or `*`). The start is the engine's own
//! (`Engine::start_execution`: input schema, running cap, idempotency key), recorded as
//! made by `plugin:<name>`.

use std::sync::{Arc, OnceLock, Weak};

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;
use wasmtime::component::{HasSelf, Linker};

use crate::error::ApiError;
use crate::registry::manifest::WorkflowsCapability;
use crate::runtime::bindings::Error;
use crate::runtime::bindings::agenthost::plugin::workflows as wit;
use crate::workflows::{Engine, StartOptions};

/// Largest input, as JSON text (a node's output, the usual source, is capped at 1 MiB
/// by default too).
pub const MAX_INPUT_BYTES: usize = 1 << 20;
/// Longest idempotency key (as `Idempotency-Key` on the REST API).
pub const MAX_KEY_CHARS: usize = 200;

pub type StartFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, Error>> + Send + 'a>>;

/// Starts executions for plugins. A trait so the capability doesn't own the engine,
/// which owns the registry that owns the capability; [`EngineStarter`] is the real one.
pub trait WorkflowStarter: Send + Sync + std::fmt::Debug {
    /// The workflow's id and slug (`workflow` is either), or `not-found`.
    fn resolve<'a>(&'a self, workspace: Uuid, workflow: &'a str)
    -> StartFuture<'a, (Uuid, String)>;

    /// Start an execution; `(execution id, status, new)`.
    fn start<'a>(
        &'a self,
        workspace: Uuid,
        workflow: Uuid,
        input: Value,
        options: StartOptions,
    ) -> StartFuture<'a, (Uuid, String, bool)>;
}

/// Set once at start, after the engine exists (see `server`).
pub type StarterSlot = Arc<OnceLock<Arc<dyn WorkflowStarter>>>;

#[derive(Clone, Default)]
pub struct WorkflowsCtx {
    pub plugin: String,
    pub workspace: Option<Uuid>,
    pub grant: Option<WorkflowsCapability>,
    pub starter: StarterSlot,
}

impl std::fmt::Debug for WorkflowsCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowsCtx")
            .field("plugin", &self.plugin)
            .field("grant", &self.grant)
            .finish()
    }
}

pub trait WorkflowsView {
    fn workflows(&mut self) -> &mut WorkflowsCtx;
}

pub fn add_to_linker<T: WorkflowsView + Send + 'static>(
    linker: &mut Linker<T>,
) -> anyhow::Result<()> {
    wit::add_to_linker::<T, HasSelf<WorkflowsCtx>>(linker, |state| state.workflows())?;
    Ok(())
}

/// Whether a grant or request entry is well formed: `*` or a workflow slug (the
/// table's rule).
pub fn is_workflow_pattern(text: &str) -> bool {
    text == "*"
        || ((1..=63).contains(&text.len())
            && text.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
}

impl WorkflowsCapability {
    fn every(&self) -> bool {
        self.workflows.iter().any(|w| w == "*")
    }

    /// Whether this grant names the workflow `slug`.
    pub fn allows(&self, slug: &str) -> bool {
        self.every() || self.workflows.iter().any(|w| w == slug)
    }
}

/// The input and key as the engine takes them, or why not.
fn check(input: &str, key: Option<&str>, plugin: &str) -> Result<(Value, Option<String>), Error> {
    if input.len() > MAX_INPUT_BYTES {
        return Err(Error::Invalid(format!(
            "the input is {} bytes of JSON, more than the {MAX_INPUT_BYTES} a start may carry",
            input.len()
        )));
    }
    let input: Value = serde_json::from_str(input)
        .map_err(|e| Error::Invalid(format!("the input is not JSON: {e}")))?;
    let key = match key {
        None => None,
        Some(key) if key.is_empty() || key.chars().count() > MAX_KEY_CHARS => {
            return Err(Error::Invalid(format!(
                "the idempotency key must be 1-{MAX_KEY_CHARS} characters"
            )));
        }
        Some(key) if key.contains('\0') => {
            return Err(Error::Invalid(
                "the idempotency key holds a NUL character (\\u0000)".into(),
            ));
        }
        // Per plugin: a plugin's key can't collide with an API caller's or another
        // plugin's, nor return their execution.
        Some(key) => Some(format!("plugin:{plugin}:{key}")),
    };
    Ok((input, key))
}

impl wit::Host for WorkflowsCtx {
    async fn start(
        &mut self,
        workflow: String,
        input: String,
        idempotency_key: Option<String>,
    ) -> Result<String, Error> {
        let grant = self.grant.as_ref().ok_or_else(|| {
            Error::Denied("the workflows capability is not granted to this plugin version".into())
        })?;
        let denied = || {
            Error::Denied(format!(
                "workflow {workflow:?} is not granted to this plugin version (granted: {})",
                grant.workflows.join(", ")
            ))
        };
        if workflow.is_empty() || workflow.len() > 200 || workflow.contains('\0') {
            return Err(Error::Invalid(
                "workflow must be a workflow's slug or id".into(),
            ));
        }
        let (input, key) = check(&input, idempotency_key.as_deref(), &self.plugin)?;
        let workspace = self.workspace.ok_or_else(|| {
            Error::Invalid("this call has no workspace to start workflows in".into())
        })?;
        let starter = self
            .starter
            .get()
            .ok_or_else(|| Error::Unavailable("workflows are not available on this host".into()))?
            .clone();
        // A plugin that may start only some workflows learns nothing about the others,
        // not even whether they exist.
        let (id, slug) = match starter.resolve(workspace, &workflow).await {
            Ok(found) => found,
            Err(Error::NotFound(_)) if !grant.every() => return Err(denied()),
            Err(error) => return Err(error),
        };
        if !grant.allows(&slug) {
            return Err(denied());
        }
        let options = StartOptions {
            idempotency_key: key,
            actor: Some(format!("plugin:{}", self.plugin)),
        };
        let (execution, status, new) = starter.start(workspace, id, input, options).await?;
        Ok(json!({"execution_id": execution, "status": status, "new": new}).to_string())
    }
}

/// The engine behind the capability. Weak: the engine owns the registry, whose
/// services hold this.
#[derive(Debug)]
pub struct EngineStarter {
    pub engine: Weak<Engine>,
    pub pool: PgPool,
}

pub(crate) fn from_api(error: ApiError) -> Error {
    match error {
        ApiError::NotFound(m) => Error::NotFound(m),
        ApiError::Invalid(m) | ApiError::BadRequest(m) => Error::Invalid(m),
        ApiError::Conflict(m) | ApiError::Unavailable(m) => Error::Unavailable(m),
        ApiError::Coded { message, .. } => Error::Unavailable(message),
        ApiError::DatabaseUnreachable(_) => {
            Error::Unavailable("the database is not reachable".into())
        }
        other => {
            tracing::warn!(error = %other, "a plugin's workflow start failed");
            Error::Internal("starting the execution failed (details are in the host log)".into())
        }
    }
}

impl WorkflowStarter for EngineStarter {
    fn resolve<'a>(
        &'a self,
        workspace: Uuid,
        workflow: &'a str,
    ) -> StartFuture<'a, (Uuid, String)> {
        Box::pin(async move {
            let found = crate::workflows::store::get_workflow(&self.pool, workspace, workflow)
                .await
                .map_err(from_api)?;
            Ok((found.id, found.slug))
        })
    }

    fn start<'a>(
        &'a self,
        workspace: Uuid,
        workflow: Uuid,
        input: Value,
        options: StartOptions,
    ) -> StartFuture<'a, (Uuid, String, bool)> {
        Box::pin(async move {
            let engine = self
                .engine
                .upgrade()
                .ok_or_else(|| Error::Unavailable("the host is shutting down".into()))?;
            let (execution, new) = engine
                .start_execution(workspace, &workflow.to_string(), input, options)
                .await
                .map_err(from_api)?;
            Ok((execution.id, execution.status, new))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_name_slugs_or_everything() {
        let some = WorkflowsCapability {
            workflows: vec!["invoice-approval".into()],
        };
        assert!(some.allows("invoice-approval"));
        assert!(!some.allows("payroll"));
        let every = WorkflowsCapability {
            workflows: vec!["*".into()],
        };
        assert!(every.allows("payroll"));
        assert!(
            is_workflow_pattern("*") && is_workflow_pattern("a-1") && is_workflow_pattern("9x")
        );
        for bad in ["", "-a", "A", "a_b", "a*", &"a".repeat(64)] {
            assert!(!is_workflow_pattern(bad), "{bad}");
        }
    }

    #[test]
    fn inputs_and_keys_are_checked_and_keys_are_per_plugin() {
        let (input, key) = check(r#"{"n": 1}"#, Some("exec/node"), "workflow").unwrap();
        assert_eq!(input, json!({"n": 1}));
        assert_eq!(key.as_deref(), Some("plugin:workflow:exec/node"));
        assert_eq!(check("null", None, "p").unwrap(), (Value::Null, None));
        assert!(matches!(check("{", None, "p"), Err(Error::Invalid(_))));
        assert!(check("1", Some(&"k".repeat(MAX_KEY_CHARS)), "p").is_ok());
        for bad in [String::new(), "k".repeat(MAX_KEY_CHARS + 1), "a\0b".into()] {
            assert!(
                matches!(check("1", Some(&bad), "p"), Err(Error::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_input_limit_holds_at_the_byte() {
        let pad = |n: usize| format!("\"{}\"", "x".repeat(n - 2));
        assert!(check(&pad(MAX_INPUT_BYTES), None, "p").is_ok());
        let error = check(&pad(MAX_INPUT_BYTES + 1), None, "p").unwrap_err();
        assert!(
            matches!(&error, Error::Invalid(m) if m.contains("1048576")),
            "{error:?}"
        );
    }
}
