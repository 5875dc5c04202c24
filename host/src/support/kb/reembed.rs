//! After a change of embedding model (`--embedding-model`), the knowledge base's
//! vectors were made by the other model and can't be compared with the new model's
//! queries (vector::VectorStore refuses to search them). At start, the host drops each
//! workspace's knowledge-base collection made by another model and queues every live
//! revision for indexing again: the support worker re-embeds them in the background,
//! `GET /api/kb/index` shows the progress (revisions `queued`, jobs left), and search
//! finds the articles already done (none is found twice, none by a stale vector).
//! All hosts on one database must run the same model, or they undo each other's work.

use sqlx::PgPool;

use super::COLLECTION;
use crate::capabilities::vector::SHARED_NAMESPACE;

/// Queue the re-embedding of every workspace whose knowledge base another model made;
/// returns the revisions queued.
pub async fn after_model_switch(pool: &PgPool, model: &str) -> anyhow::Result<i64> {
    let queued: i64 = sqlx::query_scalar(
        "WITH stale AS (
             DELETE FROM vector_collections
              WHERE namespace = $2 AND name = $3 AND model <> $1
             RETURNING workspace_id
         ), revisions AS (
             UPDATE data.kb_revisions r
                SET index_status = 'queued', index_error = NULL, chunk_count = NULL
               FROM data.kb_articles a
              WHERE a.live_revision_id = r.id AND a.status = 'published'
                AND a.workspace_id IN (SELECT workspace_id FROM stale)
             RETURNING r.workspace_id, r.id
         )
         SELECT count(*) FROM (
             SELECT support_enqueue(workspace_id, 'index_revision', id) FROM revisions) queued",
    )
    .bind(model)
    .bind(SHARED_NAMESPACE)
    .bind(COLLECTION)
    .fetch_one(pool)
    .await?;
    if queued > 0 {
        tracing::info!(
            model,
            revisions = queued,
            "the knowledge base was embedded by another model; re-embedding it"
        );
    }
    Ok(queued)
}
