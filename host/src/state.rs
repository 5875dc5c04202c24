//! Shared state of the HTTP handlers.

use std::sync::Arc;

use sqlx::PgPool;

use crate::auth::key_cache::KeyCache;
use crate::auth::rate_limit::RateLimiter;
use crate::config::Config;
use crate::registry::Registry;
use crate::workflows::{Engine, Workflows};

#[derive(Clone, Debug)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub rate_limiter: Arc<RateLimiter>,
    pub key_cache: Arc<KeyCache>,
    pub registry: Arc<Registry>,
    /// The workflow engine (its workers are started by the server, not here).
    pub workflows: Workflows,
    /// SHA-256 of the admin token from configuration, if one was configured.
    pub admin_token_sha256: Option<Arc<Vec<u8>>>,
    /// Cancelled when the server starts shutting down, so long-lived responses (MCP
    /// event streams) end and graceful shutdown doesn't wait for their clients.
    pub shutting_down: tokio_util::sync::CancellationToken,
}

impl AppState {
    pub fn new(pool: PgPool, config: Config, registry: Arc<Registry>) -> Self {
        AppState {
            workflows: Engine::new(pool.clone(), registry.clone(), config.workflow_limits()),
            pool,
            registry,
            rate_limiter: Arc::new(RateLimiter::new(config.rate_limit_per_minute)),
            key_cache: Arc::new(KeyCache::new(config.auth_cache_ttl)),
            admin_token_sha256: config
                .admin_token
                .as_deref()
                .map(|token| Arc::new(crate::auth::sha256(token))),
            shutting_down: tokio_util::sync::CancellationToken::new(),
            config: Arc::new(config),
        }
    }

    /// What the support jobs and handlers need.
    pub fn support_services(&self) -> crate::support::jobs::Support {
        let services = &self.registry.services;
        crate::support::jobs::Support {
            pool: self.pool.clone(),
            vectors: services.vectors.clone(),
            llm: services.llm.clone(),
            model: self.config.llm_default_model.clone(),
            tokens: services.vectors.token_counter(),
            worker: self.workflows.worker_id().to_string(),
            // As the workflow engine judges a host gone: five missed heartbeats.
            stale_after: self.workflows.limits.heartbeat * 5,
        }
    }
}
