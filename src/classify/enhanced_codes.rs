//! The enhanced mail system status codes (RFC 3463, and the IANA "SMTP Enhanced Status Codes"
//! registry that RFC 5248 set up, with the codes later RFCs added to it), each with the
//! registry's meaning and the bounce reason that meaning names.
//!
//! A code is `class.subject.detail`. The class says whether the failure is permanent (5) or
//! transient (4); the subject says which part of the system failed (1 addressing, 2 mailbox,
//! 3 mail system, 4 network and routing, 5 mail delivery protocol, 6 message content, 7 security
//! or policy); the detail names the condition. Wherever a report states a code, this table
//! decides: a [`Strength::Strong`] entry's meaning is precise enough to win over the text around
//! it, a [`Strength::Weak`] one is used when no text rule matched. A detail the table does not
//! list falls back to its subject's entry (`code.x.N.*`).

use crate::model::Reason::{self, *};

/// How much an enhanced-code entry can be trusted on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strength {
    /// The code names the reason precisely (5.1.1, 5.2.2 ...): it wins over the text.
    Strong,
    /// The code is a hint (5.7.1, 5.0.0 ...): the text is consulted first.
    Weak,
}

/// One enhanced-status entry. `subject`/`detail` of `None` match any value; `class` of 0 matches
/// 4 and 5.
#[derive(Debug, Clone, Copy)]
pub struct CodeRule {
    pub id: &'static str,
    pub class: u8,
    pub subject: Option<u16>,
    pub detail: Option<u16>,
    pub reason: Reason,
    pub strength: Strength,
    /// The registry's title for the code (RFC 3463 §3, the IANA registry for later codes).
    pub meaning: &'static str,
}

const fn code(
    id: &'static str,
    (subject, detail): (u16, u16),
    reason: Reason,
    strength: Strength,
    meaning: &'static str,
) -> CodeRule {
    CodeRule {
        id,
        class: 0,
        subject: Some(subject),
        detail: Some(detail),
        reason,
        strength,
        meaning,
    }
}

const fn subject(
    id: &'static str,
    subject: u16,
    reason: Reason,
    meaning: &'static str,
) -> CodeRule {
    CodeRule {
        id,
        class: 0,
        subject: Some(subject),
        detail: None,
        reason,
        strength: Strength::Weak,
        meaning,
    }
}

use Strength::{Strong, Weak};

/// The registry, most specific entries first; the subject fallbacks close it.
pub static CODE_RULES: &[CodeRule] = &[
    // X.1: addressing status.
    code(
        "code.x.1.1",
        (1, 1),
        UserUnknown,
        Strong,
        "Bad destination mailbox address",
    ),
    code(
        "code.x.1.2",
        (1, 2),
        HostUnknown,
        Strong,
        "Bad destination system address",
    ),
    code(
        "code.x.1.3",
        (1, 3),
        UserUnknown,
        Weak,
        "Bad destination mailbox address syntax",
    ),
    code(
        "code.x.1.4",
        (1, 4),
        UserUnknown,
        Weak,
        "Destination mailbox address ambiguous",
    ),
    code(
        "code.x.1.6",
        (1, 6),
        HasMoved,
        Strong,
        "Destination mailbox has moved, no forwarding address",
    ),
    code(
        "code.x.1.7",
        (1, 7),
        Rejected,
        Strong,
        "Bad sender's mailbox address syntax",
    ),
    code(
        "code.x.1.8",
        (1, 8),
        Rejected,
        Strong,
        "Bad sender's system address",
    ),
    code(
        "code.x.1.9",
        (1, 9),
        SystemError,
        Weak,
        "Message relayed to non-compliant mailer",
    ),
    code(
        "code.x.1.10",
        (1, 10),
        HostUnknown,
        Weak,
        "Recipient address has null MX (RFC 7505)",
    ),
    // X.2: mailbox status.
    code(
        "code.x.2.1",
        (2, 1),
        Suspend,
        Weak,
        "Mailbox disabled, not accepting messages",
    ),
    code("code.x.2.2", (2, 2), MailboxFull, Strong, "Mailbox full"),
    code(
        "code.x.2.3",
        (2, 3),
        ExceedLimit,
        Strong,
        "Message length exceeds administrative limit",
    ),
    code(
        "code.x.2.4",
        (2, 4),
        MailerError,
        Weak,
        "Mailing list expansion problem",
    ),
    // X.3: mail system status.
    code("code.x.3.1", (3, 1), SystemFull, Strong, "Mail system full"),
    code(
        "code.x.3.2",
        (3, 2),
        NotAccept,
        Weak,
        "System not accepting network messages",
    ),
    code(
        "code.x.3.3",
        (3, 3),
        ContentError,
        Weak,
        "System not capable of selected features",
    ),
    code(
        "code.x.3.4",
        (3, 4),
        MesgTooBig,
        Strong,
        "Message too big for system",
    ),
    code(
        "code.x.3.5",
        (3, 5),
        SystemError,
        Weak,
        "System incorrectly configured",
    ),
    // X.4: network and routing status.
    code(
        "code.x.4.1",
        (4, 1),
        NetworkError,
        Weak,
        "No answer from host",
    ),
    code("code.x.4.2", (4, 2), NetworkError, Weak, "Bad connection"),
    code(
        "code.x.4.3",
        (4, 3),
        SystemError,
        Weak,
        "Directory server failure",
    ),
    code("code.x.4.4", (4, 4), HostUnknown, Weak, "Unable to route"),
    code(
        "code.x.4.5",
        (4, 5),
        SystemFull,
        Weak,
        "Mail system congestion",
    ),
    code(
        "code.x.4.6",
        (4, 6),
        NetworkError,
        Strong,
        "Routing loop detected",
    ),
    code(
        "code.x.4.7",
        (4, 7),
        Expired,
        Strong,
        "Delivery time expired",
    ),
    // X.5: mail delivery protocol status.
    code("code.x.5.1", (5, 1), SyntaxError, Weak, "Invalid command"),
    code("code.x.5.2", (5, 2), SyntaxError, Weak, "Syntax error"),
    code(
        "code.x.5.3",
        (5, 3),
        TooManyConn,
        Weak,
        "Too many recipients",
    ),
    code(
        "code.x.5.4",
        (5, 4),
        SyntaxError,
        Weak,
        "Invalid command arguments",
    ),
    code(
        "code.x.5.5",
        (5, 5),
        SyntaxError,
        Weak,
        "Wrong protocol version",
    ),
    code(
        "code.x.5.6",
        (5, 6),
        SyntaxError,
        Weak,
        "Authentication exchange line is too long (RFC 4954)",
    ),
    // X.6: message content or media status.
    code(
        "code.x.6.0",
        (6, 0),
        ContentError,
        Weak,
        "Other or undefined media error",
    ),
    code(
        "code.x.6.1",
        (6, 1),
        ContentError,
        Weak,
        "Media not supported",
    ),
    code(
        "code.x.6.2",
        (6, 2),
        ContentError,
        Weak,
        "Conversion required and prohibited",
    ),
    code(
        "code.x.6.3",
        (6, 3),
        ContentError,
        Weak,
        "Conversion required but not supported",
    ),
    code(
        "code.x.6.4",
        (6, 4),
        ContentError,
        Weak,
        "Conversion with loss performed",
    ),
    code(
        "code.x.6.5",
        (6, 5),
        ContentError,
        Weak,
        "Conversion failed",
    ),
    code(
        "code.x.6.6",
        (6, 6),
        ContentError,
        Weak,
        "Message content not available (RFC 4468)",
    ),
    code(
        "code.x.6.7",
        (6, 7),
        ContentError,
        Weak,
        "Non-ASCII addresses not permitted for that sender/recipient (RFC 6531)",
    ),
    code(
        "code.x.6.8",
        (6, 8),
        ContentError,
        Weak,
        "UTF-8 string reply is required, but not permitted by the client (RFC 6531)",
    ),
    code(
        "code.x.6.9",
        (6, 9),
        ContentError,
        Weak,
        "UTF-8 header message cannot be transferred to one or more recipients (RFC 6531)",
    ),
    // X.7: security or policy status.
    code(
        "code.x.7.1",
        (7, 1),
        Rejected,
        Weak,
        "Delivery not authorized, message refused",
    ),
    code(
        "code.x.7.2",
        (7, 2),
        PolicyViolation,
        Weak,
        "Mailing list expansion prohibited",
    ),
    code(
        "code.x.7.3",
        (7, 3),
        SecurityError,
        Weak,
        "Security conversion required but not possible",
    ),
    code(
        "code.x.7.4",
        (7, 4),
        SecurityError,
        Weak,
        "Security features not supported",
    ),
    code(
        "code.x.7.5",
        (7, 5),
        FailedStartTls,
        Weak,
        "Cryptographic failure",
    ),
    code(
        "code.x.7.6",
        (7, 6),
        SecurityError,
        Weak,
        "Cryptographic algorithm not supported",
    ),
    code(
        "code.x.7.7",
        (7, 7),
        SecurityError,
        Weak,
        "Message integrity failure",
    ),
    code(
        "code.x.7.8",
        (7, 8),
        SecurityError,
        Weak,
        "Authentication credentials invalid (RFC 4954)",
    ),
    code(
        "code.x.7.9",
        (7, 9),
        SecurityError,
        Weak,
        "Authentication mechanism is too weak (RFC 4954)",
    ),
    code(
        "code.x.7.10",
        (7, 10),
        SecurityError,
        Weak,
        "Encryption needed (RFC 5248)",
    ),
    code(
        "code.x.7.11",
        (7, 11),
        SecurityError,
        Weak,
        "Encryption required for requested authentication mechanism (RFC 4954)",
    ),
    code(
        "code.x.7.12",
        (7, 12),
        SecurityError,
        Weak,
        "A password transition is needed (RFC 4954)",
    ),
    code(
        "code.x.7.13",
        (7, 13),
        Suspend,
        Strong,
        "User account disabled (RFC 5248)",
    ),
    code(
        "code.x.7.14",
        (7, 14),
        SecurityError,
        Weak,
        "Trust relationship required (RFC 5248)",
    ),
    code(
        "code.x.7.15",
        (7, 15),
        PolicyViolation,
        Weak,
        "Priority level is too low (RFC 6710)",
    ),
    code(
        "code.x.7.16",
        (7, 16),
        MesgTooBig,
        Weak,
        "Message is too big for the specified priority (RFC 6710)",
    ),
    code(
        "code.x.7.17",
        (7, 17),
        HasMoved,
        Weak,
        "Mailbox owner has changed (RFC 7293)",
    ),
    code(
        "code.x.7.18",
        (7, 18),
        HasMoved,
        Weak,
        "Domain owner has changed (RFC 7293)",
    ),
    code(
        "code.x.7.19",
        (7, 19),
        PolicyViolation,
        Weak,
        "RRVS test cannot be completed (RFC 7293)",
    ),
    code(
        "code.x.7.20",
        (7, 20),
        AuthFailure,
        Strong,
        "No passing DKIM signature found (RFC 7372)",
    ),
    code(
        "code.x.7.21",
        (7, 21),
        AuthFailure,
        Strong,
        "No acceptable DKIM signature found (RFC 7372)",
    ),
    code(
        "code.x.7.22",
        (7, 22),
        AuthFailure,
        Strong,
        "No valid author-matched DKIM signature found (RFC 7372)",
    ),
    code(
        "code.x.7.23",
        (7, 23),
        AuthFailure,
        Strong,
        "SPF validation failed (RFC 7372)",
    ),
    code(
        "code.x.7.24",
        (7, 24),
        AuthFailure,
        Strong,
        "SPF validation error (RFC 7372)",
    ),
    code(
        "code.x.7.25",
        (7, 25),
        RequirePtr,
        Strong,
        "Reverse DNS validation failed (RFC 7372)",
    ),
    code(
        "code.x.7.26",
        (7, 26),
        AuthFailure,
        Strong,
        "Multiple authentication checks failed (RFC 7372)",
    ),
    code(
        "code.x.7.27",
        (7, 27),
        NotAccept,
        Strong,
        "Sender address has null MX (RFC 7505)",
    ),
    code(
        "code.x.7.28",
        (7, 28),
        SpamDetected,
        Weak,
        "Mail flood detected (RFC 8651 registry entry)",
    ),
    code(
        "code.x.7.29",
        (7, 29),
        AuthFailure,
        Weak,
        "ARC validation failure (RFC 8617)",
    ),
    code(
        "code.x.7.30",
        (7, 30),
        FailedStartTls,
        Weak,
        "REQUIRETLS support required (RFC 8689)",
    ),
    // Microsoft's widely seen extensions (not in the registry; their own documentation).
    code(
        "code.x.7.509",
        (7, 509),
        AuthFailure,
        Strong,
        "Access denied, sending domain does not pass DMARC (Microsoft)",
    ),
    code(
        "code.x.7.515",
        (7, 515),
        AuthFailure,
        Strong,
        "Access denied, sending domain does not meet the required authentication level (Microsoft)",
    ),
    code(
        "code.x.7.650",
        (7, 650),
        BadReputation,
        Strong,
        "Sending IP on a Microsoft block list for its reputation (Microsoft)",
    ),
    // Subject fallbacks: "other or undefined" status of each subject.
    subject("code.x.1.*", 1, UserUnknown, "Other address status"),
    subject(
        "code.x.4.*",
        4,
        NetworkError,
        "Other or undefined network or routing status",
    ),
    subject(
        "code.x.6.*",
        6,
        ContentError,
        "Other or undefined media error",
    ),
    subject(
        "code.x.7.*",
        7,
        PolicyViolation,
        "Other or undefined security status",
    ),
];

/// The entry for `e`: its own detail's, else its subject's; none for `X.0.0` (no subject named).
pub fn lookup(e: crate::model::EnhancedCode) -> Option<&'static CodeRule> {
    if e.subject == 0 && e.detail == 0 {
        return None;
    }
    CODE_RULES.iter().find(|r| {
        (r.class == 0 || r.class == e.class)
            && r.subject.is_none_or(|s| s == e.subject)
            && r.detail.is_none_or(|d| d == e.detail)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EnhancedCode;

    #[test]
    fn details_then_subjects() {
        let reason = |s: &str| lookup(EnhancedCode::parse(s).unwrap()).map(|r| r.reason);
        assert_eq!(reason("5.1.1"), Some(UserUnknown));
        assert_eq!(reason("4.7.25"), Some(RequirePtr));
        assert_eq!(reason("5.7.99"), Some(PolicyViolation));
        assert_eq!(reason("5.0.0"), None);
        assert!(CODE_RULES.iter().all(|r| !r.meaning.is_empty()));
    }
}
