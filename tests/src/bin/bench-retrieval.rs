//! Retrieval quality of the knowledge base's three search modes (issue 19), on two
//! sets, each against a textbook BM25 computed here over the same texts:
//!
//! - `support-kb`: our help centre (tests/data/support-kb, 54 articles, 155 graded
//!   queries, written by us);
//! - `clinc150`: real user questions we did not write (tests/data/clinc150, CLINC150,
//!   CC BY 3.0): one article per intent made of train utterances, 1,000 test queries.
//!
//! Per mode: R@1 and R@5 (the share of queries with an article that answers them,
//! grade 2, first or in the top five) and nDCG@10 (gains 2^grade - 1), at article
//! level. `BENCH_RETRIEVAL_DUMP=<file>` also writes each query's full-text and vector
//! candidates (40 each, the lists hybrid fuses) as JSON lines, for tuning the fusion
//! offline.
//!
//! Run: `cargo run --release -p agenthost-tests --bin bench-retrieval` (`make bench`).
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use agenthost_tests::TestServer;
use reqwest::Method;
use serde_json::{Value, json};

const MODES: [&str; 3] = ["full_text", "vector", "hybrid"];
/// Chunks asked for per search: as many as hybrid fuses from each arm (so hybrid runs
/// as it does for the default k), enough for ten distinct articles.
const K: u32 = 40;
/// Candidates hybrid fuses per arm (`CANDIDATES` in host/src/vector/text_search.rs).
const CANDIDATES: u32 = 40;

/// One set: articles (slug, title, body) and queries with graded relevant slugs.
struct Set {
    name: &'static str,
    articles: Vec<(String, String, String)>,
    queries: Vec<(String, HashMap<String, u64>)>,
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")
}

fn read_json(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(data_dir().join(path)).unwrap()).unwrap()
}

fn support_kb() -> Set {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(data_dir().join("support-kb/articles"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    let articles = paths
        .iter()
        .map(|path| {
            let markdown = std::fs::read_to_string(path).unwrap();
            let (fields, body) = agenthost::support::kb::front_matter(&markdown);
            let field = |name: &str| {
                fields
                    .iter()
                    .find(|(k, _)| k == name)
                    .and_then(|(_, v)| v.as_str().map(str::to_string))
                    .unwrap()
            };
            (field("slug"), field("title"), body.to_string())
        })
        .collect();
    let queries = read_json("support-kb/queries.json")
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            let relevant = q["relevant"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(slug, grade)| (slug.clone(), grade.as_u64().unwrap()))
                .collect();
            (q["query"].as_str().unwrap().to_string(), relevant)
        })
        .collect();
    Set {
        name: "support-kb",
        articles,
        queries,
    }
}

fn clinc150() -> Set {
    let slug = |intent: &str| intent.replace('_', "-");
    let articles = read_json("clinc150/articles.json")
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let lines: Vec<&str> = a["examples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e.as_str().unwrap())
                .collect();
            (
                slug(a["intent"].as_str().unwrap()),
                a["title"].as_str().unwrap().to_string(),
                lines.join("\n\n"),
            )
        })
        .collect();
    let queries = read_json("clinc150/queries.json")
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            let relevant = HashMap::from([(slug(q["intent"].as_str().unwrap()), 2)]);
            (q["query"].as_str().unwrap().to_string(), relevant)
        })
        .collect();
    Set {
        name: "clinc150",
        articles,
        queries,
    }
}

/// A textbook BM25 (k1 1.2, b 0.75, Robertson-Spärck Jones IDF with +1) over whole
/// articles: lower-cased alphanumeric tokens, a small stop-word list, no stemming.
struct Bm25 {
    docs: Vec<HashMap<String, f64>>,
    lengths: Vec<f64>,
    df: HashMap<String, f64>,
    avg_length: f64,
}

const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how",
    "i", "in", "is", "it", "me", "my", "of", "on", "or", "that", "the", "this", "to", "was",
    "what", "when", "where", "which", "who", "why", "will", "with", "you", "your",
];

fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .filter(|t| !STOP_WORDS.contains(&t.as_str()))
        .collect()
}

impl Bm25 {
    fn new(texts: &[String]) -> Bm25 {
        let mut docs = Vec::new();
        let mut lengths = Vec::new();
        let mut df: HashMap<String, f64> = HashMap::new();
        for text in texts {
            let mut tf: HashMap<String, f64> = HashMap::new();
            let words = tokens(text);
            for word in &words {
                *tf.entry(word.clone()).or_default() += 1.0;
            }
            for word in tf.keys() {
                *df.entry(word.clone()).or_default() += 1.0;
            }
            lengths.push(words.len() as f64);
            docs.push(tf);
        }
        let avg_length = lengths.iter().sum::<f64>() / lengths.len() as f64;
        Bm25 {
            docs,
            lengths,
            df,
            avg_length,
        }
    }

    /// Document indexes, best first (only those sharing a word with the query).
    fn rank(&self, query: &str) -> Vec<usize> {
        let (k1, b) = (1.2, 0.75);
        let n = self.docs.len() as f64;
        let words: HashSet<String> = tokens(query).into_iter().collect();
        let mut scored: Vec<(usize, f64)> = self
            .docs
            .iter()
            .enumerate()
            .filter_map(|(i, tf)| {
                let score: f64 = words
                    .iter()
                    .filter_map(|w| Some((tf.get(w)?, self.df[w])))
                    .map(|(tf, df)| {
                        let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                        let norm = k1 * (1.0 - b + b * self.lengths[i] / self.avg_length);
                        idf * tf * (k1 + 1.0) / (tf + norm)
                    })
                    .sum();
                (score > 0.0).then_some((i, score))
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.into_iter().map(|(i, _)| i).collect()
    }
}

#[derive(Default, Clone, Copy)]
struct Totals {
    r1: f64,
    r5: f64,
    ndcg: f64,
    n: usize,
}

impl Totals {
    fn add(&mut self, ranked: &[String], relevant: &HashMap<String, u64>) {
        let answers = |n: usize| {
            ranked
                .iter()
                .take(n)
                .any(|s| relevant.get(s).copied() == Some(2))
        };
        self.r1 += f64::from(u8::from(answers(1)));
        self.r5 += f64::from(u8::from(answers(5)));
        let gain = |g: u64| 2f64.powi(g as i32) - 1.0;
        let dcg: f64 = ranked
            .iter()
            .take(10)
            .enumerate()
            .map(|(i, s)| gain(*relevant.get(s).unwrap_or(&0)) / (i as f64 + 2.0).log2())
            .sum();
        let mut ideal: Vec<u64> = relevant.values().copied().collect();
        ideal.sort_unstable_by(|a, b| b.cmp(a));
        let idcg: f64 = ideal
            .iter()
            .take(10)
            .enumerate()
            .map(|(i, g)| gain(*g) / (i as f64 + 2.0).log2())
            .sum();
        self.ndcg += if idcg > 0.0 { dcg / idcg } else { 0.0 };
        self.n += 1;
    }

    fn row(&self, name: &str) -> String {
        let n = self.n as f64;
        format!(
            "{name:<16} {:>6.3} {:>6.3} {:>8.3}",
            self.r1 / n,
            self.r5 / n,
            self.ndcg / n
        )
    }
}

async fn wait_idle(server: &TestServer, key: &str) {
    loop {
        let body: Value = server
            .send(key, Method::GET, "/api/kb/index", None)
            .await
            .json()
            .await
            .unwrap();
        if body["idle"] == true {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn search(server: &TestServer, key: &str, query: &str, mode: &str, k: u32) -> Vec<Value> {
    let response = server
        .send(
            key,
            Method::POST,
            "/api/kb/search",
            Some(json!({ "query": query, "mode": mode, "k": k })),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{query}: {mode}: {body}");
    body["results"].as_array().unwrap().clone()
}

fn distinct_slugs(results: &[Value]) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for r in results {
        let slug = r["slug"].as_str().unwrap().to_string();
        if !seen.contains(&slug) {
            seen.push(slug);
        }
    }
    seen
}

/// Median milliseconds of `runs` POSTs of `body` to `path`.
async fn median_ms(server: &TestServer, key: &str, path: &str, body: &Value, runs: usize) -> f64 {
    let mut samples = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let response = server
            .send(key, Method::POST, path, Some(body.clone()))
            .await;
        assert!(response.status().is_success(), "{path}");
        samples.push(started.elapsed().as_secs_f64() * 1e3);
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// What a long or repetitive query costs against an ordinary one (issue 19: 1,000
/// repeated words took 7.7 s of database time, a 3,999-character question 4.3 s).
async fn bounded_input(server: &TestServer, key: &str) {
    let ordinary = "How do I get a refund?";
    let repeated = "refund ".repeat(570);
    let distinct: String = tokens(
        &std::fs::read_to_string(data_dir().join("support-kb/articles/how-refunds-work.md"))
            .unwrap(),
    )
    .into_iter()
    .fold(String::new(), |mut text, word| {
        if text.len() + word.len() < 3990 && !text.split(' ').any(|w| w == word) {
            text.push(' ');
            text.push_str(&word);
        }
        text
    });
    println!("\n== bounded input (median of 5, ms; ratio to the ordinary query)");
    for mode in ["full_text", "hybrid"] {
        let body = |q: &str| json!({ "query": q, "mode": mode, "k": 10 });
        let base = median_ms(server, key, "/api/kb/search", &body(ordinary), 5).await;
        let long = median_ms(server, key, "/api/kb/search", &body(&repeated), 5).await;
        let many = median_ms(server, key, "/api/kb/search", &body(&distinct), 5).await;
        println!(
            "search {mode:<10} ordinary {base:.1}  one word x570 {long:.1} ({:.1}x)  {} distinct words {many:.1} ({:.1}x)",
            long / base,
            distinct.split_whitespace().count(),
            many / base
        );
    }
    let question = |q: String| json!({ "question": q });
    let base = median_ms(server, key, "/api/kb/answer", &question(ordinary.into()), 5).await;
    let long_question: String = format!(
        "{ordinary} {}",
        "Please explain how refunds work. ".repeat(120)
    )
    .chars()
    .take(3999)
    .collect();
    let long = median_ms(server, key, "/api/kb/answer", &question(long_question), 5).await;
    println!(
        "answer ordinary {base:.1}  3,999 characters {long:.1} ({:.1}x)",
        long / base
    );
}

async fn measure(server: &TestServer, set: &Set, dump: &mut Option<std::fs::File>) {
    let (_, key) = server.create_workspace(set.name).await;
    let items: Vec<Value> = set
        .articles
        .iter()
        .map(|(slug, title, body)| {
            json!({ "slug": slug, "title": title, "body": body, "status": "published" })
        })
        .collect();
    let started = Instant::now();
    let response = server
        .send(
            &key,
            Method::POST,
            "/api/kb/import",
            Some(Value::Array(items)),
        )
        .await;
    assert!(response.status().is_success());
    wait_idle(server, &key).await;
    let indexed = started.elapsed().as_secs_f64();

    let texts: Vec<String> = set
        .articles
        .iter()
        .map(|(_, title, body)| format!("{title}\n\n{body}"))
        .collect();
    let reference = Bm25::new(&texts);
    let mut totals: HashMap<&str, Totals> = HashMap::new();
    let started = Instant::now();
    for (query, relevant) in &set.queries {
        let ranked: Vec<String> = reference
            .rank(query)
            .into_iter()
            .map(|i| set.articles[i].0.clone())
            .collect();
        totals
            .entry("bm25 reference")
            .or_default()
            .add(&ranked, relevant);
        for mode in MODES {
            let results = search(server, &key, query, mode, K).await;
            totals
                .entry(mode)
                .or_default()
                .add(&distinct_slugs(&results), relevant);
        }
        if let Some(file) = dump {
            let mut arms = serde_json::Map::new();
            for mode in ["full_text", "vector"] {
                let candidates = search(server, &key, query, mode, CANDIDATES).await;
                let list: Vec<Value> = candidates
                    .iter()
                    .map(|r| json!([r["chunk_id"], r["slug"], r["score"]]))
                    .collect();
                arms.insert(mode.to_string(), Value::Array(list));
            }
            let line =
                json!({ "set": set.name, "query": query, "relevant": relevant, "arms": arms });
            writeln!(file, "{line}").unwrap();
        }
    }
    println!(
        "\n== {}: {} articles (indexed in {indexed:.1} s), {} queries ({:.1} s for every mode)",
        set.name,
        set.articles.len(),
        set.queries.len(),
        started.elapsed().as_secs_f64()
    );
    println!("{:<16} {:>6} {:>6} {:>8}", "arm", "R@1", "R@5", "nDCG@10");
    for arm in ["bm25 reference", "full_text", "vector", "hybrid"] {
        println!("{}", totals[arm].row(arm));
    }
    if set.name == "support-kb" {
        bounded_input(server, &key).await;
    }
}

#[tokio::main]
async fn main() {
    // Errors of the server in this process (a failed search says why here).
    agenthost::telemetry::init("error", "text");
    let server = TestServer::start_with(|config| config.db_max_connections = 16).await;
    let mut dump =
        std::env::var_os("BENCH_RETRIEVAL_DUMP").map(|p| std::fs::File::create(p).unwrap());
    for set in [support_kb(), clinc150()] {
        measure(&server, &set, &mut dump).await;
    }
    server.stop().await;
}
