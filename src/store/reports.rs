//! What the returned-mail path must remember beyond the communications log:
//!
//! - the security log (`unverified`): returned reports that were not tied to a
//!   recipient by a signed tag or token, bounded to [`MAX_UNVERIFIED`] entries
//!   (the oldest go first), never indexed under a recipient and never sent by webhook;
//! - the digests of reports already applied (`applied`), so a replay changes nothing;
//! - the time of each address's last manual removal from the suppression list
//!   (`unblocked`), so a report about a copy sent before it does not suppress again.

use super::events::{event_key, key_time};
use super::{Store, StoreError, TreeId, WriteSet, hex, unhex};
use crate::model::Event;
use crate::model::address::suppression_key;
use crate::model::time::Timestamp;

/// Most entries kept in the security log.
pub const MAX_UNVERIFIED: usize = 10_000;

impl WriteSet {
    /// Adds an (already stamped) entry to the security log.
    pub fn put_unverified(&mut self, ev: &Event) {
        if let Some(key) = unhex(&ev.id) {
            self.insert(
                TreeId::Unverified,
                key,
                serde_json::to_vec(ev).unwrap_or_default(),
            );
        }
    }

    /// Records that the report with this digest was applied at `time`.
    pub fn mark_applied(&mut self, digest: &[u8], time: Timestamp) {
        self.insert(
            TreeId::Applied,
            digest.to_vec(),
            time.millis().to_be_bytes().to_vec(),
        );
    }

    /// Records an operator's removal of `address` from the suppression list at `time`.
    pub fn put_unblocked(&mut self, address: &str, time: Timestamp) {
        if let Some(k) = suppression_key(address) {
            self.insert(
                TreeId::Unblocked,
                k.into_bytes(),
                time.millis().to_be_bytes().to_vec(),
            );
        }
    }
}

impl Store {
    /// Stamps `ev` and adds it to `ws` for the security log, with removals of the oldest
    /// entries that keep the log within [`MAX_UNVERIFIED`].
    pub fn log_unverified(&self, ws: &mut WriteSet, ev: &mut Event) -> Result<(), StoreError> {
        self.stamp_event(ev)?;
        let excess = (self.size(TreeId::Unverified) + 1).saturating_sub(MAX_UNVERIFIED);
        for item in self.tree(TreeId::Unverified).iter().keys().take(excess) {
            ws.remove(TreeId::Unverified, item?.to_vec());
        }
        ws.put_unverified(ev);
        Ok(())
    }

    /// Security-log entries, newest first, older than `cursor` (an entry id) when given.
    pub fn unverified(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Event>, Option<String>), StoreError> {
        let end = match cursor.and_then(unhex) {
            Some(k) => k,
            None => event_key(Timestamp(i64::MAX), u64::MAX).to_vec(),
        };
        let mut out = Vec::new();
        for item in self.tree(TreeId::Unverified).range(..end).rev() {
            let (k, v) = item?;
            let Ok(mut ev) = serde_json::from_slice::<Event>(&v) else {
                continue;
            };
            // JSON carries seconds; the key carries the exact milliseconds.
            if let Some(t) = key_time(&k) {
                ev.time = t;
            }
            out.push(ev);
            if out.len() >= limit {
                return Ok((out, Some(hex(&k))));
            }
        }
        Ok((out, None))
    }

    /// Adds to `ws` the removal of every security-log entry that names `address` (as its
    /// claimed recipient or anywhere in its text, any case); returns how many.
    pub fn erase_unverified(&self, ws: &mut WriteSet, address: &str) -> Result<usize, StoreError> {
        let needle = address.to_lowercase();
        let key = suppression_key(address);
        let mut n = 0;
        for item in self.tree(TreeId::Unverified).iter() {
            let (k, v) = item?;
            let Ok(ev) = serde_json::from_slice::<Event>(&v) else {
                continue;
            };
            let by_key = key.is_some() && ev.recipient.as_deref().and_then(suppression_key) == key;
            if by_key || String::from_utf8_lossy(&v).to_lowercase().contains(&needle) {
                ws.remove(TreeId::Unverified, k.to_vec());
                n += 1;
            }
        }
        Ok(n)
    }

    /// Entries in the security log.
    pub fn unverified_count(&self) -> usize {
        self.size(TreeId::Unverified)
    }

    /// When the report with this digest was applied, if it was.
    pub fn applied_at(&self, digest: &[u8]) -> Result<Option<Timestamp>, StoreError> {
        Ok(self
            .tree(TreeId::Applied)
            .get(digest)?
            .and_then(|v| read_time(&v)))
    }

    /// When `address` was last removed from the suppression list by an operator.
    pub fn unblocked_at(&self, address: &str) -> Result<Option<Timestamp>, StoreError> {
        let Some(k) = suppression_key(address) else {
            return Ok(None);
        };
        Ok(self
            .tree(TreeId::Unblocked)
            .get(k.as_bytes())?
            .and_then(|v| read_time(&v)))
    }
}

fn read_time(v: &[u8]) -> Option<Timestamp> {
    Some(Timestamp(i64::from_be_bytes(v.try_into().ok()?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventKind;

    #[test]
    fn the_security_log_is_bounded_and_pages_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for i in 0..(MAX_UNVERIFIED + 5) {
            let mut ws = WriteSet::new();
            let mut ev = Event::new(EventKind::Unverified, Timestamp(1_000_000 + i as i64));
            ev.diagnostic = Some(format!("n{i}"));
            store.log_unverified(&mut ws, &mut ev).unwrap();
            store.apply(&ws).unwrap();
        }
        assert_eq!(store.unverified_count(), MAX_UNVERIFIED);
        let (page, next) = store.unverified(None, 2).unwrap();
        let last = format!("n{}", MAX_UNVERIFIED + 4);
        assert_eq!(page[0].diagnostic.as_deref(), Some(last.as_str()));
        let (page2, _) = store.unverified(next.as_deref(), 1).unwrap();
        assert_eq!(
            page2[0].diagnostic.as_deref(),
            Some(format!("n{}", MAX_UNVERIFIED + 2).as_str())
        );
        // The oldest five went.
        let (all, _) = store.unverified(None, MAX_UNVERIFIED + 10).unwrap();
        assert_eq!(all.last().unwrap().diagnostic.as_deref(), Some("n5"));
    }

    #[test]
    fn erasure_reaches_the_security_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for (i, (rcpt, diag)) in [
            ("Pupil@Example.net", "x"),
            ("other@example.net", "mentions pupil@example.net"),
            ("other@example.net", "nothing"),
        ]
        .iter()
        .enumerate()
        {
            let mut ws = WriteSet::new();
            let mut ev = Event::new(EventKind::Unverified, Timestamp(1000 + i as i64));
            ev.recipient = Some(rcpt.to_string());
            ev.diagnostic = Some(diag.to_string());
            store.log_unverified(&mut ws, &mut ev).unwrap();
            store.apply(&ws).unwrap();
        }
        let mut ws = WriteSet::new();
        assert_eq!(
            store
                .erase_unverified(&mut ws, "pupil@example.net")
                .unwrap(),
            2
        );
        store.apply(&ws).unwrap();
        let (left, _) = store.unverified(None, 10).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].diagnostic.as_deref(), Some("nothing"));
    }

    #[test]
    fn applied_digests_and_unblock_times_are_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut ws = WriteSet::new();
        ws.mark_applied(b"digest-1", Timestamp(5));
        ws.put_unblocked("Pupil@Example.NET", Timestamp(9));
        store.apply(&ws).unwrap();
        assert_eq!(store.applied_at(b"digest-1").unwrap(), Some(Timestamp(5)));
        assert_eq!(store.applied_at(b"digest-2").unwrap(), None);
        assert_eq!(
            store.unblocked_at("pupil@example.net").unwrap(),
            Some(Timestamp(9))
        );
        assert_eq!(store.unblocked_at("other@example.net").unwrap(), None);
    }
}
