//! Text embeddings for the vector capability: the local all-MiniLM-L6-v2 (the offline
//! default) or any OpenAI-compatible embeddings endpoint, behind a cache keyed by model
//! and text hash, so re-indexing unchanged text costs nothing.

pub mod minilm;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::llm::{Llm, LlmError, UsageKey};
use minilm::MiniLm;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// all-MiniLM-L6-v2 from this directory, run in-process.
    Local { model_dir: PathBuf },
    /// The configured LLM provider's embeddings endpoint with this model.
    OpenAi { model: String },
}

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug)]
pub struct Embeddings {
    provider: Provider,
    llm: Arc<Llm>,
    pool: PgPool,
    /// One local forward pass at a time: a pass already uses every core.
    local_gate: tokio::sync::Semaphore,
}

/// Loaded models by directory, shared by every server in the process (tests start
/// many), since one model is ~90 MB of weights.
static LOADED: Mutex<Option<HashMap<PathBuf, Arc<MiniLm>>>> = Mutex::new(None);

fn load_shared(dir: &Path) -> anyhow::Result<Arc<MiniLm>> {
    let mut loaded = LOADED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let models = loaded.get_or_insert_with(HashMap::new);
    if let Some(model) = models.get(dir) {
        return Ok(model.clone());
    }
    let model = Arc::new(MiniLm::load(dir)?);
    models.insert(dir.to_path_buf(), model.clone());
    Ok(model)
}

impl Embeddings {
    pub fn new(provider: Provider, llm: Arc<Llm>, pool: PgPool) -> Self {
        Embeddings {
            provider,
            llm,
            pool,
            local_gate: tokio::sync::Semaphore::new(1),
        }
    }

    /// The model name collections record (and the cache is keyed by).
    pub fn model(&self) -> &str {
        match &self.provider {
            Provider::Local { .. } => minilm::MODEL_NAME,
            Provider::OpenAi { model } => model,
        }
    }

    /// One vector per text, from the cache where possible.
    pub async fn embed(
        &self,
        key: &UsageKey,
        texts: &[String],
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.iter().any(|text| text.trim().is_empty()) {
            return Err(EmbedError::Invalid("cannot embed an empty text".into()));
        }
        let model = self.model().to_string();
        let hashes: Vec<Vec<u8>> = texts
            .iter()
            .map(|text| Sha256::digest(text.as_bytes()).to_vec())
            .collect();
        let cached: HashMap<Vec<u8>, Vec<f32>> = sqlx::query_as::<_, (Vec<u8>, pgvector::Vector)>(
            "SELECT text_sha256, embedding FROM embedding_cache WHERE model = $1 AND text_sha256 = ANY($2)",
        )
        .bind(&model)
        .bind(&hashes)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| {
            EmbedError::Unavailable(crate::error::logged("reading the embedding cache failed", &e))
        })?
        .into_iter()
        .map(|(hash, vector)| (hash, vector.to_vec()))
        .collect();

        let missing: Vec<usize> = (0..texts.len())
            .filter(|i| !cached.contains_key(&hashes[*i]))
            .collect();
        let mut computed = HashMap::new();
        if !missing.is_empty() {
            let todo: Vec<String> = missing.iter().map(|i| texts[*i].clone()).collect();
            let vectors = self.compute(key, &todo).await?;
            for (i, vector) in missing.iter().zip(vectors) {
                computed.insert(hashes[*i].clone(), vector);
            }
            self.remember(&model, &computed).await;
        }
        Ok(hashes
            .iter()
            .map(|hash| {
                cached
                    .get(hash)
                    .or_else(|| computed.get(hash))
                    .cloned()
                    .unwrap_or_default()
            })
            .collect())
    }

    async fn compute(&self, key: &UsageKey, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        match &self.provider {
            Provider::Local { model_dir } => {
                let _turn = self
                    .local_gate
                    .acquire()
                    .await
                    .map_err(|_| EmbedError::Unavailable("shutting down".into()))?;
                let dir = model_dir.clone();
                let texts = texts.to_vec();
                tokio::task::spawn_blocking(move || {
                    let model = load_shared(&dir).map_err(|e| {
                        EmbedError::Unavailable(format!(
                            "the local embedding model is not usable at {} ({e:#}); run `make setup` or set AGENTHOST_EMBEDDING_MODEL_DIR",
                            dir.display()
                        ))
                    })?;
                    model
                        .embed(&texts)
                        .map_err(|e| EmbedError::Unavailable(format!("embedding failed: {e:#}")))
                })
                .await
                .map_err(|e| EmbedError::Unavailable(format!("embedding task failed: {e}")))?
            }
            Provider::OpenAi { model } => {
                self.llm
                    .embed(key, model, texts)
                    .await
                    .map_err(|e| match e {
                        LlmError::Unavailable(m) => EmbedError::Unavailable(m),
                        LlmError::Rejected(m) => EmbedError::Invalid(m),
                        // Embeddings are not refused for a budget (crate::llm::budget).
                        other => EmbedError::Unavailable(other.to_string()),
                    })
            }
        }
    }

    /// Best effort: a failed cache write only costs a recomputation later.
    async fn remember(&self, model: &str, computed: &HashMap<Vec<u8>, Vec<f32>>) {
        let (hashes, vectors): (Vec<Vec<u8>>, Vec<pgvector::Vector>) = computed
            .iter()
            .map(|(hash, vector)| (hash.clone(), pgvector::Vector::from(vector.clone())))
            .unzip();
        let written = sqlx::query(
            "INSERT INTO embedding_cache (model, text_sha256, embedding)
             SELECT $1, * FROM unnest($2::bytea[], $3::vector[]) ON CONFLICT DO NOTHING",
        )
        .bind(model)
        .bind(&hashes)
        .bind(&vectors)
        .execute(&self.pool)
        .await;
        if let Err(error) = written {
            tracing::warn!(%error, "could not write the embedding cache");
        }
    }
}
