//! Emit events of your plugin's own types into the calling workspace's event feed,
//! where event triggers, automation rules and outbound webhooks react to them like to
//! the host's own. Your plugin version must be granted the types or prefixes
//! (`"capabilities": {"events": {"types": ["acme.invoice", "custom.*"]}}`); the host's
//! own namespaces (`ticket.*`, `workflow.*`, ...) are refused whatever the grant says.
//!
//! ```
//! use agenthost_sdk::{events, testing::{self, TestHost}};
//! use serde_json::json;
//! let _host = TestHost::new().events(&["acme.invoice"]).install();
//! events::emit("acme.invoice.paid", &json!({"invoice": "INV-7", "amount": 120}), Some("INV-7")).unwrap();
//! let emitted = testing::emitted_events();
//! assert_eq!(emitted[0].event_type, "acme.invoice.paid");
//! assert_eq!(emitted[0].subject.as_deref(), Some("INV-7"));
//! assert!(events::emit("ticket.created", &json!({}), None).is_err());
//! ```

use serde_json::Value;

use crate::Error;

/// Largest payload the host takes, as JSON text.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// Longest subject the host takes.
pub const MAX_SUBJECT_CHARS: usize = 500;

/// An event as the test host recorded it ([`crate::testing::emitted_events`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `acme.invoice.paid`.
    pub event_type: String,
    /// The payload (a JSON object).
    pub payload: Value,
    /// What it is about.
    pub subject: Option<String>,
}

/// Emit one event: `event_type` is lower-case dotted segments (`acme.invoice.paid`),
/// `payload` a JSON object of at most [`MAX_PAYLOAD_BYTES`], `subject` what it is about
/// (an id). It is committed at once, in a transaction of its own. In a workflow node,
/// a node run that runs again (its host died) emits nothing new. See the WIT
/// `events.emit` for the rules.
pub fn emit(event_type: &str, payload: &Value, subject: Option<&str>) -> Result<(), Error> {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::__private::bindings::agenthost::plugin::events as raw;
        raw::emit(event_type, &payload.to_string(), subject).map_err(Error::from)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::testing::record_event(event_type, payload, subject)
    }
}
