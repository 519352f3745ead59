//! Whether the store can record anything right now. A failed write or flush
//! faults it: intake refuses, the scheduler starts no attempt, `/healthz`
//! answers 503 with the reason. The commit task probes the disk while faulted
//! and clears the fault when a probe write and flush succeed; when the disk
//! takes writes again but the database handle keeps failing, only a restart
//! helps and [`StoreHealth::restart_needed`] resolves. Each change of state is
//! logged once, never per message.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::model::time::Timestamp;

/// Why the store is faulted, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub reason: String,
    pub since: Timestamp,
    /// The disk takes writes again but the database handle does not: only a restart clears it.
    pub restart_needed: bool,
}

/// The shared health flag of one store (held by its [`super::Committer`]).
#[derive(Debug, Default)]
pub struct StoreHealth {
    faulted: AtomicBool,
    fault: Mutex<Option<Fault>>,
    faults: AtomicU64,
    changed: Notify,
    restart: CancellationToken,
}

impl StoreHealth {
    /// True while nothing can be recorded.
    pub fn is_faulted(&self) -> bool {
        self.faulted.load(Ordering::SeqCst)
    }

    /// The current fault, if any.
    pub fn fault(&self) -> Option<Fault> {
        self.fault.lock().map(|f| f.clone()).unwrap_or(None)
    }

    /// Faults since start (for `/metrics`).
    pub fn faults_total(&self) -> u64 {
        self.faults.load(Ordering::Relaxed)
    }

    /// Resolves at the next change of state (fault or recovery).
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    /// True once only a restart can clear the fault (probing stops).
    pub fn restart_requested(&self) -> bool {
        self.restart.is_cancelled()
    }

    /// Resolves once the store needs a restart to record anything again.
    pub async fn restart_needed(&self) {
        self.restart.cancelled().await
    }

    /// Faults the store (logged once per fault, not per failed write).
    pub(crate) fn set_fault(&self, reason: &str) {
        let Ok(mut f) = self.fault.lock() else { return };
        if f.is_some() {
            return;
        }
        *f = Some(Fault {
            reason: reason.to_string(),
            since: Timestamp::now(),
            restart_needed: false,
        });
        self.faulted.store(true, Ordering::SeqCst);
        self.faults.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            error = reason,
            "storage failed: intake refuses and deliveries pause until a probe write succeeds"
        );
        self.changed.notify_waiters();
    }

    /// Clears the fault after a successful probe.
    pub(crate) fn clear(&self) {
        let Ok(mut f) = self.fault.lock() else { return };
        let Some(old) = f.take() else { return };
        self.faulted.store(false, Ordering::SeqCst);
        let secs = Timestamp::now().since(old.since).as_secs();
        tracing::info!(
            faulted_for_s = secs,
            "storage recovered: intake and deliveries resume"
        );
        self.changed.notify_waiters();
    }

    /// The disk is writable but the database handle is not: asks the daemon to exit for a restart.
    pub(crate) fn require_restart(&self, reason: &str) {
        let Ok(mut f) = self.fault.lock() else { return };
        if let Some(fault) = f.as_mut().filter(|x| !x.restart_needed) {
            fault.restart_needed = true;
            fault.reason = format!("{}; database handle failed: {reason}", fault.reason);
            tracing::error!(
                error = reason,
                "the disk takes writes again but the database does not: exiting so the service manager restarts rebound"
            );
            self.restart.cancel();
            self.changed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_is_counted_once_and_cleared() {
        let h = StoreHealth::default();
        assert!(!h.is_faulted());
        h.set_fault("flush failed: EIO");
        h.set_fault("flush failed: again");
        assert!(h.is_faulted());
        assert_eq!(
            h.fault().map(|f| f.reason),
            Some("flush failed: EIO".to_string())
        );
        assert_eq!(h.faults_total(), 1);
        h.clear();
        assert!(!h.is_faulted() && h.fault().is_none());
        h.set_fault("ENOSPC");
        assert_eq!(h.faults_total(), 2);
        h.require_restart("sled: io error");
        assert!(
            h.fault()
                .is_some_and(|f| f.restart_needed && f.reason.contains("sled: io error"))
        );
    }
}
