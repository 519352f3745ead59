//! Locks for the crate's process-global counters (`dkim::unsigned_total`,
//! `dkim::body_hash_counts`, `dkim::rotation_checks`, `mta_sts::failure_counts`): all tests of
//! an area binary share one process, so a test that asserts how such a counter moved, and
//! every test that can move it, holds the counter's lock for its whole run; the movement a
//! test sees is then its own. (tokio's mutex: held across awaits, never poisoned by a failed
//! test.)

use tokio::sync::{Mutex, MutexGuard};

static DKIM: Mutex<()> = Mutex::const_new(());
static MTA_STS: Mutex<()> = Mutex::const_new(());

/// Held by every test that runs a daemon or signer with DKIM signing on.
pub async fn dkim() -> MutexGuard<'static, ()> {
    DKIM.lock().await
}

/// Held by every test that delivers under an MTA-STS policy.
pub async fn mta_sts() -> MutexGuard<'static, ()> {
    MTA_STS.lock().await
}
