//! The suppression list on disk: one entry per normalised address key
//! (local part lower-cased, domain lower-cased and IDN-folded), holding the
//! address as first seen, the reason, time, diagnostic and causing event.

use super::{Store, StoreError, TreeId, WriteSet};
use crate::model::address::suppression_key;
use crate::model::{Suppression, SuppressionReason};

impl WriteSet {
    /// Adds or replaces the entry for `s.address`.
    pub fn put_suppression(&mut self, s: &Suppression) {
        if let Some(k) = suppression_key(&s.address) {
            self.insert(
                TreeId::Suppressions,
                k.into_bytes(),
                serde_json::to_vec(s).unwrap_or_default(),
            );
        }
    }

    pub fn remove_suppression(&mut self, address: &str) {
        if let Some(k) = suppression_key(address) {
            self.remove(TreeId::Suppressions, k.into_bytes());
        }
    }
}

impl Store {
    /// The entry for an address, matched case-insensitively and IDN-equivalently.
    pub fn suppression(&self, address: &str) -> Result<Option<Suppression>, StoreError> {
        let Some(k) = suppression_key(address) else {
            return Ok(None);
        };
        match self.tree(TreeId::Suppressions).get(k.as_bytes())? {
            Some(v) => Ok(serde_json::from_slice(&v).ok()),
            None => Ok(None),
        }
    }

    /// Entries in address order after `cursor` (an address key), optionally of one reason.
    pub fn suppressions(
        &self,
        reason: Option<SuppressionReason>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Suppression>, Option<String>), StoreError> {
        let start = match cursor {
            Some(c) => {
                let mut k = c.as_bytes().to_vec();
                k.push(0);
                k
            }
            None => Vec::new(),
        };
        let mut out = Vec::new();
        for item in self.tree(TreeId::Suppressions).range(start..) {
            let (k, v) = item?;
            let Ok(s) = serde_json::from_slice::<Suppression>(&v) else {
                continue;
            };
            if reason.is_some_and(|r| r != s.reason) {
                continue;
            }
            out.push(s);
            if out.len() >= limit {
                return Ok((out, Some(String::from_utf8_lossy(&k).into_owned())));
            }
        }
        Ok((out, None))
    }

    pub fn suppression_count(&self) -> usize {
        self.tree(TreeId::Suppressions).len()
    }
}
