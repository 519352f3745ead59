//! The index of each (message, recipient)'s current status, kept beside the event log so
//! the undelivered report reads one small entry per recipient whose latest status changed
//! in its window instead of every event (README, "The communications log").
//!
//! | tree | key | value |
//! | --- | --- | --- |
//! | `current` | queue id ‖ recipient hash | time ms ‖ event key ‖ status byte |
//! | `current_by_time` | status byte ‖ time ms ‖ queue id ‖ recipient hash | event key ‖ status byte ‖ row |
//!
//! Keyed by status first, so the report reads only the statuses it shows: the delivered
//! majority costs it nothing.
//!
//! The row (not for `delivered`) is a copy of the event with only what a report row shows
//! (queue id, Message-ID, recipient, status, class, reason, reply codes, diagnostic), as
//! JSON, so a report, its CSV export and a search by recipient read this index alone, in
//! order, instead of one event per row scattered over the log (about 30 µs each at 1 M
//! events). Entries written before the row was kept (17-byte values) read the event itself.
//!
//! The key's recipient is a hash of its normalised address; the row names the address, so
//! erasure takes the entries of the erased events out ([`Store::unindex_current`]).

use ring::digest;

use super::queue::parse_queue_id;
use super::{Store, StoreError, TreeId, WriteSet, unhex};
use crate::model::address::suppression_key;
use crate::model::time::Timestamp;
use crate::model::{Event, Status};

/// One recipient's latest status-setting event, as the index holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub time: Timestamp,
    pub status: Status,
    /// The key of the event that set it.
    pub event: [u8; 16],
    /// The report row kept with the entry (JSON of a trimmed [`Event`]), if any.
    pub row: Option<Vec<u8>>,
}

/// The copy of `ev` a report row needs (see the module doc), as JSON.
fn row_of(ev: &Event) -> Vec<u8> {
    let mut r = Event::new(ev.status, ev.time);
    r.id = ev.id.clone();
    r.queue_id = ev.queue_id.clone();
    r.message_id = ev.message_id.clone();
    r.recipient = ev.recipient.clone();
    r.class = ev.class;
    r.reason = ev.reason;
    r.reply_code = ev.reply_code;
    r.enhanced_status = ev.enhanced_status.clone();
    r.diagnostic = ev.diagnostic.clone();
    serde_json::to_vec(&r).unwrap_or_default()
}

fn rcpt_hash(address: &str) -> [u8; 8] {
    let key = suppression_key(address).unwrap_or_else(|| address.to_lowercase());
    let d = digest::digest(&digest::SHA256, key.as_bytes());
    let mut out = [0u8; 8];
    out.copy_from_slice(&d.as_ref()[..8]);
    out
}

fn by_time_key(status: u8, time: &[u8], key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + time.len() + key.len());
    k.push(status);
    k.extend_from_slice(time);
    k.extend_from_slice(key);
    k
}

fn status_byte(s: Status) -> u8 {
    Status::ALL.iter().position(|x| *x == s).unwrap_or(0) as u8
}

impl Store {
    /// Adds to `ws` the index change for `ev` when it sets a recipient's status (the event must
    /// be stamped). The entry it replaces is read from the store: call once per event.
    pub fn index_current(&self, ws: &mut WriteSet, ev: &Event) -> Result<(), StoreError> {
        let (Some(status), Some(qid), Some(rcpt)) = (
            ev.status.status(),
            ev.queue_id.as_deref().and_then(parse_queue_id),
            ev.recipient.as_deref(),
        ) else {
            return Ok(());
        };
        let Some(ek) = unhex(&ev.id).filter(|k| k.len() == 16) else {
            return Ok(());
        };
        let mut key = qid.to_be_bytes().to_vec();
        key.extend_from_slice(&rcpt_hash(rcpt));
        if let Some(old) = self.tree(TreeId::Current).get(&key)?
            && let (Some(t), Some(st)) = (old.get(..8), old.get(24))
        {
            ws.remove(TreeId::CurrentByTime, by_time_key(*st, t, &key));
        }
        let time = (ev.time.millis().max(0) as u64).to_be_bytes();
        let mut value = ek.clone();
        value.push(status_byte(status));
        let by_time = by_time_key(status_byte(status), &time, &key);
        let mut current = time.to_vec();
        current.extend_from_slice(&value);
        if status != Status::Delivered {
            value.extend_from_slice(&row_of(ev));
        }
        ws.insert(TreeId::Current, key, current);
        ws.insert(TreeId::CurrentByTime, by_time, value);
        Ok(())
    }

    /// Adds to `ws` the removal of every index entry of the (message, recipient)s of `events`
    /// (erasure: their events are being deleted). Entries left behind by two changes in one
    /// write set are found too: the statuses that keep a row are read whole, keys only.
    pub fn unindex_current(
        &self,
        ws: &mut WriteSet,
        events: &[Event],
    ) -> Result<usize, StoreError> {
        let mut keys = std::collections::HashSet::new();
        for ev in events {
            let (Some(qid), Some(rcpt)) = (
                ev.queue_id.as_deref().and_then(parse_queue_id),
                ev.recipient.as_deref(),
            ) else {
                continue;
            };
            let mut key = qid.to_be_bytes().to_vec();
            key.extend_from_slice(&rcpt_hash(rcpt));
            keys.insert(key);
        }
        if keys.is_empty() {
            return Ok(0);
        }
        let mut n = 0;
        for k in &keys {
            if let Some(old) = self.tree(TreeId::Current).get(k)?
                && let (Some(t), Some(st)) = (old.get(..8), old.get(24))
            {
                ws.remove(TreeId::CurrentByTime, by_time_key(*st, t, k));
                ws.remove(TreeId::Current, k.clone());
                n += 1;
            }
        }
        for status in Status::ALL.into_iter().filter(|s| *s != Status::Delivered) {
            let b = status_byte(status);
            for item in self.tree(TreeId::CurrentByTime).scan_prefix([b]).keys() {
                let k = item?;
                if k.get(9..).is_some_and(|rest| keys.contains(rest)) {
                    ws.remove(TreeId::CurrentByTime, k.to_vec());
                }
            }
        }
        Ok(n)
    }

    /// Recipients whose latest status was set in `[since, until]` and is one `want` accepts,
    /// oldest first. Statuses `want` refuses are not read at all.
    pub fn current_between(
        &self,
        since: Timestamp,
        until: Timestamp,
        want: impl Fn(Status) -> bool,
    ) -> Result<Vec<Current>, StoreError> {
        let start = (since.millis().max(0) as u64).to_be_bytes();
        let end = (until.millis().max(0) as u64)
            .saturating_add(1)
            .to_be_bytes();
        let current = self.tree(TreeId::Current);
        let mut out = Vec::new();
        for status in Status::ALL.into_iter().filter(|s| want(*s)) {
            let b = status_byte(status);
            for item in self
                .tree(TreeId::CurrentByTime)
                .range(by_time_key(b, &start, &[])..by_time_key(b, &end, &[]))
            {
                let (k, v) = item?;
                let (Some(ms), Some(event)) = (k.get(1..9), v.get(..16)) else {
                    continue;
                };
                // Two status changes of one recipient in one write set leave the first one's
                // entry behind; only the entry `current` points at counts.
                if current
                    .get(&k[9..])?
                    .is_none_or(|c| c.get(8..24) != Some(event))
                {
                    continue;
                }
                let time = Timestamp(u64::from_be_bytes(ms.try_into().unwrap_or_default()) as i64);
                let row = v.get(17..).filter(|r| !r.is_empty()).map(<[u8]>::to_vec);
                out.push(Current {
                    time,
                    status,
                    event: event.try_into().unwrap_or_default(),
                    row,
                });
            }
        }
        out.sort_by_key(|c| (c.time, c.event));
        Ok(out)
    }

    /// Builds the index from the event log when it is empty but events exist (a store written
    /// before the index did); returns how many recipients it indexed. One pass over the events,
    /// the latest of each recipient kept in memory, written in batches.
    pub fn backfill_current(&self) -> Result<usize, StoreError> {
        if !self.tree(TreeId::Current).is_empty() {
            return Ok(0);
        }
        let mut latest: std::collections::HashMap<Vec<u8>, (Vec<u8>, u8)> =
            std::collections::HashMap::new();
        for item in self.tree(TreeId::Events).iter() {
            let (k, v) = item?;
            let Ok(ev) = serde_json::from_slice::<Event>(&v) else {
                continue;
            };
            let (Some(status), Some(qid), Some(rcpt)) = (
                ev.status.status(),
                ev.queue_id.as_deref().and_then(parse_queue_id),
                ev.recipient.as_deref(),
            ) else {
                continue;
            };
            let mut key = qid.to_be_bytes().to_vec();
            key.extend_from_slice(&rcpt_hash(rcpt));
            latest.insert(key, (k.to_vec(), status_byte(status)));
        }
        let n = latest.len();
        let mut ws = WriteSet::new();
        for (key, (ek, status)) in latest {
            let mut value = ek.clone();
            value.push(status);
            let by_time = by_time_key(status, &ek[..8], &key);
            let mut current = ek[..8].to_vec();
            current.extend_from_slice(&value);
            ws.insert(TreeId::Current, key, current);
            ws.insert(TreeId::CurrentByTime, by_time, value);
            if ws.len() >= 4096 {
                self.apply(&std::mem::take(&mut ws))?;
            }
        }
        self.apply(&ws)?;
        Ok(n)
    }

    /// Adds to `ws` the removal of index entries whose status was set before `cutoff` (at most
    /// `limit` per status).
    pub fn purge_current_before(
        &self,
        ws: &mut WriteSet,
        cutoff: Timestamp,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let end = (cutoff.millis().max(0) as u64).to_be_bytes();
        let mut n = 0;
        for status in Status::ALL {
            let b = status_byte(status);
            for item in self
                .tree(TreeId::CurrentByTime)
                .range(by_time_key(b, &[], &[])..by_time_key(b, &end, &[]))
                .take(limit)
            {
                let (k, _) = item?;
                ws.remove(TreeId::Current, k[9..].to_vec());
                ws.remove(TreeId::CurrentByTime, k.to_vec());
                n += 1;
            }
        }
        Ok(n)
    }

    /// The event an index entry names, if it is still kept.
    pub fn event_of(&self, c: &Current) -> Result<Option<Event>, StoreError> {
        self.event(&super::hex(&c.event))
    }

    /// What a report row shows of an index entry: the row kept with it (the event's time to
    /// the millisecond), or the event itself for an entry written without one.
    pub fn row_of(&self, c: &Current) -> Result<Option<Event>, StoreError> {
        match c
            .row
            .as_deref()
            .and_then(|r| serde_json::from_slice::<Event>(r).ok())
        {
            Some(mut e) => {
                e.time = c.time;
                Ok(Some(e))
            }
            None => self.event_of(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventKind;

    fn ev(store: &Store, kind: EventKind, ms: i64, rcpt: &str) -> Event {
        let mut e = Event::new(kind, Timestamp(ms));
        e.queue_id = Some(crate::store::queue::format_queue_id(7));
        e.recipient = Some(rcpt.into());
        store.stamp_event(&mut e).unwrap();
        e
    }

    #[test]
    fn only_the_latest_status_of_each_recipient_is_indexed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for (kind, ms, rcpt) in [
            (EventKind::Queued, 1000, "a@x.test"),
            (EventKind::Queued, 1000, "b@x.test"),
            (EventKind::Delivered, 2000, "A@X.test"),
            (EventKind::Resent, 2500, "b@x.test"),
            (EventKind::Bounced, 3000, "b@x.test"),
        ] {
            let e = ev(&store, kind, ms, rcpt);
            let mut ws = WriteSet::new();
            ws.put_event(&e, false);
            store.index_current(&mut ws, &e).unwrap();
            store.apply(&ws).unwrap();
        }
        let all = store
            .current_between(Timestamp(0), Timestamp(10_000), |_| true)
            .unwrap();
        let got: Vec<(i64, Status)> = all.iter().map(|c| (c.time.millis(), c.status)).collect();
        assert_eq!(
            got,
            vec![(2000, Status::Delivered), (3000, Status::Bounced)]
        );
        assert_eq!(
            store.event_of(&all[1]).unwrap().unwrap().status,
            EventKind::Bounced
        );
        assert!(
            store
                .current_between(Timestamp(2001), Timestamp(2999), |_| true)
                .unwrap()
                .is_empty()
        );
        let mut ws = WriteSet::new();
        assert_eq!(
            store
                .purge_current_before(&mut ws, Timestamp(2500), 100)
                .unwrap(),
            1
        );
        store.apply(&ws).unwrap();
        assert_eq!(
            store
                .current_between(Timestamp(0), Timestamp(10_000), |_| true)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn two_changes_in_one_write_set_leave_one_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut ws = WriteSet::new();
        for (kind, ms) in [(EventKind::Deferred, 1000), (EventKind::Expired, 1000)] {
            let e = ev(&store, kind, ms, "d@x.test");
            ws.put_event(&e, false);
            store.index_current(&mut ws, &e).unwrap();
        }
        store.apply(&ws).unwrap();
        let all = store
            .current_between(Timestamp(0), Timestamp(10_000), |_| true)
            .unwrap();
        assert_eq!(
            all.iter().map(|c| c.status).collect::<Vec<_>>(),
            vec![Status::Expired]
        );
    }

    #[test]
    fn an_old_store_is_backfilled_from_its_events() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut ws = WriteSet::new();
        for (kind, ms) in [
            (EventKind::Queued, 1000),
            (EventKind::Deferred, 2000),
            (EventKind::Expired, 3000),
        ] {
            ws.put_event(&ev(&store, kind, ms, "c@x.test"), false);
        }
        store.apply(&ws).unwrap();
        assert_eq!(store.backfill_current().unwrap(), 1);
        let all = store
            .current_between(Timestamp(0), Timestamp(10_000), |_| true)
            .unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].status, Status::Expired);
        assert_eq!(store.backfill_current().unwrap(), 0, "only once");
    }

    #[test]
    fn a_row_is_kept_for_undelivered_entries_and_erasure_takes_it_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut gone = ev(&store, EventKind::Bounced, 1234, "Gone@X.test");
        gone.diagnostic = Some("550 5.1.1 <gone@x.test> unknown".into());
        gone.remote_host = Some("mx.x.test".into());
        let ok = ev(&store, EventKind::Delivered, 1500, "ok@x.test");
        let mut ws = WriteSet::new();
        for e in [&gone, &ok] {
            ws.put_event(e, false);
            store.index_current(&mut ws, e).unwrap();
        }
        store.apply(&ws).unwrap();
        let all = store
            .current_between(Timestamp(0), Timestamp(10_000), |_| true)
            .unwrap();
        assert!(
            all[0].row.is_some() && all[1].row.is_none(),
            "a row for the bounce, none for the delivery"
        );
        // The row is read without the event: delete the event, the row stays readable.
        let mut ws = WriteSet::new();
        ws.delete_event(&gone);
        store.apply(&ws).unwrap();
        let row = store.row_of(&all[0]).unwrap().expect("the row");
        assert_eq!(
            (
                row.time,
                row.status,
                row.recipient.as_deref(),
                row.diagnostic.as_deref()
            ),
            (
                Timestamp(1234),
                EventKind::Bounced,
                Some("Gone@X.test"),
                gone.diagnostic.as_deref()
            )
        );
        assert_eq!(row.remote_host, None, "only what a report row shows");
        assert!(store.event_of(&all[0]).unwrap().is_none());
        // An entry without a row (written before rows were kept) reads the event.
        let old = Current {
            row: None,
            ..all[1].clone()
        };
        assert_eq!(
            store.row_of(&old).unwrap().map(|e| e.id),
            Some(ok.id.clone())
        );
        assert_eq!(
            store
                .tree_mentions(TreeId::CurrentByTime, "gone@x.test")
                .unwrap(),
            1,
            "the row names the address"
        );
        let mut ws = WriteSet::new();
        assert_eq!(
            store
                .unindex_current(&mut ws, std::slice::from_ref(&gone))
                .unwrap(),
            1
        );
        store.apply(&ws).unwrap();
        assert_eq!(
            store
                .tree_mentions(TreeId::CurrentByTime, "gone@x.test")
                .unwrap(),
            0
        );
        let left = store
            .current_between(Timestamp(0), Timestamp(10_000), |_| true)
            .unwrap();
        assert_eq!(
            left.iter().map(|c| c.status).collect::<Vec<_>>(),
            vec![Status::Delivered]
        );
    }
}
