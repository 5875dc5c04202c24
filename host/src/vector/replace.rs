//! Host-side writes that must commit with other rows: the knowledge base replaces an
//! article's chunks in the same transaction that checks the article is still live, and
//! archiving deletes them in the transaction that archives it, so search never shows
//! a chunk of an article that isn't published.

use serde_json::Value;
use sqlx::{Postgres, Transaction};

use super::{CollectionKey, Document, VectorError, VectorStore, validate_documents};
use crate::embeddings::Role;
use crate::llm::UsageKey;

impl VectorStore {
    /// Embeddings of texts with the host's model (cached like every embedding): texts
    /// to be found are `Passage`s; questions, and texts compared with each other, `Query`s.
    pub async fn embed_texts(
        &self,
        usage: &UsageKey,
        role: Role,
        texts: &[String],
    ) -> Result<Vec<Vec<f32>>, VectorError> {
        Ok(self.embeddings.embed(usage, role, texts).await?)
    }

    /// The collection `key` for the host's model with vectors of `dims` dimensions,
    /// created on first use. Call it before a transaction that writes to it.
    pub async fn text_collection(
        &self,
        key: &CollectionKey,
        dims: usize,
    ) -> Result<i64, VectorError> {
        let collection = self
            .collection_for_write(key, self.embeddings.model(), dims)
            .await?;
        if collection.dims != dims || collection.model != self.embeddings.model() {
            return Err(VectorError::Invalid(format!(
                "collection {:?} holds {}-dimensional {} vectors; it must be rebuilt for {}",
                key.name,
                collection.dims,
                collection.model,
                self.embeddings.model()
            )));
        }
        Ok(collection.id)
    }

    /// In `tx`: delete the collection's documents whose metadata contains `remove`,
    /// then insert `documents` (each with text and a vector of the collection's
    /// dimension, from [`Self::embed_texts`]). `collection` is from
    /// [`Self::text_collection`].
    pub async fn replace_in(
        tx: &mut Transaction<'_, Postgres>,
        collection: i64,
        key: &CollectionKey,
        remove: &Value,
        documents: &[Document],
    ) -> Result<u32, VectorError> {
        for part in documents.chunks(super::MAX_DOCUMENTS_PER_UPSERT) {
            validate_documents(part)?;
        }
        Self::delete_in(tx, key, remove).await?;
        let Some(dims) = documents
            .first()
            .and_then(|d| d.vector.as_ref())
            .map(Vec::len)
        else {
            return Ok(0);
        };
        if documents
            .iter()
            .any(|d| d.vector.as_ref().map(Vec::len) != Some(dims))
        {
            return Err(VectorError::Invalid(
                "every document needs a vector of the same dimension".into(),
            ));
        }
        let ids: Vec<&str> = documents.iter().map(|d| d.id.as_str()).collect();
        let texts: Vec<Option<&str>> = documents.iter().map(|d| d.text.as_deref()).collect();
        let metadata: Vec<sqlx::types::Json<&Value>> = documents
            .iter()
            .map(|d| sqlx::types::Json(&d.metadata))
            .collect();
        let embeddings: Vec<pgvector::Vector> = documents
            .iter()
            .map(|d| pgvector::Vector::from(d.vector.clone().unwrap_or_default()))
            .collect();
        let languages = super::language::languages(documents);
        let stored = sqlx::query(super::INSERT)
            .bind(collection)
            .bind(dims as i32)
            .bind(&ids)
            .bind(&texts)
            .bind(&metadata)
            .bind(&embeddings)
            .bind(&languages)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        Ok(stored as u32)
    }

    /// In `tx`: delete the collection's documents whose metadata contains `filter`.
    pub async fn delete_in(
        tx: &mut Transaction<'_, Postgres>,
        key: &CollectionKey,
        filter: &Value,
    ) -> Result<u64, VectorError> {
        let deleted = sqlx::query(
            "DELETE FROM vector_documents d USING vector_collections c
              WHERE d.collection_id = c.id AND c.workspace_id = $1 AND c.namespace = $2
                AND c.name = $3 AND d.metadata @> $4",
        )
        .bind(key.workspace)
        .bind(&key.namespace)
        .bind(&key.name)
        .bind(filter)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        Ok(deleted)
    }
}
