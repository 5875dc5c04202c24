//! Customer support (issue 13, docs/cassie.md): tickets, the knowledge base with
//! hybrid search, answers with citations, sentiment and ticket enrichment. The rules
//! every writer must follow (ticket transitions, SLA, history, article workflow) are
//! triggers in the database (migrations 0011-0012), so the REST API and the Cassie
//! plugin cannot disagree; logic both compute lives in the `agenthost-support` crate.

pub mod chunking;
pub mod enrichment;
pub mod jobs;
pub mod kb;
pub mod sentiment;
pub mod tickets;

use crate::error::ApiError;

/// A database error from a rule of the support triggers (`check_violation`, or a
/// constraint) as a 422 with the trigger's own message (never PostgreSQL's text about
/// a constraint, see [`crate::error::refusal_message`]); anything else is internal.
pub fn rule_violation(error: sqlx::Error) -> ApiError {
    // check_violation (our triggers and CHECK constraints), unique_violation,
    // foreign_key_violation, not_null_violation.
    if let sqlx::Error::Database(db) = &error
        && matches!(
            db.code().as_deref(),
            Some("23514" | "23505" | "23503" | "23502")
        )
    {
        return ApiError::Invalid(crate::error::refusal_message(db.as_ref()));
    }
    ApiError::Internal(error.into())
}
