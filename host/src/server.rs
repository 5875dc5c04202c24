//! Starting and stopping the whole host: database, migrations, HTTP server.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth;
use crate::capabilities::Services;
use crate::config::Config;
use crate::db::{self, Database};
use crate::http;
use crate::registry::Registry;
use crate::registry::cache::ArtifactCache;
use crate::registry::directory;
use crate::runtime::WasmEngine;
use crate::state::AppState;
use std::sync::Arc;

/// A running host. Dropping it without [`Server::shutdown`] leaves the task running.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    /// Where `--metrics-listen` serves `/metrics`, when configured.
    pub metrics_addr: Option<SocketAddr>,
    /// The instance admin token, when this start generated it (first start without
    /// a configured token). Shown once; only its hash is stored.
    pub generated_admin_token: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<()>>,
}

impl Server {
    /// Open the database, migrate, bind the listener and start serving.
    pub async fn start(config: Config) -> Result<Server> {
        let started = Instant::now();
        crate::telemetry::metrics::install();
        let database = Database::open(&config).await?;
        db::migrate(&database.pool).await?;
        let generated_admin_token =
            auth::ensure_admin_token(&database.pool, config.admin_token.is_some()).await?;

        let registry = open_registry(&config, &database.pool).await?;
        crate::agents::chat::sweep_interrupted_turns(&database.pool, config.chat_turn_timeout)
            .await?;
        if config.seed_demo {
            let seeded = crate::data::demo::seed(&database.pool, "demo").await?;
            // A server starts whether or not anyone reads its stdout.
            let _ = crate::cli::report_seed("demo", &seeded);
        }

        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr()?;
        let metrics_listener = match config.metrics_listen {
            Some(listen) => Some(
                TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("binding the metrics address {listen}"))?,
            ),
            None => None,
        };
        let metrics_addr = metrics_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;
        let sandbox = registry.services.sandbox.clone();
        let state = AppState::new(database.pool.clone(), config, registry);
        let runner = crate::agents::runner::ChatRunner {
            pool: state.pool.clone(),
            registry: Arc::downgrade(&state.registry),
            config: state.config.clone(),
        };
        let _ = state.registry.services.agents.set(Arc::new(runner));
        let starter = crate::capabilities::workflows::EngineStarter {
            engine: Arc::downgrade(&state.workflows),
            pool: state.pool.clone(),
        };
        let _ = state.registry.services.workflows.set(Arc::new(starter));
        let builder = crate::automation::builder::Builder {
            engine: Arc::downgrade(&state.workflows),
            pool: state.pool.clone(),
        };
        let _ = state.registry.services.automation.set(Arc::new(builder));
        state
            .workflows
            .spawn()
            .await
            .context("starting the workflow engine")?;
        let workflows = state.workflows.clone();
        crate::support::kb::reembed::after_model_switch(
            &state.pool,
            state.registry.services.vectors.model(),
        )
        .await
        .context("queueing the knowledge base's re-embedding")?;
        let support_jobs = crate::support::jobs::Worker::spawn(state.support_services());
        let event_sweep = tokio::spawn(crate::events::sweep_forever(
            state.pool.clone(),
            state.config.event_retention,
            Duration::from_secs(600),
        ));
        let event_triggers = tokio::spawn(crate::automation::event_triggers::run_forever(
            state.workflows.clone(),
            state.pool.clone(),
        ));
        let schedule_ticker = tokio::spawn(crate::automation::schedules::ticker::run_forever(
            state.workflows.clone(),
            state.pool.clone(),
        ));
        let rule_walker = tokio::spawn(crate::automation::rules::dispatch::run_forever(
            state.workflows.clone(),
            state.pool.clone(),
        ));
        let nats = match &state.config.nats_url {
            Some(url) => {
                crate::events::nats::check_stream_name(&state.config.nats_stream)
                    .map_err(anyhow::Error::msg)?;
                let publisher = crate::events::nats::Publisher::connect(
                    state.pool.clone(),
                    url,
                    state.config.nats_stream.clone(),
                    state.config.nats_ack_timeout,
                )
                .await
                .context("connecting to NATS (--nats-url)")?;
                Some(tokio::spawn(publisher.run_forever()))
            }
            None => None,
        };
        // Off (`--agent-health-interval 0`): other hosts still judge.
        let agent_health = (!state.config.agent_health_interval.is_zero()).then(|| {
            tokio::spawn(crate::automation::health::run_forever(
                state.pool.clone(),
                crate::automation::health::Thresholds::from_config(&state.config),
                state.config.agent_health_interval,
            ))
        });
        let outbound_webhooks = crate::automation::outbound::spawn(
            state.pool.clone(),
            crate::automation::outbound::Settings::from_config(&state.config),
        );
        // Nothing to finish on the metrics address: it is stopped with the server.
        let metrics_task = metrics_listener.map(|listener| {
            let app = http::metrics_app(state.clone());
            tokio::spawn(async move { axum::serve(listener, app).await })
        });
        let shutting_down = state.shutting_down.clone();
        let app = http::app(state);
        let (shutdown, shutdown_rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    tokio::select! {
                        _ = shutdown_rx => {}
                        _ = termination_signal() => {}
                    }
                    tracing::info!("shutting down: finishing in-flight requests");
                    shutting_down.cancel();
                })
                .await
                .context("HTTP server failed");
            if let Some(metrics_task) = metrics_task {
                metrics_task.abort();
            }
            event_sweep.abort();
            event_triggers.abort();
            if let Some(outbound_webhooks) = outbound_webhooks {
                outbound_webhooks.abort();
            }
            schedule_ticker.abort();
            rule_walker.abort();
            if let Some(agent_health) = agent_health {
                agent_health.abort();
            }
            if let Some(nats) = nats {
                nats.abort();
            }
            // Before the pools close: this host's running nodes go back to the queue.
            // The support worker first: stopping the engine removes this host's
            // heartbeat, and other hosts would take the job still in hand.
            support_jobs.stop().await;
            workflows.stop().await;
            sandbox.close().await;
            let closed = database.close().await;
            served.and(closed)
        });
        if let Some(metrics_addr) = metrics_addr {
            tracing::info!(%metrics_addr, "serving /metrics without credentials");
        }
        tracing::info!(%addr, elapsed_ms = started.elapsed().as_millis() as u64, "agenthost ready");
        Ok(Server {
            addr,
            metrics_addr,
            generated_admin_token,
            shutdown: Some(shutdown),
            task,
        })
    }

    /// Stop accepting connections, finish in-flight requests, stop the database.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.wait().await
    }

    /// Run until SIGINT/SIGTERM (or `shutdown`), then clean up.
    pub async fn wait(self) -> Result<()> {
        self.task.await.context("server task panicked")?
    }
}

/// The wasm engine, the registry with every active plugin loaded, and the listener
/// that follows changes made by other hosts.
async fn open_registry(config: &Config, pool: &sqlx::PgPool) -> Result<Arc<Registry>> {
    let engine =
        Arc::new(WasmEngine::new(&config.engine_config()).context("creating the wasm engine")?);
    let cache = ArtifactCache::new(config.data_dir.join("plugin-cache"), &engine)?;
    let max_memory = config.engine_config().max_memory_bytes;
    let services = Services::from_config(config, pool)?;
    let registry = Arc::new(Registry::new(
        pool.clone(),
        engine,
        cache,
        config.plugin_limits(),
        max_memory,
        services,
    ));
    registry.load_all().await?;
    registry.watch_other_hosts();
    directory::install_bundled(&registry, &config.bundled_plugins_dir).await;
    if let Some(dir) = &config.plugin_dir {
        tracing::info!(dir = %dir.display(), "watching for plugin changes");
        directory::watch(
            registry.clone(),
            dir.clone(),
            std::time::Duration::from_millis(250),
        );
    }
    Ok(registry)
}

async fn termination_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(stream) => stream,
        Err(err) => {
            tracing::error!(error = %err, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

/// `agenthost migrate`: apply migrations and stop.
pub async fn migrate_only(config: &Config) -> Result<()> {
    let database = Database::open(config).await?;
    let result = db::migrate(&database.pool).await;
    database.close().await?;
    result
}

/// `agenthost demo seed`: fill a demo workspace.
pub async fn seed_demo(config: &Config, slug: &str) -> Result<crate::data::demo::Seeded> {
    let database = Database::open(config).await?;
    let result = async {
        db::migrate(&database.pool).await?;
        crate::data::demo::seed(&database.pool, slug).await
    }
    .await;
    database.close().await?;
    result
}

/// `agenthost rotate-admin-token`: store a new admin token and return it.
pub async fn rotate_admin_token(config: &Config) -> Result<String> {
    let database = Database::open(config).await?;
    let result = async {
        db::migrate(&database.pool).await?;
        auth::rotate_admin_token(&database.pool).await
    }
    .await;
    database.close().await?;
    result
}
