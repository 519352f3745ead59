//! Table tests for the reply classifier: (reply line, expected class, expected reason).

use super::*;
use crate::model::Class::{Block, Hard, Soft};
use crate::model::Reason::*;

fn reply(line: &str, synthetic: bool) -> Reply {
    let (code, rest) = line.split_at(3);
    let code: u16 = code.parse().expect("test line starts with a code");
    let rest = rest.trim_start();
    let (enhanced, text) = match rest.split_once(' ') {
        Some((first, text)) if EnhancedCode::parse(first).is_some() => {
            (EnhancedCode::parse(first), text)
        }
        _ => (Option::None, rest),
    };
    Reply {
        code,
        enhanced,
        text: text.to_string(),
        synthetic,
    }
}

const CASES: &[(&str, Class, Reason)] = &[
    (
        "550 5.7.1 The IP you're using to send mail is not authorized to send email directly to our servers",
        Block,
        Blocked,
    ),
    (
        "550 5.0.0 <a@b.test>... Recipient address not valid",
        Hard,
        UserUnknown,
    ),
    ("550 5.0.0 Account blocked due to inactivity", Soft, Suspend),
    (
        "554 5.7.1 This message has been blocked because it contains a banned attachment",
        Block,
        ContentError,
    ),
    (
        "452 4.4.5 Insufficient disk space; try again later",
        Soft,
        SystemFull,
    ),
    (
        "550 all relevant MX records point to non-existent hosts",
        Hard,
        HostUnknown,
    ),
    // A registered code says more than generic words beside it.
    ("554 5.3.2 Service currently unavailable", Hard, NotAccept),
    // X.1.1 beside words naming another cause (providers misuse it): the words win...
    ("550 5.1.1 Mailbox full", Soft, MailboxFull),
    (
        "550 5.1.1 Mailbox unavailable: rate limit exceeded",
        Soft,
        RateLimited,
    ),
    (
        "550 5.1.1 Message rejected due to local policy",
        Block,
        PolicyViolation,
    ),
    // ...unless they also say the mailbox does not exist.
    (
        "550 5.1.1 User unknown; blocked by recipient policy",
        Hard,
        UserUnknown,
    ),
    (
        "553 5.7.1 sorry, that domain isn't in my list of allowed rcpthosts",
        Block,
        NoRelaying,
    ),
    (
        "250 2.0.0 OK queued as 12345",
        Class::Delivered,
        Reason::Delivered,
    ),
    (
        "550 5.1.1 <kijitora@example.jp>... User Unknown",
        Hard,
        UserUnknown,
    ),
    (
        "550 5.1.1 The email account that you tried to reach does not exist.",
        Hard,
        UserUnknown,
    ),
    ("550 No such user here", Hard, UserUnknown),
    (
        "553 5.3.0 <x@example.org>... Recipient address rejected: User unknown in local recipient table",
        Hard,
        UserUnknown,
    ),
    ("552 5.2.2 Mailbox full", Soft, MailboxFull),
    (
        "452 4.2.2 The email account that you tried to reach is over quota.",
        Soft,
        MailboxFull,
    ),
    (
        "550 5.7.1 Message rejected as spam by Content Filtering.",
        Block,
        SpamDetected,
    ),
    ("550 5.7.1 SPF check failed for sender", Block, AuthFailure),
    (
        "550 5.7.1 Email rejected per DMARC policy",
        Block,
        AuthFailure,
    ),
    (
        "550 5.7.26 This mail has been blocked because the sender is unauthenticated.",
        Block,
        AuthFailure,
    ),
    (
        "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
        Block,
        Blocked,
    ),
    ("550 5.7.1 Your IP is listed on RBL", Block, Blocked),
    (
        "421 4.7.0 Too many messages, rate limit exceeded, try again later",
        Soft,
        RateLimited,
    ),
    ("450 4.7.1 Message rate limit exceeded", Soft, RateLimited),
    (
        "451 4.7.1 Greylisted, please try again in 5 minutes",
        Soft,
        RateLimited,
    ),
    ("550 5.1.2 Host unknown", Hard, HostUnknown),
    (
        "554 5.4.4 SMTPSEND.DNS.NonExistentDomain; nonexistent domain",
        Hard,
        HostUnknown,
    ),
    ("550 Domain does not exist (NXDOMAIN)", Hard, HostUnknown),
    (
        "550 5.2.1 The email account that you tried to reach is disabled.",
        Soft,
        Suspend,
    ),
    (
        "550 5.0.0 Mailbox disabled for this recipient",
        Soft,
        Suspend,
    ),
    ("550 user account is inactive", Soft, Suspend),
    (
        "554 5.4.7 Delivery expired (message too old)",
        Soft,
        Expired,
    ),
    (
        "552 5.3.4 Message size exceeds fixed maximum message size",
        Block,
        MesgTooBig,
    ),
    ("552 Message is too big for this system", Block, MesgTooBig),
    (
        "554 5.7.1 <a@example.org>: Relay access denied",
        Block,
        NoRelaying,
    ),
    ("550 5.1.6 Recipient has moved", Hard, HasMoved),
    (
        "550 5.7.1 Connection refused: reverse DNS lookup failed for 192.0.2.1",
        Block,
        RequirePtr,
    ),
    (
        "554 5.7.0 Message rejected: virus found",
        Block,
        VirusDetected,
    ),
    (
        "530 5.7.0 Must issue a STARTTLS command first",
        Block,
        SecurityError,
    ),
    (
        "421 4.7.0 Too many concurrent SMTP connections",
        Soft,
        TooManyConn,
    ),
    (
        "550 5.1.8 Sender address rejected: Domain not found",
        Block,
        Rejected,
    ),
    (
        "450 4.1.1 <nobody@example.org>: Recipient address rejected: User unknown",
        Soft,
        UserUnknown,
    ),
    ("500 5.5.1 Command unrecognized", Block, SyntaxError),
    (
        "550 5.7.1 Delivery not authorized, message refused",
        Block,
        SecurityError,
    ),
    (
        "550 5.7.1 Message refused by recipient's filter",
        Block,
        Filtered,
    ),
    (
        "556 5.1.10 Recipient address has null MX",
        Hard,
        HostUnknown,
    ),
    (
        "550 5.7.1 <a@example.org>: Recipient address rejected: Access denied. AS(1234)",
        Hard,
        UserUnknown,
    ),
    (
        "521 5.3.2 Service closed: not accepting network messages",
        Hard,
        NotAccept,
    ),
    (
        "550 5.7.1 Refused: blacklisted URL in message body, see uribl",
        Block,
        SpamDetected,
    ),
    (
        "550 5.2.0 Message refused. OFR_506 [506]",
        Block,
        SpamDetected,
    ),
    (
        "550 You are writing from an address that has been blacklisted here",
        Block,
        Rejected,
    ),
    (
        "550 SC-002 Mail refused for the moment, ask your provider",
        Block,
        Blocked,
    ),
    (
        "550 Too many unwanted messages came from your connection",
        Block,
        Blocked,
    ),
    ("554 Delivery refused here (BL)", Block, Blocked),
    (
        "550 5.2.0 From: domain is invalid, provide a valid From: header",
        Block,
        Rejected,
    ),
    ("550 Insecure mail relay refused", Block, NoRelaying),
    ("554 Transaction failed", Soft, SystemError),
    (
        "535 5.7.9 Authentication mechanism is too weak",
        Block,
        SecurityError,
    ),
    (
        "550 5.1.1 RCP-X9 Refused due to recipient preferences",
        Block,
        Filtered,
    ),
    (
        "451 Delivery to this host was aborted after 2.5 hours",
        Soft,
        Expired,
    ),
    ("542 user@example.com Rejected", Hard, UserUnknown),
    (
        "550 The mail server could not deliver mail to a@example.net. The account or domain may not exist, they may be blacklisted, or missing the proper dns entries.",
        Hard,
        HostUnknown,
    ),
];

/// Local (synthetic) replies made up by the outbound code.
const LOCAL_CASES: &[(&str, Class, Reason)] = &[
    (
        "451 4.4.1 connection refused by 192.0.2.7:25",
        Soft,
        NetworkError,
    ),
    ("451 4.4.2 connection timed out", Soft, NetworkError),
    (
        "550 5.1.2 host not found: example.invalid",
        Hard,
        HostUnknown,
    ),
    ("556 5.1.10 domain has a null MX", Hard, HostUnknown),
    (
        "451 4.7.5 TLS handshake failed: unknown certificate issuer",
        Soft,
        FailedStartTls,
    ),
    (
        "421 4.7.0 STARTTLS required by policy but not offered",
        Soft,
        SecurityError,
    ),
];

fn run(cases: &[(&str, Class, Reason)], synthetic: bool) {
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    for (line, class, reason) in cases {
        let v = classify_reply(&reply(line, synthetic));
        if (v.class, v.reason) != (*class, *reason) {
            failures.push(format!(
                "{line:?}: got {:?}/{:?} by {}, want {class:?}/{reason:?}",
                v.class, v.reason, v.rule
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn remote_replies_classify_as_expected() {
    run(CASES, false);
}

#[test]
fn local_replies_classify_as_expected() {
    run(LOCAL_CASES, true);
}

#[test]
fn every_4xx_is_soft() {
    for line in [
        "450 4.1.1 user unknown",
        "451 4.7.1 blocked using spamhaus",
        "452 4.5.3 relay access denied",
    ] {
        assert_eq!(classify_reply(&reply(line, false)).class, Soft, "{line}");
    }
}

#[test]
fn all_text_patterns_compile() {
    assert_eq!(TEXT_REGEXES.len(), rules::TEXT_RULES.len());
    assert!(TEXT_REGEXES.iter().all(Option::is_some));
    for r in rules::TEXT_RULES {
        assert!(regex::Regex::new(r.pattern).is_ok(), "{}", r.id);
    }
}

#[test]
fn patterns_are_lower_case() {
    for r in rules::TEXT_RULES {
        assert!(
            !r.pattern
                .replace(r"\S", "")
                .replace(r"\d", "")
                .replace(r"\w", "")
                .chars()
                .any(|c| c.is_ascii_uppercase()),
            "{}",
            r.id
        );
    }
}

#[test]
fn rule_ids_are_unique() {
    let mut ids: Vec<&str> = rules::TEXT_RULES
        .iter()
        .map(|r| r.id)
        .chain(rules::CODE_RULES.iter().map(|r| r.id))
        .collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n);
}

#[test]
fn a_success_code_in_a_failure_reply_does_not_mean_delivered() {
    let v = classify(
        Some(550),
        EnhancedCode::parse("2.0.0"),
        "mailbox unavailable",
    );
    assert_ne!(v.class, Class::Delivered);
    assert_eq!(
        classify(None, EnhancedCode::parse("2.1.5"), "").reason,
        Reason::Delivered
    );
}
