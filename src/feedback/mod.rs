//! Feedback: what comes back after delivery.
//!
//! In: messages to the bounce domain (SMTP, `rebound ingest`, `POST /v1/ingest`) and
//! unsubscribe requests (`List-Unsubscribe` URL and mailto). Out: findings for
//! [`crate::records::disposition`] when a report is tied to a recipient by a signed
//! token, or an entry in the security log when it is not.
//!
//! - [`returned`]: parses a returned message ([`crate::bounce`]) and ties it to a recipient;
//! - [`verp`]: the signed VERP envelope sender and report token;
//! - [`unsubscribe`]: one-click (RFC 8058) and mailto unsubscribes.
//!
//! May call: `model`, `config`, `bounce`, `classify`, `store`, `records`, `daemon::state`.

pub mod returned;
pub mod unsubscribe;
pub mod verp;
