//! Sentiment in the text's own language: VADER for English (and for a text whose
//! language can't be told), anchor sentences with the embedding model for other
//! languages when the model is multilingual (agenthost_support::sentiment::anchors),
//! each combined with the LLM's score when one is given.

use agenthost_support::language;
use agenthost_support::sentiment::{self, Sentiment, anchors};
use uuid::Uuid;

use crate::embeddings::{LocalModel, Role};
use crate::llm::UsageKey;
use crate::vector::{VectorError, VectorStore};

pub async fn analyze(
    vectors: &VectorStore,
    workspace: Uuid,
    text: &str,
    llm: Option<f64>,
) -> Sentiment {
    let Some(code) = language::detect(text).filter(|code| *code != "en") else {
        return sentiment::analyze(text, llm);
    };
    // MiniLM knows English only: its similarities to the anchors say nothing.
    if vectors.model() == LocalModel::MiniLm.name() {
        return sentiment::analyze(text, llm);
    }
    match by_anchors(vectors, workspace, text).await {
        Ok(score) => sentiment::from_anchors(text, code, score, llm),
        Err(error) => {
            tracing::warn!(%error, "sentiment: embedding failed; using the English lexicon");
            sentiment::analyze(text, llm)
        }
    }
}

/// The anchor score of `text`. The anchors' embeddings come from the embedding cache
/// after the first call, so a call embeds one text.
async fn by_anchors(
    vectors: &VectorStore,
    workspace: Uuid,
    text: &str,
) -> Result<f64, VectorError> {
    let usage = UsageKey {
        workspace: Some(workspace),
        plugin: None,
        agent: None,
    };
    // Texts compared with each other are all queries to e5 (its model card).
    let mut texts = vec![text.to_string()];
    texts.extend(anchors::POSITIVE.iter().map(|s| s.to_string()));
    texts.extend(anchors::NEGATIVE.iter().map(|s| s.to_string()));
    let vectors = vectors.embed_texts(&usage, Role::Query, &texts).await?;
    let (text, rest) = vectors
        .split_first()
        .ok_or_else(|| VectorError::Unavailable("no embedding came back".into()))?;
    let (positive, negative) = rest.split_at(anchors::POSITIVE.len().min(rest.len()));
    Ok(anchors::score(text, positive, negative))
}
