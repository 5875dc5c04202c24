//! Ticket triage without a model call: intent from embedding similarities to labelled
//! examples, a suggested priority from the words, sentiment and intent, an extractive
//! summary and reply. With an LLM the host and Cassie ask it as well and combine.

use serde::{Deserialize, Serialize};

use crate::answer::{Citation, Passage};

/// An intent tickets are classified into, with labelled examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub examples: Vec<String>,
}

/// The intents of a workspace that has defined none.
pub fn default_intents() -> Vec<Intent> {
    let intent = |name: &str, description: &str, examples: &[&str]| Intent {
        name: name.into(),
        description: description.into(),
        examples: examples.iter().map(|e| e.to_string()).collect(),
    };
    vec![
        intent(
            "billing",
            "Charges, invoices, payment methods, plans and prices",
            &[
                "I was charged twice this month",
                "my invoice shows the wrong amount",
                "how do I update my credit card",
                "why did my subscription price go up",
            ],
        ),
        intent(
            "refund",
            "Getting money back",
            &[
                "I want a refund",
                "please refund my last payment",
                "how long does a refund take",
                "can I get my money back for the unused months",
            ],
        ),
        intent(
            "cancellation",
            "Ending or downgrading a subscription",
            &[
                "how do I cancel my subscription",
                "I want to close my account",
                "downgrade to the free plan",
            ],
        ),
        intent(
            "account_access",
            "Logging in, passwords, two-factor authentication, locked accounts",
            &[
                "I can't log in to my account",
                "password reset email never arrives",
                "lost my phone with the authenticator app",
                "my account is locked",
            ],
        ),
        intent(
            "technical_issue",
            "Something is broken, slow or shows an error",
            &[
                "the app crashes when I open it",
                "I get an error when syncing",
                "the device does not connect to wifi",
                "the page is very slow and times out",
            ],
        ),
        intent(
            "how_to",
            "How to use a feature",
            &[
                "how do I invite a team member",
                "where can I export my data",
                "how to set up a webhook",
                "how do I create an API key",
            ],
        ),
        intent(
            "feature_request",
            "Asking for something the product doesn't do",
            &[
                "it would be great if you supported dark mode",
                "please add an integration with our CRM",
                "can you add more export formats",
            ],
        ),
        intent(
            "complaint",
            "Unhappy with the service or a person",
            &[
                "this is the worst support I have ever had",
                "nobody answered my ticket for a week",
                "I am very disappointed with your service",
            ],
        ),
    ]
}

/// The best intent and a confidence from the best example similarity per intent:
/// high when the best is clearly similar and ahead of the runner-up.
pub fn classify(best_per_intent: &[(String, f32)]) -> Option<(String, f64)> {
    let mut ranked: Vec<&(String, f32)> = best_per_intent.iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (name, best) = ranked.first()?;
    let runner_up = ranked.get(1).map_or(0.0, |(_, s)| *s);
    let margin = f64::from(best - runner_up);
    // Similarity 0.3 -> 0, 0.7 -> 1; a margin of 0.1 or more counts in full.
    let strength = ((f64::from(*best) - 0.3) / 0.4).clamp(0.0, 1.0);
    let separation = (margin / 0.1).clamp(0.0, 1.0);
    let confidence = (0.6 * strength + 0.4 * separation).clamp(0.05, 0.99);
    Some((name.clone(), round2(confidence)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }

    fn raised(self) -> Priority {
        match self {
            Priority::Low => Priority::Normal,
            Priority::Normal => Priority::High,
            Priority::High | Priority::Urgent => Priority::Urgent,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrioritySuggestion {
    pub priority: Priority,
    pub confidence: f64,
    /// Why, in words a person can check.
    pub reasons: Vec<String>,
}

const URGENT_WORDS: &[&str] = &[
    "outage",
    "down for everyone",
    "data loss",
    "security breach",
    "hacked",
    "production is down",
    "all users",
];
const HIGH_WORDS: &[&str] = &[
    "urgent",
    "asap",
    "immediately",
    "can't log in",
    "cannot log in",
    "locked out",
    "charged twice",
    "not working",
    "broken",
    "deadline",
];

/// A priority from the words of the ticket, its sentiment (compound -1..1) and intent.
pub fn suggest_priority(text: &str, sentiment: f64, intent: Option<&str>) -> PrioritySuggestion {
    let lower = text.to_lowercase();
    let mut reasons = Vec::new();
    let mut priority = match intent {
        Some("account_access" | "technical_issue") => Priority::Normal,
        Some("feature_request" | "how_to") => Priority::Low,
        _ => Priority::Normal,
    };
    if let Some(intent) = intent {
        reasons.push(format!("intent {intent}"));
    }
    let mut signals = 0;
    if let Some(word) = URGENT_WORDS.iter().find(|w| lower.contains(*w)) {
        priority = Priority::Urgent;
        reasons.push(format!("mentions \"{word}\""));
        signals += 2;
    } else if let Some(word) = HIGH_WORDS.iter().find(|w| lower.contains(*w)) {
        priority = priority.max(Priority::High);
        reasons.push(format!("mentions \"{word}\""));
        signals += 1;
    }
    if sentiment <= -0.6 {
        priority = priority.raised();
        reasons.push(format!("very negative sentiment ({sentiment:.2})"));
        signals += 1;
    }
    let confidence = match signals {
        0 => 0.5,
        1 => 0.7,
        _ => 0.85,
    };
    PrioritySuggestion {
        priority,
        confidence,
        reasons,
    }
}

/// A summary without an LLM: the subject and the description's first sentence.
pub fn extractive_summary(subject: &str, description: &str) -> String {
    let first = description
        .split_inclusive(['.', '!', '?', '\n'])
        .map(str::trim)
        .find(|s| !s.is_empty())
        .unwrap_or("");
    let first: String = first.chars().take(240).collect();
    if first.is_empty() {
        subject.trim().to_string()
    } else {
        format!("{}: {}", subject.trim(), first)
    }
}

/// Passages searched for a ticket's related articles and suggested reply, before
/// [`crate::answer::select`] keeps the relevant ones.
pub const REPLY_CANDIDATES: u32 = 10;
/// Confidence in a suggested reply the model wrote from the passages and cited.
pub const REPLY_CONFIDENCE_LLM: f64 = 0.7;
/// Confidence in an [`extractive_reply`] that points at articles.
pub const REPLY_CONFIDENCE_CITED: f64 = 0.5;
/// Confidence in an [`extractive_reply`] without articles (a holding message).
pub const REPLY_CONFIDENCE_UNCITED: f64 = 0.2;

/// The confidence in an [`extractive_reply`] with these citations.
pub fn extractive_reply_confidence(citations: &[Citation]) -> f64 {
    if citations.is_empty() {
        REPLY_CONFIDENCE_UNCITED
    } else {
        REPLY_CONFIDENCE_CITED
    }
}

/// Bytes of a text whose sentiment is analysed on request (the REST API's
/// `/api/sentiment` and Cassie's `analyse_sentiment`).
pub const MAX_SENTIMENT_BYTES: usize = 64 << 10;

/// A reply without an LLM: greet, point at the best articles (cited), offer help.
pub fn extractive_reply(
    requester_name: Option<&str>,
    passages: &[Passage],
) -> (String, Vec<Citation>) {
    let greeting = match requester_name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => format!("Hi {name},"),
        None => "Hi,".to_string(),
    };
    let mut articles: Vec<&Passage> = Vec::new();
    for passage in passages {
        if articles.len() < 2 && !articles.iter().any(|a| a.article_id == passage.article_id) {
            articles.push(passage);
        }
    }
    if articles.is_empty() {
        let text = format!(
            "{greeting}\n\nthanks for reaching out. We're looking into this and will get back to you shortly."
        );
        return (text, Vec::new());
    }
    let mut text = format!("{greeting}\n\nthanks for reaching out. This should help:\n");
    let mut citations = Vec::new();
    for (i, passage) in articles.iter().enumerate() {
        text.push_str(&format!(
            "\n- {} [{}]",
            passage.heading_path.join(" > "),
            i + 1
        ));
        citations.push(Citation {
            n: i + 1,
            chunk_id: passage.chunk_id.clone(),
            article_id: passage.article_id.clone(),
            slug: passage.slug.clone(),
            title: passage.title.clone(),
            revision_id: passage.revision_id.clone(),
            version: passage.version,
            heading_path: passage.heading_path.clone(),
        });
    }
    text.push_str(
        "\n\nIf that doesn't solve it, reply to this message and we'll take it from there.",
    );
    (text, citations)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clear_winner_gets_high_confidence() {
        let (name, confidence) = classify(&[
            ("billing".into(), 0.75),
            ("refund".into(), 0.5),
            ("how_to".into(), 0.2),
        ])
        .unwrap();
        assert_eq!(name, "billing");
        assert!(confidence > 0.9, "{confidence}");
        let (_, close) = classify(&[("billing".into(), 0.45), ("refund".into(), 0.44)]).unwrap();
        assert!(close < 0.4, "{close}");
        assert!(classify(&[]).is_none());
    }

    #[test]
    fn outages_are_urgent_and_anger_raises_priority() {
        let outage = suggest_priority(
            "Production is down for everyone",
            0.0,
            Some("technical_issue"),
        );
        assert_eq!(outage.priority, Priority::Urgent);
        let calm = suggest_priority("How do I export my data?", 0.2, Some("how_to"));
        assert_eq!(calm.priority, Priority::Low);
        let angry = suggest_priority("Where is my invoice", -0.8, Some("billing"));
        assert_eq!(angry.priority, Priority::High);
        assert!(angry.reasons.iter().any(|r| r.contains("negative")));
    }

    #[test]
    fn the_summary_is_subject_and_first_sentence() {
        assert_eq!(
            extractive_summary("Double charge", "I was charged twice. Please help!"),
            "Double charge: I was charged twice."
        );
        assert_eq!(extractive_summary("Only subject", "  "), "Only subject");
    }
}
