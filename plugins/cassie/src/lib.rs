//! Cassie, the customer support agent. Tickets go through the database capability as
//! plain statements: the triggers of migration 0011 number them, compute the SLA,
//! judge status moves, write the history and sign every write `plugin:cassie`, and
//! migration 0012's trigger queues their enrichment. Answers come from the shared
//! `knowledge-base` collection the host's indexer fills, through the same
//! `agenthost-support` functions the host's REST API calls.

mod knowledge;
mod model;
mod tickets;

#[cfg(test)]
mod tests;

use agenthost_sdk::{CallContext, Error, ToolPlugin, ToolSpec, typed};
use agenthost_support::answer::MAX_QUESTION_CHARS;
use agenthost_support::sentiment;
use agenthost_support::tickets::{
    CHANNELS, MAX_COMMENT_CHARS, MAX_DESCRIPTION_CHARS, MAX_SUBJECT_CHARS, MAX_TAG_CHARS, MAX_TAGS,
    PRIORITIES, STATUSES,
};
use agenthost_support::triage::MAX_SENTIMENT_BYTES;
use serde::Deserialize;
use serde_json::{Value, json};

struct Cassie;

fn ticket_ref_schema() -> Value {
    json!({ "type": ["integer", "string"], "minLength": 1,
            "description": "The ticket's number (42 or \"#42\") or its id (a UUID)" })
}

fn priority_schema() -> Value {
    json!({ "type": "string", "enum": PRIORITIES })
}

fn status_schema() -> Value {
    json!({ "type": "string", "enum": STATUSES,
            "description": "Allowed moves: open <-> pending, open or pending -> solved, solved -> open or closed; closed is final" })
}

fn tags_schema() -> Value {
    json!({ "type": "array", "maxItems": MAX_TAGS,
            "items": { "type": "string", "minLength": 1, "maxLength": MAX_TAG_CHARS },
            "description": "Lower-cased and de-duplicated" })
}

fn email_schema() -> Value {
    json!({ "type": "string", "pattern": "^[^@\\s]+@[^@\\s]+$", "maxLength": 320 })
}

fn ticket_schema() -> Value {
    json!({ "type": "object", "properties": {
        "id": { "type": "string" }, "number": { "type": "integer" },
        "subject": { "type": "string" }, "description": { "type": "string" },
        "status": { "type": "string" }, "priority": { "type": "string" },
        "channel": { "type": "string" }, "requester_email": { "type": "string" },
        "requester_name": { "type": ["string", "null"] },
        "customer": { "type": ["string", "null"] },
        "assignee_email": { "type": ["string", "null"] },
        "assignee_name": { "type": ["string", "null"] },
        "tags": { "type": "array", "items": { "type": "string" } },
        "sla_due_at": { "type": ["string", "null"] },
        "created_at": { "type": "string" }, "updated_at": { "type": "string" },
        "solved_at": { "type": ["string", "null"] }, "closed_at": { "type": ["string", "null"] },
        "updated_by": { "type": ["string", "null"] },
        "last_change": { "type": ["object", "null"],
                         "description": "The history entry of the last change: actor, kind, changes, at" },
    } })
}

fn citations_schema() -> Value {
    json!({ "type": "array", "items": { "type": "object", "properties": {
        "n": { "type": "integer", "description": "The [n] marker in the text" },
        "slug": { "type": "string" }, "title": { "type": "string" },
        "article_id": { "type": "string" }, "revision_id": { "type": "string" },
        "version": { "type": "integer" },
        "heading_path": { "type": "array", "items": { "type": "string" } },
        "chunk_id": { "type": "string" },
    } } })
}

fn passage_schema() -> Value {
    json!({ "type": "object", "properties": {
        "slug": { "type": "string" }, "title": { "type": "string" },
        "heading_path": { "type": "array", "items": { "type": "string" } },
        "text": { "type": "string" },
        "similarity": { "type": "number", "description": "Cosine similarity to the query (0.35 or more is relevant)" },
        "score": { "type": "number" }, "text_match": { "type": "boolean" },
        "article_id": { "type": "string" }, "revision_id": { "type": "string" },
        "version": { "type": "integer" }, "chunk_id": { "type": "string" },
    } })
}

impl ToolPlugin for Cassie {
    fn tools() -> Vec<ToolSpec> {
        vec![
            ToolSpec::new(
                "create_ticket",
                "Open a support ticket for a customer. The ticket gets the next number, an SLA due time from its priority and is enriched in the background (sentiment, intent, related articles). Use it when the customer asks for one or a question could not be answered.",
                json!({ "type": "object", "required": ["subject", "requester_email"], "properties": {
                    "subject": { "type": "string", "minLength": 1, "maxLength": MAX_SUBJECT_CHARS, "description": "One line saying what the problem is" },
                    "description": { "type": "string", "maxLength": MAX_DESCRIPTION_CHARS, "description": "The details, in the customer's words where possible" },
                    "priority": { "type": "string", "enum": PRIORITIES, "default": "normal" },
                    "requester_email": email_schema(),
                    "requester_name": { "type": "string", "maxLength": 300 },
                    "tags": tags_schema(),
                    "channel": { "type": "string", "enum": CHANNELS, "default": "chat" },
                }, "additionalProperties": false }),
                json!({ "type": "object", "properties": {
                    "id": { "type": "string" }, "number": { "type": "integer" },
                    "status": { "type": "string" }, "priority": { "type": "string" },
                    "sla_due_at": { "type": "string", "description": "When it should be solved (RFC 3339)" },
                } }),
            ),
            ToolSpec::new(
                "update_ticket",
                "Change a ticket's status, priority, tags or assignee; returns the ticket. Status moves are checked: open <-> pending, open or pending -> solved, solved -> open or closed; closed is final.",
                json!({ "type": "object", "required": ["ticket"], "properties": {
                    "ticket": ticket_ref_schema(),
                    "status": status_schema(),
                    "priority": priority_schema(),
                    "tags": tags_schema(),
                    "assignee_email": { "type": "string", "minLength": 1, "maxLength": 320,
                                        "description": "Email of the team member (people) to assign it to" },
                }, "additionalProperties": false }),
                ticket_schema(),
            ),
            ToolSpec::new(
                "find_tickets",
                "List tickets, newest first, filtered by status, priority, requester email and full text over subject and description (web search syntax: words, \"a phrase\", -not, or).",
                json!({ "type": "object", "properties": {
                    "status": status_schema(),
                    "priority": priority_schema(),
                    "query": { "type": "string", "minLength": 1, "maxLength": 500 },
                    "requester_email": { "type": "string", "minLength": 1, "maxLength": 320 },
                    "limit": { "type": "integer", "minimum": 1, "maximum": 50, "default": 20 },
                }, "additionalProperties": false }),
                json!({ "type": "object", "properties": {
                    "count": { "type": "integer" },
                    "tickets": { "type": "array", "items": { "type": "object", "properties": {
                        "number": { "type": "integer" }, "subject": { "type": "string" },
                        "status": { "type": "string" }, "priority": { "type": "string" },
                        "requester_email": { "type": "string" }, "created_at": { "type": "string" },
                    } } },
                } }),
            ),
            ToolSpec::new(
                "comment_on_ticket",
                "Add a comment to a ticket: a public reply to the requester (default) or an internal note for the team (public: false).",
                json!({ "type": "object", "required": ["ticket", "body"], "properties": {
                    "ticket": ticket_ref_schema(),
                    "body": { "type": "string", "minLength": 1, "maxLength": MAX_COMMENT_CHARS },
                    "public": { "type": "boolean", "default": true },
                }, "additionalProperties": false }),
                json!({ "type": "object", "properties": {
                    "id": { "type": "string" }, "ticket_number": { "type": "integer" },
                    "public": { "type": "boolean" }, "author": { "type": "string" },
                    "created_at": { "type": "string" },
                } }),
            ),
            ToolSpec::new(
                "analyse_sentiment",
                "The sentiment of a customer's message: a score from -1 (very negative) to 1, a label and a confidence. VADER's lexicon, combined with the language model's judgement when one is available (method hybrid).",
                json!({ "type": "object", "required": ["text"], "properties": {
                    "text": { "type": "string", "minLength": 1 },
                }, "additionalProperties": false }),
                json!({ "type": "object", "properties": {
                    "score": { "type": "number" },
                    "label": { "type": "string", "enum": ["negative", "neutral", "positive"] },
                    "confidence": { "type": "number" },
                    "method": { "type": "string", "enum": ["lexicon", "hybrid"] },
                    "lexicon": { "type": "object" },
                    "llm": { "type": ["number", "null"] },
                } }),
            ),
            ToolSpec::new(
                "search_knowledge_base",
                "Search the published help articles (full text and meaning together); returns the best passages with their article and section. To answer a customer's question, prefer answer_question, which cites its sources.",
                json!({ "type": "object", "required": ["query"], "properties": {
                    "query": { "type": "string", "minLength": 1, "maxLength": 4000 },
                    "k": { "type": "integer", "minimum": 1, "maximum": 10, "default": 5 },
                }, "additionalProperties": false }),
                json!({ "type": "object", "properties": {
                    "results": { "type": "array", "items": passage_schema() },
                } }),
            ),
            ToolSpec::new(
                "answer_question",
                "Answer a customer's question from the published help articles only, with [n] citations that point at the articles. When the articles don't cover it, answered is false (the question is recorded as a knowledge gap): don't guess, offer to open a ticket.",
                json!({ "type": "object", "required": ["question"], "properties": {
                    "question": { "type": "string", "minLength": 1, "maxLength": MAX_QUESTION_CHARS },
                }, "additionalProperties": false }),
                json!({ "type": "object", "properties": {
                    "answered": { "type": "boolean" },
                    "answer": { "type": "string", "description": "The answer with [n] markers, or what to tell the customer" },
                    "citations": citations_schema(),
                    "mode": { "type": "string", "enum": ["llm", "extractive"] },
                    "reason": { "type": ["string", "null"], "enum": ["no_match", "not_covered", null] },
                    "suggestion": { "type": ["string", "null"] },
                    "best_similarity": { "type": ["number", "null"] },
                } }),
            ),
            ToolSpec::new(
                "suggest_reply",
                "Draft a reply to a ticket's requester from the help articles related to it, with [n] citations. A draft for a person (or you) to send with comment_on_ticket; it is not sent.",
                json!({ "type": "object", "required": ["ticket"], "properties": {
                    "ticket": ticket_ref_schema(),
                }, "additionalProperties": false }),
                json!({ "type": "object", "properties": {
                    "ticket_number": { "type": "integer" },
                    "text": { "type": "string" },
                    "citations": citations_schema(),
                    "method": { "type": "string", "enum": ["llm", "extractive"] },
                    "confidence": { "type": "number" },
                } }),
            ),
        ]
    }

    fn invoke(_: &CallContext, tool: &str, input: Value) -> Result<Value, Error> {
        match tool {
            "create_ticket" => typed(input, tickets::create),
            "update_ticket" => typed(input, tickets::update),
            "find_tickets" => typed(input, tickets::find),
            "comment_on_ticket" => typed(input, tickets::comment),
            "analyse_sentiment" => typed(input, analyse_sentiment),
            "search_knowledge_base" => typed(input, knowledge::search),
            "answer_question" => typed(input, knowledge::answer_question),
            "suggest_reply" => typed(input, knowledge::suggest_reply),
            other => Err(Error::NotFound(format!("Cassie has no tool {other}"))),
        }
    }
}

#[derive(Deserialize)]
struct SentimentInput {
    text: String,
}

/// VADER, and when the model answers, the documented hybrid of the two.
fn analyse_sentiment(input: SentimentInput) -> Result<sentiment::Sentiment, Error> {
    if input.text.trim().is_empty() {
        return Err(Error::invalid("text is empty; give the customer's message"));
    }
    if input.text.len() > MAX_SENTIMENT_BYTES {
        return Err(Error::invalid(
            "text is over 64 KiB; rate one message at a time",
        ));
    }
    Ok(sentiment::analyze(
        &input.text,
        model::sentiment_score(&input.text),
    ))
}

agenthost_sdk::export_tool_plugin!(Cassie);
