//! all-MiniLM-L6-v2 run in-process on the CPU with candle: tokenize, BERT forward pass,
//! mean pooling over the real tokens, L2 normalisation (the model's own Normalize
//! module), so cosine similarity is a dot product. 384 dimensions.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

pub const MODEL_NAME: &str = "all-MiniLM-L6-v2";

/// Word pieces the model reads, [CLS] and [SEP] included (its model card: "input text
/// longer than 256 word pieces is truncated"). Chunkers keep texts within it.
pub const MAX_TOKENS: usize = 256;

/// Texts per forward pass: padding only to the longest text of a batch keeps short
/// texts cheap, and batching amortises the per-pass overhead.
const BATCH: usize = 32;

pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MiniLm")
    }
}

impl MiniLm {
    /// Load the files `make setup` installs: config.json, tokenizer.json, model.safetensors.
    pub fn load(dir: &Path) -> Result<MiniLm> {
        let file = |name: &str| -> PathBuf { dir.join(name) };
        let config: Config = serde_json::from_slice(
            &std::fs::read(file("config.json"))
                .with_context(|| format!("reading {}", file("config.json").display()))?,
        )
        .context("parsing config.json")?;
        let mut tokenizer = Tokenizer::from_file(file("tokenizer.json"))
            .map_err(|e| anyhow!("loading tokenizer.json: {e}"))?;
        // tokenizer.json pads every text to 128 tokens; pad a batch to its longest text
        // instead (several times faster for short texts). It also truncates at 128;
        // the model reads up to MAX_TOKENS (its sentence-transformers configuration),
        // and longer texts are cut, so callers chunk long documents.
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..PaddingParams::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|e| anyhow!("setting the truncation: {e}"))?;
        let device = Device::Cpu;
        let weights = std::fs::read(file("model.safetensors"))
            .with_context(|| format!("reading {}", file("model.safetensors").display()))?;
        let vars = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)?;
        let model = BertModel::load(vars, &config).context("loading the BERT weights")?;
        Ok(MiniLm {
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
