//! Plugins from a directory: `<name>.wasm` with its manifest `<name>.json` beside it.
//!
//! - Bundled plugins (`--bundled-plugins-dir`, filled by `make plugins`) are installed
//!   at start when their version is missing, and activated when the plugin has no
//!   active version yet; an admin's later choices are never overridden. They ship with
//!   the host, so a newly installed bundled version is granted what its manifest
//!   requests (Dexter needs its tables); an admin can narrow that afterwards.
//! - The watched directory (`--plugin-dir`) is the author's edit-build-reload loop:
//!   a new or changed pair is installed and activated once it has stopped changing.
//!   Versions are immutable, so a rebuilt component under an existing version is
//!   installed as `<version>+dev.<sha8>` (semver build metadata).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::manifest::Manifest;
use super::{Actor, Registry, RegistryError};
use crate::auth::Principal;

/// One plugin found in a directory.
#[derive(Debug)]
pub struct PluginFiles {
    pub wasm: PathBuf,
    pub manifest: PathBuf,
}

/// Every `<name>.wasm` that has a `<name>.json` beside it, sorted by path.
pub fn scan(dir: &Path) -> Vec<PluginFiles> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PluginFiles> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
        .filter_map(|wasm| {
            let manifest = wasm.with_extension("json");
            manifest.is_file().then_some(PluginFiles { wasm, manifest })
        })
        .collect();
    found.sort_by(|a, b| a.wasm.cmp(&b.wasm));
    found
}

fn read_manifest(files: &PluginFiles) -> Result<Manifest, String> {
    let text =
        std::fs::read(&files.manifest).map_err(|e| format!("{}: {e}", files.manifest.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", files.manifest.display()))
}

fn read_component(files: &PluginFiles) -> Result<Vec<u8>, String> {
    std::fs::read(&files.wasm).map_err(|e| format!("{}: {e}", files.wasm.display()))
}

fn read(files: &PluginFiles) -> Result<(Manifest, Vec<u8>), String> {
    Ok((read_manifest(files)?, read_component(files)?))
}

/// Install bundled plugins whose version is missing; activate those with no active
/// version. Problems are logged, never fatal: a broken bundle must not stop the host.
pub async fn install_bundled(registry: &Registry, dir: &Path) {
    let principal = Principal::System("bundled");
    let actor = Actor {
        principal: &principal,
        request_id: None,
    };
    for files in scan(dir) {
        // Only the manifest is needed to know whether this version is installed; the
        // component is read only when it isn't (start-up reads nothing it won't use).
        let manifest = match read_manifest(&files) {
            Ok(manifest) => manifest,
            Err(err) => {
                tracing::warn!(error = %err, "skipping bundled plugin");
                continue;
            }
        };
        let (name, version) = (manifest.name.clone(), manifest.version.clone());
        let result = async {
            if registry.version_sha256(&name, &version).await?.is_none() {
                let bytes = read_component(&files).map_err(RegistryError::Invalid)?;
                let requested = manifest.capabilities.clone();
                registry.install(manifest, bytes, actor).await?;
                registry
                    .set_grants(&name, &version, requested, actor)
                    .await?;
                tracing::info!(plugin = %name, %version, "installed bundled plugin");
            }
            if registry.plugin(&name).await?.active_version.is_none() {
                registry.activate(&name, &version, actor).await?;
            }
            Ok::<_, RegistryError>(())
        }
        .await;
        if let Err(err) = result {
            tracing::warn!(plugin = %name, error = %err, "could not install bundled plugin");
        }
    }
}

/// Install and activate one watched pair. Returns the version that is now active.
pub async fn install_watched(registry: &Registry, files: &PluginFiles) -> Result<String, String> {
    let (mut manifest, bytes) = read(files)?;
    let sha = hex::encode(Sha256::digest(&bytes));
    let principal = Principal::System("watch");
    let actor = Actor {
        principal: &principal,
        request_id: None,
    };
    let name = manifest.name.clone();
    match registry
        .version_sha256(&name, &manifest.version)
        .await
        .map_err(|e| e.to_string())?
    {
        Some(existing) if existing == sha => {}
        existing => {
            if existing.is_some() {
                manifest.version = format!("{}+dev.{}", manifest.version, &sha[..8]);
            }
            if registry
                .version_sha256(&name, &manifest.version)
                .await
                .map_err(|e| e.to_string())?
                .is_none()
            {
                registry
                    .install(manifest.clone(), bytes, actor)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    registry
        .activate(&name, &manifest.version, actor)
        .await
        .map_err(|e| e.to_string())?;
    Ok(manifest.version)
}

/// Poll `dir`; a pair is (re)installed once its files were unchanged for one whole
/// interval (so a half-written build is never picked up).
pub fn watch(registry: Arc<Registry>, dir: PathBuf, interval: Duration) {
    let registry = Arc::downgrade(&registry);
    tokio::spawn(async move {
        type Stamp = Vec<(SystemTime, u64)>;
        let mut installed: HashMap<PathBuf, Stamp> = HashMap::new();
        let mut pending: HashMap<PathBuf, Stamp> = HashMap::new();
        loop {
            tokio::time::sleep(interval).await;
            let Some(registry) = registry.upgrade() else {
                return;
            };
            for files in scan(&dir) {
                let stamp: Stamp = [&files.wasm, &files.manifest]
                    .iter()
                    .filter_map(|p| std::fs::metadata(p).ok())
                    .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
                    .collect();
                if installed.get(&files.wasm) == Some(&stamp) {
                    continue;
                }
                // Debounce: act on the second sighting of the same stamp.
                if pending.get(&files.wasm) != Some(&stamp) {
                    pending.insert(files.wasm.clone(), stamp);
                    continue;
                }
                pending.remove(&files.wasm);
                match install_watched(&registry, &files).await {
                    Ok(version) => {
                        tracing::info!(file = %files.wasm.display(), %version, "hot-reloaded plugin")
                    }
                    Err(err) => {
                        tracing::warn!(file = %files.wasm.display(), error = %err, "plugin reload failed")
                    }
                }
                // Failed ones are retried only when the files change again.
                installed.insert(files.wasm.clone(), stamp);
            }
        }
    });
}
