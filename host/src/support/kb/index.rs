//! Indexing a published revision: chunk it, embed the chunks, then, in one transaction
//! that holds the article's row lock, replace the article's chunks in the shared
//! collection, but only if the revision is still the live one of a published article
//! (a newer publish or an archive in the meantime wins). Idempotent, so a job a dead
//! host left behind can simply run again.

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::collection;
use crate::embeddings::Role;
use crate::llm::UsageKey;
use crate::support::chunking::{TokenCounter, chunk_article};
use crate::vector::{Document, VectorStore};

/// Chunks embedded per batch (and per progress report).
const BATCH: usize = 32;

#[derive(Debug, PartialEq, Eq)]
pub enum Indexed {
    /// The revision's chunks are searchable.
    Done { chunks: usize },
    /// It is no longer the live revision of a published article: nothing to do.
    Stale,
}

#[derive(sqlx::FromRow)]
struct Source {
    article_id: Uuid,
    version: i32,
    title: String,
    body: String,
    slug: String,
    category: Option<String>,
    /// Declared by the article's editor; None: detected from the whole article.
    language: Option<String>,
    live: bool,
}

pub async fn index_revision(
    pool: &PgPool,
    vectors: &VectorStore,
    counter: &TokenCounter,
    workspace: Uuid,
    revision: Uuid,
    progress: &(dyn Fn(usize, usize) + Send + Sync),
) -> anyhow::Result<Indexed> {
    let Some(source) = sqlx::query_as::<_, Source>(
        "SELECT r.article_id, r.version, r.title, r.body, a.slug, a.category, a.language,
                (a.live_revision_id = r.id AND a.status = 'published') AS live
           FROM data.kb_revisions r JOIN data.kb_articles a ON a.id = r.article_id
          WHERE r.workspace_id = $1 AND r.id = $2",
    )
    .bind(workspace)
    .bind(revision)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(Indexed::Stale);
    };
    if !source.live {
        mark(pool, revision, "none", None, None).await?;
        return Ok(Indexed::Stale);
    }
    mark(pool, revision, "indexing", None, None).await?;
    let chunks = chunk_article(&source.title, &source.body, counter);
    let usage = UsageKey {
        workspace: Some(workspace),
        plugin: None,
        agent: None,
    };
    // The whole article tells its language better than a chunk; every chunk is
    // indexed in it (full-text stemming, stop words).
    let language = source
        .language
        .clone()
        .or_else(|| {
            agenthost_support::language::detect(&format!("{}\n{}", source.title, source.body))
                .map(str::to_string)
        })
        .unwrap_or_else(|| "en".to_string());
    let texts: Vec<String> = chunks.iter().map(|c| c.embedded_text()).collect();
    let mut embeddings = Vec::with_capacity(texts.len());
    for batch in texts.chunks(BATCH) {
        embeddings.extend(vectors.embed_texts(&usage, Role::Passage, batch).await?);
        progress(embeddings.len(), texts.len());
    }
    let documents: Vec<Document> = chunks
        .iter()
        .zip(texts)
        .zip(embeddings)
        .enumerate()
        .map(|(n, ((chunk, text), vector))| Document {
            id: format!("{revision}:{n}"),
            text: Some(text),
            vector: Some(vector),
            metadata: json!({
                "article_id": source.article_id,
                "revision_id": revision,
                "version": source.version,
                "slug": source.slug,
                "title": source.title,
                "category": source.category,
                "heading": chunk.heading(),
                "heading_path": chunk.heading_path,
                "chunk": n,
                "language": language,
            }),
        })
        .collect();
    let key = collection(workspace);
    let dims = documents
        .first()
        .and_then(|d| d.vector.as_ref())
        .map_or(0, Vec::len);
    let collection_id = if dims > 0 {
        Some(
            vectors
                .text_collection(&key, dims)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        )
    } else {
        None
    };
    let mut tx = pool.begin().await?;
    let still_live: bool = sqlx::query_scalar(
        "SELECT coalesce((SELECT live_revision_id = $2 AND status = 'published'
                            FROM data.kb_articles WHERE id = $1 FOR UPDATE), false)",
    )
    .bind(source.article_id)
    .bind(revision)
    .fetch_one(&mut *tx)
    .await?;
    if !still_live {
        tx.rollback().await?;
        mark(pool, revision, "none", None, None).await?;
        return Ok(Indexed::Stale);
    }
    let remove = json!({ "article_id": source.article_id });
    match collection_id {
        Some(id) => VectorStore::replace_in(&mut tx, id, &key, &remove, &documents).await,
        None => VectorStore::delete_in(&mut tx, &key, &remove)
            .await
            .map(|_| 0),
    }
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    sqlx::query(
        "UPDATE data.kb_revisions SET index_status = 'indexed', chunk_count = $2,
                indexed_at = now(), index_error = NULL WHERE id = $1",
    )
    .bind(revision)
    .bind(documents.len() as i32)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Indexed::Done {
        chunks: documents.len(),
    })
}

/// Record a revision's indexing state.
pub async fn mark(
    pool: &PgPool,
    revision: Uuid,
    status: &str,
    error: Option<&str>,
    chunks: Option<i32>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE data.kb_revisions SET index_status = $2, index_error = $3,
                chunk_count = coalesce($4, chunk_count) WHERE id = $1",
    )
    .bind(revision)
    .bind(status)
    .bind(error)
    .bind(chunks)
    .execute(pool)
    .await?;
    Ok(())
}
