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
//! remote MTA ──DSN/ARF──► smtp ──► bounce (parser) ──► verp (who was it?) ──► disposition (same path)
//! CLI ──HTTP──► api (axum) ──► store
//! ```
//!
//! - [`model`]: statuses, classes, reasons, events (the product's words).
//! - [`config`], [`time`], [`address`]: typed edges.
//! - [`smtp`]: the inbound listener; [`intake`]: what it asks of the queue.
//! - [`outbound`]: delivery to remote servers.
//! - [`classify`], [`bounce`]: pure classification of replies and returned messages.

pub mod address;
pub mod config;
pub mod intake;
pub mod model;
pub mod outbound;
pub mod time;
pub mod retry;
pub mod store;
pub mod verp;
pub mod accept;
pub mod classify;
pub mod disposition;
pub mod dsn;
pub mod relay;
pub mod returned;
pub mod scheduler;
pub mod api;
pub mod bounce;
pub mod daemon;
pub mod admin;
pub mod cli;
