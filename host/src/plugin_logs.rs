//! Plugin log lines kept in the database, queryable per plugin and version
//! (`GET /api/admin/plugins/{name}/logs`, `agenthost plugin logs`).
//!
//! A plugin's `log.write` never waits for the database: the line goes into a bounded
//! channel ([`LogSink::send`] is a `try_send`), and one background task per host
//! drains it, inserting whatever has queued up in one statement. When the channel is
//! full (the database is slow or a plugin floods), lines are dropped and counted in
//! `agenthost_plugin_log_lines_dropped_total`; every line still reaches the host's own
//! log through tracing. Retention: the newest [`Retention::keep_per_plugin`] lines per
//! plugin (pruned by the writer as it goes) and nothing older than
//! [`Retention::max_age`] (pruned by a sweep).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Lines waiting for the writer; beyond this they are dropped (and counted).
const CHANNEL_CAPACITY: usize = 4096;
/// Most lines one INSERT carries.
const MAX_BATCH: usize = 500;
/// How often the age limit (and the count limit of every plugin) is enforced.
const SWEEP_EVERY: Duration = Duration::from_secs(15 * 60);

const DROPPED: &str = "agenthost_plugin_log_lines_dropped_total";

/// Severity, in increasing order (a filter on `warn` also returns `error`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    const ALL: [Level; 5] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }

    fn parse(text: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|level| level.as_str() == text)
    }

    /// This level and the more severe ones, as stored.
    fn and_above(self) -> Vec<String> {
        Level::ALL
            .into_iter()
            .filter(|level| *level >= self)
            .map(|level| level.as_str().to_string())
            .collect()
    }
}

/// One line as a plugin wrote it, with its call context.
#[derive(Debug, Clone)]
pub struct NewLine {
    pub plugin: String,
    pub version: String,
    pub level: Level,
    pub message: String,
    pub fields: BTreeMap<String, String>,
    pub request_id: Option<String>,
    pub workspace_id: Option<Uuid>,
    pub logged_at: DateTime<Utc>,
}

/// How many lines are kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// The newest lines kept per plugin (all its versions together).
    pub keep_per_plugin: i64,
    /// Older lines are deleted by the sweep.
    pub max_age: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep_per_plugin: 10_000,
            max_age: Duration::from_secs(14 * 24 * 3600),
        }
    }
}

impl Retention {
    /// A plugin is pruned once this many lines were written since its last pruning:
    /// so it holds at most `keep_per_plugin + prune_slack - 1` lines between prunings,
    /// without a DELETE after every batch.
    fn prune_slack(&self) -> i64 {
        (self.keep_per_plugin / 10).max(1)
    }
}

/// Where a call's log lines go. The default sink keeps nothing (describe calls,
/// tests of the runtime alone).
#[derive(Debug, Clone, Default)]
pub struct LogSink {
    sender: Option<mpsc::Sender<NewLine>>,
    dropped: std::sync::Arc<AtomicU64>,
}

impl LogSink {
    /// Start the writer and the retention sweep for `pool`; they end when every sink
    /// is dropped or the pool is closed.
    pub fn start(pool: PgPool, retention: Retention) -> LogSink {
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let sink = LogSink {
            sender: Some(sender),
            dropped: Default::default(),
        };
        tokio::spawn(write_lines(
            pool.clone(),
            receiver,
            retention,
            sink.dropped.clone(),
        ));
        tokio::spawn(sweep(
            pool,
            retention,
            sink.sender.clone().map(|s| s.downgrade()),
        ));
        sink
    }

    /// Queue a line; never waits. A full queue drops the line (counted).
    pub fn send(&self, line: NewLine) {
        let Some(sender) = &self.sender else { return };
        if sender.try_send(line).is_err() {
            self.count_dropped(1);
        }
    }

    /// Lines dropped so far by this host (queue full, or an insert failed).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn count_dropped(&self, lines: u64) {
        count_dropped(&self.dropped, lines);
    }
}

fn count_dropped(dropped: &AtomicU64, lines: u64) {
    let before = dropped.fetch_add(lines, Ordering::Relaxed);
    metrics::counter!(DROPPED).increment(lines);
    // The first drop, then one warning per thousand: a flood must not flood the log.
    if before == 0 || before / 1000 != (before + lines) / 1000 {
        tracing::warn!(
            dropped_total = before + lines,
            "plugin log lines dropped (queue full or database unavailable); they are still in the host log"
        );
    }
}

/// Drain the queue: whatever is waiting goes in one INSERT, then plugins that wrote
/// enough since their last pruning are pruned to the count limit.
async fn write_lines(
    pool: PgPool,
    mut receiver: mpsc::Receiver<NewLine>,
    retention: Retention,
    dropped: std::sync::Arc<AtomicU64>,
) {
    let mut since_pruned: HashMap<String, i64> = HashMap::new();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        if pool.is_closed() {
            break;
        }
        if let Err(err) = insert(&pool, &batch).await {
            tracing::warn!(error = %err, lines = batch.len(), "storing plugin log lines failed");
            count_dropped(&dropped, batch.len() as u64);
        }
        for line in batch.drain(..) {
            *since_pruned.entry(line.plugin).or_default() += 1;
        }
        let due: Vec<String> = since_pruned
            .iter()
            .filter(|(_, written)| **written >= retention.prune_slack())
            .map(|(plugin, _)| plugin.clone())
            .collect();
        for plugin in due {
            since_pruned.remove(&plugin);
            if let Err(err) = prune_plugin(&pool, &plugin, retention.keep_per_plugin).await {
                tracing::warn!(error = %err, plugin, "pruning plugin log lines failed");
            }
        }
    }
}

/// Every `SWEEP_EVERY`: the age limit, and the count limit of every plugin (a host
/// that restarted forgot what it had written since its last pruning).
async fn sweep(pool: PgPool, retention: Retention, alive: Option<mpsc::WeakSender<NewLine>>) {
    let mut ticks =
        tokio::time::interval_at(tokio::time::Instant::now() + SWEEP_EVERY, SWEEP_EVERY);
    loop {
        ticks.tick().await;
        let sinks_left = alive.as_ref().is_some_and(|s| s.strong_count() > 0);
        if pool.is_closed() || !sinks_left {
            return;
        }
        if let Err(err) = prune(&pool, retention).await {
            tracing::warn!(error = %err, "sweeping plugin log lines failed");
        }
    }
}

/// PostgreSQL stores no NUL in `text` or `jsonb`: one would fail the whole batch
/// (`crate::nul` says why it is replaced here).
fn without_nul(text: &str) -> String {
    crate::nul::replace(text)
}

async fn insert(pool: &PgPool, lines: &[NewLine]) -> sqlx::Result<()> {
    let mut columns = Columns::default();
    for line in lines {
        columns.plugin.push(without_nul(&line.plugin));
        columns.version.push(without_nul(&line.version));
        columns.level.push(line.level.as_str());
        columns.message.push(without_nul(&line.message));
        let fields: serde_json::Map<String, serde_json::Value> = line
            .fields
            .iter()
            .map(|(k, v)| (without_nul(k), without_nul(v).into()))
            .collect();
        columns.fields.push(fields.into());
        columns
            .request_id
            .push(line.request_id.as_deref().map(without_nul));
        columns.workspace_id.push(line.workspace_id);
        columns.logged_at.push(line.logged_at);
    }
    sqlx::query(
        "INSERT INTO plugin_logs \
         (plugin, version, level, message, fields, request_id, workspace_id, logged_at) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], \
                              $6::text[], $7::uuid[], $8::timestamptz[])",
    )
    .bind(columns.plugin)
    .bind(columns.version)
    .bind(columns.level)
    .bind(columns.message)
    .bind(columns.fields)
    .bind(columns.request_id)
    .bind(columns.workspace_id)
    .bind(columns.logged_at)
    .execute(pool)
    .await?;
    Ok(())
}

#[derive(Default)]
struct Columns {
    plugin: Vec<String>,
    version: Vec<String>,
    level: Vec<&'static str>,
    message: Vec<String>,
    fields: Vec<serde_json::Value>,
    request_id: Vec<Option<String>>,
    workspace_id: Vec<Option<Uuid>>,
    logged_at: Vec<DateTime<Utc>>,
}

/// Delete all but the newest `keep` lines of one plugin.
async fn prune_plugin(pool: &PgPool, plugin: &str, keep: i64) -> sqlx::Result<u64> {
    let deleted = sqlx::query(
        "DELETE FROM plugin_logs WHERE plugin = $1 AND id < ( \
             SELECT id FROM plugin_logs WHERE plugin = $1 ORDER BY id DESC OFFSET $2 LIMIT 1)",
    )
    .bind(plugin)
    .bind(keep.max(1) - 1)
    .execute(pool)
    .await?;
    Ok(deleted.rows_affected())
}

/// Enforce both limits on every plugin's lines; returns how many were deleted.
pub async fn prune(pool: &PgPool, retention: Retention) -> sqlx::Result<u64> {
    let too_old =
        sqlx::query("DELETE FROM plugin_logs WHERE logged_at < now() - make_interval(secs => $1)")
            .bind(retention.max_age.as_secs_f64())
            .execute(pool)
            .await?
            .rows_affected();
    let plugins: Vec<String> = sqlx::query_scalar("SELECT DISTINCT plugin FROM plugin_logs")
        .fetch_all(pool)
        .await?;
    let mut deleted = too_old;
    for plugin in plugins {
        deleted += prune_plugin(pool, &plugin, retention.keep_per_plugin).await?;
    }
    Ok(deleted)
}

/// One stored line, as the endpoint answers it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogLine {
    /// Increases with every line stored: the `before` cursor.
    pub id: i64,
    pub plugin: String,
    pub version: String,
    pub level: Level,
    pub message: String,
    /// The line's structured fields.
    pub fields: BTreeMap<String, String>,
    /// The request (or job) that caused the call.
    pub request_id: Option<String>,
    /// The workspace the call ran for; none for calls outside a workspace.
    pub workspace_id: Option<Uuid>,
    /// When the plugin wrote the line.
    pub logged_at: DateTime<Utc>,
}

/// Which lines to read, newest first.
#[derive(Debug, Default)]
pub struct Filter {
    pub version: Option<String>,
    /// This level and above.
    pub level: Option<Level>,
    pub since: Option<DateTime<Utc>>,
    pub request_id: Option<String>,
    /// Only lines older than this id (paging back).
    pub before: Option<i64>,
    /// Only lines newer than this id (following).
    pub after: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    plugin: String,
    version: String,
    level: String,
    message: String,
    fields: sqlx::types::Json<BTreeMap<String, String>>,
    request_id: Option<String>,
    workspace_id: Option<Uuid>,
    logged_at: DateTime<Utc>,
}

/// Up to `limit` lines of `plugin`, newest first.
pub async fn read(
    pool: &PgPool,
    plugin: &str,
    filter: &Filter,
    limit: i64,
) -> sqlx::Result<Vec<LogLine>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, plugin, version, level, message, fields, request_id, workspace_id, logged_at \
         FROM plugin_logs \
         WHERE plugin = $1 \
           AND ($2::text IS NULL OR version = $2) \
           AND ($3::text[] IS NULL OR level = ANY($3)) \
           AND ($4::timestamptz IS NULL OR logged_at >= $4) \
           AND ($5::text IS NULL OR request_id = $5) \
           AND ($6::bigint IS NULL OR id < $6) \
           AND ($7::bigint IS NULL OR id > $7) \
         ORDER BY id DESC LIMIT $8",
    )
    .bind(plugin)
    .bind(&filter.version)
    .bind(filter.level.map(Level::and_above))
    .bind(filter.since)
    .bind(&filter.request_id)
    .bind(filter.before)
    .bind(filter.after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| LogLine {
            id: row.id,
            plugin: row.plugin,
            version: row.version,
            // The table's CHECK allows only these names.
            level: Level::parse(&row.level).unwrap_or(Level::Info),
            message: row.message,
            fields: row.fields.0,
            request_id: row.request_id,
            workspace_id: row.workspace_id,
            logged_at: row.logged_at,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_level_filter_includes_the_more_severe_levels() {
        assert_eq!(Level::Warn.and_above(), ["warn", "error"]);
        assert_eq!(Level::Trace.and_above().len(), 5);
        assert_eq!(Level::parse("info"), Some(Level::Info));
        assert_eq!(Level::parse("INFO"), None);
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let (sender, mut receiver) = mpsc::channel(2);
        let sink = LogSink {
            sender: Some(sender),
            dropped: Default::default(),
        };
        let line = NewLine {
            plugin: "p".into(),
            version: "1.0.0".into(),
            level: Level::Info,
            message: "m".into(),
            fields: BTreeMap::new(),
            request_id: None,
            workspace_id: None,
            logged_at: Utc::now(),
        };
        for _ in 0..5 {
            sink.send(line.clone());
        }
        assert_eq!(sink.dropped(), 3);
        assert!(receiver.try_recv().is_ok());
        assert!(receiver.try_recv().is_ok());
        assert!(receiver.try_recv().is_err());
        LogSink::default().send(line); // keeps nothing, counts nothing
    }

    #[test]
    fn pruning_waits_for_a_tenth_of_the_limit() {
        let retention = |keep| Retention {
            keep_per_plugin: keep,
            ..Retention::default()
        };
        assert_eq!(retention(10_000).prune_slack(), 1000);
        assert_eq!(retention(5).prune_slack(), 1);
    }
}
