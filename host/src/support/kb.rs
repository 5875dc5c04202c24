//! Knowledge-base articles and their immutable revisions. An article moves draft ->
//! in_review -> published -> archived (the trigger of migration 0012 refuses other
//! moves); publishing makes a revision live, removes the previous revision's chunks
//! from search and queues the new one for indexing; archiving removes its chunks in
//! the same transaction, so it leaves search at once.

mod gap_names;
pub mod index;
mod input;
pub mod reembed;
pub mod search;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use input::{checked_body, checked_tags, checked_title, checksum, resolved, valid_slug};
pub use input::{front_matter, slugify};

use super::rule_violation;
use crate::capabilities::vector::SHARED_NAMESPACE;
use crate::error::{ApiError, ApiResult};
use crate::vector::{CollectionKey, VectorStore};

/// The shared vector collection holding the chunks of live revisions. Plugins granted
/// `vector.shared: ["knowledge-base"]` (Cassie) search it.
pub const COLLECTION: &str = "knowledge-base";
/// Articles per import request.
pub const MAX_IMPORT: usize = 1000;

pub fn collection(workspace: Uuid) -> CollectionKey {
    CollectionKey {
        workspace,
        namespace: SHARED_NAMESPACE.to_string(),
        name: COLLECTION.to_string(),
    }
}

/// A new article (or, in an import, an article by its slug): the fields, or a whole
/// Markdown file in `markdown`.
#[derive(Debug, Clone, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = KbArticleInput)]
pub struct ArticleInput {
    /// 1 to 300 characters; required unless the front matter of `markdown` has it.
    #[schema(max_length = 300, pattern = "\\S")]
    pub title: Option<String>,
    /// 1-128 lower-case letters, digits and `-`; from the title when absent.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,127}$")]
    pub slug: Option<String>,
    pub category: Option<String>,
    /// At most 20, each 1 to 50 characters (compared lower-cased and trimmed).
    #[schema(max_items = 20, value_type = Option<Vec<KbTag>>)]
    pub tags: Option<Vec<String>>,
    /// Markdown, not only spaces; required unless `markdown` is given.
    #[schema(pattern = "\\S")]
    pub body: Option<String>,
    /// A whole Markdown file with front matter (`title`, `slug`, `category`, `tags`)
    /// instead of the fields above.
    pub markdown: Option<String>,
    /// `draft` (default), `in_review`, or `published` to publish at once (admins).
    #[schema(pattern = "^(draft|in_review|published)$")]
    pub status: Option<String>,
}

/// A knowledge-base article.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = KbArticle)]
pub struct ArticleView {
    pub id: Uuid,
    pub slug: String,
    pub title: String,
    pub category: Option<String>,
    pub tags: Vec<String>,
    /// `draft`, `in_review`, `published` or `archived`.
    pub status: String,
    pub author: String,
    /// The published revision, searched and cited.
    pub live_revision_id: Option<Uuid>,
    pub live_version: Option<i32>,
    pub latest_version: i32,
    /// Indexing of the live revision: none, queued, indexing, indexed or failed.
    pub index_status: Option<String>,
    pub chunk_count: Option<i32>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub published_at: Option<chrono::DateTime<chrono::Utc>>,
    pub archived_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// An immutable revision of an article.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = KbRevision)]
pub struct RevisionView {
    pub id: Uuid,
    pub version: i32,
    pub title: String,
    /// Markdown.
    pub body: String,
    /// SHA-256 of the body.
    pub checksum: String,
    pub author: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// `none`, `queued`, `indexing`, `indexed` or `failed`.
    pub index_status: String,
    pub chunk_count: Option<i32>,
    pub index_error: Option<String>,
    pub indexed_at: Option<chrono::DateTime<chrono::Utc>>,
}

const ARTICLE_COLUMNS: &str = "a.id, a.slug, a.title, a.category, a.tags, a.status, a.author,
    a.live_revision_id, r.version AS live_version, a.latest_version, r.index_status,
    r.chunk_count, a.created_at, a.updated_at, a.published_at, a.archived_at";

/// An article by id or slug, locked for the rest of `tx`.
async fn lock_article(
    tx: &mut Transaction<'_, Postgres>,
    workspace: Uuid,
    article: &str,
) -> ApiResult<(Uuid, String, Option<Uuid>)> {
    let id = Uuid::parse_str(article).ok();
    sqlx::query_as(
        "SELECT id, status, live_revision_id FROM data.kb_articles
          WHERE workspace_id = $1 AND (id = $2 OR slug = $3) FOR UPDATE",
    )
    .bind(workspace)
    .bind(id)
    .bind(article)
    .fetch_optional(&mut **tx)
    .await
    .map_err(anyhow::Error::from)?
    .ok_or_else(|| ApiError::NotFound(format!("no article {article:?}")))
}

pub async fn get_article(pool: &PgPool, workspace: Uuid, article: &str) -> ApiResult<ArticleView> {
    let id = Uuid::parse_str(article).ok();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ARTICLE_COLUMNS} FROM data.kb_articles a
           LEFT JOIN data.kb_revisions r ON r.id = a.live_revision_id
          WHERE a.workspace_id = $1 AND (a.id = $2 OR a.slug = $3)"
    )))
    .bind(workspace)
    .bind(id)
    .bind(article)
    .fetch_optional(pool)
    .await
    .map_err(anyhow::Error::from)?
    .ok_or_else(|| ApiError::NotFound(format!("no article {article:?}")))
}

/// Filters of the article list, ordered by title.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArticleFilter {
    /// Only articles in this status (`draft`, `in_review`, `published`, `archived`).
    pub status: Option<String>,
    /// Only articles of this category.
    pub category: Option<String>,
    /// Articles per page (1-1000, default 100).
    pub limit: Option<i64>,
    /// Articles to skip.
    pub offset: Option<i64>,
}

pub async fn list_articles(
    pool: &PgPool,
    workspace: Uuid,
    filter: &ArticleFilter,
) -> ApiResult<Vec<ArticleView>> {
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ARTICLE_COLUMNS} FROM data.kb_articles a
           LEFT JOIN data.kb_revisions r ON r.id = a.live_revision_id
          WHERE a.workspace_id = $1 AND ($2::text IS NULL OR a.status = $2)
            AND ($3::text IS NULL OR a.category = $3)
          ORDER BY a.title, a.id LIMIT $4 OFFSET $5"
    )))
    .bind(workspace)
    .bind(&filter.status)
    .bind(&filter.category)
    .bind(crate::db::clamp_limit(filter.limit, 100, 1000))
    .bind(filter.offset.unwrap_or(0).max(0))
    .fetch_all(pool)
    .await
    .map_err(anyhow::Error::from)?;
    Ok(rows)
}

pub async fn list_revisions(
    pool: &PgPool,
    workspace: Uuid,
    article: &str,
) -> ApiResult<Vec<RevisionView>> {
    let view = get_article(pool, workspace, article).await?;
    let rows = sqlx::query_as(
        "SELECT id, version, title, body, checksum, author, created_at, index_status,
                chunk_count, index_error, indexed_at
           FROM data.kb_revisions WHERE workspace_id = $1 AND article_id = $2 ORDER BY version",
    )
    .bind(workspace)
    .bind(view.id)
    .fetch_all(pool)
    .await
    .map_err(anyhow::Error::from)?;
    Ok(rows)
}

/// Outcome of writing one article: whether it was new.
pub struct Written {
    pub id: Uuid,
    pub created: bool,
    /// A new revision was added (or the article is new).
    pub changed: bool,
    pub published: bool,
}

/// Create an article with revision 1, or (imports: `upsert`) add a revision to the
/// article of the same slug when its body changed. Publishes when asked.
async fn write_article(
    tx: &mut Transaction<'_, Postgres>,
    workspace: Uuid,
    actor: &str,
    input: ArticleInput,
    upsert: bool,
) -> ApiResult<Written> {
    let input = resolved(input)?;
    let title = checked_title(input.title)?;
    let body = checked_body(input.body)?;
    let tags = checked_tags(input.tags)?;
    let slug = input.slug.unwrap_or_else(|| slugify(&title));
    if !valid_slug(&slug) {
        return Err(ApiError::Invalid(format!(
            "slug {slug:?} must be 1-128 lower-case letters, digits and '-'"
        )));
    }
    let publish = match input.status.as_deref() {
        None | Some("draft") => false,
        Some("in_review") => false,
        Some("published") => true,
        Some(other) => {
            return Err(ApiError::Invalid(format!(
                "status {other:?}: a new article is draft, in_review or published"
            )));
        }
    };
    let status = if input.status.as_deref() == Some("in_review") {
        "in_review"
    } else {
        "draft"
    };
    let existing: Option<(Uuid, String)> = sqlx::query_as(
        "SELECT id, status FROM data.kb_articles WHERE workspace_id = $1 AND slug = $2 FOR UPDATE",
    )
    .bind(workspace)
    .bind(&slug)
    .fetch_optional(&mut **tx)
    .await
    .map_err(anyhow::Error::from)?;
    let (id, created) = match existing {
        Some(_) if !upsert => {
            return Err(ApiError::Conflict(format!(
                "an article with slug {slug:?} exists; add a revision to it instead"
            )));
        }
        Some((id, _)) => {
            sqlx::query(
                "UPDATE data.kb_articles SET title = $3, category = $4, tags = $5
                  WHERE workspace_id = $1 AND id = $2",
            )
            .bind(workspace)
            .bind(id)
            .bind(&title)
            .bind(&input.category)
            .bind(&tags)
            .execute(&mut **tx)
            .await
            .map_err(rule_violation)?;
            (id, false)
        }
        None => {
            let id: Uuid = sqlx::query_scalar(
                "INSERT INTO data.kb_articles (workspace_id, slug, title, category, tags, status, author)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(workspace)
            .bind(&slug)
            .bind(&title)
            .bind(&input.category)
            .bind(&tags)
            .bind(status)
            .bind(actor)
            .fetch_one(&mut **tx)
            .await
            .map_err(rule_violation)?;
            (id, true)
        }
    };
    let latest: Option<String> = sqlx::query_scalar(
        "SELECT checksum FROM data.kb_revisions WHERE article_id = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await
    .map_err(anyhow::Error::from)?;
    let revision = if latest.as_deref() == Some(checksum(&body).as_str()) {
        None
    } else {
        Some(insert_revision(tx, workspace, id, actor, &title, &body).await?)
    };
    if publish {
        let version = revision.map(|(_, version)| version);
        publish_in(tx, workspace, &id.to_string(), version, true).await?;
    }
    let changed = revision.is_some();
    Ok(Written {
        id,
        created,
        changed,
        published: publish,
    })
}

async fn insert_revision(
    tx: &mut Transaction<'_, Postgres>,
    workspace: Uuid,
    article: Uuid,
    actor: &str,
    title: &str,
    body: &str,
) -> ApiResult<(Uuid, i32)> {
    let version: i32 = sqlx::query_scalar(
        "UPDATE data.kb_articles SET latest_version = latest_version + 1, title = $3
          WHERE workspace_id = $1 AND id = $2 RETURNING latest_version",
    )
    .bind(workspace)
    .bind(article)
    .bind(title)
    .fetch_one(&mut **tx)
    .await
    .map_err(rule_violation)?;
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO data.kb_revisions (workspace_id, article_id, version, title, body, checksum, author)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(workspace)
    .bind(article)
    .bind(version)
    .bind(title)
    .bind(body)
    .bind(checksum(body))
    .bind(actor)
    .fetch_one(&mut **tx)
    .await
    .map_err(rule_violation)?;
    Ok((id, version))
}

pub async fn create_article(
    pool: &PgPool,
    workspace: Uuid,
    actor: &str,
    input: ArticleInput,
) -> ApiResult<ArticleView> {
    let mut tx = pool.begin().await.map_err(anyhow::Error::from)?;
    let written = write_article(&mut tx, workspace, actor, input, false).await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    get_article(pool, workspace, &written.id.to_string()).await
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
#[schema(as = KbImportSummary)]
pub struct ImportSummary {
    pub received: usize,
    pub created: usize,
    /// Existing articles that got a new revision.
    pub updated: usize,
    /// Existing articles whose body was the same as their latest revision.
    pub unchanged: usize,
    pub published: usize,
}

/// Bulk import: every article is created or (same slug) gets a new revision, all in
/// one transaction; the first invalid article fails the import, naming its position.
pub async fn import(
    pool: &PgPool,
    workspace: Uuid,
    actor: &str,
    articles: Vec<ArticleInput>,
) -> ApiResult<ImportSummary> {
    if articles.len() > MAX_IMPORT {
        return Err(ApiError::Invalid(format!(
            "at most {MAX_IMPORT} articles per import, got {}",
            articles.len()
        )));
    }
    let mut summary = ImportSummary {
        received: articles.len(),
        ..ImportSummary::default()
    };
    let mut tx = pool.begin().await.map_err(anyhow::Error::from)?;
    for (index, input) in articles.into_iter().enumerate() {
        let written = write_article(&mut tx, workspace, actor, input, true)
            .await
            .map_err(|error| match error {
                ApiError::Invalid(m) => ApiError::Invalid(format!(
                    "article {} of the import: {m}; nothing was imported",
                    index + 1
                )),
                other => other,
            })?;
        if written.created {
            summary.created += 1;
        } else if written.changed {
            summary.updated += 1;
        } else {
            summary.unchanged += 1;
        }
        if written.published {
            summary.published += 1;
        }
    }
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(summary)
}

/// A new revision of an article (a draft until published).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = KbRevisionInput)]
pub struct RevisionInput {
    /// The article's title when absent; 1 to 300 characters.
    #[schema(max_length = 300, pattern = "\\S")]
    pub title: Option<String>,
    /// Markdown, 1 byte to 1 MiB, not only spaces.
    #[schema(pattern = "\\S")]
    pub body: String,
}

pub async fn add_revision(
    pool: &PgPool,
    workspace: Uuid,
    article: &str,
    actor: &str,
    input: RevisionInput,
) -> ApiResult<RevisionView> {
    let mut tx = pool.begin().await.map_err(anyhow::Error::from)?;
    let (id, status, _) = lock_article(&mut tx, workspace, article).await?;
    if status == "archived" {
        return Err(ApiError::Invalid(
            "the article is archived; restore it to draft first".into(),
        ));
    }
    let current: String = sqlx::query_scalar("SELECT title FROM data.kb_articles WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(anyhow::Error::from)?;
    let title = match input.title {
        Some(title) => checked_title(Some(title))?,
        None => current,
    };
    let body = checked_body(Some(input.body))?;
    let (revision, _) = insert_revision(&mut tx, workspace, id, actor, &title, &body).await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    let revision = sqlx::query_as(
        "SELECT id, version, title, body, checksum, author, created_at, index_status,
                chunk_count, index_error, indexed_at FROM data.kb_revisions WHERE id = $1",
    )
    .bind(revision)
    .fetch_one(pool)
    .await
    .map_err(anyhow::Error::from)?;
    Ok(revision)
}

/// Changes to an article's fields; the body changes with a new revision.
#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = KbArticleChange)]
pub struct ArticleChange {
    /// 1 to 300 characters.
    #[schema(max_length = 300, pattern = "\\S")]
    pub title: Option<String>,
    pub category: Option<String>,
    /// At most 20, each 1 to 50 characters (compared lower-cased and trimmed).
    #[schema(max_items = 20, value_type = Option<Vec<KbTag>>)]
    pub tags: Option<Vec<String>>,
    /// `draft` or `in_review` (publish and archive have their own routes).
    #[schema(pattern = "^(draft|in_review)$")]
    pub status: Option<String>,
}

/// A tag: 1 to 50 characters, not only spaces (for the OpenAPI document).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, max_length = 50, pattern = "\\S")]
#[allow(dead_code)]
pub struct KbTag(String);

pub async fn update_article(
    pool: &PgPool,
    workspace: Uuid,
    article: &str,
    change: ArticleChange,
) -> ApiResult<ArticleView> {
    if let Some(status) = change.status.as_deref()
        && !matches!(status, "draft" | "in_review")
    {
        return Err(ApiError::Invalid(format!(
            "status {status:?}: set draft or in_review here; publish with POST .../publish, archive with POST .../archive"
        )));
    }
    let tags = match change.tags {
        Some(tags) => Some(checked_tags(Some(tags))?),
        None => None,
    };
    let title = match change.title {
        Some(title) => Some(checked_title(Some(title))?),
        None => None,
    };
    let mut tx = pool.begin().await.map_err(anyhow::Error::from)?;
    let (id, _, _) = lock_article(&mut tx, workspace, article).await?;
    sqlx::query(
        "UPDATE data.kb_articles
            SET title = coalesce($3, title), category = coalesce($4, category),
                tags = coalesce($5, tags), status = coalesce($6, status)
          WHERE workspace_id = $1 AND id = $2",
    )
    .bind(workspace)
    .bind(id)
    .bind(title)
    .bind(change.category)
    .bind(tags)
    .bind(change.status)
    .execute(&mut *tx)
    .await
    .map_err(rule_violation)?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    get_article(pool, workspace, &id.to_string()).await
}

/// In `tx`: make `version` (default: the latest) live, take the old chunks out of
/// search and queue the new revision for indexing. `direct` lets an import or a new
/// published article skip review.
async fn publish_in(
    tx: &mut Transaction<'_, Postgres>,
    workspace: Uuid,
    article: &str,
    version: Option<i32>,
    direct: bool,
) -> ApiResult<Uuid> {
    let (id, status, live) = lock_article(tx, workspace, article).await?;
    let revision: Uuid = sqlx::query_scalar(
        "SELECT id FROM data.kb_revisions
          WHERE article_id = $1 AND ($2::int IS NULL OR version = $2)
          ORDER BY version DESC LIMIT 1",
    )
    .bind(id)
    .bind(version)
    .fetch_optional(&mut **tx)
    .await
    .map_err(anyhow::Error::from)?
    .ok_or_else(|| match version {
        Some(v) => ApiError::NotFound(format!("the article has no revision {v}")),
        None => ApiError::Invalid("the article has no revision to publish".into()),
    })?;
    if direct && (status == "draft" || status == "archived") {
        // Straight to published: through the workflow's steps in the same
        // transaction, so the status rule of the trigger still holds.
        if status == "archived" {
            set_status(tx, workspace, id, "draft").await?;
        }
        set_status(tx, workspace, id, "in_review").await?;
    }
    if status != "published" && status != "in_review" && !direct {
        let way = if status == "archived" {
            "restore it to draft (PATCH status draft), then submit it for review"
        } else {
            "submit it for review first (PATCH status in_review)"
        };
        return Err(ApiError::Invalid(format!(
            "an article is published from in_review (this one is {status}); {way}"
        )));
    }
    if live == Some(revision) && status == "published" {
        // Already live: nothing to do unless its indexing failed (publishing again is
        // how an editor retries it).
        let indexed: String =
            sqlx::query_scalar("SELECT index_status FROM data.kb_revisions WHERE id = $1")
                .bind(revision)
                .fetch_one(&mut **tx)
                .await
                .map_err(anyhow::Error::from)?;
        if indexed != "failed" && indexed != "none" {
            return Ok(revision);
        }
    }
    sqlx::query(
        "UPDATE data.kb_articles SET live_revision_id = $3, status = 'published'
          WHERE workspace_id = $1 AND id = $2",
    )
    .bind(workspace)
    .bind(id)
    .bind(revision)
    .execute(&mut **tx)
    .await
    .map_err(rule_violation)?;
    take_out_of_search(tx, workspace, id, live).await?;
    sqlx::query(
        "UPDATE data.kb_revisions SET index_status = 'queued', index_error = NULL WHERE id = $1",
    )
    .bind(revision)
    .execute(&mut **tx)
    .await
    .map_err(anyhow::Error::from)?;
    sqlx::query("SELECT support_enqueue($1, 'index_revision', $2)")
        .bind(workspace)
        .bind(revision)
        .execute(&mut **tx)
        .await
        .map_err(anyhow::Error::from)?;
    Ok(revision)
}

/// Delete an article's chunks from search; the revision that was live is no longer
/// indexed.
async fn take_out_of_search(
    tx: &mut Transaction<'_, Postgres>,
    workspace: Uuid,
    article: Uuid,
    live: Option<Uuid>,
) -> ApiResult<()> {
    VectorStore::delete_in(
        tx,
        &collection(workspace),
        &json!({ "article_id": article }),
    )
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
    if let Some(live) = live {
        sqlx::query(
            "UPDATE data.kb_revisions SET index_status = 'none', chunk_count = NULL WHERE id = $1",
        )
        .bind(live)
        .execute(&mut **tx)
        .await
        .map_err(anyhow::Error::from)?;
    }
    Ok(())
}

async fn set_status(
    tx: &mut Transaction<'_, Postgres>,
    workspace: Uuid,
    id: Uuid,
    status: &str,
) -> ApiResult<()> {
    sqlx::query("UPDATE data.kb_articles SET status = $3 WHERE workspace_id = $1 AND id = $2")
        .bind(workspace)
        .bind(id)
        .bind(status)
        .execute(&mut **tx)
        .await
        .map_err(rule_violation)?;
    Ok(())
}

pub async fn publish(
    pool: &PgPool,
    workspace: Uuid,
    article: &str,
    version: Option<i32>,
) -> ApiResult<ArticleView> {
    let mut tx = pool.begin().await.map_err(anyhow::Error::from)?;
    let revision = publish_in(&mut tx, workspace, article, version, false).await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    tracing::info!(%workspace, %revision, "article revision published; indexing queued");
    get_article(pool, workspace, article).await
}

/// Archive: out of search in this transaction.
pub async fn archive(pool: &PgPool, workspace: Uuid, article: &str) -> ApiResult<ArticleView> {
    let mut tx = pool.begin().await.map_err(anyhow::Error::from)?;
    let (id, _, live) = lock_article(&mut tx, workspace, article).await?;
    set_status(&mut tx, workspace, id, "archived").await?;
    take_out_of_search(&mut tx, workspace, id, live).await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    get_article(pool, workspace, &id.to_string()).await
}

pub async fn delete_article(pool: &PgPool, workspace: Uuid, article: &str) -> ApiResult<()> {
    let mut tx = pool.begin().await.map_err(anyhow::Error::from)?;
    let (id, _, _) = lock_article(&mut tx, workspace, article).await?;
    VectorStore::delete_in(
        &mut tx,
        &collection(workspace),
        &json!({ "article_id": id }),
    )
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
    sqlx::query("DELETE FROM data.kb_articles WHERE workspace_id = $1 AND id = $2")
        .bind(workspace)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(anyhow::Error::from)?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(())
}
