//! The durable store: one sled database, its trees and key layouts, atomic
//! multi-tree write sets, and the group-commit flush that makes a write durable
//! before anything is acknowledged. Only this module and its children name sled.
//!
//! Trees and keys (all integers big-endian so range scans follow numeric order):
//!
//! | tree | key | value |
//! | --- | --- | --- |
//! | `messages` | queue id (u64) | [`MessageRecord`] (version byte + bincode) |
//! | `bodies` | queue id | raw message (kept `retention.bodies` for resend) |
//! | `schedule` | due ms (u64) ‖ queue id | empty: the time-ordered delivery index |
//! | `events` | time ms ‖ seq | [`Event`](crate::model::Event) as JSON |
//! | `ev_rcpt` | recipient key ‖ 0 ‖ event key | empty |
//! | `ev_msg` | queue id ‖ event key | empty |
//! | `ev_status` | status name ‖ 0 ‖ event key | empty |
//! | `suppressions` | address key | [`Suppression`](crate::model::Suppression) as JSON |
//! | `msgids` | Message-ID | queue id (to match bounces without a VERP tag) |
//! | `outbox` | event key | empty: events not yet delivered to the webhook |
//! | `quarantine` | tree name ‖ 0 ‖ key | the undecodable value |
//! | `unverified` | event key | the security log: untrusted returned reports, as JSON events |
//! | `applied` | SHA-256 of a report's evidence | time applied (a replay changes nothing) |
//! | `unblocked` | address key | time of the last manual removal from the suppression list |
//! | `current`, `current_by_time` | see [`current`] | each recipient's latest status (the undelivered report) |

mod commit;
pub mod current;
pub mod events;
pub mod grouped;
pub mod health;
mod journal;
pub mod mta_sts;
pub mod perms;
pub mod queue;
pub mod reports;
pub mod scan;
pub mod suppression;

pub use commit::Committer;
pub use health::{Fault, StoreHealth};
pub use queue::{MessageRecord, RcptRecord};

use sled::transaction::{ConflictableTransactionError, TransactionError};
use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// A storage failure. Callers branch on it to choose an SMTP reply or HTTP status.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(String),
    #[error("flush to disk failed: {0}")]
    Flush(String),
    #[error("corrupt record in {tree}: {detail}")]
    Corrupt { tree: &'static str, detail: String },
    #[error("the store stopped accepting writes after a failed flush")]
    Poisoned,
    /// A record that cannot be written (e.g. over the codec's size limit): nothing is stored.
    #[error("cannot encode a record for {tree}: {detail}")]
    Encode { tree: &'static str, detail: String },
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Db(e.to_string())
    }
}

/// Names the trees so write sets can address them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeId {
    Messages,
    Bodies,
    Schedule,
    Events,
    EvRcpt,
    EvMsg,
    EvStatus,
    Suppressions,
    MsgIds,
    Outbox,
    Quarantine,
    Unverified,
    Applied,
    Unblocked,
    Current,
    CurrentByTime,
}

const TREE_NAMES: [(TreeId, &str); 16] = [
    (TreeId::Messages, "messages"),
    (TreeId::Bodies, "bodies"),
    (TreeId::Schedule, "schedule"),
    (TreeId::Events, "events"),
    (TreeId::EvRcpt, "ev_rcpt"),
    (TreeId::EvMsg, "ev_msg"),
    (TreeId::EvStatus, "ev_status"),
    (TreeId::Suppressions, "suppressions"),
    (TreeId::MsgIds, "msgids"),
    (TreeId::Outbox, "outbox"),
    (TreeId::Quarantine, "quarantine"),
    (TreeId::Unverified, "unverified"),
    (TreeId::Applied, "applied"),
    (TreeId::Unblocked, "unblocked"),
    (TreeId::Current, "current"),
    (TreeId::CurrentByTime, "current_by_time"),
];

/// A set of inserts and removals applied atomically across trees.
#[derive(Debug, Default, Clone)]
pub struct WriteSet {
    ops: Vec<(TreeId, Vec<u8>, Option<Vec<u8>>)>,
}

impl WriteSet {
    pub fn new() -> Self {
        WriteSet::default()
    }

    pub fn insert(&mut self, tree: TreeId, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push((tree, key.into(), Some(value.into())));
    }

    pub fn remove(&mut self, tree: TreeId, key: impl Into<Vec<u8>>) {
        self.ops.push((tree, key.into(), None));
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn extend(&mut self, other: WriteSet) {
        self.ops.extend(other.ops);
    }
}

/// Trees whose sizes `/metrics` reports. Their entries are counted as write sets apply, so a
/// scrape reads a number instead of walking a tree of a million records.
const COUNTED: [TreeId; 4] = [
    TreeId::Messages,
    TreeId::Outbox,
    TreeId::Quarantine,
    TreeId::Unverified,
];

fn counted_slot(tree: TreeId) -> Option<usize> {
    COUNTED.iter().position(|c| *c == tree)
}

/// The open database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    /// Entries in each [`COUNTED`] tree.
    sizes: Arc<[AtomicI64; COUNTED.len()]>,
    /// The previous user closed the store with [`Store::close_cleanly`].
    opened_clean: bool,
    /// Set by [`Store::close_cleanly`]; the next write first removes the mark.
    marked_clean: Arc<AtomicBool>,
    /// The data directory (the commit task's disk probe writes there).
    dir: Arc<PathBuf>,
}

/// Key (in sled's default tree) of the sizes saved by a clean close; present only between a clean
/// close and the next open.
const CLEAN_CLOSE: &[u8] = b"rebound.clean-close";

/// Trees whose last key is saved with a clean-close mark: a program that wrote to the store without
/// honouring the mark (an older rebound) changes them, and the mark is then ignored.
const FINGERPRINTED: [TreeId; 2] = [TreeId::Messages, TreeId::Events];

/// The last key of each [`FINGERPRINTED`] tree, each preceded by its length (u16).
fn fingerprint(trees: &[sled::Tree]) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    for t in FINGERPRINTED {
        let last = trees[t as usize]
            .last()?
            .map(|(k, _)| k.to_vec())
            .unwrap_or_default();
        out.extend_from_slice(&(last.len() as u16).to_be_bytes());
        out.extend_from_slice(&last);
    }
    Ok(out)
}

/// Removes the clean-close mark and returns the sizes it saved if the store is still as it was
/// left, making the removal durable first: a crash from here on must not pass for a clean close.
fn take_clean_close(
    db: &sled::Db,
    trees: &[sled::Tree],
) -> Result<Option<[i64; COUNTED.len()]>, StoreError> {
    let Some(saved) = db.remove(CLEAN_CLOSE)? else {
        return Ok(None);
    };
    db.flush()?;
    let Some((sizes_bytes, print)) = saved.split_at_checked(8 * COUNTED.len()) else {
        return Ok(None);
    };
    if print != fingerprint(trees)?.as_slice() {
        tracing::warn!("the store changed after it was closed cleanly; checking the whole queue");
        return Ok(None);
    }
    let mut sizes = [0i64; COUNTED.len()];
    for (size, bytes) in sizes.iter_mut().zip(sizes_bytes.chunks_exact(8)) {
        *size = i64::from_be_bytes(bytes.try_into().unwrap_or_default());
    }
    Ok(Some(sizes))
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    /// Opens (creating) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Db(format!("{}: {e}", dir.display())))?;
        let db = open_db(dir)?;
        perms::restrict(dir).map_err(StoreError::Db)?;
        let trees = TREE_NAMES
            .iter()
            .map(|(_, n)| db.open_tree(n))
            .collect::<Result<Vec<_>, _>>()?;
        let saved = take_clean_close(&db, &trees)?;
        let sizes = saved.unwrap_or_else(|| COUNTED.map(|t| trees[t as usize].len() as i64));
        Ok(Store {
            db,
            trees,
            sizes: Arc::new(sizes.map(AtomicI64::new)),
            opened_clean: saved.is_some(),
            marked_clean: Arc::new(AtomicBool::new(false)),
            dir: Arc::new(dir.to_path_buf()),
        })
    }

    /// True when the previous user closed the store cleanly (see [`Store::close_cleanly`]): every
    /// write it made went through [`Store::apply`], so nothing needs checking at start-up.
    pub fn opened_clean(&self) -> bool {
        self.opened_clean
    }

    /// Marks the store closed cleanly, saving the tree sizes, and flushes. Call only when nothing
    /// will write to it any more; the next [`Store::open`] then skips the size count (a walk of
    /// every record) and the daemon its start-up scan.
    pub fn close_cleanly(&self) -> Result<(), StoreError> {
        let mut saved: Vec<u8> = self
            .sizes
            .iter()
            .flat_map(|s| s.load(Ordering::Relaxed).to_be_bytes())
            .collect();
        saved.extend(fingerprint(&self.trees)?);
        self.db.insert(CLEAN_CLOSE, saved)?;
        self.marked_clean.store(true, Ordering::SeqCst);
        self.flush_blocking()
    }

    /// Removes the clean-close mark before a write that comes after it (a straggler after the
    /// shutdown deadline): the store is then no longer as the mark describes it.
    fn unmark_clean(&self) -> Result<(), StoreError> {
        if self.marked_clean.swap(false, Ordering::SeqCst) {
            self.db.remove(CLEAN_CLOSE)?;
        }
        Ok(())
    }

    /// Entries in a counted tree (see [`COUNTED`]); other trees are walked.
    fn size(&self, tree: TreeId) -> usize {
        match counted_slot(tree) {
            Some(i) => self.sizes[i].load(Ordering::Relaxed).max(0) as usize,
            None => self.tree(tree).len(),
        }
    }

    fn add_sizes(&self, deltas: [i64; COUNTED.len()]) {
        for (size, d) in self.sizes.iter().zip(deltas) {
            if d != 0 {
                size.fetch_add(d, Ordering::Relaxed);
            }
        }
    }

    pub fn tree(&self, id: TreeId) -> &sled::Tree {
        &self.trees[id as usize]
    }

    /// A new unique, increasing id (persisted by sled across restarts).
    pub fn generate_id(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()?)
    }

    /// Applies a write set atomically (one sled transaction over the trees it touches).
    /// Not durable until a [`Committer`] flush covers it.
    pub fn apply(&self, ws: &WriteSet) -> Result<(), StoreError> {
        self.apply_inner(ws, false).map(drop)
    }

    /// Like [`Store::apply`], and returns the write set that undoes it (the previous values,
    /// in reverse order): the commit task takes back a group whose flush failed.
    pub(crate) fn apply_undoable(&self, ws: &WriteSet) -> Result<WriteSet, StoreError> {
        self.apply_inner(ws, true)
    }

    fn apply_inner(&self, ws: &WriteSet, undoable: bool) -> Result<WriteSet, StoreError> {
        if ws.ops.is_empty() {
            return Ok(WriteSet::new());
        }
        self.unmark_clean()?;
        let mut ids: Vec<TreeId> = Vec::new();
        for (t, _, _) in &ws.ops {
            if !ids.contains(t) {
                ids.push(*t);
            }
        }
        if ids.len() == 1 && counted_slot(ids[0]).is_none() {
            return self.apply_batch(ids[0], ws, undoable);
        }
        let trees: Vec<&sled::Tree> = ids.iter().map(|t| self.tree(*t)).collect();
        // The closure runs again after a conflict: only the last run's changes count.
        let deltas = Cell::new([0i64; COUNTED.len()]);
        let undo = RefCell::new(WriteSet::new());
        let res: Result<(), TransactionError<()>> = trees.as_slice().transaction(|tx| {
            let mut d = [0i64; COUNTED.len()];
            let mut u = WriteSet::new();
            for (t, k, v) in &ws.ops {
                let i = ids.iter().position(|x| x == t).unwrap_or(0);
                let old = match v {
                    Some(v) => tx[i].insert(k.as_slice(), v.as_slice())?,
                    None => tx[i].remove(k.as_slice())?,
                };
                if let Some(slot) = counted_slot(*t) {
                    d[slot] += i64::from(v.is_some() && old.is_none())
                        - i64::from(v.is_none() && old.is_some());
                }
                if undoable {
                    u.ops.push((*t, k.clone(), old.map(|o| o.to_vec())));
                }
            }
            deltas.set(d);
            *undo.borrow_mut() = u;
            Ok::<(), ConflictableTransactionError<()>>(())
        });
        res.map_err(|e| match e {
            TransactionError::Storage(e) => StoreError::from(e),
            TransactionError::Abort(()) => StoreError::Db("transaction aborted".into()),
        })?;
        self.add_sizes(deltas.get());
        let mut undo = undo.into_inner();
        undo.ops.reverse();
        Ok(undo)
    }

    fn apply_batch(
        &self,
        id: TreeId,
        ws: &WriteSet,
        undoable: bool,
    ) -> Result<WriteSet, StoreError> {
        let mut undo = WriteSet::new();
        let mut b = sled::Batch::default();
        for (_, k, v) in &ws.ops {
            if undoable {
                undo.ops
                    .push((id, k.clone(), self.tree(id).get(k)?.map(|o| o.to_vec())));
            }
            match v {
                Some(v) => b.insert(k.as_slice(), v.as_slice()),
                None => b.remove(k.as_slice()),
            }
        }
        self.tree(id).apply_batch(b)?;
        undo.ops.reverse();
        Ok(undo)
    }

    /// Blocking fsync of everything written so far. Only the [`Committer`] calls it.
    pub(crate) fn flush_blocking(&self) -> Result<(), StoreError> {
        self.db
            .flush()
            .map(|_| ())
            .map_err(|e| StoreError::Flush(e.to_string()))
    }

    /// Checks that the data directory takes a write and an fsync again, then that the
    /// database does (a small key in the default tree, flushed). Blocking; only the
    /// [`Committer`] calls it, so no flush runs concurrently.
    pub(crate) fn probe_blocking(&self) -> Result<(), ProbeFailure> {
        probe_dir(&self.dir).map_err(|e| ProbeFailure::Disk(e.to_string()))?;
        let handle = |e: StoreError| ProbeFailure::Handle(e.to_string());
        self.db
            .insert(PROBE_KEY, &Timestamp::now().millis().to_be_bytes()[..])
            .map_err(|e| handle(e.into()))?;
        self.db.remove(PROBE_KEY).map_err(|e| handle(e.into()))?;
        self.flush_blocking().map_err(handle)
    }

    /// Size of the database on disk, in bytes.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    /// Moves an undecodable value aside so the rest of the queue keeps working.
    pub fn quarantine(&self, tree: TreeId, key: &[u8]) -> Result<(), StoreError> {
        let name = TREE_NAMES[tree as usize].1;
        let value = self
            .tree(tree)
            .get(key)?
            .map(|v| v.to_vec())
            .unwrap_or_default();
        let mut qk = name.as_bytes().to_vec();
        qk.push(0);
        qk.extend_from_slice(key);
        let mut ws = WriteSet::new();
        ws.insert(TreeId::Quarantine, qk, value);
        ws.remove(tree, key.to_vec());
        tracing::error!(tree = name, key = %hex(key), "quarantined an undecodable record");
        self.apply(&ws)
    }

    /// Number of quarantined records.
    pub fn quarantined(&self) -> usize {
        self.size(TreeId::Quarantine)
    }
}

use sled::Transactional;

use crate::model::time::Timestamp;

/// Key (in sled's default tree) the health probe writes and removes.
const PROBE_KEY: &[u8] = b"rebound.probe";

/// Why a health probe failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProbeFailure {
    /// The filesystem still refuses a write or fsync: wait.
    Disk(String),
    /// The filesystem takes writes but the database handle fails: a restart is needed.
    Handle(String),
}

/// Writes, fsyncs and removes a 64 KiB file in `dir`.
fn probe_dir(dir: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let path = dir.join(".rebound-probe");
    let res = std::fs::File::create(&path).and_then(|mut f| {
        f.write_all(&[0u8; 64 * 1024])?;
        f.sync_all()
    });
    let _ = std::fs::remove_file(&path);
    res
}

/// Opens sled, waiting up to 5 s for the file lock: a previous instance in this
/// process (or one still exiting) releases it once its background flusher stops.
fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let res = sled::Config::new()
            .path(dir.join("db"))
            .cache_capacity(8 * 1024 * 1024)
            .flush_every_ms(Some(1000))
            .open();
        match res {
            Ok(db) => return Ok(db),
            // sled reports the lock conflict only as text inside an io::Error.
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => return Err(StoreError::Db(format!("{}: {e}", dir.display()))),
        }
    }
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Parses lower- or upper-case hex.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One insert (`Some` value) or removal (`None`).
    type Op<'a> = (TreeId, &'a [u8], Option<&'a [u8]>);

    fn set(ops: &[Op<'_>]) -> WriteSet {
        let mut ws = WriteSet::new();
        for (t, k, v) in ops {
            match v {
                Some(v) => ws.insert(*t, k.to_vec(), v.to_vec()),
                None => ws.remove(*t, k.to_vec()),
            }
        }
        ws
    }

    #[test]
    fn counted_sizes_follow_inserts_overwrites_and_removals_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (m, o, b) = (TreeId::Messages, TreeId::Outbox, TreeId::Bodies);
        store
            .apply(&set(&[
                (m, b"1", Some(b"a")),
                (m, b"2", Some(b"b")),
                (b, b"1", Some(b"x")),
            ]))
            .unwrap();
        // an overwrite, a removal of a missing key, and the same key twice in one set
        store
            .apply(&set(&[
                (m, b"1", Some(b"c")),
                (m, b"9", None),
                (o, b"e", Some(b"")),
                (o, b"e", Some(b"")),
            ]))
            .unwrap();
        assert_eq!((store.queue_len(), store.outbox_len()), (2, 1));
        store.apply(&set(&[(o, b"e", None)])).unwrap(); // a single-tree set
        store
            .apply(&set(&[(m, b"2", None), (b, b"1", None)]))
            .unwrap();
        assert_eq!((store.queue_len(), store.outbox_len()), (1, 0));
        assert_eq!(store.queue_len(), store.tree(m).len());
        store.quarantine(m, b"1").unwrap();
        assert_eq!((store.queue_len(), store.quarantined()), (0, 1));
        drop(store);
        let again = Store::open(dir.path()).unwrap();
        assert_eq!((again.queue_len(), again.quarantined()), (0, 1));
        assert!(!again.opened_clean());
    }

    #[test]
    fn an_undo_set_restores_values_and_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (m, b) = (TreeId::Messages, TreeId::Bodies);
        store
            .apply(&set(&[(m, b"1", Some(b"a")), (b, b"1", Some(b"x"))]))
            .unwrap();
        let undo = store
            .apply_undoable(&set(&[
                (m, b"1", Some(b"b")),
                (m, b"2", Some(b"c")),
                (m, b"2", Some(b"d")),
                (b, b"1", None),
            ]))
            .unwrap();
        assert_eq!(store.queue_len(), 2);
        store.apply(&undo).unwrap();
        assert_eq!(store.queue_len(), 1);
        assert_eq!(store.tree(m).get(b"1").unwrap().as_deref(), Some(&b"a"[..]));
        assert!(store.tree(m).get(b"2").unwrap().is_none());
        assert_eq!(store.tree(b).get(b"1").unwrap().as_deref(), Some(&b"x"[..]));
        let undo = store
            .apply_undoable(&set(&[(b, b"1", Some(b"y")), (b, b"2", Some(b"z"))]))
            .unwrap(); // the batch path
        store.apply(&undo).unwrap();
        assert_eq!(store.tree(b).get(b"1").unwrap().as_deref(), Some(&b"x"[..]));
        assert!(store.tree(b).get(b"2").unwrap().is_none());
        assert_eq!(store.probe_blocking(), Ok(()));
    }

    #[test]
    fn a_clean_close_saves_the_sizes_for_the_next_open_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .apply(&set(&[
                (TreeId::Messages, b"1", Some(b"a")),
                (TreeId::Outbox, b"e", Some(b"")),
            ]))
            .unwrap();
        store.close_cleanly().unwrap();
        drop(store);
        let clean = Store::open(dir.path()).unwrap();
        assert!(clean.opened_clean());
        assert_eq!((clean.queue_len(), clean.outbox_len()), (1, 1));
        drop(clean);
        let next = Store::open(dir.path()).unwrap();
        assert!(!next.opened_clean(), "the mark is used once");
        // a write after a clean close (a straggler) removes the mark
        next.close_cleanly().unwrap();
        next.apply(&set(&[(TreeId::Messages, b"2", Some(b"b"))]))
            .unwrap();
        drop(next);
        let after_straggler = Store::open(dir.path()).unwrap();
        assert!(!after_straggler.opened_clean());
        assert_eq!(after_straggler.queue_len(), 2);
        // a program that ignores the mark (an older rebound) changes the fingerprint
        after_straggler.close_cleanly().unwrap();
        after_straggler
            .tree(TreeId::Messages)
            .insert(b"3", b"c")
            .unwrap();
        drop(after_straggler);
        let foreign = Store::open(dir.path()).unwrap();
        assert!(
            !foreign.opened_clean(),
            "a store changed behind the mark is checked"
        );
        assert_eq!(foreign.queue_len(), 3, "and its trees are counted");
    }
}
