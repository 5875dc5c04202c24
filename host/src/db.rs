//! Database access: opening the pool (embedded or external PostgreSQL), checking the
//! server can host us, and the migrations.

pub mod embedded;
pub mod sandbox;

use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::config::Config;
use embedded::{EmbeddedOptions, EmbeddedPostgres};

/// Migrations are compiled into the binary, so a deployed host needs no source tree.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Extensions our migrations (and apalis-postgres's, later) create.
pub const REQUIRED_EXTENSIONS: [&str; 3] = ["vector", "pgcrypto", "hstore"];
const MIN_SERVER_VERSION_NUM: i32 = 150000;
const EMBEDDED_DATABASE: &str = "agenthost";

/// The pool plus, when we run it, the embedded server that backs it.
#[derive(Debug)]
pub struct Database {
    pub pool: PgPool,
    pub embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// Open the configured database: `DATABASE_URL` if set, otherwise start the
    /// embedded PostgreSQL. Checks the server version and extensions.
    pub async fn open(config: &Config) -> Result<Self> {
        let (options, embedded) = match &config.database_url {
            Some(url) => {
                let options = PgConnectOptions::from_str(url)
                    .context("DATABASE_URL is not a valid PostgreSQL URL")?;
                (options, None)
            }
            None => {
                let server = EmbeddedPostgres::start(EmbeddedOptions {
                    install_dir: config.pg_dir.clone(),
                    data_dir: config.data_dir.clone(),
                    run_as_when_root: config.pg_user.clone(),
                    unsafe_fast: config.pg_unsafe_fast,
                })
                .await?;
                server.ensure_database(EMBEDDED_DATABASE).await?;
                (server.connect_options(EMBEDDED_DATABASE), Some(server))
            }
        };
        let pool = PgPoolOptions::new()
            .max_connections(config.db_max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .context("connecting to PostgreSQL")?;
        check_server(&pool).await?;
        Ok(Database { pool, embedded })
    }

    /// Close the pool, then stop the embedded server (if any) cleanly.
    pub async fn close(self) -> Result<()> {
        self.pool.close().await;
        if let Some(server) = self.embedded {
            server.stop().await?;
        }
        Ok(())
    }
}

/// Refuse servers we cannot run on, naming what is missing.
pub async fn check_server(pool: &PgPool) -> Result<()> {
    let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
        .fetch_one(pool)
        .await?;
    if version < MIN_SERVER_VERSION_NUM {
        bail!("PostgreSQL {version} is too old: Agenthost needs PostgreSQL 15 or newer");
    }
    let missing = missing_extensions(pool, &REQUIRED_EXTENSIONS).await?;
    if !missing.is_empty() {
        bail!(
            "the PostgreSQL server lacks required extensions: {} (install them on the \
             server, e.g. the pgvector package for `vector`, the contrib package for \
             `pgcrypto` and `hstore`)",
            missing.join(", ")
        );
    }
    Ok(())
}

/// Those of `wanted` that the server cannot install, in the order given.
pub async fn missing_extensions(pool: &PgPool, wanted: &[&str]) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT wanted FROM unnest($1::text[]) WITH ORDINALITY AS w(wanted, n) \
         WHERE wanted NOT IN (SELECT name FROM pg_available_extensions) ORDER BY n",
    )
    .bind(wanted)
    .fetch_all(pool)
    .await
}

/// Apply pending migrations. Concurrent hosts are serialised by sqlx's advisory lock.
pub async fn migrate(pool: &PgPool) -> Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("applying database migrations")
}

/// True when every migration this binary knows of has been applied successfully.
pub async fn migrations_applied(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let Some(latest) = MIGRATOR.iter().map(|m| m.version).max() else {
        return Ok(true);
    };
    let applied: Option<i64> =
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await?;
    Ok(applied.is_some_and(|version| version >= latest))
}

/// A page size for a list query: `default` when none is asked for, within 1..=`max`.
pub(crate) fn clamp_limit(limit: Option<i64>, default: i64, max: i64) -> i64 {
    limit.unwrap_or(default).clamp(1, max)
}
