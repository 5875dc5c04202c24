//! Text search over a collection by vector, by full text, or both fused (`hybrid`,
//! a weighted sum of the arms' normalised scores). Full text uses the generated `tsv` column (migration 0012: the
//! metadata `heading` and the text, stemmed in the document's language since
//! migration 20261207000120, whose every language a query is read in) and ranks by BM25 with the
//! collection's term statistics (migration 0020, kept by triggers as documents are
//! written): a rare word counts more than a common one, and a long document's many
//! words count less per word.
//!
//! The query is a bag of words: any of them may match (AND-ing every word of a
//! question finds nothing for most natural questions); a `-word` leaves out documents
//! holding it. Its cost is bounded whatever its size: repeated words collapse, at most
//! [`super::query_words::MAX_QUERY_WORDS`] distinct words are read and at most [`MAX_TERMS`]
//! of their lexemes are searched, the rarest in the collection (the ones that tell
//! documents apart; a lexeme no document holds can match nothing).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::query_words::QueryWords;
use super::{CollectionKey, MAX_K, VectorError, VectorStore};
use crate::llm::UsageKey;

/// Candidates each arm of a hybrid search contributes before fusion.
const CANDIDATES: u32 = 40;
/// Lexemes of a query the full-text arm searches at most (the rarest).
pub const MAX_TERMS: i32 = 32;
/// Hybrid fuses the two arms' scores, not their ranks: a candidate's cosine
/// similarity, min-max scaled over the vector arm's candidates, weighs VECTOR_WEIGHT;
/// its BM25 score over the best one's weighs TEXT_WEIGHT (0 in an arm it is not a
/// candidate of). Tuned with `bench-retrieval` on our help centre and on CLINC150, where
/// weights from 0.6 to 0.7 beat either arm alone on both; reciprocal rank fusion (k 10
/// to 60, any weights) did not beat the vector arm on CLINC150 (docs/decisions.md).
const VECTOR_WEIGHT: f64 = 0.6;
const TEXT_WEIGHT: f64 = 1.0 - VECTOR_WEIGHT;
/// The similarity range min-max scaling stretches to 0-1 at most: when the vector
/// candidates are about equally far (a code or a name the embedding can't place; a
/// median query spans 0.4), their small differences are noise and must not outweigh
/// an exact full-text match.
const MIN_SIMILARITY_RANGE: f64 = 0.3;

/// The query's terms (`$1` collection, `$Q` the words, `$X` the excluded words): their
/// lexemes, IDFs, the average document length and a tsquery matching any of them
/// (lexemes quoted for tsquery syntax); and a tsquery matching any excluded word.
const TERMS: &str = r#"terms AS (
        SELECT array_agg(lexeme) AS lexemes, array_agg(idf) AS idfs,
               max(avg_length) AS avg_length,
               string_agg('''' || replace(replace(lexeme, '\', '\\'), '''', '''''') || '''',
                          ' | ')::tsquery AS matches
          FROM vector_query_terms($1, $Q, $MAX_TERMS)
    ), excluded AS (
        SELECT string_agg('''' || replace(replace(lexeme, '\', '\\'), '''', '''''') || '''',
                          ' | ')::tsquery AS matches
          FROM vector_query_lexemes($1, $X) AS words (lexeme)
    )"#;
/// Document `d`'s BM25 score for the terms; NULL when it holds none of them.
const BM25: &str = "(SELECT vector_bm25(d.tsv, t.lexemes, t.idfs, t.avg_length) FROM terms t)";
/// Whether `d` holds a term and no excluded word (the GIN index on `tsv` finds them).
const TEXT_MATCH: &str = "d.tsv @@ (SELECT matches FROM terms)
        AND NOT coalesce(d.tsv @@ (SELECT matches FROM excluded), false)";

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
    /// Cosine similarity (vector), BM25 score (full_text) or fused score (hybrid, 0-1).
    pub score: f32,
    /// Cosine similarity to the query; None in full-text mode.
    pub similarity: Option<f32>,
    /// BM25 score; None when no query word matched the document.
    pub text_rank: Option<f32>,
    pub text: Option<String>,
    pub metadata: Value,
}

type Row = (String, Option<String>, Value, f64, Option<f32>, Option<f32>);

/// The SQL of a mode. `$1` collection, `$2` query vector (NULL in full-text mode), `$3`
/// filter, `$4` limit, `$5` candidates per arm, `$6` the words, `$7` the excluded words.
/// The dimension is an integer we stored, never caller text.
fn search_sql(mode: SearchMode, dims: usize, floor: f32) -> String {
    // Rescaled from the model's floor (crate::embeddings::calibrated); a number we
    // chose, never caller text.
    let similarity = format!(
        "((1 - (d.embedding::vector({dims}) <=> $2::vector({dims})) - {floor:.4}) / (1 - {floor:.4}))::real"
    );
    let filter = "($3::jsonb IS NULL OR d.metadata @> $3)";
    let sql = match mode {
        SearchMode::Vector => format!(
            "WITH {TERMS}
             SELECT d.id, d.text, d.metadata, {similarity}::float8, {similarity}, {BM25}::real
               FROM vector_documents d
              WHERE d.collection_id = $1 AND d.dims = {dims} AND {filter} AND $5 > 0
              ORDER BY d.embedding::vector({dims}) <=> $2::vector({dims})
              LIMIT $4"
        ),
        SearchMode::FullText => format!(
            "WITH {TERMS}
             SELECT id, text, metadata, bm25, NULL::real, bm25::real
               FROM (SELECT d.id, d.text, d.metadata, {BM25} AS bm25
                       FROM vector_documents d
                      WHERE d.collection_id = $1 AND {TEXT_MATCH} AND {filter}
                            AND $2::vector IS NULL AND $5 > 0) matched
              ORDER BY 4 DESC, 1
              LIMIT $4"
        ),
        SearchMode::Hybrid => format!(
            "WITH {TERMS}, by_vector AS (
                 SELECT id, (1 - distance - {floor:.4}) / (1 - {floor:.4}) AS similarity
                   FROM (SELECT d.id, d.embedding::vector({dims}) <=> $2::vector({dims}) AS distance
                           FROM vector_documents d
                          WHERE d.collection_id = $1 AND d.dims = {dims} AND {filter}
                          ORDER BY d.embedding::vector({dims}) <=> $2::vector({dims})
                          LIMIT $5) nearest
             ), by_text AS (
                 SELECT d.id, {BM25} AS bm25
                   FROM vector_documents d
                  WHERE d.collection_id = $1 AND {TEXT_MATCH} AND {filter}
                  ORDER BY 2 DESC, d.id
                  LIMIT $5
             ), vector_range AS (
                 SELECT min(similarity) AS low, max(similarity) AS high FROM by_vector
             ), text_best AS (
                 SELECT max(bm25) AS best FROM by_text
             ), fused AS (
                 SELECT id,
                        {VECTOR_WEIGHT:.4} * coalesce((v.similarity - r.low)
                            / greatest(r.high - r.low, {MIN_SIMILARITY_RANGE}), 0)
                        + {TEXT_WEIGHT:.4} * coalesce(t.bm25 / nullif(b.best, 0), 0) AS score
                   FROM (by_vector v FULL JOIN by_text t USING (id)), vector_range r, text_best b
             )
             SELECT d.id, d.text, d.metadata, f.score::float8, {similarity}, {BM25}::real
               FROM fused f JOIN vector_documents d ON d.collection_id = $1 AND d.id = f.id
              ORDER BY f.score DESC, d.id
              LIMIT $4"
        ),
    };
    sql.replace("$Q", "$6")
        .replace("$X", "$7")
        .replace("$MAX_TERMS", &MAX_TERMS.to_string())
}

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
        let words = QueryWords::parse(&query.text);
        let vector = match query.mode {
            SearchMode::FullText => None,
            // The embedding model reads a bounded prefix of the text anyway.
            SearchMode::Vector | SearchMode::Hybrid => Some(
                self.query_vector(usage, key, &collection, query.text.clone())
                    .await?,
            ),
        };
        let candidates = query.k.max(CANDIDATES);
        let floor = crate::embeddings::similarity_floor(&collection.model);
        let sql = search_sql(query.mode, collection.dims, floor);
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
            .bind(&words.include)
            .bind(&words.exclude)
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
