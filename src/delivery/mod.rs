//! Delivery: from a stored message to one outcome per recipient.
//!
//! In: due messages from the store's schedule index. Out: a [`Reply`](crate::model::Reply)
//! per recipient, handed to [`crate::records::disposition`], and (when
//! `bounces.notify_sender` asks) a DSN to the original sender.
//!
//! - [`scheduler`]: the loop that takes due messages and runs one attempt each;
//! - [`retry`]: the retry plan (when the next attempt is due, when to give up);
//! - [`outbound`]: routes and MX lookup, the SMTP client, STARTTLS, MTA-STS, DKIM,
//!   per-destination shaping;
//! - [`sender_dsn`]: the delivery status notifications rebound sends (RFC 3464).
//!
//! May call: `model`, `config`, `classify`, `store`, `records`, `daemon::state`.

pub mod outbound;
pub mod retry;
pub mod scheduler;
pub mod sender_dsn;
