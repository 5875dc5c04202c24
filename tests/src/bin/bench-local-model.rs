//! The local model's speed and tool calling (issue 23, docs/local-model.md), part of
//! `make bench`: time to first token and tokens/s through `/v1/chat/completions`
//! (streamed), then 30 requests to Dexter and Cassie, each in a new conversation, judged
//! on the first tool call (the right tool, the right arguments) and on the answer after
//! it (prose, not JSON). Prints a line per request, the score and the turns' p50.
//!
//! Run: `cargo run --release -p agenthost-tests --bin bench-local-model` (the GGUF file
//! from `make setup`; `--only N` runs the first N requests).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use agenthost_tests::TestServer;
use reqwest::Method;
use serde_json::{Value, json};

/// What an argument must be.
enum Is {
    /// Equal (numbers compared as numbers).
    Equal(Value),
    /// A string holding this text, case aside.
    Holding(&'static str),
}

struct Request {
    agent: &'static str,
    message: &'static str,
    /// Any of these tools is right.
    tools: &'static [&'static str],
    arguments: Vec<(&'static str, Is)>,
}

fn ask(
    agent: &'static str,
    message: &'static str,
    tools: &'static [&'static str],
    arguments: Vec<(&'static str, Is)>,
) -> Request {
    Request {
        agent,
        message,
        tools,
        arguments,
    }
}

fn equal(value: Value) -> Is {
    Is::Equal(value)
}

/// Twenty requests to Dexter over his nine tools and ten to Cassie over eight of hers.
fn requests() -> Vec<Request> {
    use Is::Holding;
    vec![
        ask(
            "dexter",
            "What was our revenue in Q4 2025?",
            &["revenue_analysis"],
            vec![("period", equal(json!("2025-Q4")))],
        ),
        ask(
            "dexter",
            "Show me revenue for 2025 by month.",
            &["revenue_analysis"],
            vec![
                ("period", Holding("2025")),
                ("granularity", equal(json!("month"))),
            ],
        ),
        ask(
            "dexter",
            "How much revenue did we make in November 2025?",
            &["revenue_analysis"],
            vec![("period", equal(json!("2025-11")))],
        ),
        ask(
            "dexter",
            "Break down Q3 2025 revenue by customer segment.",
            &["revenue_analysis"],
            vec![
                ("period", equal(json!("2025-Q3"))),
                ("group_by", Holding("segment")),
            ],
        ),
        ask(
            "dexter",
            "Give me the profit and loss statement for Q4 2025.",
            &["profit_and_loss"],
            vec![("period", equal(json!("2025-Q4")))],
        ),
        ask(
            "dexter",
            "What was our gross margin in 2025?",
            &["profit_and_loss"],
            vec![("period", equal(json!("2025")))],
        ),
        ask(
            "dexter",
            "What was the operating income in October 2025?",
            &["profit_and_loss"],
            vec![("period", equal(json!("2025-10")))],
        ),
        ask(
            "dexter",
            "How did each sales rep perform in Q4 2025?",
            &["sales_rep_performance"],
            vec![("period", equal(json!("2025-Q4")))],
        ),
        ask(
            "dexter",
            "What were the sales reps' win rates in 2025?",
            &["sales_rep_performance"],
            vec![("period", equal(json!("2025")))],
        ),
        ask(
            "dexter",
            "What was our customer churn rate in Q4 2025?",
            &["customer_analytics"],
            vec![("period", equal(json!("2025-Q4")))],
        ),
        ask(
            "dexter",
            "What are our CAC and LTV for 2025?",
            &["customer_analytics"],
            vec![("period", equal(json!("2025")))],
        ),
        ask(
            "dexter",
            "Forecast our revenue for the next 6 months.",
            &["forecast_revenue"],
            vec![("horizon_months", equal(json!(6)))],
        ),
        ask(
            "dexter",
            "Predict monthly revenue for the next 12 months.",
            &["forecast_revenue"],
            vec![("horizon_months", equal(json!(12)))],
        ),
        ask(
            "dexter",
            "We invested 50000 and got 65000 back over 2 years. What is the ROI?",
            &["roi"],
            vec![
                ("investment", equal(json!(50000))),
                ("returns", equal(json!(65000))),
                ("years", equal(json!(2))),
            ],
        ),
        ask(
            "dexter",
            "An investment of 12000 brought back 15000. What's the return on investment?",
            &["roi"],
            vec![
                ("investment", equal(json!(12000))),
                ("returns", equal(json!(15000))),
            ],
        ),
        ask(
            "dexter",
            "Fixed costs are 20000, the price is 50 and the variable cost 30 per unit. Where is break-even?",
            &["break_even"],
            vec![
                ("fixed_costs", equal(json!(20000))),
                ("price_per_unit", equal(json!(50))),
                ("variable_cost_per_unit", equal(json!(30))),
            ],
        ),
        ask(
            "dexter",
            "How many units must we sell to break even with fixed costs of 100000, a unit price of 250 and a unit cost of 150?",
            &["break_even"],
            vec![
                ("fixed_costs", equal(json!(100000))),
                ("price_per_unit", equal(json!(250))),
                ("variable_cost_per_unit", equal(json!(150))),
            ],
        ),
        ask(
            "dexter",
            "What was our cash flow in Q4 2025?",
            &["cash_flow"],
            vec![("period", equal(json!("2025-Q4")))],
        ),
        ask(
            "dexter",
            "What is our monthly burn and runway from the 2025 transactions?",
            &["cash_flow"],
            vec![("period", Holding("2025"))],
        ),
        ask(
            "dexter",
            "Our balance sheet: cash 50000 and receivables 70000 as current assets, payables 80000 as current liabilities, equity 40000. Does it balance?",
            &["balance_sheet"],
            vec![],
        ),
        ask(
            "cassie",
            "How do refunds work?",
            &["answer_question", "search_knowledge_base"],
            vec![],
        ),
        ask(
            "cassie",
            "How can I reset my password?",
            &["answer_question", "search_knowledge_base"],
            vec![],
        ),
        ask(
            "cassie",
            "Please open a ticket for ana@example.com: her invoice shows the wrong VAT rate.",
            &["create_ticket"],
            vec![("requester_email", equal(json!("ana@example.com")))],
        ),
        ask(
            "cassie",
            "Show me the open tickets with high priority.",
            &["find_tickets"],
            vec![
                ("status", equal(json!("open"))),
                ("priority", equal(json!("high"))),
            ],
        ),
        ask(
            "cassie",
            "Find the tickets from ben@example.com.",
            &["find_tickets"],
            vec![("requester_email", equal(json!("ben@example.com")))],
        ),
        ask(
            "cassie",
            "Mark ticket 1 as solved.",
            &["update_ticket"],
            vec![
                ("ticket", equal(json!(1))),
                ("status", equal(json!("solved"))),
            ],
        ),
        ask(
            "cassie",
            "Set the priority of ticket 1 to urgent.",
            &["update_ticket"],
            vec![
                ("ticket", equal(json!(1))),
                ("priority", equal(json!("urgent"))),
            ],
        ),
        ask(
            "cassie",
            "Add an internal note to ticket 1: the customer called back.",
            &["comment_on_ticket"],
            vec![("ticket", equal(json!(1))), ("public", equal(json!(false)))],
        ),
        ask(
            "cassie",
            "What is the sentiment of this message: 'This is the worst service I have ever had!'",
            &["analyse_sentiment"],
            vec![("text", Holding("worst service"))],
        ),
        ask(
            "cassie",
            "Draft a reply to ticket 1.",
            &["suggest_reply"],
            vec![("ticket", equal(json!(1)))],
        ),
    ]
}

fn matches(is: &Is, value: &Value) -> bool {
    match is {
        Is::Equal(expected) => match (expected.as_f64(), value.as_f64()) {
            (Some(a), Some(b)) => a == b,
            // A model may write a number as a string ("6", or "#1" for a ticket).
            (Some(a), None) => {
                let text = value.as_str().unwrap_or("").trim_start_matches('#');
                text.parse::<f64>().ok() == Some(a)
            }
            _ => expected == value,
        },
        Is::Holding(text) => value
            .as_str()
            .is_some_and(|v| v.to_lowercase().contains(&text.to_lowercase())),
    }
}

/// The verdict on one turn: why it failed, or None.
fn judge(request: &Request, turn: &Value) -> Option<String> {
    let Some(call) = turn["tool_calls"].get(0) else {
        return Some(format!(
            "no tool call; said {:?}",
            shorten(turn["message"]["content"].as_str().unwrap_or(""))
        ));
    };
    let tool = call["tool"].as_str().unwrap_or("");
    if !request.tools.contains(&tool) {
        return Some(format!("called {tool}"));
    }
    for (name, is) in &request.arguments {
        if !matches(is, &call["input"][name]) {
            return Some(format!("{tool}: {name} = {}", call["input"][name]));
        }
    }
    let answer = turn["message"]["content"].as_str().unwrap_or("").trim();
    if answer.is_empty() || answer.starts_with(['{', '[', '`']) {
        return Some(format!(
            "answer after the tool is not prose: {:?}",
            shorten(answer)
        ));
    }
    None
}

fn shorten(text: &str) -> String {
    text.chars().take(80).collect()
}

use agenthost_tests::local_model_file as model_file;

/// A streamed completion: (seconds to the first text, text chunks, seconds after it).
async fn streamed(server: &TestServer, key: &str, message: &str) -> (f64, usize, f64) {
    let started = Instant::now();
    let mut response = server
        .request(Method::POST, "/v1/chat/completions", key)
        .json(&json!({"model": "dexter", "stream": true, "max_tokens": 64,
                      "messages": [{"role": "user", "content": message}]}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let (mut first, mut chunks, mut buffer) = (None, 0, String::new());
    while let Some(bytes) = response.chunk().await.unwrap() {
        buffer.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(end) = buffer.find('\n') {
            let line: String = buffer.drain(..=end).collect();
            let Some(data) = line.trim().strip_prefix("data:") else {
                continue;
            };
            let Ok(event) = serde_json::from_str::<Value>(data.trim()) else {
                continue;
            };
            if event["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
            {
                first.get_or_insert_with(Instant::now);
                chunks += 1;
            }
        }
    }
    let first = first.unwrap_or_else(Instant::now);
    (
        (first - started).as_secs_f64(),
        chunks,
        first.elapsed().as_secs_f64(),
    )
}

async fn install(server: &TestServer, name: &str) {
    agenthost_tests::aura_eval::install(server, name, name, json!({}), true).await;
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let only: usize = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX);
    let file = model_file();
    let server = TestServer::start_with(move |config| {
        config.llm = "local".into();
        config.llm_base_url = None;
        config.llm_model_file = file;
        config.request_timeout = Duration::from_secs(1800);
        config.chat_turn_timeout = Duration::from_secs(1800);
    })
    .await;
    server.install_dexter().await;
    install(&server, "cassie").await;
    let (_, key) = server.create_workspace("bench-local").await;
    // Speed: the first request loads the model and reads Dexter's whole prompt; the
    // second finds that prompt in the cache.
    let (cold, _, _) = streamed(&server, &key, "Say hello to the team in one sentence.").await;
    let (warm, chunks, writing) = streamed(
        &server,
        &key,
        "Write a short poem about the sea, at least eight lines.",
    )
    .await;
    println!("local model speed (Dexter's prompt, /v1/chat/completions streamed):");
    println!("  first text, model load and whole prompt: {cold:.1} s");
    println!("  first text, prompt cached:               {warm:.1} s");
    println!(
        "  writing: {chunks} chunks in {writing:.1} s = {:.1} chunks/s",
        chunks as f64 / writing.max(1e-9)
    );

    // Something for Cassie's tools to find: two help articles and a ticket. Made after
    // the speed figures: the ticket's enrichment asks the model too, and its prompt
    // would take the cache Dexter's prompt sits in.
    let articles = json!([
        {"title": "How refunds work", "status": "published",
         "body": "## Refunds\n\nAsk for a refund within 30 days from Billing > Invoices. It reaches your card in 5 to 10 days."},
        {"title": "Reset your password", "status": "published",
         "body": "## Reset\n\nChoose *Forgot password* on the sign-in page; the link we email is valid for one hour."},
    ]);
    let response = server
        .send(&key, Method::POST, "/api/kb/import", Some(articles))
        .await;
    assert!(response.status().is_success(), "{}", response.status());
    let ticket = json!({"subject": "Charged twice", "description": "My card was billed twice for one invoice.",
                        "requester": {"email": "ben@example.com", "name": "Ben"}});
    let response = server
        .send(&key, Method::POST, "/api/tickets", Some(ticket))
        .await;
    assert!(response.status().is_success(), "{}", response.status());

    let requests: Vec<Request> = requests().into_iter().take(only).collect();
    println!("tool calling: {} requests", requests.len());
    let (mut passed, mut seconds) = (0, Vec::new());
    for request in &requests {
        let started = Instant::now();
        let response = server
            .request(
                Method::POST,
                &format!("/api/agents/{}/chat", request.agent),
                &key,
            )
            .json(&json!({"message": request.message}))
            .send()
            .await
            .unwrap();
        let turn: Value = response.json().await.unwrap_or(Value::Null);
        let took = started.elapsed().as_secs_f64();
        seconds.push(took);
        let verdict = judge(request, &turn);
        passed += usize::from(verdict.is_none());
        println!(
            "{} {:<7} {:>6.1} s  {}{}",
            if verdict.is_none() { "PASS" } else { "FAIL" },
            request.agent,
            took,
            shorten(request.message),
            verdict.map(|why| format!("  ({why})")).unwrap_or_default()
        );
    }
    seconds.sort_by(f64::total_cmp);
    let p50 = seconds.get(seconds.len() / 2).copied().unwrap_or(0.0);
    println!(
        "score: {passed}/{} (right tool, right arguments, prose after); turn p50 {p50:.1} s",
        requests.len()
    );
    server.stop().await;
}
