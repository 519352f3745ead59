//! What a sender asks of delivery status notifications (RFC 3461): the NOTIFY
//! flags of each recipient and the RET choice of the message. Given at `RCPT` and
//! `MAIL`, stored with the queue record, read when a DSN is composed.

/// RFC 3461 NOTIFY flags of one recipient.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DsnNotify {
    pub never: bool,
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

/// RFC 3461 RET.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DsnRet {
    Full,
    Headers,
}
