//! Precompiled components on local disk, keyed by content sha256 and the engine's
//! compatibility hash: compiling happens once per version per host, loading a cached
//! artifact takes microseconds.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use wasmtime::component::Component;

use crate::runtime::{self, LoadError, WasmEngine};

#[derive(Debug)]
pub struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
}

impl ArtifactCache {
    pub fn new(dir: PathBuf, engine: &WasmEngine) -> Result<Self> {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(ArtifactCache {
            dir,
            engine_key: engine.compatibility_key(),
        })
    }

    fn path_for(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    /// The compiled component: from the cache when present, else compiled from
    /// `bytes` and cached.
    pub fn load(
        &self,
        engine: &WasmEngine,
        sha256: &str,
        bytes: &[u8],
    ) -> Result<Component, LoadError> {
        let path = self.path_for(sha256);
        if path.is_file() {
            match deserialize(engine, &path) {
                Ok(component) => return Ok(component),
                // A damaged or stale file is recompiled below and replaced.
                Err(err) => {
                    tracing::warn!(path = %path.display(), error = %err, "ignoring cached artifact")
                }
            }
        }
        let component = runtime::compile(engine, bytes)?;
        if let Err(err) = self.store(&path, &component) {
            tracing::warn!(path = %path.display(), error = %err, "could not cache compiled plugin");
        }
        Ok(component)
    }

    fn store(&self, path: &Path, component: &Component) -> Result<()> {
        let bytes = component.serialize().map_err(anyhow::Error::from)?;
        // Write then rename, so a reader never sees half a file.
        let partial = path.with_extension(format!("partial-{}", std::process::id()));
        std::fs::write(&partial, bytes)?;
        std::fs::rename(&partial, path)?;
        Ok(())
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &WasmEngine, path: &Path) -> Result<Component> {
    // SAFETY: deserializing runs native code from the file, so it must come from a
    // trusted compiler. These files are written only by `ArtifactCache::store` into the
    // host's own data directory (as trusted as the host binary), and their name
    // carries the engine's compatibility hash, so wasmtime's own checks see matching
    // settings.
    unsafe { Component::deserialize_file(&engine.engine, path) }.map_err(anyhow::Error::from)
}
