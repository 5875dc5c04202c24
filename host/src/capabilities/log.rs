//! `agenthost:plugin/log`: plugin log lines go into the host's log, tagged with the
//! call context so they can be traced back to a request, and to the plugin log store
//! (`crate::plugin_logs`) so an admin can query them per plugin and version.

use std::collections::BTreeMap;

use wasmtime::component::{HasSelf, Linker};

use crate::plugin_logs::{self, LogSink, NewLine};
use crate::runtime::bindings::CallContext;
use crate::runtime::bindings::agenthost::plugin::log::{self as wit, Field, Level};

/// Longest message kept from a plugin; the rest is cut so a plugin can't flood logs.
const MAX_MESSAGE: usize = 4096;
/// Fields stored per line, and the longest key and value: a queued line stays small.
const MAX_FIELDS: usize = 16;
const MAX_FIELD_KEY: usize = 64;
const MAX_FIELD_VALUE: usize = 512;

pub struct LogCtx {
    plugin: String,
    version: String,
    request_id: String,
    workspace_id: Option<uuid::Uuid>,
    store: LogSink,
}

impl LogCtx {
    pub fn new(context: &CallContext, store: LogSink) -> Self {
        LogCtx {
            plugin: context.plugin.clone(),
            version: context.version.clone(),
            request_id: context.request_id.clone(),
            workspace_id: uuid::Uuid::parse_str(&context.workspace_id).ok(),
            store,
        }
    }

    fn store(&self, level: Level, message: &str, fields: &[Field]) {
        let fields: BTreeMap<String, String> = fields
            .iter()
            .take(MAX_FIELDS)
            .map(|field| {
                (
                    cap(field.key.clone(), MAX_FIELD_KEY),
                    cap(field.value.clone(), MAX_FIELD_VALUE),
                )
            })
            .collect();
        self.store.send(NewLine {
            plugin: self.plugin.clone(),
            version: self.version.clone(),
            level: match level {
                Level::Trace => plugin_logs::Level::Trace,
                Level::Debug => plugin_logs::Level::Debug,
                Level::Info => plugin_logs::Level::Info,
                Level::Warn => plugin_logs::Level::Warn,
                Level::Error => plugin_logs::Level::Error,
            },
            message: message.to_string(),
            fields,
            request_id: Some(self.request_id.clone()).filter(|id| !id.is_empty()),
            workspace_id: self.workspace_id,
            logged_at: chrono::Utc::now(),
        });
    }
}

pub trait LogView {
    fn log(&mut self) -> &mut LogCtx;
}

pub fn add_to_linker<T: LogView + Send + 'static>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    wit::add_to_linker::<T, HasSelf<LogCtx>>(linker, |state| state.log())?;
    Ok(())
}

fn cap_message(message: String) -> String {
    cap(message, MAX_MESSAGE)
}

/// Cut a text to `max` bytes (on a character boundary) and mark the cut.
fn cap(mut message: String, max: usize) -> String {
    if message.len() > max {
        let cut = (0..=max)
            .rev()
            .find(|i| message.is_char_boundary(*i))
            .unwrap_or(0);
        message.truncate(cut);
        message.push_str("...");
    }
    message
}

impl wit::Host for LogCtx {
    async fn write(&mut self, level: Level, message: String, fields: Vec<Field>) {
        let message = cap_message(message);
        self.store(level, &message, &fields);
        let fields: String = fields
            .iter()
            .map(|field| format!(" {}={:?}", field.key, field.value))
            .collect();
        let (plugin, version, request_id) = (&self.plugin, &self.version, &self.request_id);
        match level {
            Level::Trace => {
                tracing::trace!(target: "plugin", plugin, version, request_id, "{message}{fields}")
            }
            Level::Debug => {
                tracing::debug!(target: "plugin", plugin, version, request_id, "{message}{fields}")
            }
            Level::Info => {
                tracing::info!(target: "plugin", plugin, version, request_id, "{message}{fields}")
            }
            Level::Warn => {
                tracing::warn!(target: "plugin", plugin, version, request_id, "{message}{fields}")
            }
            Level::Error => {
                tracing::error!(target: "plugin", plugin, version, request_id, "{message}{fields}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let short = "fine".to_string();
        assert_eq!(cap_message(short.clone()), short);
        let flood = "é".repeat(MAX_MESSAGE); // 2 bytes each
        let capped = cap_message(flood);
        assert!(capped.ends_with("..."));
        assert!(capped.len() <= MAX_MESSAGE + 3);
        assert!(capped.trim_end_matches("...").chars().all(|c| c == 'é'));
    }
}
