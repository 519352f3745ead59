//! The retention task's body: runs the admin purge (events past `retention.events`,
//! bodies and finished records past `retention.bodies`) and logs what it removed.
use crate::daemon::state::Daemon;

/// Purges what is past `retention.*` and logs what was removed.
pub async fn purge_logged(daemon: &Daemon) {
    let stats = crate::admin::purge(daemon, daemon.now()).await;
    match &stats.error {
        Some(e) => tracing::error!(error = %e, "retention purge stopped early"),
        None if stats.events + stats.bodies + stats.messages > 0 => {
            tracing::info!(
                events = stats.events,
                bodies = stats.bodies,
                messages = stats.messages,
                "retention purge"
            )
        }
        None => {}
    }
}
