//! How many of a host's workers each node plugin holds. One plugin may hold all but
//! one, so a flood of one node type (slow HTTP calls waiting for a connection slot,
//! say) always leaves a worker for the ready nodes of every other type; the engine's
//! claims pass over the plugins at their share (docs/decisions.md, "One node type
//! cannot hold every worker").

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub(super) struct Shares {
    held: Arc<Mutex<HashMap<String, usize>>>,
    /// The most one plugin may hold.
    most: usize,
}

/// A worker held by a node of one plugin; given back when dropped.
pub(super) struct Share {
    plugin: Option<String>,
    held: Arc<Mutex<HashMap<String, usize>>>,
}

impl Shares {
    pub(super) fn new(workers: usize) -> Shares {
        Shares {
            held: Arc::default(),
            most: workers.saturating_sub(1).max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A worker for a node of `plugin`, unless the plugin holds its share (or
    /// `replacing` one of its own that is about to be given back). Runs made before
    /// plugins were recorded (`None`) are not counted.
    pub(super) fn take(&self, plugin: Option<&str>, replacing: bool) -> Option<Share> {
        if let Some(plugin) = plugin {
            let mut held = self.lock();
            let count = held.entry(plugin.to_string()).or_insert(0);
            if *count >= self.most && !replacing {
                return None;
            }
            *count += 1;
        }
        Some(Share {
            plugin: plugin.map(str::to_string),
            held: self.held.clone(),
        })
    }

    /// The plugins whose ready runs this host passes over for now.
    pub(super) fn full(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, count)| **count >= self.most)
            .map(|(plugin, _)| plugin.clone())
            .collect()
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let Some(plugin) = &self.plugin else { return };
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = held.get_mut(plugin) {
            *count -= 1;
            if *count == 0 {
                held.remove(plugin);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_holds_all_workers_but_one_and_gives_them_back() {
        let shares = Shares::new(3);
        let first = shares.take(Some("http"), false).unwrap();
        let second = shares.take(Some("http"), false).unwrap();
        assert!(shares.take(Some("http"), false).is_none());
        assert_eq!(shares.full(), ["http"]);
        // Another plugin, a run from before plugins were recorded, and a successor
        // replacing its predecessor's share still get one.
        let core = shares.take(Some("core"), false).unwrap();
        assert!(shares.take(None, false).is_some());
        let handed = shares.take(Some("http"), true).unwrap();
        drop((first, second, handed, core));
        assert!(shares.full().is_empty());
        assert!(shares.take(Some("http"), false).is_some());
        // One worker: a plugin still gets it.
        assert!(Shares::new(1).take(Some("http"), false).is_some());
    }
}
