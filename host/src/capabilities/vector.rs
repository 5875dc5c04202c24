//! `agenthost:plugin/vector`: the plugin's own collections in the calling workspace,
//! plus the shared ones its grant names.

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use crate::llm::UsageKey;
use crate::registry::manifest::VectorCapability;
use crate::runtime::bindings::Error;
use crate::runtime::bindings::agenthost::plugin::vector::{
    self as wit, Document, Match, Query, SearchMode, TextMatch, TextQuery,
};
use crate::vector::{self, CollectionKey, VectorError, VectorStore};

/// The namespace of collections shared between plugins by grant.
pub const SHARED_NAMESPACE: &str = "shared";

#[derive(Debug, Clone, Default)]
pub struct VectorCtx {
    pub plugin: String,
    pub workspace: Option<uuid::Uuid>,
    pub grant: Option<VectorCapability>,
    pub store: Option<Arc<VectorStore>>,
}

pub trait VectorView {
    fn vector(&mut self) -> &mut VectorCtx;
}

pub fn add_to_linker<T: VectorView + Send + 'static>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    wit::add_to_linker::<T, HasSelf<VectorCtx>>(linker, |state| state.vector())?;
    Ok(())
}

/// Shared collections the host writes and plugins may only search: the knowledge
/// base's chunks are written when an article is published, never by a plugin (a
/// plugin could otherwise plant text that answers cite as an article).
pub const HOST_WRITTEN: &[&str] = &["knowledge-base"];

/// Collection names: what a URL path segment or a table suffix could safely hold.
pub fn valid_collection_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl VectorCtx {
    /// The store and the collection's full key, once the call is allowed.
    fn admit(&self, collection: &str) -> Result<(&VectorStore, CollectionKey), Error> {
        let grant = self.grant.as_ref().ok_or_else(|| {
            Error::Denied("the vector capability is not granted to this plugin version".into())
        })?;
        if !valid_collection_name(collection) {
            return Err(Error::Invalid(format!(
                "collection name {collection:?} must be 1-63 lowercase letters, digits, '_' or '-'"
            )));
        }
        let workspace = self
            .workspace
            .ok_or_else(|| Error::Internal("the call has no workspace".into()))?;
        let store = self
            .store
            .as_deref()
            .ok_or_else(|| Error::Unavailable("no vector store".into()))?;
        let namespace = if grant.shared.iter().any(|shared| shared == collection) {
            SHARED_NAMESPACE.to_string()
        } else {
            self.plugin.clone()
        };
        Ok((
            store,
            CollectionKey {
                workspace,
                namespace,
                name: collection.to_string(),
            },
        ))
    }

    /// [`Self::admit`] for a call that changes the collection.
    fn admit_write(&self, collection: &str) -> Result<(&VectorStore, CollectionKey), Error> {
        let admitted = self.admit(collection)?;
        if admitted.1.namespace == SHARED_NAMESPACE && HOST_WRITTEN.contains(&collection) {
            return Err(Error::Denied(format!(
                "collection {collection:?} is written by the host (publish articles through /api/kb); plugins may only search it"
            )));
        }
        Ok(admitted)
    }

    fn usage(&self) -> UsageKey {
        UsageKey {
            workspace: self.workspace,
            plugin: Some(self.plugin.clone()),
            agent: None,
        }
    }
}

fn json_object(text: &str, what: &str) -> Result<serde_json::Value, Error> {
    let value: serde_json::Value = serde_json::from_str(if text.is_empty() { "{}" } else { text })
        .map_err(|e| Error::Invalid(format!("{what} is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(Error::Invalid(format!("{what} must be a JSON object")));
    }
    Ok(value)
}

fn to_error(error: VectorError) -> Error {
    match error {
        VectorError::Invalid(m) => Error::Invalid(m),
        VectorError::NotFound(m) => Error::NotFound(m),
        VectorError::Unavailable(m) => Error::Unavailable(m),
    }
}

impl wit::Host for VectorCtx {
    async fn upsert(&mut self, collection: String, documents: Vec<Document>) -> Result<u32, Error> {
        let (store, key) = self.admit_write(&collection)?;
        let documents = documents
            .into_iter()
            .map(|d| {
                Ok(vector::Document {
                    metadata: json_object(&d.metadata, &format!("metadata of {:?}", d.id))?,
                    id: d.id,
                    text: d.text,
                    vector: d.vector,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        store
            .upsert(&self.usage(), &key, documents)
            .await
            .map_err(to_error)
    }

    async fn search(&mut self, collection: String, query: Query) -> Result<Vec<Match>, Error> {
        let (store, key) = self.admit(&collection)?;
        let filter = match &query.filter {
            Some(filter) => Some(json_object(filter, "filter")?),
            None => None,
        };
        let matches = store
            .search(
                &self.usage(),
                &key,
                vector::Query {
                    text: query.text,
                    vector: query.vector,
                    k: query.k,
                    filter,
                    min_score: query.min_score,
                },
            )
            .await
            .map_err(to_error)?;
        Ok(matches
            .into_iter()
            .map(|m| Match {
                id: m.id,
                score: m.score,
                text: m.text,
                metadata: m.metadata.to_string(),
            })
            .collect())
    }

    async fn search_text(
        &mut self,
        collection: String,
        query: TextQuery,
    ) -> Result<Vec<TextMatch>, Error> {
        let (store, key) = self.admit(&collection)?;
        let filter = match &query.filter {
            Some(filter) => Some(json_object(filter, "filter")?),
            None => None,
        };
        let mode = match query.mode {
            SearchMode::Vector => vector::SearchMode::Vector,
            SearchMode::FullText => vector::SearchMode::FullText,
            SearchMode::Hybrid => vector::SearchMode::Hybrid,
        };
        let matches = store
            .search_text(
                &self.usage(),
                &key,
                vector::TextQuery {
                    text: query.text,
                    k: query.k,
                    filter,
                    mode,
                },
            )
            .await
            .map_err(to_error)?;
        Ok(matches
            .into_iter()
            .map(|m| TextMatch {
                id: m.id,
                score: m.score,
                similarity: m.similarity,
                text_rank: m.text_rank,
                text: m.text,
                metadata: m.metadata.to_string(),
            })
            .collect())
    }

    async fn delete(&mut self, collection: String, ids: Vec<String>) -> Result<u32, Error> {
        let (store, key) = self.admit_write(&collection)?;
        store.delete(&key, &ids).await.map_err(to_error)
    }

    async fn drop_collection(&mut self, collection: String) -> Result<bool, Error> {
        let (store, key) = self.admit_write(&collection)?;
        store.drop_collection(&key).await.map_err(to_error)
    }
}
