//! The database grant of a plugin, as its manifest and an admin's grant write it. The
//! sandbox that enforces it owns the type; the registry's manifest re-exports it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Which tables of the shared `data` schema a plugin may use, and how.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DatabaseCapability {
    /// Table name (in schema `data`, without the schema) -> access.
    #[serde(default)]
    pub tables: BTreeMap<String, TableAccess>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TableAccess {
    /// SELECT.
    Read,
    /// SELECT, INSERT, UPDATE, DELETE.
    Write,
}
