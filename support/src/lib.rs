//! Support logic that the host's REST API and the Cassie plugin share, so a rule lives
//! in one place: both call these functions and differ only in how they reach the
//! database, the vector store and the LLM. Pure Rust without I/O, so it builds for the
//! host and for wasm32-wasip2.

pub mod answer;
#[cfg(feature = "language")]
pub mod language;
pub mod sentiment;
pub mod tickets;
pub mod triage;
