//! Aura's twenty-request evaluation (tests/src/aura_eval.rs) against the fake provider:
//! the calls a correct model makes, replayed, must each end in the result the request
//! asked for. A regression check of the tools' contracts (names, argument shapes,
//! approvals, what the answers expose); `eval-aura` runs the same cases on a real model.

use agenthost_tests::TestServer;
use agenthost_tests::aura_eval::{cases, prepare, run_case, script};
use agenthost_tests::fake_openai::FakeOpenAi;

#[tokio::test]
async fn every_request_of_the_evaluation_ends_in_its_result_with_the_scripted_calls() {
    let fake = FakeOpenAi::start().await;
    let base = fake.base_url.clone();
    let server = TestServer::start_with(move |config| {
        config.llm_base_url = Some(base);
        config.llm_max_retries = 0;
    })
    .await;
    let key = prepare(&server).await;
    let cases = cases();
    assert_eq!(cases.len(), 20);
    let mut failed = Vec::new();
    for case in &cases {
        script(&fake, &server, &key, case).await;
        let outcome = run_case(&server, &key, case).await;
        if !outcome.passed {
            failed.push(format!(
                "{}: {} (tools {:?})",
                outcome.name, outcome.why, outcome.tools
            ));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}
