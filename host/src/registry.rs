//! The plugin registry: versions live in PostgreSQL (so every replica sees them), the
//! active version of each plugin lives in memory behind an `Arc`.
//!
//! Hot swap: a call takes its own `Arc<ActivePlugin>` from the map and keeps it for
//! the whole call, so activating another version never touches calls in flight; new
//! calls see the new version as soon as the map entry is replaced.
//!
//! Every change is made in a transaction that also sends `NOTIFY agenthost_plugins`
//! (delivered on commit); other hosts reload that plugin from the database.

mod admin;
pub mod cache;
mod calls;
pub mod directory;
pub mod fault_log;
pub mod invocations;
pub mod manifest;
pub mod metrics;
mod nodes;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use uuid::Uuid;

use crate::auth::Principal;
use crate::capabilities::CallGrants;
use crate::capabilities::Services;
use crate::capabilities::agents::AgentsCtx;
use crate::capabilities::automation::AutomationCtx;
use crate::capabilities::config::ConfigCtx;
use crate::capabilities::database::DatabaseCtx;
use crate::capabilities::email::EmailCtx;
use crate::capabilities::events::EventsCtx;
use crate::capabilities::http::{HttpCtx, HttpPolicy};
use crate::capabilities::llm::LlmCtx;
use crate::capabilities::vector::VectorCtx;
use crate::capabilities::workflows::WorkflowsCtx;
use crate::runtime::bindings::ToolDescriptor;
use crate::runtime::{Limits, LoadError, LoadedPlugin, PluginKind, WasmEngine};
use cache::ArtifactCache;
pub use calls::{ToolCallError, ToolCallResult, ToolInfo};
use manifest::Capabilities;
pub use nodes::{NodeCallError, NodeResult};

const CHANNEL: &str = "agenthost_plugins";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A manifest, grant or setting that breaks a rule (422).
    #[error("{0}")]
    Invalid(String),
    /// A component that can't be a plugin (400).
    #[error("{0}")]
    BadComponent(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for RegistryError {
    fn from(err: sqlx::Error) -> Self {
        RegistryError::Internal(err.into())
    }
}

impl From<LoadError> for RegistryError {
    fn from(err: LoadError) -> Self {
        RegistryError::BadComponent(err.to_string())
    }
}

type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// The active version of a plugin with everything a call needs.
pub struct ActivePlugin {
    pub plugin: Arc<LoadedPlugin>,
    pub sha256: String,
    pub grants: CallGrants,
    input_validators: HashMap<String, Arc<jsonschema::Validator>>,
    /// The tools as `GET /api/tools` lists them, schemas parsed once at load.
    tool_infos: Vec<ToolInfo>,
}

/// Who did it, for the audit log.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub principal: &'a Principal,
    pub request_id: Option<&'a str>,
}

/// A version as the admin API shows it.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct VersionInfo {
    pub plugin: String,
    pub version: String,
    pub sha256: String,
    pub size_bytes: i32,
    pub manifest: Value,
    pub tools: Value,
    pub nodes: Value,
    pub limits: Value,
    pub grants: Value,
    pub active: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A plugin as the admin API shows it.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PluginInfo {
    pub name: String,
    pub kind: String,
    pub active_version: Option<String>,
    pub previous_version: Option<String>,
    pub enabled: bool,
    pub settings: Value,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

pub struct Registry {
    pool: PgPool,
    pub engine: Arc<WasmEngine>,
    cache: Arc<ArtifactCache>,
    pub defaults: Limits,
    pub max_memory_bytes: usize,
    pub services: Services,
    active: RwLock<HashMap<String, Arc<ActivePlugin>>>,
    /// Serialises changes on this host, so the in-memory map follows commit order.
    changes: tokio::sync::Mutex<()>,
    host_id: String,
    pub metrics: metrics::CallMetrics,
    /// Rate-limits plugin faults in the log.
    faults: fault_log::FaultLimiter,
    invocations: invocations::InvocationLog,
    /// Versions that executions pinned and that are no longer active, loaded on demand.
    pinned: nodes::PinnedVersions,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("host_id", &self.host_id)
            .finish()
    }
}

impl Registry {
    pub fn new(
        pool: PgPool,
        engine: Arc<WasmEngine>,
        cache: ArtifactCache,
        defaults: Limits,
        max_memory_bytes: usize,
        services: Services,
    ) -> Self {
        Registry {
            services,
            invocations: invocations::InvocationLog::start(pool.clone()),
            pool,
            engine,
            cache: Arc::new(cache),
            defaults,
            max_memory_bytes,
            active: RwLock::new(HashMap::new()),
            changes: tokio::sync::Mutex::new(()),
            host_id: Uuid::new_v4().to_string(),
            metrics: metrics::CallMetrics::default(),
            faults: fault_log::FaultLimiter::default(),
            pinned: nodes::PinnedVersions::default(),
        }
    }

    /// The active version of `name`, if it has one and is enabled.
    pub fn active(&self, name: &str) -> Option<Arc<ActivePlugin>> {
        let map = self.active.read().unwrap_or_else(|e| e.into_inner());
        map.get(name).cloned()
    }

    fn set_active(&self, name: &str, plugin: Option<Arc<ActivePlugin>>) {
        let mut map = self.active.write().unwrap_or_else(|e| e.into_inner());
        match plugin {
            Some(plugin) => map.insert(name.to_string(), plugin),
            None => map.remove(name),
        };
    }

    /// Load every enabled plugin's active version (at start).
    pub async fn load_all(&self) -> anyhow::Result<()> {
        let _guard = self.changes.lock().await;
        self.reload_all_locked().await;
        Ok(())
    }

    async fn reload_all_locked(&self) {
        let names: Vec<String> = match sqlx::query_scalar("SELECT name FROM plugins")
            .fetch_all(&self.pool)
            .await
        {
            Ok(names) => names,
            Err(err) => {
                tracing::error!(error = %err, "could not list plugins to reload");
                return;
            }
        };
        for name in names {
            if let Err(err) = self.reload_locked(&name).await {
                tracing::error!(plugin = %name, error = %err, "could not load plugin");
            }
        }
    }

    /// Follow changes made by other hosts on the same database.
    pub fn watch_other_hosts(self: &Arc<Self>) {
        let registry = Arc::downgrade(self);
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let mut listener = loop {
                match listen(&pool).await {
                    Ok(listener) => break listener,
                    Err(_) if pool.is_closed() => return,
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot LISTEN for plugin changes; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            };
            loop {
                let message = listener.try_recv().await;
                let Some(registry) = registry.upgrade() else {
                    return;
                };
                match message {
                    Ok(Some(notification)) => {
                        registry.on_notification(notification.payload()).await
                    }
                    // The connection dropped and was re-established: notifications may
                    // have been missed, so reload everything.
                    Ok(None) => {
                        let _guard = registry.changes.lock().await;
                        registry.reload_all_locked().await;
                    }
                    // The host is shutting down.
                    Err(_) if pool.is_closed() => return,
                    Err(err) => {
                        tracing::warn!(error = %err, "plugin change listener failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        });
    }

    async fn on_notification(&self, payload: &str) {
        let Some((host, name)) = payload.split_once(':') else {
            return;
        };
        if host == self.host_id {
            return;
        }
        let _guard = self.changes.lock().await;
        if name == "*" {
            self.reload_all_locked().await;
        } else if let Err(err) = self.reload_locked(name).await {
            tracing::error!(plugin = %name, error = %err, "could not reload plugin after a change");
        }
    }

    /// Make the in-memory entry for `name` match the database. Caller holds `changes`.
    async fn reload_locked(&self, name: &str) -> Result<()> {
        #[derive(sqlx::FromRow)]
        struct Row {
            kind: String,
            enabled: bool,
            settings: Value,
            version: Option<String>,
            sha256: Option<String>,
            limits: Option<Value>,
            grants: Option<Value>,
        }
        let row: Option<Row> = sqlx::query_as(
            "SELECT p.kind, p.enabled, p.settings, v.version, v.sha256, v.limits, v.grants \
             FROM plugins p LEFT JOIN plugin_versions v \
             ON v.plugin = p.name AND v.version = p.active_version WHERE p.name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row.filter(|row| row.enabled) else {
            self.set_active(name, None);
            return Ok(());
        };
        let (Some(version), Some(sha256), Some(limits), Some(grants)) =
            (row.version, row.sha256, row.limits, row.grants)
        else {
            self.set_active(name, None);
            return Ok(());
        };
        let reuse = self
            .active(name)
            .filter(|current| current.sha256 == sha256 && current.plugin.version == version)
            .map(|current| current.plugin.clone());
        let active = self
            .build_active(
                name,
                &row.kind,
                row.settings,
                &version,
                sha256,
                limits,
                grants,
                reuse,
            )
            .await?;
        self.set_active(name, Some(Arc::new(active)));
        Ok(())
    }

    /// Everything a call of `name@version` needs, with these grants and settings;
    /// `reuse` is the loaded component when it is the same one (a settings or grant
    /// change keeps it), else the version is loaded from the database.
    #[allow(clippy::too_many_arguments)]
    async fn build_active(
        &self,
        name: &str,
        kind: &str,
        settings: Value,
        version: &str,
        sha256: String,
        limits: Value,
        grants: Value,
        reuse: Option<Arc<LoadedPlugin>>,
    ) -> Result<ActivePlugin> {
        let version = version.to_string();
        let grants: Capabilities = serde_json::from_value(grants).context("stored grants")?;
        let settings: HashMap<String, Value> = serde_json::from_value(settings).unwrap_or_default();
        let secret_values: HashMap<String, String> = sqlx::query_as::<_, (String, String)>(
            "SELECT name, value FROM secrets WHERE name = ANY($1)",
        )
        .bind(&grants.secrets)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .collect();
        let config = ConfigCtx {
            settings: Arc::new(settings),
            granted_secrets: Arc::new(grants.secrets.iter().cloned().collect::<BTreeSet<_>>()),
            secret_values: Arc::new(secret_values),
        };
        let email = EmailCtx {
            plugin: name.to_string(),
            grant: grants.email.clone(),
            mailer: Some(self.services.mailer.clone()),
        };
        let database = DatabaseCtx::new(
            name,
            grants
                .database
                .as_ref()
                .map(|_| self.services.sandbox.clone()),
            self.services.statement_limits,
        );
        let llm = LlmCtx {
            plugin: name.to_string(),
            workspace: None,
            grant: grants.llm.clone(),
            llm: Some(self.services.llm.clone()),
        };
        let http = HttpCtx {
            policy: match &grants.http {
                Some(grant) => Some(Arc::new(
                    HttpPolicy::new(name, grant, self.services.http_limits)
                        .context("building the http policy")?,
                )),
                None => None,
            },
        };
        let agents = AgentsCtx {
            plugin: name.to_string(),
            workspace: None,
            grant: grants.agents.clone(),
            runner: self.services.agents.clone(),
        };
        let events = EventsCtx {
            plugin: name.to_string(),
            grant: grants.events.clone(),
            pool: Some(self.pool.clone()),
            node: kind == "node",
            ..EventsCtx::default()
        };
        let workflows = WorkflowsCtx {
            plugin: name.to_string(),
            workspace: None,
            grant: grants.workflows.clone(),
            starter: self.services.workflows.clone(),
        };
        let automation = AutomationCtx {
            plugin: name.to_string(),
            grant: grants.automation.clone(),
            service: self.services.automation.clone(),
            ..AutomationCtx::default()
        };
        let vector = VectorCtx {
            plugin: name.to_string(),
            workspace: None,
            grant: grants.vector.clone(),
            store: Some(self.services.vectors.clone()),
        };
        let plugin = match reuse {
            Some(plugin) => plugin,
            None => {
                let kind = match kind {
                    "node" => PluginKind::Node,
                    _ => PluginKind::Tool,
                };
                let limits: Limits = serde_json::from_value(limits).context("stored limits")?;
                let component: Vec<u8> = sqlx::query_scalar(
                    "SELECT component FROM plugin_versions WHERE plugin = $1 AND version = $2",
                )
                .bind(name)
                .bind(&version)
                .fetch_one(&self.pool)
                .await?;
                Arc::new(
                    self.load_version(name, &version, kind, limits, &sha256, &component)
                        .await?,
                )
            }
        };
        let input_validators = input_validators(&plugin.tools)?;
        let tool_infos = calls::tool_infos(&plugin);
        Ok(ActivePlugin {
            plugin,
            sha256,
            grants: CallGrants {
                config,
                email,
                database,
                llm,
                http,
                vector,
                agents,
                events,
                workflows,
                automation,
                log: self.services.plugin_logs.clone(),
            },
            input_validators,
            tool_infos,
        })
    }

    async fn load_version(
        &self,
        name: &str,
        version: &str,
        kind: PluginKind,
        limits: Limits,
        sha256: &str,
        component: &[u8],
    ) -> Result<LoadedPlugin> {
        // Compiling is CPU-heavy: keep it off the async workers.
        let (engine, cache) = (self.engine.clone(), self.cache.clone());
        let (sha, bytes) = (sha256.to_string(), component.to_vec());
        let compiled = tokio::task::spawn_blocking(move || cache.load(&engine, &sha, &bytes))
            .await
            .context("compile task failed")??;
        Ok(LoadedPlugin::load(&self.engine, &compiled, name, version, kind, limits).await?)
    }
}

async fn listen(pool: &PgPool) -> sqlx::Result<PgListener> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

fn input_validators(
    tools: &[ToolDescriptor],
) -> Result<HashMap<String, Arc<jsonschema::Validator>>> {
    tools
        .iter()
        .map(|tool| {
            let schema: Value = serde_json::from_str(&tool.input_schema).map_err(|e| {
                RegistryError::BadComponent(format!("input schema of {}: {e}", tool.name))
            })?;
            let validator = jsonschema::validator_for(&schema).map_err(|e| {
                RegistryError::BadComponent(format!(
                    "input schema of {} is not a valid JSON Schema: {e}",
                    tool.name
                ))
            })?;
            Ok((tool.name.clone(), Arc::new(validator)))
        })
        .collect()
}
