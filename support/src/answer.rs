//! Answers from the knowledge base with citations. The caller searches (hybrid) and,
//! when an LLM is configured, sends [`prompt`] and hands the reply to [`from_llm`];
//! without one, [`extractive`] quotes the best passages. Either way an answer cites
//! only passages it was given, and a question the passages don't cover is not
//! answered (support escalates instead of guessing).

use serde::{Deserialize, Serialize};

/// A passage below this cosine similarity to the question does not count as relevant
/// (all-MiniLM-L6-v2: related support passages score about 0.4-0.8, unrelated ones
/// below 0.3; measured on tests/data/support-kb).
pub const MIN_SIMILARITY: f32 = 0.35;
/// A passage the full-text arm also found (an exact code, a product name) may be a
/// little less similar as a whole and still be the answer.
pub const MIN_SIMILARITY_WITH_TEXT_MATCH: f32 = 0.25;
/// Tokens of sources an answer prompt carries at most.
pub const CONTEXT_TOKENS: usize = 1500;
/// Passages an answer uses at most.
pub const MAX_PASSAGES: usize = 5;
/// The task of [`prompt`] for answering a question.
pub const ANSWER_TASK: &str = "Answer the customer's question";
/// The task of [`prompt`] for a suggested reply to a ticket.
pub const REPLY_TASK: &str = "Write a short, friendly reply to the customer who wrote this ticket";
/// Chunks an answer looks at before [`select`] chooses its passages.
pub const CANDIDATES: u32 = 12;
/// What the model says when the sources lack the answer.
pub const NOT_COVERED: &str = "NOT_COVERED";
/// Characters of a question (`data.kb_gaps` keeps the unanswered ones).
pub const MAX_QUESTION_CHARS: usize = 4000;

/// One chunk of a live article revision, as search returned it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    pub chunk_id: String,
    pub article_id: String,
    pub slug: String,
    pub title: String,
    pub revision_id: String,
    pub version: i64,
    /// Headings from the article's title down to the chunk's section.
    pub heading_path: Vec<String>,
    /// The chunk's text without its heading line.
    pub text: String,
    pub similarity: f32,
    /// Whether the full-text arm matched it too.
    pub text_match: bool,
}

impl Passage {
    /// A chunk of the shared `knowledge-base` collection as a passage: its id, stored
    /// text (the heading line, a blank line, the body) and metadata as the host's
    /// indexer writes them, with the search's similarity and whether full text matched.
    pub fn from_chunk(
        id: &str,
        text: Option<&str>,
        metadata: &serde_json::Value,
        similarity: Option<f32>,
        text_match: bool,
    ) -> Passage {
        let text = text.unwrap_or_default();
        let body = text.split_once("\n\n").map_or(text, |(_, body)| body);
        let field = |name: &str| metadata[name].as_str().unwrap_or_default().to_string();
        Passage {
            chunk_id: id.to_string(),
            article_id: field("article_id"),
            slug: field("slug"),
            title: field("title"),
            revision_id: field("revision_id"),
            version: metadata["version"].as_i64().unwrap_or_default(),
            heading_path: metadata["heading_path"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            text: body.to_string(),
            similarity: similarity.unwrap_or_default(),
            text_match,
        }
    }
}

/// Where a `[n]` of an answer points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Citation {
    pub n: usize,
    pub chunk_id: String,
    pub article_id: String,
    pub slug: String,
    pub title: String,
    pub revision_id: String,
    pub version: i64,
    pub heading_path: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Written by the LLM from the sources.
    Llm,
    /// Quoted from the best passages (no LLM configured).
    Extractive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unanswered {
    /// No passage was relevant enough.
    NoMatch,
    /// The model said the sources don't hold the answer (or cited none of them).
    NotCovered,
}

impl Unanswered {
    pub fn as_str(self) -> &'static str {
        match self {
            Unanswered::NoMatch => "no_match",
            Unanswered::NotCovered => "not_covered",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub answered: bool,
    /// The answer with `[n]` markers, or what to tell the customer when unanswered.
    pub answer: String,
    pub citations: Vec<Citation>,
    pub mode: Mode,
    /// Why it was not answered.
    pub reason: Option<Unanswered>,
    /// Next step when unanswered.
    pub suggestion: Option<String>,
    /// The best passage's similarity to the question.
    pub best_similarity: Option<f32>,
}

/// Rough token count for budgets: about four characters per token in English.
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

/// The identifier-like words of a question: error codes, product codes, versions and
/// addresses (`E-2104`, `NW-4410`, `ERR_SYNC_409`, `3.4.2`): a digit together with a
/// letter or a `-`, `_` or `.` inside the word.
pub fn identifiers(question: &str) -> Vec<String> {
    question
        .split(|c: char| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .map(|word| word.trim_matches(|c: char| matches!(c, '-' | '_' | '.')))
        .filter(|word| word.len() >= 3 && word.chars().any(|c| c.is_ascii_digit()))
        .filter(|word| word.chars().any(|c| c.is_alphabetic()) || word.contains(['-', '_', '.']))
        .map(str::to_lowercase)
        .collect()
}

/// Whether `text` holds `word` as a whole word (not inside a longer code: `E-17` is
/// not in `E-1701`).
fn holds_word(text: &str, word: &str) -> bool {
    let text = text.to_lowercase();
    let mut from = 0;
    while let Some(at) = text[from..].find(word) {
        let start = from + at;
        let end = start + word.len();
        let joined =
            |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_');
        let before = text[..start].chars().next_back();
        let after = text[end..].chars().next();
        if !joined(before) && (!joined(after) || after == Some('-')) {
            return true;
        }
        from = start + word.len().max(1);
    }
    false
}

/// A passage counts when it is similar enough to the question, a little less when full
/// text matched it too, or whatever its similarity when it holds an identifier the
/// question asks about (a short "What does E-2104 mean?" is far from the error table
/// as a whole, yet the table is the answer).
fn relevant(passage: &Passage, identifiers: &[String]) -> bool {
    let needed = if passage.text_match {
        MIN_SIMILARITY_WITH_TEXT_MATCH
    } else {
        MIN_SIMILARITY
    };
    passage.similarity >= needed
        || (passage.text_match && identifiers.iter().any(|id| holds_word(&passage.text, id)))
}

/// The passages an answer to `question` may use: relevant ones in search order, one
/// per section, within `budget` tokens and [`MAX_PASSAGES`].
pub fn select(question: &str, passages: &[Passage], budget: usize) -> Vec<Passage> {
    let identifiers = identifiers(question);
    let mut chosen: Vec<Passage> = Vec::new();
    let mut used = 0;
    for passage in passages.iter().filter(|p| relevant(p, &identifiers)) {
        if chosen.len() == MAX_PASSAGES {
            break;
        }
        if chosen
            .iter()
            .any(|c| c.article_id == passage.article_id && c.heading_path == passage.heading_path)
        {
            continue;
        }
        let cost =
            estimate_tokens(&passage.text) + estimate_tokens(&passage.heading_path.join(" "));
        if used + cost > budget && !chosen.is_empty() {
            continue;
        }
        used += cost;
        chosen.push(passage.clone());
    }
    chosen
}

fn citation(n: usize, passage: &Passage) -> Citation {
    Citation {
        n,
        chunk_id: passage.chunk_id.clone(),
        article_id: passage.article_id.clone(),
        slug: passage.slug.clone(),
        title: passage.title.clone(),
        revision_id: passage.revision_id.clone(),
        version: passage.version,
        heading_path: passage.heading_path.clone(),
    }
}

/// The answer when nothing relevant was found, or the sources don't cover it.
pub fn unanswered(reason: Unanswered, mode: Mode, best_similarity: Option<f32>) -> Answer {
    Answer {
        answered: false,
        answer: "I couldn't find this in our help articles, so I won't guess.".into(),
        citations: Vec::new(),
        mode,
        reason: Some(reason),
        suggestion: Some(
            "Escalate to a person: open a ticket with the question so the team can answer it (and add an article)."
                .into(),
        ),
        best_similarity,
    }
}

/// The chat messages asking an LLM to answer `question` from `passages` (already
/// [`select`]ed): a system message with the rules, a user message with the numbered
/// sources and the question. `task` says what to write ("Answer the question",
/// "Write a reply to the customer").
pub fn prompt(task: &str, question: &str, passages: &[Passage]) -> (String, String) {
    let system = format!(
        "You are a customer support assistant. {task} using ONLY the numbered sources. \
         Cite the source of every statement with its number in square brackets, like [1] or [2]. \
         Do not use any other knowledge. If the sources do not contain the answer, reply with \
         exactly {NOT_COVERED} and nothing else."
    );
    let mut user = String::from("Sources:\n");
    for (i, passage) in passages.iter().enumerate() {
        user.push_str(&format!(
            "\n[{}] {}\n{}\n",
            i + 1,
            passage.heading_path.join(" > "),
            passage.text.trim()
        ));
    }
    user.push_str(&format!("\nQuestion: {}", question.trim()));
    (system, user)
}

/// The numbers of the `[n]` markers in `text`, in order of first use.
fn cited_numbers(text: &str) -> Vec<usize> {
    let mut numbers = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find(']') else { break };
        // "[1, 2]" and "[1][2]" both cite 1 and 2.
        for part in rest[..close].split(',') {
            if let Ok(n) = part.trim().parse::<usize>()
                && !numbers.contains(&n)
            {
                numbers.push(n);
            }
        }
        rest = &rest[close + 1..];
    }
    numbers
}

/// `text` without citation markers that point at no given source (`[7]` of five
/// passages), so the customer never sees a citation that leads nowhere.
fn without_unknown_citations(text: &str, sources: usize) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let inside = &after[..close];
        let numbers: Option<Vec<usize>> = inside
            .split(',')
            .map(|p| p.trim().parse::<usize>().ok())
            .collect();
        match numbers {
            Some(numbers) => {
                let kept: Vec<String> = numbers
                    .into_iter()
                    .filter(|n| (1..=sources).contains(n))
                    .map(|n| n.to_string())
                    .collect();
                if kept.is_empty() {
                    // Drop the marker and the space before it.
                    while out.ends_with(' ') {
                        out.pop();
                    }
                } else {
                    out.push_str(&format!("[{}]", kept.join(", ")));
                }
            }
            None => out.push_str(&rest[open..open + close + 2]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Read the model's reply to a [`prompt`]: `NOT_COVERED`, or an answer whose `[n]`
/// markers must point at given passages (an answer citing none is not trusted).
pub fn from_llm(reply: &str, passages: &[Passage]) -> Answer {
    let best = passages.iter().map(|p| p.similarity).reduce(f32::max);
    let reply = reply.trim();
    if reply.is_empty() || reply.contains(NOT_COVERED) {
        return unanswered(Unanswered::NotCovered, Mode::Llm, best);
    }
    let citations: Vec<Citation> = cited_numbers(reply)
        .into_iter()
        .filter(|n| (1..=passages.len()).contains(n))
        .map(|n| citation(n, &passages[n - 1]))
        .collect();
    if citations.is_empty() {
        return unanswered(Unanswered::NotCovered, Mode::Llm, best);
    }
    Answer {
        answered: true,
        answer: without_unknown_citations(reply, passages.len()),
        citations,
        mode: Mode::Llm,
        reason: None,
        suggestion: None,
        best_similarity: best,
    }
}

/// Characters of a quoted passage at most.
const QUOTE_CHARS: usize = 700;

/// The start of `text` up to `limit` characters, cut at a sentence or line end.
fn quote(text: &str, limit: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let cut: String = text.chars().take(limit).collect();
    let end = cut
        .rfind(['.', '!', '?', '\n'])
        .filter(|end| *end > limit / 3)
        .map_or(cut.len(), |end| end + 1);
    format!("{} …", cut[..end].trim_end())
}

/// Without an LLM: quote the best passage (and the next one when it is from another
/// article and nearly as good), cited, and say that it is a quote.
pub fn extractive(passages: &[Passage]) -> Answer {
    let best = passages.iter().map(|p| p.similarity).reduce(f32::max);
    let Some(first) = passages.first() else {
        return unanswered(Unanswered::NoMatch, Mode::Extractive, best);
    };
    let mut used = vec![first];
    if let Some(second) = passages.get(1)
        && second.article_id != first.article_id
        && second.similarity >= first.similarity - 0.05
    {
        used.push(second);
    }
    let mut answer = String::from(
        "No language model is configured, so here are the most relevant passages of our help articles:\n",
    );
    let mut citations = Vec::new();
    for (i, passage) in used.iter().enumerate() {
        answer.push_str(&format!(
            "\n{} [{}]:\n{}\n",
            passage.heading_path.join(" > "),
            i + 1,
            quote(&passage.text, QUOTE_CHARS)
        ));
        citations.push(citation(i + 1, passage));
    }
    Answer {
        answered: true,
        answer: answer.trim_end().to_string(),
        citations,
        mode: Mode::Extractive,
        reason: None,
        suggestion: None,
        best_similarity: best,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(article: &str, heading: &str, similarity: f32) -> Passage {
        Passage {
            chunk_id: format!("{article}:{heading}"),
            article_id: article.into(),
            slug: article.into(),
            title: article.into(),
            revision_id: format!("{article}-r1"),
            version: 1,
            heading_path: vec![article.into(), heading.into()],
            text: format!("Text of {heading}. More words here."),
            similarity,
            text_match: false,
        }
    }

    #[test]
    fn irrelevant_passages_are_not_selected_and_sections_are_not_repeated() {
        let mut code_match = passage("c", "codes", 0.3);
        code_match.text_match = true;
        let chosen = select(
            "anything",
            &[
                passage("a", "one", 0.6),
                passage("a", "one", 0.55),
                passage("b", "two", 0.2),
                code_match,
            ],
            CONTEXT_TOKENS,
        );
        let ids: Vec<&str> = chosen.iter().map(|p| p.chunk_id.as_str()).collect();
        assert_eq!(ids, ["a:one", "c:codes"]);
    }

    #[test]
    fn identifiers_asked_about_make_a_matching_passage_relevant() {
        assert_eq!(
            identifiers("What does E-2104 mean on my NW-4410 (fw 3.4.2)? 15 times, ERR_SYNC_409."),
            ["e-2104", "nw-4410", "3.4.2", "err_sync_409"]
        );
        let mut table = passage("codes", "table", 0.19);
        table.text = "| E-2104 | WAN link down |\n| E-1701 | other |".into();
        table.text_match = true;
        assert_eq!(
            select("What does E-2104 mean?", &[table.clone()], CONTEXT_TOKENS).len(),
            1
        );
        // A code that isn't there, even as the start of a longer one, doesn't count.
        assert!(select("What does E-17 mean?", &[table.clone()], CONTEXT_TOKENS).is_empty());
        table.text_match = false;
        assert!(select("What does E-2104 mean?", &[table], CONTEXT_TOKENS).is_empty());
    }

    #[test]
    fn the_budget_bounds_the_context_but_keeps_the_best_passage() {
        let mut long = passage("a", "long", 0.9);
        long.text = "word ".repeat(4000);
        let chosen = select("anything", &[long, passage("b", "short", 0.8)], 100);
        assert_eq!(chosen.len(), 1, "the first passage alone is over budget");
        assert_eq!(chosen[0].article_id, "a");
    }

    #[test]
    fn llm_citations_map_to_the_numbered_passages() {
        let passages = [passage("a", "one", 0.6), passage("b", "two", 0.5)];
        let answer = from_llm("Do this [2], then that [1, 2]. Not [7].", &passages);
        assert!(answer.answered);
        let cited: Vec<(usize, &str)> = answer
            .citations
            .iter()
            .map(|c| (c.n, c.article_id.as_str()))
            .collect();
        assert_eq!(cited, [(2, "b"), (1, "a")]);
        assert_eq!(answer.answer, "Do this [2], then that [1, 2]. Not.");
        assert_eq!(
            without_unknown_citations("a [1, 9] b [x] c", 2),
            "a [1] b [x] c"
        );
    }

    #[test]
    fn not_covered_or_uncited_replies_are_not_answers() {
        let passages = [passage("a", "one", 0.6)];
        for reply in [
            "NOT_COVERED",
            "  NOT_COVERED.",
            "I think you should restart it.",
            "",
        ] {
            let answer = from_llm(reply, &passages);
            assert!(!answer.answered, "{reply:?}");
            assert_eq!(answer.reason, Some(Unanswered::NotCovered));
            assert!(answer.suggestion.is_some());
        }
    }

    #[test]
    fn extractive_answers_quote_and_cite_the_best_passages() {
        let passages = [passage("a", "one", 0.62), passage("b", "two", 0.6)];
        let answer = extractive(&passages);
        assert!(answer.answered);
        assert_eq!(answer.mode, Mode::Extractive);
        assert!(answer.answer.contains("No language model is configured"));
        assert!(answer.answer.contains("Text of one. [1]") || answer.answer.contains("[1]"));
        assert_eq!(answer.citations.len(), 2);
        assert!(!extractive(&[]).answered);
    }

    #[test]
    fn quotes_end_at_a_sentence() {
        let text = format!("{}. Second sentence goes on and on.", "a".repeat(300));
        let quoted = quote(&text, 320);
        assert!(quoted.ends_with(". …"), "{quoted}");
    }
}
