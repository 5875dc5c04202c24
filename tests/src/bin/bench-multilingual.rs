//! Multilingual benchmark (issue 25): all-MiniLM-L6-v2 against multilingual-e5-small
//! (the default), side by side, on the embedding alone (the vector arm of search):
//!
//! - retrieval recall@1, recall@5 and nDCG@10 (one relevant item per query) on our
//!   hand-written German set (tests/data/multilingual/faq_de.tsv): German paraphrase ->
//!   German question, English paraphrase -> German question (cross-lingual), German
//!   question -> English paraphrase (the reverse); and on CLINC150 (English, public:
//!   tests/data/clinc150), each query against one text per intent;
//! - German sentiment accuracy (tests/data/multilingual/sentiment_de.tsv): VADER alone
//!   against the anchor method with e5;
//! - speed (ms per text, one at a time and in batches of 32) and memory (RSS growth
//!   when the model loads, and the process's peak).
//!
//! Needs `make setup`. Run: `cargo run --release -p agenthost-tests --bin bench-multilingual`.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use agenthost::embeddings::bert::BertEncoder;
use agenthost::embeddings::{LocalModel, Role};
use agenthost_support::sentiment::{self, Label, anchors};

fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(path)
}

fn rows(path: &str) -> Vec<Vec<String>> {
    std::fs::read_to_string(data(path))
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| line.split('\t').map(str::to_string).collect())
        .collect()
}

/// VmRSS or VmHWM of this process, in MB.
fn memory(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    let kb: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb / 1024.0
}

struct Model {
    model: LocalModel,
    encoder: BertEncoder,
}

impl Model {
    fn embed(&self, role: Role, texts: &[String]) -> Vec<Vec<f32>> {
        let prefix = self.model.prefix(role);
        let texts: Vec<String> = texts.iter().map(|t| format!("{prefix}{t}")).collect();
        self.encoder.embed(&texts).unwrap()
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// recall@1, recall@5, nDCG@10 of queries whose relevant corpus item is `relevant[i]`.
fn retrieval(queries: &[Vec<f32>], corpus: &[Vec<f32>], relevant: &[usize]) -> (f64, f64, f64) {
    let (mut r1, mut r5, mut ndcg) = (0.0, 0.0, 0.0);
    for (query, want) in queries.iter().zip(relevant) {
        let target = dot(query, &corpus[*want]);
        // Rank = 1 + the items scoring higher than the relevant one.
        let rank = 1 + corpus.iter().filter(|c| dot(query, c) > target).count();
        r1 += f64::from(u8::from(rank == 1));
        r5 += f64::from(u8::from(rank <= 5));
        if rank <= 10 {
            ndcg += 1.0 / (rank as f64 + 1.0).log2();
        }
    }
    let n = queries.len() as f64;
    (r1 / n, r5 / n, ndcg / n)
}

fn main() {
    let faq = rows("multilingual/faq_de.tsv");
    let german: Vec<String> = faq.iter().map(|r| r[1].clone()).collect();
    let german_paraphrase: Vec<String> = faq.iter().map(|r| r[2].clone()).collect();
    let english_paraphrase: Vec<String> = faq.iter().map(|r| r[3].clone()).collect();
    let identity: Vec<usize> = (0..faq.len()).collect();

    let clinc_articles: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(data("clinc150/articles.json")).unwrap()).unwrap();
    let clinc_queries: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(data("clinc150/queries.json")).unwrap()).unwrap();
    let intents: Vec<&str> = clinc_articles
        .iter()
        .map(|a| a["intent"].as_str().unwrap())
        .collect();
    let clinc_corpus: Vec<String> = clinc_articles
        .iter()
        .map(|a| {
            let examples: Vec<&str> = a["examples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e.as_str().unwrap())
                .collect();
            format!("{}\n{}", a["title"].as_str().unwrap(), examples.join("\n"))
        })
        .collect();
    let clinc_texts: Vec<String> = clinc_queries
        .iter()
        .map(|q| q["query"].as_str().unwrap().to_string())
        .collect();
    let clinc_relevant: Vec<usize> = clinc_queries
        .iter()
        .map(|q| {
            intents
                .iter()
                .position(|i| *i == q["intent"].as_str().unwrap())
                .unwrap()
        })
        .collect();

    let sentiment_rows = rows("multilingual/sentiment_de.tsv");

    println!(
        "== multilingual embeddings: all-MiniLM-L6-v2 vs multilingual-e5-small (candle, CPU, release)"
    );
    println!(
        "{:<22} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8}",
        "model",
        "de R@1",
        "R@5",
        "nDCG10",
        "en>de R@1",
        "R@5",
        "nDCG10",
        "de>en R@1",
        "R@5",
        "nDCG10",
        "clinc R@1",
        "R@5",
        "nDCG10"
    );
    let mut speed = Vec::new();
    for model in [LocalModel::MiniLm, LocalModel::MultilingualE5Small] {
        let dir = match model {
            LocalModel::MiniLm => agenthost_tests::model_dir(),
            LocalModel::MultilingualE5Small => agenthost_tests::multilingual_model_dir(),
        };
        let before = memory("VmRSS:");
        let started = Instant::now();
        let encoder = model.load(&dir).unwrap();
        let load = started.elapsed();
        let grown = memory("VmRSS:") - before;
        let m = Model { model, encoder };

        // Retrieval: corpus items are passages, questions are queries (e5's prefixes).
        let de_corpus = m.embed(Role::Passage, &german);
        let de_queries = m.embed(Role::Query, &german_paraphrase);
        let en_queries = m.embed(Role::Query, &english_paraphrase);
        let en_corpus = m.embed(Role::Passage, &english_paraphrase);
        let de_as_queries = m.embed(Role::Query, &german);
        let de = retrieval(&de_queries, &de_corpus, &identity);
        let en_de = retrieval(&en_queries, &de_corpus, &identity);
        let de_en = retrieval(&de_as_queries, &en_corpus, &identity);
        let clinc = retrieval(
            &m.embed(Role::Query, &clinc_texts),
            &m.embed(Role::Passage, &clinc_corpus),
            &clinc_relevant,
        );
        println!(
            "{:<22} {:>8.2} {:>8.2} {:>8.2} | {:>8.2} {:>8.2} {:>8.2} | {:>8.2} {:>8.2} {:>8.2} | {:>8.3} {:>8.3} {:>8.3}",
            model.name(),
            de.0,
            de.1,
            de.2,
            en_de.0,
            en_de.1,
            en_de.2,
            de_en.0,
            de_en.1,
            de_en.2,
            clinc.0,
            clinc.1,
            clinc.2
        );

        // Speed on the German FAQ questions (short texts).
        let started = Instant::now();
        for text in &german {
            m.embed(Role::Query, std::slice::from_ref(text));
        }
        let single = started.elapsed().as_secs_f64() * 1000.0 / german.len() as f64;
        let batch_texts: Vec<String> = german.iter().chain(&german_paraphrase).cloned().collect();
        let started = Instant::now();
        m.embed(Role::Query, &batch_texts[..32]);
        let batched = started.elapsed().as_secs_f64() * 1000.0 / 32.0;
        speed.push((model, load, grown, single, batched));

        if model == LocalModel::MultilingualE5Small {
            // Sentiment: VADER's compound sign against the anchors with e5.
            let texts: Vec<String> = sentiment_rows.iter().map(|r| r[1].clone()).collect();
            let anchors_text =
                |list: &[&str]| -> Vec<String> { list.iter().map(|s| s.to_string()).collect() };
            let positive = m.embed(Role::Query, &anchors_text(&anchors::POSITIVE));
            let negative = m.embed(Role::Query, &anchors_text(&anchors::NEGATIVE));
            let vectors = m.embed(Role::Query, &texts);
            let (mut vader_right, mut anchors_right) = (0, 0);
            for (row, vector) in sentiment_rows.iter().zip(&vectors) {
                let want = if row[0] == "positive" {
                    Label::Positive
                } else {
                    Label::Negative
                };
                let vader = sentiment::analyze(&row[1], None).label;
                let by_anchors = sentiment::label(anchors::score(vector, &positive, &negative));
                vader_right += usize::from(vader == want);
                anchors_right += usize::from(by_anchors == want);
            }
            let n = sentiment_rows.len() as f64;
            println!();
            println!(
                "== German sentiment ({} hand-written messages, 20 negative, 20 positive; label accuracy)",
                sentiment_rows.len()
            );
            println!("VADER (English lexicon) {:.2}", vader_right as f64 / n);
            println!("anchors with e5         {:.2}", anchors_right as f64 / n);
        }
        drop(m);
    }
    println!();
    println!(
        "== speed and memory (short German questions; RSS growth at load; peak RSS of the whole run)"
    );
    for (model, load, grown, single, batched) in speed {
        println!(
            "{:<22} load {:>5.2} s, +{:>4.0} MB RSS, {:>5.1} ms/text alone, {:>5.1} ms/text in batches of 32",
            model.name(),
            load.as_secs_f64(),
            grown,
            single,
            batched
        );
    }
    println!("peak RSS {:.0} MB", memory("VmHWM:"));
}
