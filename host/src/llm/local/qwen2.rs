//! Qwen2 forward pass over quantized GGUF weights, written for this provider rather than
//! taken from candle-transformers' `quantized_qwen2` for three reasons measured on 2
//! cores (docs/local-model.md):
//! - the KV cache keeps the tokens it holds and can be cut back to a shared prefix, so
//!   a call whose prompt starts like the last one (the same agent's system prompt and
//!   tools, or the next step of a tool loop) computes only what is new;
//! - the cache is written in place into buffers of the context's size instead of being
//!   concatenated (copied) at every token;
//! - grouped-query attention multiplies each key/value head with its group of query
//!   heads directly, instead of copying keys and values once per query head.
//!
//! The token embedding is kept as f16 (half of candle's f32 copy: ~0.47 GB less).

use candle_core::quantized::QMatMul;
use candle_core::quantized::gguf_file::Content;
use candle_core::{DType, Device, IndexOp, Module, Result, Tensor, bail};
use candle_transformers::quantized_nn::RmsNorm;

struct Layer {
    q: QMatMul,
    k: QMatMul,
    v: QMatMul,
    q_bias: Tensor,
    k_bias: Tensor,
    v_bias: Tensor,
    out: QMatMul,
    attn_norm: RmsNorm,
    gate: QMatMul,
    up: QMatMul,
    down: QMatMul,
    ffn_norm: RmsNorm,
    /// (1, kv_heads, context, head_dim), filled up to `Model::cached.len()`.
    k_cache: Tensor,
    v_cache: Tensor,
}

pub struct Model {
    embeddings: Tensor,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: QMatMul,
    cos: Tensor,
    sin: Tensor,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    context: usize,
    /// The tokens whose keys and values the cache holds, in order.
    cached: Vec<u32>,
}

impl Model {
    /// The weights of a `qwen2` GGUF, with a cache for `context` tokens.
    pub fn load<R: std::io::Read + std::io::Seek>(
        content: &Content,
        reader: &mut R,
        context: usize,
    ) -> Result<Model> {
        let device = Device::Cpu;
        let number = |key: &str| -> Result<&candle_core::quantized::gguf_file::Value> {
            match content.metadata.get(&format!("qwen2.{key}")) {
                Some(value) => Ok(value),
                None => bail!("the GGUF has no qwen2.{key}"),
            }
        };
        let heads = number("attention.head_count")?.to_u32()? as usize;
        let kv_heads = number("attention.head_count_kv")?.to_u32()? as usize;
        let width = number("embedding_length")?.to_u32()? as usize;
        let blocks = number("block_count")?.to_u32()? as usize;
        let eps = number("attention.layer_norm_rms_epsilon")?.to_f32()? as f64;
        let rope_base = number("rope.freq_base")
            .and_then(|v| v.to_f32())
            .unwrap_or(10_000.0);
        let head_dim = width / heads;
        let mut tensor = |name: &str| content.tensor(reader, name, &device);
        let embeddings = tensor("token_embd.weight")?.dequantize_f16(&device)?;
        let norm = RmsNorm::from_qtensor(tensor("output_norm.weight")?, eps)?;
        let output = match tensor("output.weight") {
            Ok(weight) => QMatMul::from_qtensor(weight)?,
            // Tied embeddings: the output projection is the embedding matrix.
            Err(_) => QMatMul::from_qtensor(tensor("token_embd.weight")?)?,
        };
        let mut layers = Vec::with_capacity(blocks);
        for i in 0..blocks {
            let mut weight = |part: &str| tensor(&format!("blk.{i}.{part}"));
            let cache = || Tensor::zeros((1, kv_heads, context, head_dim), DType::F32, &device);
            layers.push(Layer {
                q: QMatMul::from_qtensor(weight("attn_q.weight")?)?,
                k: QMatMul::from_qtensor(weight("attn_k.weight")?)?,
                v: QMatMul::from_qtensor(weight("attn_v.weight")?)?,
                q_bias: weight("attn_q.bias")?.dequantize(&device)?,
                k_bias: weight("attn_k.bias")?.dequantize(&device)?,
                v_bias: weight("attn_v.bias")?.dequantize(&device)?,
                out: QMatMul::from_qtensor(weight("attn_output.weight")?)?,
                attn_norm: RmsNorm::from_qtensor(weight("attn_norm.weight")?, eps)?,
                gate: QMatMul::from_qtensor(weight("ffn_gate.weight")?)?,
                up: QMatMul::from_qtensor(weight("ffn_up.weight")?)?,
                down: QMatMul::from_qtensor(weight("ffn_down.weight")?)?,
                ffn_norm: RmsNorm::from_qtensor(weight("ffn_norm.weight")?, eps)?,
                k_cache: cache()?,
                v_cache: cache()?,
            });
        }
        let (cos, sin) = rope_tables(head_dim, rope_base, context, &device)?;
        Ok(Model {
            embeddings,
            layers,
            norm,
            output,
            cos,
            sin,
            heads,
            kv_heads,
            head_dim,
            context,
            cached: Vec::new(),
        })
    }

    /// How many leading tokens of `prompt` the cache already holds; the cache is cut
    /// back to them. At least the last token is always computed again (its logits are
    /// what the next token is sampled from).
    pub fn reuse(&mut self, prompt: &[u32]) -> usize {
        let shared = self
            .cached
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count()
            .min(prompt.len().saturating_sub(1));
        self.cached.truncate(shared);
        shared
    }

    /// Logits of the token after `tokens`, which follow the cached ones.
    pub fn forward(&mut self, tokens: &[u32]) -> Result<Tensor> {
        let position = self.cached.len();
        let count = tokens.len();
        if position + count > self.context {
            bail!(
                "{} tokens do not fit the context of {}",
                position + count,
                self.context
            );
        }
        let device = Device::Cpu;
        let input = Tensor::new(tokens, &device)?;
        let mut x = self
            .embeddings
            .index_select(&input, 0)?
            .to_dtype(DType::F32)?
            .unsqueeze(0)?;
        let mask = (count > 1)
            .then(|| causal_mask(count, position, self.heads / self.kv_heads, &device))
            .transpose()?;
        let cos = self.cos.narrow(0, position, count)?;
        let sin = self.sin.narrow(0, position, count)?;
        for layer in &mut self.layers {
            let residual = x.clone();
            let h = layer.attn_norm.forward(&x)?;
            let attention = attend(
                layer,
                &h,
                (&cos, &sin),
                mask.as_ref(),
                position,
                (self.heads, self.kv_heads, self.head_dim),
            )?;
            let x1 = (attention + residual)?;
            let h = layer.ffn_norm.forward(&x1)?;
            let gated = (layer.gate.forward(&h)?.silu()? * layer.up.forward(&h)?)?;
            x = (layer.down.forward(&gated)? + x1)?;
        }
        self.cached.extend_from_slice(tokens);
        let last = self.norm.forward(&x)?.i((.., count - 1, ..))?;
        self.output.forward(&last)
    }
}

/// Self-attention of one layer; writes the new keys and values into the cache.
fn attend(
    layer: &mut Layer,
    x: &Tensor,
    (cos, sin): (&Tensor, &Tensor),
    mask: Option<&Tensor>,
    position: usize,
    (heads, kv_heads, head_dim): (usize, usize, usize),
) -> Result<Tensor> {
    let (batch, count, width) = x.dims3()?;
    let split = |t: Tensor, n: usize| -> Result<Tensor> {
        t.reshape((batch, count, n, head_dim))?
            .transpose(1, 2)?
            .contiguous()
    };
    let q = split(layer.q.forward(x)?.broadcast_add(&layer.q_bias)?, heads)?;
    let k = split(layer.k.forward(x)?.broadcast_add(&layer.k_bias)?, kv_heads)?;
    let v = split(layer.v.forward(x)?.broadcast_add(&layer.v_bias)?, kv_heads)?;
    let q = candle_nn::rotary_emb::rope(&q, cos, sin)?;
    let k = candle_nn::rotary_emb::rope(&k, cos, sin)?;
    layer.k_cache.slice_set(&k, 2, position)?;
    layer.v_cache.slice_set(&v, 2, position)?;
    let seen = position + count;
    let keys = layer.k_cache.narrow(2, 0, seen)?;
    let values = layer.v_cache.narrow(2, 0, seen)?;
    // Query heads h*group..(h+1)*group share key/value head h: as rows of one matrix
    // per key/value head, they need no copies of the keys.
    let group = heads / kv_heads;
    let q = q.reshape((batch, kv_heads, group * count, head_dim))?;
    let scores = (q.matmul(&keys.t()?)? / (head_dim as f64).sqrt())?;
    let scores = match mask {
        Some(mask) => scores.broadcast_add(mask)?,
        None => scores,
    };
    let weights = candle_nn::ops::softmax_last_dim(&scores)?;
    let y = weights.matmul(&values)?;
    let y = y
        .reshape((batch, heads, count, head_dim))?
        .transpose(1, 2)?
        .reshape((batch, count, width))?;
    layer.out.forward(&y)
}

/// Additive mask over (group x count) query rows and `position + count` keys: a query
/// sees the cached tokens and the new ones up to itself.
fn causal_mask(count: usize, position: usize, group: usize, device: &Device) -> Result<Tensor> {
    let row: Vec<f32> = (0..count)
        .flat_map(|i| {
            (0..position + count).map(move |j| {
                if j > position + i {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    let mask = Tensor::from_vec(row, (count, position + count), device)?;
    Tensor::cat(&vec![&mask; group], 0)
}

/// Rotary embedding tables (Qwen2 rotates the two halves of each head, "NeoX" style).
fn rope_tables(
    head_dim: usize,
    base: f32,
    context: usize,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let inverse: Vec<f32> = (0..head_dim)
        .step_by(2)
        .map(|i| 1.0 / base.powf(i as f32 / head_dim as f32))
        .collect();
    let inverse = Tensor::from_vec(inverse, (1, head_dim / 2), device)?;
    let positions = Tensor::arange(0u32, context as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((context, 1))?;
    let angles = positions.matmul(&inverse)?;
    Ok((angles.cos()?, angles.sin()?))
}
