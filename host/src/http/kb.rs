//! The knowledge base, answers, gaps, intents and sentiment (docs/cassie.md); ticket
//! enrichment is in `ticket_enrichment`.
//!
//! Roles: reading and searching need any key; writing articles, asking for answers
//! (they record gaps), enriching and overriding need `member`; publishing, archiving,
//! deleting, importing and setting intents need `admin`.

use agenthost_support::sentiment;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{Json, Path, Query, TextBody};
use crate::auth::{Role, WorkspaceCaller};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::support::kb::search::{self, Asked, GapGroup};
use crate::support::kb::{
    self, ArticleChange, ArticleFilter, ArticleInput, ArticleView, ImportSummary, RevisionInput,
    RevisionView,
};
use crate::support::{enrichment, rule_violation};
use crate::vector::SearchMode;
use schema::{Answer, Intent, SearchHit, SearchModeName, Sentiment};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_articles, create_article))
        .routes(routes!(get_article, update_article, delete_article))
        .routes(routes!(list_revisions, add_revision))
        .routes(routes!(publish))
        .routes(routes!(archive))
        .routes(routes!(import).layer(super::body_limit(super::IMPORT_BODY_LIMIT)))
        .routes(routes!(index_status))
        .routes(routes!(search_kb))
        .routes(routes!(answer))
        .routes(routes!(gaps))
        .routes(routes!(get_intents, put_intents))
        .routes(routes!(analyse_sentiment))
}

/// Types of the `agenthost-support` crate (and the vector store) as the API shows them,
/// described for the OpenAPI document; the handlers return the originals.
#[allow(dead_code)]
mod schema {
    use serde::Serialize;
    use utoipa::ToSchema;

    /// How to search: embeddings, full text, or both fused (default).
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    #[schema(as = SearchMode)]
    pub enum SearchModeName {
        Vector,
        FullText,
        Hybrid,
    }

    /// One chunk of a live article revision, with the scores of the search.
    #[derive(Serialize, ToSchema)]
    #[schema(as = KbSearchHit)]
    pub struct SearchHit {
        pub chunk_id: String,
        pub article_id: String,
        pub slug: String,
        pub title: String,
        pub revision_id: String,
        pub version: i64,
        /// Headings from the article's title down to the chunk's section.
        pub heading_path: Vec<String>,
        /// The chunk's text without its heading line.
        pub text: String,
        pub similarity: f32,
        /// Whether the full-text arm matched it too.
        pub text_match: bool,
        pub score: f32,
        pub text_rank: Option<f32>,
    }

    /// Where a `[n]` of an answer points.
    #[derive(Serialize, ToSchema)]
    #[schema(as = KbCitation)]
    pub struct Citation {
        pub n: u64,
        pub chunk_id: String,
        pub article_id: String,
        pub slug: String,
        pub title: String,
        pub revision_id: String,
        pub version: i64,
        pub heading_path: Vec<String>,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    #[schema(as = KbAnswerMode)]
    pub enum Mode {
        /// Written by the LLM from the sources.
        Llm,
        /// Quoted from the best passages (no LLM configured).
        Extractive,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    #[schema(as = KbUnanswered)]
    pub enum Unanswered {
        NoMatch,
        NotCovered,
    }

    /// An answer from the knowledge base with its citations.
    #[derive(Serialize, ToSchema)]
    #[schema(as = KbAnswer)]
    pub struct Answer {
        pub answered: bool,
        /// The answer with `[n]` markers, or what to tell the customer when unanswered.
        pub answer: String,
        pub citations: Vec<Citation>,
        pub mode: Mode,
        /// Why it was not answered (the question is recorded as a gap).
        pub reason: Option<Unanswered>,
        /// Next step when unanswered.
        pub suggestion: Option<String>,
        /// The best passage's similarity to the question.
        pub best_similarity: Option<f32>,
    }

    /// An intent tickets are classified into, with labelled examples.
    #[derive(Serialize, ToSchema)]
    #[schema(as = SupportIntent)]
    pub struct Intent {
        /// 1-64 of `a-z`, `0-9`, `_`; each intent its own.
        #[schema(pattern = "^[a-z0-9_]{1,64}$")]
        pub name: String,
        #[serde(default)]
        pub description: String,
        /// 1 to 50 example messages, none blank.
        #[schema(min_items = 1, max_items = 50, value_type = Vec<IntentExample>)]
        pub examples: Vec<String>,
    }

    /// An example message of an intent: not only spaces.
    #[derive(ToSchema)]
    #[schema(value_type = String, pattern = "\\S")]
    pub struct IntentExample(String);

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    #[schema(as = SentimentLabel)]
    pub enum Label {
        Negative,
        Neutral,
        Positive,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    #[schema(as = SentimentMethod)]
    pub enum Method {
        Lexicon,
        Hybrid,
        Anchors,
    }

    /// VADER's scores.
    #[derive(Serialize, ToSchema)]
    #[schema(as = SentimentScores)]
    pub struct Scores {
        /// The normalised sum of the words' valences, -1 to 1.
        pub compound: f64,
        pub positive: f64,
        pub negative: f64,
        pub neutral: f64,
    }

    /// The sentiment of a text.
    #[derive(Serialize, ToSchema)]
    pub struct Sentiment {
        /// -1 (most negative) to 1.
        pub score: f64,
        pub label: Label,
        /// 0 to 1.
        pub confidence: f64,
        pub method: Method,
        pub lexicon: Scores,
        /// The LLM's score as used, if one was given.
        pub llm: Option<f64>,
        /// The detected language when not English (the score is then by anchors).
        pub language: Option<String>,
    }
}

fn actor(caller: &WorkspaceCaller) -> String {
    format!("key:{}", caller.0.key_id)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct KbArticles {
    articles: Vec<ArticleView>,
}

/// Any role: articles, ordered by title.
#[utoipa::path(get, path = "/api/kb/articles", tag = "knowledge base", params(ArticleFilter),
    responses((status = 200, body = KbArticles)))]
async fn list_articles(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Query(filter): Query<ArticleFilter>,
) -> ApiResult<Json<KbArticles>> {
    caller.require(Role::Viewer)?;
    let articles = kb::list_articles(&state.pool, caller.0.workspace_id, &filter).await?;
    Ok(Json(KbArticles { articles }))
}

/// Member: a new article with revision 1 (admin to publish it at once).
#[utoipa::path(post, path = "/api/kb/articles", tag = "knowledge base", request_body = ArticleInput,
    responses((status = 201, description = "The new article", body = ArticleView)))]
async fn create_article(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Json(input): Json<ArticleInput>,
) -> ApiResult<(StatusCode, Json<ArticleView>)> {
    let needed = if input.status.as_deref() == Some("published") {
        Role::Admin
    } else {
        Role::Member
    };
    caller.require(needed)?;
    let article =
        kb::create_article(&state.pool, caller.0.workspace_id, &actor(&caller), input).await?;
    Ok((StatusCode::CREATED, Json(article)))
}

/// An article with its live and latest revisions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct KbArticleDetail {
    #[serde(flatten)]
    article: ArticleView,
    /// The published revision.
    live_revision: Option<RevisionView>,
    latest_revision: Option<RevisionView>,
}

/// Any role: an article with its live and latest revisions.
#[utoipa::path(get, path = "/api/kb/articles/{article}", tag = "knowledge base",
    params(("article" = String, Path, description = "The article's id or slug")),
    responses((status = 200, body = KbArticleDetail)))]
async fn get_article(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(article): Path<String>,
) -> ApiResult<Json<KbArticleDetail>> {
    caller.require(Role::Viewer)?;
    let view = kb::get_article(&state.pool, caller.0.workspace_id, &article).await?;
    let mut revisions = kb::list_revisions(&state.pool, caller.0.workspace_id, &article).await?;
    let live_revision = revisions
        .iter()
        .find(|r| Some(r.id) == view.live_revision_id)
        .cloned();
    Ok(Json(KbArticleDetail {
        article: view,
        live_revision,
        latest_revision: revisions.pop(),
    }))
}

/// Member: change an article's title, category, tags, or status (draft or in review).
#[utoipa::path(patch, path = "/api/kb/articles/{article}", tag = "knowledge base",
    params(("article" = String, Path, description = "The article's id or slug")),
    request_body = ArticleChange,
    responses((status = 200, description = "The article", body = ArticleView)))]
async fn update_article(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(article): Path<String>,
    Json(change): Json<ArticleChange>,
) -> ApiResult<Json<ArticleView>> {
    caller.require(Role::Member)?;
    let view = kb::update_article(&state.pool, caller.0.workspace_id, &article, change).await?;
    Ok(Json(view))
}

/// Admin: delete an article, its revisions and its chunks.
#[utoipa::path(delete, path = "/api/kb/articles/{article}", tag = "knowledge base",
    params(("article" = String, Path, description = "The article's id or slug")),
    responses((status = 204, description = "Deleted")))]
async fn delete_article(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(article): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    kb::delete_article(&state.pool, caller.0.workspace_id, &article).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct KbRevisions {
    /// Oldest first.
    revisions: Vec<RevisionView>,
}

/// Any role: an article's revisions, oldest first.
#[utoipa::path(get, path = "/api/kb/articles/{article}/revisions", tag = "knowledge base",
    params(("article" = String, Path, description = "The article's id or slug")),
    responses((status = 200, body = KbRevisions)))]
async fn list_revisions(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(article): Path<String>,
) -> ApiResult<Json<KbRevisions>> {
    caller.require(Role::Viewer)?;
    let revisions = kb::list_revisions(&state.pool, caller.0.workspace_id, &article).await?;
    Ok(Json(KbRevisions { revisions }))
}

/// Member: a new revision of an article (live once published).
#[utoipa::path(post, path = "/api/kb/articles/{article}/revisions", tag = "knowledge base",
    params(("article" = String, Path, description = "The article's id or slug")),
    request_body = RevisionInput,
    responses((status = 201, description = "The new revision", body = RevisionView)))]
async fn add_revision(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(article): Path<String>,
    Json(input): Json<RevisionInput>,
) -> ApiResult<(StatusCode, Json<RevisionView>)> {
    caller.require(Role::Member)?;
    let revision = kb::add_revision(
        &state.pool,
        caller.0.workspace_id,
        &article,
        &actor(&caller),
        input,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(revision)))
}

#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = KbPublishInput)]
struct PublishInput {
    /// The revision to make live; the latest when absent.
    #[serde(default, deserialize_with = "whole_number")]
    version: Option<i32>,
}

/// JSON Schema counts `3.0` as an integer, so a client may send one; serde's `i32`
/// would refuse it.
fn whole_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i32>, D::Error> {
    use serde::de::Error;
    let Some(number) = Option::<f64>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if number.fract() == 0.0 && number >= f64::from(i32::MIN) && number <= f64::from(i32::MAX) {
        Ok(Some(number as i32))
    } else {
        Err(D::Error::custom(format!(
            "{number} is not a revision number"
        )))
    }
}

/// Admin: make a revision live (the latest without a body); it is indexed for search
/// in the background (see `GET /api/kb/index`).
#[utoipa::path(post, path = "/api/kb/articles/{article}/publish", tag = "knowledge base",
    params(("article" = String, Path, description = "The article's id or slug")),
    request_body(content = Option<PublishInput>, description = "Optional: no body (or `null`) publishes the latest revision"),
    responses((status = 200, description = "The article", body = ArticleView)))]
async fn publish(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(article): Path<String>,
    TextBody(body): TextBody,
) -> ApiResult<Json<ArticleView>> {
    caller.require(Role::Admin)?;
    // The body is optional: none publishes the latest revision.
    let version = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else if super::extract::starts_with_array(&body) {
        return Err(ApiError::Invalid(
            "the body must be a JSON object (or null), not an array".into(),
        ));
    } else {
        // `null` is no request too, as the document says. As the `Json` extractor
        // answers: 400 for JSON that doesn't parse, 422 for JSON of the wrong shape.
        serde_json::from_slice::<Option<PublishInput>>(&body)
            .map_err(|e| {
                let message = format!("the body is not a publish request: {e}");
                match e.classify() {
                    serde_json::error::Category::Data => ApiError::Invalid(message),
                    _ => ApiError::BadRequest(message),
                }
            })?
            .and_then(|input| input.version)
    };
    let view = kb::publish(&state.pool, caller.0.workspace_id, &article, version).await?;
    Ok(Json(view))
}

/// Admin: archive an article; it leaves search at once.
#[utoipa::path(post, path = "/api/kb/articles/{article}/archive", tag = "knowledge base",
    params(("article" = String, Path, description = "The article's id or slug")),
    responses((status = 200, description = "The article", body = ArticleView)))]
async fn archive(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(article): Path<String>,
) -> ApiResult<Json<ArticleView>> {
    caller.require(Role::Admin)?;
    let view = kb::archive(&state.pool, caller.0.workspace_id, &article).await?;
    Ok(Json(view))
}

/// Admin: up to 1000 articles in one transaction; an article whose slug exists gets a
/// new revision when its body changed. The first invalid article fails the import (422).
#[utoipa::path(post, path = "/api/kb/import", tag = "knowledge base",
    request_body(content = Vec<ArticleInput>, description = "Up to 1000 articles (32 MiB)"),
    responses((status = 200, description = "What was written", body = ImportSummary)))]
async fn import(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Json(articles): Json<Vec<ArticleInput>>,
) -> ApiResult<Json<ImportSummary>> {
    caller.require(Role::Admin)?;
    let summary = kb::import(
        &state.pool,
        caller.0.workspace_id,
        &actor(&caller),
        articles,
    )
    .await?;
    Ok(Json(summary))
}

/// Indexing progress of the knowledge base.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct KbIndexStatus {
    /// Published articles by the index status of their live revision (`queued`,
    /// `indexing`, `indexed`, `failed`, `none`); absent statuses have none.
    #[schema(value_type = std::collections::HashMap<String, i64>)]
    published_articles: Value,
    /// Chunks of the live revisions in search.
    chunks: i64,
    /// Indexing jobs by status (`queued`, `running`, `failed`).
    #[schema(value_type = std::collections::HashMap<String, i64>)]
    jobs: Value,
    /// The jobs running now.
    #[schema(value_type = Vec<KbIndexJob>)]
    running: Vec<Value>,
    /// Nothing queued or running.
    idle: bool,
}

/// A running indexing job (built in SQL; for the OpenAPI document).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct KbIndexJob {
    revision_id: Uuid,
    /// How far it is (`{done, total}` chunks), `{}` before the first batch.
    #[schema(value_type = Object)]
    progress: Value,
}

/// Any role: indexing progress, revisions by state and the jobs still to run.
#[utoipa::path(get, path = "/api/kb/index", tag = "knowledge base",
    responses((status = 200, body = KbIndexStatus)))]
async fn index_status(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
) -> ApiResult<Json<KbIndexStatus>> {
    caller.require(Role::Viewer)?;
    let workspace = caller.0.workspace_id;
    let revisions: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT r.index_status, count(*), sum(r.chunk_count)::bigint
           FROM data.kb_articles a JOIN data.kb_revisions r ON r.id = a.live_revision_id
          WHERE a.workspace_id = $1 AND a.status = 'published' GROUP BY 1",
    )
    .bind(workspace)
    .fetch_all(&state.pool)
    .await
    .map_err(anyhow::Error::from)?;
    let jobs: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, count(*) FROM support_jobs
          WHERE workspace_id = $1 AND kind = 'index_revision' AND status IN ('queued', 'running', 'failed')
          GROUP BY 1",
    )
    .bind(workspace)
    .fetch_all(&state.pool)
    .await
    .map_err(anyhow::Error::from)?;
    let running: Vec<Value> = sqlx::query_scalar(
        "SELECT jsonb_build_object('revision_id', target, 'progress', progress)
           FROM support_jobs WHERE workspace_id = $1 AND kind = 'index_revision' AND status = 'running'",
    )
    .bind(workspace)
    .fetch_all(&state.pool)
    .await
    .map_err(anyhow::Error::from)?;
    let mut published = json!({});
    let mut chunks = 0;
    for (status, count, chunk_count) in revisions {
        published[status] = json!(count);
        chunks += chunk_count.unwrap_or(0);
    }
    let pending = jobs
        .iter()
        .filter(|(s, _)| s == "queued" || s == "running")
        .map(|(_, n)| n)
        .sum::<i64>();
    Ok(Json(KbIndexStatus {
        published_articles: published,
        chunks,
        jobs: jobs
            .into_iter()
            .map(|(s, n)| (s, json!(n)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        running,
        idle: pending == 0,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = KbSearchInput)]
struct SearchInput {
    /// At most 4000 characters. Repeated words count once, and the full-text arm
    /// searches at most the 32 rarest of the query's words. Not only spaces.
    #[schema(max_length = 4000, pattern = "\\S")]
    query: String,
    /// How many results, 1 to 100 (default 10).
    #[schema(minimum = 1, maximum = 100)]
    k: Option<u32>,
    #[schema(value_type = Option<SearchModeName>)]
    mode: Option<SearchMode>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct KbSearchResults {
    /// Best first.
    #[schema(value_type = Vec<SearchHit>)]
    results: Vec<search::Hit>,
}

/// Any role: the best chunks of live revisions for a query.
#[utoipa::path(post, path = "/api/kb/search", tag = "knowledge base", request_body = SearchInput,
    responses((status = 200, body = KbSearchResults)))]
async fn search_kb(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Json(input): Json<SearchInput>,
) -> ApiResult<Json<KbSearchResults>> {
    caller.require(Role::Viewer)?;
    let hits = search::search(
        &state.registry.services.vectors,
        caller.0.workspace_id,
        &input.query,
        input.k.unwrap_or(10),
        input.mode.unwrap_or_default(),
    )
    .await?;
    Ok(Json(KbSearchResults { results: hits }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = KbAnswerInput)]
struct AnswerInput {
    /// 1 to 4000 characters, not only spaces.
    #[schema(max_length = 4000, pattern = "\\S")]
    question: String,
}

/// Member: an answer from the knowledge base with citations, written by the LLM when
/// one is configured, else quoted; an unanswered question is recorded as a gap.
#[utoipa::path(post, path = "/api/kb/answer", tag = "knowledge base", request_body = AnswerInput,
    responses((status = 200, body = Answer)))]
async fn answer(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Json(input): Json<AnswerInput>,
) -> ApiResult<Json<agenthost_support::answer::Answer>> {
    caller.require(Role::Member)?;
    let services = &state.registry.services;
    let answer = search::answer(
        &state.pool,
        &services.vectors,
        &services.llm,
        &state.config.llm_default_model,
        Asked {
            workspace: caller.0.workspace_id,
            source: "api",
        },
        &input.question,
    )
    .await?;
    Ok(Json(answer))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct KbGaps {
    /// Biggest groups first.
    gaps: Vec<GapGroup>,
}

/// Any role: questions the knowledge base could not answer, grouped by meaning.
#[utoipa::path(get, path = "/api/kb/gaps", tag = "knowledge base",
    responses((status = 200, body = KbGaps)))]
async fn gaps(caller: WorkspaceCaller, State(state): State<AppState>) -> ApiResult<Json<KbGaps>> {
    caller.require(Role::Viewer)?;
    let groups = search::gaps(
        &state.pool,
        &state.registry.services.vectors,
        caller.0.workspace_id,
    )
    .await?;
    Ok(Json(KbGaps { gaps: groups }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct SupportIntents {
    /// The workspace's intents, or the defaults when it has none.
    #[schema(value_type = Vec<Intent>)]
    intents: Vec<agenthost_support::triage::Intent>,
}

/// Any role: the intents tickets are classified into.
#[utoipa::path(get, path = "/api/support/intents", tag = "support",
    responses((status = 200, body = SupportIntents)))]
async fn get_intents(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
) -> ApiResult<Json<SupportIntents>> {
    caller.require(Role::Viewer)?;
    let intents = enrichment::intents(&state.pool, caller.0.workspace_id)
        .await
        .map_err(anyhow::Error::from)?;
    Ok(Json(SupportIntents { intents }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SupportIntentsInput)]
struct IntentsInput {
    /// At most 50; an empty list returns to the defaults.
    #[schema(value_type = Vec<Intent>, max_items = 50)]
    intents: Vec<agenthost_support::triage::Intent>,
}

/// Admin: replace the workspace's intents (an empty list returns to the defaults).
#[utoipa::path(put, path = "/api/support/intents", tag = "support", request_body = IntentsInput,
    responses((status = 200, description = "The intents now", body = SupportIntents)))]
async fn put_intents(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Json(input): Json<IntentsInput>,
) -> ApiResult<Json<SupportIntents>> {
    caller.require(Role::Admin)?;
    if input.intents.len() > 50 {
        return Err(ApiError::Invalid("at most 50 intents".into()));
    }
    check_intents(&input.intents).map_err(ApiError::Invalid)?;
    let workspace = caller.0.workspace_id;
    let mut tx = state.pool.begin().await.map_err(anyhow::Error::from)?;
    sqlx::query("DELETE FROM data.support_intents WHERE workspace_id = $1")
        .bind(workspace)
        .execute(&mut *tx)
        .await
        .map_err(anyhow::Error::from)?;
    for (index, intent) in input.intents.iter().enumerate() {
        sqlx::query(
            "INSERT INTO data.support_intents (workspace_id, name, description, examples)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(workspace)
        .bind(&intent.name)
        .bind(&intent.description)
        .bind(&intent.examples)
        .execute(&mut *tx)
        .await
        .map_err(|e| match rule_violation(e) {
            ApiError::Invalid(m) => ApiError::Invalid(format!(
                "intent {} ({:?}): {m} (names are 1-64 of a-z 0-9 _, with 1-50 examples)",
                index + 1,
                intent.name
            )),
            other => other,
        })?;
    }
    tx.commit().await.map_err(anyhow::Error::from)?;
    get_intents(caller, State(state)).await
}

/// The table's rules, checked first so a broken one is named in words, not by the
/// PostgreSQL constraint that would refuse it.
fn check_intents(intents: &[agenthost_support::triage::Intent]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for (index, intent) in intents.iter().enumerate() {
        let which = format!("intent {} ({:?})", index + 1, intent.name);
        let name_ok = (1..=64).contains(&intent.name.len())
            && intent
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !name_ok {
            return Err(format!(
                "{which}: a name is 1 to 64 characters of a-z, 0-9 and _"
            ));
        }
        if !(1..=50).contains(&intent.examples.len()) {
            return Err(format!(
                "{which}: needs 1 to 50 examples, has {}",
                intent.examples.len()
            ));
        }
        if intent
            .examples
            .iter()
            .any(|example| example.trim().is_empty())
        {
            return Err(format!("{which}: an example is blank"));
        }
        if !seen.insert(intent.name.as_str()) {
            return Err(format!("{which}: the name is used twice"));
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SentimentInput {
    /// Up to 64 KiB.
    text: String,
}

/// Any role: the sentiment of a text, offline: VADER for English, similarity to
/// labelled anchor sentences with the multilingual embedding model for other languages.
#[utoipa::path(post, path = "/api/sentiment", tag = "support", request_body = SentimentInput,
    responses((status = 200, body = Sentiment)))]
async fn analyse_sentiment(
    State(state): State<AppState>,
    caller: WorkspaceCaller,
    Json(input): Json<SentimentInput>,
) -> ApiResult<Json<sentiment::Sentiment>> {
    caller.require(Role::Viewer)?;
    if input.text.len() > agenthost_support::triage::MAX_SENTIMENT_BYTES {
        return Err(ApiError::Invalid("text is over 64 KiB".into()));
    }
    let vectors = &state.registry.services.vectors;
    Ok(Json(
        crate::support::sentiment::analyze(vectors, caller.0.workspace_id, &input.text, None).await,
    ))
}
