//! Splitting a Markdown article into chunks the embedding model reads whole: one
//! section (ATX heading) at a time, each section split by text-splitter's Markdown
//! splitter within a budget measured in the model's own word pieces, with overlap.
//! Every chunk carries its heading path (title > section > subsection), which is
//! prepended to the embedded text so a chunk keeps its context.

use text_splitter::{ChunkConfig, ChunkSizer, MarkdownSplitter};

use crate::embeddings::minilm::MAX_TOKENS;

/// Word pieces of a chunk's embedded text (heading line + body) at most, leaving room
/// for [CLS] and [SEP] within MiniLM's 256 (multilingual-e5-small reads 512: room for
/// its "passage: " prefix too; smaller chunks also cite more precisely).
pub const CHUNK_TOKENS: usize = MAX_TOKENS - 2;
/// Word pieces repeated from the end of one chunk at the start of the next.
pub const OVERLAP_TOKENS: usize = 32;
/// Below this many word pieces a section's body is kept whole when it fits.
const MIN_CHUNK_TOKENS: usize = 96;

#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Title, then the headings above the chunk's section, outermost first.
    pub heading_path: Vec<String>,
    /// The Markdown of the chunk without the heading line.
    pub body: String,
}

impl Chunk {
    /// The line naming where the chunk is ("Refunds > How long it takes").
    pub fn heading(&self) -> String {
        self.heading_path.join(" > ")
    }

    /// What is embedded and indexed: the heading line, a blank line, the body.
    pub fn embedded_text(&self) -> String {
        format!("{}\n\n{}", self.heading(), self.body)
    }
}

// The embedding layer owns the counter (the vector store hands one out).
pub use crate::embeddings::tokens::TokenCounter;

impl ChunkSizer for TokenCounter {
    fn size(&self, chunk: &str) -> usize {
        self.count(chunk)
    }
}

/// A section: its heading path and the Markdown under its heading.
fn sections(title: &str, markdown: &str) -> Vec<(Vec<String>, String)> {
    let mut sections = Vec::new();
    let mut headings: Vec<(usize, String)> = Vec::new();
    let mut body = String::new();
    let mut fence: Option<&str> = None;
    let path = |headings: &[(usize, String)]| -> Vec<String> {
        std::iter::once(title.to_string())
            .chain(headings.iter().map(|(_, h)| h.clone()))
            .collect()
    };
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        if let Some(open) = fence {
            if trimmed.starts_with(open) {
                fence = None;
            }
            body.push_str(line);
            body.push('\n');
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = Some(&trimmed[..3]);
            body.push_str(line);
            body.push('\n');
            continue;
        }
        let level = trimmed.bytes().take_while(|b| *b == b'#').count();
        let is_heading = (1..=6).contains(&level)
            && trimmed[level..].starts_with([' ', '\t'])
            && line.len() - trimmed.len() < 4;
        if !is_heading {
            body.push_str(line);
            body.push('\n');
            continue;
        }
        sections.push((path(&headings), std::mem::take(&mut body)));
        let text = trimmed[level..]
            .trim()
            .trim_end_matches('#')
            .trim()
            .to_string();
        headings.retain(|(l, _)| *l < level);
        // A level-1 heading repeating the title adds nothing to the path.
        if !(level == 1 && text.eq_ignore_ascii_case(title.trim())) {
            headings.push((level, text));
        }
    }
    sections.push((path(&headings), body));
    sections
        .into_iter()
        .filter(|(_, body)| !body.trim().is_empty())
        .collect()
}

/// The chunks of an article, in reading order.
pub fn chunk_article(title: &str, markdown: &str, counter: &TokenCounter) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    for (heading_path, body) in sections(title, markdown) {
        let heading_tokens = counter.count(&heading_path.join(" > ")) + 2;
        // A very long heading path still leaves the body room.
        let budget = CHUNK_TOKENS
            .saturating_sub(heading_tokens)
            .max(MIN_CHUNK_TOKENS);
        let config = ChunkConfig::new(budget * 3 / 4..budget)
            .with_sizer(counter.clone())
            .with_overlap(OVERLAP_TOKENS.min(budget / 4))
            .expect("the overlap is below the capacity");
        let splitter = MarkdownSplitter::new(config);
        for piece in splitter.chunks(&body) {
            chunks.push(Chunk {
                heading_path: heading_path.clone(),
                body: piece.trim().to_string(),
            });
        }
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimate() -> TokenCounter {
        TokenCounter::estimate()
    }

    #[test]
    fn chunks_carry_their_heading_path() {
        let markdown = "Intro text.\n\n## Billing\n\nPay here.\n\n### Cards\n\nVisa works.\n\n```\n# not a heading\n```\n\n## Refunds\n\nAsk us.\n";
        let chunks = chunk_article("Payments", markdown, &estimate());
        let paths: Vec<String> = chunks.iter().map(Chunk::heading).collect();
        assert_eq!(
            paths,
            [
                "Payments",
                "Payments > Billing",
                "Payments > Billing > Cards",
                "Payments > Refunds"
            ]
        );
        assert!(
            chunks[2].body.contains("# not a heading"),
            "fences are bodies"
        );
        assert!(
            chunks[3]
                .embedded_text()
                .starts_with("Payments > Refunds\n\nAsk us.")
        );
    }

    #[test]
    fn long_sections_are_split_within_the_budget_with_overlap() {
        let sentence = "The router restarts when the reset button is held for ten seconds. ";
        let markdown = format!("## Reset\n\n{}", sentence.repeat(200));
        let counter = estimate();
        let chunks = chunk_article("NW-4410 guide", &markdown, &counter);
        assert!(chunks.len() > 5, "{} chunks", chunks.len());
        for chunk in &chunks {
            assert!(counter.count(&chunk.embedded_text()) <= CHUNK_TOKENS);
        }
    }
}
