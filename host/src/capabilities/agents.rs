//! `agenthost:plugin/agents`: a turn of one of the calling workspace's agents, for the
//! agents the grant names. The turn is the same as `POST /api/agents/{id}/chat` (same
//! tool loop, limits and record); it is recorded as made by `plugin:<name>`.

use std::sync::{Arc, OnceLock};

use wasmtime::component::{HasSelf, Linker};

use crate::registry::manifest::AgentsCapability;
use crate::runtime::bindings::Error;
use crate::runtime::bindings::agenthost::plugin::agents as wit;

/// Runs agent turns for plugins. Implemented by the chat service (`agents::runner`);
/// a trait so the capability doesn't own the chat machinery, which needs the registry
/// that owns the capability.
pub trait AgentRunner: Send + Sync + std::fmt::Debug {
    /// One JSON turn; the error is already the plugin's error variant.
    fn run_turn<'a>(
        &'a self,
        workspace: uuid::Uuid,
        caller: &'a str,
        agent: &'a str,
        message: String,
        conversation: Option<uuid::Uuid>,
    ) -> TurnFuture<'a>;
}

pub type TurnFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, Error>> + Send + 'a>>;

/// Set once at start, after the registry exists (see `server`).
pub type RunnerSlot = Arc<OnceLock<Arc<dyn AgentRunner>>>;

#[derive(Clone, Default)]
pub struct AgentsCtx {
    pub plugin: String,
    pub workspace: Option<uuid::Uuid>,
    pub grant: Option<AgentsCapability>,
    pub runner: RunnerSlot,
}

impl std::fmt::Debug for AgentsCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentsCtx")
            .field("plugin", &self.plugin)
            .field("grant", &self.grant)
            .finish()
    }
}

pub trait AgentsView {
    fn agents(&mut self) -> &mut AgentsCtx;
}

pub fn add_to_linker<T: AgentsView + Send + 'static>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    wit::add_to_linker::<T, HasSelf<AgentsCtx>>(linker, |state| state.agents())?;
    Ok(())
}

impl wit::Host for AgentsCtx {
    async fn run_turn(
        &mut self,
        agent: String,
        message: String,
        conversation_id: Option<String>,
    ) -> Result<String, Error> {
        let grant = self.grant.as_ref().ok_or_else(|| {
            Error::Denied("the agents capability is not granted to this plugin version".into())
        })?;
        if !grant.agents.iter().any(|a| a == "*" || *a == agent) {
            return Err(Error::Denied(format!(
                "agent {agent:?} is not granted to this plugin version (granted: {})",
                grant.agents.join(", ")
            )));
        }
        let workspace = self
            .workspace
            .ok_or_else(|| Error::Invalid("this call has no workspace to run agents in".into()))?;
        let conversation = match conversation_id {
            Some(id) => Some(
                uuid::Uuid::parse_str(&id)
                    .map_err(|_| Error::Invalid(format!("conversation id {id:?} is not a UUID")))?,
            ),
            None => None,
        };
        let runner = self
            .runner
            .get()
            .ok_or_else(|| Error::Unavailable("agents are not available on this host".into()))?
            .clone();
        let caller = format!("plugin:{}", self.plugin);
        runner
            .run_turn(workspace, &caller, &agent, message, conversation)
            .await
    }
}
