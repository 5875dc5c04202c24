//! Generation: the prompt's tokens through the model in chunks, then one token at a time
//! until a stop token, a stop string, `max_tokens` or the reader leaves. CPU-bound and
//! blocking: runs on a blocking thread, one request at a time (the model has one KV
//! cache).

use std::time::Instant;

use anyhow::{Result, anyhow};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use tokenizers::Tokenizer;

use super::gguf::ModelFile;
use super::qwen2::Model;
use super::template::ChatTemplate;

/// Prompt tokens per forward pass: bounds the attention scores' memory (heads x chunk x
/// context floats) while keeping the matrix products wide enough to be fast.
const PREFILL_CHUNK: usize = 256;

pub struct Engine {
    model: Model,
    tokenizer: Tokenizer,
    pub template: ChatTemplate,
    stops: Vec<u32>,
}

/// How to sample and when to stop.
#[derive(Debug, Clone)]
pub struct Params {
    pub max_tokens: usize,
    /// None or 0: greedy (the same answer every time).
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub seed: u64,
    pub stop: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Finish {
    Stop,
    Length,
    /// The reader went away.
    Cancelled,
}

#[derive(Debug)]
pub struct Generated {
    pub text: String,
    pub prompt_tokens: usize,
    /// Prompt tokens whose keys and values were still in the cache from the last call.
    pub cached_tokens: usize,
    pub completion_tokens: usize,
    pub finish: Finish,
    pub prompt_seconds: f64,
    pub generation_seconds: f64,
}

impl Engine {
    pub fn load(file: &ModelFile, context: usize) -> Result<Engine> {
        let tokenizer = file.tokenizer()?;
        let stops = file.stop_tokens(&tokenizer);
        let template = ChatTemplate::new(&file.chat_template)?;
        let model = file.weights(context)?;
        Ok(Engine {
            model,
            tokenizer,
            template,
            stops,
        })
    }

    /// A rendered prompt's tokens; the template's special tokens (`<|im_start|>`...)
    /// are matched as such.
    pub fn encode(&self, prompt: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode(prompt, false)
            .map_err(|e| anyhow!("tokenizing the prompt: {e}"))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Generates after `prompt`, handing each new piece of text to `on_text`, which
    /// returns false when nobody reads any more.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        params: &Params,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generated> {
        let started = Instant::now();
        let cached_tokens = self.model.reuse(prompt);
        let mut logits = None;
        for chunk in prompt[cached_tokens..].chunks(PREFILL_CHUNK) {
            logits = Some(self.model.forward(chunk)?);
        }
        let mut logits = logits.ok_or_else(|| anyhow!("the prompt is empty"))?;
        let prompt_seconds = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let mut sampler = LogitsProcessor::from_sampling(params.seed, sampling(params));
        let mut tokens: Vec<u32> = Vec::new();
        let mut text = String::new();
        let mut sent = 0;
        let finish = loop {
            let next = sampler.sample(&logits.squeeze(0)?)?;
            if self.stops.contains(&next) {
                break Finish::Stop;
            }
            tokens.push(next);
            text = self
                .tokenizer
                .decode(&tokens, true)
                .map_err(|e| anyhow!("decoding: {e}"))?;
            if let Some(at) = params
                .stop
                .iter()
                .filter_map(|s| text.find(s.as_str()))
                .min()
            {
                text.truncate(at);
                break Finish::Stop;
            }
            // A character cut between tokens decodes as U+FFFD until its last byte
            // comes; a stop string may be starting at the end: hold both back.
            let ready = if text.ends_with('\u{FFFD}') {
                sent
            } else {
                text.len() - stop_prefix(&text, &params.stop)
            };
            if ready > sent && text.is_char_boundary(sent) && text.is_char_boundary(ready) {
                if !on_text(&text[sent..ready]) {
                    break Finish::Cancelled;
                }
                sent = ready;
            }
            if tokens.len() >= params.max_tokens {
                break Finish::Length;
            }
            logits = self.model.forward(&[next])?;
        };
        if finish != Finish::Cancelled && text.len() > sent && text.is_char_boundary(sent) {
            on_text(&text[sent..]);
        }
        Ok(Generated {
            text,
            prompt_tokens: prompt.len(),
            cached_tokens,
            completion_tokens: tokens.len(),
            finish,
            prompt_seconds,
            generation_seconds: started.elapsed().as_secs_f64(),
        })
    }
}

fn sampling(params: &Params) -> Sampling {
    match (params.temperature.filter(|t| *t > 0.0), params.top_p) {
        (None, _) => Sampling::ArgMax,
        (Some(temperature), Some(p)) if p > 0.0 && p < 1.0 => Sampling::TopP { p, temperature },
        (Some(temperature), _) => Sampling::All { temperature },
    }
}

/// Bytes at the end of `text` that begin one of the stop strings.
fn stop_prefix(text: &str, stops: &[String]) -> usize {
    stops
        .iter()
        .flat_map(|stop| {
            (1..stop.len())
                .filter(|&n| stop.is_char_boundary(n))
                .map(move |n| &stop[..n])
        })
        .filter(|prefix| text.ends_with(prefix))
        .map(str::len)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_unless_a_temperature_is_given() {
        let params = |temperature, top_p| Params {
            max_tokens: 1,
            temperature,
            top_p,
            seed: 1,
            stop: vec![],
        };
        assert!(matches!(sampling(&params(None, None)), Sampling::ArgMax));
        assert!(matches!(
            sampling(&params(Some(0.0), Some(0.9))),
            Sampling::ArgMax
        ));
        assert!(matches!(
            sampling(&params(Some(0.7), Some(0.9))),
            Sampling::TopP { .. }
        ));
        assert!(matches!(
            sampling(&params(Some(0.7), Some(1.0))),
            Sampling::All { .. }
        ));
    }

    #[test]
    fn the_start_of_a_stop_string_is_held_back() {
        let stops = vec!["END".to_string(), "\n\n".to_string()];
        assert_eq!(stop_prefix("total 12 EN", &stops), 2);
        assert_eq!(stop_prefix("total 12\n", &stops), 1);
        assert_eq!(stop_prefix("total 12", &stops), 0);
    }
}

/// Speed of the installed model (`cargo test -p agenthost --lib local_model_speed --
/// --ignored --nocapture`): load time, prompt and generation tokens/s, and the same
/// prompt again with its prefix cached.
#[cfg(test)]
mod speed {
    use super::*;

    #[test]
    #[ignore = "needs the model from `make setup`; prints figures"]
    fn local_model_speed() {
        let dir = std::env::var("AGENTHOST_LOCAL_MODEL_DIR")
            .unwrap_or_else(|_| "../.agenthost/models/qwen2.5-coder-1.5b-instruct-q4_k_m".into());
        let started = Instant::now();
        let file = ModelFile::open(&std::path::Path::new(&dir).join("model.gguf")).unwrap();
        let mut engine = Engine::load(&file, 4096).unwrap();
        println!("load: {:.2} s", started.elapsed().as_secs_f64());
        // 20 gives ~230 prompt tokens; 170 about Dexter's 1,959.
        let repeat: usize = std::env::var("LOCAL_MODEL_SPEED_REPEAT")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(20);
        let prompt = engine
            .template
            .render(
                &[serde_json::json!({"role": "user",
                    "content": "Write a short story about a lighthouse keeper. ".repeat(repeat)})],
                &[],
            )
            .unwrap();
        let tokens = engine.encode(&prompt).unwrap();
        let params = Params {
            max_tokens: 32,
            temperature: None,
            top_p: None,
            seed: 1,
            stop: vec![],
        };
        for run in ["cold", "prefix cached"] {
            let generated = engine.generate(&tokens, &params, &mut |_| true).unwrap();
            println!(
                "{run}: prompt {} tokens ({} cached) {:.1} tok/s, generation {} tokens {:.1} tok/s",
                generated.prompt_tokens,
                generated.cached_tokens,
                (generated.prompt_tokens - generated.cached_tokens) as f64
                    / generated.prompt_seconds,
                generated.completion_tokens,
                generated.completion_tokens as f64 / generated.generation_seconds
            );
        }
        // The same prompt through candle's own quantized Qwen2 (candle-transformers),
        // as a reference for what candle's kernels give on this machine.
        let mut reader = std::fs::File::open(&file.path).unwrap();
        let content = candle_core::quantized::gguf_file::Content::read(&mut reader).unwrap();
        let mut reference = candle_transformers::models::quantized_qwen2::ModelWeights::from_gguf(
            content,
            &mut reader,
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let started = Instant::now();
        let mut position = 0;
        let mut logits = None;
        for chunk in tokens.chunks(PREFILL_CHUNK) {
            let input = candle_core::Tensor::new(chunk, &candle_core::Device::Cpu).unwrap();
            logits = Some(
                reference
                    .forward(&input.unsqueeze(0).unwrap(), position)
                    .unwrap(),
            );
            position += chunk.len();
        }
        let prompt_seconds = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let mut next = logits.unwrap().squeeze(0).unwrap().argmax(0).unwrap();
        for _ in 0..params.max_tokens {
            let input = next.unsqueeze(0).unwrap().unsqueeze(0).unwrap();
            let logits = reference.forward(&input, position).unwrap();
            position += 1;
            next = logits.squeeze(0).unwrap().argmax(0).unwrap();
        }
        println!(
            "candle-transformers' quantized_qwen2: prompt {:.1} tok/s, generation {:.1} tok/s",
            tokens.len() as f64 / prompt_seconds,
            params.max_tokens as f64 / started.elapsed().as_secs_f64()
        );
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        for line in status
            .lines()
            .filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS"))
        {
            println!("{line}");
        }
    }
}
