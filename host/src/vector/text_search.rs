//! Text search over a collection by vector, by full text, or both fused by reciprocal
//! rank (`hybrid`). Full text uses the generated `tsv` column (migration 0012): the
//! metadata `heading` weighs A, the text B, English stemming.
//!
//! In hybrid mode a full-text match counts in proportion to the share of the query's
//! words it holds: a chunk holding the one error code asked for counts in full, one
//! sharing a single common word with a long question counts little (PostgreSQL has no
//! IDF; without this, OR-ed questions bring in noise that outranks good vector hits).
//!
//! The user's words are read with `websearch_to_tsquery` (never a syntax error) and
//! then OR-ed: AND-ing every word of a question ("how do I get a refund for my
//! order") finds only documents holding all of them, which for natural questions is
//! usually none. Quoted phrases stay phrases; a query with a `-word` exclusion keeps
//! AND semantics, since OR-ing a negation would match nearly everything.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{CollectionKey, MAX_K, VectorError, VectorStore};
use crate::llm::UsageKey;

/// Candidates each arm of a hybrid search contributes before fusion.
const CANDIDATES: u32 = 40;
/// The constant of reciprocal rank fusion: a document's fused score is
/// Σ 1 / (RRF_K + rank) over the lists it is in (Cormack et al. 2009).
const RRF_K: f64 = 60.0;

/// The tsquery of the user's text, OR-ed (see the module doc). `$Q` is the text.
const OR_QUERY: &str = "(SELECT CASE WHEN strpos(w::text, '!') > 0 THEN w
                                     ELSE replace(w::text, ' & ', ' | ')::tsquery END
                          FROM websearch_to_tsquery('english', $Q) AS w)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    Vector,
    FullText,
    #[default]
    Hybrid,
}

#[derive(Debug, Clone)]
pub struct TextQuery {
    pub text: String,
    pub k: u32,
    pub filter: Option<Value>,
    pub mode: SearchMode,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextMatch {
    pub id: String,
    /// Cosine similarity (vector), full-text rank (full_text) or fused score (hybrid).
    pub score: f32,
    /// Cosine similarity to the query; None in full-text mode.
    pub similarity: Option<f32>,
    /// Full-text rank; None when no query word matched the document.
    pub text_rank: Option<f32>,
    pub text: Option<String>,
    pub metadata: Value,
}

type Row = (String, Option<String>, Value, f64, Option<f32>, Option<f32>);

impl VectorStore {
    pub async fn search_text(
        &self,
        usage: &UsageKey,
        key: &CollectionKey,
        query: TextQuery,
    ) -> Result<Vec<TextMatch>, VectorError> {
        if !(1..=MAX_K).contains(&query.k) {
            return Err(VectorError::Invalid(format!(
                "k must be between 1 and {MAX_K}"
            )));
        }
        if query.text.trim().is_empty() {
            return Err(VectorError::Invalid("the query text is empty".into()));
        }
        if let Some(filter) = &query.filter
            && !filter.is_object()
        {
            return Err(VectorError::Invalid("filter must be a JSON object".into()));
        }
        let collection = self
            .find(key)
            .await?
            .ok_or_else(|| VectorError::NotFound(format!("no collection named {:?}", key.name)))?;
        let dims = collection.dims;
        let vector = match query.mode {
            SearchMode::FullText => None,
            SearchMode::Vector | SearchMode::Hybrid => Some(
                self.query_vector(usage, key, &collection, query.text.clone())
                    .await?,
            ),
        };
        let candidates = query.k.max(CANDIDATES);
        let similarity =
            format!("(1 - (d.embedding::vector({dims}) <=> $2::vector({dims})))::real");
        let text_rank = format!(
            "CASE WHEN d.tsv @@ {OR_QUERY} THEN ts_rank_cd(d.tsv, {OR_QUERY}, 1)::real END"
        );
        let filter = "($3::jsonb IS NULL OR d.metadata @> $3)";
        // $1 collection, $2 query vector (NULL in full-text mode), $3 filter, $4 limit,
        // $5 candidates per arm, $6 the text. The dimension is an integer we stored.
        let sql = match query.mode {
            SearchMode::Vector => format!(
                "SELECT d.id, d.text, d.metadata, {similarity}::float8, {similarity}, {text_rank}
                   FROM vector_documents d
                  WHERE d.collection_id = $1 AND d.dims = {dims} AND {filter} AND $5 > 0
                  ORDER BY d.embedding::vector({dims}) <=> $2::vector({dims})
                  LIMIT $4"
            ),
            SearchMode::FullText => format!(
                "SELECT d.id, d.text, d.metadata, ts_rank_cd(d.tsv, {OR_QUERY}, 1)::float8,
                        NULL::real, ts_rank_cd(d.tsv, {OR_QUERY}, 1)::real
                   FROM vector_documents d
                  WHERE d.collection_id = $1 AND d.tsv @@ {OR_QUERY} AND {filter}
                        AND $2::vector IS NULL AND $5 > 0
                  ORDER BY 4 DESC, d.id
                  LIMIT $4"
            ),
            SearchMode::Hybrid => format!(
                "WITH query_words AS (
                     SELECT coalesce(array_agg(DISTINCT lexeme), '{{}}') AS lexemes
                       FROM unnest(to_tsvector('english', $Q))
                 ), by_vector AS (
                     SELECT id, row_number() OVER (ORDER BY distance, id) AS rank
                       FROM (SELECT d.id, d.embedding::vector({dims}) <=> $2::vector({dims}) AS distance
                               FROM vector_documents d
                              WHERE d.collection_id = $1 AND d.dims = {dims} AND {filter}
                              ORDER BY d.embedding::vector({dims}) <=> $2::vector({dims})
                              LIMIT $5) nearest
                 ), text_candidates AS (
                     SELECT d.id, ts_rank_cd(d.tsv, {OR_QUERY}, 1) AS rank,
                            (SELECT count(*) FROM unnest(tsvector_to_array(d.tsv)) AS word
                              WHERE word = ANY (q.lexemes))::float8
                              / greatest(cardinality(q.lexemes), 1) AS coverage
                       FROM vector_documents d, query_words q
                      WHERE d.collection_id = $1 AND d.tsv @@ {OR_QUERY} AND {filter}
                      ORDER BY 2 DESC, d.id
                      LIMIT $5
                 ), by_text AS (
                     SELECT id, coverage,
                            row_number() OVER (ORDER BY coverage DESC, rank DESC, id) AS rank
                       FROM text_candidates
                 ), fused AS (
                     SELECT id, coalesce(1.0 / ({RRF_K} + v.rank), 0)
                              + coalesce(t.coverage / ({RRF_K} + t.rank), 0) AS score
                       FROM by_vector v FULL JOIN by_text t USING (id)
                 )
                 SELECT d.id, d.text, d.metadata, f.score::float8, {similarity}, {text_rank}
                   FROM fused f JOIN vector_documents d ON d.collection_id = $1 AND d.id = f.id
                  ORDER BY f.score DESC, d.id
                  LIMIT $4"
            ),
        }
        .replace("$Q", "$6");
        let mut tx = self.pool.begin().await?;
        // Keep scanning the HNSW graph until enough rows pass the filter (pgvector's
        // iterative scan), looking at least `candidates` per layer.
        sqlx::query(
            "SELECT set_config('hnsw.iterative_scan', 'strict_order', true),
                    set_config('hnsw.ef_search', $1, true)",
        )
        .bind(candidates.to_string())
        .execute(&mut *tx)
        .await?;
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(collection.id)
            .bind(vector.map(pgvector::Vector::from))
            .bind(query.filter)
            .bind(i64::from(query.k))
            .bind(i64::from(candidates))
            .bind(&query.text)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, text, metadata, score, similarity, text_rank)| TextMatch {
                    id,
                    score: score as f32,
                    similarity,
                    text_rank,
                    text,
                    metadata,
                },
            )
            .collect())
    }
}
