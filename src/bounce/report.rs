//! The parser's output: one [`BounceReport`] per returned message, one [`RecipientReport`] per
//! recipient it names, and the headers of the returned original ([`OriginalHeaders`]).

use serde::{Serialize, Serializer};

use super::fields::squeeze;
use crate::model::{Class, EnhancedCode, Reason, Verdict};

/// Everything learnt from one returned message.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BounceReport {
    /// Which recogniser understood the message (`"dsn"`, `"arf"`, `"qmail"`, `"autoreply"`, `"none"` ...).
    pub format: &'static str,
    pub reporting_mta: Option<String>,
    /// Message-ID of the returned original, if it is attached or quoted.
    pub original_message_id: Option<String>,
    pub original_envelope_id: Option<String>,
    /// Headers of the embedded original message, for matching it to what was sent.
    pub original: OriginalHeaders,
    pub recipients: Vec<RecipientReport>,
    /// True when the MIME structure could not be parsed and the message was read as plain text.
    pub degraded: bool,
}

/// The headers of the returned original that identify it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OriginalHeaders {
    pub from: Option<String>,
    pub to: Option<String>,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    /// Return-Path of the original: the envelope sender (a VERP address when rebound sent it).
    pub return_path: Option<String>,
    /// The envelope sender as the report states it (ARF `Original-Mail-From`, Postfix
    /// `X-Postfix-Sender`), without brackets.
    pub envelope_sender: Option<String>,
    /// Every `X-Rebound-*` header, name as written.
    pub rebound_headers: Vec<(String, String)>,
}

/// What happened to one recipient, as the report says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecipientReport {
    pub recipient: Option<String>,
    pub original_recipient: Option<String>,
    /// RFC 3464 action (`failed`, `delayed`, `delivered`, `relayed`, `expanded`), lower case.
    pub action: Option<String>,
    #[serde(serialize_with = "serialize_code")]
    pub status: Option<EnhancedCode>,
    pub reply_code: Option<u16>,
    pub reason: Reason,
    pub class: Class,
    pub diagnostic: Option<String>,
    pub remote_mta: Option<String>,
    pub last_attempt: Option<String>,
    pub will_retry_until: Option<String>,
    pub feedback_type: Option<String>,
    /// The classification rule (or recogniser rule) that decided the reason.
    pub rule: &'static str,
    /// The RFC 3464 diagnostic type (`smtp`, `x-unix` ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostic_type: Option<String>,
    /// The SMTP command the failure answered (`MAIL`, `RCPT`, `DATA`), when the report says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_command: Option<&'static str>,
}

impl RecipientReport {
    /// An empty, unclassified record.
    pub fn blank() -> Self {
        RecipientReport {
            recipient: None,
            original_recipient: None,
            action: None,
            status: None,
            reply_code: None,
            reason: Reason::Undefined,
            class: Class::Unclassified,
            diagnostic: None,
            remote_mta: None,
            last_attempt: None,
            will_retry_until: None,
            feedback_type: None,
            rule: "",
            smtp_command: None,
            diagnostic_type: None,
        }
    }

    /// The classification as a [`Verdict`], for recording on events.
    pub fn verdict(&self) -> Verdict {
        Verdict {
            class: self.class,
            reason: self.reason,
            rule: self.rule,
        }
    }

    /// A failed recipient with a diagnostic text, to be classified.
    pub fn failed(recipient: Option<String>, diagnostic: impl Into<String>) -> Self {
        let d = squeeze(&diagnostic.into());
        RecipientReport {
            recipient,
            diagnostic: Some(d).filter(|d| !d.is_empty()),
            ..RecipientReport::blank()
        }
    }
}

fn serialize_code<S: Serializer>(code: &Option<EnhancedCode>, s: S) -> Result<S::Ok, S::Error> {
    match code {
        Some(c) => s.collect_str(c),
        None => s.serialize_none(),
    }
}
