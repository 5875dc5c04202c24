//! The words of a text query as the full-text arm reads them: repeated words collapse
//! into one, a `-word` excludes documents holding it, and at most [`MAX_QUERY_WORDS`]
//! distinct words are kept. PostgreSQL then stems them, drops stop words and keeps the
//! [`super::text_search::MAX_TERMS`] rarest in the collection; bounding the text here
//! first keeps that work small too (a 100 KB query of one word repeated is one word).

/// Distinct words read from a query at most; later ones are ignored.
pub const MAX_QUERY_WORDS: usize = 256;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct QueryWords {
    /// The words to match, space-separated, each once.
    pub include: String,
    /// The words whose documents are left out, space-separated.
    pub exclude: String,
}

impl QueryWords {
    pub fn parse(text: &str) -> QueryWords {
        let mut seen = std::collections::HashSet::new();
        let mut include = Vec::new();
        let mut exclude = Vec::new();
        for word in text.split_whitespace() {
            if seen.len() >= MAX_QUERY_WORDS {
                break;
            }
            // Web-search syntax: `-word` excludes (a `-` before a digit, as in `-5`,
            // is part of the word). Quotes carry no meaning for a bag of words.
            let word = word.trim_matches('"');
            let excluded = word
                .strip_prefix('-')
                .filter(|rest| rest.starts_with(char::is_alphabetic));
            let (list, word) = match excluded {
                Some(rest) => (&mut exclude, rest),
                None => (&mut include, word),
            };
            if word.is_empty() || !seen.insert((excluded.is_some(), word.to_lowercase())) {
                continue;
            }
            list.push(word);
        }
        QueryWords {
            include: include.join(" "),
            exclude: exclude.join(" "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_words_collapse_whatever_their_case() {
        let text = "Refund ".repeat(5000) + "refund REFUND order";
        assert_eq!(QueryWords::parse(&text).include, "Refund order");
    }

    #[test]
    fn at_most_so_many_distinct_words_are_read() {
        let text: Vec<String> = (0..10_000).map(|n| format!("word{n}")).collect();
        let words = QueryWords::parse(&text.join(" "));
        assert_eq!(words.include.split(' ').count(), MAX_QUERY_WORDS);
        assert!(words.include.starts_with("word0 word1 "));
    }

    #[test]
    fn a_minus_before_a_word_excludes_it_but_not_before_a_number() {
        let words = QueryWords::parse("\"reset password\" -sso -sso -5 E-1042");
        assert_eq!(words.include, "reset password -5 E-1042");
        assert_eq!(words.exclude, "sso");
    }
}
