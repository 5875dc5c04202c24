//! Host interfaces offered to plugins: one module per WIT interface, each with its
//! state (`XCtx`), a view trait saying where the store keeps it, and `add_to_linker`.

pub mod agents;
pub mod automation;
pub mod config;
pub mod database;
pub mod email;
pub mod events;
pub mod http;
pub mod llm;
pub mod log;
pub mod vector;
pub mod workflows;

use wasmtime::component::{HasData, Linker};

use crate::runtime::bindings::agenthost::plugin::types;
use crate::runtime::state::PluginState;

/// Link every host interface into the plugin linker.
pub fn add_to_linker(linker: &mut Linker<PluginState>) -> anyhow::Result<()> {
    // `types` has no functions, but components import it, so the instance must exist.
    types::add_to_linker::<PluginState, TypesOnly>(linker, |_| TypesOnly)?;
    log::add_to_linker(linker)?;
    config::add_to_linker(linker)?;
    email::add_to_linker(linker)?;
    database::add_to_linker(linker)?;
    llm::add_to_linker(linker)?;
    vector::add_to_linker(linker)?;
    agents::add_to_linker(linker)?;
    events::add_to_linker(linker)?;
    workflows::add_to_linker(linker)?;
    automation::add_to_linker(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    Ok(())
}

/// Stand-in for the function-less `types` interface: no state, handed out by value.
pub struct TypesOnly;
impl types::Host for TypesOnly {}
impl HasData for TypesOnly {
    type Data<'a> = TypesOnly;
}

impl log::LogView for PluginState {
    fn log(&mut self) -> &mut log::LogCtx {
        &mut self.log
    }
}

impl email::EmailView for PluginState {
    fn email(&mut self) -> &mut email::EmailCtx {
        &mut self.email
    }
}

/// The host-side services behind the capabilities, shared by every plugin.
#[derive(Debug, Clone)]
pub struct Services {
    pub mailer: std::sync::Arc<email::Mailer>,
    pub sandbox: std::sync::Arc<crate::db::sandbox::Sandbox>,
    pub statement_limits: crate::db::sandbox::StatementLimits,
    pub llm: std::sync::Arc<crate::llm::Llm>,
    pub http_limits: http::HttpLimits,
    pub vectors: std::sync::Arc<crate::vector::VectorStore>,
    /// Runs agent turns for the agents capability; filled in once the chat service
    /// exists (it needs the registry these services belong to).
    pub agents: agents::RunnerSlot,
    /// Starts executions for the workflows capability; filled in once the engine
    /// exists (it owns the registry these services belong to).
    pub workflows: workflows::StarterSlot,
    /// Serves the automation capability (Aura's tools); filled in once the engine exists.
    pub automation: automation::ServiceSlot,
    /// Where plugins' log lines are stored (`crate::plugin_logs`).
    pub plugin_logs: crate::plugin_logs::LogSink,
}

impl Services {
    pub fn from_config(
        config: &crate::config::Config,
        pool: &sqlx::PgPool,
    ) -> anyhow::Result<Self> {
        let mailer =
            email::Mailer::new(config.smtp_url.as_deref(), config.data_dir.join("outbox"))?;
        let llm = std::sync::Arc::new(crate::llm::Llm::from_config(config, pool.clone())?);
        let provider = crate::embeddings::Provider::from_config(config)?;
        let embeddings = std::sync::Arc::new(crate::embeddings::Embeddings::new(
            provider,
            llm.clone(),
            pool.clone(),
        ));
        Ok(Services {
            vectors: std::sync::Arc::new(crate::vector::VectorStore::new(pool.clone(), embeddings)),
            mailer: std::sync::Arc::new(mailer),
            sandbox: std::sync::Arc::new(crate::db::sandbox::Sandbox::new(
                pool.clone(),
                config.plugin_db_connections,
            )),
            llm,
            agents: Default::default(),
            workflows: Default::default(),
            automation: Default::default(),
            plugin_logs: crate::plugin_logs::LogSink::start(pool.clone(), Default::default()),
            http_limits: http::HttpLimits {
                timeout: config.http_timeout,
                max_body_bytes: config.http_max_body_bytes,
                max_concurrent: config.http_max_concurrent,
            },
            statement_limits: crate::db::sandbox::StatementLimits {
                timeout: config.plugin_db_statement_timeout,
                max_rows: config.plugin_db_max_rows,
                max_result_bytes: config.plugin_db_max_result_bytes,
            },
        })
    }
}

/// What one call may use: the per-capability state handed to a new store.
#[derive(Debug, Clone, Default)]
pub struct CallGrants {
    pub config: config::ConfigCtx,
    pub email: email::EmailCtx,
    pub database: database::DatabaseCtx,
    pub llm: llm::LlmCtx,
    pub http: http::HttpCtx,
    pub vector: vector::VectorCtx,
    pub agents: agents::AgentsCtx,
    pub events: events::EventsCtx,
    pub workflows: workflows::WorkflowsCtx,
    pub automation: automation::AutomationCtx,
    pub log: crate::plugin_logs::LogSink,
}

impl llm::LlmView for PluginState {
    fn llm(&mut self) -> &mut llm::LlmCtx {
        &mut self.llm
    }
}

impl vector::VectorView for PluginState {
    fn vector(&mut self) -> &mut vector::VectorCtx {
        &mut self.vector
    }
}

impl agents::AgentsView for PluginState {
    fn agents(&mut self) -> &mut agents::AgentsCtx {
        &mut self.agents
    }
}

impl events::EventsView for PluginState {
    fn events(&mut self) -> &mut events::EventsCtx {
        &mut self.events
    }
}

impl workflows::WorkflowsView for PluginState {
    fn workflows(&mut self) -> &mut workflows::WorkflowsCtx {
        &mut self.workflows
    }
}

impl database::DatabaseView for PluginState {
    fn database(&mut self) -> &mut database::DatabaseCtx {
        &mut self.database
    }
}

impl config::ConfigView for PluginState {
    fn config(&mut self) -> &mut config::ConfigCtx {
        &mut self.config
    }
}

impl automation::AutomationView for PluginState {
    fn automation(&mut self) -> &mut automation::AutomationCtx {
        &mut self.automation
    }
}
