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

pub mod accept;
pub mod address;
pub mod admin;
pub mod api;
pub mod bounce;
pub mod classify;
pub mod cli;
pub mod config;
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
