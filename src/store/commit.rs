//! Group commit: one task owns every flush of the database. Writers hand their
//! write set to [`Committer::commit`] (or apply it themselves and wait on
//! [`Committer::durable`]); the task drains all waiters, applies their write
//! sets as one sled transaction (one lock and commit for the whole group instead
//! of one per message), runs one blocking `flush()` and answers them all. Concurrent `flush_async`
//! calls deadlock sled 0.34, so nothing else flushes. A failed write or flush
//! takes the group's write sets back (none was acknowledged) and faults the
//! store ([`StoreHealth`]): every request fails at once and intake stops
//! accepting (no "retry the fsync and pretend", see the fsyncgate lesson). While
//! faulted the task probes the disk with backoff and clears the fault when a
//! probe write and flush succeed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

use super::{ProbeFailure, Store, StoreError, StoreHealth, WriteSet};

type Reply = oneshot::Sender<Result<(), StoreError>>;

/// First wait before probing a faulted store; doubled after each failed probe up to [`PROBE_MAX`].
const PROBE_FIRST: Duration = Duration::from_millis(500);
const PROBE_MAX: Duration = Duration::from_secs(8);
/// Probes in a row where the disk took writes but the database did not, before asking for a restart
/// (one could be a disk with just enough room for the probe file).
const HANDLE_FAILURES_FOR_RESTART: u32 = 3;
/// A probe still running after this is stuck in the database (sled stalls on a disk that was
/// full): the handle is not trusted again and the daemon exits for a restart.
const PROBE_STALL: Duration = Duration::from_secs(10);

/// A writer waiting for the next flush, with the write set to apply first (if any).
struct Waiter {
    ws: Option<WriteSet>,
    reply: Reply,
}

/// Handle to the group-commit task.
#[derive(Clone, Debug)]
pub struct Committer {
    tx: mpsc::UnboundedSender<Waiter>,
    health: Arc<StoreHealth>,
    flushes: Arc<AtomicU64>,
}

impl Committer {
    /// Starts the commit task on the current tokio runtime.
    pub fn start(store: Store) -> Committer {
        let (tx, rx) = mpsc::unbounded_channel();
        let health = Arc::new(StoreHealth::default());
        let flushes = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(store, rx, health.clone(), flushes.clone()));
        Committer {
            tx,
            health,
            flushes,
        }
    }

    /// Resolves once everything applied before this call is on disk.
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.request(None).await
    }

    /// Applies `ws` atomically with the other write sets of the same group, and resolves
    /// once it is on disk. An error means nothing of `ws` was acknowledged (nor kept).
    pub async fn commit(&self, ws: WriteSet) -> Result<(), StoreError> {
        self.request(Some(ws)).await
    }

    async fn request(&self, ws: Option<WriteSet>) -> Result<(), StoreError> {
        if self.is_poisoned() {
            return Err(StoreError::Poisoned);
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Waiter { ws, reply })
            .map_err(|_| StoreError::Flush("commit task stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Flush("commit task stopped".into()))?
    }

    /// True while the store is faulted; the daemon must not acknowledge mail nor start deliveries.
    pub fn is_poisoned(&self) -> bool {
        self.health.is_faulted()
    }

    /// The store's health flag (fault reason, changes, restart request).
    pub fn health(&self) -> &StoreHealth {
        &self.health
    }

    /// Faults the store after a write error outside the commit task (sled reports
    /// ENOSPC/EIO when it writes its log): like a failed flush.
    pub fn poison(&self, why: &StoreError) {
        self.health.set_fault(&why.to_string());
    }

    /// Number of flushes done (for metrics and the group-commit benchmark).
    pub fn flush_count(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }
}

async fn run(
    store: Store,
    mut rx: mpsc::UnboundedReceiver<Waiter>,
    health: Arc<StoreHealth>,
    flushes: Arc<AtomicU64>,
) {
    let mut prober = Prober::default();
    loop {
        let first = if health.restart_requested() {
            rx.recv().await
        } else if health.is_faulted() {
            tokio::select! {
                w = rx.recv() => w,
                _ = tokio::time::sleep(prober.wait) => {
                    prober.probe(&store, &health).await;
                    continue;
                }
            }
        } else {
            prober = Prober::default();
            // A fault raised outside this task (see [`Committer::poison`]) must start the probes.
            tokio::select! {
                w = rx.recv() => w,
                _ = health.changed() => continue,
                _ = tokio::time::sleep(PROBE_MAX) => continue,
            }
        };
        let Some(first) = first else { return };
        let mut batch = vec![first];
        while let Ok(w) = rx.try_recv() {
            batch.push(w);
        }
        commit_batch(&store, batch, &health, &flushes).await;
    }
}

/// Applies and flushes one group and answers its waiters (all fail at once while faulted).
async fn commit_batch(
    store: &Store,
    batch: Vec<Waiter>,
    health: &StoreHealth,
    flushes: &AtomicU64,
) {
    let (replies, sets): (Vec<Reply>, Vec<Option<WriteSet>>) =
        batch.into_iter().map(|w| (w.reply, w.ws)).unzip();
    let results = if health.is_faulted() {
        vec![Err(StoreError::Poisoned); replies.len()]
    } else {
        apply_and_flush(store, sets, replies.len()).await
    };
    flushes.fetch_add(1, Ordering::Relaxed);
    // A failed flush, or a write the disk refused (ENOSPC, EIO), stops all acknowledgements.
    if let Some(Err(e)) = results
        .iter()
        .find(|r| matches!(r, Err(StoreError::Flush(_) | StoreError::Db(_))))
    {
        health.set_fault(&e.to_string());
    }
    for (reply, result) in replies.into_iter().zip(results) {
        let _ = reply.send(result);
    }
}

/// The probe schedule of a faulted store.
struct Prober {
    wait: Duration,
    handle_failures: u32,
}

impl Default for Prober {
    fn default() -> Self {
        Prober {
            wait: PROBE_FIRST,
            handle_failures: 0,
        }
    }
}

impl Prober {
    /// One probe: clears the fault on success, backs off otherwise, and asks for a restart when
    /// the disk keeps taking writes that the database handle refuses.
    async fn probe(&mut self, store: &Store, health: &StoreHealth) {
        let s = store.clone();
        let probe = tokio::task::spawn_blocking(move || {
            if fail_point_active() {
                return Err(ProbeFailure::Disk(
                    "injected failure (REBOUND_FAIL_FLUSH)".into(),
                ));
            }
            s.probe_blocking()
        });
        let res = match tokio::time::timeout(PROBE_STALL, probe).await {
            Ok(joined) => {
                joined.unwrap_or_else(|e| Err(ProbeFailure::Disk(format!("probe panicked: {e}"))))
            }
            Err(_) => {
                health.require_restart(&format!(
                    "a probe write did not finish within {} s",
                    PROBE_STALL.as_secs()
                ));
                return;
            }
        };
        match res {
            Ok(()) => health.clear(),
            Err(ProbeFailure::Disk(e)) => {
                self.handle_failures = 0;
                tracing::debug!(error = %e, "storage probe failed; still faulted");
            }
            Err(ProbeFailure::Handle(e)) => {
                self.handle_failures += 1;
                if self.handle_failures >= HANDLE_FAILURES_FOR_RESTART {
                    health.require_restart(&e);
                }
            }
        }
        self.wait = (self.wait * 2).min(PROBE_MAX);
    }
}

/// Applies the group's write sets (together; one by one if that fails, so one bad
/// set cannot fail the others), then flushes. One result per waiter, in order. When
/// anything fails, every set applied is taken back and every waiter gets the error.
async fn apply_and_flush(
    store: &Store,
    sets: Vec<Option<WriteSet>>,
    n: usize,
) -> Vec<Result<(), StoreError>> {
    let s = store.clone();
    let fail = fail_point_active();
    let joined = tokio::task::spawn_blocking(move || {
        let (results, undo) = apply_group(&s, sets);
        // A write the disk refused means the store is failing (ENOSPC, EIO): do not try to
        // flush (sled can stall on a full disk); nothing in this group is acknowledged.
        let failed = results.iter().find_map(|r| r.clone().err());
        let failed = failed.or_else(|| {
            let flushed = if fail {
                Err(StoreError::Flush(
                    "injected failure (REBOUND_FAIL_FLUSH)".into(),
                ))
            } else {
                s.flush_blocking()
            };
            flushed.err()
        });
        match failed {
            None => results,
            Some(e) => {
                take_back(&s, undo);
                results.iter().map(|_| Err(e.clone())).collect()
            }
        }
    })
    .await;
    joined.unwrap_or_else(|e| vec![Err(StoreError::Flush(format!("flush task panicked: {e}"))); n])
}

/// Applies the sets as one transaction, or one by one when that fails; returns one result per
/// set and the write sets undoing what was applied (in the order to apply them).
fn apply_group(
    store: &Store,
    sets: Vec<Option<WriteSet>>,
) -> (Vec<Result<(), StoreError>>, Vec<WriteSet>) {
    let mut all = WriteSet::new();
    let mut ends = Vec::with_capacity(sets.len());
    for ws in sets {
        all.ops.extend(ws.map(|w| w.ops).unwrap_or_default());
        ends.push(all.ops.len());
    }
    if let Ok(undo) = store.apply_undoable(&all) {
        return (vec![Ok(()); ends.len()], vec![undo]);
    }
    let mut rest = all.ops.into_iter();
    let mut start = 0;
    let mut results = Vec::with_capacity(ends.len());
    let mut undos = Vec::new();
    for end in ends {
        let one = WriteSet {
            ops: rest.by_ref().take(end - start).collect(),
        };
        start = end;
        results.push(store.apply_undoable(&one).map(|u| undos.push(u)));
    }
    undos.reverse();
    (results, undos)
}

/// Takes back the write sets of a group that was not acknowledged, so that a later flush
/// (after the fault clears) does not make them durable: a message refused with 451 must not
/// be delivered. A failure here leaves the database handle failed, which the probe detects.
fn take_back(store: &Store, undo: Vec<WriteSet>) {
    for u in undo {
        if let Err(e) = store.apply(&u) {
            tracing::warn!(error = %e, "could not take back a write set that was not acknowledged");
            return;
        }
    }
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
    async fn a_fault_refuses_commits_until_a_probe_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let committer = Committer::start(store.clone());
        committer.poison(&StoreError::Db("IO error: No space left on device".into()));
        let mut ws = WriteSet::new();
        ws.insert(TreeId::Bodies, b"1".to_vec(), b"x".to_vec());
        assert!(matches!(
            committer.commit(ws.clone()).await,
            Err(StoreError::Poisoned)
        ));
        assert!(
            store.tree(TreeId::Bodies).is_empty(),
            "a refused write set is not applied"
        );
        let fault = committer.health().fault().unwrap();
        assert!(
            fault.reason.contains("No space left") && !fault.restart_needed,
            "{fault:?}"
        );
        // The disk is fine, so the first probe clears the fault.
        tokio::time::timeout(Duration::from_secs(10), async {
            while committer.is_poisoned() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("a probe cleared the fault");
        committer.commit(ws).await.unwrap();
        assert_eq!(committer.health().faults_total(), 1);
    }

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
                ws.insert(
                    TreeId::MsgIds,
                    format!("<{i}@t>").into_bytes(),
                    i.to_be_bytes().to_vec(),
                );
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
        assert_eq!(
            store
                .tree(TreeId::MsgIds)
                .get(b"<199@t>")
                .unwrap()
                .as_deref(),
            Some(&199u64.to_be_bytes()[..])
        );
    }
}
