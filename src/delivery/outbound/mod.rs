//! Outbound delivery: route a recipient domain to next hops (static routes,
//! relayhost or MX via hickory), speak SMTP to them with mail-send's low-level
//! client (STARTTLS per policy, pipelining, per-step timeouts, connection reuse,
//! concurrency caps) and return one `Reply` per recipient. It never sees the
//! queue, the classifier or sled.

use std::sync::Arc;

use crate::model::Reply;
use crate::model::address::Address;

/// One SMTP transaction to run: MAIL FROM `mail_from`, RCPT each recipient, DATA `body`.
#[derive(Debug, Clone)]
pub struct Transaction {
    /// Reverse path without angle brackets; empty for the null sender.
    pub mail_from: String,
    pub recipients: Vec<Address>,
    /// The message, CRLF line ends, not dot-stuffed.
    pub body: Arc<Vec<u8>>,
}

/// What happened to one recipient of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptOutcome {
    pub recipient: Address,
    /// The deciding reply: the RCPT reply if it was refused, else the reply after
    /// end of data; or a synthetic reply for a DNS/connection/TLS/timeout failure.
    pub reply: Reply,
    /// The host that gave the reply (MX name or route), if a connection was made.
    pub remote_host: Option<String>,
}

pub mod body;
mod client;
mod deliver;
pub mod dkim;
pub mod long_lines;
pub mod mta_sts;
mod mx;
mod pool;
pub mod reply;
pub mod route;
mod session;
pub mod shaping;

pub use deliver::{Deliverer, OutboundError};
pub use mx::resolver;

/// Anything that can run transactions for one recipient domain (the real
/// [`Deliverer`]-style SMTP client, or a test transport).
pub trait Deliver: Send + Sync + 'static {
    /// Runs `txs` for recipients of `domain`; one outcome per recipient, in order.
    fn deliver(
        &self,
        domain: &str,
        txs: Vec<Transaction>,
    ) -> impl std::future::Future<Output = Vec<Vec<RcptOutcome>>> + Send;
}

impl Deliver for Deliverer {
    async fn deliver(&self, domain: &str, txs: Vec<Transaction>) -> Vec<Vec<RcptOutcome>> {
        Deliverer::deliver(self, domain, txs).await
    }
}
