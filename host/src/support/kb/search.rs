//! Searching the knowledge base, answering from it with citations, and the knowledge
//! gaps: questions it could not answer, grouped by similarity.

use agenthost_support::answer::{self, Answer, Passage, Unanswered};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::{collection, gap_names};
use crate::embeddings::Role;
use crate::error::{ApiError, ApiResult};
use crate::llm::{Llm, UsageKey};
use crate::vector::{SearchMode, TextMatch, TextQuery, VectorError, VectorStore};

/// A question this similar to any question of a gap belongs to it (all-MiniLM-L6-v2:
/// rephrasings of one question score about 0.6-0.9, different questions on the same
/// product below 0.5).
const GAP_SIMILARITY: f32 = 0.6;
/// The same for a model with a similarity floor (multilingual-e5-small), on the
/// calibrated scale: its same-topic and different-topic questions overlap more (on the
/// e2e test's 30 questions without their names: same topic 0.38-0.77, different
/// topics up to 0.64), so it takes a closer match to join a gap.
const GAP_SIMILARITY_FLOORED: f32 = 0.65;
/// Characters of a search query at most, as of a question to answer: longer text is
/// no search a person typed, and the full-text arm reads a bounded part of it anyway.
pub const MAX_QUERY_CHARS: usize = answer::MAX_QUESTION_CHARS;
/// Gaps read for grouping at most (the newest). Each is embedded again on every call
/// (nothing stores a question's embedding yet), so this bounds the call's cost.
const MAX_GAPS: i64 = 500;

fn usage(workspace: Uuid) -> UsageKey {
    UsageKey {
        workspace: Some(workspace),
        plugin: None,
        agent: None,
    }
}

/// A chunk from the shared collection as a passage (metadata written by `index`).
pub fn passage(hit: &TextMatch) -> Passage {
    Passage::from_chunk(
        &hit.id,
        hit.text.as_deref(),
        &hit.metadata,
        hit.similarity,
        hit.text_rank.is_some(),
    )
}

/// One search result: the chunk as a passage, with the scores of the search.
#[derive(Debug, Serialize)]
pub struct Hit {
    #[serde(flatten)]
    pub passage: Passage,
    pub score: f32,
    pub text_rank: Option<f32>,
}

/// The best chunks of live revisions for `query`.
pub async fn search(
    vectors: &VectorStore,
    workspace: Uuid,
    query: &str,
    k: u32,
    mode: SearchMode,
) -> ApiResult<Vec<Hit>> {
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::Invalid(format!(
            "query must be at most {MAX_QUERY_CHARS} characters"
        )));
    }
    let found = vectors
        .search_text(
            &usage(workspace),
            &collection(workspace),
            TextQuery {
                text: query.to_string(),
                k,
                filter: None,
                mode,
            },
        )
        .await;
    let hits = match found {
        Ok(hits) => hits,
        // Nothing was ever published in this workspace.
        Err(VectorError::NotFound(_)) => Vec::new(),
        Err(VectorError::Invalid(m)) => return Err(ApiError::Invalid(m)),
        Err(VectorError::Unavailable(m)) => return Err(unavailable("search", &m)),
    };
    Ok(hits
        .iter()
        .map(|hit| Hit {
            passage: passage(hit),
            score: hit.score,
            text_rank: hit.text_rank,
        })
        .collect())
}

/// The store's message may hold a database's text: it goes to the log, the client
/// gets a generic 503 (with the request id to find the log line).
fn unavailable(what: &str, message: &str) -> ApiError {
    tracing::error!(error = message, "knowledge base {what} failed");
    ApiError::Unavailable(format!(
        "the knowledge base {what} is unavailable; try again"
    ))
}

/// Where an answer's question came from, for the gaps list.
pub struct Asked<'a> {
    pub workspace: Uuid,
    pub source: &'a str,
}

/// Answer `question` from the knowledge base: hybrid search, the relevant passages
/// within the context budget, then the LLM (when configured) or an extractive answer.
/// An unanswered question is recorded as a knowledge gap.
pub async fn answer(
    pool: &PgPool,
    vectors: &VectorStore,
    llm: &Llm,
    model: &str,
    asked: Asked<'_>,
    question: &str,
) -> ApiResult<Answer> {
    let question = question.trim();
    if question.is_empty() || question.chars().count() > answer::MAX_QUESTION_CHARS {
        return Err(ApiError::Invalid(format!(
            "question must be 1 to {} characters",
            answer::MAX_QUESTION_CHARS
        )));
    }
    let hits = search(
        vectors,
        asked.workspace,
        question,
        answer::CANDIDATES,
        SearchMode::Hybrid,
    )
    .await?;
    let all: Vec<Passage> = hits.into_iter().map(|h| h.passage).collect();
    let best = all.iter().map(|p| p.similarity).reduce(f32::max);
    let passages = answer::select(question, &all, answer::CONTEXT_TOKENS);
    let mode = if llm.is_configured() {
        answer::Mode::Llm
    } else {
        answer::Mode::Extractive
    };
    let result = if passages.is_empty() {
        answer::unanswered(Unanswered::NoMatch, mode, best)
    } else if llm.is_configured() {
        let (system, user) = answer::prompt(answer::ANSWER_TASK, question, &passages);
        let reply = chat_text(llm, model, asked.workspace, &system, &user).await?;
        answer::from_llm(&reply, &passages)
    } else {
        answer::extractive(&passages)
    };
    if let Some(reason) = result.reason {
        record_gap(pool, asked.workspace, question, reason, best, asked.source).await?;
    }
    Ok(result)
}

/// One chat completion's text.
pub async fn chat_text(
    llm: &Llm,
    model: &str,
    workspace: Uuid,
    system: &str,
    user: &str,
) -> ApiResult<String> {
    let request = json!({
        "model": model,
        "temperature": 0,
        "messages": [
            { "role": "system", "content": system },
            { "role": "user", "content": user },
        ],
    });
    let response = llm
        .chat(&usage(workspace), request)
        .await
        .map_err(|e| ApiError::Unavailable(format!("the LLM failed: {e}")))?;
    Ok(response["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

pub async fn record_gap(
    pool: &PgPool,
    workspace: Uuid,
    question: &str,
    reason: Unanswered,
    best: Option<f32>,
    source: &str,
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO data.kb_gaps (workspace_id, question, reason, best_score, source)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(workspace)
    .bind(question)
    .bind(reason.as_str())
    .bind(best)
    .bind(source)
    .execute(pool)
    .await
    .map_err(anyhow::Error::from)?;
    Ok(())
}

/// Unanswered questions of one meaning.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = KbGap)]
pub struct GapGroup {
    /// The first question asked of the group.
    pub question: String,
    pub count: usize,
    /// Up to five distinct phrasings.
    pub examples: Vec<String>,
    pub first_asked_at: chrono::DateTime<chrono::Utc>,
    pub last_asked_at: chrono::DateTime<chrono::Utc>,
    /// How many of the questions had each reason (`no_match`, `not_covered`).
    #[schema(value_type = std::collections::HashMap<String, u64>)]
    pub reasons: Value,
}

/// Unanswered questions grouped by what they ask: each question, oldest first, joins
/// the group holding the question most similar to it when that is at least
/// [`GAP_SIMILARITY`], else starts one; questions that both name something (a city, a
/// company) are compared without the names (see `gap_names`). Biggest groups first.
pub async fn gaps(
    pool: &PgPool,
    vectors: &VectorStore,
    workspace: Uuid,
) -> ApiResult<Vec<GapGroup>> {
    let rows: Vec<(String, String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT question, reason, asked_at FROM (
             SELECT question, reason, asked_at FROM data.kb_gaps WHERE workspace_id = $1
              ORDER BY asked_at DESC LIMIT $2) newest
          ORDER BY asked_at",
    )
    .bind(workspace)
    .bind(MAX_GAPS)
    .fetch_all(pool)
    .await
    .map_err(anyhow::Error::from)?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let texts: Vec<String> = rows.iter().map(|(q, ..)| q.clone()).collect();
    let names = gap_names::names(&texts);
    let unnamed: Vec<Option<String>> = texts
        .iter()
        .map(|q| gap_names::without_names(q, &names))
        .collect();
    // One embedding call for the questions as asked and those without their names.
    let mut all = texts.clone();
    all.extend(unnamed.iter().flatten().cloned());
    let mut embeddings = vectors
        .embed_texts(&usage(workspace), Role::Query, &all)
        .await
        .map_err(|e| unavailable("grouping gaps", &e.to_string()))?
        .into_iter();
    let asked: Vec<Vec<f32>> = embeddings.by_ref().take(texts.len()).collect();
    let embedded: Vec<gap_names::Embedded> = asked
        .into_iter()
        .zip(&unnamed)
        .map(|(asked, unnamed)| gap_names::Embedded {
            asked,
            unnamed: unnamed.as_ref().and_then(|_| embeddings.next()),
        })
        .collect();
    let floor = crate::embeddings::similarity_floor(vectors.model());
    let threshold = if floor > 0.0 {
        GAP_SIMILARITY_FLOORED
    } else {
        GAP_SIMILARITY
    };
    let mut groups: Vec<(Vec<gap_names::Embedded>, GapGroup)> = Vec::new();
    for ((question, reason, asked_at), embedding) in rows.into_iter().zip(embedded) {
        let closeness = |members: &Vec<gap_names::Embedded>| {
            let cosine = members
                .iter()
                .map(|m| gap_names::similarity(m, &embedding))
                .fold(f32::MIN, f32::max);
            crate::embeddings::calibrated(cosine, floor)
        };
        let similar = groups
            .iter_mut()
            .map(|(members, group)| (closeness(members), members, group))
            .filter(|(closeness, ..)| *closeness >= threshold)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        match similar {
            Some((_, members, group)) => {
                members.push(embedding);
                group.count += 1;
                group.last_asked_at = asked_at;
                if group.examples.len() < 5 && !group.examples.contains(&question) {
                    group.examples.push(question);
                }
                let n = group.reasons[&reason].as_u64().unwrap_or(0);
                group.reasons[&reason] = json!(n + 1);
            }
            None => groups.push((
                vec![embedding],
                GapGroup {
                    examples: vec![question.clone()],
                    question,
                    count: 1,
                    first_asked_at: asked_at,
                    last_asked_at: asked_at,
                    reasons: json!({ reason: 1 }),
                },
            )),
        }
    }
    let mut groups: Vec<GapGroup> = groups.into_iter().map(|(_, g)| g).collect();
    groups.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(b.last_asked_at.cmp(&a.last_asked_at))
    });
    Ok(groups)
}
