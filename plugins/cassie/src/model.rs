//! The language model, when there is one. Every caller has an offline answer (VADER,
//! extractive answers and replies), so a model that is not granted, not configured or
//! failing makes the tool fall back instead of failing it.

use agenthost_sdk::llm::{self, ChatRequest, Message};
use agenthost_sdk::{Error, config, log};
use serde_json::Value;

/// The model asked when the `model` setting is not set; the manifest requests it.
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";

fn model() -> String {
    config::get_as::<String>("model")
        .ok()
        .flatten()
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_MODEL.to_string())
}

fn request(system: &str, user: &str) -> ChatRequest {
    let mut request =
        ChatRequest::new(&model(), vec![Message::system(system), Message::user(user)]);
    // Answers from sources should not vary between two askings.
    request.temperature = Some(0.0);
    request
}

/// The model's reply to a system and a user message; `None` (logged) when the model
/// can't be asked.
pub fn chat_text(system: &str, user: &str) -> Option<String> {
    answer_of(llm::chat(&request(system, user)).map(|r| r.content.unwrap_or_default()))
}

fn answer_of(result: Result<String, Error>) -> Option<String> {
    match result {
        Ok(text) => Some(text),
        Err(error) => {
            log::warn(&format!("the language model was not used: {error}"));
            None
        }
    }
}

const SENTIMENT_TASK: &str = "You rate the sentiment of a customer's message to a support team. \
    Reply with one JSON object and nothing else: {\"sentiment\": a number from -1 (very negative) \
    to 1 (very positive), 0 for neutral}.";

/// The model's sentiment score of `text` (-1..1), if it gave one.
pub fn sentiment_score(text: &str) -> Option<f64> {
    let mut request = request(SENTIMENT_TASK, text);
    request.json_response = true;
    request.max_tokens = Some(30);
    let reply = answer_of(llm::chat(&request).map(|r| r.content.unwrap_or_default()))?;
    let score = parse_sentiment(&reply);
    if score.is_none() {
        log::warn("the language model's sentiment reply had no score; using the lexicon only");
    }
    score
}

/// `{"sentiment": x}` somewhere in the reply (models wrap JSON in prose or fences), or
/// a bare number.
pub fn parse_sentiment(reply: &str) -> Option<f64> {
    let reply = reply.trim();
    if let Ok(number) = reply.parse::<f64>() {
        return number.is_finite().then_some(number.clamp(-1.0, 1.0));
    }
    let start = reply.find('{')?;
    let end = reply.rfind('}')?;
    let value: Value = serde_json::from_str(reply.get(start..=end)?).ok()?;
    let score = value["sentiment"].as_f64()?;
    score.is_finite().then_some(score.clamp(-1.0, 1.0))
}
