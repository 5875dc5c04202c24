//! Knowledge gaps are grouped by what is asked, not by the names in the questions.
//! An embedding weighs a rare proper noun heavily: "Do you have an office in
//! Tbilisi?" and "How many people live in Tbilisi?" score 0.68 with all-MiniLM-L6-v2,
//! above the grouping threshold, while "office in Tbilisi" and "office in Lisbon"
//! score 0.33. So when two questions both name something, they are compared without
//! their names ("Do you have an office in ?" against "How many people live in ?":
//! 0.29; against "is there a office in I can visit": 0.73). A question that names
//! nothing is compared as asked, so a topic word that is a name in one phrasing and
//! not in another ("Antarctica", "antarctic research stations") still joins them.
//!
//! A name is a capitalised word (an upper-case letter, then some lower-case) that does
//! not start a sentence, and that word in any case and position in the other questions
//! too. Codes and acronyms (`NW-C5`, `SSO`) are not names: they tell products apart.

use std::collections::HashSet;

/// Words: letters, digits, apostrophes and hyphens.
fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '-'))
        .filter(|w| !w.is_empty())
        .map(move |w| (w.as_ptr() as usize - text.as_ptr() as usize, w))
}

fn capitalised(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(char::is_uppercase) && chars.any(char::is_lowercase)
}

/// Whether the word at byte `at` starts a sentence (the text's start, or after `.?!`).
fn starts_sentence(text: &str, at: usize) -> bool {
    text[..at]
        .trim_end()
        .chars()
        .last()
        .is_none_or(|c| matches!(c, '.' | '?' | '!'))
}

/// The names the questions use, lower-cased.
pub fn names(questions: &[String]) -> HashSet<String> {
    questions
        .iter()
        .flat_map(|q| {
            words(q)
                .filter(|(at, w)| capitalised(w) && !starts_sentence(q, *at))
                .map(|(_, w)| w.to_lowercase())
        })
        .collect()
}

/// The question without its names (the rest as typed), or None when it has none, or
/// nothing but names.
pub fn without_names(question: &str, names: &HashSet<String>) -> Option<String> {
    let mut kept = String::new();
    let mut from = 0;
    for (at, word) in words(question) {
        if names.contains(&word.to_lowercase()) {
            kept.push_str(&question[from..at]);
            from = at + word.len();
        }
    }
    if from == 0 {
        return None;
    }
    kept.push_str(&question[from..]);
    let kept = kept.split_whitespace().collect::<Vec<_>>().join(" ");
    kept.chars().any(char::is_alphanumeric).then_some(kept)
}

/// One question's embeddings: as asked, and without its names when it has some.
pub struct Embedded {
    pub asked: Vec<f32>,
    pub unnamed: Option<Vec<f32>>,
}

/// Cosine similarity of two questions (unit vectors): without their names when both
/// have some, else as asked.
pub fn similarity(a: &Embedded, b: &Embedded) -> f32 {
    match (&a.unnamed, &b.unnamed) {
        (Some(a), Some(b)) => dot(a, b),
        _ => dot(&a.asked, &b.asked),
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn questions(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn names_are_capitalised_words_inside_a_sentence() {
        let asked = questions(&[
            "Do you have an office in Tbilisi? Or in Lisbon.",
            "Tbilisi office hours",
            "Does the NW-C5 work with SSO? I wonder",
            "Nairobi is big",
        ]);
        let names = names(&asked);
        let mut found: Vec<&str> = names.iter().map(String::as_str).collect();
        found.sort_unstable();
        // "Or" starts a sentence, "Nairobi" too and is nowhere else; codes aren't names.
        assert_eq!(found, ["lisbon", "tbilisi"]);
        assert_eq!(
            without_names("tbilisi office hours", &names).as_deref(),
            Some("office hours")
        );
        assert_eq!(without_names("office hours", &names), None);
        assert_eq!(without_names("Tbilisi?", &names), None);
        assert_eq!(
            without_names("Do you have an office in Tbilisi?", &names).as_deref(),
            Some("Do you have an office in ?")
        );
    }

    #[test]
    fn questions_that_both_name_something_compare_without_the_names() {
        let named = Embedded {
            asked: vec![1.0, 0.0],
            unnamed: Some(vec![0.0, 1.0]),
        };
        let other = Embedded {
            asked: vec![1.0, 0.0],
            unnamed: Some(vec![1.0, 0.0]),
        };
        let plain = Embedded {
            asked: vec![1.0, 0.0],
            unnamed: None,
        };
        assert_eq!(similarity(&named, &other), 0.0);
        assert_eq!(similarity(&named, &plain), 1.0);
    }
}
