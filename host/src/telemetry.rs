//! Logging setup, and the Prometheus metrics in [`metrics`].

pub mod metrics;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// What the filter starts from, before the operator's own directives (a later directive
/// for the same target replaces these: `--log info,rmcp=info` brings rmcp back).
/// sqlx reports PostgreSQL NOTICEs (e.g. "already exists, skipping") at info.
const QUIET_TARGETS: &str = "sqlx::postgres::notice=warn";

/// rmcp logs three info lines for every stateless MCP request, one of them with the
/// client's whole capabilities: per-request detail, debug detail for us. Quiet unless
/// the operator asks for debug (or trace) everywhere.
const QUIET_UNLESS_DEBUG: &str = "rmcp=warn";

/// Install the global subscriber. `filter` uses `tracing`'s directive syntax;
/// `RUST_LOG`, when set, wins (the convention people expect).
pub fn init(filter: &str, format: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default_directives(filter)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(use_colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ));
    let result = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    // Already installed (tests start several servers in one process): keep the first.
    let _ = result;
}

fn default_directives(filter: &str) -> String {
    let everything_at_debug = filter.split(',').map(str::trim).any(|directive| {
        directive.eq_ignore_ascii_case("debug") || directive.eq_ignore_ascii_case("trace")
    });
    if everything_at_debug {
        format!("{QUIET_TARGETS},{filter}")
    } else {
        format!("{QUIET_TARGETS},{QUIET_UNLESS_DEBUG},{filter}")
    }
}

/// Colour only for a person at a terminal: in a file, a pipe or a log collector the
/// escape codes are noise. `NO_COLOR` (no-color.org) turns it off there too.
fn use_colour(log_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    log_is_terminal && no_color.is_none_or(|value| value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some("".into())));
        assert!(!use_colour(true, Some("1".into())));
        assert!(!use_colour(false, None));
    }

    #[test]
    fn the_operators_directives_come_after_the_quiet_defaults() {
        let directives = default_directives("info,rmcp=debug");
        assert_eq!(
            directives,
            "sqlx::postgres::notice=warn,rmcp=warn,info,rmcp=debug"
        );
        // Parses, and the later rmcp directive is the one kept.
        let filter = EnvFilter::new(&directives);
        let text = filter.to_string();
        assert!(text.contains("rmcp=debug"), "{text}");
        assert!(!text.contains("rmcp=warn"), "{text}");
    }

    #[test]
    fn rmcp_is_quiet_at_info_and_heard_at_debug() {
        assert!(default_directives("info").contains("rmcp=warn"));
        assert!(default_directives("agenthost=debug,info").contains("rmcp=warn"));
        assert!(!default_directives("debug").contains("rmcp=warn"));
        assert!(!default_directives("warn, TRACE").contains("rmcp=warn"));
    }
}
