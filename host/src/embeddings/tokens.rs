//! Counting an embedding model's word pieces, to cut text to what the model reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokenizers::Tokenizer;

/// Counts word pieces with the embedding model's tokenizer, or estimates four
/// characters per piece when the local model isn't installed (an OpenAI provider).
#[derive(Clone)]
pub struct TokenCounter(Option<Arc<Tokenizer>>);

impl std::fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "TokenCounter(tokenizer)"
        } else {
            "TokenCounter(estimate)"
        })
    }
}

impl TokenCounter {
    /// The tokenizer of the model in `dir` (loaded once per process and directory:
    /// servers of one process may run different models).
    pub fn for_model_dir(dir: &Path) -> TokenCounter {
        static LOADED: Mutex<BTreeMap<PathBuf, Option<Arc<Tokenizer>>>> =
            Mutex::new(BTreeMap::new());
        let mut loaded = LOADED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let tokenizer = loaded.entry(dir.to_path_buf()).or_insert_with(|| {
            let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).ok()?;
            // Count everything: no truncation, no padding.
            tokenizer.with_padding(None);
            tokenizer.with_truncation(None).ok()?;
            Some(Arc::new(tokenizer))
        });
        TokenCounter(tokenizer.clone())
    }

    /// Four characters per piece, for a model whose tokenizer the host lacks.
    pub fn estimate() -> TokenCounter {
        TokenCounter(None)
    }

    pub fn count(&self, text: &str) -> usize {
        match &self.0 {
            Some(tokenizer) => tokenizer
                .encode(text, false)
                .map(|encoding| encoding.len())
                .unwrap_or_else(|_| text.len().div_ceil(4)),
            None => text.chars().count().div_ceil(4),
        }
    }
}
