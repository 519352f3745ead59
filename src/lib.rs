//! rebound: a mail relay that knows what became of every recipient.
//!
//! # Layout and data flow
//!
//! ```text
//! app ──SMTP──► smtp (session, limits, STARTTLS, AUTH) ──► intake ──► store (sled, group commit) ──► 250
//!                                                                        │
//!                          scheduler (retry plan, time-ordered index) ◄──┘
//!                                │
//!                                ▼
//!                          outbound (routes / MX, SMTP client) ──► Reply per recipient
//!                                │
//!                                ▼
//!                          classify (rules table) ──► disposition ──► queue, events, suppression, webhooks
//! remote MTA ──DSN/ARF──► smtp ──► returned: bounce (parser), verp tag / report token (who was it?) ──► disposition (same table)
//!                                             └─ not signed, replayed ──► store::reports (security log)
//! CLI ──HTTP──► api (axum) ──► store
//! ```
//!
//! - [`model`]: statuses, classes, reasons, events (the product's words).
//! - [`config`], [`time`], [`address`]: typed edges.
//! - [`smtp`]: the inbound listener; [`intake`]: what it asks of the queue.
//! - [`outbound`]: delivery to remote servers.
//! - [`classify`], [`bounce`]: pure classification of replies and returned messages.
//! - [`returned`]: ties a returned report to a recipient (signed VERP tag or report token,
//!   never a Message-ID alone from SMTP) and hands it to [`disposition`], the one table that
//!   turns any finding (reply, report, unsubscribe, expiry, drop) into status, event and
//!   suppression.
//! - [`store`]: sled trees, group commit, storage health, the event log, the current-status
//!   index, the security log.
//! - [`console`]: the web console under `/ui/` on the admin listener (sign-in, pages,
//!   operator forms through [`admin`]).

pub mod accept;
pub mod address;
pub mod admin;
pub mod api;
pub mod bounce;
pub mod classify;
pub mod cli;
pub mod config;
pub mod console;
pub mod constant_time;
pub mod daemon;
pub mod disposition;
pub mod dsn;
pub mod http_client;
pub mod intake;
pub mod metrics;
pub mod model;
pub mod outbound;
pub mod relay;
pub mod retention;
pub mod retry;
pub mod returned;
pub mod scheduler;
pub mod smtp;
pub mod store;
pub mod time;
pub mod verp;
pub mod webhooks;
pub mod unsubscribe;
