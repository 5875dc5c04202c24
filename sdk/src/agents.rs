//! Run a turn of one of the workspace's agents (Dexter, Cassie, Aura or one an admin
//! made), for the agents your plugin version was granted
//! (`"capabilities": {"agents": {"agents": ["dexter"]}}`).
//!
//! ```
//! use agenthost_sdk::{agents, testing::TestHost};
//! use serde_json::json;
//! let _host = TestHost::new()
//!     .agent(|agent, message, _| Ok(json!({"text": format!("{agent} heard: {message}")})))
//!     .install();
//! let turn = agents::run_turn("dexter", "Q4 revenue?", None).unwrap();
//! assert_eq!(turn.text, "dexter heard: Q4 revenue?");
//! ```

use serde_json::Value;

use crate::Error;

/// A finished turn.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    /// The agent's final answer.
    pub text: String,
    /// Pass it to the next `run_turn` to continue the conversation.
    pub conversation_id: Option<String>,
    /// The whole turn as the host returned it: `turn_id`, `tool_calls`, `usage`,
    /// `steps`, `stopped`.
    pub raw: Value,
}

/// Run one turn of `agent` (slug or id) with `message`, continuing `conversation_id`.
pub fn run_turn(agent: &str, message: &str, conversation_id: Option<&str>) -> Result<Turn, Error> {
    let raw = {
        #[cfg(target_arch = "wasm32")]
        {
            use crate::__private::bindings::agenthost::plugin::agents as raw;
            let text = raw::run_turn(agent, message, conversation_id).map_err(Error::from)?;
            serde_json::from_str::<Value>(&text)
                .map_err(|e| Error::Internal(format!("the host's turn is not JSON: {e}")))?
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            crate::testing::run_agent(agent, message, conversation_id)?
        }
    };
    Ok(Turn {
        text: raw["text"].as_str().unwrap_or_default().to_string(),
        conversation_id: raw["conversation_id"].as_str().map(String::from),
        raw,
    })
}
