//! The TestHost's in-memory vector store. Text is embedded by the host's embedder
//! (by default a bag of words hashed into 256 dimensions: it matches shared words, not
//! meaning, which is enough to unit-test plugin logic).

use std::collections::BTreeMap;

use crate::Error;
use crate::vector::{Document, Match, Query, SearchMode, TextMatch, TextQuery};

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

/// The in-memory stand-in for the host's text search: vector is cosine, full text
/// counts the query's distinct words found in the text (the host uses PostgreSQL's
/// stemmed full-text rank), hybrid fuses both lists by reciprocal rank like the host.
pub(super) fn search_text(
    collections: &Collections,
    embed: &dyn Fn(&str) -> Vec<f32>,
    collection: &str,
    query: &TextQuery,
) -> Result<Vec<TextMatch>, Error> {
    if !(1..=100).contains(&query.k) {
        return Err(Error::Invalid("k must be between 1 and 100".into()));
    }
    let stored = collections
        .get(collection)
        .ok_or_else(|| Error::NotFound(format!("no collection named {collection:?}")))?;
    let target = embed(&query.text);
    let words = |text: &str| -> std::collections::BTreeSet<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() > 1)
            .map(str::to_lowercase)
            .collect()
    };
    let wanted = words(&query.text);
    let candidates: Vec<(&Document, f32, Option<f32>)> = stored
        .values()
        .filter(|(document, _)| {
            query
                .filter
                .as_ref()
                .is_none_or(|filter| contains(&document.metadata, filter))
        })
        .map(|(document, vector)| {
            let found = words(document.text.as_deref().unwrap_or(""))
                .intersection(&wanted)
                .count();
            let rank = (found > 0).then_some(found as f32);
            (document, cosine(vector, &target), rank)
        })
        .collect();
    let mut by_vector: Vec<usize> = (0..candidates.len()).collect();
    by_vector.sort_by(|a, b| candidates[*b].1.total_cmp(&candidates[*a].1));
    let mut by_text: Vec<usize> = (0..candidates.len())
        .filter(|i| candidates[*i].2.is_some())
        .collect();
    by_text.sort_by(|a, b| {
        let rank = |i: usize| candidates[i].2.unwrap_or(0.0);
        rank(*b).total_cmp(&rank(*a))
    });
    let mut scores: BTreeMap<usize, f32> = BTreeMap::new();
    match query.mode {
        SearchMode::Vector => {
            for i in &by_vector {
                scores.insert(*i, candidates[*i].1);
            }
        }
        SearchMode::FullText => {
            for i in &by_text {
                scores.insert(*i, candidates[*i].2.unwrap_or(0.0));
            }
        }
        SearchMode::Hybrid => {
            for list in [
                &by_vector[..by_vector.len().min(40)],
                &by_text[..by_text.len().min(40)],
            ] {
                for (rank, i) in list.iter().enumerate() {
                    *scores.entry(*i).or_default() += 1.0 / (60.0 + rank as f32 + 1.0);
                }
            }
        }
    }
    let mut matches: Vec<TextMatch> = scores
        .into_iter()
        .map(|(i, score)| {
            let (document, similarity, text_rank) = candidates[i];
            TextMatch {
                id: document.id.clone(),
                score,
                similarity: (query.mode != SearchMode::FullText).then_some(similarity),
                text_rank,
                text: document.text.clone(),
                metadata: document.metadata.clone(),
            }
        })
        .collect();
    matches.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
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
