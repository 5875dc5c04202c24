//! Aura's evaluation on a real model (issue 21, docs/aura.md): the twenty requests of
//! `agenthost_tests::aura_eval`, each in a new conversation with every approval
//! granted, judged by what the workspace holds afterwards. Prints one line per
//! request and the score.
//!
//! Run: `cargo run --release -p agenthost-tests --bin eval-aura -- --llm-base-url
//! http://host:port/v1 --model NAME` (the key, if the endpoint needs one, in
//! `OPENAI_API_KEY`); `make eval-aura LLM_BASE_URL=... LLM_MODEL=...`. With
//! `--llm-base-url local` the embedded local model answers (docs/local-model.md; the
//! GGUF file from `make setup`, or `--model-file PATH`). `--only N` runs the first N.
#![allow(clippy::unwrap_used)]

use agenthost_tests::TestServer;
use agenthost_tests::aura_eval::{cases, prepare, run_case};

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let base = flag(&args, "--llm-base-url")
        .or_else(|| std::env::var("LLM_BASE_URL").ok().filter(|v| !v.is_empty()));
    let Some(base) = base else {
        eprintln!(
            "usage: eval-aura --llm-base-url URL --model NAME (an OpenAI-compatible endpoint)"
        );
        std::process::exit(2);
    };
    let model = flag(&args, "--model")
        .or_else(|| std::env::var("LLM_MODEL").ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "gpt-4o-mini".into());
    let api_key = std::env::var("OPENAI_API_KEY").ok();
    let model_file = flag(&args, "--model-file");
    let only: usize = flag(&args, "--only")
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX);
    let shown = if base == "local" {
        "the local model".to_string()
    } else {
        model.clone()
    };
    let server = TestServer::start_with(move |config| {
        if base == "local" {
            config.llm = "local".into();
            config.llm_base_url = None;
            if let Some(file) = model_file {
                config.llm_model_file = file.into();
            }
        } else {
            config.llm_base_url = Some(base);
            config.llm_default_model = model;
            config.llm_api_key = api_key;
        }
    })
    .await;
    let key = prepare(&server).await;
    let cases: Vec<_> = cases().into_iter().take(only).collect();
    let mut passed = 0;
    println!("Aura evaluation on {shown}: {} requests", cases.len());
    for case in &cases {
        let started = std::time::Instant::now();
        let outcome = run_case(&server, &key, case).await;
        passed += usize::from(outcome.passed);
        println!(
            "{} {:<32} {:>6.1} s  tools: {}{}",
            if outcome.passed { "PASS" } else { "FAIL" },
            outcome.name,
            started.elapsed().as_secs_f64(),
            outcome.tools.join(", "),
            if outcome.passed {
                String::new()
            } else {
                format!("  ({})", outcome.why)
            },
        );
    }
    println!(
        "score: {passed}/{} requests ended in a valid published result",
        cases.len()
    );
}
