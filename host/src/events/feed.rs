//! Reading a workspace's events in commit order.
//!
//! `seq` is taken at insert, not at commit: walking it alone would skip a row whose
//! transaction commits after a higher `seq` was read. So the feed walks `(tx, seq)`,
//! and only below the oldest transaction still open: every row there is final, and no
//! row can later appear behind a cursor. The cost is that events wait for the oldest
//! open transaction of the database (ours are short; a plugin's is bounded by its
//! statement timeout).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// A position in a workspace's feed: after the event with this transaction and `seq`.
/// Written `<tx>-<seq>`; `0-0` is the start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    tx: u64,
    seq: i64,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.tx, self.seq)
    }
}

impl FromStr for Cursor {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a cursor (an event's `cursor`, like `0-0`)");
        let (tx, seq) = text.split_once('-').ok_or_else(bad)?;
        Ok(Cursor {
            tx: tx.parse().map_err(|_| bad())?,
            seq: seq.parse().ok().filter(|s: &i64| *s >= 0).ok_or_else(bad)?,
        })
    }
}

/// Which events to read.
#[derive(Debug, Default)]
pub struct Filter {
    /// A type (`ticket.created`) or a prefix of whole segments (`ticket`, `ticket.*`).
    pub kind: Option<String>,
    pub subject: Option<String>,
}

/// An event as the feed shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = Event)]
pub struct StoredEvent {
    /// The event's identity: the same wherever it is delivered (de-duplicate by it).
    pub id: Uuid,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub kind: String,
    pub subject: Option<String>,
    pub payload: Value,
    /// Who caused it: `key:<id>`, `admin`, `plugin:<name>` or `system:<what>`.
    pub actor: String,
    pub at: DateTime<Utc>,
    /// For an event a plugin emitted from a workflow node: that node's execution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<Uuid>,
    /// Where it is in the feed: pass it as `after` (or `Last-Event-ID`) to read on.
    #[sqlx(skip)]
    pub cursor: String,
    #[serde(skip)]
    tx: String,
    #[serde(skip)]
    seq: i64,
}

/// Up to `limit` events of the workspace after `after`, oldest first.
pub async fn read(
    pool: &PgPool,
    workspace: Uuid,
    after: Cursor,
    filter: &Filter,
    limit: i64,
) -> sqlx::Result<Vec<StoredEvent>> {
    let kind = filter
        .kind
        .as_deref()
        .map(|k| k.strip_suffix(".*").unwrap_or(k).to_string());
    let mut events: Vec<StoredEvent> = sqlx::query_as(
        // `events.tx` in ORDER BY: the bare name is the text output column, and text
        // sorts "1000" before "999".
        "SELECT id, type, subject, payload, actor, at, execution_id, tx::text AS tx, seq \
         FROM events \
         WHERE workspace_id = $1 AND (tx, seq) > ($2::text::xid8, $3) \
           AND tx < pg_snapshot_xmin(pg_current_snapshot()) \
           AND ($4::text IS NULL OR type = $4 OR starts_with(type, $4 || '.')) \
           AND ($5::text IS NULL OR subject = $5) \
         ORDER BY events.tx, events.seq LIMIT $6",
    )
    .bind(workspace)
    .bind(after.tx.to_string())
    .bind(after.seq)
    .bind(kind)
    .bind(&filter.subject)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    for event in &mut events {
        event.cursor = format!("{}-{}", event.tx, event.seq);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_what_they_write() {
        let cursor: Cursor = "812-40".parse().unwrap();
        assert_eq!(cursor.to_string(), "812-40");
        assert_eq!("0-0".parse::<Cursor>().unwrap(), Cursor::default());
        for bad in [
            "",
            "12",
            "a-1",
            "1-",
            "-1-2",
            "1--2",
            "1-2-3",
            "18446744073709551616-1",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad}");
        }
    }
}
