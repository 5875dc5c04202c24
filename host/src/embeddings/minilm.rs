//! all-MiniLM-L6-v2 (English, 6 layers, 384 dimensions) from `make setup`'s
//! config.json, tokenizer.json and model.safetensors. Mean pooling and L2
//! normalisation are the model's own Pooling and Normalize modules.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use super::bert::{self, BertEncoder};

pub const MODEL_NAME: &str = "all-MiniLM-L6-v2";

/// Word pieces the model reads, [CLS] and [SEP] included (its model card: "input text
/// longer than 256 word pieces is truncated").
pub const MAX_TOKENS: usize = 256;

/// The model, for callers that load it directly (benchmarks, tests).
#[derive(Debug)]
pub struct MiniLm;

/// Load the files `make setup` installs into `dir`.
pub fn load(dir: &Path) -> Result<BertEncoder> {
    let config = bert::read_config(dir)?;
    let tokenizer = bert::read_tokenizer(dir, MAX_TOKENS)?;
    let path = dir.join("model.safetensors");
    let weights = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let vars = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)?;
    BertEncoder::new(&config, vars, tokenizer)
}

impl MiniLm {
    pub fn load(dir: &Path) -> Result<BertEncoder> {
        load(dir)
    }
}
