//! A GGUF model file: its header checked at start (cheap: metadata and tensor table
//! only), then its tokenizer and weights built when the first request needs them.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

/// The architectures candle runs from GGUF that this provider wires up.
const ARCHITECTURES: &[&str] = &["qwen2"];

/// Qwen2's pre-tokenizer split (its tokenizer.json; llama.cpp's `qwen2` pre-type).
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// GGUF token types that are whole tokens, never split (llama.cpp: CONTROL, USER_DEFINED).
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;

#[derive(Debug)]
pub struct ModelFile {
    pub path: PathBuf,
    /// `general.name`, or the file name.
    pub name: String,
    pub context_length: usize,
    pub chat_template: String,
    content: Content,
}

impl ModelFile {
    /// Reads and checks the header: a GGUF of a supported architecture with a chat
    /// template, whose tensors all lie inside the file (a cut-short download fails here,
    /// not half way through a load).
    pub fn open(path: &Path) -> Result<ModelFile> {
        let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let size = file.metadata()?.len();
        let content = Content::read(&mut file)
            .map_err(|e| anyhow!("{} is not a readable GGUF file: {e}", path.display()))?;
        let text = |key: &str| content.metadata.get(key).and_then(|v| v.to_string().ok());
        let architecture = text("general.architecture").cloned().unwrap_or_default();
        if !ARCHITECTURES.contains(&architecture.as_str()) {
            bail!(
                "{}: architecture {architecture:?} is not supported (supported: {})",
                path.display(),
                ARCHITECTURES.join(", ")
            );
        }
        let chat_template = text("tokenizer.chat_template")
            .cloned()
            .ok_or_else(|| anyhow!("{} has no chat template", path.display()))?;
        for (name, info) in &content.tensor_infos {
            let bytes = info.shape.elem_count() / info.ggml_dtype.block_size()
                * info.ggml_dtype.type_size();
            let end = content.tensor_data_offset + info.offset + bytes as u64;
            if end > size {
                bail!(
                    "{}: tensor {name} ends at byte {end} but the file has {size} (cut short?)",
                    path.display()
                );
            }
        }
        let context_length = content
            .metadata
            .get(&format!("{architecture}.context_length"))
            .and_then(|v| v.to_u32().ok())
            .unwrap_or(4096) as usize;
        let name = text("general.name").cloned().unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        Ok(ModelFile {
            path: path.to_path_buf(),
            name,
            context_length,
            chat_template,
            content,
        })
    }

    /// Token ids that end an answer: the end-of-sequence token and `<|im_end|>`
    /// (Qwen's end of turn) or `<|endoftext|>` when the vocabulary has them.
    pub fn stop_tokens(&self, tokenizer: &Tokenizer) -> Vec<u32> {
        let mut stops: Vec<u32> = ["<|im_end|>", "<|endoftext|>", "<|eot_id|>"]
            .iter()
            .filter_map(|t| tokenizer.token_to_id(t))
            .collect();
        if let Some(eos) = self
            .content
            .metadata
            .get("tokenizer.ggml.eos_token_id")
            .and_then(|v| v.to_u32().ok())
        {
            stops.push(eos);
        }
        stops.sort_unstable();
        stops.dedup();
        stops
    }

    /// The BPE tokenizer the GGUF describes (GPT-2 style byte-level BPE with the
    /// Qwen2 split), built with the `tokenizers` crate.
    pub fn tokenizer(&self) -> Result<Tokenizer> {
        let metadata = &self.content.metadata;
        let list = |key: &str| -> Result<&Vec<Value>> {
            metadata
                .get(key)
                .ok_or_else(|| anyhow!("the GGUF has no {key}"))?
                .to_vec()
                .map_err(|e| anyhow!("{key}: {e}"))
        };
        let model = metadata
            .get("tokenizer.ggml.model")
            .and_then(|v| v.to_string().ok());
        if model.map(String::as_str) != Some("gpt2") {
            bail!("tokenizer model {model:?} is not supported (only gpt2-style BPE)");
        }
        let tokens: Vec<String> = list("tokenizer.ggml.tokens")?
            .iter()
            .map(|v| v.to_string().cloned())
            .collect::<candle_core::Result<_>>()?;
        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(id, token)| (token.clone(), id as u32))
            .collect();
        let merges = list("tokenizer.ggml.merges")?
            .iter()
            .map(|v| {
                let merge = v.to_string()?;
                merge
                    .split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| candle_core::Error::Msg(format!("bad merge {merge:?}")))
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let bpe = BPE::new(vocab, merges);
        let mut tokenizer = Tokenizer::new(bpe);
        let split = Split::new(
            SplitPattern::Regex(QWEN2_SPLIT.into()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|e| anyhow!("the pre-tokenizer pattern: {e}"))?;
        tokenizer.with_pre_tokenizer(Some(PreTokenizerWrapper::Sequence(Sequence::new(vec![
            PreTokenizerWrapper::Split(split),
            PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, false, false)),
        ]))));
        tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
        let types = list("tokenizer.ggml.token_type")?;
        let special: Vec<AddedToken> = types
            .iter()
            .zip(&tokens)
            .filter(|(kind, _)| matches!(kind.to_i32(), Ok(CONTROL | USER_DEFINED)))
            .map(|(_, token)| AddedToken::from(token.clone(), true))
            .collect();
        tokenizer
            .add_special_tokens(special)
            .map_err(|e| anyhow!("adding the special tokens: {e}"))?;
        Ok(tokenizer)
    }

    /// The weights, read from the file (seconds; about 2 GB of memory), with a KV cache
    /// for `context` tokens.
    pub fn weights(&self, context: usize) -> Result<super::qwen2::Model> {
        let mut file = File::open(&self.path)?;
        super::qwen2::Model::load(&self.content, &mut file, context)
            .with_context(|| format!("loading the weights of {}", self.path.display()))
    }
}
