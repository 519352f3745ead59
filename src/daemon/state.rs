//! The daemon's shared state and the one place that records what happens:
//! config, store, group commit, clock, VERP signer and the scheduler's wake-up.
//! Every event is stamped, indexed and (when a webhook is configured) put in the
//! outbox here, in the same write set as the state change it describes.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::Notify;

use crate::config::Config;
use crate::delivery::retry::RetryPolicy;
use crate::feedback::verp::Verp;
use crate::model::time::{SharedClock, Timestamp};
use crate::model::{Event, EventKind};
use crate::store::{Committer, Store, StoreError, WriteSet};

/// Counters exported on `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    pub received: AtomicU64,
    pub delivered: AtomicU64,
    pub deferred: AtomicU64,
    pub bounced: AtomicU64,
    pub failed: AtomicU64,
    pub expired: AtomicU64,
    pub dropped: AtomicU64,
    pub complained: AtomicU64,
    pub unsubscribed: AtomicU64,
    /// Returned reports kept in the security log (not tied to a recipient by a signed tag).
    pub unverified: AtomicU64,
    pub attempts: AtomicU64,
    /// Sum of attempt durations in ms and a histogram (buckets in `ATTEMPT_BUCKETS_MS`).
    pub attempt_ms_sum: AtomicU64,
    pub attempt_buckets: [AtomicU64; 9],
}

/// Upper bounds (ms) of the attempt-latency histogram buckets; the last is +Inf.
pub const ATTEMPT_BUCKETS_MS: [u64; 8] = [10, 50, 100, 250, 500, 1000, 5000, 30000];

impl Counters {
    pub fn count(&self, kind: EventKind) {
        let c = match kind {
            EventKind::Queued => &self.received,
            EventKind::Delivered => &self.delivered,
            EventKind::Deferred => &self.deferred,
            EventKind::Bounced => &self.bounced,
            EventKind::Failed => &self.failed,
            EventKind::Expired => &self.expired,
            EventKind::Dropped => &self.dropped,
            EventKind::Complained => &self.complained,
            EventKind::Unsubscribed => &self.unsubscribed,
            _ => return,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn observe_attempt(&self, ms: u64) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        self.attempt_ms_sum.fetch_add(ms, Ordering::Relaxed);
        let i = ATTEMPT_BUCKETS_MS
            .iter()
            .position(|&b| ms <= b)
            .unwrap_or(ATTEMPT_BUCKETS_MS.len());
        self.attempt_buckets[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// Shared state of a running daemon.
pub struct Daemon {
    pub cfg: Arc<Config>,
    pub store: Store,
    pub committer: Committer,
    pub clock: SharedClock,
    pub verp: Verp,
    pub retry: RetryPolicy,
    /// Wakes the scheduler when new work is queued or retried.
    pub wake: Notify,
    /// Wakes the webhook sender when events are in the outbox.
    pub webhook_wake: Notify,
    pub counters: Counters,
    /// Set while draining on SIGTERM: intake answers 421.
    pub shutting_down: AtomicBool,
    /// Set once startup recovery finished and listeners are bound.
    pub ready: AtomicBool,
    /// The SMTP listener's counters, once it runs (for `/metrics`).
    pub smtp_stats: std::sync::OnceLock<Arc<crate::inbound::SmtpStats>>,
    /// The delivery side's per-destination gates, once it runs (for `/metrics`).
    pub shaping: std::sync::OnceLock<Arc<crate::delivery::outbound::shaping::Shaper>>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Relay")
    }
}

impl Daemon {
    /// Opens the store and loads (or creates) the VERP secret. Must run inside a tokio runtime.
    pub fn open(cfg: Arc<Config>, clock: SharedClock) -> Result<Arc<Daemon>, StateError> {
        let store = Store::open(&cfg.server.data_dir)?;
        let secret = match &cfg.bounces.secret {
            Some(s) => s.expose().as_bytes().to_vec(),
            None => load_or_create_secret(&cfg.server.data_dir.join("verp.key"))?.into_bytes(),
        };
        let verp = Verp::new(&secret, &cfg.bounces.domain);
        let retry = RetryPolicy {
            delays: cfg.delivery.retry.iter().map(|d| d.0).collect(),
            max_age: cfg.delivery.max_age.0,
        };
        let committer = Committer::start(store.clone());
        Ok(Arc::new(Daemon {
            cfg,
            store,
            committer,
            clock,
            verp,
            retry,
            wake: Notify::new(),
            webhook_wake: Notify::new(),
            counters: Counters::default(),
            shutting_down: AtomicBool::new(false),
            ready: AtomicBool::new(false),
            smtp_stats: std::sync::OnceLock::new(),
            shaping: std::sync::OnceLock::new(),
        }))
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Adds an event to a write set: stamps its id, indexes it, queues it for the webhook.
    pub fn record(&self, ws: &mut WriteSet, mut ev: Event) -> Result<Event, StoreError> {
        self.store.stamp_event(&mut ev)?;
        self.store.index_current(ws, &ev)?;
        ws.put_event(&ev, self.wants_webhook(ev.status));
        Ok(ev)
    }

    fn wants_webhook(&self, kind: EventKind) -> bool {
        let w = &self.cfg.webhooks;
        w.url.is_some() && (w.statuses.is_empty() || w.statuses.iter().any(|s| s == kind.as_str()))
    }

    /// Applies a write set, waits until it is on disk, then counts its events and wakes
    /// the webhook sender.
    pub async fn commit(&self, ws: WriteSet, events: &[Event]) -> Result<(), StoreError> {
        self.committer.commit(ws).await?;
        for e in events {
            self.counters.count(e.status);
        }
        if !events.is_empty() && self.cfg.webhooks.url.is_some() {
            self.webhook_wake.notify_one();
        }
        Ok(())
    }
}

/// Startup failures of the shared state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {message}")]
    Secret { path: String, message: String },
}

/// Reads a secret file, or creates one with 32 random bytes (hex) and mode 0600.
pub fn load_or_create_secret(path: &Path) -> Result<String, StateError> {
    let err = |m: String| StateError::Secret {
        path: path.display().to_string(),
        message: m,
    };
    if let Ok(s) = std::fs::read_to_string(path) {
        let s = s.trim().to_string();
        if !s.is_empty() {
            return Ok(s);
        }
    }
    let bytes: [u8; 32] = rand::random();
    let secret = crate::store::hex(&bytes);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    }
    write_private(path, &secret).map_err(|e| err(e.to_string()))?;
    Ok(secret)
}

fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(content.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Writes `ev` (kind `unverified`) to the security log and counts it.
pub fn record_unverified(
    daemon: &Daemon,
    ws: &mut WriteSet,
    mut ev: Event,
) -> Result<(), StoreError> {
    ev.status = EventKind::Unverified;
    daemon.store.log_unverified(ws, &mut ev)?;
    daemon.counters.unverified.fetch_add(1, Ordering::Relaxed);
    Ok(())
}
