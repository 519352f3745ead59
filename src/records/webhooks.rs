//! The webhook sender: events put in the sled outbox (in the same write set as
//! the change they describe) are POSTed as JSON arrays in order, signed with
//! `X-Rebound-Signature` = hex HMAC-SHA256 of the body under `webhooks.secret`,
//! with `X-Rebound-Timestamp`. A batch is removed from the outbox only after a
//! 2xx; otherwise the same batch is retried with backoff (so order per
//! recipient holds) until it is older than `webhooks.max_age`. Delivery is
//! at-least-once: a repeat carries the same event ids. Mail delivery never waits on it.
//! Nothing is posted while the store is faulted (a removal the disk refuses faults
//! it), so a batch whose removal cannot be recorded is not posted again and again.

use std::sync::Arc;
use std::time::Duration;

use ring::hmac;
use tokio_util::sync::CancellationToken;

use crate::daemon::state::Daemon;
use crate::model::Event;
use crate::store::{TreeId, WriteSet, unhex};

/// Signs a body the way receivers verify it: lower-case hex HMAC-SHA256.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    crate::store::hex(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), body).as_ref())
}

/// Runs until `shutdown`.
pub async fn run(daemon: Arc<Daemon>, secret: Vec<u8>, shutdown: CancellationToken) {
    let Some(url) = daemon.cfg.webhooks.url.clone() else {
        return;
    };
    let mut backoff = Duration::from_secs(1);
    loop {
        if daemon.committer.is_poisoned() {
            // The store cannot record a delivered batch: posting it would repeat it.
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = daemon.committer.health().changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        let batch = match next_batch(&daemon, &shutdown).await {
            Some(b) => b,
            None => return,
        };
        if batch.is_empty() {
            // Nothing fresh (stale events were dropped): wait a little rather than spin.
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = daemon.webhook_wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        match post_batch(&url, &secret, &batch, daemon.now()).await {
            Ok(()) => {
                backoff = Duration::from_secs(1);
                remove(&daemon, &batch);
            }
            Err(e) => {
                tracing::warn!(url = %url, error = %e, events = batch.len(), retry_in = ?backoff, "webhook delivery failed");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(300));
            }
        }
    }
}

/// Waits for events, lets a batch fill for `batch_wait`, drops those past `max_age`.
/// `None` on shutdown.
async fn next_batch(daemon: &Daemon, shutdown: &CancellationToken) -> Option<Vec<Event>> {
    let cfg = &daemon.cfg.webhooks;
    if !daemon.store.outbox_holds(1) {
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = daemon.webhook_wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
        if !daemon.store.outbox_holds(cfg.batch_size) {
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(cfg.batch_wait.0) => {}
            }
        }
    }
    let events = match daemon.store.outbox(cfg.batch_size) {
        Ok(events) => events,
        Err(e) => {
            // Nothing is sent or removed; the next round reads again.
            tracing::error!(error = %e, "cannot read the webhook outbox");
            Vec::new()
        }
    };
    let now = daemon.now();
    let (stale, fresh): (Vec<Event>, Vec<Event>) = events
        .into_iter()
        .partition(|e| now.since(e.time) > cfg.max_age.0);
    if !stale.is_empty() {
        tracing::error!(
            events = stale.len(),
            "webhook events older than webhooks.max_age dropped from the outbox"
        );
        remove(daemon, &stale);
    }
    Some(fresh)
}

async fn post_batch(
    url: &str,
    secret: &[u8],
    batch: &[Event],
    now: crate::model::time::Timestamp,
) -> Result<(), String> {
    let body = serde_json::to_vec(batch).map_err(|e| e.to_string())?;
    let headers = [
        ("x-rebound-signature", sign(secret, &body)),
        ("x-rebound-timestamp", (now.millis() / 1000).to_string()),
    ];
    let resp = crate::records::http_client::post(url, &headers, body, Duration::from_secs(10))
        .await
        .map_err(|e| e.to_string())?;
    if (200..300).contains(&resp.status) {
        Ok(())
    } else {
        Err(format!("receiver answered {}", resp.status))
    }
}

fn remove(daemon: &Daemon, batch: &[Event]) {
    let mut ws = WriteSet::new();
    for e in batch {
        if let Some(k) = unhex(&e.id) {
            ws.remove(TreeId::Outbox, k);
        }
    }
    if let Err(e) = daemon.store.apply(&ws) {
        tracing::error!(error = %e, "cannot remove delivered events from the webhook outbox");
        daemon.committer.poison(&e);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_is_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            super::sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
