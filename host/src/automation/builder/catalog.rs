//! Node-type search: a model asks for "send email" or "revenue" and gets the few node
//! types that fit, with their exact names and config schemas, instead of the whole
//! catalog (n8n's builder and Anthropic's tool advice both do it this way).

use serde_json::{Value, json};

use crate::registry::Registry;
use crate::runtime::bindings::Error;

/// Words that say nothing about what a node does.
const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "to", "of", "and", "or", "for", "in", "on", "with", "me", "my", "i", "node",
    "nodes", "step", "type", "that", "it", "from", "by", "every", "some",
];

/// Extra words people use for a node type's job, so "mail" finds `email/send` and
/// "ask dexter" finds `agent/turn`.
fn synonyms(node_type: &str) -> &'static str {
    match node_type {
        "email/send" => "mail message notify send report",
        "http/request" => "webhook api url call fetch post get request",
        "agent/turn" => "agent ask dexter cassie aura chat assistant revenue finance report answer",
        "llm/chat" => "model prompt summarise summarize write generate ai text",
        "database/query" => "sql select read rows table data query report revenue",
        "database/execute" => "sql insert update delete write",
        "core/condition" => "if branch check compare when",
        "core/switch" => "case branch route choose",
        "core/delay" => "wait sleep pause later timer",
        "core/approval" => "approve human review person confirm sign",
        "core/transform" => "map format compute value template shape",
        "core/output" => "result return answer",
        "core/merge" => "join combine",
        "workflow/start" => "workflow run trigger start subworkflow",
        "events/emit" => "event publish emit signal",
        "tickets/create" => "ticket support issue open case",
        "tickets/update" => "ticket support close assign comment",
        _ => "",
    }
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
        .collect()
}

/// How well `query` matches a node type: name hits count most, then description and
/// synonyms; a word's stem (its first five letters) counts as a hit too.
fn score(query: &[String], name: &str, description: &str) -> u32 {
    let name_words = words(name);
    let other: Vec<String> = words(description)
        .into_iter()
        .chain(words(synonyms(name)))
        .collect();
    let hits = |word: &str, against: &[String]| {
        against
            .iter()
            .any(|w| w == word || (word.len() >= 5 && w.len() >= 5 && w[..5] == word[..5]))
    };
    query
        .iter()
        .map(|word| {
            if hits(word, &name_words) {
                3
            } else if hits(word, &other) {
                1
            } else {
                0
            }
        })
        .sum()
}

fn schema(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(json!({}))
}

/// The node types of the active node plugins that match `query`, best first.
pub async fn search(registry: &Registry, query: &str, limit: usize) -> Result<Value, Error> {
    let query = words(query);
    let plugins = registry.plugins().await.map_err(|error| {
        tracing::warn!(%error, "listing plugins for a node-type search failed");
        Error::Unavailable("the plugin list could not be read".into())
    })?;
    let mut found = Vec::new();
    for plugin in plugins {
        let Some(active) = registry.active(&plugin.name) else {
            continue;
        };
        for node in &active.plugin.nodes {
            let name = format!("{}/{}", plugin.name, node.node_type);
            let score = score(&query, &name, &node.description);
            if query.is_empty() || score > 0 {
                let entry = json!({
                    "type": name,
                    "description": node.description,
                    "config_schema": schema(&node.config_schema),
                    "branches": node.branches,
                });
                found.push((score, name, entry));
            }
        }
    }
    found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let total = found.len();
    let node_types: Vec<Value> = found
        .into_iter()
        .take(limit)
        .map(|(_, _, entry)| entry)
        .collect();
    let hint = if node_types.is_empty() {
        "No node type matches; try other words (e.g. email, http, agent, database, condition)."
    } else {
        "Use `type` exactly as given; `config` must match `config_schema`."
    };
    Ok(json!({"node_types": node_types, "matched": total, "hint": hint}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_s_words_find_the_node_that_does_it() {
        let query = words("send the report by mail");
        let mail = score(&query, "email/send", "Sends one email");
        let http = score(&query, "http/request", "An HTTP request");
        assert!(mail > http, "{mail} vs {http}");
        let query = words("ask Dexter for yesterday's revenue");
        assert!(score(&query, "agent/turn", "Runs a turn of an agent") > 0);
        assert_eq!(
            score(&words("the a of"), "email/send", "Sends one email"),
            0
        );
    }
}
