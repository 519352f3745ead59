//! The MTA-STS policy cache (RFC 8461 §5.1): tree `mta_sts`, key the recipient
//! domain (lower case), value a [`CachedPolicy`] as JSON: the policy, the id of
//! the TXT record it was fetched under, and when it expires. It outlives
//! restarts so a policy server that goes down does not switch protection off.
//! These writes are not part of the queue's state: they bypass the write sets,
//! and sled's periodic flush (or the next group commit) makes them durable.

use serde::{Deserialize, Serialize};

use crate::delivery::outbound::mta_sts::policy::Policy;
use crate::model::time::{SharedClock, SystemClock};
use crate::store::{Store, StoreError};

/// The tree's name.
pub const TREE: &str = "mta_sts";

/// A policy as cached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedPolicy {
    /// The `id=` of the TXT record when the policy was fetched.
    pub id: String,
    pub policy: Policy,
    /// Unix seconds of the fetch.
    pub fetched: u64,
    /// Unix seconds after which the policy is no longer used (`fetched + max_age`).
    pub expires: u64,
}

impl CachedPolicy {
    pub fn is_fresh(&self, now: u64) -> bool {
        now < self.expires
    }
}

/// A handle on the cache tree, with the clock that decides expiry. Cheap to clone.
#[derive(Clone)]
pub struct PolicyCache {
    tree: sled::Tree,
    clock: SharedClock,
}

impl std::fmt::Debug for PolicyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PolicyCache")
    }
}

impl Store {
    /// The MTA-STS policy cache in this database, on the system clock until
    /// [`PolicyCache::with_clock`] gives it the daemon's.
    pub fn mta_sts_cache(&self) -> Result<PolicyCache, StoreError> {
        Ok(PolicyCache {
            tree: self.db.open_tree(TREE)?,
            clock: std::sync::Arc::new(SystemClock),
        })
    }
}

impl PolicyCache {
    /// This cache on `clock`: policies are stamped and expired by its time.
    pub fn with_clock(self, clock: SharedClock) -> PolicyCache {
        PolicyCache { clock, ..self }
    }

    /// Unix seconds now, on this cache's clock.
    pub fn now(&self) -> u64 {
        u64::try_from(self.clock.now().millis() / 1000).unwrap_or(0)
    }

    /// The cached policy of `domain`, fresh or not. An undecodable entry is removed and
    /// reads as none (the next delivery fetches again).
    pub fn get(&self, domain: &str) -> Result<Option<CachedPolicy>, StoreError> {
        let Some(raw) = self.tree.get(domain.as_bytes())? else {
            return Ok(None);
        };
        match serde_json::from_slice(&raw) {
            Ok(p) => Ok(Some(p)),
            Err(e) => {
                tracing::warn!(domain, error = %e, "undecodable MTA-STS cache entry removed");
                self.tree.remove(domain.as_bytes())?;
                Ok(None)
            }
        }
    }

    pub fn put(&self, domain: &str, policy: &CachedPolicy) -> Result<(), StoreError> {
        let raw = serde_json::to_vec(policy).map_err(|e| StoreError::Db(e.to_string()))?;
        self.tree.insert(domain.as_bytes(), raw)?;
        Ok(())
    }

    /// Drops expired entries; returns how many.
    pub fn purge_expired(&self, now: u64) -> Result<usize, StoreError> {
        let mut n = 0;
        for item in self.tree.iter() {
            let (k, v) = item?;
            let expired = serde_json::from_slice::<CachedPolicy>(&v)
                .map(|p| !p.is_fresh(now))
                .unwrap_or(true);
            if expired {
                self.tree.remove(k)?;
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::outbound::mta_sts::policy::PolicyMode;

    #[test]
    fn policies_survive_reopening_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let entry = |id: &str, expires| CachedPolicy {
            id: id.into(),
            policy: Policy {
                mode: PolicyMode::Enforce,
                mx: vec!["mx.a.test".into()],
                max_age: 60,
            },
            fetched: 1000,
            expires,
        };
        {
            let store = Store::open(dir.path()).unwrap();
            let cache = store.mta_sts_cache().unwrap();
            cache.put("a.test", &entry("one", 2000)).unwrap();
            cache.put("old.test", &entry("two", 1500)).unwrap();
            store.flush_blocking().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let cache = store.mta_sts_cache().unwrap();
        assert_eq!(cache.get("a.test").unwrap(), Some(entry("one", 2000)));
        assert!(cache.get("a.test").unwrap().unwrap().is_fresh(1999));
        assert!(!cache.get("a.test").unwrap().unwrap().is_fresh(2000));
        assert_eq!(cache.get("b.test").unwrap(), None);
        assert_eq!(cache.purge_expired(1600).unwrap(), 1);
        assert_eq!(cache.get("old.test").unwrap(), None);
        cache.tree.insert("bad.test", b"not json".to_vec()).unwrap();
        assert_eq!(cache.get("bad.test").unwrap(), None);
        assert!(cache.tree.get("bad.test").unwrap().is_none());
    }
}
