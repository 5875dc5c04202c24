//! `agenthost:plugin/database`: typed SQL in a per-call transaction, as the plugin's
//! own role, bound to the calling workspace (see `db::sandbox`).

mod statement;
mod values;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use sqlx::{Column, Executor, Postgres, Row, Statement, Transaction};
use uuid::Uuid;
use wasmtime::component::{HasSelf, Linker};

use crate::db::sandbox::{Sandbox, SandboxError, StatementLimits, database_message};
use crate::runtime::bindings::Error;
use crate::runtime::bindings::agenthost::plugin::database::{self as wit, Rows, Value};

/// What a call may do with the database, and its open transaction.
#[derive(Default)]
pub struct DatabaseCtx {
    pub plugin: String,
    /// Present when the active version is granted the capability.
    pub sandbox: Option<Arc<Sandbox>>,
    pub workspace: Option<Uuid>,
    pub limits: StatementLimits,
    transaction: Option<Transaction<'static, Postgres>>,
}

impl Clone for DatabaseCtx {
    /// A copy for a new call: same grant, no transaction.
    fn clone(&self) -> Self {
        DatabaseCtx {
            plugin: self.plugin.clone(),
            sandbox: self.sandbox.clone(),
            workspace: self.workspace,
            limits: self.limits,
            transaction: None,
        }
    }
}

impl std::fmt::Debug for DatabaseCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseCtx")
            .field("plugin", &self.plugin)
            .field("granted", &self.sandbox.is_some())
            .field("in_transaction", &self.transaction.is_some())
            .finish()
    }
}

pub trait DatabaseView {
    fn database(&mut self) -> &mut DatabaseCtx;
}

pub fn add_to_linker<T: DatabaseView + Send + 'static>(
    linker: &mut Linker<T>,
) -> anyhow::Result<()> {
    wit::add_to_linker::<T, HasSelf<DatabaseCtx>>(linker, |state| state.database())?;
    Ok(())
}

impl DatabaseCtx {
    /// A grant (`sandbox` present) or its absence, for calls to `plugin`.
    pub fn new(plugin: &str, sandbox: Option<Arc<Sandbox>>, limits: StatementLimits) -> Self {
        DatabaseCtx {
            plugin: plugin.to_string(),
            sandbox,
            workspace: None,
            limits,
            transaction: None,
        }
    }

    /// This grant, for a call made by `workspace` (none: the call can't reach the
    /// database).
    pub fn for_workspace(mut self, workspace: Option<Uuid>) -> Self {
        self.workspace = workspace;
        self.transaction = None;
        self
    }

    /// End the call's transaction: commit when the call succeeded, else roll back.
    pub async fn finish(&mut self, succeeded: bool) -> Result<(), Error> {
        let Some(transaction) = self.transaction.take() else {
            return Ok(());
        };
        if succeeded {
            transaction
                .commit()
                .await
                .map_err(|e| statement_error(&e, None))
        } else {
            transaction.rollback().await.ok();
            Ok(())
        }
    }

    /// The open transaction, started (and bound to the workspace) on first use.
    async fn transaction(&mut self) -> Result<&mut Transaction<'static, Postgres>, Error> {
        let Some(sandbox) = &self.sandbox else {
            return Err(Error::Denied(
                "the database capability is not granted to this plugin version".into(),
            ));
        };
        let workspace = self.workspace.ok_or_else(|| {
            Error::Invalid("this call has no workspace to run statements for".into())
        })?;
        if self.transaction.is_none() {
            let limits = self.limits;
            let transaction = sandbox
                .begin(&self.plugin, workspace, limits)
                .await
                .map_err(|e| match e {
                    SandboxError::Invalid(message) => Error::Unavailable(message),
                    SandboxError::Internal(e) => Error::Unavailable(crate::error::logged(
                        "the database is not available to this plugin",
                        e.as_ref(),
                    )),
                })?;
            self.transaction = Some(transaction);
        }
        self.transaction
            .as_mut()
            .ok_or_else(|| Error::Internal("no transaction".into()))
    }

    /// Refuse before touching the database: no grant, or not a plain DML statement.
    fn checked(&self, sql: &str) -> Result<(), Error> {
        if self.sandbox.is_none() {
            return Err(Error::Denied(
                "the database capability is not granted to this plugin version".into(),
            ));
        }
        statement::check(sql)
    }

    /// A failed statement rolls the whole transaction back, so the plugin never meets
    /// PostgreSQL's "current transaction is aborted"; its next statement starts afresh.
    async fn fail(&mut self, error: Error) -> Error {
        if let Some(transaction) = self.transaction.take() {
            transaction.rollback().await.ok();
        }
        error
    }
}

impl wit::Host for DatabaseCtx {
    async fn query(&mut self, sql: String, params: Vec<Value>) -> Result<Rows, Error> {
        self.checked(&sql)?;
        let limits = self.limits;
        let query = values::bind(sqlx::query(sqlx::AssertSqlSafe(sql.clone())), params)?;
        let transaction = self.transaction().await?;
        let fetch = async {
            let mut stream = query.fetch(&mut **transaction);
            let mut rows = Vec::new();
            let mut columns = Vec::new();
            let mut bytes = 0u64;
            while let Some(row) = stream.next().await {
                let row = row.map_err(|e| statement_error(&e, Some(limits)))?;
                if columns.is_empty() {
                    columns = row.columns().iter().map(|c| c.name().to_string()).collect();
                }
                if rows.len() as u64 >= u64::from(limits.max_rows) {
                    return Err(Error::Invalid(format!(
                        "the query returned more than {} rows, the cap per query; \
                         add a LIMIT or aggregate in SQL",
                        limits.max_rows
                    )));
                }
                // Counted before decoding, row by row as they stream in, so the host
                // never holds more than the cap plus one row.
                bytes += values::row_bytes(&row);
                if bytes > limits.max_result_bytes {
                    return Err(Error::Invalid(format!(
                        "the query's result passed {} bytes, the cap per query \
                         (--plugin-db-max-result-bytes); select fewer or smaller values",
                        limits.max_result_bytes
                    )));
                }
                rows.push(values::decode_row(&row)?);
            }
            drop(stream);
            if rows.is_empty() {
                // No row to read names from: the statement is prepared (and cached)
                // already, so describing it costs no round trip.
                let statement = (&mut **transaction)
                    .prepare(sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(sql)))
                    .await
                    .map_err(|e| statement_error(&e, Some(limits)))?;
                columns = statement
                    .columns()
                    .iter()
                    .map(|c| c.name().to_string())
                    .collect();
            }
            Ok(Rows { columns, rows })
        };
        match within_timeout(limits, fetch).await {
            Ok(rows) => Ok(rows),
            Err(error) => Err(self.fail(error).await),
        }
    }

    async fn execute(&mut self, sql: String, params: Vec<Value>) -> Result<u64, Error> {
        self.checked(&sql)?;
        let limits = self.limits;
        let query = values::bind(sqlx::query(sqlx::AssertSqlSafe(sql)), params)?;
        let transaction = self.transaction().await?;
        let run = async {
            query
                .execute(&mut **transaction)
                .await
                .map(|done| done.rows_affected())
                .map_err(|e| statement_error(&e, Some(limits)))
        };
        match within_timeout(limits, run).await {
            Ok(count) => Ok(count),
            Err(error) => Err(self.fail(error).await),
        }
    }
}

/// The server enforces the statement timeout; this is a backstop for a connection
/// that stops answering.
async fn within_timeout<T>(
    limits: StatementLimits,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match tokio::time::timeout(limits.timeout + Duration::from_secs(1), work).await {
        Ok(result) => result,
        Err(_) => Err(timeout_error(limits)),
    }
}

fn timeout_error(limits: StatementLimits) -> Error {
    Error::Unavailable(format!(
        "the statement ran past the {} ms statement timeout and was cancelled",
        limits.timeout.as_millis()
    ))
}

/// PostgreSQL's SQLSTATE classes mapped to the plugin error variants.
fn statement_error(err: &sqlx::Error, limits: Option<StatementLimits>) -> Error {
    let message = database_message(err);
    let Some(code) = err.as_database_error().and_then(|db| db.code()) else {
        return Error::Unavailable(format!("database error: {message}"));
    };
    match code.as_ref() {
        "57014" => match limits {
            Some(limits) => timeout_error(limits),
            None => Error::Unavailable(message),
        },
        "42501" => Error::Denied(message),
        "42P01" | "42703" | "42883" => Error::NotFound(message),
        c if c.starts_with("40") || c.starts_with("53") || c.starts_with("08") => {
            Error::Unavailable(message)
        }
        c if ["22", "23", "42", "0A", "2B", "P0", "25"].contains(&&c[..2]) => {
            Error::Invalid(message)
        }
        _ => Error::Internal(message),
    }
}
