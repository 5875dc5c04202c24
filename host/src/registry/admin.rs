//! Registry changes (install, activate, rollback, enable/disable, delete, grants,
//! settings, secrets) and the admin queries. Every change is one transaction that
//! writes the audit log and notifies other hosts, then reloads this host's entry.

use anyhow::Context;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::manifest::{Capabilities, Manifest};
use super::{
    Actor, CHANNEL, PluginInfo, Registry, RegistryError, Result, VersionInfo, input_validators,
};
use crate::audit::{self, AuditEvent};
use crate::db::sandbox::SandboxError;
use crate::runtime::LoadedPlugin;
use crate::runtime::bindings::ToolDescriptor;

/// The `PluginInfo` columns, spliced into literal SQL at compile time.
macro_rules! plugin_columns {
    () => {
        "SELECT name, kind, active_version, previous_version, enabled, settings, created_at, \
         updated_at FROM plugins"
    };
}

impl Registry {
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
        self.prepare_database(name, Some(version), None).await?;
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
        // Plugins are the instance's, so every workspace hears of it (its nodes and
        // tools change), in the activation's transaction like any domain event.
        if current.active_version.as_deref() != Some(version) {
            sqlx::query(
                "INSERT INTO events (workspace_id, type, subject, payload, actor) \
                 SELECT id, 'plugin.version.activated', $1, \
                     jsonb_build_object('plugin', $1::text, 'version', $2::text, \
                                        'previous', $3::text), $4 \
                 FROM workspaces",
            )
            .bind(name)
            .bind(version)
            .bind(&current.active_version)
            .bind(actor.principal.actor())
            .execute(&mut *tx)
            .await?;
        }
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
        self.prepare_database(name, None, None).await?;
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
        self.prepare_database(name, None, None).await?;
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
        // Checked before the transaction, so the sandbox is set up only for a grant
        // that stands (a version's manifest never changes).
        self.plugin(name).await?;
        let manifest: Value = sqlx::query_scalar(
            "SELECT manifest FROM plugin_versions WHERE plugin = $1 AND version = $2",
        )
        .bind(name)
        .bind(version)
        .fetch_optional(&self.pool)
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
        self.prepare_database(name, None, Some((version, &grants)))
            .await?;
        let mut tx = self.pool.begin().await?;
        self.lock_plugin(&mut tx, name).await?;
        let updated = sqlx::query(
            "UPDATE plugin_versions SET grants = $3 WHERE plugin = $1 AND version = $2",
        )
        .bind(name)
        .bind(version)
        .bind(serde_json::to_value(&grants).context("encoding grants")?)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(RegistryError::NotFound(format!(
                "{name} has no version {version}"
            )));
        }
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
        self.prepare_database(name, None, None).await?;
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

    /// Set up the database sandbox (roles, schema, pending migrations) the plugin's
    /// active version will need after a change: `activating` names the version a change
    /// makes active, `granting` a version and the grants a change gives it. Runs before
    /// the change's transaction opens, because the set-up takes pooled connections of
    /// its own and must not wait for one while the transaction holds another; the
    /// transaction then only changes privileges, on its own connection.
    async fn prepare_database(
        &self,
        name: &str,
        activating: Option<&str>,
        granting: Option<(&str, &Capabilities)>,
    ) -> Result<()> {
        let target: Option<(String, Value, Value)> = sqlx::query_as(
            "SELECT v.version, v.grants, v.manifest FROM plugins p \
             JOIN plugin_versions v ON v.plugin = p.name \
              AND v.version = coalesce($2, p.active_version) \
             WHERE p.name = $1",
        )
        .bind(name)
        .bind(activating)
        .fetch_optional(&self.pool)
        .await?;
        // Nothing to set up, or the change fails in its transaction with its own error.
        let Some((version, grants, manifest)) = target else {
            return Ok(());
        };
        let granted = match granting {
            Some((granted_version, grants)) if granted_version == version => {
                grants.database.is_some()
            }
            _ => serde_json::from_value::<Capabilities>(grants)
                .context("stored grants")?
                .database
                .is_some(),
        };
        if !granted {
            return Ok(());
        }
        let manifest: Manifest = serde_json::from_value(manifest).context("stored manifest")?;
        self.services
            .sandbox
            .prepare(name, &version, &manifest.migrations)
            .await
            .map_err(sandbox_error)
    }

    /// Keep the plugin's database role in step with its active version's grant before
    /// the change commits, on the transaction's connection ([`Self::prepare_database`]
    /// set up what that needs).
    async fn sync_database_role(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        name: &str,
    ) -> Result<()> {
        let active: Option<(String, Value, Value)> = sqlx::query_as(
            "SELECT v.version, v.grants, v.manifest FROM plugins p \
             JOIN plugin_versions v ON v.plugin = p.name AND v.version = p.active_version \
             WHERE p.name = $1",
        )
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
        let Some((version, grants, manifest)) = active else {
            return Ok(());
        };
        let grants: Capabilities = serde_json::from_value(grants).context("stored grants")?;
        let manifest: Manifest = serde_json::from_value(manifest).context("stored manifest")?;
        self.services
            .sandbox
            .sync(
                tx,
                name,
                &version,
                grants.database.as_ref(),
                &manifest.migrations,
            )
            .await
            .map_err(sandbox_error)
    }

    /// Audit, notify, commit, then bring this host's map in line with the database.
    async fn commit_and_reload(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
        name: &str,
        event: AuditEvent<'_>,
    ) -> Result<PluginInfo> {
        self.sync_database_role(&mut tx, name).await?;
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
}

fn sandbox_error(error: SandboxError) -> RegistryError {
    match error {
        SandboxError::Invalid(message) => RegistryError::Invalid(message),
        SandboxError::Internal(e) => RegistryError::Internal(e),
    }
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
