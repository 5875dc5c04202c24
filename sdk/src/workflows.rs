//! Start executions of the calling workspace's workflows, for the workflows your
//! plugin version was granted by slug
//! (`"capabilities": {"workflows": {"workflows": ["invoice-approval"]}}`, or `*`).
//!
//! ```
//! use agenthost_sdk::{testing::{self, TestHost}, workflows};
//! use serde_json::json;
//! let _host = TestHost::new().workflows(&["invoice-approval"]).install();
//! let first = workflows::start("invoice-approval", &json!({"invoice": 7}), Some("inv-7")).unwrap();
//! assert!(first.new);
//! let again = workflows::start("invoice-approval", &json!({"invoice": 7}), Some("inv-7")).unwrap();
//! assert_eq!((again.new, again.execution_id), (false, first.execution_id));
//! assert_eq!(testing::started_workflows().len(), 1);
//! assert!(workflows::start("payroll", &json!({}), None).is_err());
//! ```

use serde_json::Value;

use crate::Error;

/// An execution that was started (or, for a repeated key, found).
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    /// Its id (a UUID).
    pub execution_id: String,
    /// `running` when just started; a repeated key gives the first execution's status.
    pub status: String,
    /// False when the idempotency key was used before and nothing new started.
    pub new: bool,
    /// The host's answer as JSON.
    pub raw: Value,
}

/// Start `workflow` (slug or id) with `input`. With `idempotency_key`, a key your
/// plugin used before returns that first execution and starts nothing (keys are per
/// plugin). See the WIT `workflows.start` for the errors.
pub fn start(
    workflow: &str,
    input: &Value,
    idempotency_key: Option<&str>,
) -> Result<Execution, Error> {
    let raw = {
        #[cfg(target_arch = "wasm32")]
        {
            use crate::__private::bindings::agenthost::plugin::workflows as raw;
            let text =
                raw::start(workflow, &input.to_string(), idempotency_key).map_err(Error::from)?;
            serde_json::from_str::<Value>(&text)
                .map_err(|e| Error::Internal(format!("the host's answer is not JSON: {e}")))?
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            crate::testing::start_workflow(workflow, input, idempotency_key)?
        }
    };
    Ok(Execution {
        execution_id: raw["execution_id"].as_str().unwrap_or_default().to_string(),
        status: raw["status"].as_str().unwrap_or_default().to_string(),
        new: raw["new"].as_bool().unwrap_or(true),
        raw,
    })
}
