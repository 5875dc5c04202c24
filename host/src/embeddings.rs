//! Text embeddings for the vector capability: a local model run in-process
//! (multilingual-e5-small, the default, or the English all-MiniLM-L6-v2) or any
//! OpenAI-compatible embeddings endpoint, behind a cache keyed by model and the hash
//! of the text the model reads, so re-indexing unchanged text costs nothing.

pub mod bert;
pub mod e5;
pub mod minilm;
pub mod tokens;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::llm::{Llm, LlmError, UsageKey};
use bert::BertEncoder;

/// The models the host runs itself (`--embedding-model` with `--embedding-provider local`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LocalModel {
    /// multilingual-e5-small, 4-bit: about 100 languages, 512 positions (the default).
    MultilingualE5Small,
    /// all-MiniLM-L6-v2: English only, 256 positions, half the cost.
    MiniLm,
}

impl LocalModel {
    pub const DEFAULT: LocalModel = LocalModel::MultilingualE5Small;
    pub const ALL: [LocalModel; 2] = [LocalModel::MultilingualE5Small, LocalModel::MiniLm];

    /// The name collections record, and `--embedding-model` takes.
    pub fn name(self) -> &'static str {
        match self {
            LocalModel::MultilingualE5Small => e5::MODEL_NAME,
            LocalModel::MiniLm => minilm::MODEL_NAME,
        }
    }

    pub fn from_name(name: &str) -> Option<LocalModel> {
        Self::ALL.into_iter().find(|model| model.name() == name)
    }

    /// Tokens the model reads, its special tokens included.
    pub fn max_tokens(self) -> usize {
        match self {
            LocalModel::MultilingualE5Small => e5::MAX_TOKENS,
            LocalModel::MiniLm => minilm::MAX_TOKENS,
        }
    }

    /// What goes before a text: e5 was trained with "query: " before questions and
    /// "passage: " before the texts that answer them, and is worse without (its
    /// model card); MiniLM takes the text as it is.
    pub fn prefix(self, role: Role) -> &'static str {
        match (self, role) {
            (LocalModel::MultilingualE5Small, Role::Query) => "query: ",
            (LocalModel::MultilingualE5Small, Role::Passage) => "passage: ",
            (LocalModel::MiniLm, _) => "",
        }
    }

    /// The cosine similarity unrelated texts have: e5 was trained with a low
    /// temperature, so its similarities lie between about 0.7 and 1 (its model card);
    /// MiniLM's spread from 0. Similarities the host reports and compares with its
    /// thresholds are rescaled from this floor ([`calibrated`]), so one threshold
    /// means the same for both models (an unrelated question scored 0.77 with e5).
    pub fn similarity_floor(self) -> f32 {
        match self {
            LocalModel::MultilingualE5Small => 0.7,
            LocalModel::MiniLm => 0.0,
        }
    }

    /// Load the model's files from `dir`. Slow (a second for e5): the process keeps
    /// loaded models (see `load_shared`).
    pub fn load(self, dir: &Path) -> anyhow::Result<BertEncoder> {
        match self {
            LocalModel::MultilingualE5Small => e5::load(dir),
            LocalModel::MiniLm => minilm::load(dir),
        }
    }
}

/// What a text is to the model: a question looking for texts, or a text to be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Query,
    Passage,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// A local model from this directory, run in-process.
    Local {
        model: LocalModel,
        model_dir: PathBuf,
    },
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

type Loaded = HashMap<(LocalModel, PathBuf), Arc<BertEncoder>>;

/// Loaded models by model and directory, shared by every server in the process (tests
/// start many), since a model is 90 MB (MiniLM) to 500 MB (e5, dequantised) of weights.
static LOADED: Mutex<Option<Loaded>> = Mutex::new(None);

/// The model, loaded on first use in this process.
pub fn load_shared(model: LocalModel, dir: &Path) -> anyhow::Result<Arc<BertEncoder>> {
    let mut loaded = LOADED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let models = loaded.get_or_insert_with(HashMap::new);
    let key = (model, dir.to_path_buf());
    if let Some(encoder) = models.get(&key) {
        return Ok(encoder.clone());
    }
    let encoder = Arc::new(model.load(dir)?);
    models.insert(key, encoder.clone());
    Ok(encoder)
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
            Provider::Local { model, .. } => model.name(),
            Provider::OpenAi { model } => model,
        }
    }

    /// The local model, if the host runs one.
    pub fn local(&self) -> Option<(LocalModel, &Path)> {
        match &self.provider {
            Provider::Local { model, model_dir } => Some((*model, model_dir)),
            Provider::OpenAi { .. } => None,
        }
    }

    /// One vector per text, from the cache where possible. `role` chooses the prefix a
    /// local model expects (the cache is keyed by the prefixed text).
    pub async fn embed(
        &self,
        key: &UsageKey,
        role: Role,
        texts: &[String],
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.iter().any(|text| text.trim().is_empty()) {
            return Err(EmbedError::Invalid("cannot embed an empty text".into()));
        }
        let prefix = self.local().map_or("", |(model, _)| model.prefix(role));
        let prefixed: Vec<String>;
        let texts = if prefix.is_empty() {
            texts
        } else {
            prefixed = texts.iter().map(|text| format!("{prefix}{text}")).collect();
            &prefixed
        };
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
            Provider::Local { model, model_dir } => {
                let model = *model;
                let _turn = self
                    .local_gate
                    .acquire()
                    .await
                    .map_err(|_| EmbedError::Unavailable("shutting down".into()))?;
                let dir = model_dir.clone();
                let texts = texts.to_vec();
                tokio::task::spawn_blocking(move || {
                    let encoder = load_shared(model, &dir).map_err(|e| {
                        EmbedError::Unavailable(format!(
                            "the local embedding model {} is not usable at {} ({e:#}); run `make setup` or set {}",
                            model.name(),
                            dir.display(),
                            match model {
                                LocalModel::MultilingualE5Small => "AGENTHOST_MULTILINGUAL_MODEL_DIR",
                                LocalModel::MiniLm => "AGENTHOST_EMBEDDING_MODEL_DIR",
                            }
                        ))
                    })?;
                    encoder
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

impl Provider {
    /// `--embedding-provider`, `--embedding-model` and the model directories.
    pub fn from_config(config: &crate::config::Config) -> anyhow::Result<Provider> {
        let named = config.embedding_model.as_deref();
        match config.embedding_provider.as_str() {
            "local" => {
                let model = match named {
                    None => LocalModel::DEFAULT,
                    Some(name) => LocalModel::from_name(name).ok_or_else(|| {
                        anyhow::anyhow!(
                            "--embedding-model {name:?} is not a local model; use {}",
                            LocalModel::ALL.map(LocalModel::name).join(" or ")
                        )
                    })?,
                };
                let model_dir = match model {
                    LocalModel::MultilingualE5Small => config.multilingual_model_dir.clone(),
                    LocalModel::MiniLm => config.embedding_model_dir.clone(),
                };
                Ok(Provider::Local { model, model_dir })
            }
            "openai" => Ok(Provider::OpenAi {
                model: named.unwrap_or("text-embedding-3-small").to_string(),
            }),
            other => {
                anyhow::bail!("--embedding-provider must be `local` or `openai`, not {other:?}")
            }
        }
    }
}

/// The similarity floor of the model a collection records (0 for other models).
pub fn similarity_floor(model: &str) -> f32 {
    LocalModel::from_name(model).map_or(0.0, LocalModel::similarity_floor)
}

/// A cosine similarity rescaled so that the model's floor is 0 and 1 stays 1.
pub fn calibrated(cosine: f32, floor: f32) -> f32 {
    (cosine - floor) / (1.0 - floor)
}
