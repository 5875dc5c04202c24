//! Ticket enrichment: sentiment, intent, a suggested priority, the three most related
//! articles, a summary and a suggested reply, each with a confidence, stored in
//! `tickets.enrichment`. Runs as a background job queued with every new ticket, and on
//! demand. Offline it uses the VADER lexicon, embedding similarity to the intents'
//! examples, rules and extractive text; with an LLM configured it also asks the model
//! (one JSON call for the labels and summary, one for the cited reply) and combines.
//! A person's overrides live in `tickets.overrides`, which enrichment never writes.

use agenthost_support::answer::{self, Passage};
use agenthost_support::tickets::{searched_text, ticket_text};
use agenthost_support::triage::{self, Intent, Priority};
use serde_json::{Value, json};
use uuid::Uuid;

use super::jobs::Support;
use super::kb::search::{self, chat_text};
use crate::embeddings::Role;
use crate::llm::UsageKey;
use crate::vector::SearchMode;

#[derive(sqlx::FromRow)]
struct Ticket {
    subject: String,
    description: String,
    requester_name: Option<String>,
}

/// The workspace's intents, or the defaults when it has none.
pub async fn intents(pool: &sqlx::PgPool, workspace: Uuid) -> sqlx::Result<Vec<Intent>> {
    let rows: Vec<(String, String, Vec<String>)> = sqlx::query_as(
        "SELECT name, description, examples FROM data.support_intents
          WHERE workspace_id = $1 ORDER BY name",
    )
    .bind(workspace)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Ok(triage::default_intents());
    }
    Ok(rows
        .into_iter()
        .map(|(name, description, examples)| Intent {
            name,
            description,
            examples,
        })
        .collect())
}

/// The best intent by cosine similarity of `text` to each intent's closest example.
async fn classify_intent(
    support: &Support,
    workspace: Uuid,
    text: &str,
    intents: &[Intent],
) -> anyhow::Result<Option<(String, f64)>> {
    let usage = UsageKey {
        workspace: Some(workspace),
        plugin: None,
        agent: None,
    };
    let mut texts = vec![text.to_string()];
    texts.extend(intents.iter().flat_map(|i| i.examples.iter().cloned()));
    let vectors = support
        .vectors
        .embed_texts(&usage, Role::Query, &texts)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (query, examples) = vectors.split_first().expect("the ticket text is first");
    // triage::classify's thresholds are on MiniLM's scale (crate::embeddings::calibrated).
    let floor = crate::embeddings::similarity_floor(support.vectors.model());
    let mut next = examples.iter();
    let best: Vec<(String, f32)> = intents
        .iter()
        .map(|intent| {
            let best = next
                .by_ref()
                .take(intent.examples.len())
                .map(|example| example.iter().zip(query).map(|(a, b)| a * b).sum::<f32>())
                .fold(f32::MIN, f32::max);
            (
                intent.name.clone(),
                crate::embeddings::calibrated(best, floor),
            )
        })
        .collect();
    Ok(triage::classify(&best))
}

/// What the LLM says about a ticket, when it answers with the JSON asked for.
struct LlmLabels {
    sentiment: Option<f64>,
    intent: Option<String>,
    priority: Option<Priority>,
    summary: Option<String>,
}

async fn ask_llm(
    support: &Support,
    workspace: Uuid,
    text: &str,
    intents: &[Intent],
) -> anyhow::Result<LlmLabels> {
    let names: Vec<&str> = intents.iter().map(|i| i.name.as_str()).collect();
    let system = format!(
        "You triage customer support tickets. Reply with one JSON object: \
         {{\"sentiment\": a number from -1 (very negative) to 1 (very positive), \
         \"intent\": one of {names:?}, \"priority\": one of [\"low\", \"normal\", \"high\", \"urgent\"], \
         \"summary\": one sentence}}."
    );
    let reply = chat_text(&support.llm, &support.model, workspace, &system, text)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let start = reply.find('{').unwrap_or(0);
    let end = reply.rfind('}').map_or(reply.len(), |e| e + 1);
    let value: Value =
        serde_json::from_str(reply.get(start..end).unwrap_or("{}")).unwrap_or(Value::Null);
    Ok(LlmLabels {
        sentiment: value["sentiment"].as_f64().map(|s| s.clamp(-1.0, 1.0)),
        intent: value["intent"]
            .as_str()
            .filter(|i| names.contains(i))
            .map(str::to_string),
        priority: serde_json::from_value(value["priority"].clone()).ok(),
        summary: value["summary"]
            .as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    })
}

/// Enrich one ticket and store the result.
pub async fn enrich(support: &Support, workspace: Uuid, ticket: Uuid) -> anyhow::Result<()> {
    let Some(row) = sqlx::query_as::<_, Ticket>(
        "SELECT subject, description, requester_name FROM data.tickets
          WHERE workspace_id = $1 AND id = $2",
    )
    .bind(workspace)
    .bind(ticket)
    .fetch_optional(&support.pool)
    .await?
    else {
        // Deleted since it was queued.
        return Ok(());
    };
    let full = ticket_text(&row.subject, &row.description);
    let text = searched_text(&full);
    let intents = intents(&support.pool, workspace).await?;
    let by_examples = classify_intent(support, workspace, &text, &intents).await?;
    let labels = if support.llm.is_configured() {
        match ask_llm(support, workspace, &text, &intents).await {
            Ok(labels) => Some(labels),
            Err(error) => {
                tracing::warn!(%ticket, %error, "enrichment: the LLM failed; using the offline signals");
                None
            }
        }
    } else {
        None
    };

    let sentiment = super::sentiment::analyze(
        &support.vectors,
        workspace,
        &full,
        labels.as_ref().and_then(|l| l.sentiment),
    )
    .await;
    let intent = match (&by_examples, labels.as_ref().and_then(|l| l.intent.clone())) {
        (Some((name, confidence)), Some(llm)) if *name == llm => {
            json!({ "name": name, "confidence": confidence.max(0.8), "method": "hybrid" })
        }
        (_, Some(llm)) => json!({ "name": llm, "confidence": 0.6, "method": "llm" }),
        (Some((name, confidence)), None) => {
            json!({ "name": name, "confidence": confidence, "method": "examples" })
        }
        (None, None) => Value::Null,
    };
    let mut priority = triage::suggest_priority(&full, sentiment.score, intent["name"].as_str());
    if let Some(llm) = labels.as_ref().and_then(|l| l.priority) {
        priority.confidence = if llm == priority.priority { 0.85 } else { 0.6 };
        if llm != priority.priority {
            priority
                .reasons
                .push(format!("the LLM suggests {}", llm.as_str()));
            priority.priority = llm;
        }
    }

    let hits = search::search(
        &support.vectors,
        workspace,
        &text,
        triage::REPLY_CANDIDATES,
        SearchMode::Hybrid,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let passages: Vec<Passage> = answer::select(
        &text,
        &hits.into_iter().map(|h| h.passage).collect::<Vec<_>>(),
        answer::CONTEXT_TOKENS,
    );
    let mut related: Vec<Value> = Vec::new();
    for passage in &passages {
        if related.len() < 3
            && !related
                .iter()
                .any(|r| r["article_id"] == passage.article_id)
        {
            related.push(json!({
                "article_id": passage.article_id,
                "slug": passage.slug,
                "title": passage.title,
                "heading": passage.heading_path.join(" > "),
                "similarity": passage.similarity,
            }));
        }
    }

    let summary = match labels.as_ref().and_then(|l| l.summary.clone()) {
        Some(text) => json!({ "text": text, "method": "llm" }),
        None => json!({
            "text": triage::extractive_summary(&row.subject, &row.description),
            "method": "extractive",
        }),
    };
    let reply = suggested_reply(support, workspace, &row, &text, &passages).await;

    let enrichment = json!({
        "sentiment": sentiment,
        "intent": intent,
        "suggested_priority": priority,
        "related_articles": related,
        "summary": summary,
        "suggested_reply": reply,
    });
    sqlx::query(
        "UPDATE data.tickets SET enrichment = $3, enriched_at = now(), updated_by = 'system:enrichment'
          WHERE workspace_id = $1 AND id = $2",
    )
    .bind(workspace)
    .bind(ticket)
    .bind(enrichment)
    .execute(&support.pool)
    .await?;
    Ok(())
}

/// A reply citing the related passages: written by the LLM from them, or a template
/// pointing at them.
async fn suggested_reply(
    support: &Support,
    workspace: Uuid,
    ticket: &Ticket,
    text: &str,
    passages: &[Passage],
) -> Value {
    if support.llm.is_configured() && !passages.is_empty() {
        let (system, user) = answer::prompt(answer::REPLY_TASK, text, passages);
        match chat_text(&support.llm, &support.model, workspace, &system, &user).await {
            Ok(reply) => {
                let answer = answer::from_llm(&reply, passages);
                if answer.answered {
                    return json!({
                        "text": answer.answer,
                        "citations": answer.citations,
                        "method": "llm",
                        "confidence": triage::REPLY_CONFIDENCE_LLM,
                    });
                }
            }
            Err(error) => tracing::warn!(%error, "enrichment: the reply LLM call failed"),
        }
    }
    let (reply, citations) = triage::extractive_reply(ticket.requester_name.as_deref(), passages);
    json!({
        "text": reply,
        "method": "extractive",
        "confidence": triage::extractive_reply_confidence(&citations),
        "citations": citations,
    })
}
