//! Host interfaces offered to plugins: one module per WIT interface, each with its
//! state (`XCtx`), a view trait saying where the store keeps it, and `add_to_linker`.

pub mod config;
pub mod email;
pub mod log;

use wasmtime::component::{HasData, Linker};

use crate::runtime::bindings::agenthost::plugin::types;
use crate::runtime::state::PluginState;

/// Link every host interface into the plugin linker.
pub fn add_to_linker(linker: &mut Linker<PluginState>) -> anyhow::Result<()> {
    // `types` has no functions, but components import it, so the instance must exist.
    types::add_to_linker::<PluginState, TypesOnly>(linker, |_| TypesOnly)?;
    log::add_to_linker(linker)?;
    config::add_to_linker(linker)?;
    email::add_to_linker(linker)?;
    Ok(())
}

/// Stand-in for the function-less `types` interface: no state, handed out by value.
pub struct TypesOnly;
impl types::Host for TypesOnly {}
impl HasData for TypesOnly {
    type Data<'a> = TypesOnly;
}

impl log::LogView for PluginState {
    fn log(&mut self) -> &mut log::LogCtx {
        &mut self.log
    }
}

impl email::EmailView for PluginState {
    fn email(&mut self) -> &mut email::EmailCtx {
        &mut self.email
    }
}

/// What one call may use: the per-capability state handed to a new store.
#[derive(Debug, Clone, Default)]
pub struct CallGrants {
    pub config: config::ConfigCtx,
    pub email: email::EmailCtx,
}

impl config::ConfigView for PluginState {
    fn config(&mut self) -> &mut config::ConfigCtx {
        &mut self.config
    }
}
