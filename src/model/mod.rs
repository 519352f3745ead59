//! The product's vocabulary (README "What happens to each recipient", "Bounces, complaints and unsubscribes", "Admin API and webhooks"): recipient statuses, failure classes and
//! reasons, SMTP replies, events and suppression entries. Pure data, no I/O.

pub mod address;
pub mod constant_time;
pub mod dsn_request;
pub mod headers;
pub mod time;

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::model::time::Timestamp;

/// The current status of one (message, recipient) pair (README "What happens to each recipient").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Queued,
    Deferred,
    Delivered,
    Bounced,
    Failed,
    Expired,
    Dropped,
    Complained,
    Unsubscribed,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 9] = [
        Status::Queued,
        Status::Deferred,
        Status::Delivered,
        Status::Bounced,
        Status::Failed,
        Status::Expired,
        Status::Dropped,
        Status::Complained,
        Status::Unsubscribed,
    ];

    /// The wire name (`"bounced"` ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Deferred => "deferred",
            Status::Delivered => "delivered",
            Status::Bounced => "bounced",
            Status::Failed => "failed",
            Status::Expired => "expired",
            Status::Dropped => "dropped",
            Status::Complained => "complained",
            Status::Unsubscribed => "unsubscribed",
        }
    }

    /// True when no further delivery attempt will be made for this recipient.
    pub fn is_final(self) -> bool {
        !matches!(self, Status::Queued | Status::Deferred)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown status {s:?}"))
    }
}

/// What kind of thing an event records. Recipient statuses plus the
/// bookkeeping events of the communications log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Queued,
    Deferred,
    Delivered,
    Bounced,
    Failed,
    Expired,
    Dropped,
    Complained,
    Unsubscribed,
    /// A returned report said the remote is still trying (RFC 3464 `Action: delayed`);
    /// recorded, changes no status.
    Delayed,
    /// A stored message was queued again (`rebound resend`); `linked_queue_id` names the new one.
    Resent,
    /// An auto-reply (vacation ...) came back; recorded, changes nothing.
    Autoreply,
    /// A returned message that could not be trusted or matched (forged, expired or unknown
    /// VERP tag, unknown Message-ID); kept in the separate security log, changes nothing.
    Unverified,
    /// The suppression list changed (added or removed) by an operator.
    SuppressionAdded,
    SuppressionRemoved,
}

impl EventKind {
    /// The recipient status this event sets, if any.
    pub fn status(self) -> Option<Status> {
        Some(match self {
            EventKind::Queued => Status::Queued,
            EventKind::Deferred => Status::Deferred,
            EventKind::Delivered => Status::Delivered,
            EventKind::Bounced => Status::Bounced,
            EventKind::Failed => Status::Failed,
            EventKind::Expired => Status::Expired,
            EventKind::Dropped => Status::Dropped,
            EventKind::Complained => Status::Complained,
            EventKind::Unsubscribed => Status::Unsubscribed,
            _ => return None,
        })
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self.status() {
            Some(s) => s.as_str(),
            None => match self {
                EventKind::Delayed => "delayed",
                EventKind::Resent => "resent",
                EventKind::Autoreply => "autoreply",
                EventKind::Unverified => "unverified",
                EventKind::SuppressionAdded => "suppression_added",
                EventKind::SuppressionRemoved => "suppression_removed",
                _ => unreachable!("statuses handled above"),
            },
        }
    }
}

impl From<Status> for EventKind {
    fn from(s: Status) -> Self {
        match s {
            Status::Queued => EventKind::Queued,
            Status::Deferred => EventKind::Deferred,
            Status::Delivered => EventKind::Delivered,
            Status::Bounced => EventKind::Bounced,
            Status::Failed => EventKind::Failed,
            Status::Expired => EventKind::Expired,
            Status::Dropped => EventKind::Dropped,
            Status::Complained => EventKind::Complained,
            Status::Unsubscribed => EventKind::Unsubscribed,
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a report says *this message* failed for good: RFC 3464's `Action` words,
/// stated by the report or inferred from its format's own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Failed,
    Delayed,
    Delivered,
    Relayed,
    Expanded,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Failed,
        Action::Delayed,
        Action::Delivered,
        Action::Relayed,
        Action::Expanded,
    ];

    /// The wire name (`"failed"` ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
            Action::Expanded => "expanded",
        }
    }

    /// Reads an RFC 3464 action value (any case, surrounding space and comments ignored).
    pub fn parse(s: &str) -> Option<Action> {
        let word = s.split(['(', ';']).next().unwrap_or("").trim();
        Action::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(word))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Failure class (README "Bounces, complaints and unsubscribes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Hard,
    Soft,
    Block,
    Complaint,
    Autoreply,
    Delivered,
    /// Not a failure report at all (the wire word is `none`).
    #[serde(rename = "none")]
    Unclassified,
}

impl Class {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Hard => "hard",
            Class::Soft => "soft",
            Class::Block => "block",
            Class::Complaint => "complaint",
            Class::Autoreply => "autoreply",
            Class::Delivered => "delivered",
            Class::Unclassified => "none",
        }
    }
}

/// Failure reason, Sisimai's vocabulary (README "Bounces, complaints and unsubscribes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    UserUnknown,
    HostUnknown,
    HasMoved,
    NotAccept,
    Suspend,
    MailboxFull,
    ExceedLimit,
    MesgTooBig,
    SystemFull,
    Filtered,
    Rejected,
    Blocked,
    SpamDetected,
    VirusDetected,
    PolicyViolation,
    SecurityError,
    AuthFailure,
    BadReputation,
    RequirePtr,
    NotCompliantRfc,
    NoRelaying,
    RateLimited,
    Speeding,
    TooManyConn,
    ContentError,
    SyntaxError,
    SystemError,
    NetworkError,
    MailerError,
    FailedStartTls,
    Expired,
    OnHold,
    Undefined,
    Feedback,
    Vacation,
    Delivered,
}

impl Reason {
    /// The wire name (`"userunknown"` ...).
    pub fn as_str(self) -> &'static str {
        use Reason::*;
        match self {
            UserUnknown => "userunknown",
            HostUnknown => "hostunknown",
            HasMoved => "hasmoved",
            NotAccept => "notaccept",
            Suspend => "suspend",
            MailboxFull => "mailboxfull",
            ExceedLimit => "exceedlimit",
            MesgTooBig => "mesgtoobig",
            SystemFull => "systemfull",
            Filtered => "filtered",
            Rejected => "rejected",
            Blocked => "blocked",
            SpamDetected => "spamdetected",
            VirusDetected => "virusdetected",
            PolicyViolation => "policyviolation",
            SecurityError => "securityerror",
            AuthFailure => "authfailure",
            BadReputation => "badreputation",
            RequirePtr => "requireptr",
            NotCompliantRfc => "notcompliantrfc",
            NoRelaying => "norelaying",
            RateLimited => "ratelimited",
            Speeding => "speeding",
            TooManyConn => "toomanyconn",
            ContentError => "contenterror",
            SyntaxError => "syntaxerror",
            SystemError => "systemerror",
            NetworkError => "networkerror",
            MailerError => "mailererror",
            FailedStartTls => "failedstarttls",
            Expired => "expired",
            OnHold => "onhold",
            Undefined => "undefined",
            Feedback => "feedback",
            Vacation => "vacation",
            Delivered => "delivered",
        }
    }

    /// The class a failure with this reason belongs to (README "Bounces, complaints and unsubscribes": class follows reason).
    /// `NotAccept` is hard only when permanent; callers with a 4xx pass `permanent = false`.
    pub fn class(self, permanent: bool) -> Class {
        use Reason::*;
        match self {
            UserUnknown | HostUnknown | HasMoved => Class::Hard,
            NotAccept if permanent => Class::Hard,
            NotAccept => Class::Soft,
            MailboxFull | ExceedLimit | SystemFull | SystemError | NetworkError | TooManyConn
            | RateLimited | Speeding | Expired | OnHold | Undefined | Suspend => Class::Soft,
            Feedback => Class::Complaint,
            Vacation => Class::Autoreply,
            Delivered => Class::Delivered,
            _ => Class::Block,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An enhanced status code (RFC 3463), e.g. `5.1.1`. Parts are kept in full
/// (`5.7.509` stays `5.7.509`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EnhancedCode {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl EnhancedCode {
    pub const fn new(class: u8, subject: u16, detail: u16) -> Self {
        EnhancedCode {
            class,
            subject,
            detail,
        }
    }

    /// Parses `"5.1.1"`; `None` unless class is 2, 4 or 5 and the parts are 1-3 digits.
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.trim().split('.');
        let class: u8 = digits(it.next()?, 1)?.try_into().ok()?;
        let subject = digits(it.next()?, 3)?;
        let detail = digits(it.next()?, 3)?;
        if it.next().is_some() || !matches!(class, 2 | 4 | 5) {
            return None;
        }
        Some(EnhancedCode {
            class,
            subject,
            detail,
        })
    }
}

fn digits(s: &str, max: usize) -> Option<u16> {
    if s.is_empty() || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// An SMTP reply as the remote server gave it, or a synthetic one describing a
/// local failure (connection refused, DNS, TLS, timeout) so that one path
/// classifies everything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// Three-digit reply code.
    pub code: u16,
    /// Enhanced status code if the reply carried one (or a synthetic one for local failures).
    pub enhanced: Option<EnhancedCode>,
    /// Reply text (multi-line replies joined with a space), without code prefixes.
    pub text: String,
    /// True when rebound made this reply up for a local/transport failure.
    pub synthetic: bool,
}

impl Reply {
    /// A reply received from a server.
    pub fn remote(code: u16, enhanced: Option<EnhancedCode>, text: impl Into<String>) -> Self {
        Reply {
            code,
            enhanced,
            text: text.into(),
            synthetic: false,
        }
    }

    /// A reply made up by rebound for a local failure.
    pub fn local(code: u16, enhanced: EnhancedCode, text: impl Into<String>) -> Self {
        Reply {
            code,
            enhanced: Some(enhanced),
            text: text.into(),
            synthetic: true,
        }
    }

    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The one-line diagnostic shown in events: `"550 5.1.1 User unknown"`.
    pub fn diagnostic(&self) -> String {
        match self.enhanced {
            Some(e) => format!("{} {} {}", self.code, e, self.text),
            None => format!("{} {}", self.code, self.text),
        }
    }
}

/// How a reply, DSN or report was classified, and by which rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub class: Class,
    pub reason: Reason,
    /// Identifier of the rule that matched (recorded on events so a classification can be explained).
    pub rule: &'static str,
}

/// Who or what produced an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// SMTP intake from an app.
    Smtp,
    /// A delivery attempt (the reply of the remote server or a local transport failure).
    Delivery,
    /// A returned DSN / NDR.
    Dsn,
    /// A feedback (ARF) report.
    Arf,
    /// One-click or mailto unsubscribe.
    Unsubscribe,
    /// The scheduler (expiry).
    Scheduler,
    /// An operator through the CLI or API.
    Admin,
}

/// One entry of the communications log (README "Admin API and webhooks" event shape, plus extras).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub time: Timestamp,
    pub queue_id: Option<String>,
    pub message_id: Option<String>,
    pub recipient: Option<String>,
    pub status: EventKind,
    pub class: Option<Class>,
    pub reason: Option<Reason>,
    pub reply_code: Option<u16>,
    pub enhanced_status: Option<String>,
    pub diagnostic: Option<String>,
    pub attempt: Option<u32>,
    pub remote_host: Option<String>,
    pub next_attempt: Option<Timestamp>,
    /// The classification rule that matched, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// For `resent`: the new queue id; for a resent message's `queued`: the original.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_queue_id: Option<String>,
    /// ARF Feedback-Type for complaints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback_type: Option<String>,
    /// For events from returned reports: the report's action (`failed`, `delayed` ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

impl Event {
    /// A blank event of `kind` at `time`; callers fill in what they know.
    pub fn new(kind: EventKind, time: Timestamp) -> Self {
        Event {
            id: String::new(),
            time,
            queue_id: None,
            message_id: None,
            recipient: None,
            status: kind,
            class: None,
            reason: None,
            reply_code: None,
            enhanced_status: None,
            diagnostic: None,
            attempt: None,
            remote_host: None,
            next_attempt: None,
            rule: None,
            source: None,
            linked_queue_id: None,
            feedback_type: None,
            action: None,
        }
    }

    /// Copies code, enhanced status and diagnostic from a reply.
    pub fn with_reply(mut self, reply: &Reply) -> Self {
        self.reply_code = Some(reply.code);
        self.enhanced_status = reply.enhanced.map(|e| e.to_string());
        self.diagnostic = Some(reply.diagnostic());
        self
    }

    /// Copies class, reason and rule from a verdict.
    pub fn with_verdict(mut self, v: &Verdict) -> Self {
        self.class = Some(v.class);
        self.reason = Some(v.reason);
        self.rule = Some(v.rule.to_string());
        self
    }
}

/// Why an address is on the suppression list (README "Admin API and webhooks").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    HardBounce,
    Complaint,
    Unsubscribe,
    Manual,
}

impl SuppressionReason {
    pub const ALL: [SuppressionReason; 4] = [
        SuppressionReason::HardBounce,
        SuppressionReason::Complaint,
        SuppressionReason::Unsubscribe,
        SuppressionReason::Manual,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionReason::HardBounce => "hard_bounce",
            SuppressionReason::Complaint => "complaint",
            SuppressionReason::Unsubscribe => "unsubscribe",
            SuppressionReason::Manual => "manual",
        }
    }

    /// Complaint and unsubscribe entries record a person's wish; removing them needs `--force`.
    pub fn needs_consent_to_remove(self) -> bool {
        matches!(
            self,
            SuppressionReason::Complaint | SuppressionReason::Unsubscribe
        )
    }
}

impl fmt::Display for SuppressionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SuppressionReason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SuppressionReason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown suppression reason {s:?} (expected hard_bounce, complaint, unsubscribe or manual)"))
    }
}

/// One suppression-list entry (README "Admin API and webhooks").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suppression {
    pub address: String,
    pub reason: SuppressionReason,
    pub time: Timestamp,
    pub diagnostic: Option<String>,
    pub event_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_code_keeps_three_digit_parts() {
        let e = EnhancedCode::parse("5.7.509").unwrap();
        assert_eq!(e.to_string(), "5.7.509");
        assert_eq!(EnhancedCode::parse("3.1.1"), None);
        assert_eq!(EnhancedCode::parse("5.1"), None);
        assert_eq!(EnhancedCode::parse("5.1.1.1"), None);
    }

    #[test]
    fn class_follows_reason() {
        assert_eq!(Reason::UserUnknown.class(true), Class::Hard);
        assert_eq!(Reason::MailboxFull.class(true), Class::Soft);
        assert_eq!(Reason::SpamDetected.class(true), Class::Block);
        assert_eq!(Reason::NotAccept.class(false), Class::Soft);
    }

    #[test]
    fn wire_names_round_trip() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert_eq!(
            serde_json::to_string(&Reason::FailedStartTls).unwrap(),
            "\"failedstarttls\""
        );
        assert_eq!(
            serde_json::to_string(&SuppressionReason::HardBounce).unwrap(),
            "\"hard_bounce\""
        );
    }
}
