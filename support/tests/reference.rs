//! Holds our VADER to the reference implementation (vaderSentiment 3.3.2, installed by
//! `make setup` next to the lexicon the crate compiles in): every 10th text of each of
//! the four ground-truth sets of the paper, plus sentences that exercise each rule and
//! the edges of the Python string semantics.
//!
//! The reference rounds its output (compound to 4 decimals); we switch that rounding
//! off so differences far below the tolerance still show in the figures.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use agenthost_support::sentiment;

const TOLERANCE: f64 = 1e-4;
const REQUIRED_AGREEMENT: f64 = 0.995;
const SETS: [&str; 4] = [
    "tweets_GroundTruth.txt",
    "movieReviewSnippets_GroundTruth.txt",
    "amazonReviewSnippets_GroundTruth.txt",
    "nytEditorialSnippets_GroundTruth.txt",
];

const TRICKY: &[&str] = &[
    // The reference's own demonstration sentences.
    "VADER is smart, handsome, and funny.",
    "VADER is smart, handsome, and funny!",
    "VADER is very smart, handsome, and funny.",
    "VADER is VERY SMART, handsome, and FUNNY.",
    "VADER is VERY SMART, handsome, and FUNNY!!!",
    "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!",
    "VADER is not smart, handsome, nor funny.",
    "At least it isn't a horrible book.",
    "The book was only kind of good.",
    "The plot was good, but the characters are uncompelling and the dialog is not great.",
    "Today SUX!",
    "Today only kinda sux! But I'll get by, lol",
    "Make sure you :) or :D today!",
    "Catch utf-8 emoji such as 💘 and 💋 and 😁",
    "Not bad at all",
    "Sentiment analysis has never been good.",
    "Sentiment analysis has never been this good!",
    "With VADER, sentiment analysis is the shit!",
    "On the other hand, VADER is quite bad ass",
    "VADER is such a badass!",
    "Without a doubt, excellent idea.",
    "Roger Dodger is at least compelling as a variation on the theme.",
    "Roger Dodger is one of the least compelling variations on this theme.",
    "Not such a badass after all.",
    // Support messages.
    "My order arrived broken and nobody answers my emails!!!",
    "Thanks a lot, the refund came through quickly 😀",
    "I'm not unhappy with the service, but the delivery was a disaster.",
    "Is this a joke??? Third time I ask for an invoice????",
    "The app is okay I guess. Kind of slow, sort of ugly.",
    "NEVER buying here again. NEVER.",
    "ALL CAPS ALL THE TIME GREAT",
    "no no no, this is not what I ordered",
    "no problem, no worries, no hard feelings",
    "It was not the worst, nor the best.",
    "yeah right, as if that would work",
    "The new dashboard is to die for",
    "we waited at the bus stop for hours",
    "kiss of death for this product",
    "my heart is a beating heart for you",
    "without any doubt the best support team",
    "I hardly ever complain but this is absolutely terrible",
    "The least helpful answer, but at least it was fast",
    "ok kind but ok",
    "good, great but good bad bad",
    // Python string semantics: separators, title case, punctuation-only tokens.
    "good\u{1c}bad\u{1f}nice",
    "great\u{a0}job\u{3000}team",
    "ǅEMO GREAT demo",
    "ÉNORMOUS mistake, very ÉNORMOUS",
    "!!! ??? ... :-( :'( </3",
    "😡😡😡",
    "😠broken💔",
    "",
    "   ",
];

fn data_dir() -> PathBuf {
    PathBuf::from(env!("AGENTHOST_VADER_DATA"))
}

/// (rating, text) of every line of one ground-truth set.
fn ground_truth(dir: &Path, name: &str) -> Vec<(f64, String)> {
    let path = dir.join("ground_truth").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("{}: {err} (run `make setup`)", path.display()));
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let mut fields = line.splitn(3, '\t');
            let (_id, rating, text) = (fields.next(), fields.next(), fields.next());
            let rating = rating.and_then(|r| r.parse().ok()).expect(line);
            (rating, text.expect(line).to_owned())
        })
        .collect()
}

/// [compound, positive, negative, neutral] from the reference, unrounded.
fn reference(dir: &Path, texts: &[&str]) -> Vec<[f64; 4]> {
    const SCRIPT: &str = "\
import json, sys
import vaderSentiment.vaderSentiment as vader
vader.round = lambda x, digits=None: x
analyzer = vader.SentimentIntensityAnalyzer()
texts = json.loads(sys.stdin.buffer.read())
scores = [analyzer.polarity_scores(t) for t in texts]
json.dump([[s['compound'], s['pos'], s['neg'], s['neu']] for s in scores], sys.stdout)
";
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .env("PYTHONPATH", dir.join("python"))
        .env("PYTHONIOENCODING", "utf-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 (the reference runs in it)");
    let input = serde_json::to_vec(texts).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the reference failed: {}",
        output.status
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn agrees_with_the_reference_implementation() {
    let dir = data_dir();
    let sets: Vec<Vec<(f64, String)>> = SETS.iter().map(|s| ground_truth(&dir, s)).collect();
    let mut texts: Vec<&str> = TRICKY.to_vec();
    for set in &sets {
        texts.extend(set.iter().step_by(10).map(|(_, text)| text.as_str()));
    }
    let expected = reference(&dir, &texts);
    assert_eq!(expected.len(), texts.len());

    let mut mismatches = Vec::new();
    let mut exact = 0;
    for (text, want) in texts.iter().zip(&expected) {
        let got = sentiment::score(text);
        let got = [got.compound, got.positive, got.negative, got.neutral];
        let diff = got
            .iter()
            .zip(want)
            .map(|(g, w)| (g - w).abs())
            .fold(0.0, f64::max);
        if diff < 1e-12 {
            exact += 1;
        }
        if diff > TOLERANCE {
            mismatches.push((diff, *text, got, *want));
        }
    }
    mismatches.sort_by(|a, b| b.0.total_cmp(&a.0));
    let agreement = 1.0 - mismatches.len() as f64 / texts.len() as f64;
    let worst: Vec<String> = mismatches
        .iter()
        .take(10)
        .map(|(diff, text, got, want)| {
            format!("  {diff:.6}  {text:?}\n    ours {got:?}\n    ref  {want:?}")
        })
        .collect();
    println!(
        "{} texts, {} within {TOLERANCE} (compound and proportions), {exact} to 1e-12",
        texts.len(),
        texts.len() - mismatches.len()
    );
    assert!(
        agreement >= REQUIRED_AGREEMENT,
        "{} of {} texts differ from the reference by more than {TOLERANCE}; worst:\n{}",
        mismatches.len(),
        texts.len(),
        worst.join("\n")
    );
}
