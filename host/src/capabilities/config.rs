//! `agenthost:plugin/config`: the plugin's settings, and the secrets its version was
//! granted. A secret not granted is `denied` even when it exists.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;
use wasmtime::component::{HasSelf, Linker};

use crate::runtime::bindings::Error;
use crate::runtime::bindings::agenthost::plugin::config as wit;

#[derive(Debug, Clone, Default)]
pub struct ConfigCtx {
    /// Settings of the plugin (set by admins).
    pub settings: Arc<HashMap<String, Value>>,
    /// Names of the secrets this plugin version is granted.
    pub granted_secrets: Arc<BTreeSet<String>>,
    /// Values of the granted secrets (never the others).
    pub secret_values: Arc<HashMap<String, String>>,
}

pub trait ConfigView {
    fn config(&mut self) -> &mut ConfigCtx;
}

pub fn add_to_linker<T: ConfigView + Send + 'static>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    wit::add_to_linker::<T, HasSelf<ConfigCtx>>(linker, |state| state.config())?;
    Ok(())
}

impl wit::Host for ConfigCtx {
    async fn get(&mut self, key: String) -> Option<String> {
        self.settings.get(&key).map(Value::to_string)
    }

    async fn secret(&mut self, name: String) -> Result<String, Error> {
        if !self.granted_secrets.contains(&name) {
            return Err(Error::Denied(format!(
                "secret {name:?} is not granted to this plugin version"
            )));
        }
        self.secret_values
            .get(&name)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("secret {name:?} has no value")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wit::Host;

    #[tokio::test]
    async fn only_granted_secrets_are_readable() {
        let mut ctx = ConfigCtx {
            granted_secrets: Arc::new(["api_key".to_string(), "unset".to_string()].into()),
            secret_values: Arc::new([("api_key".to_string(), "s3cr3t".to_string())].into()),
            ..ConfigCtx::default()
        };
        assert!(matches!(ctx.secret("api_key".into()).await, Ok(v) if v == "s3cr3t"));
        assert!(matches!(
            ctx.secret("other".into()).await,
            Err(Error::Denied(_))
        ));
        assert!(matches!(
            ctx.secret("unset".into()).await,
            Err(Error::NotFound(_))
        ));
    }
}
