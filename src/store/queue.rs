//! Queue records: the envelope and per-recipient state of each message, its body,
//! and the time-ordered schedule index (`due ‖ id`) from which the scheduler takes
//! due work with a range scan, so a wake-up costs what is due, not the queue size.

use bincode::Options as _;
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, TreeId, WriteSet};
use crate::model::Status;
use crate::model::dsn_request::{DsnNotify, DsnRet};
use crate::model::time::Timestamp;

/// Record format version; bump when [`MessageRecord`] changes shape.
const RECORD_VERSION: u8 = 1;

/// One recipient of a queued message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RcptRecord {
    pub address: String,
    pub orcpt: Option<String>,
    pub notify: Option<DsnNotify>,
    pub status: Status,
    /// Delivery attempts made for this recipient.
    pub attempts: u32,
    pub last_diagnostic: Option<String>,
}

/// A queued message: envelope, bookkeeping and per-recipient state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub id: u64,
    /// When rebound accepted it (expiry counts from here, and survives restarts).
    pub received: Timestamp,
    /// Envelope sender as the app gave it; empty for `<>`.
    pub sender: String,
    pub message_id: Option<String>,
    pub env_id: Option<String>,
    pub ret: Option<DsnRet>,
    /// Client address and AUTH user, for the log.
    pub client: String,
    pub auth_user: Option<String>,
    pub recipients: Vec<RcptRecord>,
    /// Attempts made for the message as a whole.
    pub attempts: u32,
    /// When the next attempt is due (mirrors the schedule key); `None` when finished.
    pub next_attempt: Option<Timestamp>,
    /// For `rebound resend`: the message this one was resent from.
    pub resent_from: Option<u64>,
    pub size: u64,
    /// This message is a DSN rebound generated itself (never answered with another DSN).
    pub is_dsn: bool,
}

impl MessageRecord {
    /// The stored form: a version byte, then the record. A record the codec refuses is an
    /// error, never a truncated write.
    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        let mut v = vec![RECORD_VERSION];
        v.extend(codec().serialize(self).map_err(|e| StoreError::Encode {
            tree: "messages",
            detail: e.to_string(),
        })?);
        Ok(v)
    }

    /// Decodes a stored record; never panics on garbage (torn writes, poison records).
    pub fn decode(bytes: &[u8]) -> Result<MessageRecord, StoreError> {
        let corrupt = |detail: String| StoreError::Corrupt {
            tree: "messages",
            detail,
        };
        match bytes.split_first() {
            None => Err(corrupt("empty record".into())),
            Some((&RECORD_VERSION, rest)) => codec()
                .deserialize::<MessageRecord>(rest)
                .map_err(|e| corrupt(e.to_string()))
                .and_then(check_sane),
            Some((v, _)) => Err(corrupt(format!("unknown record version {v}"))),
        }
    }

    /// Queue id as shown to people: upper-case hex.
    pub fn queue_id(&self) -> String {
        format_queue_id(self.id)
    }

    /// True when no recipient is waiting for an attempt.
    pub fn is_finished(&self) -> bool {
        self.recipients.iter().all(|r| r.status.is_final())
    }
}

/// bincode with fixed-width integers and a size limit, so a garbage length prefix
/// cannot make the decoder allocate without bound.
fn codec() -> impl bincode::Options {
    use bincode::Options;
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_limit(64 * 1024 * 1024)
}

fn check_sane(r: MessageRecord) -> Result<MessageRecord, StoreError> {
    if r.recipients.is_empty() || r.recipients.len() > 100_000 {
        return Err(StoreError::Corrupt {
            tree: "messages",
            detail: "implausible recipient count".into(),
        });
    }
    Ok(r)
}

pub fn format_queue_id(id: u64) -> String {
    format!("{id:X}")
}

pub fn parse_queue_id(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// A new queue id: seconds since the epoch in the high bits, sled's persistent counter below.
pub fn new_queue_id(store: &Store, now: Timestamp) -> Result<u64, StoreError> {
    let n = store.generate_id()?;
    let secs = (now.millis().max(0) / 1000) as u64;
    Ok((secs << 24) | (n & 0xFF_FFFF))
}

pub fn schedule_key(due: Timestamp, id: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&(due.millis().max(0) as u64).to_be_bytes());
    k[8..].copy_from_slice(&id.to_be_bytes());
    k
}

fn decode_schedule_key(k: &[u8]) -> Option<(Timestamp, u64)> {
    let due = u64::from_be_bytes(k.get(..8)?.try_into().ok()?);
    let id = u64::from_be_bytes(k.get(8..16)?.try_into().ok()?);
    Some((Timestamp(due as i64), id))
}

impl WriteSet {
    /// Stores (or updates) a message record and moves its schedule entry from `old_due` to its `next_attempt`.
    pub fn put_message(
        &mut self,
        rec: &MessageRecord,
        old_due: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let encoded = rec.encode()?;
        if let Some(old) = old_due
            && Some(old) != rec.next_attempt
        {
            self.remove(TreeId::Schedule, schedule_key(old, rec.id).to_vec());
        }
        if let Some(due) = rec.next_attempt {
            self.insert(
                TreeId::Schedule,
                schedule_key(due, rec.id).to_vec(),
                Vec::new(),
            );
        }
        self.insert(TreeId::Messages, rec.id.to_be_bytes().to_vec(), encoded);
        Ok(())
    }

    /// Removes a message record, its schedule entry and (optionally) its body.
    pub fn delete_message(&mut self, rec: &MessageRecord, keep_body: bool) {
        if let Some(due) = rec.next_attempt {
            self.remove(TreeId::Schedule, schedule_key(due, rec.id).to_vec());
        }
        self.remove(TreeId::Messages, rec.id.to_be_bytes().to_vec());
        if !keep_body {
            self.remove(TreeId::Bodies, rec.id.to_be_bytes().to_vec());
        }
    }
}

impl Store {
    /// Reads a message record; a corrupt one is quarantined and reported as absent.
    pub fn message(&self, id: u64) -> Result<Option<MessageRecord>, StoreError> {
        let Some(v) = self.tree(TreeId::Messages).get(id.to_be_bytes())? else {
            return Ok(None);
        };
        match MessageRecord::decode(&v) {
            Ok(r) => Ok(Some(r)),
            Err(e) => {
                tracing::error!(queue_id = %format_queue_id(id), error = %e, "corrupt queue record");
                self.quarantine(TreeId::Messages, &id.to_be_bytes())?;
                Ok(None)
            }
        }
    }

    /// The queue id of the message with this `Message-ID` (as stored, angle brackets included).
    pub fn message_by_message_id(&self, message_id: &str) -> Result<Option<u64>, StoreError> {
        let found = self
            .tree(TreeId::MsgIds)
            .get(message_id.trim().as_bytes())?;
        Ok(found.and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes)))
    }

    pub fn body(&self, id: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tree(TreeId::Bodies)
            .get(id.to_be_bytes())?
            .map(|v| v.to_vec()))
    }

    /// Up to `limit` schedule entries due at or before `now`, oldest first.
    pub fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<(Timestamp, u64)>, StoreError> {
        let end = schedule_key(now, u64::MAX);
        let mut out = Vec::new();
        for item in self
            .tree(TreeId::Schedule)
            .range(..=end.to_vec())
            .take(limit)
        {
            let (k, _) = item?;
            if let Some(e) = decode_schedule_key(&k) {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// The earliest scheduled time, if anything is scheduled.
    pub fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        Ok(self
            .tree(TreeId::Schedule)
            .first()?
            .and_then(|(k, _)| decode_schedule_key(&k))
            .map(|(t, _)| t))
    }

    /// Message records in id order starting after `after`, at most `limit`.
    pub fn messages_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let start = after
            .map(|a| a.saturating_add(1))
            .unwrap_or(0)
            .to_be_bytes();
        let mut out = Vec::new();
        let mut bad = Vec::new();
        for item in self.tree(TreeId::Messages).range(start.to_vec()..) {
            let (k, v) = item?;
            match MessageRecord::decode(&v) {
                Ok(r) => out.push(r),
                Err(_) => bad.push(k.to_vec()),
            }
            if out.len() >= limit {
                break;
            }
        }
        for k in bad {
            self.quarantine(TreeId::Messages, &k)?;
        }
        Ok(out)
    }

    /// Number of queued messages.
    pub fn queue_len(&self) -> usize {
        self.size(TreeId::Messages)
    }

    /// Startup recovery: quarantines undecodable records and re-creates schedule entries for
    /// unfinished messages that lost theirs. Returns (records, quarantined, rescheduled).
    pub fn recover(&self, now: Timestamp) -> Result<(usize, usize, usize), StoreError> {
        let mut scheduled = std::collections::HashSet::new();
        for item in self.tree(TreeId::Schedule).iter() {
            let (k, _) = item?;
            match decode_schedule_key(&k) {
                Some((_, id)) => {
                    scheduled.insert(id);
                }
                None => {
                    self.tree(TreeId::Schedule).remove(k)?;
                }
            }
        }
        let (mut n, mut bad, mut fixed) = (0, Vec::new(), 0);
        for item in self.tree(TreeId::Messages).iter() {
            let (k, v) = item?;
            match MessageRecord::decode(&v) {
                Ok(mut r) if !r.is_finished() && !scheduled.contains(&r.id) => {
                    r.next_attempt = Some(now);
                    let mut ws = WriteSet::new();
                    ws.put_message(&r, None)?;
                    self.apply(&ws)?;
                    fixed += 1;
                    n += 1;
                }
                Ok(_) => n += 1,
                Err(_) => bad.push(k.to_vec()),
            }
        }
        for k in &bad {
            self.quarantine(TreeId::Messages, k)?;
        }
        Ok((n, bad.len(), fixed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: u64) -> MessageRecord {
        MessageRecord {
            id,
            received: Timestamp(1_000),
            sender: "app@example.com".into(),
            message_id: Some("<a@b>".into()),
            env_id: None,
            ret: None,
            client: "127.0.0.1".into(),
            auth_user: None,
            recipients: vec![RcptRecord {
                address: "x@example.net".into(),
                orcpt: None,
                notify: None,
                status: Status::Queued,
                attempts: 0,
                last_diagnostic: None,
            }],
            attempts: 0,
            next_attempt: Some(Timestamp(5_000)),
            resent_from: None,
            size: 10,
            is_dsn: false,
        }
    }

    #[test]
    fn a_wake_up_over_100k_future_entries_returns_only_what_is_due() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let now = Timestamp(1_000_000_000);
        let mut ws = WriteSet::new();
        for id in 0..100_000u64 {
            ws.insert(
                TreeId::Schedule,
                schedule_key(now.plus(std::time::Duration::from_secs(60 + id)), id).to_vec(),
                Vec::new(),
            );
            if ws.len() >= 10_000 {
                store.apply(&std::mem::take(&mut ws)).unwrap();
            }
        }
        for id in [200_001u64, 200_002, 200_003] {
            ws.insert(
                TreeId::Schedule,
                schedule_key(now.minus(std::time::Duration::from_secs(id - 200_000)), id).to_vec(),
                Vec::new(),
            );
        }
        store.apply(&ws).unwrap();
        let due: Vec<u64> = store
            .due(now, 512)
            .unwrap()
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        assert_eq!(
            due,
            vec![200_003, 200_002, 200_001],
            "oldest first, nothing from the future"
        );
        assert_eq!(
            store.next_due().unwrap(),
            Some(now.minus(std::time::Duration::from_secs(3)))
        );
        assert_eq!(
            store
                .due(now.plus(std::time::Duration::from_secs(61)), 512)
                .unwrap()
                .len(),
            5
        );
    }

    #[test]
    fn records_round_trip_and_garbage_is_an_error() {
        let r = rec(7);
        assert_eq!(MessageRecord::decode(&r.encode().unwrap()).unwrap(), r);
        for junk in [
            &b""[..],
            &b"\x01"[..],
            &b"\x01\xff\xff\xff\xff\xff\xff\xff\xff"[..],
            &b"\x09abc"[..],
        ] {
            assert!(MessageRecord::decode(junk).is_err());
        }
        let enc = r.encode().unwrap();
        for cut in 0..enc.len() {
            assert!(
                MessageRecord::decode(&enc[..cut]).is_err(),
                "truncated at {cut} decoded"
            );
        }
    }

    #[test]
    fn a_record_the_codec_refuses_is_an_error_and_writes_nothing() {
        let mut r = rec(8);
        r.sender = "x".repeat(65 * 1024 * 1024);
        assert!(matches!(
            r.encode(),
            Err(StoreError::Encode {
                tree: "messages",
                ..
            })
        ));
        let mut ws = WriteSet::new();
        assert!(ws.put_message(&r, None).is_err());
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.apply(&ws).unwrap();
        assert_eq!(store.message(8).unwrap(), None, "nothing stored");
    }

    #[test]
    fn schedule_is_time_ordered_and_due_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut ws = WriteSet::new();
        for (id, due) in [(1u64, 3000i64), (2, 1000), (3, 9000)] {
            let mut r = rec(id);
            r.next_attempt = Some(Timestamp(due));
            ws.put_message(&r, None).unwrap();
        }
        store.apply(&ws).unwrap();
        let due: Vec<u64> = store
            .due(Timestamp(5000), 10)
            .unwrap()
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        assert_eq!(due, vec![2, 1]);
        assert_eq!(store.next_due().unwrap(), Some(Timestamp(1000)));
        store
            .tree(TreeId::Messages)
            .insert(99u64.to_be_bytes(), &b"\x01garbage"[..])
            .unwrap();
        assert_eq!(store.message(99).unwrap(), None);
        assert_eq!(store.quarantined(), 1);
        assert_eq!(store.message(2).unwrap().unwrap().id, 2);
    }
}
