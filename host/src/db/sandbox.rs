//! The database capability's sandbox: one PostgreSQL login role per plugin, privileges
//! kept in step with its grant, its own schema with append-only migrations, and a small
//! connection pool per plugin that logs in as that role.
//!
//! Why a login role rather than `SET ROLE` on the host's connections: `RESET ROLE` (or
//! `SET SESSION AUTHORIZATION DEFAULT`) would take a plugin back to the host's role.
//! Logged in as itself, there is nothing to go back to. Workspace isolation does not
//! trust settings either (any role may set `app.workspace_id`): see the migration
//! `20261122000003_database_sandbox.sql` and docs/decisions.md.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

mod grant;
mod migration_text;

pub use grant::{DatabaseCapability, TableAccess};
pub use migration_text::forbidden_in_migration;

/// The names a plugin's sandbox uses. Roles are per cluster, so their names include
/// a hash of the database name; schemas are per database.
#[derive(Debug, Clone)]
pub struct SandboxNames {
    pub login_role: String,
    pub owner_role: String,
    pub schema: String,
}

impl SandboxNames {
    pub fn new(database: &str, plugin: &str) -> Self {
        let hash = hex::encode(Sha256::digest(format!("{database}/{plugin}")));
        let short: String = plugin.chars().take(40).collect();
        // PostgreSQL cuts identifiers at 63 bytes; keep well under it.
        let schema = if plugin.len() <= 55 {
            format!("plugin_{plugin}")
        } else {
            format!("plugin_{short}_{}", &hash[..8])
        };
        SandboxNames {
            login_role: format!("ahp_{}_{short}", &hash[..16]),
            owner_role: format!("aho_{}_{short}", &hash[..16]),
            schema,
        }
    }
}

/// Why a plugin's database set-up failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The grant or a migration is wrong; the message says what (422 for admins).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for SandboxError {
    fn from(err: sqlx::Error) -> Self {
        SandboxError::Internal(err.into())
    }
}

/// A plugin's pool and the key that binds its transactions to a workspace.
#[derive(Clone)]
struct PluginPool {
    pool: PgPool,
    bind_key: String,
}

pub struct Sandbox {
    host_pool: PgPool,
    database: String,
    max_connections: u32,
    pools: Mutex<HashMap<String, PluginPool>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("database", &self.database)
            .finish()
    }
}

/// Per-call settings of a plugin transaction.
#[derive(Debug, Clone, Copy)]
pub struct StatementLimits {
    pub timeout: Duration,
    pub max_rows: u32,
    /// Most bytes of column values one query may return (as they come off the wire).
    pub max_result_bytes: u64,
}

impl Default for StatementLimits {
    /// The flags' defaults (`--plugin-db-statement-timeout`, `--plugin-db-max-rows`,
    /// `--plugin-db-max-result-bytes`).
    fn default() -> Self {
        StatementLimits {
            timeout: Duration::from_secs(5),
            max_rows: 10_000,
            max_result_bytes: 16 << 20,
        }
    }
}

impl Sandbox {
    pub fn new(host_pool: PgPool, max_connections: u32) -> Self {
        let options = host_pool.connect_options();
        let database = options
            .get_database()
            .unwrap_or(options.get_username())
            .to_string();
        Sandbox {
            host_pool,
            database,
            max_connections: max_connections.max(1),
            pools: Mutex::new(HashMap::new()),
        }
    }

    pub fn names(&self, plugin: &str) -> SandboxNames {
        SandboxNames::new(&self.database, plugin)
    }

    /// Create a plugin's roles and schema and run its pending migrations, each step
    /// committed on its own: the owner's connection must see the roles, and the
    /// migrations run logged in as that owner. Call it before the transaction of the
    /// registry change that needs them, never inside one: it takes connections from
    /// the pool, and a transaction waiting for one while it holds another can starve
    /// the pool (two transactions doing so deadlock it until the acquire timeout).
    pub async fn prepare(
        &self,
        plugin: &str,
        version: &str,
        migrations: &[String],
    ) -> Result<(), SandboxError> {
        let names = self.names(plugin);
        let password = self.ensure_roles(plugin, &names).await?;
        self.migrate(plugin, version, &names, &password, migrations)
            .await
    }

    /// Bring a plugin's privileges in line with what its active version is granted,
    /// inside `tx` (together with the registry change that caused them) and on `tx`'s
    /// connection alone. A database grant needs [`Sandbox::prepare`] to have run for
    /// `migrations` first; if it hasn't (another host changed the plugin in between),
    /// the change is refused and can be retried.
    pub async fn sync(
        &self,
        tx: &mut PgConnection,
        plugin: &str,
        version: &str,
        grant: Option<&DatabaseCapability>,
        migrations: &[String],
    ) -> Result<(), SandboxError> {
        let names = self.names(plugin);
        let Some(grant) = grant else {
            return self.revoke_all(tx, &names).await;
        };
        if !self.prepared(tx, plugin, &names, migrations).await? {
            return Err(SandboxError::Invalid(format!(
                "the database of {plugin} {version} was not set up (it changed meanwhile); \
                 try again"
            )));
        }
        self.grant_privileges(tx, &names, grant).await
    }

    /// Whether the roles are recorded and exist and every one of `migrations` ran.
    async fn prepared(
        &self,
        tx: &mut PgConnection,
        plugin: &str,
        names: &SandboxNames,
        migrations: &[String],
    ) -> Result<bool, SandboxError> {
        let roles: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM agenthost_sandbox.roles WHERE plugin = $1) \
                AND (SELECT count(*) FROM pg_roles WHERE rolname IN ($2, $3)) = 2",
        )
        .bind(plugin)
        .bind(&names.login_role)
        .bind(&names.owner_role)
        .fetch_one(&mut *tx)
        .await?;
        if !roles {
            return Ok(false);
        }
        let applied: Vec<String> = sqlx::query_scalar(
            "SELECT sha256 FROM agenthost_sandbox.migrations WHERE plugin = $1 ORDER BY index",
        )
        .bind(plugin)
        .fetch_all(&mut *tx)
        .await?;
        Ok(applied.len() >= migrations.len()
            && migrations
                .iter()
                .zip(&applied)
                .all(|(sql, sha256)| hex::encode(Sha256::digest(sql)) == *sha256))
    }

    /// Create the roles and schema if missing; returns the owner/login password.
    async fn ensure_roles(
        &self,
        plugin: &str,
        names: &SandboxNames,
    ) -> Result<String, SandboxError> {
        let mut tx = self.host_pool.begin().await?;
        // Serialise set-ups of one plugin across hosts.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('agenthost_sandbox:' || $1))")
            .bind(plugin)
            .execute(&mut *tx)
            .await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT password FROM agenthost_sandbox.roles WHERE plugin = $1")
                .bind(plugin)
                .fetch_optional(&mut *tx)
                .await?;
        let recorded = existing.is_some();
        let password = match existing {
            Some(password) => password,
            None => {
                let password = Alphanumeric.sample_string(&mut rand::rng(), 40);
                let bind_key = Alphanumeric.sample_string(&mut rand::rng(), 48);
                sqlx::query(
                    "INSERT INTO agenthost_sandbox.roles \
                     (plugin, login_role, owner_role, schema_name, password, bind_key) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(plugin)
                .bind(&names.login_role)
                .bind(&names.owner_role)
                .bind(&names.schema)
                .bind(&password)
                .bind(&bind_key)
                .execute(&mut *tx)
                .await?;
                password
            }
        };
        for role in [&names.login_role, &names.owner_role] {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                    .bind(role)
                    .fetch_one(&mut *tx)
                    .await?;
            // A role we recorded already has its password; set it only on creation (or
            // when the role outlived our record of it).
            if exists && recorded {
                continue;
            }
            let verb = if exists { "ALTER" } else { "CREATE" };
            // The password is our own random alphanumeric string: safe to quote inline
            // (DDL takes no parameters).
            let ddl = format!(
                "{verb} ROLE {} LOGIN NOSUPERUSER NOINHERIT NOCREATEDB NOCREATEROLE \
                 NOREPLICATION NOBYPASSRLS PASSWORD '{password}'",
                ident(role)
            );
            sqlx::raw_sql(AssertSqlSafe(ddl)).execute(&mut *tx).await?;
        }
        let (login, owner, schema) = (
            ident(&names.login_role),
            ident(&names.owner_role),
            ident(&names.schema),
        );
        let database = ident(&self.database);
        let setup = format!(
            "CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {owner};
             GRANT {owner} TO CURRENT_USER;
             GRANT USAGE ON SCHEMA {schema} TO {login};
             ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema}
                 REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
             ALTER ROLE {login} IN DATABASE {database} SET search_path = {schema}, data;
             ALTER ROLE {owner} IN DATABASE {database} SET search_path = {schema};
             ALTER ROLE {login} IN DATABASE {database} SET statement_timeout = '60s';
             ALTER ROLE {login} IN DATABASE {database}
                 SET idle_in_transaction_session_timeout = '60s';"
        );
        sqlx::raw_sql(AssertSqlSafe(setup))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(password)
    }

    /// Run the migrations that have not run yet, logged in as the schema's owner, so
    /// a migration can't do more than the owner may (a `RESET ROLE` in it goes nowhere).
    async fn migrate(
        &self,
        plugin: &str,
        version: &str,
        names: &SandboxNames,
        password: &str,
        migrations: &[String],
    ) -> Result<(), SandboxError> {
        let applied: Vec<(i32, String)> = sqlx::query_as(
            "SELECT index, sha256 FROM agenthost_sandbox.migrations \
             WHERE plugin = $1 ORDER BY index",
        )
        .bind(plugin)
        .fetch_all(&self.host_pool)
        .await?;
        for (index, sha256) in &applied {
            let current = usize::try_from(*index)
                .ok()
                .and_then(|i| migrations.get(i))
                .map(|sql| hex::encode(Sha256::digest(sql)));
            if let Some(current) = current
                && &current != sha256
            {
                return Err(SandboxError::Invalid(format!(
                    "migration {index} of {plugin} differs from the one that already ran; \
                     migrations are append-only: add a new one instead"
                )));
            }
        }
        let pending = &migrations[applied.len().min(migrations.len())..];
        if pending.is_empty() {
            return Ok(());
        }
        let options = self.role_options(&names.owner_role, password);
        let mut owner = sqlx::ConnectOptions::connect(&options)
            .await
            .context("connecting as the plugin's schema owner")?;
        // All pending migrations and the row-security check form one transaction: a
        // failure leaves the schema as it was.
        let mut tx = sqlx::Connection::begin(&mut owner).await?;
        for (offset, sql) in pending.iter().enumerate() {
            let index = applied.len() + offset;
            if let Some(why) = forbidden_in_migration(sql) {
                return Err(SandboxError::Invalid(format!(
                    "migration {index} of {plugin} is refused: {why}"
                )));
            }
            if let Err(err) = sqlx::raw_sql(AssertSqlSafe(sql.clone()))
                .execute(&mut *tx)
                .await
            {
                return Err(SandboxError::Invalid(format!(
                    "migration {index} of {plugin} failed: {}",
                    database_message(&err)
                )));
            }
        }
        enforce_row_security(&mut tx, names)
            .await
            .map_err(|error| match error {
                SandboxError::Invalid(why) => {
                    SandboxError::Invalid(format!("the migrations of {plugin} are refused: {why}"))
                }
                other => other,
            })?;
        tx.commit().await?;
        sqlx::Connection::close(owner).await.ok();
        for (offset, sql) in pending.iter().enumerate() {
            sqlx::query(
                "INSERT INTO agenthost_sandbox.migrations (plugin, index, sha256, version) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(plugin)
            .bind(i32::try_from(applied.len() + offset).unwrap_or(i32::MAX))
            .bind(hex::encode(Sha256::digest(sql)))
            .bind(version)
            .execute(&self.host_pool)
            .await?;
        }
        Ok(())
    }

    /// Exactly the granted shared tables, plus read/write on the plugin's own tables.
    async fn grant_privileges(
        &self,
        tx: &mut PgConnection,
        names: &SandboxNames,
        grant: &DatabaseCapability,
    ) -> Result<(), SandboxError> {
        self.revoke_all(tx, names).await?;
        let (login, schema) = (ident(&names.login_role), ident(&names.schema));
        let mut ddl = format!(
            "GRANT USAGE ON SCHEMA data, {schema} TO {login};
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {login};
             GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {login};"
        );
        for (table, access) in &grant.tables {
            let exists: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = 'data' AND tablename = $1)",
            )
            .bind(table)
            .fetch_one(&mut *tx)
            .await?;
            if !exists {
                return Err(SandboxError::Invalid(format!(
                    "there is no shared table {table:?} (tables live in schema `data`)"
                )));
            }
            let privileges = match access {
                TableAccess::Read => "SELECT",
                TableAccess::Write => "SELECT, INSERT, UPDATE, DELETE",
            };
            ddl.push_str(&format!(
                "GRANT {privileges} ON data.{} TO {login};",
                ident(table)
            ));
        }
        sqlx::raw_sql(AssertSqlSafe(ddl)).execute(&mut *tx).await?;
        Ok(())
    }

    async fn revoke_all(
        &self,
        tx: &mut PgConnection,
        names: &SandboxNames,
    ) -> Result<(), SandboxError> {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                .bind(&names.login_role)
                .fetch_one(&mut *tx)
                .await?;
        if !exists {
            return Ok(());
        }
        let login = ident(&names.login_role);
        let ddl = format!(
            "REVOKE ALL ON ALL TABLES IN SCHEMA data FROM {login};
             REVOKE ALL ON SCHEMA data FROM {login};"
        );
        sqlx::raw_sql(AssertSqlSafe(ddl)).execute(&mut *tx).await?;
        Ok(())
    }

    fn role_options(&self, role: &str, password: &str) -> PgConnectOptions {
        (*self.host_pool.connect_options())
            .clone()
            .username(role)
            .password(password)
            .application_name(&format!("agenthost plugin role {role}"))
    }

    /// The plugin's pool, created on first use.
    async fn plugin_pool(&self, plugin: &str) -> Result<PluginPool, SandboxError> {
        if let Some(pool) = self.lock_pools().get(plugin) {
            return Ok(pool.clone());
        }
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT login_role, password, bind_key FROM agenthost_sandbox.roles WHERE plugin = $1",
        )
        .bind(plugin)
        .fetch_optional(&self.host_pool)
        .await?;
        let (role, password, bind_key) =
            row.ok_or_else(|| SandboxError::Invalid(format!("{plugin} has no database role yet")))?;
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .min_connections(0)
            .idle_timeout(Duration::from_secs(300))
            .acquire_timeout(Duration::from_secs(5))
            .test_before_acquire(false)
            .after_release(|connection, _| Box::pin(reset_session(connection)))
            .connect_lazy_with(self.role_options(&role, &password));
        let entry = PluginPool { pool, bind_key };
        let mut pools = self.lock_pools();
        Ok(pools.entry(plugin.to_string()).or_insert(entry).clone())
    }

    fn lock_pools(&self) -> std::sync::MutexGuard<'_, HashMap<String, PluginPool>> {
        self.pools.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Start a transaction as `plugin`, bound to `workspace`, with `limits` applied.
    pub async fn begin(
        &self,
        plugin: &str,
        workspace: Uuid,
        limits: StatementLimits,
    ) -> Result<Transaction<'static, Postgres>, SandboxError> {
        let PluginPool { pool, bind_key } = self.plugin_pool(plugin).await?;
        let mut tx = pool.begin().await?;
        let timeout_ms = i32::try_from(limits.timeout.as_millis()).unwrap_or(i32::MAX);
        sqlx::query("SELECT agenthost_sandbox.bind($1, $2, $3)")
            .bind(workspace)
            .bind(&bind_key)
            .bind(timeout_ms)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// Close every plugin pool (at shutdown, before PostgreSQL stops).
    pub async fn close(&self) {
        let pools: Vec<PgPool> = self.lock_pools().drain().map(|(_, p)| p.pool).collect();
        for pool in pools {
            pool.close().await;
        }
    }
}

/// Clear whatever a call could leave on its connection besides its transaction (which
/// ended already): session settings, cursors, listeners, session advisory locks. A
/// connection that can't be reset is closed rather than reused. Runs in the pool's own
/// task after the call, so calls don't wait for it.
async fn reset_session(connection: &mut PgConnection) -> Result<bool, sqlx::Error> {
    let reset = sqlx::raw_sql(
        "RESET ALL; CLOSE ALL; UNLISTEN *; SELECT agenthost_sandbox.reset_session();",
    )
    .execute(connection)
    .await;
    Ok(reset.is_ok())
}

/// The isolation policy every plugin table gets, and nothing else.
const ISOLATION_POLICY: &str = "workspace_isolation";
const ISOLATION_RULE: &str = "workspace_id = (SELECT agenthost_sandbox.current_workspace())";

/// Every table in a plugin's schema is a tenant table: it must have a `workspace_id
/// uuid` column, which defaults to the bound workspace, row-level security is
/// (re-)forced after every migration run, and its only policy is the host's, with the
/// host's expression. Objects that would see rows past the policies are refused:
/// materialized views (snapshots taken by the owner), views that run as their owner,
/// SECURITY DEFINER functions (which could turn forced row security off at call time).
/// Runs as the owner, in the migrations' transaction.
async fn enforce_row_security(
    tx: &mut PgConnection,
    names: &SandboxNames,
) -> Result<(), SandboxError> {
    refuse_unisolated_objects(tx, names).await?;
    let tables: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT c.relname::text, a.atttypid::regtype::text \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'workspace_id' \
              AND NOT a.attisdropped \
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')",
    )
    .bind(&names.schema)
    .fetch_all(&mut *tx)
    .await?;
    for (table, column_type) in tables {
        if column_type.as_deref() != Some("uuid") {
            return Err(SandboxError::Invalid(format!(
                "table {table} in the plugin's schema needs a `workspace_id uuid NOT NULL` \
                 column: every plugin table is per workspace"
            )));
        }
        let qualified = format!("{}.{}", ident(&names.schema), ident(&table));
        let ddl = format!(
            "ALTER TABLE {qualified} ENABLE ROW LEVEL SECURITY;
             ALTER TABLE {qualified} FORCE ROW LEVEL SECURITY;
             ALTER TABLE {qualified} ALTER COLUMN workspace_id
                 SET DEFAULT agenthost_sandbox.current_workspace();
             CREATE POLICY agenthost_reference ON {qualified}
                 USING ({ISOLATION_RULE}) WITH CHECK ({ISOLATION_RULE});"
        );
        sqlx::raw_sql(AssertSqlSafe(ddl)).execute(&mut *tx).await?;
        // Every policy on the table, compared with the reference just made: same
        // command, permissive, for every role, same expressions.
        let policies: Vec<(String, bool)> = sqlx::query_as(
            "SELECT p.polname::text, \
                    (p.polcmd, p.polpermissive, p.polroles, \
                     pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)) \
                    IS NOT DISTINCT FROM \
                    (r.polcmd, r.polpermissive, r.polroles, \
                     pg_get_expr(r.polqual, r.polrelid), pg_get_expr(r.polwithcheck, r.polrelid)) \
             FROM pg_policy p JOIN pg_policy r \
                  ON r.polrelid = p.polrelid AND r.polname = 'agenthost_reference' \
             WHERE p.polrelid = $1::regclass AND p.polname <> 'agenthost_reference'",
        )
        .bind(&qualified)
        .fetch_all(&mut *tx)
        .await?;
        for (policy, same) in &policies {
            if policy != ISOLATION_POLICY {
                return Err(SandboxError::Invalid(format!(
                    "table {table} has a row-level security policy {policy:?}; the host \
                     owns the policies of plugin tables (each has exactly its \
                     {ISOLATION_POLICY:?} policy), so migrations may not add any"
                )));
            }
            if !same {
                return Err(SandboxError::Invalid(format!(
                    "the {ISOLATION_POLICY:?} policy of table {table} was changed by a \
                     migration; it must stay the host's ({ISOLATION_RULE})"
                )));
            }
        }
        let rename = if policies.is_empty() {
            format!("ALTER POLICY agenthost_reference ON {qualified} RENAME TO {ISOLATION_POLICY}")
        } else {
            format!("DROP POLICY agenthost_reference ON {qualified}")
        };
        sqlx::raw_sql(AssertSqlSafe(rename))
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Views, functions and other relations in a plugin's schema that would read rows
/// without the plugin's own row-level security applying.
async fn refuse_unisolated_objects(
    tx: &mut PgConnection,
    names: &SandboxNames,
) -> Result<(), SandboxError> {
    let relations: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, c.relkind::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND ( \
             c.relkind IN ('m', 'f') \
             OR (c.relkind = 'v' AND NOT EXISTS ( \
                 SELECT 1 FROM pg_options_to_table(c.reloptions) o \
                 WHERE o.option_name = 'security_invoker' \
                   AND lower(o.option_value) IN ('true', 'on', 'yes', '1')))) \
         ORDER BY c.relname",
    )
    .bind(&names.schema)
    .fetch_all(&mut *tx)
    .await?;
    if let Some((name, kind)) = relations.first() {
        let why = match kind.as_str() {
            "m" => format!(
                "materialized view {name}: a materialized view is a snapshot with no \
                 row-level security, so plugin schemas may not have one"
            ),
            "v" => format!(
                "view {name} runs with its owner's rights; plugin views must be \
                 created WITH (security_invoker = true) so the caller's row-level \
                 security applies"
            ),
            _ => format!("foreign table {name} is not allowed in a plugin schema"),
        };
        return Err(SandboxError::Invalid(why));
    }
    let definers: Vec<String> = sqlx::query_scalar(
        "SELECT p.oid::regprocedure::text FROM pg_proc p \
         JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = $1 AND p.prosecdef ORDER BY 1",
    )
    .bind(&names.schema)
    .fetch_all(&mut *tx)
    .await?;
    if let Some(function) = definers.first() {
        return Err(SandboxError::Invalid(format!(
            "function {function} is SECURITY DEFINER: it would run as the owner of the \
             plugin's tables, who can switch their row-level security off; plugin \
             functions must be SECURITY INVOKER"
        )));
    }
    Ok(())
}

/// A quoted SQL identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The server's message for a database error, without sqlx's wrapping.
pub fn database_message(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => db.message().to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_postgres_identifiers_and_differ_per_database() {
        let long = "a".repeat(63);
        let names = SandboxNames::new("agenthost", &long);
        for name in [&names.login_role, &names.owner_role, &names.schema] {
            assert!(name.len() <= 63, "{name} is {} bytes", name.len());
        }
        let other = SandboxNames::new("other", &long);
        assert_ne!(names.login_role, other.login_role);
        assert_eq!(SandboxNames::new("x", "dexter").schema, "plugin_dexter");
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
    }
}
