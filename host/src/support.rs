//! Customer support (issue 13, docs/cassie.md): tickets, the knowledge base with
//! hybrid search, answers with citations, sentiment and ticket enrichment. The rules
//! every writer must follow (ticket transitions, SLA, history, article workflow) are
//! triggers in the database (migrations 0011-0012), so the REST API and the Cassie
//! plugin cannot disagree; logic both compute lives in the `agenthost-support` crate.

pub mod tickets;
