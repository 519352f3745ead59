//! Retention (placeholder until the admin branch's purge lands).
use crate::relay::Relay;

/// Purges what is past `retention.*` and logs what was removed.
pub async fn purge_logged(relay: &Relay) {
    let _ = relay;
}
