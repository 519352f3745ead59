//! The communications log: every event of every recipient, append-only, keyed
//! by `time ‖ seq`, with secondary indexes by recipient, by message and by
//! status so a query never scans the whole log. Queries page with an opaque
//! cursor (the last event key seen).

use super::{Store, StoreError, TreeId, WriteSet, hex, unhex};
use crate::model::Event;
use crate::model::address::suppression_key;
use crate::model::time::Timestamp;

/// A filter over the log. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Recipient address (matched on its normalised key).
    pub recipient: Option<String>,
    /// Event kinds by wire name (`"bounced"`, `"deferred"` ...).
    pub statuses: Vec<String>,
    pub queue_id: Option<u64>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub limit: usize,
    /// Continue after this cursor (from a previous page).
    pub cursor: Option<String>,
    /// Oldest first instead of newest first.
    pub ascending: bool,
}

/// One page of results.
#[derive(Debug, Clone)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// Pass back as `cursor` for the next page; `None` at the end.
    pub next_cursor: Option<String>,
}

/// A page of events stops once it holds about this many bytes, whatever its `limit`: the
/// rest comes with the next cursor, so one request never builds an answer of hundreds of MB.
pub const PAGE_BYTES: usize = 4 * 1024 * 1024;

/// Roughly the bytes an event takes as JSON (its texts plus the fixed fields).
pub(super) fn approx_size(ev: &Event) -> usize {
    let texts = [
        &ev.diagnostic,
        &ev.recipient,
        &ev.message_id,
        &ev.remote_host,
        &ev.rule,
        &ev.feedback_type,
    ];
    320 + texts
        .iter()
        .map(|t| t.as_deref().map_or(0, str::len))
        .sum::<usize>()
}

/// The time an event key (see [`event_key`]) carries, to the millisecond.
pub(super) fn key_time(key: &[u8]) -> Option<Timestamp> {
    key.get(..8)
        .and_then(|b| b.try_into().ok())
        .map(|b| Timestamp(u64::from_be_bytes(b) as i64))
}

/// The 16-byte key of an event: big-endian time in ms, then a unique sequence number.
pub fn event_key(time: Timestamp, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&(time.millis().max(0) as u64).to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn rcpt_index_key(rcpt: &str, key: &[u8]) -> Vec<u8> {
    let mut k = suppression_key(rcpt)
        .unwrap_or_else(|| rcpt.to_lowercase())
        .into_bytes();
    k.push(0);
    k.extend_from_slice(key);
    k
}

fn status_index_key(status: &str, key: &[u8]) -> Vec<u8> {
    let mut k = status.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(key);
    k
}

fn msg_index_key(queue_id: u64, key: &[u8]) -> Vec<u8> {
    let mut k = queue_id.to_be_bytes().to_vec();
    k.extend_from_slice(key);
    k
}

impl WriteSet {
    /// Appends an event (its `id` must already be set by [`Store::stamp_event`]) with its indexes;
    /// `outbox` also queues it for the webhook.
    pub fn put_event(&mut self, ev: &Event, outbox: bool) {
        let Some(key) = unhex(&ev.id) else { return };
        if let Some(r) = &ev.recipient {
            self.insert(TreeId::EvRcpt, rcpt_index_key(r, &key), Vec::new());
        }
        if let Some(q) = ev
            .queue_id
            .as_deref()
            .and_then(super::queue::parse_queue_id)
        {
            self.insert(TreeId::EvMsg, msg_index_key(q, &key), Vec::new());
        }
        self.insert(
            TreeId::EvStatus,
            status_index_key(ev.status.as_str(), &key),
            Vec::new(),
        );
        if outbox {
            self.insert(TreeId::Outbox, key.to_vec(), Vec::new());
        }
        self.insert(
            TreeId::Events,
            key.to_vec(),
            serde_json::to_vec(ev).unwrap_or_default(),
        );
    }

    /// Removes an event and its index entries.
    pub fn delete_event(&mut self, ev: &Event) {
        let Some(key) = unhex(&ev.id) else { return };
        if let Some(r) = &ev.recipient {
            self.remove(TreeId::EvRcpt, rcpt_index_key(r, &key));
        }
        if let Some(q) = ev
            .queue_id
            .as_deref()
            .and_then(super::queue::parse_queue_id)
        {
            self.remove(TreeId::EvMsg, msg_index_key(q, &key));
        }
        self.remove(TreeId::EvStatus, status_index_key(ev.status.as_str(), &key));
        self.remove(TreeId::Outbox, key.to_vec());
        self.remove(TreeId::Events, key.to_vec());
    }
}

impl Store {
    /// Gives an event its unique id (derived from its time and a sequence number).
    pub fn stamp_event(&self, ev: &mut Event) -> Result<(), StoreError> {
        if ev.id.is_empty() {
            ev.id = hex(&event_key(ev.time, self.generate_id()?));
        }
        Ok(())
    }

    /// Reads one event by id.
    pub fn event(&self, id: &str) -> Result<Option<Event>, StoreError> {
        let Some(key) = unhex(id).filter(|k| k.len() == 16) else {
            return Ok(None);
        };
        self.event_by_key(&key)
    }

    pub(super) fn event_by_key(&self, key: &[u8]) -> Result<Option<Event>, StoreError> {
        match self.tree(TreeId::Events).get(key)? {
            Some(v) => match serde_json::from_slice::<Event>(&v) {
                Ok(mut e) => {
                    // JSON carries seconds; the key carries the exact milliseconds.
                    if let Some(t) = key_time(key) {
                        e.time = t;
                    }
                    Ok(Some(e))
                }
                Err(e) => {
                    tracing::error!(key = %hex(key), error = %e, "corrupt event record");
                    self.quarantine(TreeId::Events, key)?;
                    Ok(None)
                }
            },
            None => Ok(None),
        }
    }

    /// Runs a query using the most selective index available.
    pub fn query_events(&self, q: &EventQuery) -> Result<EventPage, StoreError> {
        let limit = q.limit.clamp(1, 10_000);
        let (tree, prefix) = self.choose_index(q);
        let (lo, hi) = query_range(q, &prefix)?;
        let mut events = Vec::new();
        let (mut last, mut bytes, mut full) = (None, 0usize, false);
        if lo > hi {
            return Ok(EventPage {
                events,
                next_cursor: None,
            });
        }
        let range = self.tree(tree).range(lo..=hi);
        let iter: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = if q.ascending
        {
            Box::new(range)
        } else {
            Box::new(range.rev())
        };
        for item in iter {
            let (k, _) = item?;
            let key = &k[k.len() - 16..];
            let Some(ev) = self.event_by_key(key)? else {
                continue;
            };
            if matches(&ev, q) {
                last = Some(key.to_vec());
                bytes += approx_size(&ev);
                events.push(ev);
                if events.len() >= limit || bytes >= PAGE_BYTES {
                    full = true;
                    break;
                }
            }
        }
        let next_cursor = if full { last.map(|k| hex(&k)) } else { None };
        Ok(EventPage {
            events,
            next_cursor,
        })
    }

    fn choose_index(&self, q: &EventQuery) -> (TreeId, Vec<u8>) {
        if let Some(id) = q.queue_id {
            return (TreeId::EvMsg, id.to_be_bytes().to_vec());
        }
        if let Some(r) = &q.recipient {
            let mut p = suppression_key(r)
                .unwrap_or_else(|| r.to_lowercase())
                .into_bytes();
            p.push(0);
            return (TreeId::EvRcpt, p);
        }
        if q.statuses.len() == 1 {
            let mut p = q.statuses[0].as_bytes().to_vec();
            p.push(0);
            return (TreeId::EvStatus, p);
        }
        (TreeId::Events, Vec::new())
    }

    /// Events older than `cutoff`, oldest first, at most `limit` (for retention).
    pub fn events_before(&self, cutoff: Timestamp, limit: usize) -> Result<Vec<Event>, StoreError> {
        let end = event_key(cutoff, 0);
        let mut out = Vec::new();
        for item in self.tree(TreeId::Events).range(..end.to_vec()).take(limit) {
            let (k, _) = item?;
            if let Some(e) = self.event_by_key(&k)? {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Event keys waiting in the webhook outbox, oldest first.
    pub fn outbox(&self, limit: usize) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        let mut stale = Vec::new();
        for item in self.tree(TreeId::Outbox).iter().take(limit) {
            let (k, _) = item?;
            match self.event_by_key(&k)? {
                Some(e) => out.push(e),
                None => stale.push(k),
            }
        }
        if !stale.is_empty() {
            let mut ws = WriteSet::new();
            for k in stale {
                ws.remove(TreeId::Outbox, k.to_vec());
            }
            self.apply(&ws)?;
        }
        Ok(out)
    }

    /// True when the webhook outbox holds at least `n` events; reads at most `n` keys (the tree
    /// itself, not the counter, so that the webhook task never waits on a miscount).
    pub fn outbox_holds(&self, n: usize) -> bool {
        self.tree(TreeId::Outbox).iter().keys().take(n).count() >= n
    }

    pub fn outbox_len(&self) -> usize {
        self.size(TreeId::Outbox)
    }

    pub fn event_count(&self) -> usize {
        self.tree(TreeId::Events).len()
    }
}

/// The keys of `prefix`'s index a query reads: its time bounds, narrowed past its cursor
/// in the direction it reads.
fn query_range(q: &EventQuery, prefix: &[u8]) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
    let cursor = match &q.cursor {
        Some(c) => Some(
            unhex(c)
                .filter(|k| k.len() == 16)
                .ok_or_else(|| StoreError::Db("bad cursor".into()))?,
        ),
        None => None,
    };
    let lo = index_bound(prefix, q.since.map(|t| event_key(t, 0).to_vec()));
    let hi = index_bound(
        prefix,
        Some(
            q.until
                .map(|t| event_key(t, u64::MAX).to_vec())
                .unwrap_or_else(|| vec![0xff; 16]),
        ),
    );
    Ok(match (&cursor, q.ascending) {
        (Some(c), true) => (index_bound(prefix, Some(next_key(c))).max(lo), hi),
        (Some(c), false) => (lo, index_bound(prefix, Some(prev_key(c))).min(hi)),
        (None, _) => (lo, hi),
    })
}

fn index_bound(prefix: &[u8], key: Option<Vec<u8>>) -> Vec<u8> {
    let mut b = prefix.to_vec();
    b.extend(key.unwrap_or_else(|| vec![0u8; 16]));
    b
}

fn next_key(k: &[u8]) -> Vec<u8> {
    let n = u128::from_be_bytes(k.try_into().unwrap_or([0; 16]));
    n.saturating_add(1).to_be_bytes().to_vec()
}

pub(super) fn prev_key(k: &[u8]) -> Vec<u8> {
    let n = u128::from_be_bytes(k.try_into().unwrap_or([0; 16]));
    n.saturating_sub(1).to_be_bytes().to_vec()
}

pub(super) fn matches(ev: &Event, q: &EventQuery) -> bool {
    if !q.statuses.is_empty() && !q.statuses.iter().any(|s| s == ev.status.as_str()) {
        return false;
    }
    if let Some(r) = &q.recipient {
        let want = suppression_key(r);
        if ev.recipient.as_deref().and_then(suppression_key) != want {
            return false;
        }
    }
    if let Some(id) = q.queue_id
        && ev
            .queue_id
            .as_deref()
            .and_then(super::queue::parse_queue_id)
            != Some(id)
    {
        return false;
    }
    q.since.is_none_or(|t| ev.time >= t) && q.until.is_none_or(|t| ev.time <= t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventKind;

    fn ev(store: &Store, t: i64, rcpt: &str, kind: EventKind, q: u64) -> Event {
        let mut e = Event::new(kind, Timestamp(t));
        e.recipient = Some(rcpt.into());
        e.queue_id = Some(format!("{q:X}"));
        store.stamp_event(&mut e).unwrap();
        let mut ws = WriteSet::new();
        ws.put_event(&e, false);
        store.apply(&ws).unwrap();
        e
    }

    #[test]
    fn queries_use_indexes_and_page() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        for i in 0..10 {
            ev(&s, 1000 + i, "a@example.com", EventKind::Deferred, 1);
            ev(&s, 1000 + i, "b@example.com", EventKind::Delivered, 2);
        }
        ev(&s, 5000, "A@Example.COM", EventKind::Bounced, 1);
        let q = EventQuery {
            recipient: Some("a@example.com".into()),
            limit: 4,
            ..Default::default()
        };
        let p1 = s.query_events(&q).unwrap();
        assert_eq!(p1.events.len(), 4);
        assert_eq!(
            p1.events[0].status,
            EventKind::Bounced,
            "newest first, case-insensitive match"
        );
        let p2 = s
            .query_events(&EventQuery {
                cursor: p1.next_cursor.clone(),
                ..q.clone()
            })
            .unwrap();
        assert_eq!(p2.events.len(), 4);
        assert!(p2.events[0].time < p1.events[3].time || p2.events[0].id < p1.events[3].id);
        let all = s
            .query_events(&EventQuery {
                statuses: vec!["delivered".into()],
                limit: 100,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(all.events.len(), 10);
        assert!(
            all.events
                .iter()
                .all(|e| e.recipient.as_deref() == Some("b@example.com"))
        );
        let window = s
            .query_events(&EventQuery {
                since: Some(Timestamp(1005)),
                until: Some(Timestamp(1006)),
                limit: 100,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(window.events.len(), 4);
        let by_msg = s
            .query_events(&EventQuery {
                queue_id: Some(2),
                limit: 100,
                ascending: true,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(by_msg.events.len(), 10);
        assert!(by_msg.events.windows(2).all(|w| w[0].id < w[1].id));
    }

    #[test]
    fn a_page_stops_at_its_byte_budget_and_the_cursor_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let mut ws = WriteSet::new();
        for i in 0..30 {
            let mut e = Event::new(crate::model::EventKind::Unverified, Timestamp(1000 + i));
            e.diagnostic = Some("x".repeat(256 * 1024));
            s.stamp_event(&mut e).unwrap();
            ws.put_event(&e, false);
        }
        s.apply(&ws).unwrap();
        let q = EventQuery {
            limit: 1000,
            ..Default::default()
        };
        let first = s.query_events(&q).unwrap();
        assert!(
            first.events.len() < 30 && first.events.len() * 256 * 1024 >= PAGE_BYTES,
            "{}",
            first.events.len()
        );
        let mut seen = first.events.len();
        let mut cursor = first.next_cursor.clone().expect("more to come");
        loop {
            let page = s
                .query_events(&EventQuery {
                    cursor: Some(cursor.clone()),
                    ..q.clone()
                })
                .unwrap();
            seen += page.events.len();
            match page.next_cursor {
                Some(c) => cursor = c,
                None => break,
            }
        }
        assert_eq!(seen, 30, "every event reached through the cursors");
    }
}
