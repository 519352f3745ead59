//! Records: the one writer of outcomes and what is told about them.
//!
//! In: findings (a reply, a parsed report, an unsubscribe, an expiry, a drop). Out: a
//! recipient's status, its event in the communications log, the suppression list,
//! the webhook outbox, counters.
//!
//! - [`disposition`]: the one table from finding to status, event and suppression;
//! - [`webhooks`]: the sender that POSTs the outbox in order (over [`http_client`]);
//! - [`metrics`]: `GET /metrics` in Prometheus text format;
//! - [`retention`]: the periodic purge of old events and bodies.
//!
//! May call: `model`, `config`, `classify`, `store`, `daemon::state`, `admin` (retention).

pub mod disposition;
pub mod enqueue;
pub mod http_client;
pub mod metrics;
pub mod retention;
pub mod webhooks;
