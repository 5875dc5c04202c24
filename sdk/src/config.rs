//! The plugin's settings and granted secrets.
//!
//! ```
//! use agenthost_sdk::{config, testing::TestHost};
//! let _host = TestHost::new().setting("greeting", "\"Hi\"").secret("api_key", "s3cr3t").install();
//! assert_eq!(config::get("greeting"), Some(serde_json::json!("Hi")));
//! assert_eq!(config::secret("api_key").unwrap(), "s3cr3t");
//! assert!(config::secret("other").is_err());
//! ```

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Error;

/// A setting's value, or None when it is not set.
pub fn get(key: &str) -> Option<Value> {
    let raw = get_raw(key)?;
    serde_json::from_str(&raw).ok()
}

/// A setting decoded into `T`; `Error::Invalid` when it has the wrong shape.
pub fn get_as<T: DeserializeOwned>(key: &str) -> Result<Option<T>, Error> {
    get(key)
        .map(|value| {
            serde_json::from_value(value)
                .map_err(|e| Error::Invalid(format!("setting {key} has the wrong shape: {e}")))
        })
        .transpose()
}

/// A secret granted to this plugin version; `Error::Denied` when not granted.
pub fn secret(name: &str) -> Result<String, Error> {
    #[cfg(target_arch = "wasm32")]
    {
        crate::__private::bindings::agenthost::plugin::config::secret(name).map_err(Error::from)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::testing::secret(name)
    }
}

fn get_raw(key: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    {
        crate::__private::bindings::agenthost::plugin::config::get(key)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::testing::setting(key)
    }
}
