//! A short-lived in-memory cache of resolved API keys, so an authenticated request
//! doesn't cost a database round trip. Revoking a key on this host drops it from the
//! cache at once; other replicas notice within the TTL (`--auth-cache-ttl`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::KeyPrincipal;

#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<Vec<u8>, (KeyPrincipal, Instant)>>,
}

/// More entries than this and the cache starts over (bounded memory under a flood of
/// distinct keys).
const MAX_ENTRIES: usize = 100_000;

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        KeyCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, hash: &[u8]) -> Option<KeyPrincipal> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(hash)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(key, _)| key.clone())
    }

    pub fn put(&self, hash: Vec<u8>, key: KeyPrincipal) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(hash, (key, Instant::now()));
    }

    /// Forget a key (after it was revoked).
    pub fn forget(&self, key_id: Uuid) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, (key, _)| key.key_id != key_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn key(id: u128) -> KeyPrincipal {
        KeyPrincipal {
            key_id: Uuid::from_u128(id),
            workspace_id: Uuid::nil(),
            role: Role::Member,
        }
    }

    #[test]
    fn entries_expire_and_can_be_forgotten() {
        let cache = KeyCache::new(Duration::from_millis(50));
        cache.put(vec![1], key(1));
        cache.put(vec![2], key(2));
        assert_eq!(cache.get(&[1]).map(|k| k.key_id), Some(Uuid::from_u128(1)));
        cache.forget(Uuid::from_u128(1));
        assert!(cache.get(&[1]).is_none());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get(&[2]).is_none(), "expired");
    }

    #[test]
    fn a_zero_ttl_disables_caching() {
        let cache = KeyCache::new(Duration::ZERO);
        cache.put(vec![1], key(1));
        assert!(cache.get(&[1]).is_none());
    }
}
