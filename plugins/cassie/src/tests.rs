//! Cassie's tools on the SDK's in-memory host: the vector store holds chunks shaped
//! like the host indexer's, a closure plays the database (recording every statement),
//! another the model.

use std::cell::RefCell;
use std::rc::Rc;

use agenthost_sdk::database::{Rows, Value as Param};
use agenthost_sdk::llm::ChatResponse;
use agenthost_sdk::testing::TestHost;
use agenthost_sdk::vector::{self, Document};
use agenthost_sdk::{CallContext, Error, ToolPlugin};
use serde_json::{Value, json};

use super::Cassie;
use crate::model::parse_sentiment;
use crate::tickets::{TicketRef, clean_tags};

const TICKET_ID: &str = "0b7c9f4e-2f61-4c1e-9d0a-6f1e2d3c4b5a";

type Statements = Rc<RefCell<Vec<(String, Vec<Param>)>>>;

/// A database that answers with `respond` and records each statement.
fn database(
    host: TestHost,
    respond: impl Fn(&str, &[Param]) -> Result<Rows, Error> + 'static,
) -> (TestHost, Statements) {
    let seen: Statements = Rc::default();
    let log = seen.clone();
    let host = host.database(move |sql, params| {
        log.borrow_mut().push((sql.to_string(), params.to_vec()));
        respond(sql, params)
    });
    (host, seen)
}

/// Answers ticket lookups with ticket #7 and everything else with no rows.
fn ticket_database(sql: &str, _: &[Param]) -> Result<Rows, Error> {
    if sql.contains("SELECT id, number FROM data.tickets") {
        return Ok(
            Rows::new(&["id", "number"]).row(vec![Param::Uuid(TICKET_ID.into()), Param::Int(7)])
        );
    }
    if sql.contains("SELECT subject, description, requester_name") {
        return Ok(
            Rows::new(&["subject", "description", "requester_name"]).row(vec![
                "Refund for my order".into(),
                "How do I get a refund for an order I returned?".into(),
                "Dana".into(),
            ]),
        );
    }
    Ok(Rows::new(&["id"]))
}

fn call(tool: &str, input: Value) -> Result<Value, Error> {
    Cassie::invoke(&CallContext::for_tests("ws"), tool, input)
}

/// Two published articles as the host's indexer stores them.
fn publish_articles() {
    let chunk = |id: &str, slug: &str, title: &str, heading: &str, body: &str| {
        Document::text(id, &format!("{heading}\n\n{body}")).metadata(json!({
            "article_id": format!("{slug}-id"), "revision_id": format!("{slug}-r1"), "version": 1,
            "slug": slug, "title": title, "category": "billing", "heading": heading,
            "heading_path": [title, heading], "chunk": 0,
        }))
    };
    vector::upsert(
        "knowledge-base",
        &[
            chunk(
                "refunds:0",
                "refunds",
                "Refunds",
                "Getting a refund",
                "To get a refund open Billing then Refunds and pick the order within 30 days.",
            ),
            chunk(
                "lockers:0",
                "parcel-lockers",
                "Parcel lockers",
                "Pickup",
                "Collect parcels from locker bank QX-77 with the six digit code.",
            ),
        ],
    )
    .unwrap();
}

fn gap_inserts(seen: &Statements) -> Vec<Vec<Param>> {
    seen.borrow()
        .iter()
        .filter(|(sql, _)| sql.contains("INSERT INTO data.kb_gaps"))
        .map(|(_, params)| params.clone())
        .collect()
}

#[test]
fn answers_cite_the_article_the_model_used_and_record_no_gap() {
    let (host, seen) = database(TestHost::new(), |_, _| Ok(Rows::default()));
    let asked: Rc<RefCell<Vec<String>>> = Rc::default();
    let prompts = asked.clone();
    let _host = host
        .llm_chat(move |request| {
            prompts
                .borrow_mut()
                .push(request.messages[1].content.clone());
            assert_eq!(request.model, "gpt-4o-mini");
            Ok(ChatResponse::text(
                "Open Billing, then Refunds, within 30 days [1].",
            ))
        })
        .install();
    publish_articles();
    let out = call(
        "answer_question",
        json!({ "question": "How do I get a refund?" }),
    )
    .unwrap();
    assert_eq!(out["answered"], true, "{out}");
    assert_eq!(out["mode"], "llm");
    assert_eq!(
        out["answer"],
        "Open Billing, then Refunds, within 30 days [1]."
    );
    assert_eq!(out["citations"][0]["n"], 1);
    assert_eq!(out["citations"][0]["slug"], "refunds");
    assert_eq!(out["citations"][0]["revision_id"], "refunds-r1");
    assert_eq!(
        out["citations"][0]["heading_path"],
        json!(["Refunds", "Getting a refund"])
    );
    // The prompt is the shared one: numbered sources (body without its heading line).
    let prompt = asked.borrow()[0].clone();
    assert!(
        prompt.contains("[1] Refunds > Getting a refund\nTo get a refund"),
        "{prompt}"
    );
    assert!(
        prompt.ends_with("Question: How do I get a refund?"),
        "{prompt}"
    );
    assert!(gap_inserts(&seen).is_empty());
}

#[test]
fn without_a_model_the_answer_quotes_the_best_passage() {
    let (host, seen) = database(TestHost::new(), |_, _| Ok(Rows::default()));
    let _host = host.install();
    publish_articles();
    let out = call(
        "answer_question",
        json!({ "question": "How do I get a refund?" }),
    )
    .unwrap();
    assert_eq!(out["answered"], true, "{out}");
    assert_eq!(out["mode"], "extractive");
    assert!(
        out["answer"]
            .as_str()
            .unwrap()
            .contains("pick the order within 30 days")
    );
    assert_eq!(out["citations"][0]["slug"], "refunds");
    assert!(gap_inserts(&seen).is_empty());
}

#[test]
fn unrelated_questions_are_not_answered_and_become_gaps() {
    let (host, seen) = database(TestHost::new(), |_, _| Ok(Rows::default()));
    let _host = host
        .llm_chat(|_| panic!("no model is asked when nothing is relevant"))
        .install();
    publish_articles();
    let out = call(
        "answer_question",
        json!({ "question": "Do you sell bicycles?" }),
    )
    .unwrap();
    assert_eq!(out["answered"], false, "{out}");
    assert_eq!(out["reason"], "no_match");
    assert!(out["suggestion"].as_str().unwrap().contains("ticket"));
    let gaps = gap_inserts(&seen);
    assert_eq!(gaps.len(), 1);
    assert_eq!(gaps[0][0], Param::Text("Do you sell bicycles?".into()));
    assert_eq!(gaps[0][1], Param::Text("no_match".into()));
    assert!(matches!(gaps[0][2], Param::Float(_)), "{:?}", gaps[0][2]);
    assert!(seen.borrow()[0].0.contains("'cassie'"));
}

#[test]
fn a_model_that_finds_no_answer_in_the_sources_makes_a_not_covered_gap() {
    let (host, seen) = database(TestHost::new(), |_, _| Ok(Rows::default()));
    let _host = host
        .llm_chat(|_| Ok(ChatResponse::text("NOT_COVERED")))
        .install();
    publish_articles();
    let out = call(
        "answer_question",
        json!({ "question": "Can I get a refund in bitcoin?" }),
    )
    .unwrap();
    assert_eq!(out["answered"], false, "{out}");
    assert_eq!(out["reason"], "not_covered");
    assert_eq!(gap_inserts(&seen)[0][1], Param::Text("not_covered".into()));
}

#[test]
fn nothing_published_is_an_empty_search_and_an_unanswered_question() {
    let (host, seen) = database(TestHost::new(), |_, _| Ok(Rows::default()));
    let _host = host.install();
    let out = call("search_knowledge_base", json!({ "query": "refund" })).unwrap();
    assert_eq!(out, json!({ "results": [] }));
    let out = call(
        "answer_question",
        json!({ "question": "How do I get a refund?" }),
    )
    .unwrap();
    assert_eq!(out["reason"], "no_match");
    // No passage at all: no best score.
    assert_eq!(gap_inserts(&seen)[0][2], Param::Null);
}

#[test]
fn search_returns_passages_with_their_article_and_section() {
    let _host = TestHost::new().install();
    publish_articles();
    let out = call(
        "search_knowledge_base",
        json!({ "query": "locker QX-77 code", "k": 1 }),
    )
    .unwrap();
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["slug"], "parcel-lockers");
    assert_eq!(
        results[0]["heading_path"],
        json!(["Parcel lockers", "Pickup"])
    );
    assert!(
        results[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Collect parcels")
    );
    assert!(results[0]["similarity"].as_f64().unwrap() > 0.0);
    assert!(call("search_knowledge_base", json!({ "query": "x", "k": 11 })).is_err());
}

#[test]
fn sentiment_is_hybrid_when_the_model_scores_and_lexicon_only_otherwise() {
    let text = "Great, the parcel is lost again.";
    let _host = TestHost::new()
        .llm_chat(|request| {
            assert!(request.json_response);
            Ok(ChatResponse::text("{\"sentiment\": -0.8}"))
        })
        .install();
    let out = call("analyse_sentiment", json!({ "text": text })).unwrap();
    assert_eq!(out["method"], "hybrid", "{out}");
    assert_eq!(out["llm"], -0.8);
    assert_eq!(out["label"], "negative");
    drop(_host);

    let _host = TestHost::new()
        .llm_chat(|_| Err(Error::Denied("model not granted".into())))
        .install();
    let out = call(
        "analyse_sentiment",
        json!({ "text": "Thanks, that was great!" }),
    )
    .unwrap();
    assert_eq!(out["method"], "lexicon", "{out}");
    assert_eq!(out["label"], "positive");
    assert_eq!(out["llm"], Value::Null);
    assert!(call("analyse_sentiment", json!({ "text": "   " })).is_err());
}

#[test]
fn sentiment_replies_are_read_when_wrapped_and_ignored_when_not_numbers() {
    assert_eq!(parse_sentiment("{\"sentiment\": 0.5}"), Some(0.5));
    assert_eq!(
        parse_sentiment("Sure: ```json\n{\"sentiment\": -2}\n```"),
        Some(-1.0)
    );
    assert_eq!(parse_sentiment("0.25"), Some(0.25));
    assert_eq!(parse_sentiment("{\"sentiment\": \"bad\"}"), None);
    assert_eq!(parse_sentiment("I can't tell"), None);
    assert_eq!(parse_sentiment("NaN"), None);
}

#[test]
fn tickets_are_named_by_number_or_id() {
    let ok = |value: Value| serde_json::from_value::<TicketRef>(value).unwrap();
    let _host = database(TestHost::new(), |sql, params| {
        assert!(sql.contains("id = $1::uuid OR number = $2::bigint"));
        match params {
            [Param::Null, Param::Int(42)] => Ok(Rows::new(&["id", "number"])
                .row(vec![Param::Uuid(TICKET_ID.into()), Param::Int(42)])),
            [Param::Uuid(id), Param::Null] if id == TICKET_ID => Ok(Rows::new(&["id", "number"])
                .row(vec![Param::Uuid(TICKET_ID.into()), Param::Int(42)])),
            _ => Ok(Rows::new(&["id", "number"])),
        }
    })
    .0
    .install();
    for reference in [
        json!(42),
        json!("42"),
        json!("#42"),
        json!(TICKET_ID.to_uppercase()),
    ] {
        let resolved = crate::tickets::resolve(&ok(reference.clone()));
        assert_eq!(resolved, Ok((TICKET_ID.to_string(), 42)), "{reference}");
    }
    let missing = crate::tickets::resolve(&ok(json!(9)));
    assert!(
        matches!(missing, Err(Error::NotFound(ref m)) if m.contains("find_tickets")),
        "{missing:?}"
    );
    let bad = crate::tickets::resolve(&ok(json!("the billing one")));
    assert!(matches!(bad, Err(Error::Invalid(_))), "{bad:?}");
}

#[test]
fn tags_are_trimmed_lower_cased_and_unique() {
    let tags: Vec<String> = [" Billing", "billing", "", "VIP "]
        .map(String::from)
        .to_vec();
    assert_eq!(clean_tags(&tags).unwrap(), ["billing", "vip"]);
    assert!(clean_tags(&["x".repeat(51)]).is_err());
    assert!(clean_tags(&(0..21).map(|i| format!("t{i}")).collect::<Vec<_>>()).is_err());
}

#[test]
fn a_new_ticket_is_a_plain_insert_with_the_chat_channel_by_default() {
    let (host, seen) = database(TestHost::new(), |_, _| {
        Ok(
            Rows::new(&["id", "number", "status", "priority", "sla_due_at"]).row(vec![
                Param::Uuid(TICKET_ID.into()),
                Param::Int(1),
                "open".into(),
                "normal".into(),
                Param::Timestamp("2026-01-04T10:00:00+00:00".into()),
            ]),
        )
    });
    let _host = host.install();
    let out = call(
        "create_ticket",
        json!({ "subject": " Billing issue ", "requester_email": "dana@example.com",
                "tags": ["Billing", "billing"] }),
    )
    .unwrap();
    assert_eq!(
        out,
        json!({ "id": TICKET_ID, "number": 1, "status": "open", "priority": "normal",
                "sla_due_at": "2026-01-04T10:00:00+00:00" })
    );
    let seen = seen.borrow();
    let (sql, params) = &seen[0];
    assert!(sql.starts_with("INSERT INTO data.tickets"), "{sql}");
    assert!(!sql.contains("updated_by"), "the trigger signs the write");
    assert_eq!(
        params,
        &[
            "Billing issue".into(),
            "".into(),
            "normal".into(),
            "chat".into(),
            "dana@example.com".into(),
            Param::Null,
            Param::Json("[\"billing\"]".into()),
        ]
    );
}

#[test]
fn updates_need_a_change_and_pass_refused_moves_on() {
    let (host, _) = database(TestHost::new(), |sql, params| {
        if sql.starts_with("UPDATE data.tickets") {
            assert_eq!(params[1], Param::Text("open".into()));
            return Err(Error::Invalid(
                "a ticket cannot go from closed to open (allowed: open <-> pending, open or pending -> solved, solved -> open or closed)".into(),
            ));
        }
        if sql.contains("FROM data.people") {
            return Ok(Rows::new(&["id"]));
        }
        ticket_database(sql, params)
    });
    let _host = host.install();
    let none = call("update_ticket", json!({ "ticket": 7 }));
    assert!(
        matches!(none, Err(Error::Invalid(ref m)) if m.contains("nothing to change")),
        "{none:?}"
    );
    let refused = call("update_ticket", json!({ "ticket": 7, "status": "open" }));
    assert!(
        matches!(refused, Err(Error::Invalid(ref m)) if m.starts_with("a ticket cannot go from closed to open")),
        "{refused:?}"
    );
    let nobody = call(
        "update_ticket",
        json!({ "ticket": 7, "assignee_email": "who@example.com" }),
    );
    assert!(
        matches!(nobody, Err(Error::NotFound(ref m)) if m.contains("who@example.com")),
        "{nobody:?}"
    );
}

#[test]
fn comments_are_public_by_default() {
    let (host, seen) = database(TestHost::new(), |sql, params| {
        if sql.starts_with("INSERT INTO data.ticket_comments") {
            return Ok(Rows::new(&["id", "public", "author"]).row(vec![
                Param::Uuid(TICKET_ID.into()),
                params[1].clone(),
                "plugin:cassie".into(),
            ]));
        }
        ticket_database(sql, params)
    });
    let _host = host.install();
    let out = call(
        "comment_on_ticket",
        json!({ "ticket": "#7", "body": "We're on it." }),
    )
    .unwrap();
    assert_eq!(out["public"], true);
    assert_eq!(out["ticket_number"], 7);
    let insert = seen.borrow()[1].1.clone();
    assert_eq!(insert[0], Param::Uuid(TICKET_ID.into()));
}

#[test]
fn find_caps_the_limit_and_passes_every_filter() {
    let (host, seen) = database(TestHost::new(), |_, _| Ok(Rows::new(&["number"])));
    let _host = host.install();
    assert!(call("find_tickets", json!({ "limit": 51 })).is_err());
    let out = call(
        "find_tickets",
        json!({ "status": "open", "query": "double charge", "requester_email": "a@b.c" }),
    )
    .unwrap();
    assert_eq!(out, json!({ "count": 0, "tickets": [] }));
    let (sql, params) = seen.borrow()[0].clone();
    assert!(sql.contains("websearch_to_tsquery('english', $3::text)"));
    assert_eq!(
        params,
        [
            "open".into(),
            Param::Null,
            "double charge".into(),
            "a@b.c".into(),
            Param::Int(20)
        ]
    );
}

#[test]
fn replies_greet_the_requester_and_cite_related_articles_without_a_model() {
    let (host, _) = database(TestHost::new(), ticket_database);
    let _host = host.install();
    publish_articles();
    let out = call("suggest_reply", json!({ "ticket": 7 })).unwrap();
    assert_eq!(out["method"], "extractive", "{out}");
    assert_eq!(out["ticket_number"], 7);
    let text = out["text"].as_str().unwrap();
    assert!(text.starts_with("Hi Dana,"), "{text}");
    assert!(text.contains("Refunds > Getting a refund [1]"), "{text}");
    assert_eq!(out["citations"][0]["slug"], "refunds");
    assert_eq!(out["confidence"], 0.5);
}

#[test]
fn replies_come_from_the_model_when_it_cites_a_source() {
    let (host, _) = database(TestHost::new(), ticket_database);
    let _host = host
        .llm_chat(|request| {
            assert!(
                request.messages[0]
                    .content
                    .contains("Write a short, friendly reply")
            );
            Ok(ChatResponse::text("Hi Dana, open Billing > Refunds [1]."))
        })
        .install();
    publish_articles();
    let out = call("suggest_reply", json!({ "ticket": 7 })).unwrap();
    assert_eq!(out["method"], "llm", "{out}");
    assert_eq!(out["text"], "Hi Dana, open Billing > Refunds [1].");
    assert_eq!(out["citations"][0]["slug"], "refunds");
}

#[test]
fn every_tool_has_a_description_and_object_schemas() {
    let tools = Cassie::tools();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "create_ticket",
            "update_ticket",
            "find_tickets",
            "comment_on_ticket",
            "analyse_sentiment",
            "search_knowledge_base",
            "answer_question",
            "suggest_reply"
        ]
    );
    for tool in &tools {
        assert!(tool.description.len() > 40, "{}", tool.name);
        assert_eq!(tool.input_schema["type"], "object", "{}", tool.name);
        assert_eq!(tool.output_schema["type"], "object", "{}", tool.name);
    }
}
