//! One test per VADER rule, each against the sum the rule should produce from the
//! lexicon's valences (good 1.9, bad -2.5, ok 1.2, kind 2.4).

use super::lexicon::{BOOST, CAPS_BOOST, NEGATION};
use super::vader::normalize;
use super::*;

const GOOD: f64 = 1.9;
const BAD: f64 = -2.5;

fn compound(text: &str) -> f64 {
    score(text).compound
}

#[track_caller]
fn assert_close(actual: f64, expected: f64) {
    assert!((actual - expected).abs() < 1e-12, "{actual} != {expected}");
}

#[test]
fn a_rated_word_alone() {
    assert_close(compound("The book was good."), normalize(GOOD));
    assert_close(compound("The book was bad."), normalize(BAD));
    let s = score("The book was good.");
    // 3 neutral words weigh 1 each, "good" 1 + 1.9.
    assert_close(s.positive, 2.9 / 5.9);
    assert_close(s.neutral, 3.0 / 5.9);
    assert_eq!(s.negative, 0.0);
}

#[test]
fn no_words_no_scores() {
    assert_eq!(score(""), Scores::default());
    assert_eq!(score("  \t "), Scores::default());
    let s = score("The table is brown");
    assert_eq!((s.compound, s.neutral), (0.0, 1.0));
}

#[test]
fn negation_flips_and_weakens() {
    assert_close(
        compound("The book was not good"),
        normalize(GOOD * NEGATION),
    );
    assert_close(compound("The book isn't good"), normalize(GOOD * NEGATION));
    assert_close(compound("The book ain't good"), normalize(GOOD * NEGATION));
    // Up to three words back, through a booster.
    assert_close(
        compound("not very good"),
        normalize((GOOD + BOOST) * NEGATION),
    );
    assert_close(
        compound("never really that good"),
        normalize((GOOD + BOOST * 0.95) * NEGATION),
    );
}

#[test]
fn no_negates_the_next_rated_word_instead_of_counting() {
    assert_close(compound("no good"), normalize(GOOD * NEGATION));
    assert_close(compound("no"), normalize(-1.2));
}

#[test]
fn boosters_and_dampeners() {
    assert_close(compound("The book was very good"), normalize(GOOD + BOOST));
    assert_close(
        compound("The book was barely good"),
        normalize(GOOD - BOOST),
    );
    assert_close(compound("The book was very bad"), normalize(BAD - BOOST));
    // Weaker with distance.
    assert_close(
        compound("very very good"),
        normalize(GOOD + BOOST + BOOST * 0.95),
    );
    assert_close(
        compound("The book was kind of good"),
        normalize(GOOD - BOOST),
    );
}

#[test]
fn capitals_emphasise_against_lower_case() {
    assert_close(compound("The book was GOOD"), normalize(GOOD + CAPS_BOOST));
    assert_close(
        compound("The book was VERY good"),
        normalize(GOOD + BOOST + CAPS_BOOST),
    );
    // Shouting throughout carries no emphasis.
    assert_close(compound("THE BOOK WAS GOOD"), normalize(GOOD));
}

#[test]
fn but_shifts_weight_to_what_follows() {
    let v = compound("The food was good, but the service was bad.");
    assert_close(v, normalize(GOOD * 0.5 + BAD * 1.5));
    // The reference finds each value by its first equal in the list: kind (2.4) halved
    // becomes 1.2 and then takes the scaling meant for the last "ok".
    assert_close(compound("ok kind but ok"), normalize(0.6 + 0.6 + 1.2));
}

#[test]
fn exclamation_and_question_marks_amplify() {
    assert_close(compound("good!"), normalize(GOOD + 0.292));
    assert_close(compound("good!!!!!!!"), normalize(GOOD + 4.0 * 0.292));
    assert_close(compound("bad!"), normalize(BAD - 0.292));
    assert_close(compound("good?"), normalize(GOOD));
    assert_close(compound("good??"), normalize(GOOD + 2.0 * 0.18));
    assert_close(compound("good?????"), normalize(GOOD + 0.96));
    let plain = score("good");
    let loud = score("good!!!");
    assert!(loud.positive > plain.positive || plain.positive == 1.0);
}

#[test]
fn least_negates_unless_at_least() {
    assert_close(compound("the least good"), normalize(GOOD * NEGATION));
    assert_close(compound("at least good"), normalize(GOOD));
    // "very" two words back still boosts.
    assert_close(
        compound("the very least good"),
        normalize(GOOD + BOOST * 0.95),
    );
}

#[test]
fn idioms_override_their_words() {
    assert_close(compound("the food is the shit"), normalize(3.0));
    assert_close(compound("we met at the bus stop"), 0.0);
    assert!(compound("It was never so good") > compound("It was so good"));
}

#[test]
fn emoji_read_as_their_description() {
    assert_close(compound("😀"), compound("grinning face"));
    assert_close(compound("thanks😀"), compound("thanks grinning face"));
    assert!(compound("my order 😠") < -0.05);
}

#[test]
fn labels_use_vader_thresholds() {
    assert_eq!(label(0.05), Label::Positive);
    assert_eq!(label(0.049), Label::Neutral);
    assert_eq!(label(-0.049), Label::Neutral);
    assert_eq!(label(-0.05), Label::Negative);
}

#[test]
fn lexicon_only_confidence_reflects_evidence() {
    let none = analyze("The parcel arrived on Tuesday", None);
    assert_eq!(
        (none.method, none.label, none.confidence),
        (Method::Lexicon, Label::Neutral, 0.0)
    );
    let strong = analyze("Terrible, awful, horrible service!!", None);
    assert_eq!(strong.label, Label::Negative);
    assert!(strong.confidence > 0.7, "{}", strong.confidence);
    let weak = analyze("The parcel arrived on Tuesday, fine", None);
    assert!(weak.confidence < strong.confidence);
    assert_eq!(analyze("good", Some(f64::NAN)).method, Method::Lexicon);
}

#[test]
fn hybrid_weighs_the_llm_more_and_measures_agreement() {
    let text = "The book was good";
    let c = normalize(GOOD);
    let agree = analyze(text, Some(0.5));
    assert_eq!(agree.method, Method::Hybrid);
    assert_close(agree.score, 0.4 * c + 0.6 * 0.5);
    assert_close(agree.confidence, 1.0 - (c - 0.5).abs() / 2.0);
    assert_eq!(agree.llm, Some(0.5));

    let disagree = analyze(text, Some(-0.9));
    assert_eq!(disagree.label, Label::Negative);
    assert_close(disagree.confidence, (1.0 - (c + 0.9) / 2.0) / 2.0);
    assert!(disagree.confidence < 0.5);

    let clamped = analyze(text, Some(7.0));
    assert_eq!(clamped.llm, Some(1.0));
}

#[test]
fn serialises_snake_case() {
    let json = serde_json::to_value(analyze("good", Some(0.2))).unwrap();
    assert_eq!(json["label"], "positive");
    assert_eq!(json["method"], "hybrid");
    assert!(json["lexicon"]["compound"].is_number());
    assert_eq!(serde_json::to_value(Label::Neutral).unwrap(), "neutral");
}
