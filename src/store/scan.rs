//! Scans for the admin side: which bodies exist, bodies in id order (erasure
//! searches them), and bounded id ranges for retention.

use super::{Store, StoreError, TreeId};

fn id_of(k: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(k.get(..8)?.try_into().ok()?))
}

impl Store {
    /// True when the body of message `id` is still stored.
    pub fn has_body(&self, id: u64) -> Result<bool, StoreError> {
        Ok(self.tree(TreeId::Bodies).contains_key(id.to_be_bytes())?)
    }

    /// Ids of stored bodies after `after` and below `before`, at most `limit`, in id order.
    pub fn body_ids(
        &self,
        after: Option<u64>,
        before: u64,
        limit: usize,
    ) -> Result<Vec<u64>, StoreError> {
        let start = after.map(|a| a.saturating_add(1)).unwrap_or(0);
        if start >= before {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for item in self
            .tree(TreeId::Bodies)
            .range(start.to_be_bytes()..before.to_be_bytes())
            .take(limit)
        {
            let (k, _) = item?;
            out.extend(id_of(&k));
        }
        Ok(out)
    }

    /// Bodies after `after` in id order, at most `limit`, with their ids.
    pub fn bodies_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let Some(start) = (match after {
            Some(a) => a.checked_add(1),
            None => Some(0),
        }) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in self
            .tree(TreeId::Bodies)
            .range(start.to_be_bytes()..)
            .take(limit)
        {
            let (k, v) = item?;
            if let Some(id) = id_of(&k) {
                out.push((id, v.to_vec()));
            }
        }
        Ok(out)
    }

    /// Every key and value of a tree whose key or value contains `needle` (ASCII
    /// case-insensitive). For tests and audits of erasure; scans the whole tree.
    pub fn tree_mentions(&self, tree: TreeId, needle: &str) -> Result<usize, StoreError> {
        let needle = needle.to_ascii_lowercase();
        let mut n = 0;
        for item in self.tree(tree).iter() {
            let (k, v) = item?;
            if contains_ci(&k, needle.as_bytes()) || contains_ci(&v, needle.as_bytes()) {
                n += 1;
            }
        }
        Ok(n)
    }
}

/// ASCII case-insensitive substring search; `needle` must be lower-case.
pub fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    let lower: Vec<u8> = hay.iter().map(u8::to_ascii_lowercase).collect();
    memchr::memmem::find(&lower, needle).is_some()
}

impl TreeId {
    /// Every tree, for audits that must look everywhere.
    pub const ALL: [TreeId; 16] = [
        TreeId::Messages,
        TreeId::Bodies,
        TreeId::Schedule,
        TreeId::Events,
        TreeId::EvRcpt,
        TreeId::EvMsg,
        TreeId::EvStatus,
        TreeId::Suppressions,
        TreeId::MsgIds,
        TreeId::Outbox,
        TreeId::Quarantine,
        TreeId::Unverified,
        TreeId::Applied,
        TreeId::Unblocked,
        TreeId::Current,
        TreeId::CurrentByTime,
    ];
}
