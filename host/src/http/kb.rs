//! The knowledge base, answers, gaps, intents, sentiment and ticket enrichment
//! (docs/cassie.md).
//!
//! Roles: reading and searching need any key; writing articles, asking for answers
//! (they record gaps), enriching and overriding need `member`; publishing, archiving,
//! deleting, importing and setting intents need `admin`.

use agenthost_support::sentiment;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::extract::{Json, Path, Query, TextBody};
use crate::auth::{Role, WorkspaceCaller};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::support::kb::search::{self, Asked};
use crate::support::kb::{self, ArticleChange, ArticleFilter, ArticleInput, RevisionInput};
use crate::support::{enrichment, rule_violation, services};
use crate::vector::SearchMode;

/// Imports carry many articles.
const IMPORT_BODY_LIMIT: usize = 32 << 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/kb/articles", get(list_articles).post(create_article))
        .route(
            "/api/kb/articles/{article}",
            get(get_article)
                .patch(update_article)
                .delete(delete_article),
        )
        .route(
            "/api/kb/articles/{article}/revisions",
            get(list_revisions).post(add_revision),
        )
        .route("/api/kb/articles/{article}/publish", post(publish))
        .route("/api/kb/articles/{article}/archive", post(archive))
        .route(
            "/api/kb/import",
            post(import).layer(super::body_limit(IMPORT_BODY_LIMIT)),
        )
        .route("/api/kb/index", get(index_status))
        .route("/api/kb/search", post(search_kb))
        .route("/api/kb/answer", post(answer))
        .route("/api/kb/gaps", get(gaps))
        .route("/api/support/intents", get(get_intents).put(put_intents))
        .route("/api/sentiment", post(analyse_sentiment))
        .route("/api/tickets/{id}/enrich", post(enrich_ticket))
        .route("/api/tickets/{id}/overrides", put(set_overrides))
}

fn actor(caller: &WorkspaceCaller) -> String {
    format!("key:{}", caller.0.key_id)
}

async fn list_articles(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Query(filter): Query<ArticleFilter>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let articles = kb::list_articles(&state.pool, caller.0.workspace_id, &filter).await?;
    Ok(Json(json!({ "articles": articles })))
}

async fn create_article(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Json(input): Json<ArticleInput>,
) -> ApiResult<Response> {
    let needed = if input.status.as_deref() == Some("published") {
        Role::Admin
    } else {
        Role::Member
    };
    caller.require(needed)?;
    let article =
        kb::create_article(&state.pool, caller.0.workspace_id, &actor(&caller), input).await?;
    Ok((StatusCode::CREATED, Json(json!(article))).into_response())
}

async fn get_article(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(article): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let view = kb::get_article(&state.pool, caller.0.workspace_id, &article).await?;
    let revisions = kb::list_revisions(&state.pool, caller.0.workspace_id, &article).await?;
    let mut body = json!(view);
    body["live_revision"] = json!(
        revisions
            .iter()
            .find(|r| Some(r.id) == view.live_revision_id)
    );
    body["latest_revision"] = json!(revisions.last());
    Ok(Json(body))
}

async fn update_article(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(article): Path<String>,
    Json(change): Json<ArticleChange>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Member)?;
    let view = kb::update_article(&state.pool, caller.0.workspace_id, &article, change).await?;
    Ok(Json(json!(view)))
}

async fn delete_article(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(article): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    kb::delete_article(&state.pool, caller.0.workspace_id, &article).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_revisions(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(article): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let revisions = kb::list_revisions(&state.pool, caller.0.workspace_id, &article).await?;
    Ok(Json(json!({ "revisions": revisions })))
}

async fn add_revision(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(article): Path<String>,
    Json(input): Json<RevisionInput>,
) -> ApiResult<Response> {
    caller.require(Role::Member)?;
    let revision = kb::add_revision(
        &state.pool,
        caller.0.workspace_id,
        &article,
        &actor(&caller),
        input,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!(revision))).into_response())
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PublishInput {
    /// The revision to make live; the latest when absent.
    version: Option<i32>,
}

async fn publish(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(article): Path<String>,
    TextBody(body): TextBody,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Admin)?;
    // The body is optional: none publishes the latest revision.
    let version = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<PublishInput>(&body)
            .map_err(|e| ApiError::BadRequest(format!("the body is not a publish request: {e}")))?
            .version
    };
    let view = kb::publish(&state.pool, caller.0.workspace_id, &article, version).await?;
    Ok(Json(json!(view)))
}

async fn archive(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(article): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Admin)?;
    let view = kb::archive(&state.pool, caller.0.workspace_id, &article).await?;
    Ok(Json(json!(view)))
}

async fn import(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Json(articles): Json<Vec<ArticleInput>>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Admin)?;
    let summary = kb::import(
        &state.pool,
        caller.0.workspace_id,
        &actor(&caller),
        articles,
    )
    .await?;
    Ok(Json(json!(summary)))
}

/// Indexing progress: revisions by state and the jobs still to run.
async fn index_status(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
) -> ApiResult<Json<Value>> {
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
    Ok(Json(json!({
        "published_articles": published,
        "chunks": chunks,
        "jobs": jobs.into_iter().map(|(s, n)| (s, json!(n))).collect::<serde_json::Map<_, _>>(),
        "running": running,
        "idle": pending == 0,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchInput {
    query: String,
    k: Option<u32>,
    mode: Option<SearchMode>,
}

async fn search_kb(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Json(input): Json<SearchInput>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let hits = search::search(
        &state.registry.services.vectors,
        caller.0.workspace_id,
        &input.query,
        input.k.unwrap_or(10),
        input.mode.unwrap_or_default(),
    )
    .await?;
    Ok(Json(json!({ "results": hits })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerInput {
    question: String,
}

async fn answer(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Json(input): Json<AnswerInput>,
) -> ApiResult<Json<Value>> {
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
    Ok(Json(json!(answer)))
}

async fn gaps(caller: WorkspaceCaller, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let groups = search::gaps(
        &state.pool,
        &state.registry.services.vectors,
        caller.0.workspace_id,
    )
    .await?;
    Ok(Json(json!({ "gaps": groups })))
}

async fn get_intents(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let intents = enrichment::intents(&state.pool, caller.0.workspace_id)
        .await
        .map_err(anyhow::Error::from)?;
    Ok(Json(json!({ "intents": intents })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentsInput {
    intents: Vec<agenthost_support::triage::Intent>,
}

/// Replace the workspace's intents (an empty list returns to the defaults).
async fn put_intents(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Json(input): Json<IntentsInput>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Admin)?;
    if input.intents.len() > 50 {
        return Err(ApiError::Invalid("at most 50 intents".into()));
    }
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SentimentInput {
    text: String,
}

/// The lexicon's verdict on a text (offline, VADER).
async fn analyse_sentiment(
    caller: WorkspaceCaller,
    Json(input): Json<SentimentInput>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    if input.text.len() > agenthost_support::triage::MAX_SENTIMENT_BYTES {
        return Err(ApiError::Invalid("text is over 64 KiB".into()));
    }
    Ok(Json(json!(sentiment::analyze(&input.text, None))))
}

/// A ticket by id or number, in the caller's workspace (the tickets API's rule).
async fn ticket_id(state: &AppState, workspace: Uuid, ticket: &str) -> ApiResult<Uuid> {
    crate::support::tickets::find_id(
        &state.pool,
        workspace,
        &crate::support::tickets::TicketRef::parse(ticket),
    )
    .await
}

async fn enrichment_of(state: &AppState, workspace: Uuid, id: Uuid) -> ApiResult<Value> {
    let (enrichment, overrides, enriched_at): (
        Option<Value>,
        Value,
        Option<chrono::DateTime<chrono::Utc>>,
    ) = sqlx::query_as(
        "SELECT enrichment, overrides, enriched_at FROM data.tickets
              WHERE workspace_id = $1 AND id = $2",
    )
    .bind(workspace)
    .bind(id)
    .fetch_one(&state.pool)
    .await
    .map_err(anyhow::Error::from)?;
    Ok(json!({ "enrichment": enrichment, "overrides": overrides, "enriched_at": enriched_at }))
}

/// Enrich now (the same work the background job does) and return the result.
async fn enrich_ticket(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(ticket): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Member)?;
    let workspace = caller.0.workspace_id;
    let id = ticket_id(&state, workspace, &ticket).await?;
    enrichment::enrich(&services(&state), workspace, id)
        .await
        .map_err(|e| ApiError::Unavailable(format!("enrichment failed: {e:#}")))?;
    Ok(Json(enrichment_of(&state, workspace, id).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Overrides {
    /// negative, neutral or positive.
    sentiment: Option<OverriddenSentiment>,
    intent: Option<String>,
    priority: Option<agenthost_support::triage::Priority>,
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
enum OverriddenSentiment {
    Negative,
    Neutral,
    Positive,
}

/// A person's corrections of enrichment; kept when the ticket is enriched again.
/// The body replaces every override: leave a field out (or null) to drop its override.
async fn set_overrides(
    caller: WorkspaceCaller,
    State(state): State<AppState>,
    Path(ticket): Path<String>,
    Json(overrides): Json<Overrides>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Member)?;
    let workspace = caller.0.workspace_id;
    let id = ticket_id(&state, workspace, &ticket).await?;
    if let Some(intent) = &overrides.intent {
        let known = enrichment::intents(&state.pool, workspace)
            .await
            .map_err(anyhow::Error::from)?;
        if !known.iter().any(|i| &i.name == intent) {
            let names: Vec<&str> = known.iter().map(|i| i.name.as_str()).collect();
            return Err(ApiError::Invalid(format!(
                "intent {intent:?} is not one of the workspace's intents: {}",
                names.join(", ")
            )));
        }
    }
    let value = json!({
        "sentiment": overrides.sentiment,
        "intent": overrides.intent,
        "priority": overrides.priority,
    });
    let set: serde_json::Map<String, Value> = value
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    sqlx::query(
        "UPDATE data.tickets SET overrides = $3, updated_by = $4
          WHERE workspace_id = $1 AND id = $2",
    )
    .bind(workspace)
    .bind(id)
    .bind(Value::Object(set))
    .bind(actor(&caller))
    .execute(&state.pool)
    .await
    .map_err(rule_violation)?;
    Ok(Json(enrichment_of(&state, workspace, id).await?))
}
