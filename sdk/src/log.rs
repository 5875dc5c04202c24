//! Structured logging into the host's log. Lines carry the call's plugin, version and
//! request id automatically.
//!
//! ```
//! agenthost_sdk::log::write(agenthost_sdk::log::Level::Info, "fetched", &[("rows", "3")]);
//! agenthost_sdk::log::warn("slow upstream");
//! ```

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Very detailed.
    Trace,
    /// For debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected but handled.
    Warn,
    /// Something failed.
    Error,
}

/// Write a log line with structured fields.
pub fn write(level: Level, message: &str, fields: &[(&str, &str)]) {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::__private::bindings::agenthost::plugin::log as raw;
        let level = match level {
            Level::Trace => raw::Level::Trace,
            Level::Debug => raw::Level::Debug,
            Level::Info => raw::Level::Info,
            Level::Warn => raw::Level::Warn,
            Level::Error => raw::Level::Error,
        };
        let fields: Vec<raw::Field> = fields
            .iter()
            .map(|(key, value)| raw::Field {
                key: key.to_string(),
                value: value.to_string(),
            })
            .collect();
        raw::write(level, message, &fields);
    }
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::record_log(level, message, fields);
}

/// Log at info level.
pub fn info(message: &str) {
    write(Level::Info, message, &[]);
}

/// Log at warn level.
pub fn warn(message: &str) {
    write(Level::Warn, message, &[]);
}

/// Log at error level.
pub fn error(message: &str) {
    write(Level::Error, message, &[]);
}

/// Log at debug level.
pub fn debug(message: &str) {
    write(Level::Debug, message, &[]);
}
