//! The boundary between the SMTP listener and the rest of the daemon: what a
//! session asks of the queue (may I accept? is this recipient for the bounce
//! domain or suppressed? store this message durably) and the answers it turns
//! into SMTP replies. The listener never sees sled; the queue never sees sockets.

use std::future::Future;
use std::net::SocketAddr;

use crate::model::SuppressionReason;
use crate::model::address::Address;
use crate::model::dsn_request::{DsnNotify, DsnRet};

/// What the SMTP session knows about its client when it asks the intake.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub peer: SocketAddr,
    /// The EHLO/HELO argument.
    pub helo: String,
    pub tls: bool,
    /// The AUTH identity, if the client authenticated.
    pub auth_user: Option<String>,
    /// True when the client may relay (relay_networks or authenticated).
    pub relay_allowed: bool,
}

/// One accepted `RCPT TO`.
#[derive(Debug, Clone)]
pub struct RecipientSpec {
    pub address: Address,
    /// RFC 3461 ORCPT (`rfc822;a@b`), as given.
    pub orcpt: Option<String>,
    /// `None` when the client gave no NOTIFY (default behaviour: failures only).
    pub notify: Option<DsnNotify>,
}

/// A complete message handed over at the end of DATA/BDAT.
#[derive(Debug, Clone)]
pub struct Submission {
    pub session: SessionInfo,
    /// Reverse path; `None` for the null sender `<>`.
    pub sender: Option<Address>,
    pub recipients: Vec<RecipientSpec>,
    pub env_id: Option<String>,
    pub ret: Option<DsnRet>,
    /// The message with CRLF line ends, dot-unstuffed, `Received:` already prepended.
    pub body: Vec<u8>,
}

/// The decision on one recipient at RCPT time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptDecision {
    /// An address to relay to (the session still enforces relay permission).
    Relay,
    /// An address at the bounce domain: accepted from any client, never relayed.
    BounceIntake,
    /// Suppressed and `suppression.on_suppressed = "reject"`: `550 5.1.1` naming the reason.
    RejectSuppressed(SuppressionReason),
}

/// Where a submission went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The queue id shown in `250 2.0.0 Ok: queued as <id>`; empty when the transaction only
    /// carried returned reports (nothing was queued, the reply is `Ok: report received`).
    pub queue_id: String,
}

impl Receipt {
    /// Only returned reports (every recipient at the bounce domain): no queue entry.
    pub fn report_received() -> Receipt {
        Receipt {
            queue_id: String::new(),
        }
    }

    pub fn is_report(&self) -> bool {
        self.queue_id.is_empty()
    }

    /// The text of the `250 2.0.0` reply to DATA.
    pub fn reply_text(&self) -> String {
        if self.is_report() {
            "Ok: report received".into()
        } else {
            format!("Ok: queued as {}", self.queue_id)
        }
    }
}

/// Why the intake could not take a message; each maps to one SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    /// Not enough free space: `452 4.3.1`.
    #[error("insufficient system storage")]
    InsufficientStorage,
    /// The write or the flush failed: `451 4.3.0`; nothing was acknowledged.
    #[error("local error in processing: {0}")]
    StorageFailed(String),
    /// The daemon is shutting down: `421 4.3.0`.
    #[error("shutting down")]
    ShuttingDown,
}

impl IntakeError {
    /// The SMTP reply `(code, enhanced, text)` for this error.
    pub fn smtp_reply(&self) -> (u16, &'static str, &'static str) {
        match self {
            IntakeError::InsufficientStorage => {
                (452, "4.3.1", "Insufficient system storage, try again later")
            }
            IntakeError::StorageFailed(_) => (
                451,
                "4.3.0",
                "Local error in processing, message not accepted, try again later",
            ),
            IntakeError::ShuttingDown => (421, "4.3.0", "Service shutting down, try again later"),
        }
    }
}

/// Implemented by the queue; used by SMTP sessions.
pub trait Intake: Send + Sync + 'static {
    /// Checked at MAIL FROM: is there room and is the store healthy?
    fn accepting(&self) -> Result<(), IntakeError>;

    /// Classifies a recipient at RCPT time.
    fn check_recipient(&self, rcpt: &Address) -> RcptDecision;

    /// Stores the message durably; resolves only after the data is on disk (fsync).
    fn submit(&self, sub: Submission) -> impl Future<Output = Result<Receipt, IntakeError>> + Send;
}
