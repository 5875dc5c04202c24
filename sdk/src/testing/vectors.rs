//! The TestHost's in-memory vector store. Text is embedded by the host's embedder
//! (by default a bag of words hashed into 256 dimensions: it matches shared words, not
//! meaning, which is enough to unit-test plugin logic).

use std::collections::BTreeMap;

use crate::Error;
use crate::vector::{Document, Match, Query};

/// Collections by name: documents by id, each with its vector.
pub(super) type Collections = BTreeMap<String, BTreeMap<String, (Document, Vec<f32>)>>;

/// The default embedder: hashed word counts, normalised.
pub(super) fn bag_of_words(text: &str) -> Vec<f32> {
    let mut vector = vec![0.0f32; 256];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        // FNV-1a: stable across runs and platforms.
        let hash = word
            .to_lowercase()
            .bytes()
            .fold(0xcbf29ce484222325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
            });
        vector[(hash % 256) as usize] += 1.0;
    }
    normalize(vector)
}

fn normalize(vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        return vector;
    }
    vector.into_iter().map(|x| x / norm).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norms =
        a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norms == 0.0 { 0.0 } else { dot / norms }
}

/// Whether `metadata` contains every key/value of `filter` (like PostgreSQL's `@>` on
/// objects of scalars).
fn contains(metadata: &serde_json::Value, filter: &serde_json::Value) -> bool {
    match (metadata, filter) {
        (serde_json::Value::Object(have), serde_json::Value::Object(want)) => want
            .iter()
            .all(|(key, value)| have.get(key).is_some_and(|v| contains(v, value))),
        (have, want) => have == want,
    }
}

pub(super) fn upsert(
    collections: &mut Collections,
    embed: &dyn Fn(&str) -> Vec<f32>,
    collection: &str,
    documents: &[Document],
) -> Result<u32, Error> {
    let stored = collections.entry(collection.to_string()).or_default();
    for document in documents {
        let vector = match (&document.vector, &document.text) {
            (Some(vector), _) => vector.clone(),
            (None, Some(text)) => embed(text),
            (None, None) => {
                return Err(Error::Invalid(format!(
                    "document {:?} needs a text or a vector",
                    document.id
                )));
            }
        };
        stored.insert(document.id.clone(), (document.clone(), vector));
    }
    Ok(documents.len() as u32)
}

pub(super) fn search(
    collections: &Collections,
    embed: &dyn Fn(&str) -> Vec<f32>,
    collection: &str,
    query: &Query,
) -> Result<Vec<Match>, Error> {
    if !(1..=100).contains(&query.k) {
        return Err(Error::Invalid("k must be between 1 and 100".into()));
    }
    let stored = collections
        .get(collection)
        .ok_or_else(|| Error::NotFound(format!("no collection named {collection:?}")))?;
    let target = match (&query.vector, &query.text) {
        (Some(vector), None) => vector.clone(),
        (None, Some(text)) => embed(text),
        _ => {
            return Err(Error::Invalid(
                "a query needs exactly one of text or vector".into(),
            ));
        }
    };
    let mut matches: Vec<Match> = stored
        .values()
        .filter(|(document, _)| {
            query
                .filter
                .as_ref()
                .is_none_or(|filter| contains(&document.metadata, filter))
        })
        .map(|(document, vector)| Match {
            id: document.id.clone(),
            score: cosine(vector, &target),
            text: document.text.clone(),
            metadata: document.metadata.clone(),
        })
        .filter(|m| query.min_score.is_none_or(|min| m.score >= min))
        .collect();
    matches.sort_by(|a, b| b.score.total_cmp(&a.score));
    matches.truncate(query.k as usize);
    Ok(matches)
}

pub(super) fn delete(collections: &mut Collections, collection: &str, ids: &[String]) -> u32 {
    let Some(stored) = collections.get_mut(collection) else {
        return 0;
    };
    ids.iter()
        .filter(|id| stored.remove(id.as_str()).is_some())
        .count() as u32
}
