//! Admin operations (issue #6): queue inspection and management, resend, the
//! communications log, the undelivered report, the suppression list with import
//! and export, retention and erasure. A pure Rust API over [`Daemon`](crate::daemon::state::Daemon); the HTTP
//! handlers in [`crate::api`] are thin wrappers. Every state change goes through
//! one write set and `relay.commit`, and records its own event.

pub mod log;
mod queue;
mod report;
mod retention;
mod suppressions;
mod transfer;

pub use queue::{
    MessageView, QueuePage, RcptView, ResendResult, delete, list_queue, resend, retry, show,
};
pub use report::{
    EventFilter, UndeliveredItem, UndeliveredReport, events, limit_param, parse_since,
    resolved_by_resend, row_id, undelivered,
};
pub use retention::{EraseStats, PurgeStats, erase, purge};
pub use suppressions::{
    SuppressionPage, add_suppression, list_suppressions, parse_address, remove_suppression,
};
pub use transfer::{
    ExportFormat, ImportStats, csv_cell, export_suppressions, import_suppressions, parse_csv,
};

use crate::store::StoreError;

/// Why an admin operation did not happen. Callers map it to an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The thing named does not exist (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// A parameter is malformed (HTTP 400); `param` names it.
    #[error("{param}: {message}")]
    BadInput {
        param: &'static str,
        message: String,
    },
    /// The request is understood but refused by a rule (HTTP 409); `code` is a stable word.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AdminError {
    pub fn bad(param: &'static str, message: impl Into<String>) -> Self {
        AdminError::BadInput {
            param,
            message: message.into(),
        }
    }

    pub fn refused(code: &'static str, message: impl Into<String>) -> Self {
        AdminError::Refused {
            code,
            message: message.into(),
        }
    }
}

/// Parses a queue id as shown to people (upper- or lower-case hex).
pub fn parse_id(s: &str) -> Result<u64, AdminError> {
    crate::store::queue::parse_queue_id(s.trim())
        .ok_or_else(|| AdminError::bad("id", format!("{s:?} is not a queue id")))
}

#[cfg(test)]
mod tests;
