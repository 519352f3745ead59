//! Group commit: one task owns every flush of the database. Writers hand their
//! write set to [`Committer::commit`] (or apply it themselves and wait on
//! [`Committer::durable`]); the task drains all waiters, applies their write
//! sets as one sled transaction (one lock and commit for the whole group instead
//! of one per message), runs one blocking `flush()` and answers them all. Concurrent `flush_async`
//! calls deadlock sled 0.34, so nothing else flushes. After a failed flush the
//! committer is poisoned: every later request fails and intake stops accepting
//! (no "retry the fsync and pretend", see the fsyncgate lesson).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError, WriteSet};

type Reply = oneshot::Sender<Result<(), StoreError>>;

/// A writer waiting for the next flush, with the write set to apply first (if any).
struct Waiter {
    ws: Option<WriteSet>,
    reply: Reply,
}

/// Handle to the group-commit task.
#[derive(Clone, Debug)]
pub struct Committer {
    tx: mpsc::UnboundedSender<Waiter>,
    poisoned: Arc<AtomicBool>,
    flushes: Arc<AtomicU64>,
}

impl Committer {
    /// Starts the commit task on the current tokio runtime.
    pub fn start(store: Store) -> Committer {
        let (tx, rx) = mpsc::unbounded_channel();
        let poisoned = Arc::new(AtomicBool::new(false));
        let flushes = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(store, rx, poisoned.clone(), flushes.clone()));
        Committer { tx, poisoned, flushes }
    }

    /// Resolves once everything applied before this call is on disk.
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.request(None).await
    }

    /// Applies `ws` atomically with the other write sets of the same group, and resolves
    /// once it is on disk. An error means nothing of `ws` was acknowledged.
    pub async fn commit(&self, ws: WriteSet) -> Result<(), StoreError> {
        self.request(Some(ws)).await
    }

    async fn request(&self, ws: Option<WriteSet>) -> Result<(), StoreError> {
        if self.is_poisoned() {
            return Err(StoreError::Poisoned);
        }
        let (reply, rx) = oneshot::channel();
        self.tx.send(Waiter { ws, reply }).map_err(|_| StoreError::Flush("commit task stopped".into()))?;
        rx.await.map_err(|_| StoreError::Flush("commit task stopped".into()))?
    }

    /// True after a flush failed; the daemon must stop acknowledging mail.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::SeqCst)
    }

    /// Marks the store failed after a write error outside a flush (sled reports
    /// ENOSPC/EIO when it writes its log): like a failed flush, nothing is acknowledged again.
    pub fn poison(&self, why: &StoreError) {
        if !self.poisoned.swap(true, Ordering::SeqCst) {
            tracing::error!(error = %why, "write failed: no further mail will be acknowledged");
        }
    }

    /// Number of flushes done (for metrics and the group-commit benchmark).
    pub fn flush_count(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }
}

async fn run(store: Store, mut rx: mpsc::UnboundedReceiver<Waiter>, poisoned: Arc<AtomicBool>, flushes: Arc<AtomicU64>) {
    let mut batch: Vec<Waiter> = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while let Ok(w) = rx.try_recv() {
            batch.push(w);
        }
        let (replies, sets): (Vec<Reply>, Vec<Option<WriteSet>>) = batch.drain(..).map(|w| (w.reply, w.ws)).unzip();
        let results = if poisoned.load(Ordering::SeqCst) {
            vec![Err(StoreError::Poisoned); replies.len()]
        } else {
            apply_and_flush(&store, sets, replies.len()).await
        };
        flushes.fetch_add(1, Ordering::Relaxed);
        // A failed flush, or a write the disk refused (ENOSPC, EIO), stops all acknowledgements.
        if let Some(Err(e)) = results.iter().find(|r| matches!(r, Err(StoreError::Flush(_) | StoreError::Db(_)))) {
            tracing::error!(error = %e, "storage failed (flush failed or a write was refused): no further mail will be acknowledged");
            poisoned.store(true, Ordering::SeqCst);
        }
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}

/// Applies the group's write sets (together; one by one if that fails, so one bad
/// set cannot fail the others), then flushes. One result per waiter, in order.
async fn apply_and_flush(store: &Store, sets: Vec<Option<WriteSet>>, n: usize) -> Vec<Result<(), StoreError>> {
    let s = store.clone();
    let fail = fail_point_active();
    let joined = tokio::task::spawn_blocking(move || {
        let mut results = apply_group(&s, sets);
        // A write the disk refused means the store is failing (ENOSPC, EIO): do not try to
        // flush (sled can stall on a full disk); nothing in this group is acknowledged.
        if let Some(Err(e)) = results.iter().find(|r| r.is_err()).cloned() {
            return results.iter().map(|_| Err(e.clone())).collect();
        }
        let flushed = if fail { Err(StoreError::Flush("injected failure (REBOUND_FAIL_FLUSH)".into())) } else { s.flush_blocking() };
        if let Err(e) = flushed {
            results.iter_mut().for_each(|r| *r = Err(e.clone()));
        }
        results
    })
    .await;
    joined.unwrap_or_else(|e| vec![Err(StoreError::Flush(format!("flush task panicked: {e}"))); n])
}

fn apply_group(store: &Store, sets: Vec<Option<WriteSet>>) -> Vec<Result<(), StoreError>> {
    let mut all = WriteSet::new();
    let mut ends = Vec::with_capacity(sets.len());
    for ws in sets {
        all.ops.extend(ws.map(|w| w.ops).unwrap_or_default());
        ends.push(all.ops.len());
    }
    if store.apply(&all).is_ok() {
        return vec![Ok(()); ends.len()];
    }
    let mut rest = all.ops.into_iter();
    let mut start = 0;
    let mut results = Vec::with_capacity(ends.len());
    for end in ends {
        let one = WriteSet { ops: rest.by_ref().take(end - start).collect() };
        start = end;
        results.push(store.apply(&one));
    }
    results
}

/// Fault injection for the hardening tests: when the file named by
/// `REBOUND_FAIL_FLUSH` exists, flushes fail as an EIO would.
fn fail_point_active() -> bool {
    match std::env::var_os("REBOUND_FAIL_FLUSH") {
        Some(p) => std::path::Path::new(&p).exists(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TreeId;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_commits_are_applied_in_groups() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let committer = Committer::start(store.clone());
        let mut tasks = Vec::new();
        for i in 0u64..200 {
            let c = committer.clone();
            tasks.push(tokio::spawn(async move {
                let mut ws = WriteSet::new();
                ws.insert(TreeId::Bodies, i.to_be_bytes().to_vec(), vec![b'x'; 100]);
                ws.insert(TreeId::MsgIds, format!("<{i}@t>").into_bytes(), i.to_be_bytes().to_vec());
                ws.remove(TreeId::Bodies, 1000u64.to_be_bytes().to_vec());
                c.commit(ws).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        committer.durable().await.unwrap();
        let flushes = committer.flush_count();
        assert!((1..=201).contains(&flushes), "{flushes} flushes");
        assert_eq!(store.tree(TreeId::Bodies).len(), 200);
        assert_eq!(store.tree(TreeId::MsgIds).get(b"<199@t>").unwrap().as_deref(), Some(&199u64.to_be_bytes()[..]));
    }
}
