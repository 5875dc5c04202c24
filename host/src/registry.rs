//! The plugin registry: versions live in PostgreSQL (so every replica sees them), the
//! active version of each plugin lives in memory behind an `Arc`.
//!
//! Hot swap: a call takes its own `Arc<ActivePlugin>` from the map and keeps it for
//! the whole call, so activating another version never touches calls in flight; new
//! calls see the new version as soon as the map entry is replaced.
//!
//! Every change is made in a transaction that also sends `NOTIFY agenthost_plugins`
//! (delivered on commit); other hosts reload that plugin from the database.

pub mod cache;
pub mod directory;
pub mod invocations;
pub mod manifest;
pub mod metrics;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use uuid::Uuid;

use crate::audit::{self, AuditEvent};
use crate::auth::Principal;
use crate::capabilities::config::ConfigCtx;
use crate::runtime::bindings::{CallContext, ToolDescriptor};
use crate::runtime::{InvokeError, Limits, LoadError, LoadedPlugin, PluginKind, WasmEngine};
use cache::ArtifactCache;
use manifest::{Capabilities, Manifest};

const CHANNEL: &str = "agenthost_plugins";

/// The `PluginInfo` columns, spliced into literal SQL at compile time.
macro_rules! plugin_columns {
    () => {
        "SELECT name, kind, active_version, previous_version, enabled, settings, created_at, \
         updated_at FROM plugins"
    };
}

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
    pub config: ConfigCtx,
    input_validators: HashMap<String, Arc<jsonschema::Validator>>,
}

/// Who did it, for the audit log.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub principal: &'a Principal,
    pub request_id: Option<&'a str>,
}

/// A version as the admin API shows it.
#[derive(Debug, Serialize, sqlx::FromRow)]
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
#[derive(Debug, Serialize, sqlx::FromRow)]
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

/// An active tool, as listed to API users.
#[derive(Debug, Serialize)]
pub struct ToolInfo {
    pub plugin: String,
    pub version: String,
    pub name: String,
    pub description: String,
    pub input_schema: Value,
    pub output_schema: Value,
}

/// Why a tool call failed, before or inside the plugin.
#[derive(Debug, thiserror::Error)]
pub enum ToolCallError {
    #[error("{0}")]
    NotFound(String),
    #[error("the input does not match the tool's input schema: {}", .0.join("; "))]
    InvalidInput(Vec<String>),
    #[error(transparent)]
    Invoke(#[from] InvokeError),
    #[error("the plugin returned output that is not JSON: {0}")]
    BadOutput(String),
}

/// A finished tool call.
#[derive(Debug, Serialize)]
pub struct ToolCallResult {
    pub plugin: String,
    pub version: String,
    pub tool: String,
    pub output: Value,
    pub duration_ms: f64,
}

pub struct Registry {
    pool: PgPool,
    pub engine: Arc<WasmEngine>,
    cache: Arc<ArtifactCache>,
    pub defaults: Limits,
    pub max_memory_bytes: usize,
    active: RwLock<HashMap<String, Arc<ActivePlugin>>>,
    /// Serialises changes on this host, so the in-memory map follows commit order.
    changes: tokio::sync::Mutex<()>,
    host_id: String,
    pub metrics: metrics::CallMetrics,
    invocations: invocations::InvocationLog,
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
    ) -> Self {
        Registry {
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

    /// Validate, compile and store a new version (not activated).
    pub async fn install(
        &self,
        manifest: Manifest,
        component: Vec<u8>,
        actor: Actor<'_>,
    ) -> Result<VersionInfo> {
        let limits = manifest
            .validate(&self.defaults, self.max_memory_bytes)
            .map_err(|e| RegistryError::Invalid(format!("invalid manifest: {e}")))?;
        let sha256 = hex::encode(Sha256::digest(&component));
        let loaded = self
            .load_version(
                &manifest.name,
                &manifest.version,
                manifest.kind,
                limits,
                &sha256,
                &component,
            )
            .await?;
        input_validators(&loaded.tools)?;
        let size = i32::try_from(component.len())
            .map_err(|_| RegistryError::Invalid("the component is too large".into()))?;

        let _guard = self.changes.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO plugins (name, kind) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&manifest.name)
        .bind(manifest.kind.as_str())
        .execute(&mut *tx)
        .await?;
        let kind: String =
            sqlx::query_scalar("SELECT kind FROM plugins WHERE name = $1 FOR UPDATE")
                .bind(&manifest.name)
                .fetch_one(&mut *tx)
                .await?;
        if kind != manifest.kind.as_str() {
            return Err(RegistryError::Conflict(format!(
                "{} is a {kind} plugin; a new version cannot change its kind",
                manifest.name
            )));
        }
        let inserted = sqlx::query(
            "INSERT INTO plugin_versions \
             (plugin, version, manifest, tools, nodes, sha256, size_bytes, component, limits) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        )
        .bind(&manifest.name)
        .bind(&manifest.version)
        .bind(serde_json::to_value(&manifest).context("encoding manifest")?)
        .bind(tools_json(&loaded.tools))
        .bind(nodes_json(&loaded))
        .bind(&sha256)
        .bind(size)
        .bind(&component)
        .bind(serde_json::to_value(limits).context("encoding limits")?)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(RegistryError::Conflict(format!(
                "version {} of {} already exists; versions are immutable, upload a new one",
                manifest.version, manifest.name
            )));
        }
        let event = audit_event(
            actor,
            "plugin.install",
            &manifest.name,
            json!({
                "version": manifest.version, "sha256": sha256, "size_bytes": size,
            }),
        );
        audit::record(&mut *tx, event).await?;
        tx.commit().await?;
        self.version(&manifest.name, &manifest.version).await
    }

    /// Make `version` the active one. Calls in flight finish on the old version.
    pub async fn activate(
        &self,
        name: &str,
        version: &str,
        actor: Actor<'_>,
    ) -> Result<PluginInfo> {
        let _guard = self.changes.lock().await;
        let mut tx = self.pool.begin().await?;
        let current = self.lock_plugin(&mut tx, name).await?;
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM plugin_versions WHERE plugin = $1 AND version = $2)",
        )
        .bind(name)
        .bind(version)
        .fetch_one(&mut *tx)
        .await?;
        if !exists {
            return Err(RegistryError::NotFound(format!(
                "{name} has no version {version}"
            )));
        }
        sqlx::query(
            "UPDATE plugins SET previous_version = CASE WHEN active_version IS DISTINCT FROM $2 \
             THEN active_version ELSE previous_version END, active_version = $2, updated_at = now() \
             WHERE name = $1",
        )
        .bind(name)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        let event = audit_event(
            actor,
            "plugin.activate",
            name,
            json!({
                "from": current.active_version, "to": version,
            }),
        );
        self.commit_and_reload(tx, name, event).await
    }

    /// Activate the version that was active before the current one.
    pub async fn rollback(&self, name: &str, actor: Actor<'_>) -> Result<PluginInfo> {
        let previous: Option<String> =
            sqlx::query_scalar("SELECT previous_version FROM plugins WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| RegistryError::NotFound(format!("no plugin named {name}")))?;
        let previous = previous.ok_or_else(|| {
            RegistryError::Conflict(format!("{name} has no previous version to roll back to"))
        })?;
        self.activate(name, &previous, actor).await
    }

    /// Enable or disable a plugin; a disabled plugin serves no calls.
    pub async fn set_enabled(
        &self,
        name: &str,
        enabled: bool,
        actor: Actor<'_>,
    ) -> Result<PluginInfo> {
        let _guard = self.changes.lock().await;
        let mut tx = self.pool.begin().await?;
        self.lock_plugin(&mut tx, name).await?;
        sqlx::query("UPDATE plugins SET enabled = $2, updated_at = now() WHERE name = $1")
            .bind(name)
            .bind(enabled)
            .execute(&mut *tx)
            .await?;
        let action = if enabled {
            "plugin.enable"
        } else {
            "plugin.disable"
        };
        let event = audit_event(actor, action, name, json!({}));
        self.commit_and_reload(tx, name, event).await
    }

    /// Delete a version; the active one can't be deleted.
    pub async fn delete_version(&self, name: &str, version: &str, actor: Actor<'_>) -> Result<()> {
        let _guard = self.changes.lock().await;
        let mut tx = self.pool.begin().await?;
        let plugin = self.lock_plugin(&mut tx, name).await?;
        if plugin.active_version.as_deref() == Some(version) {
            return Err(RegistryError::Conflict(format!(
                "{version} is the active version of {name}; activate another version first"
            )));
        }
        let deleted = sqlx::query("DELETE FROM plugin_versions WHERE plugin = $1 AND version = $2")
            .bind(name)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(RegistryError::NotFound(format!(
                "{name} has no version {version}"
            )));
        }
        sqlx::query(
            "UPDATE plugins SET previous_version = NULL, updated_at = now() \
             WHERE name = $1 AND previous_version = $2",
        )
        .bind(name)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        let event = audit_event(
            actor,
            "plugin.delete_version",
            name,
            json!({ "version": version }),
        );
        self.commit_and_reload(tx, name, event).await?;
        Ok(())
    }

    /// Set what a version is granted; must stay within what its manifest requests.
    pub async fn set_grants(
        &self,
        name: &str,
        version: &str,
        grants: Capabilities,
        actor: Actor<'_>,
    ) -> Result<VersionInfo> {
        let _guard = self.changes.lock().await;
        let mut tx = self.pool.begin().await?;
        self.lock_plugin(&mut tx, name).await?;
        let manifest: Value = sqlx::query_scalar(
            "SELECT manifest FROM plugin_versions WHERE plugin = $1 AND version = $2",
        )
        .bind(name)
        .bind(version)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| RegistryError::NotFound(format!("{name} has no version {version}")))?;
        let manifest: Manifest = serde_json::from_value(manifest).context("stored manifest")?;
        let beyond = grants.not_within(&manifest.capabilities);
        if !beyond.is_empty() {
            return Err(RegistryError::Invalid(format!(
                "the manifest of {name} {version} does not request: {}",
                beyond.join(", ")
            )));
        }
        sqlx::query("UPDATE plugin_versions SET grants = $3 WHERE plugin = $1 AND version = $2")
            .bind(name)
            .bind(version)
            .bind(serde_json::to_value(&grants).context("encoding grants")?)
            .execute(&mut *tx)
            .await?;
        let event = audit_event(
            actor,
            "plugin.grant",
            name,
            json!({
                "version": version, "grants": grants,
            }),
        );
        self.commit_and_reload(tx, name, event).await?;
        self.version(name, version).await
    }

    /// Replace a plugin's settings, validated against the active version's schema.
    pub async fn set_settings(
        &self,
        name: &str,
        settings: Value,
        actor: Actor<'_>,
    ) -> Result<PluginInfo> {
        if !settings.is_object() {
            return Err(RegistryError::Invalid(
                "settings must be a JSON object".into(),
            ));
        }
        let _guard = self.changes.lock().await;
        let mut tx = self.pool.begin().await?;
        let plugin = self.lock_plugin(&mut tx, name).await?;
        if let Some(version) = &plugin.active_version {
            let schema: Value = sqlx::query_scalar(
                "SELECT manifest -> 'config_schema' FROM plugin_versions WHERE plugin = $1 AND version = $2",
            )
            .bind(name)
            .bind(version)
            .fetch_one(&mut *tx)
            .await?;
            let validator = jsonschema::validator_for(&schema)
                .map_err(|e| RegistryError::Invalid(format!("stored config_schema: {e}")))?;
            let errors: Vec<String> = validator
                .iter_errors(&settings)
                .map(|e| e.to_string())
                .collect();
            if !errors.is_empty() {
                return Err(RegistryError::Invalid(format!(
                    "settings do not match the config_schema of {name} {version}: {}",
                    errors.join("; ")
                )));
            }
        }
        sqlx::query("UPDATE plugins SET settings = $2, updated_at = now() WHERE name = $1")
            .bind(name)
            .bind(&settings)
            .execute(&mut *tx)
            .await?;
        let keys: Vec<&String> = settings
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        // Values may be sensitive: the audit log keeps only the keys.
        let event = audit_event(actor, "plugin.settings", name, json!({ "keys": keys }));
        self.commit_and_reload(tx, name, event).await
    }

    /// Set (create or replace) an instance secret.
    pub async fn set_secret(&self, name: &str, value: &str, actor: Actor<'_>) -> Result<()> {
        let _guard = self.changes.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO secrets (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
        )
        .bind(name)
        .bind(value)
        .execute(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.code().as_deref() == Some("23514") => {
                RegistryError::Invalid(format!(
                    "secret name {name:?} must be 1-128 letters, digits, '_', '.' or '-'"
                ))
            }
            _ => e.into(),
        })?;
        let event = audit_event(actor, "secret.set", name, json!({}));
        audit::record(&mut *tx, event).await?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(format!("{}:*", self.host_id))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.reload_all_locked().await;
        Ok(())
    }

    /// The sha256 of `name` `version`, if that version exists.
    pub async fn version_sha256(&self, name: &str, version: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT sha256 FROM plugin_versions WHERE plugin = $1 AND version = $2",
        )
        .bind(name)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Names of the instance secrets (never their values).
    pub async fn secret_names(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT name FROM secrets ORDER BY name")
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn plugins(&self) -> Result<Vec<PluginInfo>> {
        Ok(sqlx::query_as(concat!(plugin_columns!(), " ORDER BY name"))
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn plugin(&self, name: &str) -> Result<PluginInfo> {
        sqlx::query_as(concat!(plugin_columns!(), " WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| RegistryError::NotFound(format!("no plugin named {name}")))
    }

    pub async fn versions(&self, name: &str) -> Result<Vec<VersionInfo>> {
        self.plugin(name).await?;
        Ok(sqlx::query_as(VERSION_QUERY_ALL)
            .bind(name)
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn version(&self, name: &str, version: &str) -> Result<VersionInfo> {
        sqlx::query_as(VERSION_QUERY_ONE)
            .bind(name)
            .bind(version)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| RegistryError::NotFound(format!("{name} has no version {version}")))
    }

    /// Every tool of every active, enabled tool plugin.
    pub fn tools(&self) -> Vec<ToolInfo> {
        let map = self.active.read().unwrap_or_else(|e| e.into_inner());
        let mut tools: Vec<ToolInfo> = map
            .values()
            .flat_map(|active| {
                active.plugin.tools.iter().map(|tool| ToolInfo {
                    plugin: active.plugin.name.clone(),
                    version: active.plugin.version.clone(),
                    name: tool.name.clone(),
                    description: tool.description.clone(),
                    input_schema: serde_json::from_str(&tool.input_schema).unwrap_or(Value::Null),
                    output_schema: serde_json::from_str(&tool.output_schema).unwrap_or(Value::Null),
                })
            })
            .collect();
        tools.sort_by(|a, b| (&a.plugin, &a.name).cmp(&(&b.plugin, &b.name)));
        tools
    }

    /// Validate the input, run the tool in a fresh instance, record the invocation.
    pub async fn invoke_tool(
        &self,
        workspace_id: Uuid,
        request_id: &str,
        plugin: &str,
        tool: &str,
        input: &Value,
    ) -> Result<ToolCallResult, ToolCallError> {
        let active = self
            .active(plugin)
            .ok_or_else(|| ToolCallError::NotFound(format!("no active plugin named {plugin}")))?;
        let validator = active.input_validators.get(tool).ok_or_else(|| {
            ToolCallError::NotFound(format!("plugin {plugin} has no tool {tool}"))
        })?;
        let errors: Vec<String> = validator
            .iter_errors(input)
            .map(|e| format!("{} (at {})", e, e.instance_path()))
            .collect();
        if !errors.is_empty() {
            return Err(ToolCallError::InvalidInput(errors));
        }
        let context = CallContext {
            workspace_id: workspace_id.to_string(),
            plugin: active.plugin.name.clone(),
            version: active.plugin.version.clone(),
            request_id: request_id.to_string(),
        };
        let started = Instant::now();
        let result = active
            .plugin
            .invoke_tool(
                &self.engine,
                context,
                active.config.clone(),
                tool,
                &input.to_string(),
            )
            .await;
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let result = match result {
            Ok(text) => {
                serde_json::from_str(&text).map_err(|e| ToolCallError::BadOutput(e.to_string()))
            }
            Err(err) => Err(ToolCallError::Invoke(err)),
        };
        let (outcome, error) = match &result {
            Ok(_) => ("ok", None),
            Err(ToolCallError::Invoke(err)) => (err.outcome(), Some(err.to_string())),
            Err(err) => ("bad_output", Some(err.to_string())),
        };
        self.metrics
            .record(&active.plugin.name, outcome, duration_ms / 1000.0);
        if outcome != "ok" && outcome != "tool_error" {
            tracing::warn!(plugin, version = %active.plugin.version, tool, outcome, ?error, "plugin call failed");
        }
        self.invocations.record(invocations::Invocation {
            workspace_id,
            plugin: active.plugin.name.clone(),
            version: active.plugin.version.clone(),
            tool: tool.to_string(),
            duration_ms,
            outcome,
            error,
            request_id: request_id.to_string(),
        });
        Ok(ToolCallResult {
            plugin: active.plugin.name.clone(),
            version: active.plugin.version.clone(),
            tool: tool.to_string(),
            output: result?,
            duration_ms,
        })
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

    async fn lock_plugin(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        name: &str,
    ) -> Result<PluginInfo> {
        sqlx::query_as(concat!(plugin_columns!(), " WHERE name = $1 FOR UPDATE"))
            .bind(name)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or_else(|| RegistryError::NotFound(format!("no plugin named {name}")))
    }

    /// Audit, notify, commit, then bring this host's map in line with the database.
    async fn commit_and_reload(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
        name: &str,
        event: AuditEvent<'_>,
    ) -> Result<PluginInfo> {
        audit::record(&mut *tx, event).await?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(format!("{}:{name}", self.host_id))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.reload_locked(name).await?;
        self.plugin(name).await
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
        let grants: Capabilities = serde_json::from_value(grants).context("stored grants")?;
        let settings: HashMap<String, Value> =
            serde_json::from_value(row.settings).unwrap_or_default();
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
        // A settings or grant change keeps the loaded component; a new version loads.
        let plugin = match self.active(name) {
            Some(current) if current.sha256 == sha256 && current.plugin.version == version => {
                current.plugin.clone()
            }
            _ => {
                let kind = match row.kind.as_str() {
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
        self.set_active(
            name,
            Some(Arc::new(ActivePlugin {
                plugin,
                sha256,
                config,
                input_validators,
            })),
        );
        Ok(())
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

fn audit_event<'a>(
    actor: Actor<'a>,
    action: &'a str,
    plugin: &str,
    details: Value,
) -> AuditEvent<'a> {
    AuditEvent {
        principal: actor.principal,
        request_id: actor.request_id,
        workspace_id: None,
        action,
        target: Some(plugin.to_string()),
        details,
    }
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

fn tools_json(tools: &[ToolDescriptor]) -> Value {
    Value::Array(
        tools
            .iter()
            .map(|tool| {
                json!({
                    "name": tool.name,
                    "description": tool.description,
                    "input_schema": serde_json::from_str::<Value>(&tool.input_schema).unwrap_or(Value::Null),
                    "output_schema": serde_json::from_str::<Value>(&tool.output_schema).unwrap_or(Value::Null),
                })
            })
            .collect(),
    )
}

fn nodes_json(plugin: &LoadedPlugin) -> Value {
    let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    Value::Array(
        plugin
            .nodes
            .iter()
            .map(|node| {
                json!({
                    "node_type": node.node_type,
                    "description": node.description,
                    "config_schema": parse(&node.config_schema),
                    "input_schema": parse(&node.input_schema),
                    "output_schema": parse(&node.output_schema),
                    "branches": node.branches,
                })
            })
            .collect(),
    )
}

const VERSION_QUERY_ALL: &str = "SELECT v.plugin, v.version, v.sha256, v.size_bytes, v.manifest, \
     v.tools, v.nodes, v.limits, v.grants, (p.active_version = v.version) IS TRUE AS active, \
     v.created_at FROM plugin_versions v JOIN plugins p ON p.name = v.plugin \
     WHERE v.plugin = $1 ORDER BY v.created_at, v.version";

const VERSION_QUERY_ONE: &str = "SELECT v.plugin, v.version, v.sha256, v.size_bytes, v.manifest, \
     v.tools, v.nodes, v.limits, v.grants, (p.active_version = v.version) IS TRUE AS active, \
     v.created_at FROM plugin_versions v JOIN plugins p ON p.name = v.plugin \
     WHERE v.plugin = $1 AND v.version = $2";
