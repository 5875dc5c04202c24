//! Sentiment of a customer's message: VADER (Hutto & Gilbert, ICWSM 2014) on its own,
//! or combined with an LLM's judgement when one is at hand.
//!
//! [`score`] is our implementation of VADER with the lexicon of vaderSentiment 3.3.2
//! (MIT licence) compiled in, so it runs without files or network, also inside the
//! Cassie plugin. `tests/reference.rs` holds it to the reference implementation's
//! compound scores on the paper's ground truth.
//!
//! ```
//! use agenthost_support::sentiment::{self, Label};
//!
//! let scores = sentiment::score("The support was GREAT, thanks!!");
//! assert!(scores.compound > 0.8);
//! assert_eq!(sentiment::label(scores.compound), Label::Positive);
//! ```

use serde::Serialize;

pub mod anchors;
mod lexicon;
mod text;
mod vader;

#[cfg(test)]
mod tests;

/// VADER's scores for one text.
///
/// Not rounded (the reference rounds its output to 4 and 3 decimals for display).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Scores {
    /// The normalised sum of the words' valences, -1 (most negative) to 1.
    pub compound: f64,
    /// The share of the text that is positive; the three shares add up to 1, or all
    /// are 0 for a text without words.
    pub positive: f64,
    /// The share of the text that is negative.
    pub negative: f64,
    /// The share of the text that is neutral.
    pub neutral: f64,
}

/// The polarity of a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    Negative,
    Neutral,
    Positive,
}

/// Where a [`Sentiment`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// VADER alone.
    Lexicon,
    /// VADER combined with an LLM's score.
    Hybrid,
    /// Similarity to labelled anchor sentences with the multilingual embedding model,
    /// for a text in a language other than English ([`from_anchors`]).
    Anchors,
}

/// The sentiment of a text as the API and the plugin report it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sentiment {
    /// -1 (most negative) to 1.
    pub score: f64,
    /// [`label`] of `score`.
    pub label: Label,
    /// 0 to 1; see [`analyze`] for how it is derived.
    pub confidence: f64,
    pub method: Method,
    /// VADER's scores, always present.
    pub lexicon: Scores,
    /// The LLM's score as used (clamped to -1..1), if one was given.
    pub llm: Option<f64>,
    /// The detected language (ISO 639-1) when it is not English, which is when the
    /// host scores by anchors instead of VADER.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<&'static str>,
}

/// Scores a text with VADER.
///
/// VADER is built for sentences: it sums word valences, so a long text tends towards
/// the extremes. Score a message sentence by sentence if its parts matter.
pub fn score(text: &str) -> Scores {
    vader::polarity(text)
}

/// The polarity of a score from -1 to 1, with VADER's thresholds: at least 0.05 is
/// positive, at most -0.05 negative, anything between neutral.
pub fn label(score: f64) -> Label {
    if score >= 0.05 {
        Label::Positive
    } else if score <= -0.05 {
        Label::Negative
    } else {
        Label::Neutral
    }
}

/// The weight of the LLM's score in a hybrid score; the lexicon has the rest.
pub const LLM_WEIGHT: f64 = 0.6;

/// The sentiment of a text from VADER, combined with an LLM's score (-1..1) if given.
///
/// **Lexicon only** (`llm` is `None`, or not a number): the score is VADER's compound.
/// The confidence is the mean of its strength `|compound|` and the share of the text
/// that carries sentiment (`positive + negative`): a text without any rated word gets 0,
/// which says "no evidence", not "surely neutral".
///
/// **Hybrid**: the score is `0.4 * compound + 0.6 * llm` ([`LLM_WEIGHT`]). The LLM gets
/// the larger weight because it reads what a lexicon cannot (sarcasm, domain words,
/// negations far from their word: VADER's correlation with human ratings falls from
/// 0.87 on tweets to 0.43 on movie reviews); the lexicon keeps a deterministic anchor
/// that damps an LLM's occasional wild answer. The confidence is the agreement of the
/// two, `1 - |compound - llm| / 2` (1 when equal, 0 at opposite extremes), halved when
/// their labels differ, so two sources that disagree on the polarity never give more
/// than 0.5.
///
/// ```
/// use agenthost_support::sentiment::{Label, Method, analyze};
///
/// let s = analyze("Great, the parcel is lost again.", Some(-0.8));
/// assert_eq!(s.method, Method::Hybrid);
/// assert_eq!(s.label, Label::Negative);
/// assert!(s.confidence < 0.5);
/// ```
pub fn analyze(text: &str, llm: Option<f64>) -> Sentiment {
    let lexicon = score(text);
    let compound = lexicon.compound;
    match llm.filter(|v| !v.is_nan()).map(|v| v.clamp(-1.0, 1.0)) {
        None => Sentiment {
            score: compound,
            label: label(compound),
            confidence: ((compound.abs() + lexicon.positive + lexicon.negative) / 2.0)
                .clamp(0.0, 1.0),
            method: Method::Lexicon,
            lexicon,
            llm: None,
            language: None,
        },
        Some(llm) => {
            let score = (1.0 - LLM_WEIGHT) * compound + LLM_WEIGHT * llm;
            let agreement = 1.0 - (compound - llm).abs() / 2.0;
            let confidence = if label(compound) == label(llm) {
                agreement
            } else {
                agreement / 2.0
            };
            Sentiment {
                score,
                label: label(score),
                confidence: confidence.clamp(0.0, 1.0),
                method: Method::Hybrid,
                lexicon,
                llm: Some(llm),
                language: None,
            }
        }
    }
}

/// The sentiment of a text in `language` (not English) from its [`anchors::score`],
/// combined with an LLM's score like VADER's compound in [`analyze`]. VADER's scores
/// are still reported (an emoji or an English word in the text moves them).
///
/// ```
/// use agenthost_support::sentiment::{Label, Method, from_anchors};
///
/// let s = from_anchors("Ich bin total enttäuscht. 😡", "de", -0.7, None);
/// assert_eq!((s.label, s.method, s.language), (Label::Negative, Method::Anchors, Some("de")));
/// ```
pub fn from_anchors(text: &str, language: &'static str, score: f64, llm: Option<f64>) -> Sentiment {
    let lexicon = self::score(text);
    let score = score.clamp(-1.0, 1.0);
    let by_anchors = Sentiment {
        score,
        label: label(score),
        confidence: score.abs(),
        method: Method::Anchors,
        lexicon,
        llm: None,
        language: Some(language),
    };
    match llm.filter(|v| !v.is_nan()).map(|v| v.clamp(-1.0, 1.0)) {
        None => by_anchors,
        Some(llm) => {
            // The same weights and agreement as [`analyze`], the anchors in VADER's place.
            let combined = (1.0 - LLM_WEIGHT) * score + LLM_WEIGHT * llm;
            let agreement = 1.0 - (score - llm).abs() / 2.0;
            let confidence = if label(score) == label(llm) {
                agreement
            } else {
                agreement / 2.0
            };
            Sentiment {
                score: combined,
                label: label(combined),
                confidence: confidence.clamp(0.0, 1.0),
                method: Method::Hybrid,
                llm: Some(llm),
                ..by_anchors
            }
        }
    }
}
