//! Group commit: one task owns every flush of the database. Writers apply their
//! write set, then wait on [`Committer::durable`]; the task drains all waiters,
//! runs one blocking `flush()` and answers them all. Concurrent `flush_async`
//! calls deadlock sled 0.34, so nothing else flushes. After a failed flush the
//! committer is poisoned: every later request fails and intake stops accepting
//! (no "retry the fsync and pretend", see the fsyncgate lesson).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError};

type Waiter = oneshot::Sender<Result<(), StoreError>>;

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
        if self.is_poisoned() {
            return Err(StoreError::Poisoned);
        }
        let (tx, rx) = oneshot::channel();
        self.tx.send(tx).map_err(|_| StoreError::Flush("commit task stopped".into()))?;
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
        let result = if poisoned.load(Ordering::SeqCst) {
            Err(StoreError::Poisoned)
        } else {
            flush(&store).await
        };
        flushes.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = &result {
            tracing::error!(error = %e, "flush failed: no further mail will be acknowledged");
            poisoned.store(true, Ordering::SeqCst);
        }
        for w in batch.drain(..) {
            let _ = w.send(result.clone());
        }
    }
}

async fn flush(store: &Store) -> Result<(), StoreError> {
    if fail_point_active() {
        return Err(StoreError::Flush("injected failure (REBOUND_FAIL_FLUSH)".into()));
    }
    let s = store.clone();
    tokio::task::spawn_blocking(move || s.flush_blocking())
        .await
        .map_err(|e| StoreError::Flush(format!("flush task panicked: {e}")))?
}

/// Fault injection for the hardening tests: when the file named by
/// `REBOUND_FAIL_FLUSH` exists, flushes fail as an EIO would.
fn fail_point_active() -> bool {
    match std::env::var_os("REBOUND_FAIL_FLUSH") {
        Some(p) => std::path::Path::new(&p).exists(),
        None => false,
    }
}
