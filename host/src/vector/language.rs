//! The language a document is indexed in for full text: its metadata `language` when
//! it declares one (an ISO 639-1 code such as `de`), else the language detected from
//! its heading and text, else English (what every document was before issue 25).
//! The database builds the document's `tsv` with that language's stemmer and stop
//! words (migration 20261207000120).

use agenthost_support::language;
use serde_json::Value;

use super::{Document, VectorError};

/// Used when neither the metadata nor the text tell the language.
pub const FALLBACK: &str = "en";

/// A declared language must be a code the host knows, so a typo is a 4xx, not a
/// silently unstemmed document.
pub fn check_declared(index: usize, document: &Document) -> Result<(), VectorError> {
    match document.metadata.get("language") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(code)) if language::is_known(code) => Ok(()),
        Some(other) => Err(VectorError::Invalid(format!(
            "document {index} ({:?}): metadata.language must be an ISO 639-1 code like \"de\", not {other}",
            document.id
        ))),
    }
}

/// The language of each document.
pub fn languages(documents: &[Document]) -> Vec<String> {
    documents.iter().map(of).collect()
}

fn of(document: &Document) -> String {
    if let Some(code) = document.metadata.get("language").and_then(Value::as_str) {
        return code.to_string();
    }
    let heading = document.metadata.get("heading").and_then(Value::as_str);
    let text = match (heading, document.text.as_deref()) {
        (Some(heading), Some(text)) => format!("{heading}\n{text}"),
        (None, Some(text)) => text.to_string(),
        (Some(heading), None) => heading.to_string(),
        (None, None) => return FALLBACK.to_string(),
    };
    language::detect(&text).unwrap_or(FALLBACK).to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn document(text: &str, metadata: Value) -> Document {
        Document {
            id: "d".into(),
            text: Some(text.into()),
            vector: None,
            metadata,
        }
    }

    #[test]
    fn declared_wins_over_detected_and_short_texts_fall_back() {
        let german = "Die Rechnung wird am Monatsende per E-Mail verschickt.";
        assert_eq!(languages(&[document(german, json!({}))]), ["de"]);
        assert_eq!(
            languages(&[document(german, json!({"language": "nl"}))]),
            ["nl"]
        );
        assert_eq!(languages(&[document("ok", json!({}))]), [FALLBACK]);
    }

    #[test]
    fn an_unknown_declared_language_is_refused_at_its_field() {
        let bad = document("text", json!({"language": "german"}));
        let error = check_declared(3, &bad).unwrap_err().to_string();
        assert!(
            error.contains("document 3") && error.contains("metadata.language"),
            "{error}"
        );
        assert!(check_declared(0, &document("text", json!({"language": "de"}))).is_ok());
    }
}
