//! `agenthost:plugin/log`: plugin log lines go into the host's log, tagged with the
//! call context so they can be traced back to a request.

use wasmtime::component::{HasSelf, Linker};

use crate::runtime::bindings::CallContext;
use crate::runtime::bindings::agenthost::plugin::log::{self as wit, Field, Level};

/// Longest message kept from a plugin; the rest is cut so a plugin can't flood logs.
const MAX_MESSAGE: usize = 4096;

pub struct LogCtx {
    plugin: String,
    version: String,
    request_id: String,
}

impl LogCtx {
    pub fn new(context: &CallContext) -> Self {
        LogCtx {
            plugin: context.plugin.clone(),
            version: context.version.clone(),
            request_id: context.request_id.clone(),
        }
    }
}

pub trait LogView {
    fn log(&mut self) -> &mut LogCtx;
}

pub fn add_to_linker<T: LogView + Send + 'static>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    wit::add_to_linker::<T, HasSelf<LogCtx>>(linker, |state| state.log())?;
    Ok(())
}

/// Cut a message to `MAX_MESSAGE` bytes (on a character boundary) and mark the cut.
fn cap_message(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let cut = (0..=MAX_MESSAGE)
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
