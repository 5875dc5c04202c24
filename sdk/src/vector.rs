//! Semantic search: store documents in a collection, then find the nearest ones to a
//! text or a vector. Collections belong to the calling workspace and to your plugin
//! (unless the grant shares them). The host embeds text with its model
//! (all-MiniLM-L6-v2 by default).
//!
//! ```
//! use agenthost_sdk::{vector::{self, Document, Query}, testing::TestHost};
//! use agenthost_sdk::serde_json::json;
//! let _host = TestHost::new().install();
//! vector::upsert("faq", &[
//!     Document::text("refunds", "how do I get my money back").metadata(json!({"lang": "en"})),
//!     Document::text("password", "reset my password"),
//! ]).unwrap();
//! let matches = vector::search("faq", &Query::text("get money back", 1)).unwrap();
//! assert_eq!(matches[0].id, "refunds");
//! assert_eq!(vector::delete("faq", &["password"]).unwrap(), 1);
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Error;

/// A document to store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Unique within the collection; storing an existing id replaces it.
    pub id: String,
    /// Text for the host to embed (and return with matches).
    pub text: Option<String>,
    /// Your own embedding, used as is.
    pub vector: Option<Vec<f32>>,
    /// A JSON object stored with the document, usable in filters.
    #[serde(default = "empty_object")]
    pub metadata: Value,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

impl Document {
    /// A document the host embeds from its text.
    pub fn text(id: &str, text: &str) -> Self {
        Document {
            id: id.to_string(),
            text: Some(text.to_string()),
            vector: None,
            metadata: empty_object(),
        }
    }

    /// A document with a precomputed vector.
    pub fn vector(id: &str, vector: Vec<f32>) -> Self {
        Document {
            id: id.to_string(),
            text: None,
            vector: Some(vector),
            metadata: empty_object(),
        }
    }

    /// Attach metadata (a JSON object).
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }
}

/// What to search for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Query {
    /// Text to search by (or `vector`).
    pub text: Option<String>,
    /// A vector to search by (or `text`).
    pub vector: Option<Vec<f32>>,
    /// At most this many matches (1..=100).
    pub k: u32,
    /// A JSON object the metadata must contain.
    pub filter: Option<Value>,
    /// Drop matches below this cosine similarity.
    pub min_score: Option<f32>,
}

impl Query {
    /// The `k` documents nearest to `text`.
    pub fn text(text: &str, k: u32) -> Self {
        Query {
            text: Some(text.to_string()),
            vector: None,
            k,
            filter: None,
            min_score: None,
        }
    }

    /// The `k` documents nearest to `vector`.
    pub fn vector(vector: Vec<f32>, k: u32) -> Self {
        Query {
            text: None,
            vector: Some(vector),
            k,
            filter: None,
            min_score: None,
        }
    }

    /// Only documents whose metadata contains `filter` (a JSON object).
    pub fn filter(mut self, filter: Value) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Only matches scoring at least `score`.
    pub fn min_score(mut self, score: f32) -> Self {
        self.min_score = Some(score);
        self
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Match {
    /// The document's id.
    pub id: String,
    /// Cosine similarity to the query (1 = same direction).
    pub score: f32,
    /// The document's text, if it had one.
    pub text: Option<String>,
    /// The document's metadata.
    pub metadata: Value,
}

/// How [`search_text`] ranks documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    /// Cosine similarity of the embedded text (like [`search`]).
    Vector,
    /// BM25 over PostgreSQL full text: exact words, codes and names; rare words count more.
    FullText,
    /// Both, fused by score: what either finds, what both find first.
    #[default]
    Hybrid,
}

/// A text search (see [`search_text`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextQuery {
    /// What the user typed; any text is safe.
    pub text: String,
    /// At most this many matches (1..=100).
    pub k: u32,
    /// A JSON object the metadata must contain.
    pub filter: Option<Value>,
    /// Vector, full text or hybrid.
    pub mode: SearchMode,
}

impl TextQuery {
    /// A hybrid search for `text`.
    pub fn hybrid(text: &str, k: u32) -> Self {
        TextQuery {
            text: text.to_string(),
            k,
            filter: None,
            mode: SearchMode::Hybrid,
        }
    }

    /// Another mode.
    pub fn mode(mut self, mode: SearchMode) -> Self {
        self.mode = mode;
        self
    }

    /// Only documents whose metadata contains `filter` (a JSON object).
    pub fn filter(mut self, filter: Value) -> Self {
        self.filter = Some(filter);
        self
    }
}

/// One text-search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextMatch {
    /// The document's id.
    pub id: String,
    /// The mode's rank score: cosine similarity, BM25, or the fused score (0 to 1).
    pub score: f32,
    /// Cosine similarity to the query (none in full-text mode).
    pub similarity: Option<f32>,
    /// BM25 score (none when no query word matched).
    pub text_rank: Option<f32>,
    /// The document's text, if it had one.
    pub text: Option<String>,
    /// The document's metadata.
    pub metadata: Value,
}

/// Search a text collection by vector, full text or both; best first.
pub fn search_text(collection: &str, query: &TextQuery) -> Result<Vec<TextMatch>, Error> {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::__private::bindings::agenthost::plugin::vector as raw;
        let raw_query = raw::TextQuery {
            text: query.text.clone(),
            k: query.k,
            filter: query.filter.as_ref().map(Value::to_string),
            mode: match query.mode {
                SearchMode::Vector => raw::SearchMode::Vector,
                SearchMode::FullText => raw::SearchMode::FullText,
                SearchMode::Hybrid => raw::SearchMode::Hybrid,
            },
        };
        let matches = raw::search_text(collection, &raw_query).map_err(Error::from)?;
        Ok(matches
            .into_iter()
            .map(|m| TextMatch {
                id: m.id,
                score: m.score,
                similarity: m.similarity,
                text_rank: m.text_rank,
                text: m.text,
                metadata: serde_json::from_str(&m.metadata).unwrap_or(Value::Null),
            })
            .collect())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::testing::vector_search_text(collection, query)
    }
}

/// Insert or replace documents (at most 256 per call); returns how many were stored.
pub fn upsert(collection: &str, documents: &[Document]) -> Result<u32, Error> {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::__private::bindings::agenthost::plugin::vector as raw;
        let documents: Vec<raw::Document> = documents
            .iter()
            .map(|d| raw::Document {
                id: d.id.clone(),
                text: d.text.clone(),
                vector: d.vector.clone(),
                metadata: d.metadata.to_string(),
            })
            .collect();
        raw::upsert(collection, &documents).map_err(Error::from)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::testing::vector_upsert(collection, documents)
    }
}

/// The nearest documents, best first.
pub fn search(collection: &str, query: &Query) -> Result<Vec<Match>, Error> {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::__private::bindings::agenthost::plugin::vector as raw;
        let raw_query = raw::Query {
            text: query.text.clone(),
            vector: query.vector.clone(),
            k: query.k,
            filter: query.filter.as_ref().map(Value::to_string),
            min_score: query.min_score,
        };
        let matches = raw::search(collection, &raw_query).map_err(Error::from)?;
        Ok(matches
            .into_iter()
            .map(|m| Match {
                id: m.id,
                score: m.score,
                text: m.text,
                metadata: serde_json::from_str(&m.metadata).unwrap_or(Value::Null),
            })
            .collect())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::testing::vector_search(collection, query)
    }
}

/// Delete documents by id; returns how many existed.
pub fn delete(collection: &str, ids: &[&str]) -> Result<u32, Error> {
    let ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    #[cfg(target_arch = "wasm32")]
    {
        use crate::__private::bindings::agenthost::plugin::vector as raw;
        raw::delete(collection, &ids).map_err(Error::from)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::testing::vector_delete(collection, &ids)
    }
}

/// Delete a whole collection; false when it did not exist.
pub fn drop_collection(collection: &str) -> Result<bool, Error> {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::__private::bindings::agenthost::plugin::vector as raw;
        raw::drop_collection(collection).map_err(Error::from)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::testing::vector_drop(collection)
    }
}
