//! What starts work by itself. Today: event triggers, which start a workflow for the
//! domain events (crate::events) its latest version's triggers accept. Schedules,
//! webhooks, rules and outbound webhooks come next (issue 20; docs/automation.md).

pub mod actions;
pub mod event_triggers;
pub mod hooks;
pub mod health;
pub mod outbound;
pub mod rules;
pub mod schedules;
