//! Sentiment benchmark: our VADER (agenthost-support) against the reference
//! implementation (vaderSentiment 3.3.2) and the human ratings, over the full four
//! ground-truth sets of Hutto & Gilbert (ICWSM 2014). Per set:
//!
//! - agreement with the reference: share of compound scores within 1e-4, max |diff|
//!   (the reference's output rounding switched off, so the diff is the real one);
//! - Pearson r of compound against the mean human rating, and binary accuracy over the
//!   texts rated non-zero (compound >= 0 counts as positive), ours and the reference's;
//! - throughput, texts per second, ours and the reference's (one Python process scores
//!   every text; its start and the JSON exchange are not counted).
//!
//! Needs `make setup` (the data and the reference under $AGENTHOST_VADER_DIR).
//! Run: `cargo run --release -p agenthost-tests --bin bench-sentiment` (`make bench`).
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agenthost_support::sentiment;
use serde_json::Value;

const TOLERANCE: f64 = 1e-4;
const SETS: [(&str, &str); 4] = [
    ("tweets", "tweets_GroundTruth.txt"),
    ("movie reviews", "movieReviewSnippets_GroundTruth.txt"),
    ("amazon reviews", "amazonReviewSnippets_GroundTruth.txt"),
    ("nyt editorials", "nytEditorialSnippets_GroundTruth.txt"),
];
/// Our scoring is repeated until it has run this long, for a stable rate.
const MIN_TIMING: Duration = Duration::from_secs(2);

const REFERENCE: &str = "\
import json, sys, time
import vaderSentiment.vaderSentiment as vader
vader.round = lambda x, digits=None: x
analyzer = vader.SentimentIntensityAnalyzer()
texts = json.loads(sys.stdin.buffer.read())
started = time.perf_counter()
scores = [analyzer.polarity_scores(t)['compound'] for t in texts]
seconds = time.perf_counter() - started
json.dump({'seconds': seconds, 'compound': scores}, sys.stdout)
";

struct Set {
    name: &'static str,
    ratings: Vec<f64>,
    texts: Vec<String>,
}

fn vader_dir() -> PathBuf {
    match std::env::var_os("AGENTHOST_VADER_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.agenthost/vader"),
    }
}

fn load(dir: &std::path::Path, name: &'static str, file: &str) -> Set {
    let path = dir.join("ground_truth").join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("{}: {err} (run `make setup`)", path.display()));
    let (mut ratings, mut texts) = (Vec::new(), Vec::new());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields = line.splitn(3, '\t');
        let (_id, rating, text) = (fields.next(), fields.next(), fields.next());
        ratings.push(rating.unwrap().parse().unwrap());
        texts.push(text.unwrap().to_owned());
    }
    Set {
        name,
        ratings,
        texts,
    }
}

/// The reference's compound scores and the seconds it spent scoring.
fn reference(dir: &std::path::Path, texts: &[&str]) -> (Vec<f64>, f64) {
    let mut child = Command::new("python3")
        .args(["-c", REFERENCE])
        .env("PYTHONPATH", dir.join("python"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let input = serde_json::to_vec(texts).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the reference failed: {}",
        output.status
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    let compound = out["compound"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    (compound, out["seconds"].as_f64().unwrap())
}

fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    sxy / (sxx * syy).sqrt()
}

/// Share of the texts with a non-zero rating whose polarity the compound gets right.
fn accuracy(compound: &[f64], ratings: &[f64]) -> f64 {
    let rated: Vec<(f64, f64)> = compound
        .iter()
        .zip(ratings)
        .filter(|(_, r)| **r != 0.0)
        .map(|(c, r)| (*c, *r))
        .collect();
    let right = rated
        .iter()
        .filter(|(c, r)| (*c >= 0.0) == (*r > 0.0))
        .count();
    right as f64 / rated.len() as f64
}

fn main() {
    let dir = vader_dir();
    let sets: Vec<Set> = SETS
        .iter()
        .map(|(name, file)| load(&dir, name, file))
        .collect();
    let all: Vec<&str> = sets
        .iter()
        .flat_map(|s| s.texts.iter().map(String::as_str))
        .collect();

    let ours: Vec<f64> = all.iter().map(|t| sentiment::score(t).compound).collect();
    let started = Instant::now();
    let mut passes = 0;
    while passes == 0 || started.elapsed() < MIN_TIMING {
        for text in &all {
            std::hint::black_box(sentiment::score(std::hint::black_box(text)));
        }
        passes += 1;
    }
    let our_rate = (all.len() * passes) as f64 / started.elapsed().as_secs_f64();
    let (theirs, their_seconds) = reference(&dir, &all);
    let their_rate = all.len() as f64 / their_seconds;

    println!(
        "VADER sentiment: ours (agenthost-support) vs vaderSentiment 3.3.2, {}",
        dir.display()
    );
    println!(
        "{:<15} {:>6} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8}",
        "set", "texts", "agree", "max diff", "r ours", "r ref", "acc ours", "acc ref"
    );
    let mut offset = 0;
    for set in &sets {
        let n = set.texts.len();
        let (ours, theirs) = (&ours[offset..offset + n], &theirs[offset..offset + n]);
        offset += n;
        let diffs: Vec<f64> = ours
            .iter()
            .zip(theirs)
            .map(|(a, b)| (a - b).abs())
            .collect();
        let within = diffs.iter().filter(|d| **d <= TOLERANCE).count();
        let max = diffs.iter().copied().fold(0.0, f64::max);
        println!(
            "{:<15} {:>6} {:>9.4} {:>9.2e} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
            set.name,
            n,
            within as f64 / n as f64,
            max,
            pearson(ours, &set.ratings),
            pearson(theirs, &set.ratings),
            accuracy(ours, &set.ratings),
            accuracy(theirs, &set.ratings),
        );
    }
    println!(
        "throughput: ours {:.0} texts/s, reference {:.0} texts/s ({:.1}x), {} texts",
        our_rate,
        their_rate,
        our_rate / their_rate,
        all.len()
    );
}
