//! Logging setup, and the Prometheus metrics in [`metrics`].

pub mod metrics;

use tracing_subscriber::EnvFilter;

/// Install the global subscriber. `filter` uses `tracing`'s directive syntax;
/// `RUST_LOG`, when set, wins (the convention people expect).
pub fn init(filter: &str, format: &str) {
    // sqlx reports PostgreSQL NOTICEs (e.g. "already exists, skipping") at info.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("sqlx::postgres::notice=warn,{filter}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    // Already installed (tests start several servers in one process): keep the first.
    let _ = result;
}
