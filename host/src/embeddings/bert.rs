//! A BERT sentence encoder run in-process on the CPU with candle, shared by the local
//! models: tokenize, forward pass, mean pooling over the real tokens, L2 normalisation
//! (so cosine similarity is a dot product). The models differ only in where their
//! weights come from and how many positions they read.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// Texts per forward pass: padding only to the longest text of a batch keeps short
/// texts cheap, and batching amortises the per-pass overhead.
const BATCH: usize = 32;

pub struct BertEncoder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

impl std::fmt::Debug for BertEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BertEncoder")
    }
}

/// The BERT configuration in `dir/config.json`.
pub fn read_config(dir: &Path) -> Result<Config> {
    let path = dir.join("config.json");
    serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
    )
    .context("parsing config.json")
}

/// `dir/tokenizer.json`, padding a batch to its longest text and truncating at
/// `max_tokens` (special tokens included).
pub fn read_tokenizer(dir: &Path, max_tokens: usize) -> Result<Tokenizer> {
    let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
        .map_err(|e| anyhow!("loading tokenizer.json: {e}"))?;
    // A tokenizer.json may pad every text to a fixed length; padding a batch to its
    // longest text instead is several times faster for short texts. Longer texts than
    // the model reads are cut, so callers chunk long documents.
    tokenizer.with_padding(Some(PaddingParams {
        strategy: PaddingStrategy::BatchLongest,
        ..PaddingParams::default()
    }));
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: max_tokens,
            ..TruncationParams::default()
        }))
        .map_err(|e| anyhow!("setting the truncation: {e}"))?;
    Ok(tokenizer)
}

impl BertEncoder {
    pub fn new(config: &Config, vars: VarBuilder, tokenizer: Tokenizer) -> Result<BertEncoder> {
        let device = vars.device().clone();
        let model = BertModel::load(vars, config).context("loading the BERT weights")?;
        Ok(BertEncoder {
            model,
            tokenizer,
            device,
        })
    }

    /// One unit-length vector per text. CPU-bound: call from a blocking thread.
    pub fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            vectors.extend(self.embed_batch(batch)?);
        }
        Ok(vectors)
    }

    fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| anyhow!("tokenizing: {e}"))?;
        let rows = |select: fn(&tokenizers::Encoding) -> &[u32]| -> Result<Tensor> {
            let rows = encodings
                .iter()
                .map(|encoding| Tensor::new(select(encoding), &self.device))
                .collect::<candle_core::Result<Vec<_>>>()?;
            Ok(Tensor::stack(&rows, 0)?)
        };
        let ids = rows(|e| e.get_ids())?;
        let type_ids = rows(|e| e.get_type_ids())?;
        let mask = rows(|e| e.get_attention_mask())?;
        let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?;
        // Mean over the real tokens only: padding positions have mask 0.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?;
        let unit = mean.broadcast_div(&norms)?;
        Ok(unit.to_vec2::<f32>()?)
    }
}
