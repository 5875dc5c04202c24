//! The knowledge base through the vector capability: the shared `knowledge-base`
//! collection the host's indexer writes (one document per chunk of a live revision).
//! Answers and replies follow the host's pipeline step by step (host/src/support/kb/
//! search.rs `answer`, enrichment.rs `suggested_reply`) with the same
//! `agenthost-support` functions, so the REST API and Cassie answer alike.

use agenthost_sdk::Error;
use agenthost_sdk::database::{self, Value as Param};
use agenthost_sdk::vector::{self, TextMatch, TextQuery};
use agenthost_support::answer::{self, Answer, MAX_QUESTION_CHARS, Passage, Unanswered};
use agenthost_support::tickets::{searched_text, ticket_text};
use agenthost_support::triage;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::model;
use crate::tickets::{self, TicketRef};

/// The shared collection of live article chunks.
pub const COLLECTION: &str = "knowledge-base";

/// One result: the chunk as a passage, with the search's scores.
fn passage(hit: &TextMatch) -> Passage {
    Passage::from_chunk(
        &hit.id,
        hit.text.as_deref(),
        &hit.metadata,
        hit.similarity,
        hit.text_rank.is_some(),
    )
}

/// Hybrid search of the knowledge base; nothing published yet is no result.
fn hits(query: &str, k: u32) -> Result<Vec<TextMatch>, Error> {
    match vector::search_text(COLLECTION, &TextQuery::hybrid(query, k)) {
        Ok(hits) => Ok(hits),
        // The collection appears with the first published article.
        Err(Error::NotFound(_)) => Ok(Vec::new()),
        Err(Error::Denied(message)) => Err(Error::Denied(format!(
            "Cassie may not read the knowledge base ({message}); an admin grants vector.shared [\"knowledge-base\"]"
        ))),
        Err(other) => Err(other),
    }
}

fn passages(query: &str, k: u32) -> Result<Vec<Passage>, Error> {
    Ok(hits(query, k)?.iter().map(passage).collect())
}

#[derive(Debug, Deserialize)]
pub struct SearchInput {
    query: String,
    #[serde(default)]
    k: Option<u32>,
}

pub fn search(input: SearchInput) -> Result<Value, Error> {
    let query = input.query.trim();
    if query.is_empty() {
        return Err(Error::invalid("query is empty; give what to look for"));
    }
    let k = input.k.unwrap_or(5);
    if !(1..=10).contains(&k) {
        return Err(Error::invalid("k must be 1 to 10"));
    }
    let results: Vec<Value> = hits(query, k)?
        .iter()
        .map(|hit| {
            let mut result = json!(passage(hit));
            result["score"] = json!(hit.score);
            result
        })
        .collect();
    Ok(json!({ "results": results }))
}

#[derive(Debug, Deserialize)]
pub struct Question {
    question: String,
}

/// The host's `answer`: search, select, then the model or a quote; an unanswered
/// question becomes a knowledge gap.
pub fn answer_question(input: Question) -> Result<Answer, Error> {
    let question = input.question.trim();
    if question.is_empty() || question.chars().count() > MAX_QUESTION_CHARS {
        return Err(Error::invalid(format!(
            "question must be 1 to {MAX_QUESTION_CHARS} characters"
        )));
    }
    let all = passages(question, answer::CANDIDATES)?;
    let best = all.iter().map(|p| p.similarity).reduce(f32::max);
    let chosen = answer::select(question, &all, answer::CONTEXT_TOKENS);
    let result = if chosen.is_empty() {
        // No model is asked when nothing is relevant.
        answer::unanswered(Unanswered::NoMatch, answer::Mode::Extractive, best)
    } else {
        let (system, user) = answer::prompt(answer::ANSWER_TASK, question, &chosen);
        match model::chat_text(&system, &user) {
            Some(reply) => answer::from_llm(&reply, &chosen),
            None => answer::extractive(&chosen),
        }
    };
    if let Some(reason) = result.reason {
        record_gap(question, reason, best)?;
    }
    Ok(result)
}

fn record_gap(question: &str, reason: Unanswered, best: Option<f32>) -> Result<(), Error> {
    database::execute(
        "INSERT INTO data.kb_gaps (question, reason, best_score, source)
         VALUES ($1, $2, $3::real, 'cassie')",
        &[
            question.into(),
            reason.as_str().into(),
            best.map(f64::from).into(),
        ],
    )?;
    Ok(())
}

#[derive(Debug, Deserialize)]
pub struct ReplyInput {
    ticket: TicketRef,
}

/// The host's `suggested_reply`: the model's cited reply from the related passages,
/// else a template pointing at them.
pub fn suggest_reply(input: ReplyInput) -> Result<Value, Error> {
    let (id, number) = tickets::resolve(&input.ticket)?;
    let rows = database::query(
        "SELECT subject, description, requester_name FROM data.tickets WHERE id = $1::uuid",
        &[Param::Uuid(id)],
    )?;
    let field = |name: &str| {
        rows.get(0, name)
            .and_then(Param::as_str)
            .map(str::to_string)
    };
    let subject = field("subject").unwrap_or_default();
    let description = field("description").unwrap_or_default();
    let text = searched_text(&ticket_text(&subject, &description));
    let chosen = answer::select(
        &text,
        &passages(&text, triage::REPLY_CANDIDATES)?,
        answer::CONTEXT_TOKENS,
    );
    if !chosen.is_empty() {
        let (system, user) = answer::prompt(answer::REPLY_TASK, &text, &chosen);
        if let Some(reply) = model::chat_text(&system, &user) {
            let answer = answer::from_llm(&reply, &chosen);
            if answer.answered {
                return Ok(json!({
                    "ticket_number": number,
                    "text": answer.answer,
                    "citations": answer.citations,
                    "method": "llm",
                    "confidence": triage::REPLY_CONFIDENCE_LLM,
                }));
            }
        }
    }
    let (reply, citations) = triage::extractive_reply(field("requester_name").as_deref(), &chosen);
    Ok(json!({
        "ticket_number": number,
        "text": reply,
        "confidence": triage::extractive_reply_confidence(&citations),
        "citations": citations,
        "method": "extractive",
    }))
}
