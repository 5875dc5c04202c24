//! Text primitives with the semantics of the Python string methods the reference
//! implementation is built on (`str.split`, `str.isupper`, `str.strip(punctuation)`).
//! Rust's own methods differ at the edges, and the edges move scores.

use super::lexicon;

/// `str.isspace`: Unicode White_Space plus the ASCII separators U+001C..U+001F, which
/// Python splits on and Rust does not.
pub(super) fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `str.isupper`: at least one cased character and none lower-case or title-case, so
/// "GREAT!!" and ":D" are upper-case and "A1" is too.
pub(super) fn is_upper(token: &str) -> bool {
    let mut cased = false;
    for c in token.chars() {
        if c.is_lowercase() || is_titlecase(c) {
            return false;
        }
        cased |= c.is_uppercase();
    }
    cased
}

/// Unicode category Lt (digraphs such as "ǅ" and Greek letters with prosgegrammeni),
/// which Rust has no predicate for.
fn is_titlecase(c: char) -> bool {
    matches!(c,
        '\u{1c5}' | '\u{1c8}' | '\u{1cb}' | '\u{1f2}'
        | '\u{1f88}'..='\u{1f8f}' | '\u{1f98}'..='\u{1f9f}' | '\u{1fa8}'..='\u{1faf}'
        | '\u{1fbc}' | '\u{1fcc}' | '\u{1ffc}')
}

/// Replaces each emoji by its description, separated by a space from the text before it
/// (not after: "😀ok" reads "grinning faceok", as in the reference), then trims.
pub(super) fn describe_emoji(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut after_space = true;
    for c in text.chars() {
        match lexicon::emoji_description(c) {
            Some(description) => {
                if !after_space {
                    out.push(' ');
                }
                out.push_str(description);
                after_space = false;
            }
            None => {
                out.push(c);
                after_space = c == ' ';
            }
        }
    }
    out.trim_matches(is_space).to_owned()
}

/// Whitespace-separated tokens without the ASCII punctuation around them, except that a
/// token that would shrink to two characters or fewer is kept whole: that keeps
/// emoticons such as ":)" and ":-(" (and, as a side effect, "ok!").
pub(super) fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(is_space).filter(|t| !t.is_empty()).map(|token| {
        let stripped = token.trim_matches(|c: char| c.is_ascii_punctuation());
        if stripped.chars().count() <= 2 {
            token
        } else {
            stripped
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_case_follows_python() {
        assert!(is_upper("GREAT"));
        assert!(is_upper("GREAT!!"));
        assert!(is_upper(":D"));
        assert!(is_upper("ÉTÉ"));
        assert!(!is_upper("Great"));
        assert!(!is_upper(":)"));
        assert!(!is_upper("123"));
        assert!(!is_upper("Aǅ"));
    }

    #[test]
    fn splits_on_python_whitespace() {
        let split: Vec<_> = tokens("a\u{1f}b\u{a0}c  d").collect();
        assert_eq!(split, ["a", "b", "c", "d"]);
    }

    #[test]
    fn strips_punctuation_but_keeps_emoticons() {
        let split: Vec<_> = tokens("\"Great,\" he said :) ok! (wow)").collect();
        assert_eq!(split, ["Great", "he", "said", ":)", "ok!", "wow"]);
    }

    #[test]
    fn emoji_become_their_descriptions() {
        assert_eq!(describe_emoji("nice😀"), "nice grinning face");
        assert_eq!(describe_emoji("😀😀"), "grinning face grinning face");
        assert_eq!(describe_emoji(" 😀ok "), "grinning faceok");
    }
}
