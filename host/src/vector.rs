//! Vector collections in PostgreSQL + pgvector: upsert, HNSW (cosine) search with a
//! metadata filter and a minimum score, delete. Used by the vector capability; every
//! call names the workspace and namespace, so nothing here can cross tenants.

mod language;
mod query_words;
mod replace;
mod text_search;

use std::sync::Arc;

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::embeddings::{EmbedError, Embeddings, Role};
use crate::llm::UsageKey;

pub use text_search::{MAX_TERMS, SearchMode, TextMatch, TextQuery};

pub const MAX_DOCUMENTS_PER_UPSERT: usize = 256;
pub const MAX_K: u32 = 100;
const MAX_ID_LENGTH: usize = 256;
const MAX_TEXT_BYTES: usize = 64 << 10;
const MAX_METADATA_BYTES: usize = 16 << 10;
/// Writes documents (`$1` collection, `$2` dimension, then arrays of ids, texts,
/// metadata, vectors and languages): new ones are inserted, existing ones replaced.
const INSERT: &str =
    "INSERT INTO vector_documents (collection_id, id, text, metadata, dims, embedding, language)
     SELECT $1, id, text, metadata, $2, embedding, language
       FROM unnest($3::text[], $4::text[], $5::jsonb[], $6::vector[], $7::text[])
         AS input(id, text, metadata, embedding, language)
     ON CONFLICT (collection_id, id) DO UPDATE
       SET text = excluded.text, metadata = excluded.metadata, embedding = excluded.embedding,
           language = excluded.language, updated_at = now()";
/// The model name recorded for a collection filled with caller-supplied vectors.
const EXTERNAL_MODEL: &str = "external";

#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unavailable(String),
}

/// The database's text stays in the log: this message reaches HTTP clients and guests.
impl From<sqlx::Error> for VectorError {
    fn from(error: sqlx::Error) -> Self {
        VectorError::Unavailable(crate::error::logged("the vector store failed", &error))
    }
}

impl From<EmbedError> for VectorError {
    fn from(error: EmbedError) -> Self {
        match error {
            EmbedError::Invalid(m) => VectorError::Invalid(m),
            EmbedError::Unavailable(m) => VectorError::Unavailable(m),
        }
    }
}

/// Which collection: the workspace, the namespace (a plugin's name, or `shared`) and
/// the collection's name.
#[derive(Debug, Clone)]
pub struct CollectionKey {
    pub workspace: Uuid,
    pub namespace: String,
    pub name: String,
}

#[derive(Debug, Clone, Default)]
pub struct Document {
    pub id: String,
    pub text: Option<String>,
    pub vector: Option<Vec<f32>>,
    pub metadata: Value,
}

#[derive(Debug, Clone, Default)]
pub struct Query {
    pub text: Option<String>,
    pub vector: Option<Vec<f32>>,
    pub k: u32,
    pub filter: Option<Value>,
    pub min_score: Option<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub id: String,
    pub score: f32,
    pub text: Option<String>,
    pub metadata: Value,
}

struct Collection {
    id: i64,
    model: String,
    dims: usize,
}

#[derive(Debug)]
pub struct VectorStore {
    pool: PgPool,
    embeddings: Arc<Embeddings>,
}

impl VectorStore {
    pub fn new(pool: PgPool, embeddings: Arc<Embeddings>) -> Self {
        VectorStore { pool, embeddings }
    }

    /// Counts tokens with the local model's tokenizer (an estimate for a remote model),
    /// so chunks fit the model that embeds them.
    pub fn token_counter(&self) -> crate::embeddings::tokens::TokenCounter {
        match self.embeddings.local() {
            Some((_, dir)) => crate::embeddings::tokens::TokenCounter::for_model_dir(dir),
            None => crate::embeddings::tokens::TokenCounter::estimate(),
        }
    }

    /// The name of the model that embeds texts (collections record it).
    pub fn model(&self) -> &str {
        self.embeddings.model()
    }

    pub async fn upsert(
        &self,
        usage: &UsageKey,
        key: &CollectionKey,
        documents: Vec<Document>,
    ) -> Result<u32, VectorError> {
        validate_documents(&documents)?;
        if documents.is_empty() {
            return Ok(0);
        }
        // Embed the texts of documents that came without a vector.
        let to_embed: Vec<String> = documents
            .iter()
            .filter(|d| d.vector.is_none())
            .filter_map(|d| d.text.clone())
            .collect();
        let mut embedded = if to_embed.is_empty() {
            Vec::new()
        } else {
            self.embeddings
                .embed(usage, Role::Passage, &to_embed)
                .await?
        }
        .into_iter();
        let model = if to_embed.is_empty() {
            EXTERNAL_MODEL
        } else {
            self.embeddings.model()
        };
        let vectors: Vec<Vec<f32>> = documents
            .iter()
            .map(|d| {
                d.vector
                    .clone()
                    .or_else(|| embedded.next())
                    .unwrap_or_default()
            })
            .collect();
        let dims = vectors[0].len();
        if vectors.iter().any(|v| v.len() != dims) {
            return Err(VectorError::Invalid(
                "all vectors of one upsert must have the same dimension".into(),
            ));
        }
        let collection = self.collection_for_write(key, model, dims).await?;
        if collection.dims != dims {
            return Err(VectorError::Invalid(format!(
                "collection {:?} holds {}-dimensional vectors ({}); got {dims}",
                key.name, collection.dims, collection.model
            )));
        }
        if !to_embed.is_empty() && collection.model != self.embeddings.model() {
            return Err(VectorError::Invalid(format!(
                "collection {:?} was filled with model {}, but the host now embeds with {}; drop and rebuild it",
                key.name,
                collection.model,
                self.embeddings.model()
            )));
        }
        let ids: Vec<&str> = documents.iter().map(|d| d.id.as_str()).collect();
        let texts: Vec<Option<&str>> = documents.iter().map(|d| d.text.as_deref()).collect();
        let metadata: Vec<sqlx::types::Json<&Value>> = documents
            .iter()
            .map(|d| sqlx::types::Json(&d.metadata))
            .collect();
        let embeddings: Vec<pgvector::Vector> =
            vectors.into_iter().map(pgvector::Vector::from).collect();
        let languages = language::languages(&documents);
        let stored = sqlx::query(INSERT)
            .bind(collection.id)
            .bind(dims as i32)
            .bind(&ids)
            .bind(&texts)
            .bind(&metadata)
            .bind(&embeddings)
            .bind(&languages)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(stored as u32)
    }

    pub async fn search(
        &self,
        usage: &UsageKey,
        key: &CollectionKey,
        query: Query,
    ) -> Result<Vec<Match>, VectorError> {
        if !(1..=MAX_K).contains(&query.k) {
            return Err(VectorError::Invalid(format!(
                "k must be between 1 and {MAX_K}"
            )));
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
        let vector = match (query.vector, query.text) {
            (Some(vector), None) => vector,
            (None, Some(text)) => self.query_vector(usage, key, &collection, text).await?,
            _ => {
                return Err(VectorError::Invalid(
                    "a query needs exactly one of text or vector".into(),
                ));
            }
        };
        if vector.len() != collection.dims {
            return Err(VectorError::Invalid(format!(
                "the query vector has {} dimensions; collection {:?} has {}",
                vector.len(),
                key.name,
                collection.dims
            )));
        }
        let mut tx = self.pool.begin().await?;
        // Keep scanning the HNSW graph until k rows pass the WHERE clause (pgvector
        // 0.8's iterative scans), and look at least k candidates per layer. Both are
        // set for this transaction only, in one round trip.
        sqlx::query(
            "SELECT set_config('hnsw.iterative_scan', 'strict_order', true),
                    set_config('hnsw.ef_search', $1, true)",
        )
        .bind(query.k.max(40).to_string())
        .execute(&mut *tx)
        .await?;
        // The dimension is part of the indexed expression, so it is spelled out (it
        // is an integer we stored, never caller text).
        let dims = collection.dims;
        // Rescaled from the model's floor, so min_score means the same for every model.
        let floor = crate::embeddings::similarity_floor(&collection.model);
        let sql = format!(
            "SELECT id, text, metadata, ((1 - (embedding::vector({dims}) <=> $2::vector({dims})) - {floor:.4}) / (1 - {floor:.4}))::real
               FROM vector_documents
              WHERE collection_id = $1 AND dims = {dims} AND ($3::jsonb IS NULL OR metadata @> $3)
              ORDER BY embedding::vector({dims}) <=> $2::vector({dims})
              LIMIT $4"
        );
        let rows: Vec<(String, Option<String>, Value, f32)> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(collection.id)
                .bind(pgvector::Vector::from(vector))
                .bind(query.filter)
                .bind(i64::from(query.k))
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        let min = query.min_score.unwrap_or(f32::MIN);
        Ok(rows
            .into_iter()
            .filter(|(.., score)| *score >= min)
            .map(|(id, text, metadata, score)| Match {
                id,
                score,
                text,
                metadata,
            })
            .collect())
    }

    /// The embedding of a query text, refused when the collection holds another model's vectors.
    async fn query_vector(
        &self,
        usage: &UsageKey,
        key: &CollectionKey,
        collection: &Collection,
        text: String,
    ) -> Result<Vec<f32>, VectorError> {
        if collection.model != self.embeddings.model() {
            return Err(VectorError::Invalid(format!(
                "collection {:?} holds {} vectors; search it by vector, or rebuild it with {}",
                key.name,
                collection.model,
                self.embeddings.model()
            )));
        }
        let mut vectors = self.embeddings.embed(usage, Role::Query, &[text]).await?;
        Ok(vectors.pop().unwrap_or_default())
    }

    pub async fn delete(&self, key: &CollectionKey, ids: &[String]) -> Result<u32, VectorError> {
        let Some(collection) = self.find(key).await? else {
            return Ok(0);
        };
        let deleted =
            sqlx::query("DELETE FROM vector_documents WHERE collection_id = $1 AND id = ANY($2)")
                .bind(collection.id)
                .bind(ids)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(deleted as u32)
    }

    pub async fn drop_collection(&self, key: &CollectionKey) -> Result<bool, VectorError> {
        let dropped = sqlx::query(
            "DELETE FROM vector_collections WHERE workspace_id = $1 AND namespace = $2 AND name = $3",
        )
        .bind(key.workspace)
        .bind(&key.namespace)
        .bind(&key.name)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(dropped > 0)
    }

    async fn find(&self, key: &CollectionKey) -> Result<Option<Collection>, VectorError> {
        let row: Option<(i64, String, i32)> = sqlx::query_as(
            "SELECT id, model, dims FROM vector_collections
              WHERE workspace_id = $1 AND namespace = $2 AND name = $3",
        )
        .bind(key.workspace)
        .bind(&key.namespace)
        .bind(&key.name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(id, model, dims)| Collection {
            id,
            model,
            dims: dims as usize,
        }))
    }

    /// The collection, created on first write with this model and dimension (and an
    /// HNSW index for the dimension if it is a new one).
    async fn collection_for_write(
        &self,
        key: &CollectionKey,
        model: &str,
        dims: usize,
    ) -> Result<Collection, VectorError> {
        if let Some(found) = self.find(key).await? {
            return Ok(found);
        }
        if !(1..=2000).contains(&dims) {
            return Err(VectorError::Invalid(format!(
                "vectors must have 1 to 2000 dimensions, not {dims}"
            )));
        }
        // CREATE INDEX locks the table against writes even when the index exists, so
        // only run it for a dimension that has none yet.
        let index = format!("vector_documents_hnsw_{dims}");
        let indexed: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(&index)
            .fetch_one(&self.pool)
            .await?;
        if !indexed {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE INDEX IF NOT EXISTS {index} ON vector_documents
                   USING hnsw ((embedding::vector({dims})) vector_cosine_ops) WHERE dims = {dims}"
            )))
            .execute(&self.pool)
            .await?;
        }
        sqlx::query(
            "INSERT INTO vector_collections (workspace_id, namespace, name, model, dims)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(key.workspace)
        .bind(&key.namespace)
        .bind(&key.name)
        .bind(model)
        .bind(dims as i32)
        .execute(&self.pool)
        .await?;
        self.find(key)
            .await?
            .ok_or_else(|| VectorError::Unavailable("the collection vanished".into()))
    }
}

fn validate_documents(documents: &[Document]) -> Result<(), VectorError> {
    let invalid = |message: String| Err(VectorError::Invalid(message));
    if documents.len() > MAX_DOCUMENTS_PER_UPSERT {
        return invalid(format!(
            "at most {MAX_DOCUMENTS_PER_UPSERT} documents per upsert, got {}",
            documents.len()
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (index, document) in documents.iter().enumerate() {
        let at = format!("document {index} ({:?})", document.id);
        if document.id.is_empty() || document.id.len() > MAX_ID_LENGTH {
            return invalid(format!("{at}: id must be 1 to {MAX_ID_LENGTH} bytes"));
        }
        if !seen.insert(document.id.as_str()) {
            return invalid(format!("{at}: the id appears twice in this upsert"));
        }
        if document.text.is_none() && document.vector.is_none() {
            return invalid(format!("{at}: needs a text or a vector"));
        }
        if document
            .text
            .as_ref()
            .is_some_and(|t| t.len() > MAX_TEXT_BYTES)
        {
            return invalid(format!(
                "{at}: text is over {MAX_TEXT_BYTES} bytes; split it"
            ));
        }
        if !document.metadata.is_object() {
            return invalid(format!("{at}: metadata must be a JSON object"));
        }
        language::check_declared(index, document)?;
        if document.metadata.to_string().len() > MAX_METADATA_BYTES {
            return invalid(format!("{at}: metadata is over {MAX_METADATA_BYTES} bytes"));
        }
        if let Some(vector) = &document.vector
            && vector.iter().any(|x| !x.is_finite())
        {
            return invalid(format!("{at}: the vector has a NaN or infinite value"));
        }
    }
    Ok(())
}
