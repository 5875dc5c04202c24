//! Automation rules: an event type and filter, conditions, and ordered actions that run
//! as the rule's own workflow (crate::automation::actions), with priority, cooldown, an
//! hourly limit, statistics and a history (docs/automation.md, Rules).

pub mod def;
pub mod dispatch;
mod settle;
pub mod store;

pub use def::RuleInput;
pub use store::{Rule, Run};
