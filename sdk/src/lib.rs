//! `agenthost-sdk`: write Agenthost plugins in Rust.
//!
//! The WIT contract and the plugin traits arrive with the plugin runtime (issue 3);
//! this crate exists now so the workspace layout is final and plugins can depend on it.
#![deny(missing_docs)]

/// The version of the `agenthost:plugin` WIT package this SDK targets.
pub const WIT_PACKAGE_VERSION: &str = "0.1.0";
